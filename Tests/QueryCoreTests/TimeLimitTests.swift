import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// Time limits that hold (issue 25): a stream that sends its head and then stalls ends at the
/// turn's limit, not at the read timeout; a refused connection on this machine fails at once,
/// without retries; a server's `retry-after: 0` means now.
final class TimeLimitTests: XCTestCase {
    func testAStreamThatStallsAfterItsHeadEndsAtTheTurnTimeout() async throws {
        let server = try await startServer()
        let first = Array(OpenAIFixture.textStream(["partial "]).prefix(1))
        server.enqueue(.sse(dataLines: first, endWith: [.stall]))
        var c = client(server, clock: SystemClock(), readTimeout: 30)
        c.turnTimeout = 1.5
        let start = Date()
        await assertThrowsQueryError(try await self.streamed(c, [.user("hi")])) { e in
            XCTAssertEqual(e, .turnTimedOut(seconds: 1.5))
        }
        let took = Date().timeIntervalSince(start)
        XCTAssertEqual(took, 1.5, accuracy: 1, "ended after \(took) s, the turn's limit is 1.5 s")
        XCTAssertEqual(server.requests.count, 1, "a turn past its deadline is not sent again")
    }

    func testAStreamThatStallsBeforeAnyEventEndsAtTheTurnTimeout() async throws {
        let server = try await startServer()
        server.enqueue(.sse(dataLines: [], endWith: [.stall]))
        var c = client(server, clock: SystemClock(), readTimeout: 30)
        c.turnTimeout = 1
        let start = Date()
        await assertThrowsQueryError(try await self.streamed(c, [.user("hi")])) { e in
            XCTAssertEqual(e, .turnTimedOut(seconds: 1))
        }
        XCTAssertEqual(Date().timeIntervalSince(start), 1, accuracy: 1)
    }

    func testAStreamWithinItsLimitIsUntouchedByTheDeadline() async throws {
        let server = try await startServer()
        server.enqueue(.sse(dataLines: OpenAIFixture.textStream(["a ", "b ", "c"]), delayMs: 50))
        var c = client(server, clock: SystemClock())
        c.turnTimeout = 5
        let (_, result) = try await streamed(c, [.user("hi")])
        XCTAssertEqual(result.output.text, "a b c")
    }

    func testARefusedConnectionOnThisMachineFailsAtOnceWithoutRetries() async throws {
        // A port that was just free: nothing listens there.
        let server = try await TestHTTPServer.start()
        let url = server.baseURL
        server.stop()
        let clock = TestClock()
        let c = QueryClient(
            baseURL: url + "/v1", defaultModel: "m", transport: AsyncHTTPClientTransport(),
            retryPolicy: RetryPolicy(maxAttempts: 6), clock: clock)
        let start = Date()
        await assertThrowsQueryError(try await c.query(system: nil, user: "x")) { e in
            guard case .transport(.connectionRefused, let m) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("connection refused"), m)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "async-http-client's connection retries took 10 s")
        XCTAssertEqual(clock.sleeps, [], "nothing listens there: sending again finds nothing either")
    }

    func testRetryAfterZeroMeansNow() {
        let p = RetryPolicy()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        XCTAssertEqual(p.serverDelay(headers: ["retry-after": "0"], now: now), 0)
        XCTAssertEqual(p.serverDelay(headers: ["retry-after-ms": "0"], now: now), 0)
        XCTAssertEqual(p.serverDelay(headers: ["retry-after-ms": "250"], now: now), 0.25)
        XCTAssertEqual(p.serverDelay(headers: ["retry-after": "Thu, 01 Jan 2026 00:00:00 GMT"], now: now), 0)
        XCTAssertNil(p.serverDelay(headers: ["retry-after": "3600"], now: now), "past maxRetryAfter: backoff")
        XCTAssertNil(p.serverDelay(headers: [:], now: now))
    }

    func testA429WithRetryAfterZeroIsSentAgainAtOnce() async throws {
        let server = try await startServer()
        server.enqueue(
            .body(429, #"{"error":{"message":"slow down"}}"#, headers: [("retry-after", "0")]),
            .json(200, OpenAIFixture.completion()))
        let clock = TestClock()
        let r = try await client(server, clock: clock).query(system: nil, user: "x")
        XCTAssertEqual(r.retries, 1)
        XCTAssertEqual(clock.sleeps, [0], "the server asked for 0 s; the backoff would have been 0.5 s")
    }
}
