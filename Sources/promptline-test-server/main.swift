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

/// The content of the last message when it is a tool's result (OpenAI `role: "tool"`, or an
/// Anthropic user message of `tool_result` blocks), else nil.
func lastToolResult(_ body: JSONValue) -> String? {
    guard let m = body["messages"]?.arrayValue?.last else { return nil }
    if m["role"] == "tool" { return m["content"]?.stringValue ?? "" }
    let results = (m["content"]?.arrayValue ?? []).filter { $0["type"] == "tool_result" }
    guard !results.isEmpty, m["role"] == "user" else { return nil }
    return results.map { $0["content"]?.stringValue ?? "" }.joined(separator: " | ")
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

/// What an echo reply says, whichever format it is sent in.
struct EchoContent {
    let body: JSONValue
    /// The last user message echoed, or JSON text conforming to a requested response schema.
    let text: String
    /// `text` cut at its spaces, as a stream sends it (each piece but the first with its space).
    let pieces: [String]
    /// The request's characters (the usage's input tokens).
    let inTok: Int64
    /// The function the reply calls (the first tool offered), if any, and its arguments.
    let name: String?
    let args: JSONValue

    /// The content for `body`, its tool read in the Anthropic (`anthropic`) or OpenAI form.
    init(_ body: JSONValue, anthropic: Bool) {
        self.body = body
        // Structured output (a json_schema response_format) is answered with conforming JSON text,
        // as a grammar-constrained server would.
        let schema = body["response_format"]?["json_schema"]?["schema"]
        let result = lastToolResult(body)
        text =
            schema.map { sample($0).serialized() } ?? result.map { "echo: result " + $0 } ?? "echo: " + lastUser(body)
        pieces = text.split(separator: " ", omittingEmptySubsequences: false).enumerated().map {
            $0.offset == 0 ? String($0.element) : " " + $0.element
        }
        inTok = Int64(promptSize(body))
        // A tool is called when one is offered, unless tool_choice is none or the request carries
        // a tool's result back (then the result is echoed): the named tool_choice's tool, else the first.
        let choice = body["tool_choice"]
        let named = choice?["function"]?["name"]?.stringValue ?? choice?["name"]?.stringValue
        let tools = body["tools"]?.arrayValue ?? []
        let offered = tools.first { t in named == nil || (anthropic ? t : t["function"])?["name"]?.stringValue == named
        }
        let none = choice == "none" || choice?["type"] == "none"
        let tool = none || result != nil ? nil : offered
        let function = anthropic ? tool : tool?["function"]
        name = function?["name"]?.stringValue
        args = sample(function?[anthropic ? "input_schema" : "parameters"] ?? [:])
    }

    /// The usage's output tokens: the pieces streamed.
    var outTok: Int64 { Int64(pieces.count) }
}

func echo(_ req: TestHTTPServer.RecordedRequest) -> TestHTTPServer.Reply {
    guard let body = req.json else { return .body(400, #"{"error":{"message":"body is not JSON"}}"#) }
    let stream = body["stream"] == true
    if req.uri.hasSuffix("/messages") {
        let c = EchoContent(body, anthropic: true)
        return stream ? .sseRaw(anthropicEvents(c)) : .json(200, anthropicMessage(c))
    }
    if req.uri.hasSuffix("/responses") {
        let c = EchoContent(ResponsesEcho.chatView(body), anthropic: false)
        return stream ? .sseRaw(ResponsesEcho.events(c)) : .json(200, ResponsesEcho.response(c))
    }
    let c = EchoContent(body, anthropic: false)
    if !stream { return .json(200, openAICompletion(c)) }
    let delay = Int(ProcessInfo.processInfo.environment["ECHO_DELAY_MS"] ?? "") ?? 0
    return .sse(dataLines: openAIChunks(c), delayMs: delay)
}

/// The echo as a whole Anthropic Message: a tool_use block when a tool is offered, else the text.
func anthropicMessage(_ c: EchoContent) -> JSONValue {
    let content: JSONValue =
        c.name.map { [["type": "tool_use", "id": "toolu_1", "name": .string($0), "input": c.args]] } ?? [
            ["type": "text", "text": .string(c.text)]
        ]
    return [
        "id": "msg_1", "type": "message", "role": "assistant", "model": c.body["model"] ?? "claude-test",
        "content": content, "stop_reason": c.name == nil ? "end_turn" : "tool_use",
        "usage": ["input_tokens": .integer(c.inTok), "output_tokens": .integer(c.outTok)],
    ]
}

/// The echo as an Anthropic Messages event stream (the raw `event:`/`data:` text): message_start,
/// one content block, message_delta, message_stop.
func anthropicEvents(_ c: EchoContent) -> String {
    var events: [(String, JSONValue)] = [
        (
            "message_start",
            [
                "type": "message_start",
                "message": [
                    "id": "msg_1", "type": "message", "role": "assistant", "model": c.body["model"] ?? "claude-test",
                    "content": [], "usage": ["input_tokens": .integer(c.inTok), "output_tokens": 1],
                ],
            ]
        )
    ]
    events += anthropicBlockEvents(c)
    events.append(("content_block_stop", ["type": "content_block_stop", "index": 0]))
    events.append(
        (
            "message_delta",
            [
                "type": "message_delta", "delta": ["stop_reason": c.name == nil ? "end_turn" : "tool_use"],
                "usage": ["output_tokens": .integer(c.outTok)],
            ]
        ))
    events.append(("message_stop", ["type": "message_stop"]))
    return events.map { "event: \($0.0)\ndata: \($0.1.serialized())\n\n" }.joined()
}

/// The start and deltas of the stream's one content block: a tool_use block with the arguments
/// in one input_json_delta, or a text block with a text_delta per piece.
func anthropicBlockEvents(_ c: EchoContent) -> [(String, JSONValue)] {
    guard let name = c.name else {
        var events: [(String, JSONValue)] = [
            (
                "content_block_start",
                ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]
            )
        ]
        for p in c.pieces {
            events.append(
                (
                    "content_block_delta",
                    [
                        "type": "content_block_delta", "index": 0,
                        "delta": ["type": "text_delta", "text": .string(p)],
                    ]
                ))
        }
        return events
    }
    return [
        (
            "content_block_start",
            [
                "type": "content_block_start", "index": 0,
                "content_block": ["type": "tool_use", "id": "toolu_1", "name": .string(name), "input": [:]],
            ]
        ),
        (
            "content_block_delta",
            [
                "type": "content_block_delta", "index": 0,
                "delta": ["type": "input_json_delta", "partial_json": .string(c.args.serialized())],
            ]
        ),
    ]
}

/// The OpenAI usage object: the request's characters in, the pieces out.
func openAIUsage(_ c: EchoContent) -> JSONValue {
    [
        "prompt_tokens": .integer(c.inTok), "completion_tokens": .integer(c.outTok),
        "total_tokens": .integer(c.inTok + c.outTok),
    ]
}

/// The echo as a whole OpenAI chat completion: a tool call when a tool is offered, else the text.
func openAICompletion(_ c: EchoContent) -> JSONValue {
    var message: JSONObject = ["role": "assistant", "content": c.name == nil ? .string(c.text) : .null]
    if let name = c.name {
        message["tool_calls"] = [
            [
                "id": "call_1", "type": "function",
                "function": ["name": .string(name), "arguments": .string(c.args.serialized())],
            ]
        ]
    }
    return [
        "id": "chatcmpl-echo", "object": "chat.completion", "created": 1_700_000_000,
        "model": c.body["model"] ?? "echo-model", "system_fingerprint": "fp_echo",
        "choices": [
            ["index": 0, "message": .object(message), "finish_reason": c.name == nil ? "stop" : "tool_calls"]
        ],
        "usage": openAIUsage(c),
    ]
}

/// The echo as OpenAI stream chunks (the `data:` payloads): the role, the call (its name, then
/// its arguments) or a chunk per piece, the finish reason, the usage, `[DONE]`.
func openAIChunks(_ c: EchoContent) -> [String] {
    let model = c.body["model"] ?? "echo-model"
    /// One chunk of choice 0 with `delta` and, on the last, the finish reason.
    func chunk(_ delta: JSONValue, _ finish: String? = nil) -> String {
        JSONValue.object([
            "id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "system_fingerprint": "fp_echo",
            "choices": [["index": 0, "delta": delta, "finish_reason": finish.map { .string($0) } ?? .null]],
        ]).serialized()
    }
    var lines = [chunk(["role": "assistant", "content": ""])]
    if let name = c.name {
        lines.append(
            chunk([
                "tool_calls": [
                    [
                        "index": 0, "id": "call_1", "type": "function",
                        "function": ["name": .string(name), "arguments": ""],
                    ]
                ]
            ]))
        lines.append(chunk(["tool_calls": [["index": 0, "function": ["arguments": .string(c.args.serialized())]]]]))
        lines.append(chunk([:], "tool_calls"))
    } else {
        for p in c.pieces { lines.append(chunk(["content": .string(p)])) }
        lines.append(chunk([:], "stop"))
    }
    lines.append(
        JSONValue.object([
            "id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [], "usage": openAIUsage(c),
        ]).serialized())
    lines.append("[DONE]")
    return lines
}

// PROMPTLINE_TEST_SERVER_HOST: another address to listen on (a name only a proxy is sent to).
let host = ProcessInfo.processInfo.environment["PROMPTLINE_TEST_SERVER_HOST"] ?? "127.0.0.1"
let server = try await TestHTTPServer.start(host: host, defaultReply: echo)
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
