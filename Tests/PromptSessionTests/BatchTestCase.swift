import Foundation
import PromptSession
import QueryCore
import TestHTTPServer
import XCTest

/// What the batch suites share: a temporary folder for results files, the in-process echo server
/// (each chat request answered "echo: <the last user message>", the model asked for, usage), a
/// runner over rows, and a results file read back as JSON lines.
class BatchTestCase: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "pl-batch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A server that answers each chat request with "echo: <the last user message>", the model
    /// named in it, and usage.
    func echoServer() async throws -> TestHTTPServer {
        let s = try await TestHTTPServer.start(defaultReply: { req in
            let body = req.json ?? .null
            let last = body["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            return .json(
                200,
                [
                    "id": "c", "object": "chat.completion", "created": 1, "model": body["model"] ?? "m",
                    "choices": [
                        [
                            "index": 0, "message": ["role": "assistant", "content": .string("echo: " + last)],
                            "finish_reason": "stop",
                        ]
                    ],
                    "usage": ["prompt_tokens": 10, "completion_tokens": 3],
                ])
        })
        addTeardownBlock { s.stop() }
        return s
    }

    func runner(
        _ s: Session, _ c: QueryClient, rows: [[String: String]], template: String = "Capital of {{country}}?",
        variants: [Session.Variant]? = nil, concurrency: Int = 8, out: String
    ) throws -> BatchRunner {
        let v = try variants ?? s.variants([])
        return BatchRunner(
            template: template, rows: rows, variants: v, clients: v.map { _ in c }, concurrency: concurrency,
            outPath: out)
    }

    func lines(_ path: String) throws -> [JSONValue] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }
}
