/// OpenAI Chat Completions (`POST {base}/chat/completions`) and compatible servers.
struct OpenAIBackend: Backend {
    var provider: Provider { .openAI }

    func authHeaders(apiKey: String?) -> [(String, String)] {
        guard let apiKey, !apiKey.isEmpty else { return [] }
        return [("Authorization", "Bearer \(apiKey)")]
    }

    func makeRequest(_ request: QueryRequest, forcedCall: ForcedCallStrategy) throws -> (body: JSONObject, path: String, notes: [String]) {
        var body: JSONObject = ["model": .string(request.model)]
        body["messages"] = .array(request.messages.map(Self.encode))
        for (k, v) in request.options.sendable where k != "model" && k != "stream" {
            body[k] = v
        }
        var notes: [String] = []
        if let spec = request.functionSpec {
            switch forcedCall {
            case .jsonSchema:
                if body["response_format"] != nil { notes.append("response_format was replaced by the function's schema (json-schema forcing)") }
                body["response_format"] = spec.responseFormat
            case .named:
                body["tools"] = [spec.openAITool]
                body["tool_choice"] = ["type": "function", "function": ["name": .string(spec.name)]]
            case .tools, .auto:
                body["tools"] = [spec.openAITool]
                body["tool_choice"] = "required"
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

    static func encode(_ m: ChatMessage) -> JSONValue {
        var o: JSONObject = ["role": .string(m.role.rawValue)]
        switch m.role {
        case .assistant where m.functionCall != nil:
            let call = m.functionCall!
            o["content"] = m.content.isEmpty ? .null : .string(m.content)
            o["tool_calls"] = [
                [
                    "id": .string(call.id ?? "call_0"), "type": "function",
                    "function": ["name": .string(call.name), "arguments": .string(call.rawArguments)],
                ]
            ]
        case .tool:
            o["tool_call_id"] = .string(m.toolCallID ?? "call_0")
            o["content"] = .string(m.content)
        default:
            o["content"] = .string(m.content)
        }
        return .object(o)
    }

    func decode(_ body: [UInt8]) throws -> ResponseParts {
        let v = try parseBody(body)
        guard case .object = v else {
            throw QueryError.malformedResponse(reason: "expected a JSON object, got \(v.typeName)", snippet: "")
        }
        if let e = v["error"], e != .null {
            throw QueryError.streamError(errorDetails(status: nil, body: body))
        }
        var parts = ResponseParts()
        Self.readInfo(v, into: &parts.info)
        Self.readUsage(v["usage"], into: &parts)
        guard let choices = v["choices"]?.arrayValue else {
            throw QueryError.malformedResponse(reason: "no \"choices\" in the response", snippet: QueryError.snippet(v.serialized(), max: QueryError.keptLength))
        }
        guard let choice = choices.first(where: { $0["index"]?.intValue ?? 0 == 0 }) ?? choices.first else {
            throw QueryError.malformedResponse(reason: "\"choices\" is empty", snippet: "")
        }
        parts.info.finishReason = choice["finish_reason"]?.stringValue
        let message = choice["message"] ?? .null
        parts.text = message["content"]?.stringValue ?? ""
        if let calls = message["tool_calls"]?.arrayValue {
            for c in calls {
                let fn = c["function"] ?? .null
                let args: String
                switch fn["arguments"] {
                case .string(let s): args = s
                case .some(let other) where other != .null: args = other.serialized()  // some servers send an object
                default: args = ""
                }
                parts.toolCalls.append(RawToolCall(id: c["id"]?.stringValue, name: fn["name"]?.stringValue ?? "", arguments: args))
            }
        }
        return parts
    }

    static func readInfo(_ v: JSONValue, into info: inout QueryInfo) {
        if info.id == nil { info.id = v["id"]?.stringValue }
        if info.model == nil { info.model = v["model"]?.stringValue }
        if info.created == nil { info.created = v["created"]?.int64Value }
        if info.systemFingerprint == nil { info.systemFingerprint = v["system_fingerprint"]?.stringValue }
    }

    static func readUsage(_ usage: JSONValue?, into parts: inout ResponseParts) {
        guard let usage, case .object = usage else { return }
        parts.info.usage = usage
        parts.inputTokens = usage["prompt_tokens"]?.countValue
        parts.outputTokens = usage["completion_tokens"]?.countValue
    }

    func makeAccumulator() -> any StreamAccumulator { OpenAIStreamAccumulator(backend: self) }

    func errorDetails(status: Int?, body: [UInt8]) -> APIErrorDetails { genericErrorDetails(status: status, body: body) }
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
        let c: OpenAIChunk
        do {
            c = try OpenAIChunk.decode(d, wantInfo: parts.info.id == nil || parts.info.model == nil || parts.info.created == nil || parts.info.systemFingerprint == nil)
        } catch {
            throw QueryError.malformedResponse(reason: "a stream chunk is not a JSON object (\(error))", snippet: QueryError.snippet(event.dataString, max: QueryError.keptLength))
        }
        if let e = c.error, e != .null {
            throw QueryError.streamError(backend.errorDetails(status: nil, body: d))
        }
        if parts.info.id == nil { parts.info.id = c.id }
        if parts.info.model == nil { parts.info.model = c.model }
        if parts.info.created == nil { parts.info.created = c.created }
        if parts.info.systemFingerprint == nil { parts.info.systemFingerprint = c.systemFingerprint }
        if let u = c.usage, u != .null { OpenAIBackend.readUsage(u, into: &parts) }
        if let fr = c.finishReason { parts.info.finishReason = fr }
        if let t = c.content, !t.isEmpty {
            text.append(t)
            emit(.text(t))
        }
        for tc in c.toolCalls ?? [] {
            let index = tc["index"]?.intValue ?? 0
            let fn = tc["function"]
            let name = fn?["name"]?.stringValue
            let fragment = fn?["arguments"]?.stringValue ?? ""
            var call = calls[index] ?? {
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
                throw QueryError.truncatedStream(reason: "no [DONE] and no finish_reason (\(p.text.count) characters of text received)")
            }
            p.info.notes.append("the stream ended without [DONE]")
        }
        return p
    }
}
