// promptline-bench batch-faults N: a batch of N rows at concurrency 32 against the loopback
// server, clean and then with faults on schedule (every 7th request a 500, every 11th a 429 with
// `retry-after: 0`, every 13th connection dropped). Checks every row came back exactly once with
// its own answer (the server echoes the prompt) and reports both times and their ratio.
import Foundation
import PromptSession
import QueryCore
import TestHTTPServer

/// What a faulted run must be, besides fast: each row once, each output the row's own.
struct BatchCheck {
    var rows = 0
    var once = true
    var crossWired = 0
    var failed = 0
}

func echoCompletion(_ req: TestHTTPServer.RecordedRequest) -> TestHTTPServer.Reply {
    let last = req.json?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
    return .json(
        200,
        [
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [
                [
                    "index": 0, "message": ["role": "assistant", "content": .string("echo: " + last)],
                    "finish_reason": "stop",
                ]
            ],
            "usage": ["prompt_tokens": 10, "completion_tokens": 3],
        ])
}

/// Runs `n` rows at concurrency 32 into `out`; returns the seconds it took.
func timedBatch(_ server: TestHTTPServer, rows n: Int, out: String) async throws -> (Double, BatchSummary) {
    let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m")
    let s = Session(provider: .openAI, model: "m")
    let runner = BatchRunner(
        template: "Row {{i}}", rows: (0..<n).map { ["i": "\($0)"] }, variants: try s.variants([]), clients: [c],
        concurrency: 32, outPath: out)
    let t0 = now()
    let summary = try await runner.run(session: s)
    return (now() - t0, summary)
}

func checkBatch(_ out: String, rows n: Int) throws -> BatchCheck {
    var check = BatchCheck()
    var seen: [Int: Int] = [:]
    for line in try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n") {
        let v = try JSONValue.parse(String(line))
        guard let row = v["row"]?.intValue else { continue }
        seen[row, default: 0] += 1
        if let output = v["output"]?.stringValue {
            if output != "echo: Row \(row)" { check.crossWired += 1 }
        } else {
            check.failed += 1
        }
    }
    check.rows = seen.count
    check.once = seen.count == n && seen.values.allSatisfy { $0 == 1 }
    return check
}

func benchBatchFaults(_ n: Int) async throws {
    let server = try await TestHTTPServer.start(defaultReply: echoCompletion)
    defer { server.stop() }
    let dir = NSTemporaryDirectory() + "pl-bench-batch-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (clean, _) = try await timedBatch(server, rows: n, out: dir + "/clean.jsonl")
    server.reset()
    server.setSchedule([
        (7, .body(500, #"{"error":{"message":"boom"}}"#)),
        (11, .body(429, #"{"error":{"message":"slow down"}}"#, headers: [("retry-after", "0")])),
        (13, .closeWithoutResponse),
    ])
    let (faulted, summary) = try await timedBatch(server, rows: n, out: dir + "/faulted.jsonl")
    let check = try checkBatch(dir + "/faulted.jsonl", rows: n)
    emit("batch.clean_\(n)_c32", unit: "s", [clean])
    emit(
        "batch.faulted_\(n)_c32", unit: "s", [faulted],
        extra: [
            "ratio_to_clean": .double(faulted / clean), "ratio_budget": 5, "rows_once": .bool(check.once),
            "cross_wired": .integer(Int64(check.crossWired)), "gave_up": .integer(Int64(check.failed)),
            "rate_limited": .integer(Int64(summary.rateLimited)),
            "lowest_concurrency": .integer(Int64(summary.concurrency.lowest)),
            "requests": .integer(Int64(server.requests.count)),
        ])
}
