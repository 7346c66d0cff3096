import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// Anthropic Messages event streams and bodies for scripting the server.
enum AnthropicFixture {
    /// The start of a stream that has shown `text`, without its end.
    static func partialText(_ text: String) -> String {
        start()
            + event(
                "content_block_start",
                ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]])
            + event(
                "content_block_delta",
                ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": .string(text)]])
    }

    static func message(
        text: String? = "Hi!", tool: (name: String, input: JSONValue)? = nil, stop: String = "end_turn",
        usage: JSONValue = ["input_tokens": 15, "output_tokens": 6]
    ) -> JSONValue {
        var content: [JSONValue] = []
        if let text { content.append(["type": "text", "text": .string(text)]) }
        if let tool {
            content.append(["type": "tool_use", "id": "toolu_1", "name": .string(tool.name), "input": tool.input])
        }
        return [
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test", "content": .array(content),
            "stop_reason": .string(stop), "usage": usage,
        ]
    }

    static func event(_ type: String, _ data: JSONValue) -> String { "event: \(type)\ndata: \(data.serialized())\n\n" }

    static func start(input: Int = 25) -> String {
        event(
            "message_start",
            [
                "type": "message_start",
                "message": [
                    "id": "msg_s", "type": "message", "role": "assistant", "model": "claude-test", "content": [],
                    "usage": [
                        "input_tokens": .integer(Int64(input)), "output_tokens": 1, "cache_read_input_tokens": 4,
                    ],
                ],
            ])
    }

    static func textStream(_ pieces: [String], output: Int = 9) -> String {
        var s = start()
        s += event(
            "content_block_start",
            ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]])
        s += event("ping", ["type": "ping"])
        for p in pieces {
            s += event(
                "content_block_delta",
                ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": .string(p)]])
        }
        s += event("content_block_stop", ["type": "content_block_stop", "index": 0])
        s += event(
            "message_delta",
            [
                "type": "message_delta", "delta": ["stop_reason": "end_turn"],
                "usage": ["output_tokens": .integer(Int64(output))],
            ])
        s += event("some_future_event", ["type": "some_future_event"])
        s += event("message_stop", ["type": "message_stop"])
        return s
    }

    static func toolStream(name: String, pieces: [String]) -> String {
        var s = start()
        s += event(
            "content_block_start",
            [
                "type": "content_block_start", "index": 0,
                "content_block": ["type": "tool_use", "id": "toolu_9", "name": .string(name), "input": [:]],
            ])
        for p in pieces {
            s += event(
                "content_block_delta",
                [
                    "type": "content_block_delta", "index": 0,
                    "delta": ["type": "input_json_delta", "partial_json": .string(p)],
                ])
        }
        s += event("content_block_stop", ["type": "content_block_stop", "index": 0])
        s += event(
            "message_delta",
            ["type": "message_delta", "delta": ["stop_reason": "tool_use"], "usage": ["output_tokens": 30]])
        s += event("message_stop", ["type": "message_stop"])
        return s
    }
}

final class AnthropicClientTests: XCTestCase {
    let spec = try! FunctionSpec(
        name: "grade", description: "Grade it",
        parameters: ["type": "object", "properties": ["grade": ["type": "string"]], "required": ["grade"]])

