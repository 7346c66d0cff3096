import Foundation
import QueryCore

/// What `:sessions` and `--resume last` need of a saved session, without its turns.
public struct SessionSummary: Equatable, Sendable {
    public var path: String
    public var id: String
    /// The time of its last event: when promptline last wrote to it.
    public var updated: Date
    public var provider: String
    public var model: String
    public var turnCount: Int
    /// The first prompt, cut to ``SessionIndex/promptLimit`` characters.
    public var firstPrompt: String?

    public init(path: String, transcript t: Transcript) {
        (self.path, id, updated, provider, model) = (path, t.id, t.updated, t.provider, t.model)
        turnCount = t.turnCount
        firstPrompt = t.firstPrompt.map { String($0.prefix(SessionIndex.promptLimit)) }
    }
}

/// A small summary beside each journal in the sessions folder (`.index/NAME.json`), so that
/// listing sessions reads a few hundred bytes per session instead of every transcript whole.
/// A summary holds the journal's size and modification time when it was made: one that no
/// longer matches (the journal grew, was replaced, or was copied in by hand) is ignored and made
/// again from the journal. The summaries are a cache: losing them only costs one full read.
public struct SessionIndex {
    public static let promptLimit = 200
    public let directory: String

    public init(sessions directory: String) { self.directory = directory }

    var folder: String { directory + "/.index" }

    func entryPath(_ journal: String) -> String { folder + "/" + (journal as NSString).lastPathComponent + ".json" }

    /// The size and modification time (ns) of the file at `path`, nil when it is not a file.
    static func signature(_ path: String) -> (size: Int64, mtime: Int64)? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        return (Int64(st.st_size), Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    /// Records the summary of `t`, just written to the journal at `path`. Best effort: a
    /// summary that cannot be written is made again at the next listing.
    public func note(_ t: Transcript, journal path: String) {
        guard let sig = Self.signature(path) else { return }
        write(SessionSummary(path: path, transcript: t), signature: sig)
    }

    /// The summary of the journal at `path`: from its index entry when that still describes
    /// the file, else read from the file (and the entry made again). nil when the file is not a
    /// transcript that loads.
    public func summary(of path: String) -> SessionSummary? {
        guard let sig = Self.signature(path) else { return nil }
        if let s = read(path, signature: sig) { return s }
        guard let t = try? TranscriptStore.load(path) else { return nil }
        let s = SessionSummary(path: path, transcript: t)
        write(s, signature: sig)
        return s
    }

    private func read(_ path: String, signature sig: (size: Int64, mtime: Int64)) -> SessionSummary? {
        guard let data = FileManager.default.contents(atPath: entryPath(path)),
            let v = try? JSONValue.parse([UInt8](data)),
            v["size"]?.int64Value == sig.size, v["mtime_ns"]?.int64Value == sig.mtime,
            let id = v["id"]?.stringValue, let provider = v["provider"]?.stringValue,
            let model = v["model"]?.stringValue, let turns = v["turns"]?.intValue,
            let updated = v["updated"]?.stringValue.flatMap(TranscriptClock.parseISO)
        else { return nil }
        var t = Transcript(id: id, created: updated, provider: provider, baseURL: "", model: model)
        t.updated = updated
        var s = SessionSummary(path: path, transcript: t)
        s.turnCount = turns
        s.firstPrompt = v["first_prompt"]?.stringValue
        return s
    }

    private func write(_ s: SessionSummary, signature sig: (size: Int64, mtime: Int64)) {
        let v: JSONValue = [
            "size": .integer(sig.size), "mtime_ns": .integer(sig.mtime), "id": .string(s.id),
            "updated": .string(TranscriptClock.iso(s.updated)), "provider": .string(s.provider),
            "model": .string(s.model), "turns": .integer(Int64(s.turnCount)),
            "first_prompt": s.firstPrompt.map(JSONValue.string) ?? .null,
        ]
        // No fsync: a summary lost in a crash is made again from the journal.
        guard (try? AtomicFile.makePrivateDirectory(folder)) != nil else { return }
        let target = entryPath(s.path)
        let tmp = "\(folder)/.\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        guard
            FileManager.default.createFile(
                atPath: tmp, contents: Data(v.serializedBytes()), attributes: [.posixPermissions: 0o600])
        else { return }
        if rename(tmp, target) != 0 { unlink(tmp) }
    }
}
