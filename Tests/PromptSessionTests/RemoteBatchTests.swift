import Foundation
import PromptSession
import QueryCore
import TestHTTPServer
import XCTest

/// `:batch FILE remote` against the in-process server's Batch API: upload, create, poll, collect
/// into the same results file; resumed from the saved record alone; sent once even when the
/// create's answer is lost; the batch's faults (failed lines, expiry, failed validation) each
/// end as error lines a rerun sends again.
final class RemoteBatchTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "pl-remote-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// Answers a chat request with "echo: <last user message>", or, when a tool is offered, a
    /// call of it with `{"answer": <last user message>}`; usage 10 in, 3 out.
    func server() async throws -> TestHTTPServer {
        let s = try await TestHTTPServer.start(defaultReply: { req in
            let body = req.json ?? .null
            let last = body["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            var message: JSONObject = ["role": "assistant", "content": .string("echo: " + last)]
            if let tool = body["tools"]?.arrayValue?.first?["function"]?["name"] {
                message["content"] = .null
                message["tool_calls"] = [
                    [
                        "id": "call_1", "type": "function",
                        "function": ["name": tool, "arguments": .string(#"{"answer":"\#(last)"}"#)],
                    ]
                ]
            }
            return .json(
                200,
                [
                    "id": "c", "object": "chat.completion", "created": 1, "model": body["model"] ?? "m",
                    "choices": [["index": 0, "message": .object(message), "finish_reason": "stop"]],
                    "usage": ["prompt_tokens": 10, "completion_tokens": 3],
                ])
        })
        addTeardownBlock { s.stop() }
        return s
    }

    func client(_ s: TestHTTPServer, provider: Provider = .openAI) -> QueryClient {
        QueryClient(
            provider: provider, baseURL: s.baseURL + "/v1", apiKey: "sk-remote-secret-1234",
            defaultModel: "gpt-4o-mini",
            retryPolicy: RetryPolicy(maxAttempts: 3, baseDelay: 0.01, maxDelay: 0.02), forcedCall: .tools)
    }

    func setUp(_ s: Session, _ c: QueryClient, rows: Int, variants: [Session.Variant]? = nil) throws -> (
        BatchRunner, RemoteBatchRunner
    ) {
        let v = try variants ?? s.variants([])
        let runner = BatchRunner(
            template: "Capital of {{country}}?", rows: (0..<rows).map { ["country": "C\($0)"] }, variants: v,
            clients: v.map { _ in c }, concurrency: 1, outPath: dir + "/out.jsonl")
        let remote = RemoteBatchRunner(
            apis: [c.provider: try BatchAPI(client: c)], directory: dir + "/remote", pollInterval: 0.01)
        return (runner, remote)
    }

    /// A server whose Batch API misbehaves as `fault` says, and a run of `rows` rows against it.
    func faulted(_ fault: FakeBatchAPI.Fault, rows: Int) async throws -> (
        TestHTTPServer, Session, BatchRunner, RemoteBatchRunner
    ) {
        let server = try await server()
        server.batchAPI.fault = fault
        let s = Session(provider: .openAI, model: "gpt-4o-mini")
        let (runner, remote) = try setUp(s, client(server), rows: rows)
        return (server, s, runner, remote)
    }

    func results() throws -> [JSONValue] {
        try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONValue.parse(String($0))
        }
    }

    /// Submits, waits and collects.
    func run(_ runner: BatchRunner, _ remote: RemoteBatchRunner, _ s: Session) async throws -> (
        RemoteBatchRecord?, BatchSummary?, [RemoteBatchRunner.Progress]
    ) {
        guard let record = try await remote.submit(runner, session: s, dataset: "rows.jsonl", say: { _ in }) else {
            return (nil, nil, [])
        }
        var seen: [RemoteBatchRunner.Progress] = []
        let waited = try await remote.wait(record, stop: BatchStop()) { seen.append($0) }
        let (_, summary) = try await remote.collect(waited, prices: .defaults)
        return (waited, summary, seen)
    }

    func testTwoHundredRowsGoThroughTheBatchAPIAndARerunSendsNothing() async throws {
        let server = try await server()
        server.batchAPI.linesPerPoll = 60
        let c = client(server)
        let s = Session(provider: .openAI, model: "gpt-4o-mini")
        _ = try s.apply(.setSystem("Answer briefly."))
        let (runner, remote) = try setUp(s, c, rows: 200)
        let (record, summary, seen) = try await run(runner, remote, s)

        // The upload: multipart, purpose batch, one line per row with the body a direct call sends.
        let upload = try XCTUnwrap(server.requests.first { $0.uri == "/v1/files" })
        XCTAssertEqual(upload.method, "POST")
        XCTAssertTrue(upload.header("content-type")?.hasPrefix("multipart/form-data; boundary=") == true)
        XCTAssertEqual(upload.header("authorization"), "Bearer sk-remote-secret-1234")
        let input = try String(contentsOfFile: dir + "/remote/\(record!.run)-0.input.jsonl", encoding: .utf8)
        XCTAssertTrue(upload.bodyText.contains("name=\"purpose\"\r\n\r\nbatch\r\n"))
        XCTAssertTrue(upload.bodyText.contains(input), "the file uploaded is the input file kept")
        XCTAssertFalse(input.contains("sk-remote-secret"), "the key is a header, never in the file")
        let lines = try input.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        XCTAssertEqual(lines.count, 200)
        var direct = QueryRequest(
            model: "gpt-4o-mini", messages: [.system("Answer briefly."), .user("Capital of C7?")], stream: false)
        direct.options = s.queryOptions
        XCTAssertEqual(lines[7]["custom_id"], "row-8-v0")
        XCTAssertEqual(lines[7]["method"], "POST")
        XCTAssertEqual(lines[7]["url"], "/v1/chat/completions")
        XCTAssertEqual(lines[7]["body"], try c.requestBody(for: direct))
        let create = try XCTUnwrap(server.requests.first { $0.uri == "/v1/batches" && $0.method == "POST" }?.json)
        XCTAssertEqual(create["endpoint"], "/v1/chat/completions")
        XCTAssertEqual(create["completion_window"], "24h")
        XCTAssertEqual(create["metadata"]?["promptline_run"], .string(record!.run))

        // Polled to the end, progress never going back; every row's result.
        XCTAssertEqual(seen.map(\.done), seen.map(\.done).sorted())
        XCTAssertEqual(seen.last?.done, 200)
        XCTAssertEqual(seen.last?.status, "completed")
        XCTAssertEqual(summary?.totals[""]?.ok, 200)
        let results = try results()
        XCTAssertEqual(results.count, 200)
        XCTAssertEqual(Set(results.compactMap { $0["row"]?.intValue }), Set(0..<200))
        for r in results {
            let row = try XCTUnwrap(r["row"]?.intValue)
            XCTAssertEqual(r["output"], .string("echo: Capital of C\(row)?"))
            XCTAssertEqual(r["input_tokens"], 10)
            XCTAssertEqual(r["latency"], .null, "a remote result has no latency of its own")
            XCTAssertEqual(r["cost"]?.doubleValue ?? 0, (10 * 0.15 + 3 * 0.60) / 1e6 / 2, accuracy: 1e-12)
        }
        // Sent again with the same results file: nothing is uploaded or created.
        let before = server.requests.count
        let (again, _, _) = try await run(runner, remote, s)
        XCTAssertNil(again)
        XCTAssertEqual(server.requests.count, before)
        XCTAssertEqual(server.batchAPI.batchCount, 1)
        // Collected twice: nothing appended.
        _ = try await remote.collect(record!, prices: .defaults)
        XCTAssertEqual(try self.results().count, 200)
    }

    func testARunIsCollectedFromItsRecordAloneAfterTheSenderStoppedWaiting() async throws {
        let server = try await server()
        server.batchAPI.linesPerPoll = 2
        let c = client(server)
        let spec = try FunctionSpec(
            name: "reply",
            parameters: [
                "type": "object", "properties": ["answer": ["type": "string"], "sure": ["type": "boolean"]],
                "required": ["answer", "sure"],
            ])
        let s = Session(provider: .openAI, model: "gpt-4o-mini", functionSpec: spec)
        let (runner, remote) = try setUp(s, c, rows: 5)
        let submitted = try await remote.submit(runner, session: s, dataset: "rows.jsonl", say: { _ in })
        let record = try XCTUnwrap(submitted)
        let stop = BatchStop()
        stop.request()
        _ = try await remote.wait(record, stop: stop) { _ in }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out.jsonl"), "nothing collected yet")

        // Another process: only the record on disk, found by the batch id, and a client.
        let batchID = record.parts[0].batchID
        let found = try RemoteBatchRecord.find(batchID, in: dir + "/remote")
        XCTAssertEqual(found.run, record.run)
        XCTAssertEqual(found.variants[0].request.functionSpec, spec)
        var fresh = client(server)
        fresh.forcedCall = .auto
        let later = RemoteBatchRunner(
            apis: [.openAI: try BatchAPI(client: fresh)], directory: dir + "/remote", pollInterval: 0.01)
        let waited = try await later.wait(found, stop: BatchStop()) { _ in }
        let (collected, summary) = try await later.collect(waited, prices: .defaults)
        XCTAssertTrue(collected.parts.allSatisfy(\.collected))
        XCTAssertEqual(summary.totals[""]?.ok, 5)
        for r in try results() {
            let row = try XCTUnwrap(r["row"]?.intValue)
            XCTAssertEqual(r["arguments"], ["answer": .string("Capital of C\(row)?")])
            XCTAssertEqual(
                r["schema_violations"], [#"$: required property "sure" is missing"#],
                "checked against the function the batch was sent with")
        }
        XCTAssertThrowsError(try RemoteBatchRecord.find("batch_nope", in: dir + "/remote")) {
            XCTAssertTrue("\($0)".contains("no remote batch batch_nope"), "\($0)")
        }
    }

    func testFailedLinesAreErrorsThatARerunSendsAgain() async throws {
        let (server, s, runner, remote) = try await faulted(.errorLines, rows: 9)
        let (_, summary, _) = try await run(runner, remote, s)
        XCTAssertEqual(summary?.totals[""]?.ok, 6)
        XCTAssertEqual(summary?.totals[""]?.failed, 3)
        let failed = try results().filter { $0["error"] != .null }
        XCTAssertEqual(failed.compactMap { $0["row"]?.intValue }.sorted(), [2, 5, 8])
        XCTAssertTrue(failed[0]["error"]?.stringValue?.contains("500") == true, "\(failed[0])")
        XCTAssertTrue(failed[0]["error"]?.stringValue?.contains("the server had an error") == true)

        server.batchAPI.fault = .none
        let (record, again, _) = try await run(runner, remote, s)
        XCTAssertEqual(record?.jobs.count, 3, "only the failed rows are sent again")
        XCTAssertEqual(again?.totals[""]?.ok, 3)
        XCTAssertEqual(server.batchAPI.batchCount, 2)
    }

    func testAnExpiredBatchKeepsWhatFinishedAndTheRestIsNotRun() async throws {
        let (_, s, runner, remote) = try await faulted(.expire, rows: 10)
        let (record, summary, _) = try await run(runner, remote, s)
        XCTAssertEqual(summary?.totals[""]?.ok, 5)
        XCTAssertEqual(summary?.totals[""]?.failed, 5)
        let errors = try results().compactMap { $0["error"]?.stringValue }
        XCTAssertEqual(errors.count, 5)
        XCTAssertTrue(errors[0].contains("not run: batch \(record!.parts[0].batchID) expired"), errors[0])
        XCTAssertTrue(errors[0].contains("run the same :batch … remote again"), errors[0])
    }

    func testAFailedValidationSaysWhyForEveryRow() async throws {
        let (_, s, runner, remote) = try await faulted(.fail, rows: 3)
        let (_, summary, _) = try await run(runner, remote, s)
        XCTAssertEqual(summary?.totals[""]?.failed, 3)
        let error = try XCTUnwrap(try results().first?["error"]?.stringValue)
        XCTAssertTrue(error.contains("failed: the batch failed validation"), error)
    }

    func testABatchWhoseCreateAnswerIsLostIsFoundNotSentTwice() async throws {
        let (server, s, runner, remote) = try await faulted(.dropCreate, rows: 4)
        let (record, summary, _) = try await run(runner, remote, s)
        XCTAssertEqual(server.batchAPI.batchCount, 1, "the lost batch was found by its metadata")
        XCTAssertEqual(server.requests.filter { $0.uri == "/v1/batches" && $0.method == "POST" }.count, 1)
        XCTAssertTrue(server.requests.contains { $0.uri.hasPrefix("/v1/batches?limit=") })
        XCTAssertEqual(record?.parts.count, 1)
        XCTAssertEqual(summary?.totals[""]?.ok, 4)
    }

    func testARateLimitedPollIsRetriedAndTwoModelsAreTwoBatches() async throws {
        let server = try await server()
        let c = client(server)
        let s = Session(provider: .openAI, model: "gpt-4o-mini")
        let variants = try s.variants([CompareAxis(key: "model", values: ["gpt-4o-mini", "gpt-4o"])])
        let (runner, remote) = try setUp(s, c, rows: 3, variants: variants)
        let submitted = try await remote.submit(runner, session: s, dataset: "rows.jsonl", say: { _ in })
        let record = try XCTUnwrap(submitted)
        XCTAssertEqual(
            Set(record.parts.map(\.model)), ["gpt-4o-mini", "gpt-4o"], "the Batch API takes one model a batch")
        server.enqueue(.body(429, #"{"error":{"message":"Rate limit reached","type":"requests"}}"#))
        let waited = try await remote.wait(record, stop: BatchStop()) { _ in }
        let (_, summary) = try await remote.collect(waited, prices: .defaults)
        XCTAssertEqual(summary.totals["model=gpt-4o-mini"]?.ok, 3)
        XCTAssertEqual(summary.totals["model=gpt-4o"]?.ok, 3)
        let models = try results().compactMap { r in r["variant"]?.stringValue }
        XCTAssertEqual(models.count, 6)
    }

    func testAnthropicHasNoBatchAPIHereAndErrorsAreRedacted() async throws {
        let server = try await server()
        XCTAssertThrowsError(try BatchAPI(client: client(server, provider: .anthropic))) {
            XCTAssertTrue("\($0)".contains(":provider openai"), "\($0)")
        }
        server.enqueue(.body(401, #"{"error":{"message":"Incorrect API key provided: sk-remote-secret-1234"}}"#))
        let api = try BatchAPI(client: client(server))
        do {
            _ = try await api.retrieve("batch_1")
            XCTFail("a 401 is an error")
        } catch {
            XCTAssertFalse("\(error)".contains("sk-remote-secret"), "\(error)")
            XCTAssertTrue("\(error)".contains("401"), "\(error)")
        }
        // An id cannot reach another path.
        _ = try? await api.retrieve("../files/file-1/content")
        XCTAssertEqual(server.requests.last?.uri, "/v1/batches/%2E%2E%2Ffiles%2Ffile-1%2Fcontent")
    }

    func testEachKindOfOutputLineReadsAsADirectCallsResultOrError() async throws {
        let server = try await server()
        let api = try BatchAPI(client: client(server))
        let request = QueryRequest(model: "gpt-4o-mini", messages: [.user("hi")], stream: false)
        let ok: JSONValue = [
            "id": "batch_req_1", "custom_id": "row-1-v0",
            "response": [
                "status_code": 200, "request_id": "req_1",
                "body": [
                    "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                    "system_fingerprint": "fp_1",
                    "choices": [
                        ["index": 0, "message": ["role": "assistant", "content": "Paris"], "finish_reason": "stop"]
                    ],
                    "usage": ["prompt_tokens": 7, "completion_tokens": 1],
                ],
            ],
            "error": .null,
        ]
        let result = try api.read(outputLine: ok, request: request).get()
        XCTAssertEqual(result.output, .text("Paris"))
        XCTAssertEqual(result.inputTokens, 7)
        XCTAssertEqual(result.info.systemFingerprint, "fp_1")
        XCTAssertEqual(result.info.finishReason, "stop")
        let status: JSONValue = [
            "custom_id": "row-2-v0",
            "response": [
                "status_code": 400, "request_id": "req_2",
                "body": ["error": ["message": "max_tokens is too large", "type": "invalid_request_error"]],
            ],
            "error": .null,
        ]
        guard case .failure(.http(let d)) = api.read(outputLine: status, request: request) else {
            return XCTFail("a 400 line is an HTTP error")
        }
        XCTAssertEqual(d.status, 400)
        XCTAssertEqual(d.message, "max_tokens is too large")
        XCTAssertEqual(d.requestID, "req_2")
        let failed: JSONValue = [
            "custom_id": "row-3-v0", "response": .null,
            "error": [
                "code": "batch_expired",
                "message": "This request could not be executed before the completion window expired.",
            ],
        ]
        guard case .failure(.http(let e)) = api.read(outputLine: failed, request: request) else {
            return XCTFail("an error line is an error")
        }
        XCTAssertEqual(e.code, "batch_expired")
        let garbage: JSONValue = [
            "custom_id": "row-4-v0", "response": ["status_code": 200, "body": ["choices": "no"]],
        ]
        guard case .failure(.malformedResponse) = api.read(outputLine: garbage, request: request) else {
            return XCTFail("a body that is not a completion is malformed")
        }
    }
}
