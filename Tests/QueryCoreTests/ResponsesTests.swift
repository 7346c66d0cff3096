import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// Responses stream events and bodies for scripting the server.
enum ResponsesFixture {
    static func event(_ v: JSONValue) -> String {
        "event: \(v["type"]?.stringValue ?? "")\ndata: \(v.serialized())\n\n"
    }

    static let created = event([
        "type": "response.created",
        "response": ["id": "resp_1", "object": "response", "status": "in_progress", "model": "gpt-test"],
    ])

    static func completed(input: Int = 12, output: Int = 7, reasoning: Int = 3, status: String = "completed")
        -> String
    {
        event([
            "type": "response.completed",
            "response": [
                "id": "resp_1", "object": "response", "created_at": 1_700_000_000, "status": .string(status),
                "model": "gpt-test", "output": [],
                "usage": [
                    "input_tokens": .integer(Int64(input)), "output_tokens": .integer(Int64(output)),
                    "input_tokens_details": ["cached_tokens": 4],
                    "output_tokens_details": ["reasoning_tokens": .integer(Int64(reasoning))],
                ],
            ],
        ])
    }

    static func text(_ pieces: [String]) -> String {
        pieces.map { event(["type": "response.output_text.delta", "output_index": 1, "delta": .string($0)]) }.joined()
    }

    /// A whole Response whose output is one message of `text`.
    static func response(_ text: String) -> JSONValue {
        [
            "id": "resp_w", "object": "response", "status": "completed", "model": "gpt-test",
            "output": [
                ["type": "message", "role": "assistant", "content": [["type": "output_text", "text": .string(text)]]]
            ],
            "usage": ["input_tokens": 5, "output_tokens": 2],
        ]
    }
}

/// The Responses wire format (`openai-responses`): what is sent for a session, and every stream
/// event kind read in 1-byte chunks, errors mid-stream and a truncated stream.
final class ResponsesTests: XCTestCase {
    let weather = try! FunctionSpec(
        name: "get_weather", description: "Weather for a city",
        parameters: [
            "type": "object", "properties": ["city": ["type": "string"]], "required": ["city"],
            "additionalProperties": false,
        ])

    func client(_ server: TestHTTPServer) -> QueryClient {
        QueryClient(
            provider: .openAIResponses, baseURL: server.baseURL + "/v1", apiKey: "sk-test-key",
            defaultModel: "gpt-test",
            retryPolicy: .none)
    }

    func run(_ c: QueryClient, _ r: QueryRequest) async throws -> (events: [QueryEvent], result: QueryResult) {
        var events: [QueryEvent] = []
        let result = try await c.run(r) { events.append($0) }
        return (events, result)
    }

    func testAStreamedTurnWithReasoningAndUsageInOneByteChunks() async throws {
        let server = try await startServer()
        let body =
            ResponsesFixture.created
            + ResponsesFixture.event([
                "type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "Think",
            ])
            + ResponsesFixture.event([
                "type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "ing.",
            ])
            + ResponsesFixture.text(["Hel", "lo"])
            + ResponsesFixture.event(["type": "response.output_text.done", "output_index": 1, "text": "Hello"])
            + ResponsesFixture.event(["type": "some.future_event"]) + ResponsesFixture.completed()
        server.enqueue(.sseRaw(body, chunkSize: 1))
        let c = client(server)
        let request = try c.makeRequest(
            messages: [.system("Be brief."), .user("Hi"), .assistant("Hello?"), .user("Again")], functionSpec: nil,
            options: ["max_tokens": 50, "temperature": 0.2, "reasoning_effort": "low", "store": false], stream: true)
        let (events, r) = try await run(c, request)
        XCTAssertEqual(QueryCoreTests.text(events), "Hello")
        XCTAssertEqual(events.compactMap { if case .reasoning(let t) = $0 { t } else { nil } }.joined(), "Thinking.")
        XCTAssertEqual(r.output, .text("Hello"))
        XCTAssertEqual(r.info.reasoning, "Thinking.")
        XCTAssertEqual(r.inputTokens, 12)
        XCTAssertEqual(r.outputTokens, 7)
        XCTAssertEqual(r.info.reasoningTokens, 3)
        XCTAssertEqual(r.info.cachedInputTokens, 4)
        XCTAssertEqual(r.info.id, "resp_1")
        XCTAssertEqual(r.info.finishReason, "completed")
        let sent = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(sent.uri, "/v1/responses")
        let b = try XCTUnwrap(sent.json)
        XCTAssertEqual(b["instructions"], "Be brief.")
        XCTAssertEqual(
            b["input"],
            [
                ["role": "user", "content": "Hi"], ["type": "message", "role": "assistant", "content": "Hello?"],
                ["role": "user", "content": "Again"],
            ])
        XCTAssertEqual(b["max_output_tokens"], 50)
        XCTAssertNil(b["max_tokens"])
        XCTAssertEqual(b["reasoning"], ["effort": "low", "summary": "auto"])
        XCTAssertEqual(b["store"], false)
        XCTAssertEqual(b["stream"], true)
        SchemaRecorder.record(server.requests, name: "responses-stream")
    }

