import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// The fault matrix of docs/fault-matrix.md, each row against both providers' wire formats.
final class FaultMatrixTests: XCTestCase {
    typealias Reply = TestHTTPServer.Reply

    let spec = try! FunctionSpec(
        name: "f", parameters: ["type": "object", "properties": ["a": ["type": "string"]], "required": ["a"]])

    func success(_ p: Provider, stream: Bool) -> Reply {
        switch (p, stream) {
        case (.openAI, false): return .json(200, OpenAIFixture.completion(text: "ok"))
        case (.openAI, true): return .sse(dataLines: OpenAIFixture.textStream(["o", "k"]))
        case (.anthropic, false): return .json(200, AnthropicFixture.message(text: "ok"))
        case (.anthropic, true): return .sseRaw(AnthropicFixture.textStream(["o", "k"]))
        case (.openAIResponses, false): return .json(200, ResponsesFixture.response("ok"))
        case (.openAIResponses, true):
            return .sseRaw(ResponsesFixture.created + ResponsesFixture.text(["o", "k"]) + ResponsesFixture.completed())
        }
    }

    /// The start of a stream that has shown text ("par"), without its end.
    func partialStream(_ p: Provider) -> String {
        switch p {
        case .openAI:
            return OpenAIFixture.textStream(["par"]).prefix(2).map { "data: \($0)\n\n" }.joined()
        case .anthropic:
            return AnthropicFixture.partialText("par")
        case .openAIResponses:
            return ResponsesFixture.created + ResponsesFixture.text(["par"])
        }
    }

    func errorBody(_ p: Provider, _ message: String, type: String) -> String {
        p.isOpenAI
            ? JSONValue.object(["error": ["message": .string(message), "type": .string(type), "code": nil]])
                .serialized()
            : JSONValue.object(["type": "error", "error": ["type": .string(type), "message": .string(message)]])
                .serialized()
    }

    func run(
        _ p: Provider, _ server: TestHTTPServer, clock: TestClock = TestClock(), stream: Bool = false,
        spec: FunctionSpec? = nil, readTimeout: Double = 5
    ) async throws -> QueryResult {
        let c = client(server, provider: p, clock: clock, readTimeout: readTimeout)
        return try await c.run(c.makeRequest(messages: [.user("x")], functionSpec: spec, options: [:], stream: stream))
        { _ in }
    }

    func testRetriedStatusesAndRetryHeaders() async throws {
        for p in Provider.allCases {
            let server = try await startServer()
            let clock = TestClock()
            clock.wall = RetryPolicy.parseDateForTests("Thu, 15 Jan 2027 08:00:00 GMT")
            server.enqueue(
                .body(429, errorBody(p, "slow down", type: "rate_limit_error"), headers: [("retry-after", "3")]),
                .body(429, "{}", headers: [("retry-after-ms", "1500")]),
                .body(503, "{}", headers: [("retry-after", "Thu, 15 Jan 2027 08:00:04 GMT")]),
                .body(500, "{}"), .body(502, "<html><title>502 Bad Gateway</title></html>", contentType: "text/html"),
                .body(504, "{}"),
                success(p, stream: false))
            // 7 answers need 7 attempts.
            let c = QueryClient(
                provider: p, baseURL: server.baseURL + (p.isOpenAI ? "/v1" : ""), defaultModel: "m",
                transport: AsyncHTTPClientTransport(connectTimeout: 2, readTimeout: 5),
                retryPolicy: RetryPolicy(maxAttempts: 7), clock: clock)
            let r = try await c.query(system: nil, user: "x")
            XCTAssertEqual(r.retries, 6, "\(p)")
            XCTAssertEqual(Array(clock.sleeps.prefix(3)), [3, 1.5, 4], "\(p)")
            server.enqueue(.body(529, errorBody(p, "Overloaded", type: "overloaded_error")), success(p, stream: false))
            let r529 = try await run(p, server)
            XCTAssertEqual(r529.retries, 1, "\(p) 529")
        }
    }

