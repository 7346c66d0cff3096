import Foundation
import QueryCore

/// One thing a transcript records, typed. This file is the one owner of the transcript's event
/// schema: the writer, `:compare`, the loader, restore and the Markdown export all go through
/// ``json`` and ``init(json:index:)`` (docs/transcript-format.md describes the same keys).
public enum TranscriptEvent: Equatable, Sendable {
    case settings(Settings)
    case turn(Turn)
    /// `:reset`: the conversation restarts after it.
    case reset(at: Date)
    case comparison(Comparison)
    /// `:undo`, `:fork`, `:switch`: the conversation changed without a request.
    case branch(BranchChange)

    /// A change to the conversation that sent nothing.
    public struct BranchChange: Equatable, Sendable {
        public enum Action: Equatable, Sendable {
            /// The last exchange was dropped.
            case undo
            /// The conversation so far went on as a new branch of this name.
            case fork(String)
            /// The conversation became this branch's.
            case switchTo(String)
        }
        public var at: Date
        public var action: Action

        public init(at: Date = Date(), action: Action) { (self.at, self.action) = (at, action) }
    }

    /// The settings in force from this point on.
    public struct Settings: Equatable, Sendable {
        public var at: Date
        public var provider: Provider
        public var model: String
        public var mode: SessionMode
        public var system: String?
        public var options: QueryOptions
        public var function: FunctionSpec?
        public var forcedCall: ForcedCallStrategy
        public var toolbox = Toolbox()
        public var vars: [String: String] = [:]

        /// Whether `other` holds the same settings, whenever each was recorded.
        func same(as other: Settings) -> Bool {
            var o = other
            o.at = at
            return o == self
        }
    }

    /// What a turn (or a `:compare` variant) came to.
    public enum Output: Equatable, Sendable {
        case text(String)
        case functionCall(FunctionCall)
        /// Calls of the offered tools (ids filled in by the session), and any text beside them.
        case toolCalls([FunctionCall], text: String)
        case error(String)
        case cancelled

        /// The tool calls made (empty for any other output).
        public var calls: [FunctionCall] { if case .toolCalls(let c, _) = self { return c } else { return [] } }
    }

    /// A turn's figures, as the server reported them and the clock measured them.
    public struct Figures: Equatable, Sendable {
        public var requestTime: Double?
        public var timeToFirstToken: Double?
        public var inputTokens: Int?
        public var outputTokens: Int?
        public var retries: Int

        public init(
            requestTime: Double?, timeToFirstToken: Double? = nil, inputTokens: Int?, outputTokens: Int?, retries: Int
        ) {
            (self.requestTime, self.timeToFirstToken) = (requestTime, timeToFirstToken)
            (self.inputTokens, self.outputTokens, self.retries) = (inputTokens, outputTokens, retries)
        }
    }

    /// The request a turn sent, as recorded: the whole body (version 1 files, and the first turn of
    /// a journal) or what changed since the previous turn's body (see ``RequestDelta``).
    public enum Request: Equatable, Sendable {
        case full(JSONValue)
        case delta(RequestDelta)
    }

    public struct Turn: Equatable, Sendable {
        public var at: Date
        /// The user's prompt; empty for a request that only carries tool results back.
        public var prompt: String
        /// Tool results this request carried, before the prompt (the previous reply's calls).
        public var toolResults: [ToolResult] = []
        /// The prompt as typed, when it was a template (`prompt` is what was sent).
        public var template: String?
        public var request: Request?
        /// This turn re-sent the previous prompt and replaced its exchange (`:retry`).
        public var retry: Bool
        public var output: Output
        public var figures: Figures
        /// Response facts (model, id, created, fingerprint, finish reason, usage, notes, how a call
        /// was forced); nil for a failed or cancelled turn.
        public var info: QueryInfo?
        /// The session's assertions checked against the output (`:assert`); nil when none were set.
        public var assertions: AssertionResult? = nil
    }

    /// `:compare`: one prompt, run once per variant.
    public struct Comparison: Equatable, Sendable {
        public var at: Date
        public var prompt: String
        public var variants: [Variant]

        public struct Variant: Equatable, Sendable {
            public var label: String
            public var model: String
            public var options: QueryOptions
            public var request: Request?
            public var output: Output
            public var figures: Figures
            public var cost: Double?

