import Foundation
import QueryCore

/// A session's record: every settings change and every turn with the request sent, in order.
/// Written as an append-only journal (version 2, one JSON line per event; see
/// docs/transcript-format.md); version 1 files (one JSON object) still load. Never holds an API key.
public struct Transcript: Equatable, Sendable {
    public static let format = "promptline-transcript"
    public static let version = 2

    public var id: String
    public var created: Date
    public var updated: Date
    public var provider: String
    public var baseURL: String
    public var model: String
    /// Settings changes and turns, in the order they happened.
    public private(set) var events: [TranscriptEvent] = []
    /// Texts replaced by "[redacted]" wherever they would be recorded (the API keys in use: a
    /// key pasted into a prompt by mistake must not reach a file). Not saved.
    public var secrets: [String] = []
    /// What loading the file noticed without refusing it (a torn last line).
    public var loadNotes: [String] = []
    /// Whether the file this came from was a version 1 file or had a torn last line: the journal
    /// must then be written anew before anything is appended to it.
    public var needsRewrite = false
    /// The whole body of the last turn's request, for the next turn's delta.
    private var lastRequestBody: JSONObject?

    public init(
        id: String = Transcript.newID(), created: Date = Date(), provider: String, baseURL: String, model: String
    ) {
        self.id = id
        self.created = TranscriptClock.wholeMilliseconds(created)
        self.updated = self.created
        self.provider = provider
        self.baseURL = baseURL
        self.model = model
    }

