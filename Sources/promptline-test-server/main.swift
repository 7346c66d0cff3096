// A stand-alone TestHTTPServer for tests that run the promptline binary in another process
// (the pseudo-terminal end-to-end suite). It prints `PORT <n>` and serves until stdin closes.
//
// Unscripted requests get a deterministic echo: the last user message comes back as
// "echo: <text>", streamed word by word when the request streams, in the OpenAI or Anthropic
// format by path, with usage = (characters in the request's messages, pieces streamed). A forced
// function gets a call whose arguments satisfy the schema's required properties. With
// PROMPTLINE_TEST_SERVER_IDENTITY=llama.cpp it answers the forced-call probe as llama.cpp does.
// Replies scripted through `/_control/enqueue` take precedence.
import Foundation
import QueryCore
import TestHTTPServer

func lastUser(_ body: JSONValue) -> String {
    let msgs = body["messages"]?.arrayValue ?? []
    guard let m = msgs.last(where: { $0["role"] == "user" }) else { return "" }
    if let s = m["content"]?.stringValue { return s }
    return (m["content"]?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined(separator: " ")
}

func promptSize(_ body: JSONValue) -> Int {
    var n = body["system"]?.stringValue?.count ?? 0
    for m in body["messages"]?.arrayValue ?? [] {
        n += m["content"]?.stringValue?.count ?? m["content"].map { $0.serialized().count } ?? 0
    }
    return n
}

/// Arguments that satisfy the required properties of an object schema.
func sample(_ schema: JSONValue) -> JSONValue {
    switch schema["type"]?.stringValue {
    case "object":
        var o = JSONObject()
        let props = schema["properties"]?.objectValue ?? JSONObject()
        for r in schema["required"]?.arrayValue ?? [] {
            if let k = r.stringValue { o[k] = sample(props[k] ?? [:]) }
        }
        return .object(o)
    case "integer": return 42
    case "number": return 1.5
    case "boolean": return true
    case "array": return []
    default:
        if let e = schema["enum"]?.arrayValue?.first { return e }
        return "sample"
    }
}

func echo(_ req: TestHTTPServer.RecordedRequest) -> TestHTTPServer.Reply {
    guard let body = req.json else { return .body(400, #"{"error":{"message":"body is not JSON"}}"#) }
    // Structured output (a json_schema response_format) is answered with conforming JSON text,
    // as a grammar-constrained server would.
    let schema = body["response_format"]?["json_schema"]?["schema"]
    let text = schema.map { sample($0).serialized() } ?? "echo: " + lastUser(body)
    let pieces = text.split(separator: " ", omittingEmptySubsequences: false).enumerated().map {
        $0.offset == 0 ? String($0.element) : " " + $0.element
    }
    let stream = body["stream"] == true
    let inTok = Int64(promptSize(body))
    let outTok = Int64(pieces.count)
    let tool = body["tools"]?.arrayValue?.first
    let anthropic = req.uri.hasSuffix("/messages")
    let delay = Int(ProcessInfo.processInfo.environment["ECHO_DELAY_MS"] ?? "") ?? 0
    if anthropic {
        let name = tool?["name"]?.stringValue
        let args = sample(tool?["input_schema"] ?? [:])
        if !stream {
            let content: JSONValue =
                name.map { [["type": "tool_use", "id": "toolu_1", "name": .string($0), "input": args]] } ?? [
                    ["type": "text", "text": .string(text)]
                ]
            return .json(
                200,
                [
                    "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"] ?? "claude-test",
                    "content": content, "stop_reason": name == nil ? "end_turn" : "tool_use",
                    "usage": ["input_tokens": .integer(inTok), "output_tokens": .integer(outTok)],
                ])
        }
        var events: [(String, JSONValue)] = [
            (
                "message_start",
                [
                    "type": "message_start",
                    "message": [
                        "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"] ?? "claude-test",
                        "content": [], "usage": ["input_tokens": .integer(inTok), "output_tokens": 1],
                    ],
                ]
            )
        ]
        if let name {
            events.append(
                (
                    "content_block_start",
                    [
                        "type": "content_block_start", "index": 0,
                        "content_block": ["type": "tool_use", "id": "toolu_1", "name": .string(name), "input": [:]],
                    ]
                ))
            events.append(
                (
                    "content_block_delta",
                    [
                        "type": "content_block_delta", "index": 0,
                        "delta": ["type": "input_json_delta", "partial_json": .string(args.serialized())],
                    ]
                ))
        } else {
            events.append(
                (
                    "content_block_start",
                    ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]
                ))
            for p in pieces {
                events.append(
                    (
                        "content_block_delta",
                        [
                            "type": "content_block_delta", "index": 0,
                            "delta": ["type": "text_delta", "text": .string(p)],
                        ]
                    ))
            }
        }
        events.append(("content_block_stop", ["type": "content_block_stop", "index": 0]))
        events.append(
            (
                "message_delta",
                [
                    "type": "message_delta", "delta": ["stop_reason": name == nil ? "end_turn" : "tool_use"],
                    "usage": ["output_tokens": .integer(outTok)],
                ]
            ))
        events.append(("message_stop", ["type": "message_stop"]))
        let raw = events.map { "event: \($0.0)\ndata: \($0.1.serialized())\n\n" }.joined()
        return .sseRaw(raw)
    }
    let name = tool?["function"]?["name"]?.stringValue
    let args = sample(tool?["function"]?["parameters"] ?? [:]).serialized()
    let model = body["model"] ?? "echo-model"
    if !stream {
        var message: JSONObject = ["role": "assistant", "content": name == nil ? .string(text) : .null]
        if let name {
            message["tool_calls"] = [
                ["id": "call_1", "type": "function", "function": ["name": .string(name), "arguments": .string(args)]]
            ]
        }
        return .json(
            200,
            [
                "id": "chatcmpl-echo", "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "system_fingerprint": "fp_echo",
                "choices": [
                    ["index": 0, "message": .object(message), "finish_reason": name == nil ? "stop" : "tool_calls"]
                ],
                "usage": [
                    "prompt_tokens": .integer(inTok), "completion_tokens": .integer(outTok),
                    "total_tokens": .integer(inTok + outTok),
                ],
            ])
    }
    func chunk(_ delta: JSONValue, _ finish: String? = nil) -> String {
        JSONValue.object([
            "id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "system_fingerprint": "fp_echo",
            "choices": [["index": 0, "delta": delta, "finish_reason": finish.map { .string($0) } ?? .null]],
        ]).serialized()
    }
    var lines = [chunk(["role": "assistant", "content": ""])]
    if let name {
        lines.append(
            chunk([
                "tool_calls": [
                    [
                        "index": 0, "id": "call_1", "type": "function",
                        "function": ["name": .string(name), "arguments": ""],
                    ]
                ]
            ]))
        lines.append(chunk(["tool_calls": [["index": 0, "function": ["arguments": .string(args)]]]]))
        lines.append(chunk([:], "tool_calls"))
    } else {
        for p in pieces { lines.append(chunk(["content": .string(p)])) }
        lines.append(chunk([:], "stop"))
    }
    lines.append(
        JSONValue.object([
            "id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [],
            "usage": [
                "prompt_tokens": .integer(inTok), "completion_tokens": .integer(outTok),
                "total_tokens": .integer(inTok + outTok),
            ],
        ]).serialized())
    lines.append("[DONE]")
    return .sse(dataLines: lines, delayMs: delay)
}

let server = try await TestHTTPServer.start(defaultReply: echo)
if let id = ProcessInfo.processInfo.environment["PROMPTLINE_TEST_SERVER_IDENTITY"].flatMap(
    TestHTTPServer.Identity.init(rawValue:))
{
    server.identity = id
}
print("PORT \(server.port)")
fflush(nil)
// Serve until whoever started us closes our stdin (or kills us).
while readLine() != nil {}
server.stop()
