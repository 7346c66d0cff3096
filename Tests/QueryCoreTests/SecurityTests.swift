import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// Attacks from a hostile or compromised server, each performed against the in-process server
/// (docs/security.md lists which threat each test covers).
final class SecurityTests: XCTestCase {
    typealias Reply = TestHTTPServer.Reply

    /// A key as long as an OpenAI project key (164 characters).
    static let longKey = "sk-proj-" + String(repeating: "AbCdEfGhIj0123456789", count: 8).prefix(156)

    func assertNoKey(_ s: String, _ key: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(s.contains(key), "the key is in: \(s)", file: file, line: line)
        XCTAssertFalse(
            s.contains(String(key.prefix(Redactor.minimumPrefix))), "a 12-character start of the key is in: \(s)",
            file: file, line: line)
    }

    // MARK: 2. The key never comes back through any error field

    func testKeyEchoedInEveryErrorFieldAndHeaderIsRedacted() async throws {
        let server = try await startServer()
        let key = Self.longKey
        let err: JSONValue = [
            "error": [
                "message": .string("bad key \(key)"), "type": .string("type-\(key)"), "code": .string("code-\(key)"),
                "param": .string(key),
            ]
        ]
        server.enqueue(.json(401, err, headers: [("x-request-id", "req-\(key)")]))
        await assertThrowsQueryError(try await client(server, key: key).query(system: nil, user: "hi")) { e in
            guard case .http(let d) = e else { return XCTFail("\(e)") }
            for field in [d.message, d.type ?? "", d.code ?? "", d.param ?? "", d.requestID ?? ""] {
                assertNoKey(field, key)
            }
            XCTAssertEqual(d.requestID, "req-[redacted]")
            assertNoKey(e.description, key)
        }
    }

    func testStreamErrorTypeCannotShowTheKeyInARetryNotice() async throws {
        let server = try await startServer()
        let key = Self.longKey
        let event = JSONValue.object(["error": ["message": .string("m \(key)"), "type": .string("server_error")]])
            .serialized()
        let retryable: JSONValue = ["error": ["message": "busy", "type": .string("server_error \(key)")]]
        server.enqueue(.json(503, retryable), .sse(dataLines: [event]))
        var c = client(server, key: key)
        c.retryPolicy = RetryPolicy(maxAttempts: 2)
        var notices: [String] = []
        do {
            _ = try await c.run(c.makeRequest(messages: [.user("hi")], functionSpec: nil, options: [:], stream: true)) {
                e in
                if case .retrying(let n) = e { notices.append(n.reason) }
            }
            XCTFail("expected an error")
        } catch let e {
            assertNoKey(e.description, key)
        }
        for n in notices { assertNoKey(n, key) }
    }

    // MARK: 3. Redaction before truncation, and truncated keys

    func testNonJSONBodyEchoingALongKeyLeaksNoPartOfIt() async throws {
        let server = try await startServer()
        let key = Self.longKey
        // The key starts 40 characters in: the old 160-character cut kept 120 of its 164 characters.
        server.enqueue(.body(400, String(repeating: "x", count: 40) + " " + key + " tail", contentType: "text/plain"))
        await assertThrowsQueryError(try await client(server, key: key).query(system: nil, user: "hi")) { e in
            guard case .http(let d) = e else { return XCTFail("\(e)") }
            self.assertNoKey(d.message, key)
            self.assertNoKey(d.bodySnippet ?? "", key)
            self.assertNoKey(e.description, key)
            XCTAssertTrue(e.description.contains("[redacted]"), e.description)
        }
    }

    func testAKeyCutShortByTheServerIsStillRedacted() {
        let key = Self.longKey
        let r = Redactor([key])
        XCTAssertEqual(r.redact("got " + key.prefix(30) + "…"), "got [redacted]…")
        XCTAssertEqual(
            r.redact("got " + key.prefix(11)), "got " + key.prefix(11), "shorter than 12 characters is ordinary text")
        XCTAssertEqual(r.redact("a \(key) b \(key)"), "a [redacted] b [redacted]")
        XCTAssertEqual(Redactor(["abcd"]).redact("xabcdx"), "x[redacted]x")
    }

    // MARK: 4. No redirects

    func testA307ToAnotherPortIsNotFollowedAndNamesTheLocation() async throws {
        let server = try await startServer()
        let other = try await startServer()
        other.enqueue(.json(200, OpenAIFixture.completion(text: "stolen")))
        let location = other.baseURL + "/v1/chat/completions"
        for _ in 0..<2 {
            server.enqueue(Reply(status: 307, headers: [("Location", location), ("Content-Length", "0")], steps: []))
        }
        await assertThrowsQueryError(
            try await client(server, key: "sk-secret-redirect-key").query(system: nil, user: "hi")
        ) { e in
            XCTAssertEqual(e, .redirected(status: 307, location: location))
            XCTAssertTrue(e.description.contains(location), e.description)
        }
        // Anthropic's key header (x-api-key) is the one async-http-client kept across origins.
        await assertThrowsQueryError(
            try await client(server, provider: .anthropic, key: "sk-ant-secret-redirect").query(system: nil, user: "hi")
        ) { e in
            XCTAssertEqual(e, .redirected(status: 307, location: location))
        }
        XCTAssertEqual(other.requests.count, 0, "the other port received a request")
        XCTAssertEqual(server.requests.count, 2, "a redirect is not retried")
    }