            public init(
                label: String, model: String, options: QueryOptions, request: Request?, output: Output,
                figures: Figures,
                cost: Double?
            ) {
                self.label = label
                self.model = model
                self.options = options
                self.request = request
                self.output = output
                self.figures = figures
                self.cost = cost
            }
        }

        public init(at: Date, prompt: String, variants: [Variant]) {
            self.at = at
            self.prompt = prompt
            self.variants = variants
        }
    }

    /// When it happened. A transcript keeps whole milliseconds (what its files hold).
    public var at: Date {
        get {
            switch self {
            case .settings(let s): return s.at
            case .turn(let t): return t.at
            case .reset(let at): return at
            case .branch(let b): return b.at
            case .comparison(let c): return c.at
            }
        }
        set {
            switch self {
            case .settings(let s): self = .settings(s.stamped(newValue))
            case .turn(let t): self = .turn(t.stamped(newValue))
            case .reset: self = .reset(at: newValue)
            case .branch(let b): self = .branch(b.stamped(newValue))
            case .comparison(let c): self = .comparison(c.stamped(newValue))
            }
        }
    }
}

// MARK: - Turns from query results

extension TranscriptEvent {
    /// How a turn ended, as the REPL saw it.
    public enum TurnOutcome {
        case success(QueryResult)
        /// `inputTokens`/`outputTokens`: what the server reported before the turn failed (a forced
        /// call it did not make, arguments that are not JSON…) — billed, so recorded.
        case failure(message: String, retries: Int, latency: Double?, inputTokens: Int? = nil, outputTokens: Int? = nil)
        case cancelled(retries: Int, latency: Double?, inputTokens: Int? = nil, outputTokens: Int? = nil)
    }
}

extension TranscriptEvent.Turn {
    /// The record of a turn that ended with `outcome` (its request is filled in by the transcript).
    public init(
        prompt: String, toolResults: [ToolResult] = [], outcome: TranscriptEvent.TurnOutcome, retry: Bool = false,
        at date: Date = Date()
    ) {
        let output: TranscriptEvent.Output
        let figures: TranscriptEvent.Figures
        var info: QueryInfo?
        switch outcome {
        case .success(let r):
            switch r.output {
            case .text(let t): output = .text(t)
            case .functionCall(let c): output = .functionCall(c)
            case .toolCalls(let calls, let text): output = .toolCalls(calls, text: text)
            }
            figures = .init(
                requestTime: r.requestTime, timeToFirstToken: r.timeToFirstToken, inputTokens: r.inputTokens,
                outputTokens: r.outputTokens, retries: r.retries)
            info = r.info
        case .failure(let message, let retries, let latency, let input, let out):
            output = .error(message)
            figures = .init(requestTime: latency, inputTokens: input, outputTokens: out, retries: retries)
        case .cancelled(let retries, let latency, let input, let out):
            output = .cancelled
            figures = .init(requestTime: latency, inputTokens: input, outputTokens: out, retries: retries)
        }
        self.init(
            at: date, prompt: prompt, toolResults: toolResults, template: nil, request: nil, retry: retry,
            output: output, figures: figures, info: info)
    }

    /// Whether the turn completed (text or a function call).
    public var succeeded: Bool {
        switch output {
        case .text, .functionCall, .toolCalls: return true
        case .error, .cancelled: return false
        }
    }
}

// MARK: - Encoding

extension TranscriptEvent {
    /// The event as one JSON object (one line of a version 2 journal).
    public var json: JSONValue {
        switch self {
        case .settings(let s): return .object(Self.encode(s))
        case .turn(let t): return .object(Self.encode(t))
        case .reset(let at): return ["type": "reset", "at": .string(TranscriptClock.iso(at))]
        case .branch(let b):
            let at = JSONValue.string(TranscriptClock.iso(b.at))
            switch b.action {
            case .undo: return ["type": "undo", "at": at]
            case .fork(let name): return ["type": "fork", "at": at, "name": .string(name)]
            case .switchTo(let name): return ["type": "switch", "at": at, "name": .string(name)]
            }
        case .comparison(let c):
            return [
                "type": "comparison", "at": .string(TranscriptClock.iso(c.at)), "prompt": .string(c.prompt),
                "variants": .array(c.variants.map { .object(Self.encode($0)) }),
            ]
        }
    }