    func testXShouldRetryBothWays() async throws {
        for p in Provider.allCases {
            let server = try await startServer()
            server.enqueue(
                .body(400, errorBody(p, "retry me", type: "x"), headers: [("x-should-retry", "true")]),
                success(p, stream: false))
            let retried = try await run(p, server)
            XCTAssertEqual(retried.retries, 1)
            server.enqueue(.body(503, errorBody(p, "do not", type: "x"), headers: [("x-should-retry", "false")]))
            await assertThrowsQueryError(try await run(p, server)) { XCTAssertEqual($0.status, 503) }
        }
    }

    func testClientErrorsCarryTheServersMessageAndAreNotRetried() async throws {
        for p in Provider.allCases {
            let server = try await startServer()
            for (status, hint) in [(401, "API key"), (403, "permissions"), (404, "model name"), (400, "")] {
                server.enqueue(
                    .body(
                        status, errorBody(p, "server says \(status)", type: "invalid_request_error"),
                        headers: [("request-id", "req_\(status)")]))
                await assertThrowsQueryError(try await run(p, server)) { e in
                    XCTAssertEqual(e.status, status)
                    XCTAssert(
                        e.description.contains("server says \(status)") && e.description.contains("req_\(status)")
                            && (hint.isEmpty || e.description.contains(hint)), e.description)
                }
            }
            XCTAssertEqual(server.requests.count, 4, "\(p): no retries on 4xx")
        }
    }

    func testConnectionFaultsBeforeTheBodyAreRetried() async throws {
        for p in Provider.allCases {
            let server = try await startServer()
            server.enqueue(
                .closeWithoutResponse, Reply(status: nil, steps: [.reset]),
                Reply(status: 200, headers: [("Content-Type", "text/event-stream")], steps: [.reset]),
                success(p, stream: true))
            let r = try await run(p, server, stream: true)
            XCTAssertEqual(r.output, .text("ok"), "\(p)")
            XCTAssertEqual(r.retries, 3, "\(p)")
        }
    }

    func testStreamsThatShowedTextAreNeverRetried() async throws {
        for p in Provider.allCases {
            for end: TestHTTPServer.Step in [.close, .reset] {
                let server = try await startServer()
                server.enqueue(
                    .sseRaw(partialStream(p), endWith: [.delay(milliseconds: 20), end]), success(p, stream: true))
                await assertThrowsQueryError(try await run(p, server, stream: true)) { e in
                    switch e {
                    case .transport, .truncatedStream: break
                    default: XCTFail("\(p) \(end): \(e)")
                    }
                }
                XCTAssertEqual(server.requests.count, 1, "\(p)")
            }
        }
    }

    func testStalledBodyAndTruncatedStream() async throws {
        for p in Provider.allCases {
            let server = try await startServer()
            server.enqueue(.sseRaw(partialStream(p), endWith: [.stall]))
            await assertThrowsQueryError(try await run(p, server, stream: true, readTimeout: 0.5)) { e in
                guard case .transport(.readTimeout, _) = e else { return XCTFail("\(p): \(e)") }
            }
            server.enqueue(.sseRaw(partialStream(p)))
            await assertThrowsQueryError(try await run(p, server, stream: true)) { e in
                guard case .truncatedStream = e else { return XCTFail("\(p): \(e)") }
            }
        }
    }

    func testErrorEventsMidStream() async throws {
        let openAI = "data: " + #"{"error":{"message":"model crashed","type":"server_error"}}"# + "\n\n"
        let anthropic = AnthropicFixture.event(
            "error", ["type": "error", "error": ["type": "api_error", "message": "model crashed"]])
        for p in Provider.allCases {
            let server = try await startServer()
            let responses = ResponsesFixture.event([
                "type": "error", "code": "server_error", "message": "model crashed",
            ])
            let err = p == .openAI ? openAI : p == .anthropic ? anthropic : responses
            server.enqueue(.sseRaw(partialStream(p) + err))
            await assertThrowsQueryError(try await run(p, server, stream: true)) { e in
                guard case .streamError(let d) = e else { return XCTFail("\(p): \(e)") }
                XCTAssertEqual(d.message, "model crashed")
            }
            XCTAssertEqual(server.requests.count, 1, "shown text: not retried")
        }
    }