    // MARK: 5. Loopback means a loopback address

    func testPlainHTTPIsRefusedToHostsThatOnlyLookLikeLoopback() throws {
        for url in [
            "http://127.evil.invalid/v1", "http://127.0.0.1.evil.invalid/v1", "http://localhost.evil.invalid/v1",
            "http://[::2]/v1", "http://0x7f000001/v1",
        ] {
            let c = QueryClient(baseURL: url, apiKey: "sk-k", defaultModel: "m")
            XCTAssertThrowsError(
                try c.httpRequest(
                    for: c.makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: false)), url
            ) { e in
                XCTAssertTrue("\(e)".contains("refusing to send the API key over plain http"), "\(e)")
            }
        }
        for url in [
            "http://127.0.0.1:8080/v1", "http://127.1.2.3/v1", "http://localhost:1/v1", "http://[::1]:8080/v1",
            "http://LOCALHOST/v1",
        ] {
            let c = QueryClient(baseURL: url, apiKey: "sk-k", defaultModel: "m")
            XCTAssertNoThrow(
                try c.httpRequest(
                    for: c.makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: false)), url)
        }
    }

    // MARK: 7. Bounded memory for a stream

    func testAnEventThatNeverEndsFailsAtItsLimitAndTheClientGoesOn() async throws {
        let server = try await startServer()
        let line = "data: " + String(repeating: "a", count: 64 << 10) + "\n"
        // 300 data lines and no blank line: one event of ~19 MB.
        server.enqueue(.sseRaw(String(repeating: line, count: 300), chunkSize: 256 << 10))
        var c = client(server)
        c.streamLimits.maxEventBytes = 1 << 20
        await assertThrowsQueryError(try await self.streamed(c, [.user("hi")])) { e in
            XCTAssertTrue(e.description.contains("a stream event larger than 1 MiB"), e.description)
        }
        server.enqueue(.sse(dataLines: OpenAIFixture.textStream(["still ", "fine"])))
        let (events, _) = try await streamed(c, [.user("again")])
        XCTAssertEqual(text(events), "still fine")
    }

    func testStreamedTextAndArgumentsStopAtTheirLimits() async throws {
        let server = try await startServer()
        let piece = String(repeating: "t", count: 10_000)
        server.enqueue(.sse(dataLines: OpenAIFixture.textStream(Array(repeating: piece, count: 50))))
        var c = client(server)
        c.streamLimits.maxTextBytes = 100_000
        var shown = 0
        do {
            _ = try await c.run(c.makeRequest(messages: [.user("hi")], functionSpec: nil, options: [:], stream: true)) {
                e in
                if case .text(let t) = e { shown += t.utf8.count }
            }
            XCTFail("expected the text limit")
        } catch let e {
            XCTAssertTrue(e.description.contains("the streamed text passed 100000 bytes"), e.description)
        }
        XCTAssertLessThanOrEqual(shown, 100_000)

        let spec = try FunctionSpec(name: "f", parameters: ["type": "object"])
        server.enqueue(
            .sse(
                dataLines: OpenAIFixture.toolStream(
                    name: "f", argPieces: ["{\"a\":\""] + Array(repeating: piece, count: 50) + ["\"}"])))
        c.streamLimits.maxArgumentBytes = 100_000
        await assertThrowsQueryError(try await self.streamed(c, [.user("hi")], spec: spec)) { e in
            XCTAssertTrue(e.description.contains("the function-call arguments passed 100000 bytes"), e.description)
        }
    }

    // MARK: 9. A stalled server cannot hold a turn past its limit

    func testTheWholeTurnIsBoundedEvenWhenEveryAttemptStalls() async throws {
        let server = try await startServer()
        for _ in 0..<6 { server.enqueue(.stallBeforeResponse) }
        var c = client(server, clock: SystemClock(), readTimeout: 30)
        c.turnTimeout = 1.5
        let start = Date()
        await assertThrowsQueryError(try await c.query(system: nil, user: "hi")) { e in
            XCTAssertEqual(e, .turnTimedOut(seconds: 1.5))
            XCTAssertTrue(e.description.contains("the limit for a whole turn"), e.description)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    // MARK: 9. Base-URL credentials

    func testBaseURLCredentialsAreRedactedFromURLsAndErrors() {
        XCTAssertEqual(
            Redactor.url("https://alice:s3cret-pass@proxy.example/v1"), "https://[redacted]@proxy.example/v1")
        XCTAssertEqual(Redactor.url("https://proxy.example/v1?a=b@c"), "https://proxy.example/v1?a=b@c")
        let c = QueryClient(baseURL: "https://alice:s3cret-pass@proxy.example/v1", apiKey: "sk-key-1234")
        let e = QueryError.http(APIErrorDetails(status: 400, message: "you sent s3cret-pass and alice:s3cret-pass"))
            .redacting(c.redactor)
        XCTAssertFalse(e.description.contains("s3cret"), e.description)
    }
}