    static func encode(_ s: Settings) -> JSONObject {
        var o: JSONObject = ["type": "settings", "at": .string(TranscriptClock.iso(s.at))]
        o["provider"] = .string(s.provider.rawValue)
        o["model"] = .string(s.model)
        o["mode"] = .string(s.mode.rawValue)
        o["system"] = s.system.map { .string($0) } ?? .null
        o["options"] = .object(s.options.values)
        o["function"] = s.function?.json ?? .null
        if s.forcedCall != .auto { o["func_via"] = .string(s.forcedCall.rawValue) }
        encode(s.toolbox, into: &o)
        if !s.vars.isEmpty {
            o["vars"] = .object(JSONObject(s.vars.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
        }
        return o
    }

    /// The toolbox's keys, each only when it is not the default (files before tools stay as they were).
    static func encode(_ t: Toolbox, into o: inout JSONObject) {
        if !t.tools.isEmpty { o["tools"] = .array(t.tools.map(\.json)) }
        if t.choice != .auto { o["tool_choice"] = .string(t.choice.description) }
        if let m = t.mock { o["mock"] = ["source": .string(m.source), "value": m.value] }
        if let s = t.schema { o["schema"] = s.json }
        if t.maxRounds != Toolbox.defaultMaxRounds { o["max_tool_rounds"] = .integer(Int64(t.maxRounds)) }
    }

    static func encode(_ r: ToolResult) -> JSONValue {
        var o: JSONObject = ["id": .string(r.callID), "name": .string(r.name), "content": .string(r.content)]
        if r.isError { o["is_error"] = true }
        o["source"] = .string(r.source.rawValue)
        return .object(o)
    }

    static func encode(_ t: Turn) -> JSONObject {
        var e: JSONObject = ["type": "turn", "at": .string(TranscriptClock.iso(t.at)), "prompt": .string(t.prompt)]
        if !t.toolResults.isEmpty { e["tool_results"] = .array(t.toolResults.map(encode)) }
        if let template = t.template { e["template"] = .string(template) }
        encode(t.request, into: &e)
        if t.retry { e["retry"] = true }
        e["output"] = encode(t.output, withCallID: true)
        if let info = t.info {
            e["finish_reason"] = info.finishReason.map { .string($0) } ?? .null
        }
        encode(t.figures, into: &e, explicitNulls: t.info != nil)
        if let info = t.info {
            e["usage"] = info.usage ?? .null
            var i: JSONObject = [:]
            i["id"] = info.id.map { .string($0) } ?? .null
            i["model"] = info.model.map { .string($0) } ?? .null
            i["created"] = info.created.map { .integer($0) } ?? .null
            i["system_fingerprint"] = info.systemFingerprint.map { .string($0) } ?? .null
            if !info.notes.isEmpty { i["notes"] = .array(info.notes.map { .string($0) }) }
            if let via = info.forcedCall { i["forced_via"] = .string(via.rawValue) }
            if let r = info.reasoning { i["reasoning"] = .string(r) }
            if !info.thinkingBlocks.isEmpty { i["thinking_blocks"] = .array(info.thinkingBlocks) }
            e["info"] = .object(i)
        }
        if let a = t.assertions { e["assertions"] = a.json }
        return e
    }

    static func encode(_ v: Comparison.Variant) -> JSONObject {
        var o: JSONObject = [
            "label": .string(v.label), "model": .string(v.model), "options": .object(v.options.values),
        ]
        encode(v.request, into: &o)
        o["output"] = encode(v.output, withCallID: false)
        encode(v.figures, into: &o, explicitNulls: true)
        o["cost"] = v.cost.map { .double($0) } ?? .null
        return o
    }

    static func encode(_ r: Request?, into o: inout JSONObject) {
        switch r {
        case .full(let body)?: o["request"] = body
        case .delta(let d)?: o["request_delta"] = d.json
        case nil: o["request"] = .null
        }
    }

    static func encode(_ output: Output, withCallID: Bool) -> JSONValue {
        switch output {
        case .text(let t): return ["text": .string(t)]
        case .functionCall(let c):
            var f: JSONObject = ["name": .string(c.name), "arguments": c.arguments, "raw": .string(c.rawArguments)]
            if withCallID { f["id"] = c.id.map { .string($0) } ?? .null }
            return ["function": .object(f)]
        case .toolCalls(let calls, let text):
            let list = calls.map { c -> JSONValue in
                [
                    "id": c.id.map { .string($0) } ?? .null, "name": .string(c.name), "arguments": c.arguments,
                    "raw": .string(c.rawArguments),
                ]
            }
            return ["tool_calls": .array(list), "text": .string(text)]
        case .error(let m): return ["error": .string(m)]
        case .cancelled: return ["cancelled": true]
        }
    }

    /// Figures: a completed turn writes every key (null when unknown); a failed one only what it knows.
    static func encode(_ f: Figures, into e: inout JSONObject, explicitNulls: Bool) {
        func put(_ k: String, _ v: JSONValue?) {
            if let v { e[k] = v } else if explicitNulls { e[k] = .null }
        }
        put("input_tokens", f.inputTokens.map { .integer(Int64($0)) })
        put("output_tokens", f.outputTokens.map { .integer(Int64($0)) })
        e["request_time"] = f.requestTime.map { .double($0) } ?? .null
        if explicitNulls { e["time_to_first_token"] = f.timeToFirstToken.map { .double($0) } ?? .null }
        e["retries"] = .integer(Int64(f.retries))
    }
}

// MARK: - Decoding

extension TranscriptEvent {
    /// Reads one event, checking everything a resumed session relies on.
    /// - Throws: ``SessionError`` naming `events[index]` and what is wrong.
    public init(json e: JSONValue, index i: Int) throws {
        guard let type = e["type"]?.stringValue else { throw SessionError("events[\(i)] has no \"type\"") }
        switch type {
        case "settings": self = .settings(try Self.decodeSettings(e, i))
        case "turn": self = .turn(try Self.decodeTurn(e, i))
        case "reset": self = .reset(at: try Self.date(e, i))
        case "undo": self = .branch(BranchChange(at: try Self.date(e, i), action: .undo))
        case "fork", "switch":
            guard let name = e["name"]?.stringValue, !name.isEmpty else {
                throw SessionError("events[\(i)] (\(type)) needs a branch \"name\"")
            }
            self = .branch(
                BranchChange(at: try Self.date(e, i), action: type == "fork" ? .fork(name) : .switchTo(name)))
        case "comparison":
            guard let prompt = e["prompt"]?.stringValue, let list = e["variants"]?.arrayValue else {
                throw SessionError("events[\(i)] (a comparison) needs \"prompt\" and \"variants\"")
            }
            let variants = try list.map { try Self.decodeVariant($0, i) }
            self = .comparison(Comparison(at: try Self.date(e, i), prompt: prompt, variants: variants))
        default:
            throw SessionError(
                "events[\(i)] has no known \"type\" (settings, turn, reset, comparison, undo, fork or switch)")
        }
    }

    static func date(_ e: JSONValue, _ i: Int) throws -> Date {
        guard let s = e["at"]?.stringValue, let d = TranscriptClock.parseISO(s) else {
            throw SessionError("events[\(i)].at is missing or not an ISO 8601 time")
        }
        return d
    }

    static func decodeSettings(_ e: JSONValue, _ i: Int) throws -> Settings {
        guard let provider = Provider(rawValue: e["provider"]?.stringValue ?? ""), let model = e["model"]?.stringValue,
            let mode = SessionMode(rawValue: e["mode"]?.stringValue ?? ""), let options = e["options"]?.objectValue
        else {
            throw SessionError("events[\(i)] (settings) needs provider, model, mode and options")
        }
        var function: FunctionSpec?
        if let f = e["function"], f != .null {
            do { function = try FunctionSpec(json: f) } catch { throw SessionError("events[\(i)].function: \(error)") }
        }
        let via = e["func_via"]?.stringValue.flatMap(ForcedCallStrategy.init(rawValue:)) ?? .auto
        return Settings(
            at: try date(e, i), provider: provider, model: model, mode: mode, system: e["system"]?.stringValue,
            options: QueryOptions(options), function: function, forcedCall: via,
            toolbox: try decodeToolbox(e, "events[\(i)]"),
            vars: (e["vars"]?.objectValue ?? [:]).reduce(into: [:]) {
                $0[$1.key] = $1.value.stringValue ?? $1.value.serialized()
            })
    }

    static func decodeToolbox(_ e: JSONValue, _ at: String) throws -> Toolbox {
        var t = Toolbox()
        do {
            t.tools = try (e["tools"]?.arrayValue ?? []).map { try FunctionSpec(json: $0) }
            if let s = e["schema"], s != .null { t.schema = try FunctionSpec(json: s) }
        } catch {
            throw SessionError("\(at): a tool or schema: \(error)")
        }
        if let c = e["tool_choice"]?.stringValue { t.choice = ToolChoice(c) }
        if let m = e["mock"], m != .null {
            t.mock = try ToolMock(m["value"] ?? .null, source: m["source"]?.stringValue ?? "the transcript")
        }
        if let r = e["max_tool_rounds"] {
            guard let n = r.countValue, n >= 1, n <= 1000 else {
                throw SessionError("\(at).max_tool_rounds must be a whole number from 1 to 1000")
            }
            t.maxRounds = n
        }
        return t
    }

    static func decodeToolResults(_ e: JSONValue, _ at: String) throws -> [ToolResult] {
        try (e["tool_results"]?.arrayValue ?? []).enumerated().map { k, r in
            guard let id = r["id"]?.stringValue, let name = r["name"]?.stringValue,
                let content = r["content"]?.stringValue,
                let source = ToolResult.Source(rawValue: r["source"]?.stringValue ?? "typed")
            else {
                throw SessionError("\(at).tool_results[\(k)] needs id, name and content")
            }
            return ToolResult(callID: id, name: name, content: content, isError: r["is_error"] == true, source: source)
        }
    }

    static func decodeTurn(_ e: JSONValue, _ i: Int) throws -> Turn {
        guard let prompt = e["prompt"]?.stringValue, let out = e["output"], case .object = out else {
            throw SessionError("events[\(i)] (a turn) needs \"prompt\" and \"output\"")
        }
        let output = try decodeOutput(out, "events[\(i)].output")
        var info: QueryInfo?
        switch output {
        case .text, .functionCall, .toolCalls: info = decodeInfo(e)
        case .error, .cancelled: break
        }
        return Turn(
            at: try date(e, i), prompt: prompt, toolResults: try decodeToolResults(e, "events[\(i)]"),
            template: e["template"]?.stringValue,
            request: try decodeRequest(e, "events[\(i)]"), retry: e["retry"] == true,
            output: output, figures: try decodeFigures(e, "events[\(i)]"), info: info,
            assertions: e["assertions"].flatMap(AssertionResult.init(json:)))
    }

    static func decodeVariant(_ v: JSONValue, _ i: Int) throws -> Comparison.Variant {
        let at = "events[\(i)].variants"
        guard let label = v["label"]?.stringValue, let model = v["model"]?.stringValue, let out = v["output"] else {
            throw SessionError("\(at): a variant needs \"label\", \"model\" and \"output\"")
        }
        var cost: Double?
        if let c = v["cost"], c != .null {
            guard let d = c.doubleValue, d.isFinite, d >= 0 else {
                throw SessionError("\(at): cost must be a number ≥ 0")
            }
            cost = d
        }
        return Comparison.Variant(
            label: label, model: model, options: QueryOptions(v["options"]?.objectValue ?? [:]),
            request: try decodeRequest(v, at), output: try decodeOutput(out, "\(at).output"),
            figures: try decodeFigures(v, at),
            cost: cost)
    }

    static func decodeOutput(_ out: JSONValue, _ at: String) throws -> Output {
        // A tool call output holds "text" too: read first.
        if let list = out["tool_calls"]?.arrayValue {
            let calls = try list.map { c -> FunctionCall in
                guard let name = c["name"]?.stringValue else {
                    throw SessionError("\(at).tool_calls: a call needs a name")
                }
                let args = c["arguments"] ?? .null
                return FunctionCall(
                    id: c["id"]?.stringValue, name: name, arguments: args,
                    rawArguments: c["raw"]?.stringValue ?? args.serialized())
            }
            return .toolCalls(calls, text: out["text"]?.stringValue ?? "")
        }
        if let t = out["text"]?.stringValue { return .text(t) }
        if let m = out["error"]?.stringValue { return .error(m) }
        if out["cancelled"] == true { return .cancelled }
        guard let f = out["function"], let name = f["name"]?.stringValue else {
            throw SessionError("\(at) must hold text, function, tool_calls, error or cancelled")
        }
        let args = f["arguments"] ?? [:]
        let raw = f["raw"]?.stringValue ?? args.serialized()
        return .functionCall(FunctionCall(id: f["id"]?.stringValue, name: name, arguments: args, rawArguments: raw))
    }

    static func decodeInfo(_ e: JSONValue) -> QueryInfo {
        var info = QueryInfo()
        let i = e["info"] ?? .null
        info.id = i["id"]?.stringValue
        info.model = i["model"]?.stringValue
        info.created = i["created"]?.int64Value
        info.systemFingerprint = i["system_fingerprint"]?.stringValue
        info.notes = (i["notes"]?.arrayValue ?? []).compactMap(\.stringValue)
        info.forcedCall = i["forced_via"]?.stringValue.flatMap(ForcedCallStrategy.init(rawValue:))
        info.reasoning = i["reasoning"]?.stringValue
        info.thinkingBlocks = i["thinking_blocks"]?.arrayValue ?? []
        info.finishReason = e["finish_reason"]?.stringValue
        if let u = e["usage"], u != .null { info.usage = u }
        return info
    }

    static func decodeRequest(_ e: JSONValue, _ at: String) throws -> Request? {
        if let d = e["request_delta"] {
            return .delta(try RequestDelta(json: d, at: "\(at).request_delta"))
        }
        guard let r = e["request"], r != .null else { return nil }
        return .full(r)
    }

    /// Figures must be what promptline writes: counts are whole numbers from 0 to ``maxCount``,
    /// times finite seconds ≥ 0. Anything else (a hand-edited `"retries": 9223372036854775807`,
    /// `"input_tokens": -3`) refuses the file instead of reaching the stats.
    static func decodeFigures(_ e: JSONValue, _ at: String) throws -> Figures {
        func count(_ k: String) throws -> Int? {
            guard let v = e[k], v != .null else { return nil }
            guard let n = v.countValue, n <= maxCount else {
                throw SessionError("\(at).\(k) must be a whole number from 0 to \(maxCount), got \(v.serialized())")
            }
            return n
        }
        func seconds(_ k: String) throws -> Double? {
            guard let v = e[k], v != .null else { return nil }
            guard let d = v.doubleValue, d.isFinite, d >= 0 else {
                throw SessionError("\(at).\(k) must be a number of seconds ≥ 0, got \(v.serialized())")
            }
            return d
        }
        return Figures(
            requestTime: try seconds("request_time"), timeToFirstToken: try seconds("time_to_first_token"),
            inputTokens: try count("input_tokens"), outputTokens: try count("output_tokens"),
            retries: try count("retries") ?? 0)
    }

    /// The largest count a transcript may hold (far above any real session's token totals).
    static let maxCount = 1 << 53
}

// MARK: - Redaction

extension TranscriptEvent {
    /// The same event with `f` applied to every text it holds (for keeping secrets out of files).
    func mapStrings(_ f: (String) -> String) -> TranscriptEvent {
        func output(_ o: Output) -> Output {
            switch o {
            case .text(let t): return .text(f(t))
            case .error(let m): return .error(f(m))
            case .cancelled: return .cancelled
            case .functionCall(let c): return .functionCall(call(c))
            case .toolCalls(let calls, let text): return .toolCalls(calls.map(call), text: f(text))
            }
        }
        func call(_ c: FunctionCall) -> FunctionCall {
            var c = c
            c.arguments = c.arguments.mapStrings(f)
            c.rawArguments = f(c.rawArguments)
            return c
        }
        func request(_ r: Request?) -> Request? {
            switch r {
            case .full(let b)?: return .full(b.mapStrings(f))
            case .delta(let d)?: return .delta(d.mapStrings(f))
            case nil: return nil
            }
        }
        switch self {
        case .settings(var s):
            s.system = s.system.map(f)
            s.options = QueryOptions(Self.map(s.options.values, f))
            s.vars = s.vars.mapValues(f)
            if let m = s.toolbox.mock { s.toolbox.mock?.value = m.value.mapStrings(f) }
            return .settings(s)
        case .turn(var t):
            t.prompt = f(t.prompt)
            t.template = t.template.map(f)
            for k in t.toolResults.indices { t.toolResults[k].content = f(t.toolResults[k].content) }
            t.output = output(t.output)
            t.request = request(t.request)
            if let usage = t.info?.usage { t.info?.usage = usage.mapStrings(f) }
            if let r = t.info?.reasoning { t.info?.reasoning = f(r) }
            return .turn(t)
        case .reset, .branch: return self
        case .comparison(var c):
            c.prompt = f(c.prompt)
            for k in c.variants.indices {
                c.variants[k].output = output(c.variants[k].output)
                c.variants[k].request = request(c.variants[k].request)
                c.variants[k].options = QueryOptions(Self.map(c.variants[k].options.values, f))
            }
            return .comparison(c)
        }
    }

    static func map(_ o: JSONObject, _ f: (String) -> String) -> JSONObject {
        JSONObject(o.map { ($0.key, $0.value.mapStrings(f)) })
    }
}

// MARK: - Request deltas

/// A request body written as what changed since the previous turn's: keys set or removed, and
/// for arrays (the conversation) how many leading elements stay and which follow. A chat
/// transcript then grows with each turn's new messages, not with the whole conversation again.
///
/// `{"keep": {"messages": 4}, "append": {"messages": [...]}, "set": {"max_tokens": 50}, "unset": ["seed"]}`
public struct RequestDelta: Equatable, Sendable {
    public var keep: [String: Int] = [:]
    public var append: JSONObject = [:]
    public var set: JSONObject = [:]
    public var unset: [String] = []

    public init() {}

    /// What turns `previous` into `body`.
    public init(from previous: JSONObject, to body: JSONObject) {
        for (k, v) in body {
            let old = previous[k]
            if old == v { continue }
            if case .array(let a)? = old, case .array(let b) = v {
                let p = Self.commonPrefix(a, b)
                keep[k] = p
                append[k] = .array(Array(b[p...]))
            } else {
                set[k] = v
            }
        }
        unset = previous.keys.filter { body[$0] == nil }
    }

    /// How many leading elements `a` and `b` share: the whole conversation is compared every
    /// turn, so without bounds checks or reference counting per element.
    static func commonPrefix(_ a: [JSONValue], _ b: [JSONValue]) -> Int {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                var p = 0
                let n = min(pa.count, pb.count)
                while p < n && pa[p] == pb[p] { p += 1 }
                return p
            }
        }
    }