    /// Whether `id` is safe in a file name: 1–64 ASCII letters, digits, `-` or `_` (an id is
    /// part of the autosave path, so `x/../../y` must never be one).
    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64
            && id.unicodeScalars.allSatisfy {
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_")
            }
    }

    public static func newID() -> String {
        String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(8))
    }

    public var turnCount: Int {
        events.reduce(0) {
            if case .turn = $1 { return $0 + 1 }
            return $0
        }
    }

    public var firstPrompt: String? {
        for case .turn(let t) in events { return t.prompt }
        return nil
    }

    /// Records the session's settings if they differ from the last recorded ones.
    public mutating func noteSettings(_ s: Session, at date: Date = Date()) {
        let record = s.settingsRecord(at: date)
        // Compared as it would be kept (redacted): a setting holding a key is not "changed" each time.
        guard case .settings(let current) = Self.redacted(.settings(record), Redactor(secrets)) else { return }
        for case .settings(let last) in events.reversed() {
            if last.same(as: current) { return }
            break
        }
        append(.settings(record))
        model = s.model
        provider = s.provider.rawValue
    }

    /// Records a turn with the body it sent: written as what changed since the previous turn's.
    public mutating func noteTurn(_ turn: TranscriptEvent.Turn, requestBody: JSONValue?) {
        var t = turn
        t.request = recordRequest(requestBody)
        append(.turn(t))
    }

    /// Records a turn from its outcome (see ``TranscriptEvent/Turn/init(prompt:outcome:retry:at:)``).
    @discardableResult
    public mutating func noteTurn(
        prompt: String, request: JSONValue?, outcome: TurnOutcome, retry: Bool = false, at date: Date = Date()
    ) -> TranscriptEvent.Turn {
        let turn = TranscriptEvent.Turn(prompt: prompt, outcome: outcome, retry: retry, at: date)
        noteTurn(turn, requestBody: request)
        return turn
    }

    /// Records a `:compare`: each variant's request is written as what changed since the last turn's.
    public mutating func noteComparison(_ c: TranscriptEvent.Comparison, requestBodies: [JSONValue?]) {
        var c = c
        for i in c.variants.indices where i < requestBodies.count {
            c.variants[i].request = requestBodies[i].map { delta(from: lastRequestBody, to: $0) }
        }
        append(.comparison(c))
    }

    /// Records `:reset` (the conversation restarts after it).
    public mutating func noteReset(at date: Date = Date()) {
        append(.reset(at: date))
    }

    /// Records `:undo`, `:fork` or `:switch`.
    public mutating func noteBranch(_ action: TranscriptEvent.BranchChange.Action, at date: Date = Date()) {
        append(.branch(TranscriptEvent.BranchChange(at: date, action: action)))
    }

    public typealias TurnOutcome = TranscriptEvent.TurnOutcome

    private mutating func recordRequest(_ body: JSONValue?) -> TranscriptEvent.Request? {
        guard let body else { return nil }
        let r = delta(from: lastRequestBody, to: body)
        lastRequestBody = body.objectValue
        return r
    }

    private func delta(from previous: JSONObject?, to body: JSONValue) -> TranscriptEvent.Request {
        guard let previous, let o = body.objectValue else { return .full(body) }
        return .delta(RequestDelta(from: previous, to: o))
    }

    private mutating func append(_ event: TranscriptEvent) {
        var e = Self.redacted(event, Redactor(secrets))
        e.at = TranscriptClock.wholeMilliseconds(e.at)
        events.append(e)
        updated = e.at
    }

    /// `event` with every string of its encoded form redacted (every field, at any depth: what the
    /// file holds is what is kept). An event whose redacted form does not decode again (a
    /// redaction inside a checked field) keeps the field-by-field redaction; the file is redacted
    /// again as it is written either way.
    static func redacted(_ event: TranscriptEvent, _ redactor: Redactor) -> TranscriptEvent {
        guard !redactor.isEmpty else { return event }
        let json = event.json
        let clean = redactor.redact(json)
        if clean == json { return event }
        return (try? TranscriptEvent(json: clean, index: 0)) ?? event.mapStrings(redactor.redact)
    }

    /// The whole body of every turn's request, in order (nil where none was recorded), rebuilt
    /// from the deltas.
    /// - Throws: ``SessionError`` when a delta does not fit the request before it.
    public func requestBodies() throws -> [JSONValue?] {
        var last: JSONObject?
        var out: [JSONValue?] = []
        for case .turn(let t) in events {
            try Self.resolve(t.request, into: &last)
            out.append(t.request == nil ? nil : last.map(JSONValue.object))
        }
        return out
    }

    /// Makes `last` (the previous turn's whole request) into this one's; no request leaves it.
    static func resolve(_ r: TranscriptEvent.Request?, into last: inout JSONObject?) throws {
        switch r {
        case .full(let body)?:
            last = body.objectValue
        case .delta(let d)?:
            guard var body = last else { throw SessionError("a request_delta comes before any whole request") }
            last = nil  // `body` is the only owner while it changes
            try d.apply(to: &body)
            last = body
        case nil:
            break
        }
    }

    /// Replays the transcript into `session`: the settings, the conversation since the last
    /// reset (as the live session kept it) and the stats, through the session's own rules.
    /// - Throws: ``SessionError`` when no settings were recorded.
    public func restore(into session: Session) throws {
        guard events.contains(where: { if case .settings = $0 { return true } else { return false } }) else {
            throw SessionError("no complete settings recorded (provider, model, mode)")
        }
        session.restart()
        for e in events { try session.replay(e) }
    }
}

// MARK: - Files

extension Transcript {
    /// The journal's first line: what the file is and whose session it holds.
    public var header: JSONValue {
        [
            "format": .string(Self.format), "version": .integer(Int64(Self.version)),
            "tool": ["name": "promptline", "version": .string(PromptlineVersion.current)],
            "id": .string(id), "created": .string(TranscriptClock.iso(created)),
            "provider": .string(provider), "base_url": .string(Redactor.url(baseURL)), "model": .string(model),
        ]
    }

    /// One line of the journal: the event encoded, every string in it redacted.
    func line(_ e: TranscriptEvent) -> [UInt8] {
        Redactor(secrets).line(e.json)
    }

