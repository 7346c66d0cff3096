import Foundation

/// The advisory lock that makes one promptline a journal's only writer: `flock` on a hidden file
/// beside it (`.<journal name>.lock`, holding the holder's process id), not on the journal itself,
/// which is replaced by rename when it is rewritten. The kernel drops the lock when its process
/// ends, however it ends (SIGKILL included); a clean end also removes the file.
public final class JournalLock {
    /// What ``take(_:)`` found.
    public enum Outcome {
        case taken(JournalLock)
        /// Another process holds it; its process id when the lock file says.
        case held(by: Int32?)
        /// The lock file cannot be made (a read-only folder): no lock, and the reason.
        case unavailable(String)
    }

    public let path: String
    private let fd: Int32

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    // Removed before it is unlocked: whoever opened it meanwhile sees it is no longer the file
    // on the path, and locks the one that is (see take).
    deinit {
        unlink(path)
        close(fd)
    }

    /// `<folder>/.<name>.lock` for the journal `<folder>/<name>`.
    public static func lockPath(for journal: String) -> String {
        let dir = (journal as NSString).deletingLastPathComponent
        return (dir.isEmpty ? "" : dir + "/") + "." + (journal as NSString).lastPathComponent + ".lock"
    }

    /// Takes the lock of the journal at `journal`, without waiting.
    public static func take(_ journal: String) -> Outcome {
        let p = lockPath(for: journal)
        for _ in 0..<5 {
            let fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { return .unavailable("cannot open \(p): \(String(cString: strerror(errno)))") }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let e = errno
                let holder = e == EWOULDBLOCK ? readPID(fd) : nil
                close(fd)
                if e == EWOULDBLOCK { return .held(by: holder) }
                return .unavailable("cannot lock \(p): \(String(cString: strerror(e)))")
            }
            var open = stat()
            var onPath = stat()
            if fstat(fd, &open) == 0, stat(p, &onPath) == 0, open.st_ino == onPath.st_ino, open.st_dev == onPath.st_dev
            {
                let pid = Array("\(getpid())\n".utf8)
                _ = ftruncate(fd, 0)
                _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
                return .taken(JournalLock(fd: fd, path: p))
            }
            close(fd)  // its last holder removed it after this open: try the file now on the path
        }
        return .unavailable("\(p) keeps being replaced")
    }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buf = [UInt8](repeating: 0, count: 16)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
