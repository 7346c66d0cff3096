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
    /// Tools, tool choice, mock, output schema and the tool-round limit.
    public var toolbox = Toolbox()
    /// Template variables (`:var`): `{{name}}` in prompts and the system prompt.
    public var vars: [String: String] = [:]
    /// `:assert`: checked against every turn's output and every `:batch` row's.
    public var assertions: [Assertion] = []
    /// `:assert threshold`: a row passes when its weighted score reaches it (else: all must pass).
    public var assertThreshold: Double?
    /// `:grader`: the model (and provider) that grades model-graded assertions; nil: the session's.
    public var graderModel: String?
    public var graderProvider: Provider?
    /// What grading this session's turns cost, counted apart from the turns.
    public let graderUsage = GraderUsage()
    /// The last prompt as typed (its template, when it had placeholders), for :retry, :compare
    /// and :batch — also one that could not be sent for a variable not set (a row sets it).
    public internal(set) var lastTemplate: String?
    /// The conversation so far (chat mode), without the system prompt.
    public private(set) var history: [ChatMessage] = []
    /// The last reply's tool calls, ids filled in, while no results have gone back for them.
    public private(set) var pendingCalls: [FunctionCall] = []
    /// Single mode: the turn in progress (prompt, calls, results), which its next request carries.
    private var roundMessages: [ChatMessage] = []
    /// The conversation's current branch (`:fork`, `:switch`), and the others, put aside.
    public private(set) var branchName = "main"
    var stashed: [String: Branch] = [:]
    /// How many results the mock gave so far, per tool (or "" for a list mock).
    var mockUses: [String: Int] = [:]
    public var stats = SessionStats()
    /// Prices per million tokens, for the cost of each turn.
    public var prices = PriceTable.defaults
    /// The last prompt sent (for :retry), whatever came of it.
    public private(set) var lastPrompt: String?
    /// Whether the last turn's exchange is in the conversation (a failed one, or single mode, is not).
    public private(set) var lastTurnInHistory = false
    /// Models used in this session, for completion.
    public private(set) var modelsUsed: [String] = []
    /// The provider a `claude-*` `:model` switched away from: a later `:model` that is not a
    /// Claude model goes back to it (an explicit `:provider` forgets it).
    var providerBeforeClaude: Provider?

    public init(
        provider: Provider, model: String, system: String? = nil, options: QueryOptions = [:],
        functionSpec: FunctionSpec? = nil, mode: SessionMode = .chat
    ) {
        self.provider = provider
        self.model = model
        self.system = system
        self.options = options
        self.functionSpec = functionSpec
        self.mode = mode
        modelsUsed = [model]
    }

    /// Called before the session switches provider (`:provider`, a `claude-*` `:model`, a restored
    /// transcript): the app makes the client for it, or throws to refuse the switch. What it
    /// returns is added to the command's message (e.g. the new base URL).
    public var willSwitchProvider: (Provider) throws -> String? = { _ in nil }

    /// Applies a command to the session and says what it did. A failed command changes nothing.
    /// - Throws: ``SessionError`` saying what was wrong and what to do.
    public func apply(_ command: Command) throws -> String {
        switch command {
        case .help(let name): return Self.helpText(name)
        case .showSystem, .setSystem, .loadSystem, .clearSystem: return try applySystem(command)
        case .showOptions, .set, .unset: return try applyOption(command)
        case .showFunction, .loadFunction, .functionOff, .funcVia: return try applyFunction(command)
        case .showTools, .loadTools, .removeTool, .toolsOff, .choice: return try applyTools(command)
        case .showMock, .loadMock, .mockOff, .showSchema, .loadSchema, .schemaOff: return try applyMockOrSchema(command)
        case .vars, .setVar, .removeVar: return try applyVars(command)
        case .undo, .fork, .branches, .switchBranch: return try applyBranch(command)
        case .addAssertion, .asserts, .removeAssertion, .assertThreshold: return try applyAssertion(command)
        case .grader(let words): return try applyGrader(words)
        case .showModel: return "model \(model) (\(provider.rawValue))"
        case .setModel(let name): return try setModel(name)
        case .mode(let m):
            guard let m else { return "mode \(mode.rawValue)" }
            mode = m
            return "mode \(m.rawValue)"
                + (m == .single
                    ? " (each turn sends only the system prompt and that prompt)" : " (turns carry the conversation)")
        case .reset:
            let n = history.count
            clearConversation()
            return "conversation cleared (\(counted(n, "message"))); settings and stats stay"
        case .stats:
            let grading =
                graderUsage.current.requests > 0 ? "\n" + graderUsage.line + " (not in the figures above)" : ""
            return stats.report() + grading
        case .provider(let name):
            guard let name else { return "provider \(provider.rawValue) (model \(model))" }
            guard let p = Provider(rawValue: name.lowercased()) else {
                throw SessionError("provider must be openai, openai-responses or anthropic, not \(name)")
            }
            let message = try switchProvider(to: p, saying: "provider \(p.rawValue)")
            providerBeforeClaude = nil
            return message
        }
    }

    func applySystem(_ command: Command) throws -> String {
        switch command {
        case .setSystem(let text):
            system = text
            return "system prompt set (\(counted(text.count, "character")))"
        case .loadSystem(let path):
            let text = try Self.readText(path, what: "system prompt")
            system = text
            return "system prompt loaded from \(path) (\(counted(text.count, "character")))"
        case .clearSystem:
            system = nil
            return "system prompt cleared"
        default:
            return system.map { "system prompt (\(counted($0.count, "character"))):\n\($0)" }
                ?? "no system prompt (:system <text> sets one)"
        }
    }

    func applyOption(_ command: Command) throws -> String {
        switch command {
        case .set(let key, let raw) where key == "max_tool_rounds":
            return try setMaxRounds(raw)
        case .unset(let key) where key == "max_tool_rounds":
            toolbox.maxRounds = Toolbox.defaultMaxRounds
            return "max_tool_rounds back to \(Toolbox.defaultMaxRounds)"
        case .set(let key, let raw):
            let value = try OptionValues.parse(raw)
            let note = try OptionValues.check(key, value)
            if let refused = provider.refusalReason(option: key) {
                throw SessionError("\(refused) (:provider openai to use it)")
            }
            options[key] = value
            var msg = "\(key) = \(value.serialized())"
            if value == .null { msg += " (null: not sent)" }
            if let note { msg += " — note: \(note)" }
            return msg
        case .unset(let key):
            guard options[key] != nil else { throw SessionError("\(key) is not set; :set lists what is") }
            options[key] = nil
            return "\(key) unset"
        default:
            let rounds =
                toolbox.maxRounds == Toolbox.defaultMaxRounds
                ? "" : "\n  max_tool_rounds  \(toolbox.maxRounds)  (session setting, not sent)"
            if options.keys.isEmpty {
                return "no options set (the server's defaults apply); :set <key> <value>" + rounds
            }
            let w = options.keys.map(\.count).max() ?? 0
            return options.map {
                let key = $0.key.padding(toLength: w, withPad: " ", startingAt: 0)
                return "  \(key)  \($0.value.serialized())\($0.value == .null ? "  (not sent)" : "")"
            }.joined(separator: "\n") + rounds
        }
    }

    func applyFunction(_ command: Command) throws -> String {
        switch command {
        case .loadFunction(let path):
            let spec: FunctionSpec
            do {
                spec = try FunctionSpec(contentsOf: Self.expand(path))
            } catch let e as FunctionSpecError {
                let stays = functionSpec.map { "(\($0.name)) stays" } ?? "setting stays (none)"
                throw SessionError("\(e.description); the previous function \(stays)")
            }
            functionSpec = spec
            functionSpecSource = path
            return "function \(spec.name) loaded from \(path); every turn must call it (:func off to stop)"
        case .functionOff:
            guard let spec = functionSpec else { return "no function was loaded" }
            functionSpec = nil
            functionSpecSource = nil
            let tools = toolbox.tools.count
            return "function \(spec.name) dropped; "
                + (tools == 0
                    ? "turns answer with text again" : "the \(tools) tool\(tools == 1 ? " is" : "s are") offered again")
        case .funcVia(let v):
            guard let v else { return "func-via \(forcedCall.rawValue)" }
            forcedCall = v
            return "func-via \(v.rawValue)" + (v == .auto ? " (json-schema on llama.cpp servers, tools elsewhere)" : "")
        default:
            guard let spec = functionSpec else { return "no function loaded (:func <file> loads one)" }
            let source = functionSpecSource.map { " from \($0)" } ?? ""
            return "function \(spec.name)\(source) — forced on every turn\n\(spec.json.serialized(pretty: true))"
        }
    }

    /// The one rule for a model name, wherever it comes from (`:model`, `--model`, the config).
    /// - Throws: ``SessionError`` saying what is wrong with it.
    public static func checkModelName(_ name: String) throws {
        guard !name.isEmpty else { throw SessionError("a model name cannot be empty") }
        guard !name.contains(where: \.isWhitespace) else { throw SessionError("a model name has no spaces: \(name)") }
    }

    func setModel(_ name: String) throws -> String {
        try Self.checkModelName(name)
        var message = "model \(name)"
        if name.lowercased().hasPrefix("claude-") && provider != .anthropic {
            let before = provider
            message = try switchProvider(to: .anthropic, saying: "model \(name); switching to the anthropic provider")
            providerBeforeClaude = before
        } else if !name.lowercased().hasPrefix("claude-"), provider == .anthropic, let back = providerBeforeClaude {
            message = try switchProvider(
                to: back, saying: "model \(name); switching back to the \(back.rawValue) provider")
            providerBeforeClaude = nil
        }
        model = name
        if !modelsUsed.contains(name) { modelsUsed.append(name) }
        return message
    }

    /// The one way the provider changes: options the new one refuses stop it, and the app gets
    /// to make its client first (``willSwitchProvider``).
    func switchProvider(to p: Provider, saying message: String) throws -> String {
        if let bad = options.keys.first(where: { p.refusalReason(option: $0) != nil }) {
            throw SessionError("option \(bad) is OpenAI-only; :unset \(bad) before switching to \(p.rawValue)")
        }
        let note = p == provider ? nil : try willSwitchProvider(p)
        provider = p
        return message + (note.map { " — \($0)" } ?? "")
    }

    /// The messages a turn with `prompt` sends (calls still unanswered get error results first).
    public func messages(for prompt: String) -> [ChatMessage] {
        messages(prompt: prompt, results: closingResults())
    }

    /// The messages a request sends: the conversation, the tool `results` going back, then
    /// `prompt` (empty for a request that only carries results; in single mode such a request
    /// carries the turn so far).
    public func messages(prompt: String, results: [ToolResult]) -> [ChatMessage] {
        messages(system: (try? filledSystem()) ?? system, prompt: prompt, results: results)
    }

    func messages(system: String?, prompt: String, results: [ToolResult]) -> [ChatMessage] {
        var m: [ChatMessage] = []
        if let system, !system.isEmpty { m.append(.system(system)) }
        if mode == .chat { m += history } else if prompt.isEmpty { m += roundMessages }
        m += results.map(\.message)
        if !prompt.isEmpty { m.append(.user(prompt)) }
        return m
    }

    /// Error results for the calls still unanswered when a new prompt is sent (chat mode: the
    /// conversation must answer every call before it goes on).
    public func closingResults() -> [ToolResult] {
        mode == .chat ? pendingCalls.map(ToolResult.ended) : []
    }

    /// The request for `prompt` and `results` as `client` builds it, with the session's function,
    /// tools and output schema. `continuing`: a request that carries tool results back goes with
    /// `tool_choice` auto (a forced tool would otherwise be called again and again).
    public func request(
        prompt: String, results: [ToolResult], continuing: Bool = false, client: QueryClient, stream: Bool
    ) throws -> QueryRequest {
        try checkResults(results)
        var r = try client.makeRequest(
            messages: messages(system: try filledSystem(), prompt: prompt, results: results),
            functionSpec: functionSpec, options: queryOptions, stream: stream)
        if functionSpec == nil {
            r.tools = toolbox.tools
            r.toolChoice = toolbox.tools.isEmpty ? nil : continuing ? .auto : toolbox.choice
            r.outputSchema = toolbox.schema
        }
        return r
    }

    /// Results must answer the pending calls: each exactly once, and no other id (a result with
    /// a wrong `tool_call_id` is never sent: the API would refuse the request, or worse, not).
    /// - Throws: ``SessionError`` naming the id at fault.
    public func checkResults(_ results: [ToolResult]) throws {
        guard !results.isEmpty else { return }
        let pending = pendingCalls.compactMap(\.id)
        for r in results where !pending.contains(r.callID) {
            throw SessionError(
                "a result answers \(r.callID.isEmpty ? "a call without an id" : r.callID), which no pending call has")
        }
        for id in pending where results.filter({ $0.callID == id }).count != 1 {
            throw SessionError("call \(id) needs exactly one result")
        }
    }

    /// The mock's answer to `call`, or nil (no mock, or none for this call). `given`: results
    /// already made for the same reply, counted as uses.
    public func mockAnswer(_ call: FunctionCall, given: [ToolResult] = []) -> (content: String, missing: [String])? {
        guard let mock = toolbox.mock else { return nil }
        let key = mock.counter(for: call.name)
        let earlier = given.filter { $0.source == .mock && mock.counter(for: $0.name) == key }.count
        return mock.answer(call, uses: mockUses[key, default: 0] + earlier)
    }

    /// The turn with an id on every tool call that came without one (`call_<request>_<index>`),
    /// so that results can answer them; the live REPL and a restored transcript agree on them.
    public func identified(_ turn: TranscriptEvent.Turn) -> TranscriptEvent.Turn {
        guard case .toolCalls(var calls, let text) = turn.output, calls.contains(where: { $0.id == nil }) else {
            return turn
        }
        for i in calls.indices where calls[i].id == nil { calls[i].id = "call_\(stats.turnCount + 1)_\(i)" }
        var t = turn
        t.output = .toolCalls(calls, text: text)
        return t
    }

    /// The options a turn sends, the model among them (AIDE's `model_kwargs`).
    public var queryOptions: QueryOptions {
        var o = options
        o["model"] = .string(model)
        return o
    }

    /// Records a turn: its metrics (a failed or cancelled one too: tokens the server reported
    /// were billed), and a completed turn's exchange (chat mode: in the conversation; single
    /// mode: in the turn's round). The live REPL and a restored transcript both come through
    /// here. A retry first drops the exchange it replaces. A request that only carried tool
    /// results back continues the turn before it.
    /// - Returns: how the output breaks its schema (the function's, a tool's, the output
    ///   schema's), if it does.
    @discardableResult
    public func record(_ recorded: TranscriptEvent.Turn) -> [SchemaViolation] {
        let turn = identified(recorded)
        if turn.retry { dropLastExchange() }
        let continuing = turn.prompt.isEmpty && !turn.toolResults.isEmpty
        if !continuing {
            lastPrompt = turn.prompt
            lastTemplate = turn.template ?? turn.prompt
            lastTurnInHistory = false
        }
        for r in turn.toolResults where r.source == .mock {
            if let key = toolbox.mock?.counter(for: r.name) { mockUses[key, default: 0] += 1 }
        }
        let f = turn.figures
        var m = TurnMetrics(turn.figures, failed: turn.output.isError, cancelled: turn.output == .cancelled)
        m.cost = prices.cost(
            model: model, responseModel: turn.info?.model, inputTokens: f.inputTokens, outputTokens: f.outputTokens,
            usage: turn.info?.usage)
        m.reasoningTokens = QueryInfo.reasoningTokens(in: turn.info?.usage)
        m.cachedInputTokens = QueryInfo.cachedInputTokens(in: turn.info?.usage)
        let violations = check(turn.output)
        m.schemaViolations = violations.count
        m.continuesTurn = continuing
        stats.record(m)
        guard turn.succeeded else { return violations }
        var added = turn.toolResults.map(\.message)
        if !continuing { added.append(.user(turn.prompt)) }
        added += outputMessages(turn)
        pendingCalls = turn.output.calls
        if mode == .chat {
            history += added
            lastTurnInHistory = true
        } else {
            roundMessages = continuing ? roundMessages + added : added
        }
        return violations
    }

    // MARK: - Branches

    /// A conversation put aside by `:fork` or `:switch`.
    struct Branch {
        var history: [ChatMessage]
        var pendingCalls: [FunctionCall]
        var lastPrompt: String?
        var lastTemplate: String?
        var lastTurnInHistory: Bool
    }

    var current: Branch {
        Branch(
            history: history, pendingCalls: pendingCalls, lastPrompt: lastPrompt, lastTemplate: lastTemplate,
            lastTurnInHistory: lastTurnInHistory)
    }

    /// Carries out `:undo`, `:fork` or `:switch` (the live command and a restored transcript alike).
    /// - Throws: ``SessionError`` when there is nothing to undo, the name is taken, or no such branch.
    public func change(_ action: TranscriptEvent.BranchChange.Action) throws -> String {
        switch action {
        case .undo:
            guard let i = history.lastIndex(where: { $0.role == .user }) else {
                throw SessionError("nothing to undo: the conversation is empty")
            }
            let n = history.count - i
            history.removeSubrange(i...)
            pendingCalls = Self.unanswered(history)
            // The exchange before is now the last one: what :retry, :edit and :batch start from.
            lastPrompt = history.last { $0.role == .user }?.content
            lastTemplate = lastPrompt
            lastTurnInHistory = lastPrompt != nil
            return "removed the last exchange (\(n) message\(n == 1 ? "" : "s")); \(history.count) left"
        case .fork(let name):
            guard name != branchName, stashed[name] == nil else {
                throw SessionError("a branch \(name) exists; :switch \(name)")
            }
            stashed[branchName] = current
            let left = branchName
            branchName = name
            return "branch \(name) (from \(left) at \(counted(history.count, "message"))); :switch \(left) goes back"
        case .switchTo(let name):
            guard name != branchName else { return "already on \(name)" }
            guard let b = stashed.removeValue(forKey: name) else {
                throw SessionError("no branch \(name); :branches lists them")
            }
            stashed[branchName] = current
            (history, pendingCalls, lastPrompt, lastTemplate) = (
                b.history, b.pendingCalls, b.lastPrompt, b.lastTemplate
            )
            lastTurnInHistory = b.lastTurnInHistory
            branchName = name
            return "on \(name): \(counted(history.count, "message"))"
        }
    }

    /// The name for `:fork` without one: b1, b2, …
    public func newBranchName() -> String {
        var n = stashed.count + 1
        while stashed["b\(n)"] != nil || branchName == "b\(n)" { n += 1 }
        return "b\(n)"
    }

    func applyBranch(_ command: Command) throws -> String {
        switch command {
        case .undo: return try change(.undo)
        case .fork(let name): return try change(.fork(name ?? newBranchName()))
        case .switchBranch(let name): return try change(.switchTo(name))
        default:
            let all = [(branchName, current)] + stashed.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            return all.map { name, b in
                let last = (b.lastPrompt ?? "").oneLine
                let mark = name == branchName ? "*" : " "
                return
                    "\(mark) \(name)  \(counted(b.history.count, "message"))  \(last.prefix(50))\(last.count > 50 ? "…" : "")"
            }.joined(separator: "\n")
        }
    }

    /// The messages that stand for a turn's output in the conversation.
    func outputMessages(_ turn: TranscriptEvent.Turn) -> [ChatMessage] {
        let thinking = turn.info?.thinkingBlocks ?? []
        switch turn.output {
        case .text(let t): return [ChatMessage(role: .assistant, content: t, thinking: thinking)]
        case .functionCall(let call):
            return Self.functionCallMessages(call, index: history.count + 1, via: turn.info?.forcedCall)
        case .toolCalls(let calls, let text):
            return [ChatMessage(role: .assistant, content: text, toolCalls: calls, thinking: thinking)]
        case .error, .cancelled: return []
        }
    }

    /// How an output breaks the schema it answers: the forced function's, each called tool's
    /// (an unknown tool, or arguments that are not JSON, break it too), or the output schema's.
    public func check(_ output: TranscriptEvent.Output) -> [SchemaViolation] {
        Self.check(output, functionSpec: functionSpec, tools: toolbox.tools, schema: toolbox.schema)
    }

    /// An output checked against a function, tools and an output schema (a session's, or those a
    /// remote batch was sent with): the function's arguments, each tool call's (an unknown tool,
    /// arguments that are not JSON), a structured reply.
    public static func check(
        _ output: TranscriptEvent.Output, functionSpec: FunctionSpec?, tools: [FunctionSpec], schema: FunctionSpec?
    ) -> [SchemaViolation] {
        switch output {
        case .functionCall(let call):
            guard let spec = functionSpec else { return [] }
            return SchemaCheck.violations(of: call.arguments, against: spec.parameters)
        case .toolCalls(let calls, _):
            return calls.flatMap { call -> [SchemaViolation] in
                let at = "\(call.name)#\(call.id ?? "?")"
                guard let tool = tools.first(where: { $0.name == call.name }) else {
                    return [SchemaViolation(path: at, message: "no tool of that name is loaded")]
                }
                if call.arguments == .null, (try? JSONValue.parse(call.rawArguments)) == nil {
                    return [SchemaViolation(path: at, message: "the arguments are not JSON")]
                }
                return SchemaCheck.violations(of: call.arguments, against: tool.parameters).map {
                    SchemaViolation(path: at + " " + $0.path, message: $0.message)
                }
            }
        case .text(let t):
            guard let schema, functionSpec == nil else { return [] }
            guard let v = try? JSONValue.parse(t) else {
                return [SchemaViolation(path: "$", message: "the reply is not JSON")]
            }
            return SchemaCheck.violations(of: v, against: schema.parameters)
        case .error, .cancelled:
            return []
        }
    }

    /// Replays one recorded event (restoring a transcript).
    /// - Throws: whatever ``willSwitchProvider`` throws for a provider the settings switch to.
    public func replay(_ event: TranscriptEvent) throws {
        switch event {
        case .settings(let s):
            if s.provider != provider { _ = try willSwitchProvider(s.provider) }
            provider = s.provider
            model = s.model
            if !modelsUsed.contains(s.model) { modelsUsed.append(s.model) }
            mode = s.mode
            system = s.system
            options = s.options
            functionSpec = s.function
            functionSpecSource = s.function == nil ? nil : "the transcript"
            forcedCall = s.forcedCall
            if s.toolbox.mock != toolbox.mock { mockUses = [:] }
            toolbox = s.toolbox
            vars = s.vars
        case .reset:
            clearConversation()
        case .turn(let t):
            record(t)
        case .comparison:
            break
        case .branch(let b):
            _ = try change(b.action)
        }
    }

    /// The settings in force, as a transcript records them.
    public func settingsRecord(at date: Date) -> TranscriptEvent.Settings {
        TranscriptEvent.Settings(
            at: date, provider: provider, model: model, mode: mode, system: system, options: options,
            function: functionSpec,
            forcedCall: forcedCall, toolbox: toolbox, vars: vars)
    }

    /// Forgets the conversation, the totals and the last prompt (before a transcript is replayed).
    public func restart() {
        clearConversation()
        stashed = [:]
        branchName = "main"
        stats = SessionStats()
        lastPrompt = nil
        lastTemplate = nil
        providerBeforeClaude = nil
    }

    func clearConversation() {
        history = []
        roundMessages = []
        pendingCalls = []
        lastTurnInHistory = false
    }

    /// The messages that stand for a function call in the conversation. The call is shown, not
    /// run: the tool message says so, which keeps the history valid for both APIs (a tool call
    /// must be answered before the next user turn). A call forced through json-schema was, on the
    /// wire, the assistant's JSON text, and stays that: tool messages in a request without tools
    /// are not what was said (and they confuse a small model's next answer).
    public static func functionCallMessages(_ call: FunctionCall, index: Int, via: ForcedCallStrategy?) -> [ChatMessage]
    {
        if via == .jsonSchema { return [.assistant(call.rawArguments)] }
        var c = call
        if c.id == nil { c.id = "call_\(index)" }
        return [
            ChatMessage(role: .assistant, content: "", functionCall: c),
            ChatMessage(
                role: .tool, content: "not executed: promptline shows function calls without running them",
                toolCallID: c.id),
        ]
    }

    /// One combination of `:compare`: the label and the settings it runs with.
    public struct Variant: Equatable {
        public var label: String
        public var model: String
        public var options: QueryOptions
        /// `provider=a,b` compares wire formats (each variant sent with its own client).
        public var provider: Provider
        /// The prompt template sent under this variant (an eval file's prompts); nil: the run's.
        public var template: String?

        public init(
            label: String, model: String, options: QueryOptions, provider: Provider, template: String? = nil
        ) {
            (self.label, self.model, self.options, self.provider, self.template) =
                (label, model, options, provider, template)
        }
    }

    /// The combinations of `:compare` axes (at most 16), each value typed and checked as `:set` does.
    public func variants(_ axes: [CompareAxis]) throws -> [Variant] {
        try variants(axes, from: Variant(label: "", model: model, options: queryOptions, provider: provider))
    }

    /// The combinations of `axes` applied to `start` (an eval file's prompt × provider).
    func variants(_ axes: [CompareAxis], from start: Variant) throws -> [Variant] {
        var out = [start]
        for axis in axes {
            var next: [Variant] = []
            for v in out {
                for raw in axis.values {
                    var w = v
                    if axis.key == "model" {
                        w.model = raw
                        w.options["model"] = .string(raw)
                    } else if axis.key == "provider" {
                        guard let p = Provider(rawValue: raw) else {
                            throw SessionError("provider must be openai, openai-responses or anthropic, not \(raw)")
                        }
                        if let bad = w.options.keys.compactMap({ p.refusalReason(option: $0) }).first {
                            throw SessionError(bad)
                        }
                        w.provider = p
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
        if prompt == lastPrompt, mode == .chat, let i = lastExchangeStart {
            let drop = history.count - i
            m.removeSubrange((m.count - 1 - drop)..<(m.count - 1))
        }
        return m
    }

    /// Where the last exchange starts in the conversation, when the last turn added one.
    var lastExchangeStart: Int? {
        lastTurnInHistory ? history.lastIndex { $0.role == .user } : nil
    }

    /// Removes the last exchange from the conversation (for :retry): the last user message and
    /// everything after it. Returns whether there was one.
    @discardableResult
    public func dropLastExchange() -> Bool {
        guard let i = lastExchangeStart else { return false }
        history.removeSubrange(i...)
        lastTurnInHistory = false
        pendingCalls = Self.unanswered(history)
        return true
    }

    /// The calls of the last assistant message that no tool message after it answers.
    static func unanswered(_ messages: [ChatMessage]) -> [FunctionCall] {
        guard let i = messages.lastIndex(where: { $0.role == .assistant }) else { return [] }
        let answered = Set(messages[(i + 1)...].compactMap(\.toolCallID))
        return messages[i].toolCalls.filter { !answered.contains($0.id ?? "") }
    }

    public static func helpText(_ name: String?) -> String {
        if let name {
            let entries = CommandParser.help.filter { $0.name == name || (name == "exit" && $0.name == "quit") }
            guard let first = entries.first else { return "no command :\(name); :help lists them" }
            let args = CommandParser.arguments(of: first.name)
            return
                (entries.map { "\($0.usage)\n  \($0.summary)\n  example: \($0.example)" }
                + (args.isEmpty ? [] : ["  arguments:"] + args.map { "    \($0.form) — \($0.about)" }))
                .joined(separator: "\n")
        }
        let w = CommandParser.help.map(\.usage.count).max() ?? 0
        let lines = CommandParser.help.map {
            "  \($0.usage.padding(toLength: w, withPad: " ", startingAt: 0))  \($0.summary)   e.g. \($0.example)"
        }
        return (lines + helpNotes).joined(separator: "\n")
    }

    /// What `:help` says after the commands: prompts, Ctrl-C, the tool result prompt.
    public static let helpNotes = [
        "A plain line is a prompt. \"\"\" on its own line starts and ends a multi-line prompt. ::text sends \":text\".",
        "Ctrl-C cancels a turn in flight; at the prompt, Ctrl-C twice or Ctrl-D leaves.",
        "At a tool result prompt (result name#id ›): text or JSON, @file reads one, @@text sends \"@text\", "
            + "\"\"\" starts a block; Ctrl-C ends the round.",
    ]

    public static func expand(_ path: String) -> String {
        XDG.expandTilde(path)
    }

    /// A text file's contents without its final newlines.
    /// - Throws: ``SessionError`` naming `what` and saying why it cannot be used.
    public static func readText(_ path: String, what: String) throws -> String {
        let p = expand(path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            throw SessionError("\(what) file \(path): no such file")
        }
        guard !isDir.boolValue else { throw SessionError("\(what) file \(path) is a folder") }
        var t: String
        do {
            t = try FileReader.text(p)
        } catch {
            throw SessionError(
                error.notText
                    ? "\(what) file \(path) is not UTF-8 text" : "\(what) file \(path) cannot be read (\(error))")
        }
        while t.hasSuffix("\n") { t.removeLast() }
        return t
    }
}

extension TranscriptEvent.Output {
    var isError: Bool {
        if case .error = self { return true }
        return false
    }
}
