import Foundation

/// Reads a whole file by its path: a regular file, and also a pipe or a process substitution
/// (`--func <(…)`, `/dev/fd/N`), which Foundation's `Data(contentsOf:)` and
/// `FileManager.contents(atPath:)` refuse on Linux (EACCES).
public enum FileReader {
    /// - Throws: ``Failure`` with the system's reason (`No such file or directory`, `Permission denied`, …).
    public static func read(_ path: String) throws(Failure) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Failure(reason: errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            return try handle.readToEnd() ?? Data()
        } catch {
            throw Failure(reason: (error as NSError).localizedDescription)
        }
    }

    /// A whole file as UTF-8 text.
    /// - Throws: ``Failure`` (``Failure/notText`` when it is not UTF-8).
    public static func text(_ path: String) throws(Failure) -> String {
        guard let text = String(data: try read(path), encoding: .utf8) else {
            throw Failure(reason: "not UTF-8 text", notText: true)
        }
        return text
    }

    /// Why a file could not be read, as the system says it (`no such file` for a missing one).
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var reason: String
        /// It was read, but it is not UTF-8 text.
        public var notText = false
        public var description: String { reason }
    }
}
