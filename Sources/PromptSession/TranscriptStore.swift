import CTerminal
import Foundation
import QueryCore

/// Writes files so that a crash at any moment leaves the old complete file or the new complete
/// one: a temp file in the same folder, fsync, rename, fsync of the folder. Files are 0600 in
/// 0700 folders.
public enum AtomicFile {
    /// - Throws: ``SessionError`` naming the path and the system's reason.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try makeDirectory(dir.isEmpty ? "." : dir)
        let tmp = "\(dir.isEmpty ? "." : dir)/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
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
        guard rename(tmp, path) == 0 else { throw SessionError("cannot write \(path): \(String(cString: strerror(errno)))") }
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
            guard chmod(dir, 0o700) == 0 else { throw SessionError("cannot make \(dir) private: \(String(cString: strerror(errno)))") }
        }
    }

    /// Creates `dir` (and parents) with mode 0700 where missing.
    public static func makeDirectory(_ dir: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
            guard isDir.boolValue else { throw SessionError("\(dir) exists and is not a folder") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SessionError("cannot create folder \(dir): \(error.localizedDescription)")
        }
    }
}

/// XDG base directories: the one place promptline resolves `$XDG_*_HOME` (an unset or relative
/// value falls back to the default under the home folder, as the specification says).
public enum XDG {
    public static func directory(
        _ variable: String, default fallback: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if let v = environment[variable], v.hasPrefix("/") { return v }
        return NSHomeDirectory() + "/" + fallback
    }
}

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

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Writes the events of `t` not yet in the file.
    /// - Throws: ``SessionError`` naming the path and the system's reason.
    public func sync(_ t: Transcript) throws {
        if written == 0 || fd < 0 && !FileManager.default.fileExists(atPath: path) {
            try AtomicFile.write(t.journalBytes(), to: path)
            written = t.events.count
            if fd >= 0 { close(fd) }
            fd = -1
            return
        }
        guard written < t.events.count else { return }
        if fd < 0 {
            fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw SessionError("cannot append to \(path): \(String(cString: strerror(errno)))") }
        }
        var bytes: [UInt8] = []
        for e in t.events[written...] { bytes += Transcript.line(e.json) }
        let ok = bytes.withUnsafeBytes { ct_write_all(fd, $0.baseAddress, $0.count) } == 0 && fsync(fd) == 0
        guard ok else { throw SessionError("cannot append to \(path): \(String(cString: strerror(errno)))") }
        written = t.events.count
    }
}

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
    public func autosavePath(for t: Transcript) -> String {
        // 2026-11-27T19:20:00.123Z → 20261127T192000Z
        let stamp = TranscriptClock.iso(t.created).prefix(19).filter { $0 != "-" && $0 != ":" } + "Z"
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
        try AtomicFile.write(Array(TranscriptMarkdown.render(t, stats: stats).utf8), to: path)
    }

    /// Reads a transcript file. - Throws: ``SessionError`` naming the file and the problem.
    public static func load(_ path: String) throws -> Transcript {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SessionError("\(path): " + (FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"))
        }
        do {
            return try Transcript.parse([UInt8](data))
        } catch let e as SessionError {
            throw SessionError("\(path): \(e.message)")
        }
    }

    /// Autosaved transcripts, newest first. A version 1 `.json` file that was carried on as a
    /// `.jsonl` journal is listed once, as the journal.
    public func recent(limit: Int = 20) -> [(path: String, transcript: Transcript)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        let set = Set(names)
        let files = names.filter {
            !$0.hasPrefix(".") && ($0.hasSuffix(".jsonl") || $0.hasSuffix(".json") && !set.contains($0 + "l"))
        }
        var out: [(String, Transcript)] = []
        for n in files.sorted(by: >) {
            let p = directory + "/" + n
            if let t = try? Self.load(p) { out.append((p, t)) }
            if out.count >= limit { break }
        }
        return out.sorted { $0.1.updated > $1.1.updated }
    }
}

/// `:export`: the session as readable Markdown — settings, each turn's prompt and output with
/// its figures, `:compare` runs, and a stats table.
public enum TranscriptMarkdown {
    static let heading = "# promptline session "

    public static func render(_ t: Transcript, stats: SessionStats) -> String {
        var md = "\(heading)\(t.id)\n\n"
        md += "- created: \(TranscriptClock.iso(t.created))\n- provider: \(t.provider) (\(Redactor.url(t.baseURL)))\n- model: \(t.model)\n\n"
        var n = 0
        for e in t.events {
            switch e {
            case .settings(let s): md += settings(s)
            case .reset: md += "---\n*conversation reset*\n\n"
            case .turn(let turn):
                n += 1
                md += "## Turn \(n)\n\n**Prompt**\n\n" + fence(turn.prompt) + output(turn.output) + figures(turn.figures) + "\n"
            case .comparison(let c):
                md += "## Compare\n\n**Prompt**\n\n" + fence(c.prompt)
                for v in c.variants { md += "\n### \(v.label)\n" + output(v.output) + figures(v.figures) }
                md += "\n"
            }
        }
        let i = stats.inputTokens, o = stats.outputTokens
        md += "## Stats\n\n| turns | requests | retries | errors | cancelled | input tokens | output tokens |\n"
        md += "|---|---|---|---|---|---|---|\n"
        md += "| \(stats.turnCount) | \(stats.requests) | \(stats.retries) | \(stats.errors) | \(stats.cancelled) "
        md += "| \(i.sum)\(i.unknown > 0 ? "+?" : "") | \(o.sum)\(o.unknown > 0 ? "+?" : "") |\n"
        return md
    }

    static func settings(_ s: TranscriptEvent.Settings) -> String {
        var md = "## Settings\n\n- model: `\(s.model)` (\(s.provider.rawValue))\n- mode: \(s.mode.rawValue)\n"
        if !s.options.keys.isEmpty {
            md += "- options: " + s.options.map { "`\($0.key)=\($0.value.serialized())`" }.joined(separator: ", ") + "\n"
        }
        if let f = s.function { md += "- function: `\(f.name)`\n" }
        if let system = s.system { md += "\n**System prompt**\n\n" + fence(system) }
        return md + "\n"
    }

    static func output(_ o: TranscriptEvent.Output) -> String {
        switch o {
        case .text(let text): return "\n**Output**\n\n" + fence(text)
        case .functionCall(let c): return "\n**Function call** `\(c.name)`\n\n```json\n\(c.arguments.serialized(pretty: true))\n```\n"
        case .error(let m): return "\n**Error**: \(m)\n"
        case .cancelled: return "\n*cancelled*\n"
        }
    }

    static func figures(_ f: TranscriptEvent.Figures) -> String {
        var figures: [String] = []
        if let l = f.requestTime { figures.append(String(format: "%.2f s", l)) }
        if let i = f.inputTokens, let o = f.outputTokens { figures.append("\(i) in / \(o) out tokens") }
        if f.retries > 0 { figures.append("\(f.retries) retries") }
        return figures.isEmpty ? "" : "\n*" + figures.joined(separator: " · ") + "*\n"
    }

    static func fence(_ s: String) -> String {
        var ticks = "```"
        while s.contains(ticks) { ticks += "`" }
        return "\(ticks)\n\(s)\n\(ticks)\n"
    }
}
