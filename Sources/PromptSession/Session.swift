import Foundation
import QueryCore

/// A prompt-experimentation session: the settings every turn is sent with, the conversation so
/// far, and the totals. It knows nothing of terminals or HTTP; the executable feeds it lines and
/// query results.
public final class Session {
    public var provider: Provider
    public var model: String
    public var system: String?
    public var options: QueryOptions
    public var functionSpec: FunctionSpec?
    /// Where the spec was loaded from, for `:func`.
    public var functionSpecSource: String?
    public var mode: SessionMode
    /// How a forced function is requested from the server (`:func-via`, `--func-via`).
    public var forcedCall: ForcedCallStrategy = .auto
    /// The conversation so far (chat mode), without the system prompt.
    public private(set) var history: [ChatMessage] = []
    public var stats = SessionStats()
    /// Prices per million tokens, for the cost of each turn.
    public var prices = PriceTable.defaults
    /// The last prompt sent (for :retry), whatever came of it.
    public private(set) var lastPrompt: String?
    /// Whether the last turn's exchange is in the conversation (a failed one, or single mode, is not).
    public private(set) var lastTurnInHistory = false
    /// Models used in this session, for completion.
    public private(set) var modelsUsed: [String] = []

    public init(provider: Provider, model: String, system: String? = nil, options: QueryOptions = [:], functionSpec: FunctionSpec? = nil, mode: SessionMode = .chat) {
        self.provider = provider
        self.model = model
        self.system = system
        self.options = options
        self.functionSpec = functionSpec
        self.mode = mode
        modelsUsed = [model]
    }

    /// What a command asks of the caller beyond the message it prints.
    public enum Outcome: Equatable {
        case message(String)
        case quit
        case editor(String)
        case provider(Provider, String)
        case stats(String)
        /// A transcript command (:save, :load, :export, :sessions), which the caller carries out.
        case transcript(Command)
        /// Send this prompt again with the current settings, replacing the last exchange.
        case retry(String)
        /// Show the last request in this format.
        case request(RequestFormat)
        /// Run the prompt once per variant.
        case compare([Variant], String)
    }

    /// Applies a command to the session. A failed command changes nothing.
    /// - Throws: ``SessionError`` saying what was wrong and what to do.
    public func apply(_ command: Command) throws -> Outcome {
        switch command {
        case .help(let name):
            return .message(Self.helpText(name))
        case .showSystem:
            return .message(system.map { "system prompt (\($0.count) characters):\n\($0)" } ?? "no system prompt (:system <text> sets one)")
        case .setSystem(let text):
            system = text
            return .message("system prompt set (\(text.count) characters)")
        case .loadSystem(let path):
            let text = try Self.readText(path, what: "system prompt")
            system = text
            return .message("system prompt loaded from \(path) (\(text.count) characters)")
        case .clearSystem:
            system = nil
            return .message("system prompt cleared")
        case .showOptions:
            if options.keys.isEmpty { return .message("no options set (the server's defaults apply); :set <key> <value>") }
            let w = options.keys.map(\.count).max() ?? 0
            let lines = options.map { "  \($0.key.padding(toLength: w, withPad: " ", startingAt: 0))  \($0.value.serialized())\($0.value == .null ? "  (not sent)" : "")" }
            return .message(lines.joined(separator: "\n"))
        case .set(let key, let raw):
            let value = try OptionValues.parse(raw)
            let note = try OptionValues.check(key, value)
            if provider == .anthropic, let refused = Self.anthropicRefused(key) { throw SessionError(refused) }
            options[key] = value
            var msg = "\(key) = \(value.serialized())"
            if value == .null { msg += " (null: not sent)" }
            if let note { msg += " — note: \(note)" }
            return .message(msg)
        case .unset(let key):
            guard options[key] != nil else { throw SessionError("\(key) is not set; :set lists what is") }
            options[key] = nil
            return .message("\(key) unset")
        case .showModel:
            return .message("model \(model) (\(provider.rawValue))")
        case .setModel(let name):
            guard !name.contains(where: \.isWhitespace) else { throw SessionError("a model name has no spaces: \(name)") }
            model = name
            if !modelsUsed.contains(name) { modelsUsed.append(name) }
            let inferred = Provider.forModel(name)
            if name.lowercased().hasPrefix("claude-") && provider != .anthropic {
                return .provider(inferred, "model \(name); switching to the anthropic provider")
            }
            return .message("model \(name)")
        case .showFunction:
            guard let spec = functionSpec else { return .message("no function loaded (:func <file> loads one)") }
            return .message("function \(spec.name)\(functionSpecSource.map { " from \($0)" } ?? "") — forced on every turn\n\(spec.json.serialized(pretty: true))")
        case .loadFunction(let path):
            let spec: FunctionSpec
            do {
                spec = try FunctionSpec(contentsOf: Self.expand(path))
            } catch let e as FunctionSpecError {
                throw SessionError("\(e.description); the previous function \(functionSpec.map { "(\($0.name)) stays" } ?? "setting stays (none)")")
            }
            functionSpec = spec
            functionSpecSource = path
            return .message("function \(spec.name) loaded from \(path); every turn must call it (:func off to stop)")
        case .functionOff:
            guard let spec = functionSpec else { return .message("no function was loaded") }
            functionSpec = nil
            functionSpecSource = nil
            return .message("function \(spec.name) dropped; turns answer with text again")
        case .funcVia(let v):
            guard let v else { return .message("func-via \(forcedCall.rawValue)") }
            forcedCall = v
            return .message("func-via \(v.rawValue)" + (v == .auto ? " (json-schema on llama.cpp servers, tools elsewhere)" : ""))
        case .mode(let m):
            guard let m else { return .message("mode \(mode.rawValue)") }
            mode = m
            return .message("mode \(m.rawValue)" + (m == .single ? " (each turn sends only the system prompt and that prompt)" : " (turns carry the conversation)"))
        case .reset:
            let n = history.count
            history = []
            return .message("conversation cleared (\(n) messages); settings and stats stay")
        case .stats:
            return .stats(stats.report())
        case .provider(let name):
            guard let name else { return .message("provider \(provider.rawValue) (model \(model))") }
            guard let p = Provider(rawValue: name.lowercased()) else { throw SessionError("provider must be openai or anthropic, not \(name)") }
            if p == .anthropic, let bad = options.keys.first(where: { Self.anthropicRefused($0) != nil }) {
                throw SessionError("option \(bad) is OpenAI-only; :unset \(bad) before switching to anthropic")
            }
            return .provider(p, "provider \(p.rawValue)")
        case .editor(let mode):
            return .editor(mode)
        case .save, .export, .load, .sessions:
            return .transcript(command)
        case .retry:
            guard let p = lastPrompt else { throw SessionError("nothing to retry yet: send a prompt first") }
            return .retry(p)
        case .request(let format):
            return .request(format)
        case .compare(let axes, let prompt):
            guard let p = prompt ?? lastPrompt else { throw SessionError("nothing to compare yet: send a prompt, or give one after --") }
            return .compare(try variants(axes), p)
        case .quit:
            return .quit
        }
    }

