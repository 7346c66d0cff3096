import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// A clock whose sleeps return at once and are recorded, so backoff is checked without waiting.
final class TestClock: QueryClock, @unchecked Sendable {
    private let lock = NSLock()
    private var _sleeps: [Double] = []
    private var offset = 0.0
    var randomValue = 0.0
    var wall = Date(timeIntervalSince1970: 1_800_000_000)

    var sleeps: [Double] {
        lock.lock()
        defer { lock.unlock() }
        return _sleeps
    }

    func now() -> Double {
        lock.lock()
        defer { lock.unlock() }
        return SystemClock().now() + offset
    }
    func wallNow() -> Date { wall }
    func sleep(seconds: Double) async throws {
        try Task.checkCancellation()
        lock.withLock {
            _sleeps.append(seconds)
            offset += seconds
        }
        await Task.yield()
    }
    func random() -> Double { randomValue }
}

/// OpenAI response bodies for scripting the server.
enum OpenAIFixture {
    static func completion(
        text: String? = "Hello!", toolCall: (name: String, args: String)? = nil, finish: String = "stop",
        usage: JSONValue? = ["prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17], extra: JSONObject = [:]
    ) -> JSONValue {
        var message: JSONObject = ["role": "assistant", "content": text.map { .string($0) } ?? .null]
        if let tc = toolCall {
            message["tool_calls"] = [
                [
                    "id": "call_1", "type": "function",
                    "function": ["name": .string(tc.name), "arguments": .string(tc.args)],
                ]
            ]
        }
        var o: JSONObject = [
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-test",
            "system_fingerprint": "fp_abc",
            "choices": [["index": 0, "message": .object(message), "finish_reason": .string(finish)]],
        ]
        if let usage { o["usage"] = usage }
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    static func chunk(_ delta: JSONValue, finish: String? = nil) -> String {
        let c: JSONValue = [
            "id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1_700_000_001, "model": "gpt-test",
            "system_fingerprint": "fp_stream",
            "choices": [["index": 0, "delta": delta, "finish_reason": finish.map { .string($0) } ?? .null]],
        ]
        return c.serialized()
    }

    static func usageChunk(_ p: Int, _ c: Int) -> String {
        let u: JSONValue = [
            "id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1_700_000_001, "model": "gpt-test",
            "choices": [],
            "usage": [
                "prompt_tokens": .integer(Int64(p)), "completion_tokens": .integer(Int64(c)),
                "total_tokens": .integer(Int64(p + c)),
            ],
        ]
        return u.serialized()
    }

    /// A streamed text answer: role chunk, one chunk per piece, finish, usage, [DONE].
    static func textStream(_ pieces: [String], usage: (Int, Int)? = (9, 4)) -> [String] {
        var out = [chunk(["role": "assistant", "content": ""])]
        out += pieces.map { chunk(["content": .string($0)]) }
        out.append(chunk([:], finish: "stop"))
        if let u = usage { out.append(usageChunk(u.0, u.1)) }
        out.append("[DONE]")
        return out
    }

    /// A streamed tool call whose arguments arrive in `argPieces`.
    static func toolStream(name: String, argPieces: [String], usage: (Int, Int)? = (20, 8)) -> [String] {
        var out = [
            chunk([
                "role": "assistant", "content": .null,
                "tool_calls": [
                    [
                        "index": 0, "id": "call_9", "type": "function",
                        "function": ["name": .string(name), "arguments": ""],
                    ]
                ],
            ])
        ]
        out += argPieces.map { chunk(["tool_calls": [["index": 0, "function": ["arguments": .string($0)]]]]) }
        out.append(chunk([:], finish: "tool_calls"))
        if let u = usage { out.append(usageChunk(u.0, u.1)) }
        out.append("[DONE]")
        return out
    }
}

extension XCTestCase {
    func startServer() async throws -> TestHTTPServer {
        let s = try await TestHTTPServer.start()
        addTeardownBlock { s.stop() }
        return s
    }

    func client(
        _ server: TestHTTPServer, provider: Provider = .openAI, key: String? = "sk-test-key",
        clock: QueryClock = TestClock(), retry: RetryPolicy = RetryPolicy(), readTimeout: Double = 5
    ) -> QueryClient {
        QueryClient(
            provider: provider, baseURL: provider.isOpenAI ? server.baseURL + "/v1" : server.baseURL, apiKey: key,
            defaultModel: provider == .anthropic ? "claude-test" : "gpt-test",
            transport: AsyncHTTPClientTransport(connectTimeout: 2, readTimeout: readTimeout), retryPolicy: retry,
            clock: clock)
    }

    /// Runs a streamed query, collecting events.
    func streamed(_ c: QueryClient, _ messages: [ChatMessage], spec: FunctionSpec? = nil, options: QueryOptions = [:])
        async throws -> (events: [QueryEvent], result: QueryResult)
    {
        var events: [QueryEvent] = []
        var result: QueryResult?
        for try await e in c.stream(messages: messages, functionSpec: spec, options: options) {
            if case .completed(let r) = e { result = r } else { events.append(e) }
        }
        return (events, try XCTUnwrap(result))
    }

    func assertThrowsQueryError<T>(
        _ body: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
        _ check: (QueryError) -> Void
    ) async {
        do {
            _ = try await body()
            XCTFail("expected an error", file: file, line: line)
        } catch let e as QueryError {
            check(e)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}

func text(_ events: [QueryEvent]) -> String {
    events.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined()
}