    /// The whole journal: the header and every event, a line each.
    public func journalBytes() -> [UInt8] {
        let redactor = Redactor(secrets)
        var out = redactor.line(header)
        for e in events { out += redactor.line(e.json) }
        return out
    }

    /// Reads a transcript: a version 2 journal, or a version 1 file.
    /// - Throws: ``SessionError`` naming the problem.
    public static func parse(_ bytes: [UInt8]) throws -> Transcript {
        guard !bytes.isEmpty else { throw SessionError("the file is empty") }
        let firstEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        if let head = try? JSONValue.parse(Array(bytes[..<firstEnd])), head["format"] == .string(format),
            head["version"] == 2
        {
            return try parseJournal(bytes, header: head)
        }
        let v: JSONValue
        do {
            v = try JSONValue.parse(bytes)
        } catch {
            throw SessionError("not JSON (\(error)) — truncated or not a transcript")
        }
        return try parseVersion1(v)
    }

    static func header(_ v: JSONValue) throws -> Transcript {
        guard v["format"] == .string(format) else {
            throw SessionError("not a promptline transcript (no \"format\": \"\(format)\")")
        }
        guard let ver = v["version"]?.intValue else { throw SessionError("no version number") }
        guard ver == 1 || ver == version else {
            throw SessionError(
                "transcript version \(ver) is not supported (this promptline reads versions 1 and \(version))")
        }
        func str(_ k: String) throws -> String {
            guard let s = v[k]?.stringValue else { throw SessionError("\"\(k)\" is missing or not a string") }
            return s
        }
        guard let created = TranscriptClock.parseISO(try str("created")) else {
            throw SessionError("\"created\" is not an ISO 8601 time")
        }
        let t = Transcript(
            id: try str("id"), created: created, provider: try str("provider"), baseURL: try str("base_url"),
            model: try str("model"))
        guard isValidID(t.id) else { throw SessionError("\"id\" must be 1–64 letters, digits, - or _") }
        return t
    }

    static func parseVersion1(_ v: JSONValue) throws -> Transcript {
        var t = try header(v)
        guard let updated = v["updated"]?.stringValue.flatMap(TranscriptClock.parseISO) else {
            throw SessionError("\"updated\" is not an ISO 8601 time")
        }
        guard let list = v["events"]?.arrayValue else { throw SessionError("\"events\" is missing or not an array") }
        for (i, e) in list.enumerated() { try t.adopt(TranscriptEvent(json: e, index: i)) }
        t.updated = max(updated, t.updated)
        t.needsRewrite = true
        return t
    }

    /// A journal: the header line, then an event a line. A last line cut short (a crash while it
    /// was written: it has no newline and is not JSON) is left out with a note; any other bad
    /// line refuses the file.
    static func parseJournal(_ bytes: [UInt8], header head: JSONValue) throws -> Transcript {
        var t = try header(head)
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let endsWithNewline = bytes.last == UInt8(ascii: "\n")
        for (n, raw) in lines.enumerated().dropFirst() where !raw.isEmpty {
            let isLast = n == lines.count - 1
            let value: JSONValue
            do {
                value = try JSONValue.parse(Array(raw))
            } catch {
                if isLast && !endsWithNewline {
                    t.loadNotes.append(
                        "its last line (\(counted(raw.count, "byte"))) was cut short, likely by a crash, and is left out"
                    )
                    t.needsRewrite = true
                    break
                }
                throw SessionError("line \(n + 1) is not JSON (\(error))")
            }
            try t.adopt(TranscriptEvent(json: value, index: n - 1))
        }
        return t
    }

    /// Appends an event read from a file, keeping the running request body for later deltas.
    private mutating func adopt(_ e: TranscriptEvent) throws {
        if case .turn(let turn) = e { try Self.resolve(turn.request, into: &lastRequestBody) }
        if case .settings(let s) = e {
            model = s.model
            provider = s.provider.rawValue
        }
        events.append(e)
        updated = e.at
    }
}
