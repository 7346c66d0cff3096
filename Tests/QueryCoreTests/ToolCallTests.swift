import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// Several tools, `tool_choice`, calls answered with results, and structured output, on both
/// wire formats: what is sent, and what comes back from what the server sent.
final class ToolCallTests: XCTestCase {
    let weather = try! FunctionSpec(
        name: "get_weather", description: "Weather for a city",
        parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])
    let time = try! FunctionSpec(
        name: "get_time", parameters: ["type": "object", "properties": ["tz": ["type": "string"]], "required": ["tz"]])
    let person = try! FunctionSpec(
        name: "person",
        parameters: [
            "type": "object", "properties": ["name": ["type": "string"], "age": ["type": "integer"]],
            "required": ["name", "age"], "additionalProperties": false,
        ])

    func request(
        _ c: QueryClient, _ messages: [ChatMessage] = [.user("Weather and time in Oslo?")], choice: ToolChoice? = nil,
        schema: FunctionSpec? = nil, stream: Bool = false, tools: [FunctionSpec]? = nil
    ) throws -> QueryRequest {
        var r = try c.makeRequest(messages: messages, functionSpec: nil, options: [:], stream: stream)
        r.tools = tools ?? [weather, time]
        r.toolChoice = choice
        r.outputSchema = schema
        return r
    }

    /// Two calls in one reply, the second's arguments not JSON and the first naming a tool that
    /// was not offered: all come back as made, in order, for the caller to show and check.
    static let parallelReply: JSONValue = [
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-test",
        "choices": [
            [
                "index": 0, "finish_reason": "tool_calls",
                "message": [
                    "role": "assistant", "content": "Checking.",
                    "tool_calls": [
                        [
                            "id": "call_a", "type": "function",
                            "function": ["name": "get_forecast", "arguments": #"{"city":"Oslo"}"#],
                        ],
                        [
                            "id": "call_b", "type": "function",
                            "function": ["name": "get_time", "arguments": #"{"tz": Europe/Oslo}"#],
                        ],
                    ],
                ],
            ]
        ],
        "usage": ["prompt_tokens": 30, "completion_tokens": 12],
    ]

    func testParallelCallsComeBackAsMadeWithTheirIDs() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, Self.parallelReply))
        let c = client(server)
        let r = try await c.run(try request(c)) { _ in }
        guard case .toolCalls(let calls, let text) = r.output else { return XCTFail("\(r.output)") }
        XCTAssertEqual(text, "Checking.")
        XCTAssertEqual(calls.map(\.id), ["call_a", "call_b"])
        XCTAssertEqual(calls.map(\.name), ["get_forecast", "get_time"])
        XCTAssertEqual(calls[0].arguments, ["city": "Oslo"])
        XCTAssertEqual(calls[1].arguments, .null, "arguments that are not JSON stay raw")
        XCTAssertEqual(calls[1].rawArguments, #"{"tz": Europe/Oslo}"#)
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["tools"], [weather.openAITool, time.openAITool])
        XCTAssertEqual(body["tool_choice"], "auto")
        SchemaRecorder.record(server.requests, name: "tools-parallel")
    }

    func testStreamedParallelCallsInOneByteChunks() async throws {
        let server = try await startServer()
        let chunks = [
            OpenAIFixture.chunk([
                "role": "assistant",
                "tool_calls": [
                    [
                        "index": 0, "id": "call_x", "type": "function",
                        "function": ["name": "get_weather", "arguments": ""],
                    ]
                ],
            ]),
            OpenAIFixture.chunk(["tool_calls": [["index": 0, "function": ["arguments": #"{"city":"#]]]]),
            OpenAIFixture.chunk([
                "tool_calls": [
                    [
                        "index": 1, "id": "call_y", "type": "function",
                        "function": ["name": "get_time", "arguments": "{"],
                    ]
                ]
            ]),
            OpenAIFixture.chunk(["tool_calls": [["index": 0, "function": ["arguments": #""Oslo"}"#]]]]),
            OpenAIFixture.chunk(["tool_calls": [["index": 1, "function": ["arguments": #""tz":"CET"}"#]]]]),
            OpenAIFixture.chunk([:], finish: "tool_calls"), OpenAIFixture.usageChunk(20, 9), "[DONE]",
        ]
        server.enqueue(.sse(dataLines: chunks, chunkSize: 1))
        let c = client(server)
        var names: [String] = []
        let r = try await c.run(try request(c, stream: true)) { e in
            if case .functionArguments(_, let name?, _) = e { names.append(name) }
        }
        XCTAssertEqual(names, ["get_weather", "get_time"])
        XCTAssertEqual(
            r.output,
            .toolCalls(
                [
                    FunctionCall(
                        id: "call_x", name: "get_weather", arguments: ["city": "Oslo"],
                        rawArguments: #"{"city":"Oslo"}"#),
                    FunctionCall(
                        id: "call_y", name: "get_time", arguments: ["tz": "CET"], rawArguments: #"{"tz":"CET"}"#),
                ], text: ""))
        XCTAssertEqual(r.outputTokens, 9)
        SchemaRecorder.record(server.requests, name: "tools-stream")
    }

    func testResultsGoBackAsToolMessagesWithTheirCallIDs() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion(text: "Sunny, and 10:00.")))
        let c = client(server)
        let calls = [
            FunctionCall(
                id: "call_a", name: "get_weather", arguments: ["city": "Oslo"], rawArguments: #"{"city":"Oslo"}"#),
            FunctionCall(id: "call_b", name: "get_time", arguments: ["tz": "CET"], rawArguments: #"{"tz":"CET"}"#),
        ]
        let messages: [ChatMessage] = [
            .user("Weather and time in Oslo?"), ChatMessage(role: .assistant, content: "", toolCalls: calls),
            .toolResult("10:00", callID: "call_b"), .toolResult("error: timeout", callID: "call_a", isError: true),
        ]
        let r = try await c.run(try request(c, messages)) { _ in }
        XCTAssertEqual(r.output, .text("Sunny, and 10:00."))
        let sent = try XCTUnwrap(server.requests.first?.json?["messages"]?.arrayValue)
        XCTAssertEqual(sent[1]["tool_calls"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, ["call_a", "call_b"])
        XCTAssertEqual(sent[2], ["role": "tool", "tool_call_id": "call_b", "content": "10:00"])
        XCTAssertEqual(sent[3], ["role": "tool", "tool_call_id": "call_a", "content": "error: timeout"])
        SchemaRecorder.record(server.requests, name: "tools-results")
    }

    func testChoicesOnTheWire() async throws {
        let server = try await startServer()
        for _ in 0..<4 { server.enqueue(.json(200, OpenAIFixture.completion(text: "ok"))) }
        let c = client(server)
        for choice in [ToolChoice.none, .required, .auto] {
            _ = try await c.run(try request(c, choice: choice)) { _ in }
        }
        // Named, against a server that is not llama.cpp: every tool offered, the named form.
        _ = try await c.run(try request(c, choice: .named("get_time"))) { _ in }
        let bodies = server.requests.compactMap(\.json)
        XCTAssertEqual(
            bodies.map { $0["tool_choice"] },
            ["none", "required", "auto", ["type": "function", "function": ["name": "get_time"]]])
        XCTAssertEqual(bodies[3]["tools"]?.arrayValue?.count, 2)
        SchemaRecorder.record(server.requests, name: "tools-choices")
        await assertThrowsQueryError(try c.requestBody(for: try request(c, choice: .named("nope")))) {
            guard case .invalidRequest(let m) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(m.contains("nope"), m)
        }
    }

    /// llama.cpp reads tool_choice as a string only: a named choice goes through the json-schema
    /// grammar, and the reply's JSON is that tool's call.
    func testNamedChoiceOnLlamaCppIsForcedThroughTheSchemaAndComesBackAsACall() async throws {
        let server = try await startServer()
        server.identity = .llamaCpp
        server.enqueue(.sse(dataLines: OpenAIFixture.textStream([#"{"tz":"#, #""CET"}"#]), chunkSize: 1))
        let c = client(server)
        var pieces: [String] = []
        let r = try await c.run(try request(c, choice: .named("get_time"), stream: true)) { e in
            if case .functionArguments(_, _, let f) = e { pieces.append(f) }
        }
        XCTAssertEqual(pieces.joined(), #"{"tz":"CET"}"#)
        XCTAssertEqual(r.output.calls.map(\.name), ["get_time"])
        XCTAssertEqual(r.output.calls.first?.arguments, ["tz": "CET"])
        XCTAssertNil(r.output.calls.first?.id, "ids are the caller's to give")
        XCTAssertEqual(r.info.forcedCall, .jsonSchema)
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["response_format"], time.responseFormat)
        XCTAssertNil(body["tools"])
        SchemaRecorder.record(server.requests, name: "tools-named-llamacpp")
    }

    func testStructuredOutputIsTheReplysJSONText() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion(text: #"{"name":"Ada","age":36}"#)))
        let c = client(server)
        let r = try await c.run(try request(c, [.user("Ada, 36")], schema: person, tools: [])) { _ in }
        XCTAssertEqual(r.output, .text(#"{"name":"Ada","age":36}"#))
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["response_format"]?["json_schema"]?["strict"], true, "the schema allows strict mode")
        XCTAssertNil(body["tools"])
        SchemaRecorder.record(server.requests, name: "structured-output")
    }

    // MARK: - Anthropic

    func testAnthropicToolsChoicesAndResults() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(200, AnthropicFixture.message(text: nil, tool: ("get_time", ["tz": "CET"]), stop: "tool_use")),
            .json(200, AnthropicFixture.message(text: "It is 10:00.")))
        let c = client(server, provider: .anthropic)
        let r1 = try await c.run(try request(c, choice: .required)) { _ in }
        XCTAssertEqual(r1.output.calls.map(\.id), ["toolu_1"])
        let calls = r1.output.calls
        let history: [ChatMessage] = [
            .user("Weather and time in Oslo?"), ChatMessage(role: .assistant, content: "", toolCalls: calls),
            .toolResult("10:00", callID: "toolu_1"),
        ]
        _ = try await c.run(try request(c, history, choice: .named("get_time"))) { _ in }
        let bodies = server.requests.compactMap(\.json)
        XCTAssertEqual(bodies[0]["tool_choice"], ["type": "any"])
        XCTAssertEqual(bodies[0]["tools"], [weather.anthropicTool, time.anthropicTool])
        XCTAssertEqual(bodies[1]["tool_choice"], ["type": "tool", "name": "get_time"])
        let sent = try XCTUnwrap(bodies[1]["messages"]?.arrayValue)
        XCTAssertEqual(
            sent[1]["content"], [["type": "tool_use", "id": "toolu_1", "name": "get_time", "input": ["tz": "CET"]]])
        XCTAssertEqual(
            sent[2],
            ["role": "user", "content": [["type": "tool_result", "tool_use_id": "toolu_1", "content": "10:00"]]])
    }

    /// Error results carry is_error, and a prompt after them joins the same user message (the API
    /// wants roles to alternate, results first).
    func testAnthropicErrorResultsAndAPromptAfterThem() throws {
        let c = QueryClient(provider: .anthropic, baseURL: "http://127.0.0.1:1", defaultModel: "claude-test")
        let call = FunctionCall(id: "toolu_1", name: "get_time", arguments: .null, rawArguments: "{oops")
        let messages: [ChatMessage] = [
            .user("time?"), ChatMessage(role: .assistant, content: "", toolCalls: [call]),
            .toolResult("error: no result", callID: "toolu_1", isError: true), .user("never mind"),
        ]
        let body = try c.requestBody(for: try request(c, messages))
        let sent = try XCTUnwrap(body["messages"]?.arrayValue)
        XCTAssertEqual(sent.count, 3)
        XCTAssertEqual(
            sent[1]["content"]?.arrayValue?.first?["input"], [:], "arguments that were not an object are sent as none")
        XCTAssertEqual(
            sent[2]["content"],
            [
                ["type": "tool_result", "tool_use_id": "toolu_1", "content": "error: no result", "is_error": true],
                ["type": "text", "text": "never mind"],
            ])
    }

    func testAnthropicStructuredOutputIsAForcedToolReadAsText() async throws {
        let server = try await startServer()
        server.enqueue(
            .sseRaw(
                AnthropicFixture.toolStream(name: "person", pieces: [#"{"name":"#, #""Ada","age":36}"#]), chunkSize: 1))
        let c = client(server, provider: .anthropic)
        var streamed = ""
        let r = try await c.run(try request(c, [.user("Ada, 36")], schema: person, stream: true, tools: [])) { e in
            if case .text(let t) = e { streamed += t }
        }
        XCTAssertEqual(r.output, .text(#"{"name":"Ada","age":36}"#))
        XCTAssertEqual(streamed, #"{"name":"Ada","age":36}"#)
        XCTAssertTrue(r.info.notes.contains { $0.contains("forced tool") }, "\(r.info.notes)")
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["tool_choice"], ["type": "tool", "name": "person"])
        await assertThrowsQueryError(try c.requestBody(for: try request(c, schema: person))) {
            guard case .invalidRequest(let m) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(m.contains("cannot be combined with tools"), m)
        }
    }
}
