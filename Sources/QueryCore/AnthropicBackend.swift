/// Anthropic Messages (`POST {base}/v1/messages`).
struct AnthropicBackend: Backend {
    var provider: Provider { .anthropic }

    static let apiVersion = "2023-06-01"
    static let defaultMaxTokens: Int64 = 4096

    func authHeaders(apiKey: String?) -> [(String, String)] {
        var h = [("anthropic-version", Self.apiVersion)]
        if let apiKey, !apiKey.isEmpty { h.append(("x-api-key", apiKey)) }
        return h
    }

    func makeRequest(
        _ request: QueryRequest, forcedCall: ForcedCallStrategy
    ) throws(QueryError) -> (body: JSONObject, path: String, notes: [String]) {
        var notes: [String] = []
        let systemText = request.messages.filter { $0.role == .system }.map(\.content).joined(separator: "\n\n")
        var turns = request.messages.filter { $0.role != .system }
        var sendSystem = !systemText.isEmpty
        if turns.isEmpty && !systemText.isEmpty {
            // The API needs a user message; AIDE moves a lone system prompt there, and so do we — openly.
            turns = [.user(systemText)]
            sendSystem = false
            notes.append("the system prompt was sent as the user message (Anthropic needs one)")
        }
        var body: JSONObject = ["model": .string(request.model)]
        if sendSystem { body["system"] = .string(systemText) }
        body["messages"] = .array(Self.alternating(turns))
        try Self.addOptions(request.options, into: &body, notes: &notes)
        try Self.addTools(request, into: &body, notes: &notes)
        if request.stream { body["stream"] = true }
        return (body, "/v1/messages", notes)
    }

    /// The options: `max_tokens` (required; a default when unset), `stop` as `stop_sequences`,
    /// `thinking` N as extended thinking with a budget of N tokens — checked before sending
    /// against what the API refuses with it.
    static func addOptions(_ options: QueryOptions, into body: inout JSONObject, notes: inout [String])
        throws(QueryError)
    {
        var maxTokens: JSONValue?
        var rest = JSONObject()
        for (k, v) in options.sendable where k != "model" && k != "stream" {
            if let reason = Provider.anthropic.refusalReason(option: k) { throw QueryError.invalidRequest(reason) }
            switch k {
            case "max_tokens", "max_completion_tokens": maxTokens = v
            case "stop":
                if case .string = v { rest["stop_sequences"] = [v] } else { rest["stop_sequences"] = v }
            case "thinking":
                rest[k] = v.intValue.map { ["type": "enabled", "budget_tokens": .integer(Int64($0))] } ?? v
            default: rest[k] = v
            }
        }
        if let budget = rest["thinking"]?["budget_tokens"]?.intValue, rest["thinking"]?["type"] == "enabled" {
            for k in ["temperature", "top_k"] where rest[k] != nil {
                throw QueryError.invalidRequest(
                    "extended thinking does not go with \(k) (the API refuses both together)")
            }
            if let m = maxTokens?.intValue, m <= budget {
                throw QueryError.invalidRequest("max_tokens (\(m)) must be larger than the thinking budget (\(budget))")
            }
            if maxTokens == nil && Int(defaultMaxTokens) <= budget {
                maxTokens = .integer(Int64(budget) + defaultMaxTokens)
                notes.append("max_tokens was set to \(Int64(budget) + defaultMaxTokens): above the thinking budget")
            }
        }
        body["max_tokens"] = maxTokens ?? .integer(defaultMaxTokens)
        for (k, v) in rest { body[k] = v }
    }

