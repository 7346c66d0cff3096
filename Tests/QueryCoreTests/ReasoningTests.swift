import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// Reasoning controls and reasoning output: OpenAI reasoning models' parameters, Anthropic
/// extended thinking (budget, what it refuses, signed blocks sent back), and reasoning deltas.
final class ReasoningTests: XCTestCase {
    func body(
        _ c: QueryClient, _ messages: [ChatMessage] = [.user("x")], options: QueryOptions, spec: FunctionSpec? = nil
    )
        throws -> JSONValue
    {
        try c.requestBody(
            for: try c.makeRequest(messages: messages, functionSpec: spec, options: options, stream: false))
    }

    func testReasoningModelsTakeMaxCompletionTokensAndRefuseSamplingBeforeSending() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion(text: "ok")))
        let c = client(server)
        let r = try await c.query(
            system: nil, user: "x",
            options: ["model": "o4-mini", "max_tokens": 100, "reasoning_effort": "low", "temperature": 1])
        XCTAssertTrue(
            r.info.notes.contains { $0.contains("max_tokens was sent as max_completion_tokens") }, "\(r.info.notes)")
        let sent = try XCTUnwrap(server.requests.first?.json)
        XCTAssertNil(sent["max_tokens"])
        XCTAssertEqual(sent["max_completion_tokens"], 100)
        XCTAssertEqual(sent["reasoning_effort"], "low")
        SchemaRecorder.record(server.requests, name: "reasoning-model")
        await assertThrowsQueryError(
            try await c.query(system: nil, user: "x", options: ["model": "gpt-5", "temperature": 0.2])
        ) {
            XCTAssertEqual(
                $0,
                .invalidRequest(
                    "gpt-5 is a reasoning model: it takes no temperature (reasoning_effort and max_completion_tokens instead)"
                ))
        }
        XCTAssertEqual(server.requests.count, 1, "refused before sending")
        XCTAssertFalse(ReasoningModels.matches("gpt-5-chat-latest"))
        XCTAssertFalse(ReasoningModels.matches("gpt-4o-mini"))
        XCTAssertFalse(ReasoningModels.matches("omni"))
        // Responses: the same refusal; max_tokens becomes max_output_tokens, effort a reasoning object.
        let rc = QueryClient(provider: .openAIResponses, baseURL: "http://127.0.0.1:1/v1", defaultModel: "o3")
        let rb = try body(rc, options: ["max_tokens": 50, "reasoning_effort": "high"])
        XCTAssertEqual(rb["max_output_tokens"], 50)
        XCTAssertEqual(rb["reasoning"], ["effort": "high", "summary": "auto"])
        XCTAssertThrowsError(try body(rc, options: ["top_p": 0.5]))
    }

    func testAnthropicThinkingBudgetAndWhatItRefuses() throws {
        let c = QueryClient(provider: .anthropic, baseURL: "http://127.0.0.1:1", defaultModel: "claude-test")
        let small = try body(c, options: ["thinking": 2048])
        XCTAssertEqual(small["thinking"], ["type": "enabled", "budget_tokens": 2048])
        XCTAssertEqual(small["max_tokens"], 4096)
        let big = try c.httpRequest(
            for: try c.makeRequest(
                messages: [.user("x")], functionSpec: nil, options: ["thinking": 8000], stream: false))
        XCTAssertEqual(try JSONValue.parse(big.request.body)["max_tokens"], 12096)
        XCTAssertTrue(big.notes.contains { $0.contains("above the thinking budget") }, "\(big.notes)")
        XCTAssertThrowsError(try body(c, options: ["thinking": 2048, "temperature": 0.5])) {
            XCTAssertTrue("\($0)".contains("does not go with temperature"), "\($0)")
        }
        XCTAssertThrowsError(try body(c, options: ["thinking": 2048, "max_tokens": 1000])) {
            XCTAssertTrue("\($0)".contains("must be larger than the thinking budget"), "\($0)")
        }
        let spec = try FunctionSpec(name: "f", parameters: ["type": "object"])
        XCTAssertThrowsError(try body(c, options: ["thinking": 2048], spec: spec)) {
            XCTAssertTrue("\($0)".contains("a forced call cannot go with it"), "\($0)")
        }
    }

    /// Thinking streams as reasoning; its signed block comes back in the info and goes first in
    /// the assistant message when the conversation is sent again (a tool loop needs it).
    func testAnthropicThinkingBlocksStreamAndGoBackSigned() async throws {
        let server = try await startServer()
        let e = AnthropicFixture.event
        let stream =
            AnthropicFixture.start()
            + e(
                "content_block_start",
                ["type": "content_block_start", "index": 0, "content_block": ["type": "thinking", "thinking": ""]])
            + e(
                "content_block_delta",
                [
                    "type": "content_block_delta", "index": 0,
                    "delta": ["type": "thinking_delta", "thinking": "Let me "],
                ])
            + e(
                "content_block_delta",
                ["type": "content_block_delta", "index": 0, "delta": ["type": "thinking_delta", "thinking": "see."]])
            + e(
                "content_block_delta",
                [
                    "type": "content_block_delta", "index": 0,
                    "delta": ["type": "signature_delta", "signature": "sig=="],
                ])
            + e("content_block_stop", ["type": "content_block_stop", "index": 0])
            + e(
                "content_block_start",
                [
                    "type": "content_block_start", "index": 1,
                    "content_block": ["type": "redacted_thinking", "data": "opaque"],
                ])
            + e(
                "content_block_start",
                ["type": "content_block_start", "index": 2, "content_block": ["type": "text", "text": ""]])
            + e(
                "content_block_delta",
                ["type": "content_block_delta", "index": 2, "delta": ["type": "text_delta", "text": "Yes."]])
            + e(
                "message_delta",
                ["type": "message_delta", "delta": ["stop_reason": "end_turn"], "usage": ["output_tokens": 30]])
            + e("message_stop", ["type": "message_stop"])
        server.enqueue(.sseRaw(stream, chunkSize: 1))
        let c = client(server, provider: .anthropic)
        var reasoning = ""
        let r = try await c.run(
            try c.makeRequest(messages: [.user("Q")], functionSpec: nil, options: ["thinking": 1024], stream: true)
        ) { ev in
            if case .reasoning(let t) = ev { reasoning += t }
        }
        XCTAssertEqual(reasoning, "Let me see.")
        XCTAssertEqual(r.output, .text("Yes."))
        XCTAssertEqual(r.info.reasoning, "Let me see.")
        XCTAssertEqual(
            r.info.thinkingBlocks,
            [
                ["type": "thinking", "thinking": "Let me see.", "signature": "sig=="],
                ["type": "redacted_thinking", "data": "opaque"],
            ])
        let history: [ChatMessage] = [
            .user("Q"), ChatMessage(role: .assistant, content: "Yes.", thinking: r.info.thinkingBlocks), .user("More"),
        ]
        let sent = try body(c, history, options: ["thinking": 1024])
        XCTAssertEqual(
            sent["messages"]?.arrayValue?[1]["content"],
            [
                ["type": "thinking", "thinking": "Let me see.", "signature": "sig=="],
                ["type": "redacted_thinking", "data": "opaque"],
                ["type": "text", "text": "Yes."],
            ])
        // Other formats never send them.
        let openAI = QueryClient(provider: .openAI, baseURL: "http://127.0.0.1:1/v1", defaultModel: "m")
        XCTAssertEqual(
            try body(openAI, history, options: [:])["messages"]?.arrayValue?[1],
            ["role": "assistant", "content": "Yes."])
    }

    func testChatReasoningDeltasInOneByteChunks() async throws {
        let server = try await startServer()
        server.enqueue(
            .sse(
                dataLines: [
                    OpenAIFixture.chunk(["role": "assistant", "reasoning_content": "Six "]),
                    OpenAIFixture.chunk(["reasoning": "sevens."]), OpenAIFixture.chunk(["content": "42"]),
                    OpenAIFixture.chunk([:], finish: "stop"), "[DONE]",
                ], chunkSize: 1))
        var order: [String] = []
        let r = try await client(server).run(
            try client(server).makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: true)
        ) { e in
            switch e {
            case .reasoning(let t): order.append("r:" + t)
            case .text(let t): order.append("t:" + t)
            default: break
            }
        }
        XCTAssertEqual(order, ["r:Six ", "r:sevens.", "t:42"])
        XCTAssertEqual(r.info.reasoning, "Six sevens.")
        XCTAssertEqual(r.output, .text("42"))
    }

    func testChatReasoningContentInAWholeResponse() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion(text: "42", extra: [:]).withReasoning("Six times seven.")))
        let r = try await client(server).query(system: nil, user: "x")
        XCTAssertEqual(r.output, .text("42"))
        XCTAssertEqual(r.info.reasoning, "Six times seven.")
    }
}

extension JSONValue {
    /// A chat completion with `reasoning_content` in its first choice's message (llama.cpp, DeepSeek).
    func withReasoning(_ r: String) -> JSONValue {
        guard case .object(var o) = self, case .array(var choices)? = o["choices"], case .object(var c) = choices[0],
            case .object(var m)? = c["message"]
        else { return self }
        m["reasoning_content"] = .string(r)
        c["message"] = .object(m)
        choices[0] = .object(c)
        o["choices"] = .array(choices)
        return .object(o)
    }
}