    func testToolCallsStreamedAndResultsSentBackAsItems() async throws {
        let server = try await startServer()
        let call =
            ResponsesFixture.created
            + ResponsesFixture.event([
                "type": "response.output_item.added", "output_index": 0,
                "item": [
                    "type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "get_weather", "arguments": "",
                ],
            ])
            + ResponsesFixture.event([
                "type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "fc_1",
                "delta": #"{"ci"#,
            ])
            + ResponsesFixture.event([
                "type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "fc_1",
                "delta": #"ty":"Oslo"}"#,
            ])
            + ResponsesFixture.event([
                "type": "response.output_item.done", "output_index": 0,
                "item": [
                    "type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "get_weather",
                    "arguments": #"{"city":"Oslo"}"#,
                ],
            ]) + ResponsesFixture.completed()
        server.enqueue(
            .sseRaw(call, chunkSize: 1),
            .sseRaw(
                ResponsesFixture.created + ResponsesFixture.text(["Sunny."]) + ResponsesFixture.completed(),
                chunkSize: 1))
        let c = client(server)
        var request = try c.makeRequest(
            messages: [.user("Weather in Oslo?")], functionSpec: nil, options: [:], stream: true)
        request.tools = [weather]
        request.toolChoice = .required
        let (events, r1) = try await run(c, request)
        XCTAssertTrue(events.contains(.functionArguments(index: 0, name: "get_weather", fragment: "")))
        let calls = r1.output.calls
        XCTAssertEqual(calls.map(\.id), ["call_a"])
        XCTAssertEqual(calls.first?.arguments, ["city": "Oslo"])
        request.messages += [
            ChatMessage(role: .assistant, content: "", toolCalls: calls), .toolResult("sunny", callID: "call_a"),
        ]
        request.toolChoice = .auto
        let (_, r2) = try await run(c, request)
        XCTAssertEqual(r2.output, .text("Sunny."))
        let bodies = server.requests.compactMap(\.json)
        XCTAssertEqual(
            bodies[0]["tools"],
            [
                [
                    "type": "function", "name": "get_weather", "description": "Weather for a city",
                    "parameters": weather.parameters, "strict": true,
                ]
            ])
        XCTAssertEqual(bodies[0]["tool_choice"], "required")
        XCTAssertEqual(
            bodies[1]["input"]?.arrayValue?.suffix(2).map { $0 },
            [
                [
                    "type": "function_call", "call_id": "call_a", "name": "get_weather",
                    "arguments": #"{"city":"Oslo"}"#,
                ],
                ["type": "function_call_output", "call_id": "call_a", "output": "sunny"],
            ])
        SchemaRecorder.record(server.requests, name: "responses-tools")
    }