    /// The forced function, the structured-output tool, or the tools and their choice. Extended
    /// thinking allows only `auto` and `none`: a forced call with it is refused before sending.
    static func addTools(_ request: QueryRequest, into body: inout JSONObject, notes: inout [String]) throws(QueryError)
    {
        if let spec = request.functionSpec {
            body["tools"] = [spec.anthropicTool]
            body["tool_choice"] = ["type": "tool", "name": .string(spec.name)]
        } else if let schema = request.outputSchema {
            guard request.tools.isEmpty else {
                throw QueryError.invalidRequest(
                    "structured output travels as a forced tool on Anthropic, so it cannot be combined with tools")
            }
            body["tools"] = [schema.anthropicTool]
            body["tool_choice"] = ["type": "tool", "name": .string(schema.name)]
            notes.append("structured output was asked for as a forced tool (Anthropic has no response_format)")
        } else if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map(\.anthropicTool))
            body["tool_choice"] = try toolChoice(request.toolChoice ?? .auto, among: request.tools)
        }
        let forced = body["tool_choice"]?["type"].map { $0 == "tool" || $0 == "any" } ?? false
        if forced, body["thinking"]?["type"] == "enabled" {
            throw QueryError.invalidRequest(
                "extended thinking allows tool_choice auto or none only: a forced call cannot go with it")
        }
    }

    /// Anthropic's `tool_choice` for `choice`: `auto`, `none`, `any` (required) or one tool.
    static func toolChoice(_ choice: ToolChoice, among tools: [FunctionSpec]) throws(QueryError) -> JSONValue {
        switch choice {
        case .auto: return ["type": "auto"]
        case .none: return ["type": "none"]
        case .required: return ["type": "any"]
        case .named(let n):
            guard tools.contains(where: { $0.name == n }) else {
                throw QueryError.invalidRequest("tool_choice names \(n), which is not among the tools")
            }
            return ["type": "tool", "name": .string(n)]
        }
    }

    /// Anthropic wants user and assistant turns to alternate: consecutive messages of one role are
    /// merged into one message of content blocks; tool results travel as user content.
    static func alternating(_ messages: [ChatMessage]) -> [JSONValue] {
        var out: [(role: String, blocks: [JSONValue])] = []
        for m in messages {
            let role = m.role == .assistant ? "assistant" : "user"
            var blocks: [JSONValue] = []
            switch m.role {
            case .tool:
                var r: JSONObject = [
                    "type": "tool_result", "tool_use_id": .string(m.toolCallID ?? "toolu_0"),
                    "content": .string(m.content),
                ]
                if m.isError { r["is_error"] = true }
                blocks.append(.object(r))
            case .assistant:
                blocks += m.thinking  // first, as they came: the API checks their signatures
                if !m.content.isEmpty { blocks.append(["type": "text", "text": .string(m.content)]) }
                for (i, call) in m.toolCalls.enumerated() {
                    // `input` must be an object: arguments that were not one are sent as none.
                    let input: JSONValue = call.arguments.objectValue != nil ? call.arguments : .object([:])
                    blocks.append([
                        "type": "tool_use", "id": .string(call.id ?? "toolu_\(i)"), "name": .string(call.name),
                        "input": input,
                    ])
                }
            default:
                blocks.append(["type": "text", "text": .string(m.content)])
            }
            if let last = out.last, last.role == role {
                out[out.count - 1].blocks += blocks
            } else {
                out.append((role, blocks))
            }
        }
        return out.map { turn in
            // A lone text block is sent as a plain string, the form most examples use.
            if turn.blocks.count == 1, turn.blocks[0]["type"] == "text", let t = turn.blocks[0]["text"] {
                return ["role": .string(turn.role), "content": t]
            }
            return ["role": .string(turn.role), "content": .array(turn.blocks)]
        }
    }

    func decode(_ body: [UInt8]) throws -> ResponseParts {
        let (v, content) = try self.body(body, listing: "content") {
            $0["type"] == "error" || $0["error"].map { $0 != .null } == true
        }
        var parts = ResponseParts()
        Self.readMessage(v, into: &parts)
        var text = ""
        for block in content {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "thinking", "redacted_thinking":
                parts.reasoning += block["thinking"]?.stringValue ?? ""
                parts.info.thinkingBlocks.append(block)
            case "tool_use":
                let input = block["input"] ?? .object(JSONObject())
                parts.toolCalls.append(
                    RawToolCall(
                        id: block["id"]?.stringValue, name: block["name"]?.stringValue ?? "",
                        arguments: input.serialized(), parsed: input))
            default: break
            }
        }
        parts.text = text
        return parts
    }

    /// A Message object's facts (id, model, stop reason, usage): a whole body is one, and a stream's
    /// `message_start` carries one.
    static func readMessage(_ m: JSONValue, into parts: inout ResponseParts) {
        parts.info.id = m["id"]?.stringValue
        parts.info.model = m["model"]?.stringValue
        if let stop = m["stop_reason"]?.stringValue { parts.info.finishReason = stop }
        readUsage(m["usage"], into: &parts)
    }

    static func readUsage(_ usage: JSONValue?, into parts: inout ResponseParts) {
        parts.read(usage: usage, input: "input_tokens", output: "output_tokens", merge: true)
    }

    func makeAccumulator() -> any StreamAccumulator { AnthropicStreamAccumulator(backend: self) }
}

/// Folds Messages stream events: message_start, content_block_*, message_delta, message_stop.
struct AnthropicStreamAccumulator: StreamAccumulator {
    let backend: AnthropicBackend
    var parts = ResponseParts()
    /// Per content block index: its type and what has accumulated.
    var blocks: [Int: (type: String, id: String?, name: String?, text: String, initialInput: JSONValue?)] = [:]
    var order: [Int] = []
    var toolIndex: [Int: Int] = [:]
    /// Thinking blocks' signatures (sent back with the blocks in a tool loop).
    var signatures: [Int: String] = [:]

    init(backend: AnthropicBackend) { self.backend = backend }

