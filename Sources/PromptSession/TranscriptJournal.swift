import CTerminal
import Foundation

/// A transcript's file, kept open for appending: each event is written as one line and
/// fsync'ed as it happens, so the file is never rewritten per turn and a crash loses at most the
/// line being written (which the loader then leaves out with a note).
public final class TranscriptJournal {
    public let path: String
    private var fd: Int32 = -1
    /// How many of the transcript's events are in the file.
    private var written: Int

    /// - Parameter onDisk: how many events the file at `path` already holds, complete, in the
    ///   journal format; 0 to write it anew (atomically) at the first ``sync(_:)``.
    public init(path: String, onDisk: Int = 0) {
        self.path = path
        written = onDisk
    }

    /// This process's claim to be the file's one writer, released with the journal.
    private var lock: JournalLock?
    /// No lock can be made beside the file (a read-only folder): not tried again at each write.
    private var lockless = false

    deinit { closeFile() }

    /// Gives up the claim to the file (at exit: another promptline may then carry it on).
    public func release() { lock = nil }

    /// Makes this process the file's one writer (a ``JournalLock``), unless another promptline
    /// has it open. Returns nil when it is this process's to write (or no lock can be made
    /// there), else the other holder's process id (0 when it does not say): nothing may then be
    /// written here.
    public func claim() -> Int32? {
        if lock != nil || lockless { return nil }
        switch JournalLock.take(path) {
        case .taken(let l):
            lock = l
            return nil
        case .held(let pid):
            return pid ?? 0
        case .unavailable:
            lockless = true
            return nil
        }
    }

    /// Writes the events of `t` not yet in the file. The file is written whole (atomically) the
    /// first time, and again if it is no longer the one this journal appends to (removed, or
    /// replaced — say by `:save` to the same path): appending to a file nobody can reach again
    /// would lose the session.
    /// - Throws: ``SessionError`` naming the path and the system's reason.
    public func sync(_ t: Transcript) throws {
        if let holder = claim() {
            throw SessionError("\(path) is open in another promptline (pid \(holder)); it is not written from here")
        }
        if written == 0 || !appendsToPath() {
            try AtomicFile.write(t.journalBytes(), to: path)
            written = t.events.count
            return
        }
        guard written < t.events.count else { return }
        if fd < 0 {
            fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw SessionError("cannot append to \(path): \(String(cString: strerror(errno)))") }
        }
        var bytes: [UInt8] = []
        for e in t.events[written...] { bytes += t.line(e) }
        let ok = bytes.withUnsafeBytes { ct_write_all(fd, $0.baseAddress, $0.count) } == 0 && fsync(fd) == 0
        guard ok else { throw SessionError("cannot append to \(path): \(String(cString: strerror(errno)))") }
        written = t.events.count
    }

    /// Whether the open file (or, before it is opened, the file at ``path``) is the one at
    /// ``path``. Closes a file that no longer is.
    private func appendsToPath() -> Bool {
        var onPath = stat()
        guard stat(path, &onPath) == 0 else {
            closeFile()
            return false
        }
        guard fd >= 0 else { return true }
        var open = stat()
        if fstat(fd, &open) == 0 && open.st_ino == onPath.st_ino && open.st_dev == onPath.st_dev { return true }
        closeFile()
        return false
    }

    private func closeFile() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}