    /// The forced-function strategies on this format; json-schema's reply text is the call.
    func testForcedFunctionStrategies() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(
                200,
                [
                    "id": "resp_2", "object": "response", "status": "completed", "model": "gpt-test",
                    "output": [
                        [
                            "type": "message", "role": "assistant",
                            "content": [["type": "output_text", "text": #"{"city":"Rome"}"#]],
                        ]
                    ],
                    "usage": ["input_tokens": 5, "output_tokens": 4],
                ]))
        var c = client(server)
        c.forcedCall = .jsonSchema
        let r = try await c.query(system: nil, user: "Rome?", functionSpec: weather)
        XCTAssertEqual(r.output.functionCall?.arguments, ["city": "Rome"])
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["text"]?["format"]?["type"], "json_schema")
        XCTAssertEqual(body["text"]?["format"]?["schema"], weather.parameters)
        XCTAssertNil(body["response_format"], "only llama.cpp gets the chat-style format as well")
        c.forcedCall = .named
        let named = try c.requestBody(
            for: try c.makeRequest(messages: [.user("x")], functionSpec: weather, options: [:], stream: false))
        XCTAssertEqual(named["tool_choice"], ["type": "function", "name": "get_weather"])
        c.forcedCall = .tools
        let tools = try c.requestBody(
            for: try c.makeRequest(messages: [.user("x")], functionSpec: weather, options: [:], stream: false))
        XCTAssertEqual(tools["tool_choice"], "required")
        SchemaRecorder.record(server.requests, name: "responses-forced")
        // Against llama.cpp (probed), json-schema sends response_format too: its grammar reads that one.
        let llama = try await startServer()
        llama.identity = .llamaCpp
        llama.enqueue(
            .json(
                200,
                ["id": "r", "status": "completed", "output": [], "usage": ["input_tokens": 1, "output_tokens": 1]]))
        let lc = await client(llama).resolvingForcedCall()
        let b = try lc.requestBody(
            for: try lc.makeRequest(messages: [.user("x")], functionSpec: weather, options: [:], stream: false))
        XCTAssertEqual(b["response_format"], weather.responseFormat)
        XCTAssertEqual(b["text"]?["format"]?["name"], "get_weather")
    }

    func testChatOnlyOptionsAreRefusedBeforeSending() async throws {
        let server = try await startServer()
        let c = client(server)
        for key in ["stop", "seed", "response_format"] {
            await assertThrowsQueryError(try await c.query(system: nil, user: "x", options: [key: "v"])) { e in
                guard case .invalidRequest(let m) = e else { return XCTFail("\(e)") }
                XCTAssertTrue(m.contains("Chat Completions parameter"), m)
            }
        }
        XCTAssertEqual(server.requests.count, 0)
    }

    func testErrorsMidStreamAndATruncatedStream() async throws {
        let server = try await startServer()
        server.enqueue(
            .sseRaw(
                ResponsesFixture.created + ResponsesFixture.text(["par"])
                    + ResponsesFixture.event([
                        "type": "response.failed",
                        "response": [
                            "id": "r", "status": "failed", "error": ["code": "server_error", "message": "boom"],
                        ],
                    ]), chunkSize: 1),
            .sseRaw(
                ResponsesFixture.created
                    + ResponsesFixture.event(["type": "error", "code": "rate_limit_exceeded", "message": "slow down"]),
                chunkSize: 1),
            .sseRaw(ResponsesFixture.created + ResponsesFixture.text(["cut"]), chunkSize: 1))
        let c = client(server)
        let request = try c.makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: true)
        await assertThrowsQueryError(try await c.run(request) { _ in }) { e in
            XCTAssertTrue("\(e)".contains("boom"), "\(e)")
        }
        await assertThrowsQueryError(try await c.run(request) { _ in }) { e in
            XCTAssertTrue("\(e)".contains("slow down"), "\(e)")
        }
        await assertThrowsQueryError(try await c.run(request) { _ in }) { e in
            guard case .truncatedStream(let reason) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(reason.contains("no response.completed"), reason)
        }
    }

    func testAWholeResponseWithAReasoningSummaryACallAndAnIncompleteStatus() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(
                200,
                [
                    "id": "resp_3", "object": "response", "created_at": 1_700_000_001, "status": "incomplete",
                    "incomplete_details": ["reason": "max_output_tokens"], "model": "gpt-test",
                    "output": [
                        ["type": "reasoning", "summary": [["type": "summary_text", "text": "Plan."]]],
                        [
                            "type": "function_call", "call_id": "call_z", "name": "get_weather",
                            "arguments": #"{"city":"Paris"}"#,
                        ],
                    ],
                    "usage": [
                        "input_tokens": 9, "output_tokens": 16, "output_tokens_details": ["reasoning_tokens": 12],
                    ],
                ]))
        let c = client(server)
        var request = try c.makeRequest(messages: [.user("Paris?")], functionSpec: nil, options: [:], stream: false)
        request.tools = [weather]
        let r = try await c.run(request) { _ in }
        XCTAssertEqual(r.output.calls.map(\.id), ["call_z"])
        XCTAssertEqual(r.info.reasoning, "Plan.")
        XCTAssertEqual(r.info.finishReason, "max_output_tokens")
        XCTAssertEqual(r.info.created, 1_700_000_001)
        XCTAssertEqual(r.info.reasoningTokens, 12)
        SchemaRecorder.record(server.requests, name: "responses-whole")
    }
}
