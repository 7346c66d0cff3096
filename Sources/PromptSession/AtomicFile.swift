import CTerminal
import Foundation

/// Writes files so that a crash at any moment leaves the old complete file or the new complete
/// one: a temp file in the same folder, fsync, rename, fsync of the folder. Files are 0600 in
/// 0700 folders.
public enum AtomicFile {
    /// - Throws: ``SessionError`` naming the path and the system's reason.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try makeDirectory(dir.isEmpty ? "." : dir)
        let tmp =
            "\(dir.isEmpty ? "." : dir)/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SessionError("cannot write \(path): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        if bytes.withUnsafeBytes({ ct_write_all(fd, $0.baseAddress, $0.count) }) != 0 {
            let e = String(cString: strerror(errno))
            close(fd)
            throw SessionError("cannot write \(path): \(e)")
        }
        if fsync(fd) != 0 {
            let e = String(cString: strerror(errno))
            close(fd)
            throw SessionError("cannot write \(path): fsync failed: \(e)")
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            throw SessionError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        ok = true
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    /// Creates a folder promptline owns (the sessions folder) with mode 0700, or tightens an
    /// existing one to 0700: another user of the machine must not list or read its files.
    public static func makePrivateDirectory(_ dir: String) throws {
        try makeDirectory(dir)
        var st = stat()
        if stat(dir, &st) == 0, st.st_uid == geteuid(), st.st_mode & 0o077 != 0 {
            guard chmod(dir, 0o700) == 0 else {
                throw SessionError("cannot make \(dir) private: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Creates `dir` (and each missing parent) with mode 0700; a folder that exists is left as
    /// it is (its mode is its owner's business: `--out /tmp/r.jsonl` must not lock `/tmp`). An
    /// empty path is the current folder.
    public static func makeDirectory(_ dir: String) throws {
        let dir = dir.isEmpty ? "." : dir
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
            guard isDir.boolValue else { throw SessionError("\(dir) exists and is not a folder") }
            return
        }
        let parent = (dir as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != dir { try makeDirectory(parent) }
        guard mkdir(dir, 0o700) == 0 || errno == EEXIST else {
            throw SessionError("cannot create folder \(dir): \(String(cString: strerror(errno)))")
        }
    }
}
