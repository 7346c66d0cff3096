/// OpenAI Chat Completions (`POST {base}/chat/completions`) and compatible servers.
struct OpenAIBackend: Backend {
    var provider: Provider { .openAI }

    func authHeaders(apiKey: String?) -> [(String, String)] {
        guard let apiKey, !apiKey.isEmpty else { return [] }
        return [("Authorization", "Bearer \(apiKey)")]
    }

    func makeRequest(
        _ request: QueryRequest, forcedCall: ForcedCallStrategy
    ) throws(QueryError) -> (body: JSONObject, path: String, notes: [String]) {
        var body: JSONObject = ["model": .string(request.model)]
        body["messages"] = .array(request.messages.map(Self.encode))
        for (k, v) in request.options.sendable where k != "model" && k != "stream" {
            body[k] = v
        }
        var notes: [String] = []
        if ReasoningModels.matches(request.model) {
            try ReasoningModels.check(body, model: request.model)
            if let v = body["max_tokens"] {
                body["max_tokens"] = nil
                if body["max_completion_tokens"] == nil { body["max_completion_tokens"] = v }
                notes.append("max_tokens was sent as max_completion_tokens (\(request.model) is a reasoning model)")
            }
        }
        if let spec = request.functionSpec {
            force(spec, among: [spec], via: forcedCall == .auto ? .tools : forcedCall, into: &body, notes: &notes)
        } else {
            if let schema = request.outputSchema {
                if body["response_format"] != nil { notes.append("response_format was replaced by the output schema") }
                body["response_format"] = schema.responseFormat
            }
            if !request.tools.isEmpty {
                try offer(request.tools, choice: request.toolChoice, via: forcedCall, into: &body, notes: &notes)
            }
        }
        if request.stream {
            body["stream"] = true
            var so = body["stream_options"]?.objectValue ?? JSONObject()
            so["include_usage"] = true
            body["stream_options"] = .object(so)
        } else {
            body["stream_options"] = nil
        }
        return (body, "/chat/completions", notes)
    }

    /// Forces a call of `spec` (one of `tools`) as `strategy` says: its schema as response_format
    /// (json-schema), the one tool with `tool_choice: "required"` (tools), or every tool with the
    /// named `tool_choice` (named; also `auto`, which a client resolves before sending).
    func force(
        _ spec: FunctionSpec, among tools: [FunctionSpec], via strategy: ForcedCallStrategy,
        into body: inout JSONObject,
        notes: inout [String]
    ) {
        switch strategy {
        case .jsonSchema:
            if body["response_format"] != nil {
                notes.append("response_format was replaced by the function's schema (json-schema forcing)")
            }
            body["response_format"] = spec.responseFormat
        case .named, .auto:
            body["tools"] = .array(tools.map(\.openAITool))
            body["tool_choice"] = ["type": "function", "function": ["name": .string(spec.name)]]
        case .tools:
            body["tools"] = [spec.openAITool]
            body["tool_choice"] = "required"
        }
    }

    /// Offers `tools` with `choice`: a named choice is forced as ``force(_:among:via:into:notes:)`` says.
    func offer(
        _ tools: [FunctionSpec], choice: ToolChoice?, via strategy: ForcedCallStrategy, into body: inout JSONObject,
        notes: inout [String]
    ) throws(QueryError) {
        guard case .named(let n)? = choice else {
            body["tools"] = .array(tools.map(\.openAITool))
            body["tool_choice"] = .string((choice ?? .auto).description)
            return
        }
        guard let spec = tools.first(where: { $0.name == n }) else {
            throw QueryError.invalidRequest("tool_choice names \(n), which is not among the tools")
        }
        force(spec, among: tools, via: strategy, into: &body, notes: &notes)
    }

    static func encode(_ m: ChatMessage) -> JSONValue {
        var o: JSONObject = ["role": .string(m.role.rawValue)]
        switch m.role {
        case .assistant where !m.toolCalls.isEmpty:
            o["content"] = m.content.isEmpty ? .null : .string(m.content)
            o["tool_calls"] = .array(
                m.toolCalls.enumerated().map { i, call in
                    [
                        "id": .string(call.id ?? "call_\(i)"), "type": "function",
                        "function": ["name": .string(call.name), "arguments": .string(call.rawArguments)],
                    ]
                })
        case .tool:
            o["tool_call_id"] = .string(m.toolCallID ?? "call_0")
            o["content"] = .string(m.content)
        default:
            o["content"] = .string(m.content)
        }
        return .object(o)
    }