    func testMalformedBodies() async throws {
        for p in Provider.allCases {
            let server = try await startServer()
            let empty: JSONValue =
                p == .openAI
                ? ["id": "x", "choices": []]
                : p == .anthropic ? ["id": "x", "type": "message"] : ["id": "x", "object": "response"]
            for reply in [
                Reply.body(200, "{not json"), .json(200, empty),
                .body(200, "<html>proxy</html>", contentType: "text/html"),
            ] {
                server.enqueue(reply)
                await assertThrowsQueryError(try await run(p, server)) { e in
                    guard case .malformedResponse = e else { return XCTFail("\(p): \(e)") }
                }
            }
            server.enqueue(.sseRaw("data: {not json\n\n"))
            await assertThrowsQueryError(try await run(p, server, stream: true)) { e in
                guard case .malformedResponse = e else { return XCTFail("\(p): \(e)") }
            }
        }
    }

    func testMissingUsageIsUnknownNotZero() async throws {
        for p in Provider.allCases {
            let server = try await startServer()
            var responses = ResponsesFixture.response("ok")
            if case .object(var o) = responses {
                o["usage"] = nil
                responses = .object(o)
            }
            let body: JSONValue =
                p == .openAI
                ? OpenAIFixture.completion(text: "ok", usage: nil)
                : p == .openAIResponses
                    ? responses
                    : [
                        "id": "m", "type": "message", "model": "m", "content": [["type": "text", "text": "ok"]],
                        "stop_reason": "end_turn",
                    ]
            server.enqueue(.json(200, body))
            let r = try await run(p, server)
            XCTAssertNil(r.inputTokens, "\(p)")
            XCTAssertNil(r.outputTokens, "\(p)")
        }
    }

    func testFunctionCallFaults() async throws {
        for p in Provider.allCases {
            let server = try await startServer()
            let wrongName: JSONValue =
                p == .openAI
                ? OpenAIFixture.completion(text: nil, toolCall: ("g", #"{"a":"b"}"#))
                : p == .anthropic
                    ? AnthropicFixture.message(text: nil, tool: ("g", ["a": "b"]))
                    : [
                        "id": "r", "status": "completed",
                        "output": [["type": "function_call", "call_id": "c", "name": "g", "arguments": #"{"a":"b"}"#]],
                    ]
            server.enqueue(.json(200, wrongName))
            await assertThrowsQueryError(try await run(p, server, spec: spec)) { e in
                guard case .wrongFunction("f", "g", _) = e else { return XCTFail("\(p): \(e)") }
            }
            let responsesCall =
                ResponsesFixture.created
                + ResponsesFixture.event([
                    "type": "response.output_item.added", "output_index": 0,
                    "item": ["type": "function_call", "call_id": "c", "name": "f", "arguments": ""],
                ])
                + ResponsesFixture.event([
                    "type": "response.function_call_arguments.delta", "output_index": 0, "delta": #"{"a": "#,
                ]) + ResponsesFixture.completed()
            let badArgs =
                p == .openAI
                ? Reply.json(200, OpenAIFixture.completion(text: nil, toolCall: ("f", #"{"a": "#)))
                : p == .anthropic
                    ? Reply.sseRaw(AnthropicFixture.toolStream(name: "f", pieces: ["{\"a\": "]))
                    : Reply.sseRaw(responsesCall)
            server.enqueue(badArgs)
            await assertThrowsQueryError(try await run(p, server, stream: p != .openAI, spec: spec)) { e in
                guard case .invalidArguments(_, let raw, _) = e else { return XCTFail("\(p): \(e)") }
                XCTAssertEqual(raw, #"{"a": "#)
            }
        }
    }
}