    mutating func handle(_ event: SSEEvent, emit: (QueryEvent) -> Void) throws -> Bool {
        if event.isBareError {
            throw QueryError.streamError(backend.errorDetails(status: nil, body: event.data))
        }
        let v = try Self.parse(event)
        let type = v["type"]?.stringValue ?? event.event ?? ""
        switch type {
        case "message_start":
            AnthropicBackend.readMessage(v["message"] ?? .null, into: &parts)
        case "content_block_start":
            startBlock(v, emit: emit)
        case "content_block_delta":
            applyDelta(v, emit: emit)
        case "message_delta":
            if let sr = v["delta"]?["stop_reason"]?.stringValue { parts.info.finishReason = sr }
            AnthropicBackend.readUsage(v["usage"], into: &parts)
        case "message_stop":
            return true
        case "error":
            throw QueryError.streamError(backend.errorDetails(status: nil, body: event.data))
        default:
            break  // ping and future event types
        }
        return false
    }

    /// An event's data as JSON, or the malformed-response error with a snippet of it.
    static func parse(_ event: SSEEvent) throws -> JSONValue {
        do {
            return try JSONValue.parse(event.data)
        } catch {
            throw QueryError.malformedResponse(
                reason: "a stream event is not JSON (\(error))",
                snippet: QueryError.snippet(event.dataString, max: QueryError.keptLength))
        }
    }

    /// A `content_block_start` event: records the block, and announces a tool call (numbered in
    /// the order tool blocks start) or emits a text block's initial text.
    mutating func startBlock(_ v: JSONValue, emit: (QueryEvent) -> Void) {
        let index = v["index"]?.intValue ?? 0
        let cb = v["content_block"] ?? .null
        let btype = cb["type"]?.stringValue ?? "text"
        order.append(index)
        // A thinking block's text is its thinking; a redacted one keeps its whole start (its data).
        blocks[index] = (
            btype, cb["id"]?.stringValue, cb["name"]?.stringValue,
            cb["text"]?.stringValue ?? cb["thinking"]?.stringValue ?? "",
            btype == "redacted_thinking" ? cb : cb["input"]
        )
        if let sig = cb["signature"]?.stringValue, !sig.isEmpty { signatures[index] = sig }
        if btype == "tool_use" {
            let n = toolIndex.count
            toolIndex[index] = n
            emit(.functionArguments(index: n, name: cb["name"]?.stringValue, fragment: ""))
        } else if btype == "text", let t = cb["text"]?.stringValue, !t.isEmpty {
            emit(.text(t))
        }
    }

    /// A `content_block_delta` event: appends a text or argument fragment to its block (one not
    /// started yet is started by it) and emits the fragment; other delta types are not output.
    mutating func applyDelta(_ v: JSONValue, emit: (QueryEvent) -> Void) {
        let index = v["index"]?.intValue ?? 0
        let d = v["delta"] ?? .null
        if blocks[index] == nil {
            order.append(index)
            blocks[index] = (d["type"] == "input_json_delta" ? "tool_use" : "text", nil, nil, "", nil)
        }
        switch d["type"]?.stringValue {
        case "text_delta":
            let t = d["text"]?.stringValue ?? ""
            blocks[index]!.text += t
            if !t.isEmpty { emit(.text(t)) }
        case "input_json_delta":
            let f = d["partial_json"]?.stringValue ?? ""
            blocks[index]!.text += f
            if !f.isEmpty { emit(.functionArguments(index: toolIndex[index] ?? 0, name: nil, fragment: f)) }
        case "thinking_delta":
            let t = d["thinking"]?.stringValue ?? ""
            blocks[index]!.text += t
            parts.reasoning += t
            if !t.isEmpty { emit(.reasoning(t)) }
        case "signature_delta":
            signatures[index, default: ""] += d["signature"]?.stringValue ?? ""
        default: break  // signature_delta, …: not output
        }
    }

    func finish(complete: Bool) throws -> ResponseParts {
        if !complete {
            throw QueryError.truncatedStream(reason: "no message_stop (\(order.count) content blocks received)")
        }
        var p = parts
        var text = ""
        for i in order {
            guard let b = blocks[i] else { continue }
            if b.type == "text" {
                text += b.text
            } else if b.type == "thinking" {
                var block: JSONObject = ["type": "thinking", "thinking": .string(b.text)]
                if let sig = signatures[i] { block["signature"] = .string(sig) }
                p.info.thinkingBlocks.append(.object(block))
            } else if b.type == "redacted_thinking", let raw = b.initialInput {
                p.info.thinkingBlocks.append(raw)
            } else if b.type == "tool_use" {
                let args = b.text.isEmpty ? (b.initialInput ?? .object(JSONObject())).serialized() : b.text
                p.toolCalls.append(RawToolCall(id: b.id, name: b.name ?? "", arguments: args))
            }
        }
        p.text = text
        return p
    }
}