    static func anthropicRefused(_ key: String) -> String? {
        let refused: Set<String> = ["presence_penalty", "frequency_penalty", "seed", "response_format", "logprobs", "top_logprobs", "n", "reasoning_effort", "parallel_tool_calls"]
        return refused.contains(key) ? "\(key) is OpenAI-only; the anthropic provider refuses it (:provider openai to use it)" : nil
    }

    /// The messages a turn with `prompt` sends.
    public func messages(for prompt: String) -> [ChatMessage] {
        var m: [ChatMessage] = []
        if let system, !system.isEmpty { m.append(.system(system)) }
        if mode == .chat { m += history }
        m.append(.user(prompt))
        return m
    }

    /// The options a turn sends, the model among them (AIDE's `model_kwargs`).
    public var queryOptions: QueryOptions {
        var o = options
        o["model"] = .string(model)
        return o
    }

    /// Records a completed turn: its metrics, and in chat mode the exchange.
    public func recordSuccess(prompt: String, result: QueryResult, schemaViolations: Int = 0) {
        var m = TurnMetrics(latency: result.requestTime, timeToFirstToken: result.timeToFirstToken, inputTokens: result.inputTokens, outputTokens: result.outputTokens, retries: result.retries)
        m.schemaViolations = schemaViolations
        m.cost = cost(of: result)
        stats.record(m)
        lastPrompt = prompt
        lastTurnInHistory = mode == .chat
        guard mode == .chat else { return }
        history.append(.user(prompt))
        switch result.output {
        case .text(let t):
            history.append(.assistant(t))
        case .functionCall(let call):
            history += Self.functionCallMessages(call, index: history.count, via: result.info.forcedCall)
        }
    }

    /// The messages that stand for a function call in the conversation. The call is shown, not
    /// run: the tool message says so, which keeps the history valid for both APIs (a tool call
    /// must be answered before the next user turn). A call forced through json-schema was, on the
    /// wire, the assistant's JSON text, and stays that: tool messages in a request without tools
    /// are not what was said (and they confuse a small model's next answer).
    public static func functionCallMessages(_ call: FunctionCall, index: Int, via: ForcedCallStrategy?) -> [ChatMessage] {
        if via == .jsonSchema { return [.assistant(call.rawArguments)] }
        var c = call
        if c.id == nil { c.id = "call_\(index)" }
        return [
            ChatMessage(role: .assistant, content: "", functionCall: c),
            ChatMessage(role: .tool, content: "not executed: promptline shows function calls without running them", toolCallID: c.id),
        ]
    }

    /// One combination of `:compare`: the label and the settings it runs with.
    public struct Variant: Equatable {
        public var label: String
        public var model: String
        public var options: QueryOptions
    }

