/// OpenAI Responses (`POST {base}/responses`) and compatible servers (llama.cpp serves it too).
///
/// The conversation is kept client-side and sent whole each time: the system prompt as
/// `instructions`, the turns as `input` items (`message`, `function_call`,
/// `function_call_output`); no `previous_response_id`.
struct ResponsesBackend: Backend {
    var provider: Provider { .openAIResponses }
    /// The server is llama.cpp, whose `/v1/responses` applies a chat-style `response_format` as a
    /// grammar and ignores `text.format`: json-schema forcing sends both there.
    var llamaCpp = false

    func authHeaders(apiKey: String?) -> [(String, String)] { OpenAIBackend().authHeaders(apiKey: apiKey) }

    func makeRequest(
        _ request: QueryRequest, forcedCall: ForcedCallStrategy
    ) throws(QueryError) -> (body: JSONObject, path: String, notes: [String]) {
        var body: JSONObject = ["model": .string(request.model)]
        let system = request.messages.filter { $0.role == .system }.map(\.content).joined(separator: "\n\n")
        if !system.isEmpty { body["instructions"] = .string(system) }
        body["input"] = .array(request.messages.filter { $0.role != .system }.flatMap(Self.items))
        for (k, v) in request.options.sendable where k != "model" && k != "stream" {
            if let reason = provider.refusalReason(option: k) { throw QueryError.invalidRequest(reason) }
            switch k {
            case "max_tokens", "max_completion_tokens": body["max_output_tokens"] = v
            case "reasoning_effort": body["reasoning"] = ["effort": v, "summary": "auto"]
            default: body[k] = v
            }
        }
        var notes: [String] = []
        if ReasoningModels.matches(request.model) { try ReasoningModels.check(body, model: request.model) }
        if let spec = request.forcedFunction?.spec {
            force(spec, among: request.functionSpec != nil ? [spec] : request.tools, via: forcedCall, into: &body)
        } else if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map(Self.tool))
            body["tool_choice"] = .string((request.toolChoice ?? .auto).description)
        }
        if request.functionSpec == nil, let schema = request.outputSchema {
            if body["text"] != nil { notes.append("text.format was replaced by the output schema") }
            format(schema, into: &body)
        }
        if request.stream { body["stream"] = true }
        return (body, "/responses", notes)
    }

    /// Forces a call of `spec` as the strategy says: `text.format` json_schema (json-schema), the
    /// one tool with `tool_choice: "required"` (tools), or every tool with the named choice.
    func force(
        _ spec: FunctionSpec, among tools: [FunctionSpec], via strategy: ForcedCallStrategy, into body: inout JSONObject
    ) {
        switch strategy {
        case .jsonSchema:
            format(spec, into: &body)
        case .tools:
            body["tools"] = [Self.tool(spec)]
            body["tool_choice"] = "required"
        case .named, .auto:
            body["tools"] = .array(tools.map(Self.tool))
            body["tool_choice"] = ["type": "function", "name": .string(spec.name)]
        }
    }

    /// Structured output: `text.format` json_schema (and, for llama.cpp, the chat-style
    /// `response_format` it reads instead).
    func format(_ spec: FunctionSpec, into body: inout JSONObject) {
        var f: JSONObject = ["type": "json_schema", "name": .string(spec.name)]
        if !spec.description.isEmpty { f["description"] = .string(spec.description) }
        f["schema"] = spec.parameters
        if FunctionSpec.isStrictCompatible(spec.parameters) { f["strict"] = true }
        body["text"] = ["format": .object(f)]
        if llamaCpp { body["response_format"] = spec.responseFormat }
    }

    /// A tool as the Responses API takes it: flat, with `strict` (which the schema wants on each).
    static func tool(_ spec: FunctionSpec) -> JSONValue {
        var t: JSONObject = ["type": "function", "name": .string(spec.name)]
        if !spec.description.isEmpty { t["description"] = .string(spec.description) }
        t["parameters"] = spec.parameters
        t["strict"] = .bool(FunctionSpec.isStrictCompatible(spec.parameters))
        return .object(t)
    }

    /// The input items of one message. Assistant history is a `message` item with its `type`
    /// (llama.cpp wants it); calls and results are items of their own.
    static func items(_ m: ChatMessage) -> [JSONValue] {
        switch m.role {
        case .user, .system:
            return [["role": .string(m.role.rawValue), "content": .string(m.content)]]
        case .assistant:
            var out: [JSONValue] = []
            if !m.content.isEmpty || m.toolCalls.isEmpty {
                out.append(["type": "message", "role": "assistant", "content": .string(m.content)])
            }
            for (i, call) in m.toolCalls.enumerated() {
                out.append([
                    "type": "function_call", "call_id": .string(call.id ?? "call_\(i)"), "name": .string(call.name),
                    "arguments": .string(call.rawArguments),
                ])
            }
            return out
        case .tool:
            let output = m.isError && !m.content.hasPrefix("error") ? "error: " + m.content : m.content
            return [
                [
                    "type": "function_call_output", "call_id": .string(m.toolCallID ?? "call_0"),
                    "output": .string(output),
                ]
            ]
        }
    }

    func decode(_ body: [UInt8]) throws -> ResponseParts {
        let (v, output) = try self.body(body, listing: "output") { $0["error"].map { $0 != .null } == true }
        var parts = ResponseParts()
        Self.readResponse(v, into: &parts)
        for item in output {
            switch item["type"]?.stringValue {
            case "message":
                for c in item["content"]?.arrayValue ?? [] where c["type"] == "output_text" {
                    parts.text += c["text"]?.stringValue ?? ""
                }
            case "function_call":
                parts.toolCalls.append(
                    RawToolCall(
                        id: item["call_id"]?.stringValue, name: item["name"]?.stringValue ?? "",
                        arguments: OpenAIBackend.argumentsText(item["arguments"])))
            case "reasoning":
                let summary = (item["summary"]?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }
                if !summary.isEmpty { parts.reasoning += summary.joined(separator: "\n") }
            default: break
            }
        }
        return parts
    }

    /// A Response object's facts: id, model, created_at, why it ended, usage.
    static func readResponse(_ r: JSONValue, into parts: inout ResponseParts) {
        if let id = r["id"]?.stringValue { parts.info.id = id }
        if let m = r["model"]?.stringValue { parts.info.model = m }
        if let c = r["created_at"]?.int64Value { parts.info.created = c }
        switch r["status"]?.stringValue {
        case "completed"?: parts.info.finishReason = "completed"
        case "incomplete"?: parts.info.finishReason = r["incomplete_details"]?["reason"]?.stringValue ?? "incomplete"
        case let s?: parts.info.finishReason = s
        case nil: break
        }
        parts.read(usage: r["usage"], input: "input_tokens", output: "output_tokens")
    }

    func makeAccumulator() -> any StreamAccumulator { ResponsesStreamAccumulator(backend: self) }
}

