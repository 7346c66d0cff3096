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
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = String(cString: strerror(errno))
                close(fd)
                throw SessionError("cannot write \(path): \(e)")
            }
            off += n
        }
        if fsync(fd) != 0 {
            let e = String(cString: strerror(errno))
            close(fd)
            throw SessionError("cannot write \(path): fsync failed: \(e)")
        }
        close(fd)
        if let hook = ProcessInfo.processInfo.environment["PROMPTLINE_TEST_PAUSE_BEFORE_RENAME_MS"], let ms = UInt32(hook) {
            usleep(ms * 1000)  // lets the crash-safety test kill the process between write and rename
        }
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

/// Where transcripts live and how they are saved, loaded and listed.
public struct TranscriptStore {
    /// `$XDG_DATA_HOME/promptline/sessions` (default `~/.local/share/promptline/sessions`).
    public var directory: String

    public init(directory: String) { self.directory = directory }

    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let base = environment["XDG_DATA_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? NSHomeDirectory() + "/.local/share"
        return base + "/promptline/sessions"
    }

    /// The autosave path of a transcript: `<created timestamp>-<id>.json`, always directly in
    /// ``directory`` (an id that is not a plain name is reduced to its safe characters).
    public func autosavePath(for t: Transcript) -> String {
        // 2026-11-27T19:20:00.123Z → 20261127T192000Z
        let iso = Transcript.iso(t.created)
        let stamp = iso.prefix(19).filter { $0 != "-" && $0 != ":" } + "Z"
        let id = Transcript.isValidID(t.id) ? t.id : String(t.id.filter { $0.isASCII && ($0.isLetter || $0.isNumber) }.prefix(64))
        return "\(directory)/\(stamp)-\(id).json"
    }

    /// Whether `path` names a file directly in ``directory`` (after resolving `.` and `..`).
    public func contains(_ path: String) -> Bool {
        let p = (path as NSString).standardizingPath
        let dir = (directory as NSString).standardizingPath
        let name = (p as NSString).lastPathComponent
        return (p as NSString).deletingLastPathComponent == dir && !name.isEmpty && name != "." && name != ".."
    }

    public static func encode(_ t: Transcript, stats: SessionStats) -> [UInt8] {
        Array((t.json(stats: stats).serialized(pretty: true) + "\n").utf8)
    }

    /// Saves to `path`. Refuses to replace a file that is not a promptline transcript unless `force`.
    public static func save(_ t: Transcript, stats: SessionStats, to path: String, force: Bool) throws {
        if !force, FileManager.default.fileExists(atPath: path) {
            let existing = FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
            if (try? Transcript.parse(existing)) == nil {
                throw SessionError("\(path) exists and is not a promptline transcript; :save! \(path) replaces it")
            }
        }
        try AtomicFile.write(encode(t, stats: stats), to: path)
    }

    /// Writes the Markdown export. Refuses to replace a file that is not a promptline export
    /// unless `force` (`:export!`), as ``save(_:stats:to:force:)`` does.
    public static func export(_ t: Transcript, stats: SessionStats, to path: String, force: Bool) throws {
        if !force, FileManager.default.fileExists(atPath: path) {
            let head = FileHandle(forReadingAtPath: path).map { h -> Data in
                defer { try? h.close() }
                return h.readData(ofLength: 64)
            }
            if !(head.map { String(decoding: $0, as: UTF8.self).hasPrefix(exportHeading) } ?? false) {
                throw SessionError("\(path) exists and is not a promptline export; :export! \(path) replaces it")
            }
        }
        try AtomicFile.write(Array(markdown(t, stats: stats).utf8), to: path)
    }

    static let exportHeading = "# promptline session "

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

    /// Autosaved transcripts, newest first.
    public func recent(limit: Int = 20) -> [(path: String, transcript: Transcript)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        let files = names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted(by: >)
        var out: [(String, Transcript)] = []
        for n in files {
            let p = directory + "/" + n
            if let t = try? Self.load(p) { out.append((p, t)) }
            if out.count >= limit { break }
        }
        return out.sorted { $0.1.updated > $1.1.updated }
    }

    /// Markdown for `:export`: system prompt, each turn with settings changes, outputs, a stats table.
    public static func markdown(_ t: Transcript, stats: SessionStats) -> String {
        var md = "\(exportHeading)\(t.id)\n\n"
        md += "- created: \(Transcript.iso(t.created))\n- provider: \(t.provider) (\(Redactor.url(t.baseURL)))\n- model: \(t.model)\n\n"
        var n = 0
        for e in t.events {
            switch e["type"]?.stringValue {
            case "settings":
                md += "## Settings\n\n- model: `\(e["model"]?.stringValue ?? "")` (\(e["provider"]?.stringValue ?? ""))\n- mode: \(e["mode"]?.stringValue ?? "")\n"
                if let o = e["options"]?.objectValue, !o.isEmpty {
                    md += "- options: " + o.map { "`\($0.key)=\($0.value.serialized())`" }.joined(separator: ", ") + "\n"
                }
                if let f = e["function"], f != .null { md += "- function: `\(f["name"]?.stringValue ?? "")`\n" }
                if let s = e["system"]?.stringValue { md += "\n**System prompt**\n\n" + fence(s) }
                md += "\n"
            case "reset":
                md += "---\n*conversation reset*\n\n"
            case "turn":
                n += 1
                md += "## Turn \(n)\n\n**Prompt**\n\n" + fence(e["prompt"]?.stringValue ?? "")
                let out = e["output"] ?? .null
                if let text = out["text"]?.stringValue {
                    md += "\n**Output**\n\n" + fence(text)
                } else if let f = out["function"] {
                    md += "\n**Function call** `\(f["name"]?.stringValue ?? "")`\n\n```json\n\((f["arguments"] ?? .null).serialized(pretty: true))\n```\n"
                } else if let err = out["error"]?.stringValue {
                    md += "\n**Error**: \(err)\n"
                } else {
                    md += "\n*cancelled*\n"
                }
                var figures: [String] = []
                if let l = e["request_time"]?.doubleValue { figures.append(String(format: "%.2f s", l)) }
                if let i = e["input_tokens"]?.intValue, let o = e["output_tokens"]?.intValue { figures.append("\(i) in / \(o) out tokens") }
                if let r = e["retries"]?.intValue, r > 0 { figures.append("\(r) retries") }
                if !figures.isEmpty { md += "\n*" + figures.joined(separator: " · ") + "*\n" }
                md += "\n"
            default: break
            }
        }
        let i = stats.inputTokens, o = stats.outputTokens
        md += "## Stats\n\n| turns | requests | retries | errors | cancelled | input tokens | output tokens |\n|---|---|---|---|---|---|---|\n"
        md += "| \(stats.turnCount) | \(stats.requests) | \(stats.retries) | \(stats.errors) | \(stats.cancelled) | \(i.sum)\(i.unknown > 0 ? "+?" : "") | \(o.sum)\(o.unknown > 0 ? "+?" : "") |\n"
        return md
    }

    static func fence(_ s: String) -> String {
        var ticks = "```"
        while s.contains(ticks) { ticks += "`" }
        return "\(ticks)\n\(s)\n\(ticks)\n"
    }
}
