import Foundation
import QueryCore
import TestHTTPServer
import XCTest

final class OpenAIClientTests: XCTestCase {
    let spec = try! FunctionSpec(
        name: "submit", description: "Submit a review",
        parameters: [
            "type": "object", "properties": ["score": ["type": "integer"], "summary": ["type": "string"]],
            "required": ["score"],
        ])

    // MARK: requests

    func testNonStreamedQuerySendsAIDEsBodyAndReturnsUsageAndInfo() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion(text: "Hello!")))
        let c = client(server)
        let r = try await c.query(
            system: "Be brief.", user: "Hi",
            options: ["model": "gpt-4o-mini", "temperature": 0, "max_tokens": nil, "top_k": 40])
        XCTAssertEqual(r.output, .text("Hello!"))
        XCTAssertEqual(r.inputTokens, 12)
        XCTAssertEqual(r.outputTokens, 5)
        XCTAssertEqual(r.retries, 0)
        XCTAssertNil(r.timeToFirstToken)
        XCTAssertEqual(r.info.model, "gpt-test")
        XCTAssertEqual(r.info.created, 1_700_000_000)
        XCTAssertEqual(r.info.systemFingerprint, "fp_abc")
        XCTAssertEqual(r.info.finishReason, "stop")
        XCTAssertEqual(r.info.id, "chatcmpl-1")
        XCTAssertGreaterThan(r.requestTime, 0)
        let req = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(req.uri, "/v1/chat/completions")
        XCTAssertEqual(req.header("Authorization"), "Bearer sk-test-key")
        XCTAssertEqual(req.header("User-Agent"), "QueryCore", "the core names no application")
        XCTAssertEqual(
            req.bodyText,
            #"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0,"top_k":40}"#
        )
        SchemaRecorder.record(server.requests, name: "nonstreamed")
    }

    func testTheCallerNamesItselfInTheUserAgent() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion()))
        var c = client(server)
        c.userAgent = "my-app/2.0"
        _ = try await c.query(system: nil, user: "Hi")
        XCTAssertEqual(server.requests.first?.header("User-Agent"), "my-app/2.0")
    }

    func testEmptySystemOrUserIsLeftOut() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion()), .json(200, OpenAIFixture.completion()))
        let c = client(server, key: nil)
        _ = try await c.query(system: "", user: "only user")
        _ = try await c.query(system: "only system", user: nil)
        XCTAssertEqual(server.requests[0].json?["messages"], [["role": "user", "content": "only user"]])
        XCTAssertEqual(server.requests[1].json?["messages"], [["role": "system", "content": "only system"]])
        XCTAssertNil(server.requests[0].header("Authorization"), "no key, no header")
        SchemaRecorder.record(server.requests, name: "optmessages")
    }

    func testMultiTurnMessagesWithToolHistory() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion()))
        let call = FunctionCall(id: "call_1", name: "submit", arguments: ["score": 3], rawArguments: #"{"score":3}"#)
        let msgs: [ChatMessage] = [
            .system("s"), .user("u1"), ChatMessage(role: .assistant, content: "", functionCall: call),
            ChatMessage(role: .tool, content: "ok", toolCallID: "call_1"), .assistant("a2"), .user("u2"),
        ]
        _ = try await client(server).query(messages: msgs)
        let sent = try XCTUnwrap(server.requests.first?.json?["messages"]?.arrayValue)
        XCTAssertEqual(sent.count, 6)
        XCTAssertEqual(
            sent[2],
            [
                "role": "assistant", "content": nil,
                "tool_calls": [
                    ["id": "call_1", "type": "function", "function": ["name": "submit", "arguments": #"{"score":3}"#]]
                ],
            ])
        XCTAssertEqual(sent[3], ["role": "tool", "tool_call_id": "call_1", "content": "ok"])
        SchemaRecorder.record(server.requests, name: "multiturn")
    }

    func testStreamedTextInOneByteChunksWithUTF8Split() async throws {
        let server = try await startServer()
        server.enqueue(.sse(dataLines: OpenAIFixture.textStream(["Hé", "llo 🌍", " wörld"]), chunkSize: 1))
        let (events, r) = try await streamed(client(server), [.user("hi")], options: ["temperature": 0.7])
        XCTAssertEqual(text(events), "Héllo 🌍 wörld")
        XCTAssertEqual(r.output, .text("Héllo 🌍 wörld"))
        XCTAssertEqual(r.inputTokens, 9)
        XCTAssertEqual(r.outputTokens, 4)
        XCTAssertNotNil(r.timeToFirstToken)
        XCTAssertEqual(r.info.systemFingerprint, "fp_stream")
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["stream"], true)
        XCTAssertEqual(body["stream_options"], ["include_usage": true])
        XCTAssertEqual(body["temperature"], 0.7)
        SchemaRecorder.record(server.requests, name: "streamed")
    }

    func testStreamWithCRLFAndCommentsAndNoUsage() async throws {
        let server = try await startServer()
        let chunks = OpenAIFixture.textStream(["a", "b"], usage: nil)
        let raw = ": ping\r\n\r\n" + chunks.map { "data: \($0)\r\n\r\n" }.joined()
        server.enqueue(.sseRaw(raw, chunkSize: 7))
        let (_, r) = try await streamed(client(server), [.user("x")])
        XCTAssertEqual(r.output, .text("ab"))
        XCTAssertNil(r.inputTokens, "no usage: unknown, never a made-up 0")
        XCTAssertNil(r.outputTokens)
    }

    // MARK: forced function

    func testForcedFunctionSendsRequiredToolChoiceAndParsesArguments() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(
                200,
                OpenAIFixture.completion(
                    text: nil, toolCall: ("submit", #"{"score": 4, "summary": "ok"}"#), finish: "tool_calls")))
        let r = try await client(server).query(system: "sys", user: "review", functionSpec: spec)
        XCTAssertEqual(r.output.functionCall?.name, "submit")
        XCTAssertEqual(r.output.functionCall?.arguments, ["score": 4, "summary": "ok"])
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["tools"], [spec.openAITool])
        XCTAssertEqual(body["tool_choice"], "required")
        SchemaRecorder.record(server.requests, name: "forced")
    }

    func testNamedToolChoiceStyleIsAvailable() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion(text: nil, toolCall: ("submit", #"{"score":1}"#))))
        var c = client(server)
        c.forcedCall = .named
        _ = try await c.query(system: nil, user: "x", functionSpec: spec)
        XCTAssertEqual(
            server.requests.first?.json?["tool_choice"], ["type": "function", "function": ["name": "submit"]])
        SchemaRecorder.record(server.requests, name: "named")
    }

    func testStreamedToolCallAccumulatesByIndexInOneByteChunks() async throws {
        let server = try await startServer()
        server.enqueue(
            .sse(
                dataLines: OpenAIFixture.toolStream(
                    name: "submit", argPieces: ["{\"sco", "re\": 5, \"summ", "ary\": \"naïve ✓\"}"]), chunkSize: 1))
        let (events, r) = try await streamed(client(server), [.user("x")], spec: spec)
        XCTAssertEqual(r.output.functionCall?.arguments, ["score": 5, "summary": "naïve ✓"])
        XCTAssertEqual(r.output.functionCall?.id, "call_9")
        let fragments = events.compactMap {
            if case .functionArguments(_, _, let f) = $0 { return f } else { return nil }
        }.joined()
        XCTAssertEqual(fragments, #"{"score": 5, "summary": "naïve ✓"}"#)
        XCTAssertEqual(events.first, .functionArguments(index: 0, name: "submit", fragment: ""))
        XCTAssertEqual(r.inputTokens, 20)
        SchemaRecorder.record(server.requests, name: "streamtool")
    }

    func testMissingToolCallCarriesTheText() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion(text: "I'd rather chat.")))
        await assertThrowsQueryError(try await client(server).query(system: nil, user: "x", functionSpec: spec)) { e in
            XCTAssertEqual(e, .noFunctionCall(expected: "submit", content: "I'd rather chat."))
            XCTAssert(e.description.contains("I'd rather chat."))
        }
        XCTAssertEqual(server.requests.count, 1, "not retried")
    }

    func testWrongFunctionNameAndInvalidArguments() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(200, OpenAIFixture.completion(text: nil, toolCall: ("other", #"{"a":1}"#))),
            .json(200, OpenAIFixture.completion(text: nil, toolCall: ("submit", #"{"score": 4,"#))),
            .json(200, OpenAIFixture.completion(text: nil, toolCall: ("submit", #"[1,2]"#))))
        let c = client(server)
        await assertThrowsQueryError(try await c.query(system: nil, user: "x", functionSpec: spec)) { e in
            XCTAssertEqual(e, .wrongFunction(expected: "submit", got: "other", rawArguments: #"{"a":1}"#))
        }
        await assertThrowsQueryError(try await c.query(system: nil, user: "x", functionSpec: spec)) { e in
            guard case .invalidArguments(let fn, let raw, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(fn, "submit")
            XCTAssertEqual(raw, #"{"score": 4,"#)
        }
        await assertThrowsQueryError(try await c.query(system: nil, user: "x", functionSpec: spec)) { e in
            guard case .invalidArguments(_, _, let reason) = e else { return XCTFail("\(e)") }
            XCTAssert(reason.contains("object"))
        }
    }

    // MARK: retries

    func testRetryAfterIsHonouredThroughTheClock() async throws {
        let server = try await startServer()
        server.enqueue(
            .body(
                429, #"{"error":{"message":"slow down","type":"rate_limit_exceeded"}}"#, headers: [("retry-after", "2")]
            ),
            .body(503, "{}", headers: [("retry-after-ms", "250")]),
            .body(500, "{}", headers: [("retry-after", "Thu, 15 Jan 2027 08:00:05 GMT")]),
            .json(200, OpenAIFixture.completion()))
        let clock = TestClock()
        clock.wall = RetryPolicy.parseDateForTests("Thu, 15 Jan 2027 08:00:00 GMT")
        var notices: [RetryNotice] = []
        let r = try await client(server, clock: clock).run(
            try client(server).makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: false)
        ) {
            if case .retrying(let n) = $0 { notices.append(n) }
        }
        XCTAssertEqual(r.retries, 3)
        XCTAssertEqual(clock.sleeps, [2, 0.25, 5])
        XCTAssertEqual(notices.map(\.attempt), [2, 3, 4])
        XCTAssertEqual(notices.first?.reason, "429 rate limited")
        XCTAssertEqual(notices.first?.maxAttempts, 6)
        XCTAssertEqual(server.requests.count, 4)
    }

    func testBackoffIsExponentialWithJitterAndBounded() async throws {
        let server = try await startServer()
        for _ in 0..<10 {
            server.enqueue(.body(502, "<html><title>502 Bad Gateway</title></html>", contentType: "text/html"))
        }
        let clock = TestClock()
        clock.randomValue = 0.5
        await assertThrowsQueryError(try await client(server, clock: clock).query(system: nil, user: "x")) { e in
            guard case .retriesExhausted(let attempts, let last) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(attempts, 6)
            XCTAssertEqual(last.status, 502)
            XCTAssert(e.description.contains("502 Bad Gateway"), e.description)
            XCTAssert(e.description.contains("gave up after 6 attempts"), e.description)
        }
        XCTAssertEqual(clock.sleeps, [0.5, 1, 2, 4, 8].map { $0 * 0.875 })
        XCTAssertEqual(server.requests.count, 6)
    }

    func testTotalWaitIsBounded() async throws {
        let server = try await startServer()
        for _ in 0..<6 { server.enqueue(.body(429, "{}", headers: [("retry-after", "50")])) }
        let clock = TestClock()
        await assertThrowsQueryError(try await client(server, clock: clock).query(system: nil, user: "x")) { e in
            XCTAssertEqual(e.status, 429)
        }
        XCTAssertEqual(clock.sleeps, [50], "a second 50 s wait would pass the 90 s budget")
    }

    func testNoRetryOnOtherClientErrorsAndXShouldRetryOverrides() async throws {
        let server = try await startServer()
        server.enqueue(
            .body(
                400,
                #"{"error":{"message":"bad param","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}"#
            ),
            .body(503, "{}", headers: [("x-should-retry", "false")]),
            .body(400, "{}", headers: [("x-should-retry", "true")]), .json(200, OpenAIFixture.completion()))
        let c = client(server)
        await assertThrowsQueryError(try await c.query(system: nil, user: "x")) { e in
            guard case .http(let d) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(d.status, 400)
            XCTAssertEqual(d.message, "bad param")
            XCTAssertEqual(d.code, "invalid_value")
            XCTAssertEqual(d.param, "temperature")
        }
        await assertThrowsQueryError(try await c.query(system: nil, user: "x")) { e in XCTAssertEqual(e.status, 503) }
        let r = try await c.query(system: nil, user: "x")
        XCTAssertEqual(r.retries, 1)
        XCTAssertEqual(server.requests.count, 4)
    }

    func testRetriedStatuses() async throws {
        let server = try await startServer()
        for s in [408, 409, 429, 500, 529] { server.enqueue(.body(s, "{}")) }
        server.enqueue(.json(200, OpenAIFixture.completion()))
        let r = try await client(server).query(system: nil, user: "x")
        XCTAssertEqual(r.retries, 5)
    }

    func testOneRuleSaysWhichStatusesAreRetried() {
        for s in 100..<600 {
            let d = APIErrorDetails(status: s, message: "m")
            XCTAssertEqual(QueryError.http(d).isTransient, RetryPolicy.isRetryable(status: s), "\(s)")
            let byPolicy = RetryPolicy().shouldRetry(status: s, headers: [:])
            XCTAssertEqual(byPolicy, RetryPolicy.isRetryable(status: s), "\(s)")
        }
        XCTAssertEqual((100..<600).filter { RetryPolicy.isRetryable(status: $0) && $0 < 500 }, [408, 409, 429])
    }

    func testDroppedConnectionBeforeResponseIsRetried() async throws {
        let server = try await startServer()
        server.enqueue(
            .closeWithoutResponse, TestHTTPServer.Reply(status: nil, steps: [.reset]),
            .json(200, OpenAIFixture.completion()))
        let r = try await client(server).query(system: nil, user: "x")
        XCTAssertEqual(r.retries, 2)
    }

    func testStreamThatDeliveredDataIsNotRetried() async throws {
        let server = try await startServer()
        let chunks = OpenAIFixture.textStream(["partial ", "answer"])
        server.enqueue(.sse(dataLines: Array(chunks.prefix(2)), endWith: [.delay(milliseconds: 20), .close]))
        var seen = ""
        await assertThrowsQueryError(
            try await client(server).run(
                try client(server).makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: true)
            ) {
                if case .text(let t) = $0 { seen += t }
            }
        ) { e in
            switch e {
            case .transport, .truncatedStream: break
            default: XCTFail("\(e)")
            }
        }
        XCTAssertEqual(seen, "partial ")
        XCTAssertEqual(server.requests.count, 1)
    }

    func testTruncatedStreamWithoutDoneOrFinishIsAnError() async throws {
        let server = try await startServer()
        let chunks = OpenAIFixture.textStream(["a", "b"])
        server.enqueue(.sse(dataLines: Array(chunks.prefix(3))))  // role, a, b — then the body ends
        await assertThrowsQueryError(try await streamed(client(server), [.user("x")])) { e in
            guard case .truncatedStream = e else { return XCTFail("\(e)") }
        }
        // With a finish_reason but no [DONE] the answer stands, with a note.
        server.enqueue(.sse(dataLines: Array(chunks.prefix(4))))
        let (_, r) = try await streamed(client(server), [.user("x")])
        XCTAssertEqual(r.output, .text("ab"))
        XCTAssert(r.info.notes.contains { $0.contains("[DONE]") })
    }

    func testStalledBodyHitsTheReadTimeout() async throws {
        let server = try await startServer()
        server.enqueue(.sse(dataLines: [OpenAIFixture.chunk(["content": "x"])], endWith: [.stall]))
        let start = Date()
        await assertThrowsQueryError(try await streamed(client(server, readTimeout: 0.5), [.user("x")])) { e in
            guard case .transport(let kind, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(kind, .readTimeout)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    func testMidStreamErrorsBothForms() async throws {
        let server = try await startServer()
        server.enqueue(
            .sse(dataLines: [
                OpenAIFixture.chunk(["content": "hi"]),
                #"{"error":{"message":"context too long","type":"invalid_request_error","code":400}}"#,
            ]))
        await assertThrowsQueryError(try await streamed(client(server), [.user("x")])) { e in
            guard case .streamError(let d) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(d.message, "context too long")
            XCTAssertEqual(d.code, "400", "llama.cpp's integer code is accepted")
        }
        server.enqueue(.sseRaw("error: {\"code\":500,\"message\":\"slot unavailable\",\"type\":\"server_error\"}\n\n"))
        server.enqueue(.sse(dataLines: OpenAIFixture.textStream(["ok"])))
        let (_, r) = try await streamed(client(server), [.user("x")])
        XCTAssertEqual(r.output, .text("ok"), "a transient error before any data is retried")
        XCTAssertEqual(r.retries, 1)
    }

    func testMalformedResponses() async throws {
        let server = try await startServer()
        server.enqueue(
            .body(200, "{not json"), .json(200, ["id": "x", "choices": []]), .json(200, ["id": "x"]),
            .body(200, "<html>oops</html>", contentType: "text/html"))
        let c = client(server)
        for expected in ["not JSON", "empty", "no \"choices\"", "not JSON"] {
            await assertThrowsQueryError(try await c.query(system: nil, user: "x")) { e in
                guard case .malformedResponse(let reason, _) = e else { return XCTFail("\(e)") }
                XCTAssert(reason.contains(expected), reason)
            }
        }
    }

    func testUnknownFieldsAndMissingOptionalOnesAreFine() async throws {
        let server = try await startServer()
        let body: JSONValue = [
            "choices": [
                [
                    "message": ["content": "hi", "refusal": nil, "annotations": []], "finish_reason": "stop",
                    "logprobs": nil,
                ]
            ], "timings": ["prompt_ms": 1.5],
        ]
        server.enqueue(.json(200, body))
        let r = try await client(server).query(system: nil, user: "x")
        XCTAssertEqual(r.output, .text("hi"))
        XCTAssertNil(r.info.id)
        XCTAssertNil(r.info.systemFingerprint)
        XCTAssertNil(r.inputTokens)
    }

    func testErrorsShowServerMessageRequestIDAndNeverTheKey() async throws {
        let server = try await startServer()
        let key = "sk-SECRET-1234567890"
        server.enqueue(
            .body(
                401,
                #"{"error":{"message":"Incorrect API key provided: sk-SECRET-1234567890","type":"invalid_request_error","code":"invalid_api_key"}}"#,
                headers: [("x-request-id", "req_42")]))
        await assertThrowsQueryError(try await client(server, key: key).query(system: nil, user: "x")) { e in
            let s = e.description
            XCTAssertFalse(s.contains(key), s)
            XCTAssert(s.contains("401"), s)
            XCTAssert(s.contains("req_42"), s)
            XCTAssert(s.contains("check the API key"), s)
            XCTAssertFalse("\(e)".contains(key))
        }
    }

    func testKeyIsNotSentOverPlainHTTPToARemoteHost() async throws {
        let c = QueryClient(baseURL: "http://example.com/v1", apiKey: "sk-x", defaultModel: "m", clock: TestClock())
        await assertThrowsQueryError(try await c.query(system: nil, user: "x")) { e in
            XCTAssertEqual(e, .insecureTransport(host: "example.com"))
            XCTAssert(e.description.contains("plain http"), e.description)
            XCTAssertFalse(e.description.contains("sk-x"))
        }
    }

    // MARK: cancellation

    func testCancellingStopsABackoffWaitAtOnce() async throws {
        let server = try await startServer()
        server.enqueue(.body(429, "{}", headers: [("retry-after", "30")]))
        let c = client(server, clock: SystemClock())
        let start = Date()
        let task = Task { try await c.query(system: nil, user: "x") }
        try await Task.sleep(nanoseconds: 300_000_000)
        task.cancel()
        await assertThrowsQueryError(try await task.value) { XCTAssertEqual($0, .cancelled) }
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
    }

    func testCancellingStopsAStreamAtOnce() async throws {
        let server = try await startServer()
        server.enqueue(.sse(dataLines: OpenAIFixture.textStream(Array(repeating: "tok ", count: 200)), delayMs: 50))
        let c = client(server, clock: SystemClock())
        let request = try c.makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: true)
        let start = Date()
        let gotText = expectation(description: "text arrived")
        gotText.assertForOverFulfill = false
        let task = Task { try await c.run(request) { if case .text = $0 { gotText.fulfill() } } }
        await fulfillment(of: [gotText], timeout: 5)
        task.cancel()
        await assertThrowsQueryError(try await task.value) { XCTAssertEqual($0, .cancelled) }
        XCTAssertLessThan(Date().timeIntervalSince(start), 3, "200 chunks × 50 ms would take 10 s")
    }

    func testServerThatIgnoresStreamFlagStillWorks() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion(text: "whole")))
        let (events, r) = try await streamed(client(server), [.user("x")])
        XCTAssertEqual(text(events), "whole")
        XCTAssertEqual(r.output, .text("whole"))
    }
}

extension RetryPolicy {
    static func parseDateForTests(_ s: String) -> Date {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: s)!
    }
}