    /// The combinations of `:compare` axes (at most 16), each value typed and checked as `:set` does.
    public func variants(_ axes: [CompareAxis]) throws -> [Variant] {
        var out = [Variant(label: "", model: model, options: queryOptions)]
        for axis in axes {
            var next: [Variant] = []
            for v in out {
                for raw in axis.values {
                    var w = v
                    if axis.key == "model" {
                        w.model = raw
                        w.options["model"] = .string(raw)
                    } else {
                        let value = try OptionValues.parse(raw)
                        _ = try OptionValues.check(axis.key, value)
                        w.options[axis.key] = value
                    }
                    w.label = (w.label.isEmpty ? "" : w.label + " ") + "\(axis.key)=\(raw)"
                    next.append(w)
                }
            }
            out = next
            if out.count > 16 { throw SessionError(":compare makes \(out.count) combinations; 16 at most") }
        }
        return out
    }

    /// The messages for re-running `prompt`: when it is the last exchange, that exchange is left
    /// out (as :retry would), so every variant sees the same conversation before it.
    public func messages(rerunning prompt: String) -> [ChatMessage] {
        var m = messages(for: prompt)
        if lastTurnInHistory, prompt == lastPrompt, mode == .chat, let i = history.lastIndex(where: { $0.role == .user }) {
            let drop = history.count - i
            m.removeSubrange((m.count - 1 - drop)..<(m.count - 1))
        }
        return m
    }

    /// Removes the last exchange from the conversation (for :retry): the last user message and
    /// everything after it. Returns whether there was one.
    @discardableResult
    public func dropLastExchange() -> Bool {
        guard lastTurnInHistory, let i = history.lastIndex(where: { $0.role == .user }) else { return false }
        history.removeSubrange(i...)
        lastTurnInHistory = false
        return true
    }

    /// Takes over everything another session holds (a transcript restored into a scratch session
    /// is adopted only once it restored completely, so a bad file leaves this one untouched).
    public func adopt(_ other: Session) {
        provider = other.provider
        model = other.model
        system = other.system
        options = other.options
        functionSpec = other.functionSpec
        functionSpecSource = other.functionSpecSource
        forcedCall = other.forcedCall
        mode = other.mode
        history = other.history
        stats = other.stats
        for m in other.modelsUsed where !modelsUsed.contains(m) { modelsUsed.append(m) }
    }

    /// Replaces the conversation and the totals (when a transcript is loaded).
    public func replace(history: [ChatMessage], stats: SessionStats) {
        self.history = history
        self.stats = stats
        if !modelsUsed.contains(model) { modelsUsed.append(model) }
    }

    /// What a result cost at the current model's price (the response's model name as a fallback).
    public func cost(of result: QueryResult) -> Double? {
        prices.cost(model: model, inputTokens: result.inputTokens, outputTokens: result.outputTokens)
            ?? result.info.model.flatMap { prices.cost(model: $0, inputTokens: result.inputTokens, outputTokens: result.outputTokens) }
    }

    /// Records a failed or cancelled turn: counted, but not added to the conversation.
    /// Tokens the server reported before the turn failed or was cancelled count, and cost, too.
    public func recordFailure(prompt: String? = nil, retries: Int, latency: Double?, cancelled: Bool, inputTokens: Int? = nil, outputTokens: Int? = nil) {
        if let prompt { lastPrompt = prompt }
        lastTurnInHistory = false
        var m = TurnMetrics(latency: latency, timeToFirstToken: nil, inputTokens: inputTokens, outputTokens: outputTokens, retries: retries, failed: !cancelled, cancelled: cancelled)
        m.cost = prices.cost(model: model, inputTokens: inputTokens, outputTokens: outputTokens)
        stats.record(m)
    }

    public static func helpText(_ name: String?) -> String {
        if let name {
            guard let h = CommandParser.help.first(where: { $0.name == name || (name == "exit" && $0.name == "quit") }) else {
                return "no command :\(name); :help lists them"
            }
            return "\(h.usage)\n  \(h.summary)\n  example: \(h.example)"
        }
        let w = CommandParser.help.map(\.usage.count).max() ?? 0
        var lines = CommandParser.help.map { "  \($0.usage.padding(toLength: w, withPad: " ", startingAt: 0))  \($0.summary)   e.g. \($0.example)" }
        lines.append("A plain line is a prompt. \"\"\" on its own line starts and ends a multi-line prompt. ::text sends \":text\".")
        lines.append("Ctrl-C cancels a turn in flight; at the prompt, Ctrl-C twice or Ctrl-D leaves.")
        return lines.joined(separator: "\n")
    }

    public static func expand(_ path: String) -> String {
        if path == "~" || path.hasPrefix("~/") { return NSHomeDirectory() + path.dropFirst() }
        return path
    }

    static func readText(_ path: String, what: String) throws -> String {
        let p = expand(path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else { throw SessionError("\(what) file \(path): no such file") }
        guard !isDir.boolValue else { throw SessionError("\(what) file \(path) is a folder") }
        guard let data = FileManager.default.contents(atPath: p) else { throw SessionError("\(what) file \(path) cannot be read (permissions?)") }
        guard let text = String(data: data, encoding: .utf8) else { throw SessionError("\(what) file \(path) is not UTF-8 text") }
        var t = text
        while t.hasSuffix("\n") { t.removeLast() }
        return t
    }
}
