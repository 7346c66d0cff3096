import CTerminal
import Foundation
import QueryCore

/// Where transcripts live and how they are saved, loaded and listed.
public struct TranscriptStore {
    /// `$XDG_DATA_HOME/promptline/sessions` (default `~/.local/share/promptline/sessions`).
    public var directory: String

    public init(directory: String) { self.directory = directory }

    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        XDG.directory("XDG_DATA_HOME", default: ".local/share", environment: environment) + "/promptline/sessions"
    }

    /// The autosave path of a transcript: `<created timestamp>-<id>.jsonl`, always directly in
    /// ``directory`` (an id that is not a plain name is reduced to its safe characters).
    /// - Parameter created: when the journal is started, if not when the transcript was (a
    ///   transcript loaded from elsewhere goes on in a journal of its own, named for its own start).
    public func autosavePath(for t: Transcript, created: Date? = nil) -> String {
        // 2026-11-27T19:20:00.123Z → 20261127T192000Z
        let stamp = TranscriptClock.iso(created ?? t.created).prefix(19).filter { $0 != "-" && $0 != ":" } + "Z"
        let safe = String(t.id.filter { $0.isASCII && ($0.isLetter || $0.isNumber) }.prefix(64))
        return "\(directory)/\(stamp)-\(Transcript.isValidID(t.id) ? t.id : safe).jsonl"
    }

    /// Whether `path` names a file directly in ``directory`` (after resolving `.` and `..`).
    public func contains(_ path: String) -> Bool {
        let p = (path as NSString).standardizingPath
        let dir = (directory as NSString).standardizingPath
        let name = (p as NSString).lastPathComponent
        return (p as NSString).deletingLastPathComponent == dir && !name.isEmpty && name != "." && name != ".."
    }

    /// Saves the whole journal to `path` at once. Refuses to replace a file that is not a
    /// promptline transcript unless `force`.
    public static func save(_ t: Transcript, to path: String, force: Bool) throws {
        if !force, FileManager.default.fileExists(atPath: path) {
            let existing = FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
            if (try? Transcript.parse(existing)) == nil {
                throw SessionError("\(path) exists and is not a promptline transcript; :save! \(path) replaces it")
            }
        }
        try AtomicFile.write(t.journalBytes(), to: path)
    }

    /// Writes the Markdown export. Refuses to replace a file that is not a promptline export
    /// unless `force` (`:export!`), as ``save(_:to:force:)`` does.
    public static func export(_ t: Transcript, stats: SessionStats, to path: String, force: Bool) throws {
        if !force, FileManager.default.fileExists(atPath: path) {
            let head = FileHandle(forReadingAtPath: path).map { h -> Data in
                defer { try? h.close() }
                return h.readData(ofLength: 64)
            }
            if !(head.map { String(decoding: $0, as: UTF8.self).hasPrefix(TranscriptMarkdown.heading) } ?? false) {
                throw SessionError("\(path) exists and is not a promptline export; :export! \(path) replaces it")
            }
        }
        try AtomicFile.write(
            Array(Redactor(t.secrets).redact(TranscriptMarkdown.render(t, stats: stats)).utf8), to: path)
    }

    /// Reads a transcript file. - Throws: ``SessionError`` naming the file and the problem.
    public static func load(_ path: String) throws -> Transcript {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SessionError(
                "\(path): " + (FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"))
        }
        do {
            return try Transcript.parse([UInt8](data))
        } catch let e as SessionError {
            throw SessionError("\(path): \(e.message)")
        }
    }

    /// Autosaved transcripts, the most recently written first (by the time of their last event).
    /// A version 1 `.json` file that was carried on as a `.jsonl` journal is listed once, as the
    /// journal. Reads each session's summary (``SessionIndex``), not its turns.
    public func recent(limit: Int = 20) -> [SessionSummary] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        let set = Set(names)
        let index = SessionIndex(sessions: directory)
        let all = names.filter {
            !$0.hasPrefix(".") && ($0.hasSuffix(".jsonl") || $0.hasSuffix(".json") && !set.contains($0 + "l"))
        }.compactMap { index.summary(of: directory + "/" + $0) }
        // Ties (the same millisecond) go to the later name, which carries the later start.
        let sorted = all.sorted { $0.updated != $1.updated ? $0.updated > $1.updated : $0.path > $1.path }
        return Array(sorted.prefix(limit))
    }
}