/// Folds Responses stream events: text, function-call arguments by output index, reasoning
/// summaries, and the final `response.completed` (usage, status).
struct ResponsesStreamAccumulator: StreamAccumulator {
    let backend: ResponsesBackend
    var parts = ResponseParts()
    var text: [String] = []
    /// Calls by output index, in the order they started.
    var calls: [Int: RawToolCall] = [:]
    var callOrder: [Int] = []

    mutating func handle(_ event: SSEEvent, emit: (QueryEvent) -> Void) throws -> Bool {
        if event.isBareError { throw QueryError.streamError(backend.errorDetails(status: nil, body: event.data)) }
        let v = try AnthropicStreamAccumulator.parse(event)
        switch v["type"]?.stringValue ?? event.event ?? "" {
        case "response.created", "response.in_progress":
            ResponsesBackend.readResponse(v["response"] ?? .null, into: &parts)
        case "response.output_text.delta":
            let t = v["delta"]?.stringValue ?? ""
            text.append(t)
            if !t.isEmpty { emit(.text(t)) }
        case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
            let t = v["delta"]?.stringValue ?? ""
            parts.reasoning += t
            if !t.isEmpty { emit(.reasoning(t)) }
        case "response.output_item.added", "response.output_item.done":
            item(v, emit: emit)
        case "response.function_call_arguments.delta":
            let index = v["output_index"]?.intValue ?? callOrder.last ?? 0
            let f = v["delta"]?.stringValue ?? ""
            calls[index, default: RawToolCall(id: nil, name: "", arguments: "")].arguments += f
            if !f.isEmpty {
                emit(.functionArguments(index: callOrder.firstIndex(of: index) ?? 0, name: nil, fragment: f))
            }
        case "response.completed", "response.incomplete":
            ResponsesBackend.readResponse(v["response"] ?? .null, into: &parts)
            return true
        case "response.failed", "error":
            let e = v["response"]?["error"] ?? v["error"] ?? v
            throw QueryError.streamError(
                backend.errorDetails(status: nil, body: JSONValue.object(["error": e]).serializedBytes()))
        default:
            break  // content_part, *.done, and future event types
        }
        return false
    }

    /// A function_call item starting (its name announced) or done (its whole arguments).
    mutating func item(_ v: JSONValue, emit: (QueryEvent) -> Void) {
        let item = v["item"] ?? .null
        guard item["type"] == "function_call" else { return }
        let index = v["output_index"]?.intValue ?? (callOrder.last.map { $0 + 1 } ?? 0)
        var call = calls[index] ?? RawToolCall(id: nil, name: "", arguments: "")
        if !callOrder.contains(index) {
            callOrder.append(index)
            call.name = item["name"]?.stringValue ?? ""
            emit(.functionArguments(index: callOrder.count - 1, name: call.name, fragment: ""))
        }
        if call.id == nil { call.id = item["call_id"]?.stringValue }
        if call.arguments.isEmpty, let a = item["arguments"]?.stringValue, v["type"] == "response.output_item.done" {
            call.arguments = a
        }
        calls[index] = call
    }

    func finish(complete: Bool) throws -> ResponseParts {
        guard complete else {
            throw QueryError.truncatedStream(
                reason: "no response.completed (\(text.joined().count) characters of text received)")
        }
        var p = parts
        p.text = text.joined()
        p.toolCalls = callOrder.compactMap { calls[$0] }
        return p
    }
}