    /// Makes `body` (the previous turn's) into the one this delta describes, in place: new keys
    /// after the old ones; an array kept in part is cut and extended without being copied.
    /// - Throws: ``SessionError`` when the delta does not fit `body` (a hand-edited file).
    public func apply(to body: inout JSONObject) throws {
        for (k, n) in keep {
            guard case .array(var a)? = body[k], n >= 0, n <= a.count, case .array(let tail)? = append[k] else {
                throw SessionError("request_delta keeps \(n) of \"\(k)\", which the previous request does not have")
            }
            body[k] = .null  // the array's only owner is now `a`: cut and extended in place
            a.removeSubrange(n...)
            a.append(contentsOf: tail)
            body[k] = .array(a)
        }
        for k in unset { body[k] = nil }
        for (k, v) in set { body[k] = v }
    }

    public var json: JSONValue {
        var o: JSONObject = [:]
        if !keep.isEmpty {
            o["keep"] = .object(JSONObject(keep.sorted { $0.key < $1.key }.map { ($0.key, .integer(Int64($0.value))) }))
        }
        if !append.isEmpty { o["append"] = .object(append) }
        if !set.isEmpty { o["set"] = .object(set) }
        if !unset.isEmpty { o["unset"] = .array(unset.map { .string($0) }) }
        return .object(o)
    }

