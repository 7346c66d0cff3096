import Foundation

/// Reads a whole file by its path: a regular file, and also a pipe or a process substitution
/// (`--func <(…)`, `/dev/fd/N`), which Foundation's `Data(contentsOf:)` and
/// `FileManager.contents(atPath:)` refuse on Linux (EACCES).
public enum FileReader {
    /// - Throws: ``Failure`` with the system's reason (`No such file or directory`, `Permission denied`, …).
    public static func read(_ path: String) throws(Failure) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(reason: String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            return try handle.readToEnd() ?? Data()
        } catch {
            throw Failure(reason: (error as NSError).localizedDescription)
        }
    }

    /// Why a file could not be read, as the system says it.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }
}
