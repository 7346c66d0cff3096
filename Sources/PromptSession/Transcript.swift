import Foundation
import QueryCore

/// A session's record: every settings change and every turn with the exact request sent, in order.
/// Saved as versioned JSON (see docs/transcript-format.md); never holds an API key.
public struct Transcript: Equatable {
    public static let format = "promptline-transcript"
    public static let version = 1

    public var id: String
    public var created: Date
    public var updated: Date
    public var provider: String
    public var baseURL: String
    public var model: String
    /// Settings changes and turns, in the order they happened.
    public var events: [JSONValue] = []
    /// Texts replaced by "[redacted]" wherever they would be recorded (the API keys in use: a
    /// key pasted into a prompt by mistake must not reach a file). Not saved.
    public var secrets: [String] = []

    public init(id: String = Transcript.newID(), created: Date = Date(), provider: String, baseURL: String, model: String) {
        self.id = id
        self.created = created
        self.updated = created
        self.provider = provider
        self.baseURL = baseURL
        self.model = model
    }

    /// Whether `id` is safe in a file name: 1–64 ASCII letters, digits, `-` or `_` (an id is
    /// part of the autosave path, so `x/../../y` must never be one).
    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && id.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") }
    }

    public static func newID() -> String {
        String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(8))
    }

    public var turnCount: Int { events.filter { $0["type"] == "turn" }.count }
    public var firstPrompt: String? { events.first { $0["type"] == "turn" }?["prompt"]?.stringValue }

    /// ISO 8601 in UTC with milliseconds, by hand: Foundation's formatters load ICU's data,
    /// which costs start-up time and memory the REPL should not pay before its first prompt.
    static func iso(_ d: Date) -> String {
        var t = time_t(d.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        let ms = Int((d.timeIntervalSince1970 - Double(t)) * 1000) % 1000
        func pad(_ v: Int32, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }

    /// Reads `YYYY-MM-DDTHH:MM:SS[.fff]Z` (what ``iso(_:)`` writes, and the same without milliseconds).
    static func parseISO(_ s: String) -> Date? {
        let u = Array(s.utf8)
        guard u.count >= 20, u.last == UInt8(ascii: "Z") else { return nil }
        func num(_ a: Int, _ n: Int) -> Int32? {
            guard a + n <= u.count else { return nil }
            var v: Int32 = 0
            for k in a..<(a + n) {
                guard u[k] >= 0x30, u[k] <= 0x39 else { return nil }
                v = v * 10 + Int32(u[k] - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let sec = num(17, 2),
            u[4] == 0x2D, u[7] == 0x2D, u[10] == UInt8(ascii: "T"), u[13] == 0x3A, u[16] == 0x3A,
            (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61
        else { return nil }
        var ms: Int32 = 0
        if u.count > 20 {
            guard u[19] == UInt8(ascii: "."), u.count == 24, let f = num(20, 3) else { return nil }
            ms = f
        }
        var parts = tm()
        parts.tm_year = y - 1900
        parts.tm_mon = mo - 1
        parts.tm_mday = d
        parts.tm_hour = h
        parts.tm_min = mi
        parts.tm_sec = sec
        let t = timegm(&parts)
        return Date(timeIntervalSince1970: Double(t) + Double(ms) / 1000)
    }

    /// The settings in force, as a transcript records them.
    static func settings(of s: Session) -> JSONObject {
        var o: JSONObject = ["provider": .string(s.provider.rawValue), "model": .string(s.model), "mode": .string(s.mode.rawValue)]
        o["system"] = s.system.map { .string($0) } ?? .null
        o["options"] = .object(s.options.values)
        o["function"] = s.functionSpec?.json ?? .null
        if s.forcedCall != .auto { o["func_via"] = .string(s.forcedCall.rawValue) }
        return o
    }

    /// Records the session's settings if they differ from the last recorded ones.
    public mutating func noteSettings(_ s: Session, at date: Date = Date()) {
        let current = Self.settings(of: s)
        let last = events.last { $0["type"] == "settings" }
        if let last, var lo = last.objectValue {
            lo["type"] = nil
            lo["at"] = nil
            if lo == current { return }
        }
        var e: JSONObject = ["type": "settings", "at": .string(Self.iso(date))]
        for (k, v) in current { e[k] = v }
        append(.object(e))
        updated = date
        model = s.model
        provider = s.provider.rawValue
    }

    /// Records a turn: the exact request body, the outcome and its figures.
    /// `retry`: this turn re-sent the previous prompt and replaced its exchange (:retry).
    public mutating func noteTurn(prompt: String, request: JSONValue, outcome: TurnOutcome, retry: Bool = false, at date: Date = Date()) {
        var e: JSONObject = ["type": "turn", "at": .string(Self.iso(date)), "prompt": .string(prompt), "request": request]
        if retry { e["retry"] = true }
        switch outcome {
        case .success(let r):
            switch r.output {
            case .text(let t): e["output"] = ["text": .string(t)]
            case .functionCall(let c):
                e["output"] = ["function": ["name": .string(c.name), "arguments": c.arguments, "raw": .string(c.rawArguments), "id": c.id.map { .string($0) } ?? .null]]
            }
            e["finish_reason"] = r.info.finishReason.map { .string($0) } ?? .null
            e["input_tokens"] = r.inputTokens.map { .integer(Int64($0)) } ?? .null
            e["output_tokens"] = r.outputTokens.map { .integer(Int64($0)) } ?? .null
            e["usage"] = r.info.usage ?? .null
            e["request_time"] = .double(r.requestTime)
            e["time_to_first_token"] = r.timeToFirstToken.map { .double($0) } ?? .null
            e["retries"] = .integer(Int64(r.retries))
            var info: JSONObject = [:]
            info["id"] = r.info.id.map { .string($0) } ?? .null
            info["model"] = r.info.model.map { .string($0) } ?? .null
            info["created"] = r.info.created.map { .integer($0) } ?? .null
            info["system_fingerprint"] = r.info.systemFingerprint.map { .string($0) } ?? .null
            if !r.info.notes.isEmpty { info["notes"] = .array(r.info.notes.map { .string($0) }) }
            if let via = r.info.forcedCall { info["forced_via"] = .string(via.rawValue) }
            e["info"] = .object(info)
        case .failure(let message, let retries, let latency, let input, let output):
            e["output"] = ["error": .string(message)]
            e["retries"] = .integer(Int64(retries))
            e["request_time"] = latency.map { .double($0) } ?? .null
            if let input { e["input_tokens"] = .integer(Int64(input)) }
            if let output { e["output_tokens"] = .integer(Int64(output)) }
        case .cancelled(let retries, let latency, let input, let output):
            e["output"] = ["cancelled": true]
            e["retries"] = .integer(Int64(retries))
            e["request_time"] = latency.map { .double($0) } ?? .null
            if let input { e["input_tokens"] = .integer(Int64(input)) }
            if let output { e["output_tokens"] = .integer(Int64(output)) }
        }
        append(.object(e))
        updated = date
    }

    private mutating func append(_ event: JSONValue) {
        let redactor = Redactor(secrets)
        events.append(redactor.isEmpty ? event : event.mapStrings(redactor.redact))
    }

    /// Records a `:compare`: the prompt and, per variant, its settings, exact request and outcome.
    public mutating func noteComparison(prompt: String, variants: [JSONValue], at date: Date = Date()) {
        append(["type": "comparison", "at": .string(Self.iso(date)), "prompt": .string(prompt), "variants": .array(variants)])
        updated = date
    }

    /// Records `:reset` (the conversation restarts after it).
    public mutating func noteReset(at date: Date = Date()) {
        events.append(["type": "reset", "at": .string(Self.iso(date))])
        updated = date
    }

    public enum TurnOutcome {
        case success(QueryResult)
        /// `inputTokens`/`outputTokens`: what the server reported before the turn failed (a forced
        /// call it did not make, arguments that are not JSON…) — billed, so recorded.
        case failure(message: String, retries: Int, latency: Double?, inputTokens: Int? = nil, outputTokens: Int? = nil)
        case cancelled(retries: Int, latency: Double?, inputTokens: Int? = nil, outputTokens: Int? = nil)
    }

    /// The whole transcript as JSON, with the session's stats totals.
    public func json(stats: SessionStats) -> JSONValue {
        var o: JSONObject = [
            "format": .string(Self.format), "version": .integer(Int64(Self.version)),
            "tool": ["name": "promptline", "version": .string(PromptlineVersion.current)],
            "id": .string(id), "created": .string(Self.iso(created)), "updated": .string(Self.iso(updated)),
            "provider": .string(provider), "base_url": .string(Redactor.url(baseURL)), "model": .string(model),
        ]
        o["events"] = .array(events)
        let i = stats.inputTokens, out = stats.outputTokens
        o["stats"] = [
            "turns": .integer(Int64(stats.turnCount)), "requests": .integer(Int64(stats.requests)), "retries": .integer(Int64(stats.retries)),
            "errors": .integer(Int64(stats.errors)), "cancelled": .integer(Int64(stats.cancelled)),
            "input_tokens": .integer(Int64(i.sum)), "output_tokens": .integer(Int64(out.sum)),
            "turns_without_usage": .integer(Int64(max(i.unknown, out.unknown))),
        ]
        return .object(o)
    }

    /// Reads a transcript, checking everything a resumed session relies on.
    /// - Throws: ``SessionError`` naming the problem.
    public static func parse(_ bytes: [UInt8]) throws -> Transcript {
        let v: JSONValue
        do {
            v = try JSONValue.parse(bytes)
        } catch {
            throw SessionError(bytes.isEmpty ? "the file is empty" : "not JSON (\(error)) — truncated or not a transcript")
        }
        guard v["format"] == .string(format) else { throw SessionError("not a promptline transcript (no \"format\": \"\(format)\")") }
        guard let ver = v["version"]?.intValue else { throw SessionError("no version number") }
        guard ver == version else { throw SessionError("transcript version \(ver) is not supported (this promptline reads version \(version))") }
        func str(_ k: String) throws -> String {
            guard let s = v[k]?.stringValue else { throw SessionError("\"\(k)\" is missing or not a string") }
            return s
        }
        guard let created = parseISO(try str("created")), let updated = parseISO(try str("updated")) else {
            throw SessionError("\"created\"/\"updated\" are not ISO 8601 times")
        }
        var t = Transcript(id: try str("id"), created: created, provider: try str("provider"), baseURL: try str("base_url"), model: try str("model"))
        t.updated = updated
        guard isValidID(t.id) else { throw SessionError("\"id\" must be 1–64 letters, digits, - or _") }
        guard let events = v["events"]?.arrayValue else { throw SessionError("\"events\" is missing or not an array") }
        for (i, e) in events.enumerated() {
            guard let type = e["type"]?.stringValue, ["settings", "turn", "reset", "comparison"].contains(type) else {
                throw SessionError("events[\(i)] has no known \"type\" (settings, turn, reset or comparison)")
            }
            if type == "turn" {
                guard e["prompt"]?.stringValue != nil, case .object = e["output"] ?? .null else {
                    throw SessionError("events[\(i)] (a turn) needs \"prompt\" and \"output\"")
                }
                try checkFigures(e, at: i)
            }
            if type == "settings" {
                guard Provider(rawValue: e["provider"]?.stringValue ?? "") != nil, e["model"]?.stringValue != nil,
                    SessionMode(rawValue: e["mode"]?.stringValue ?? "") != nil, case .object = e["options"] ?? .null
                else {
                    throw SessionError("events[\(i)] (settings) needs provider, model, mode and options")
                }
                if let f = e["function"], f != .null {
                    do { _ = try FunctionSpec(json: f) } catch { throw SessionError("events[\(i)].function: \(error)") }
                }
            }
        }
        t.events = events
        return t
    }

    /// A turn's figures must be what promptline writes: counts are whole numbers ≥ 0, times are
    /// finite seconds ≥ 0. Anything else (a hand-edited `"retries": 9223372036854775807`,
    /// `"input_tokens": -3`) refuses the file instead of reaching the stats.
    static func checkFigures(_ e: JSONValue, at i: Int) throws {
        for k in ["retries", "input_tokens", "output_tokens"] {
            guard let v = e[k], v != .null else { continue }
            guard let n = v.countValue, n <= Self.maxCount else {
                throw SessionError("events[\(i)].\(k) must be a whole number from 0 to \(Self.maxCount), got \(v.serialized())")
            }
        }
        for k in ["request_time", "time_to_first_token"] {
            guard let v = e[k], v != .null else { continue }
            guard let d = v.doubleValue, d.isFinite, d >= 0 else {
                throw SessionError("events[\(i)].\(k) must be a number of seconds ≥ 0, got \(v.serialized())")
            }
        }
    }

    /// The largest count a transcript may hold (far above any real session's token totals).
    static let maxCount = 1 << 53

    /// Replays the transcript into `session`: the last settings, the conversation since the last
    /// reset (successful turns only, as the live session keeps it), and the stats.
    public func restore(into session: Session) throws {
        guard let s = events.last(where: { $0["type"] == "settings" }),
            let provider = Provider(rawValue: s["provider"]?.stringValue ?? ""), let model = s["model"]?.stringValue,
            let lastMode = SessionMode(rawValue: s["mode"]?.stringValue ?? "")
        else { throw SessionError("no complete settings recorded (provider, model, mode)") }
        session.provider = provider
        session.model = model
        session.mode = lastMode
        session.system = s["system"]?.stringValue
        session.options = QueryOptions(s["options"]?.objectValue ?? JSONObject())
        if let f = s["function"], f != .null {
            session.functionSpec = try FunctionSpec(json: f)
            session.functionSpecSource = "the transcript"
        } else {
            session.functionSpec = nil
            session.functionSpecSource = nil
        }
        session.forcedCall = s["func_via"]?.stringValue.flatMap(ForcedCallStrategy.init(rawValue:)) ?? .auto
        session.replace(history: [], stats: SessionStats())
        var stats = SessionStats()
        var history: [ChatMessage] = []
        var mode = session.mode
        var lastInHistory = false
        for e in events {
            switch e["type"]?.stringValue {
            case "reset":
                history = []
                lastInHistory = false
            case "settings":
                mode = SessionMode(rawValue: e["mode"]?.stringValue ?? "chat") ?? .chat
            case "turn":
                let out = e["output"] ?? .null
                let retries = e["retries"]?.countValue ?? 0
                if e["retry"] == true, lastInHistory, let i = history.lastIndex(where: { $0.role == .user }) {
                    history.removeSubrange(i...)
                }
                lastInHistory = false
                let latency = e["request_time"]?.doubleValue
                let input = e["input_tokens"]?.countValue, output = e["output_tokens"]?.countValue
                if out["cancelled"] == true {
                    stats.record(TurnMetrics(latency: latency, timeToFirstToken: nil, inputTokens: input, outputTokens: output, retries: retries, cancelled: true))
                } else if out["error"] != nil {
                    stats.record(TurnMetrics(latency: latency, timeToFirstToken: nil, inputTokens: input, outputTokens: output, retries: retries, failed: true))
                } else {
                    stats.record(TurnMetrics(latency: latency, timeToFirstToken: e["time_to_first_token"]?.doubleValue, inputTokens: e["input_tokens"]?.countValue, outputTokens: e["output_tokens"]?.countValue, retries: retries))
                    guard mode == .chat, let prompt = e["prompt"]?.stringValue else { continue }
                    lastInHistory = true
                    history.append(.user(prompt))
                    if let t = out["text"]?.stringValue {
                        history.append(.assistant(t))
                    } else if let f = out["function"] {
                        let call = FunctionCall(id: f["id"]?.stringValue, name: f["name"]?.stringValue ?? "", arguments: f["arguments"] ?? [:], rawArguments: f["raw"]?.stringValue ?? "")
                        let via = e["info"]?["forced_via"]?.stringValue.flatMap(ForcedCallStrategy.init(rawValue:))
                        history += Session.functionCallMessages(call, index: history.count, via: via)
                    }
                }
            default: break
            }
        }
        session.replace(history: history, stats: stats)
    }
}