    func decode(_ body: [UInt8]) throws -> ResponseParts {
        let b: OpenAIBody
        do {
            b = try OpenAIBody.decode(body, payload: .message)
        } catch {
            // Not JSON ("not JSON …" with a snippet), or JSON but not an object.
            let v = try parseBody(body)
            throw QueryError.malformedResponse(reason: "expected a JSON object, got \(v.typeName)", snippet: "")
        }
        if let e = b.error, e != .null {
            throw QueryError.streamError(errorDetails(status: nil, body: body))
        }
        var parts = ResponseParts()
        b.fill(&parts.info)
        Self.readUsage(b.usage, into: &parts)
        guard let choices = b.choices else {
            let text = String(decoding: body.prefix(QueryError.keptLength), as: UTF8.self)
            throw QueryError.malformedResponse(
                reason: "no \"choices\" in the response", snippet: QueryError.snippet(text, max: QueryError.keptLength))
        }
        // Choice 0 (promptline sends n = 1), else the first one.
        guard let choice = choices.first(where: { $0.index == 0 }) ?? choices.first else {
            throw QueryError.malformedResponse(reason: "\"choices\" is empty", snippet: "")
        }
        parts.info.finishReason = choice.finishReason
        parts.text = choice.content ?? ""
        parts.reasoning = choice.reasoning ?? ""
        for c in choice.toolCalls ?? [] {
            let fn = c["function"] ?? .null
            let arguments = Self.argumentsText(fn["arguments"])
            let call = RawToolCall(id: c["id"]?.stringValue, name: fn["name"]?.stringValue ?? "", arguments: arguments)
            parts.toolCalls.append(call)
        }
        return parts
    }

    /// A tool call's `arguments` as text: a string as is; an object (some servers send one) as JSON.
    static func argumentsText(_ value: JSONValue?) -> String {
        switch value {
        case .string(let s): return s
        case .some(let other) where other != .null: return other.serialized()
        default: return ""
        }
    }

    static func readUsage(_ usage: JSONValue?, into parts: inout ResponseParts) {
        parts.read(usage: usage, input: "prompt_tokens", output: "completion_tokens")
    }

    func makeAccumulator() -> any StreamAccumulator { OpenAIStreamAccumulator(backend: self) }
}

/// Folds `chat.completion.chunk`s: text deltas, tool-call deltas by index, finish reason, usage.
struct OpenAIStreamAccumulator: StreamAccumulator {
    let backend: OpenAIBackend
    var parts = ResponseParts()
    var calls: [Int: RawToolCall] = [:]
    var callOrder: [Int] = []
    var text: [String] = []

    init(backend: OpenAIBackend) { self.backend = backend }

    mutating func handle(_ event: SSEEvent, emit: (QueryEvent) -> Void) throws -> Bool {
        if event.isBareError || event.event == "error" {
            throw QueryError.streamError(backend.errorDetails(status: nil, body: event.data))
        }
        let d = event.data
        if d.count == 6, d.elementsEqual("[DONE]".utf8) { return true }
        let c: OpenAIBody
        do {
            c = try OpenAIBody.decode(d, payload: .delta, wantInfo: OpenAIBody.wantsInfo(parts.info))
        } catch {
            let snippet = QueryError.snippet(event.dataString, max: QueryError.keptLength)
            let reason = "a stream chunk is not a JSON object (\(error))"
            throw QueryError.malformedResponse(reason: reason, snippet: snippet)
        }
        if let e = c.error, e != .null {
            throw QueryError.streamError(backend.errorDetails(status: nil, body: d))
        }
        c.fill(&parts.info)
        if let u = c.usage, u != .null { OpenAIBackend.readUsage(u, into: &parts) }
        // Only choice 0: promptline sends n = 1 (or shows the first choice).
        guard let choice = c.choices?.first(where: { $0.index == 0 }) else { return false }
        if let fr = choice.finishReason { parts.info.finishReason = fr }
        if let r = choice.reasoning, !r.isEmpty {
            parts.reasoning += r
            emit(.reasoning(r))
        }
        if let t = choice.content, !t.isEmpty {
            text.append(t)
            emit(.text(t))
        }
        for tc in choice.toolCalls ?? [] {
            let index = tc["index"]?.intValue ?? 0
            let fn = tc["function"]
            let name = fn?["name"]?.stringValue
            let fragment = OpenAIBackend.argumentsText(fn?["arguments"])
            var call =
                calls[index]
                ?? {
                    callOrder.append(index)
                    return RawToolCall(id: nil, name: "", arguments: "")
                }()
            if let id = tc["id"]?.stringValue, call.id == nil { call.id = id }
            let isNewName = name != nil && call.name.isEmpty
            if let name, call.name.isEmpty { call.name = name }
            call.arguments += fragment
            calls[index] = call
            if !fragment.isEmpty || isNewName {
                emit(.functionArguments(index: index, name: isNewName ? name : nil, fragment: fragment))
            }
        }
        return false
    }

    func finish(complete: Bool) throws -> ResponseParts {
        var p = parts
        p.text = text.joined()
        p.toolCalls = callOrder.compactMap { calls[$0] }
        if !complete {
            // Without [DONE] the response is only trusted when the model said why it stopped.
            guard p.info.finishReason != nil else {
                throw QueryError.truncatedStream(
                    reason: "no [DONE] and no finish_reason (\(counted(p.text.count, "character")) of text received)")
            }
            p.info.notes.append("the stream ended without [DONE]")
        }
        return p
    }
}