    func testRequestBodyHeadersAndResult() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(
                200,
                AnthropicFixture.message(usage: [
                    "input_tokens": 15, "output_tokens": 6, "cache_creation_input_tokens": 2,
                ])))
        let r = try await client(server, provider: .anthropic, key: "ant-key").query(
            system: "Be kind.", user: "Hello", options: ["temperature": 0.5, "stop": "END", "top_k": 5, "seed": nil])
        XCTAssertEqual(r.output, .text("Hi!"))
        XCTAssertEqual(r.inputTokens, 15)
        XCTAssertEqual(r.outputTokens, 6)
        XCTAssertEqual(r.info.finishReason, "end_turn")
        XCTAssertEqual(r.info.id, "msg_1")
        XCTAssertEqual(r.info.usage?["cache_creation_input_tokens"], 2)
        let req = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(req.uri, "/v1/messages")
        XCTAssertEqual(req.header("x-api-key"), "ant-key")
        XCTAssertEqual(req.header("anthropic-version"), "2023-06-01")
        XCTAssertNil(req.header("Authorization"))
        XCTAssertEqual(
            req.bodyText,
            #"{"model":"claude-test","system":"Be kind.","messages":[{"role":"user","content":"Hello"}],"max_tokens":4096,"temperature":0.5,"stop_sequences":["END"],"top_k":5}"#
        )
    }

    func testOpenAIOnlyOptionsAreRefusedByName() async throws {
        let server = try await startServer()
        let c = client(server, provider: .anthropic)
        for key in ["presence_penalty", "seed", "response_format"] {
            await assertThrowsQueryError(try await c.query(system: nil, user: "x", options: [key: 1])) { e in
                guard case .invalidRequest(let m) = e else { return XCTFail("\(e)") }
                XCTAssert(m.contains(key), m)
            }
        }
        XCTAssertEqual(server.requests.count, 0)
    }

    func testOneTableOfRefusedOptionsServesEveryCaller() async throws {
        XCTAssertEqual(Provider.openAI.refusedOptions, [])
        XCTAssertNil(Provider.openAI.refusalReason(option: "seed"))
        XCTAssertEqual(Provider.anthropic.refusedOptions.count, 11)
        XCTAssertNil(Provider.anthropic.refusalReason(option: "temperature"))
        let reason = try XCTUnwrap(Provider.anthropic.refusalReason(option: "seed"))
        XCTAssert(reason.contains("seed is OpenAI-only"), reason)
        // The backend refuses exactly what the table lists, with the table's words.
        let server = try await startServer()
        let c = client(server, provider: .anthropic)
        for key in Provider.anthropic.refusedOptions.sorted() {
            await assertThrowsQueryError(try await c.query(system: nil, user: "x", options: [key: 1])) { e in
                XCTAssertEqual(e, .invalidRequest(Provider.anthropic.refusalReason(option: key)!))
            }
        }
        XCTAssertEqual(server.requests.count, 0)
    }

    func testLoneSystemPromptIsSentAsUserAndSaidSo() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, AnthropicFixture.message()))
        let r = try await client(server, provider: .anthropic).query(
            system: "Only a system prompt", user: nil, options: ["max_tokens": 10])
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertNil(body["system"])
        XCTAssertEqual(body["messages"], [["role": "user", "content": "Only a system prompt"]])
        XCTAssertEqual(body["max_tokens"], 10)
        XCTAssert(r.info.notes.contains { $0.contains("sent as the user message") })
    }

    func testChatHistoryAlternatesWithToolTurns() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, AnthropicFixture.message()))
        let call = FunctionCall(
            id: "toolu_1", name: "grade", arguments: ["grade": "A"], rawArguments: #"{"grade":"A"}"#)
        let msgs: [ChatMessage] = [
            .system("s"), .user("u1"), ChatMessage(role: .assistant, content: "", functionCall: call),
            ChatMessage(role: .tool, content: "ok", toolCallID: "toolu_1"), .user("u2"), .user("u3"),
        ]
        _ = try await client(server, provider: .anthropic).query(messages: msgs)
        let sent = try XCTUnwrap(server.requests.first?.json?["messages"]?.arrayValue)
        XCTAssertEqual(sent.map { $0["role"] }, ["user", "assistant", "user"])
        XCTAssertEqual(
            sent[1]["content"], [["type": "tool_use", "id": "toolu_1", "name": "grade", "input": ["grade": "A"]]])
        XCTAssertEqual(
            sent[2]["content"],
            [
                ["type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"], ["type": "text", "text": "u2"],
                ["type": "text", "text": "u3"],
            ])
    }

    func testForcedToolForAnyName() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(200, AnthropicFixture.message(text: nil, tool: ("grade", ["grade": "B"]), stop: "tool_use")))
        let r = try await client(server, provider: .anthropic).query(system: nil, user: "x", functionSpec: spec)
        XCTAssertEqual(r.output.functionCall?.arguments, ["grade": "B"])
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["tools"], [spec.anthropicTool])
        XCTAssertEqual(body["tool_choice"], ["type": "tool", "name": "grade"])
    }

    func testMissingOrWrongToolUseAreTypedErrors() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(200, AnthropicFixture.message(text: "no tool")),
            .json(200, AnthropicFixture.message(text: nil, tool: ("other", [:]))))
        let c = client(server, provider: .anthropic)
        await assertThrowsQueryError(try await c.query(system: nil, user: "x", functionSpec: spec)) {
            XCTAssertEqual($0, .noFunctionCall(expected: "grade", content: "no tool"))
        }
        await assertThrowsQueryError(try await c.query(system: nil, user: "x", functionSpec: spec)) { e in
            guard case .wrongFunction(_, "other", _) = e else { return XCTFail("\(e)") }
        }
    }

    func testStreamedTextInOneByteChunks() async throws {
        let server = try await startServer()
        server.enqueue(.sseRaw(AnthropicFixture.textStream(["Bon", "jour ", "🌍"]), chunkSize: 1))
        let (events, r) = try await streamed(client(server, provider: .anthropic), [.user("x")])
        XCTAssertEqual(text(events), "Bonjour 🌍")
        XCTAssertEqual(r.output, .text("Bonjour 🌍"))
        XCTAssertEqual(r.inputTokens, 25)
        XCTAssertEqual(r.outputTokens, 9, "message_delta's cumulative count wins")
        XCTAssertEqual(r.info.usage?["cache_read_input_tokens"], 4)
        XCTAssertEqual(r.info.finishReason, "end_turn")
        XCTAssertEqual(server.requests.first?.json?["stream"], true)
    }

    func testStreamedToolInputInOneByteChunks() async throws {
        let server = try await startServer()
        server.enqueue(
            .sseRaw(AnthropicFixture.toolStream(name: "grade", pieces: ["{\"gra", "de\": \"A", "+\"}"]), chunkSize: 1))
        let (_, r) = try await streamed(client(server, provider: .anthropic), [.user("x")], spec: spec)
        XCTAssertEqual(r.output.functionCall?.arguments, ["grade": "A+"])
        XCTAssertEqual(r.output.functionCall?.id, "toolu_9")
    }

    func testErrorEventMidStreamIsTypedAndTransientOnesRetryBeforeData() async throws {
        let server = try await startServer()
        let overloaded = AnthropicFixture.event(
            "error", ["type": "error", "error": ["type": "overloaded_error", "message": "Overloaded"]])
        server.enqueue(.sseRaw(AnthropicFixture.start() + overloaded), .sseRaw(AnthropicFixture.textStream(["ok"])))
        let (_, r) = try await streamed(client(server, provider: .anthropic), [.user("x")])
        XCTAssertEqual(r.output, .text("ok"))
        XCTAssertEqual(r.retries, 1)
        // After text was shown, the same error ends the turn.
        let partial = AnthropicFixture.partialText("par")
        server.enqueue(.sseRaw(partial + overloaded))
        await assertThrowsQueryError(try await streamed(client(server, provider: .anthropic), [.user("x")])) { e in
            guard case .streamError(let d) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(d.type, "overloaded_error")
            XCTAssertEqual(d.message, "Overloaded")
        }
        XCTAssertEqual(server.requests.count, 3)
    }

    func testOverloaded529IsRetriedAndErrorBodyIsRead() async throws {
        let server = try await startServer()
        let clock = TestClock()
        server.enqueue(
            .body(529, #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
            .json(200, AnthropicFixture.message()))
        let r = try await client(server, provider: .anthropic, clock: clock).query(system: nil, user: "x")
        XCTAssertEqual(r.retries, 1)
        XCTAssertEqual(clock.sleeps.count, 1)
        server.enqueue(
            .body(400, #"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}"#))
        await assertThrowsQueryError(try await client(server, provider: .anthropic).query(system: nil, user: "x")) {
            e in
            guard case .http(let d) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(d.message, "max_tokens: too large")
            XCTAssertEqual(d.type, "invalid_request_error")
        }
    }

    func testTruncatedStreamWithoutMessageStop() async throws {
        let server = try await startServer()
        let text = AnthropicFixture.textStream(["a"])
        server.enqueue(.sseRaw(String(text[..<text.range(of: "event: message_delta")!.lowerBound])))
        await assertThrowsQueryError(try await streamed(client(server, provider: .anthropic), [.user("x")])) { e in
            guard case .truncatedStream = e else { return XCTFail("\(e)") }
        }
    }
}
