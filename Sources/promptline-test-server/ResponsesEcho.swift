import QueryCore

/// The echo in the OpenAI Responses format: a request's `input` items read as chat messages,
/// answered with a Response object or its event stream (text deltas, or one function call).
enum ResponsesEcho {
    /// A Responses request as the Chat Completions request it stands for, for ``EchoContent``:
    /// `instructions` as the system message, `function_call_output` items as tool messages,
    /// flat tools as `function` tools, `text.format`'s schema as the response format.
    static func chatView(_ body: JSONValue) -> JSONValue {
        var messages: [JSONValue] = []
        if let i = body["instructions"]?.stringValue { messages.append(["role": "system", "content": .string(i)]) }
        switch body["input"] {
        case .string(let s)?: messages.append(["role": "user", "content": .string(s)])
        case .array(let items)?:
            for item in items {
                if item["type"] == "function_call_output" {
                    messages.append(["role": "tool", "content": item["output"] ?? ""])
                } else if let role = item["role"] {
                    messages.append(["role": role, "content": item["content"] ?? ""])
                }
            }
        default: break
        }
        var o: JSONObject = ["model": body["model"] ?? "echo-model", "messages": .array(messages)]
        if let tools = body["tools"]?.arrayValue {
            o["tools"] = .array(tools.map { ["type": "function", "function": $0] })
        }
        if let c = body["tool_choice"] {
            o["tool_choice"] = c["name"].map { ["type": "function", "function": ["name": $0]] } ?? c
        }
        if let schema = body["text"]?["format"]?["schema"] {
            o["response_format"] = ["json_schema": ["schema": schema]]
        }
        return .object(o)
    }

    static func usage(_ c: EchoContent) -> JSONValue {
        [
            "input_tokens": .integer(c.inTok), "output_tokens": .integer(c.outTok),
            "total_tokens": .integer(c.inTok + c.outTok), "input_tokens_details": ["cached_tokens": 0],
            "output_tokens_details": ["reasoning_tokens": 0],
        ]
    }

    /// The reply's one output item: a function call when a tool is called, else a message.
    static func item(_ c: EchoContent) -> JSONValue {
        if let name = c.name {
            return [
                "type": "function_call", "id": "fc_1", "call_id": "call_1", "name": .string(name),
                "arguments": .string(c.args.serialized()), "status": "completed",
            ]
        }
        return [
            "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
            "content": [["type": "output_text", "text": .string(c.text), "annotations": []]],
        ]
    }

    static func response(_ c: EchoContent) -> JSONValue {
        [
            "id": "resp_echo", "object": "response", "created_at": 1_700_000_000, "status": "completed",
            "model": c.body["model"] ?? "echo-model", "output": [item(c)], "usage": usage(c),
        ]
    }

    /// response.created, the item's deltas, response.completed.
    static func events(_ c: EchoContent) -> String {
        var events: [JSONValue] = [
            [
                "type": "response.created",
                "response": [
                    "id": "resp_echo", "object": "response", "status": "in_progress", "model": c.body["model"] ?? "",
                ],
            ]
        ]
        if let name = c.name {
            events.append([
                "type": "response.output_item.added", "output_index": 0,
                "item": [
                    "type": "function_call", "id": "fc_1", "call_id": "call_1", "name": .string(name), "arguments": "",
                ],
            ])
            events.append([
                "type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "fc_1",
                "delta": .string(c.args.serialized()),
            ])
            events.append(["type": "response.output_item.done", "output_index": 0, "item": item(c)])
        } else {
            events.append([
                "type": "response.output_item.added", "output_index": 0, "item": ["type": "message", "id": "msg_1"],
            ])
            for p in c.pieces {
                events.append([
                    "type": "response.output_text.delta", "output_index": 0, "item_id": "msg_1", "delta": .string(p),
                ])
            }
        }
        events.append(["type": "response.completed", "response": response(c)])
        return events.map { "event: \($0["type"]?.stringValue ?? "")\ndata: \($0.serialized())\n\n" }.joined()
    }
}