    init(json: JSONValue, at: String) throws {
        guard case .object(let o) = json else { throw SessionError("\(at) must be an object") }
        for (k, v) in o["keep"]?.objectValue ?? [:] {
            guard let n = v.countValue, n <= TranscriptEvent.maxCount else {
                throw SessionError("\(at).keep.\(k) must be a count")
            }
            keep[k] = n
        }
        append = o["append"]?.objectValue ?? [:]
        set = o["set"]?.objectValue ?? [:]
        unset = (o["unset"]?.arrayValue ?? []).compactMap(\.stringValue)
        guard keep.keys.allSatisfy({ append[$0] != nil }) else {
            throw SessionError("\(at): every kept array needs its append")
        }
    }

    func mapStrings(_ f: (String) -> String) -> RequestDelta {
        var d = self
        d.append = TranscriptEvent.map(append, f)
        d.set = TranscriptEvent.map(set, f)
        return d
    }
}

/// An event's record with a time of its own.
protocol Timed {
    var at: Date { get set }
}

extension Timed {
    /// The same record at `date`.
    func stamped(_ date: Date) -> Self {
        var copy = self
        copy.at = date
        return copy
    }
}

extension TranscriptEvent.Settings: Timed {}
extension TranscriptEvent.Turn: Timed {}
extension TranscriptEvent.Comparison: Timed {}
extension TranscriptEvent.BranchChange: Timed {}
