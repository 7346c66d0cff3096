import Foundation
import PromptSession
import QueryCore
import TestHTTPServer
import XCTest

/// `:batch` against the in-process server: 200 rows at concurrency 8 give the right 200
/// results; a resumed run sends nothing twice; variants run as a product; a 429 slows the run.
final class BatchTests: BatchTestCase {
    func testTwoHundredRowsAtConcurrencyEightThenAResumedRunSendsNothingTwice() async throws {
        let server = try await echoServer()
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let s = Session(provider: .openAI, model: "m")
        _ = try s.apply(.setSystem("Answer for {{audience}}."))
        _ = try s.apply(.setVar(name: "audience", value: "children"))
        let rows = (0..<200).map { ["country": "C\($0)"] }
        let out = dir + "/out.jsonl"
        var seen = 0
        let summary = try await runner(s, c, rows: rows, out: out).run(session: s) { seen = $0.done }
        XCTAssertEqual(seen, 200)
        XCTAssertEqual(server.requests.count, 200)
        let results = try lines(out)
        XCTAssertEqual(results.count, 200)
        XCTAssertEqual(Set(results.compactMap { $0["row"]?.intValue }), Set(0..<200))
        for r in results {
            let row = try XCTUnwrap(r["row"]?.intValue)
            XCTAssertEqual(r["prompt"], .string("Capital of C\(row)?"))
            XCTAssertEqual(r["output"], .string("echo: Capital of C\(row)?"))
            XCTAssertEqual(r["vars"], ["country": .string("C\(row)")])
            XCTAssertEqual(r["error"], .null)
            XCTAssertEqual(r["input_tokens"], 10)
        }
        let first = try XCTUnwrap(server.requests.first?.json?["messages"])
        XCTAssertEqual(first.arrayValue?.first, ["role": "system", "content": "Answer for children."])
        XCTAssertEqual(summary.totals[""]?.ok, 200)
        XCTAssertTrue(summary.report().contains("200 ok, 0 failed · tokens in 2000 out 600"), summary.report())
        SchemaRecorder.record(Array(server.requests.prefix(3)), name: "batch")
        // Again with the same results file: nothing is sent.
        let again = try await runner(s, c, rows: rows, out: out).run(session: s)
        XCTAssertEqual(server.requests.count, 200)
        XCTAssertEqual(again.skipped, 200)
        XCTAssertTrue(again.report().contains("200 already in the results file, not sent again"), again.report())
        // A run stopped after 150 rows (the last line torn) sends exactly the 50 missing ones.
        let kept = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").prefix(150)
        try (kept.joined(separator: "\n") + "\n{\"row\": 19").write(toFile: out, atomically: true, encoding: .utf8)
        let resumed = try await runner(s, c, rows: rows, out: out).run(session: s)
        XCTAssertEqual(server.requests.count, 250)
        XCTAssertEqual(resumed.skipped, 150)
        let rowsNow = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONValue.parse(String($0)) }.compactMap { $0["row"]?.intValue }
        XCTAssertEqual(rowsNow.count, 200, "the torn line was cut off, the 50 rows appended")
        XCTAssertEqual(Set(rowsNow), Set(0..<200))
    }

    func testVariantsRunAsAProductAndFailuresAreRecordedAndRetriedOnTheNextRun() async throws {
        let server = try await echoServer()
        server.enqueue(.body(400, #"{"error":{"message":"bad row"}}"#))
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let s = Session(provider: .openAI, model: "m")
        let variants = try s.variants([
            CompareAxis(key: "model", values: ["a", "b"]), CompareAxis(key: "temperature", values: ["0", "1"]),
        ])
        let out = dir + "/v.jsonl"
        let rows = [["country": "X"], ["country": "Y"]]
        let summary = try await runner(s, c, rows: rows, variants: variants, concurrency: 1, out: out).run(session: s)
        XCTAssertEqual(server.requests.count, 8)
        XCTAssertEqual(summary.failed, 1)
        XCTAssertEqual(Set(try lines(out).compactMap { $0["variant"]?.stringValue }).count, 4)
        // Side by side: a column per variant.
        let report = summary.report().split(separator: "\n").map(String.init)
        XCTAssertEqual(
            report[1].split(separator: " ").map(String.init),
            [
                "model=a", "temperature=0", "model=a", "temperature=1", "model=b", "temperature=0", "model=b",
                "temperature=1",
            ],
            summary.report())
        // Which variant's request met the 400 depends on which job took the one place first (the
        // concurrency gate does not order them): one column has 1 ok and 1 failed, the others 2 ok.
        let ok = report[2].split(separator: " ").map(String.init)
        let failed = report[3].split(separator: " ").map(String.init)
        XCTAssertEqual(ok.first, "ok", summary.report())
        XCTAssertEqual(failed.first, "failed", summary.report())
        XCTAssertEqual(ok.dropFirst().sorted(), ["1", "2", "2", "2"], summary.report())
        XCTAssertEqual(failed.dropFirst().sorted(), ["0", "0", "0", "1"], summary.report())
        XCTAssertEqual(ok.firstIndex(of: "1"), failed.firstIndex(of: "1"), "the failed request's column")
        XCTAssertEqual(server.requests.compactMap { $0.json?["model"]?.stringValue }.filter { $0 == "b" }.count, 4)
        let again = try await runner(s, c, rows: rows, variants: variants, concurrency: 1, out: out).run(session: s)
        XCTAssertEqual(server.requests.count, 9, "only the failed one is sent again")
        XCTAssertEqual(again.skipped, 7)
    }

    func testARateLimitSlowsTheWholeRun() async throws {
        let server = try await echoServer()
        server.enqueue(.body(429, #"{"error":{"message":"slow down"}}"#, headers: [("retry-after", "1")]))
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m")
        let s = Session(provider: .openAI, model: "m")
        let start = Date()
        let summary = try await runner(
            s, c, rows: (0..<6).map { ["country": "C\($0)"] }, concurrency: 2, out: dir + "/r.jsonl"
        )
        .run(session: s)
        XCTAssertGreaterThan(Date().timeIntervalSince(start), 0.9, "the server asked the run to wait 1 s")
        XCTAssertEqual(summary.totals[""]?.ok, 6)
        XCTAssertEqual(summary.rateLimited, 1)
        XCTAssertTrue(
            summary.report().contains("rate limited 1 time (concurrency lowered to 1 of 2 at the least)"),
            summary.report())
    }

    func testBadFilesAndUnsetVariablesAreOneClearError() async throws {
        try "{\"a\": 1}\nnot json\n".write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BatchFile.load(dir + "/bad.jsonl")) {
            XCTAssertEqual(
                "\($0)",
                "batch file \(dir)/bad.jsonl: line 2 is not JSON (a row is one JSON object per line, or use .csv)")
        }
        try "name,note\nAda,\"says \"\"hi\"\", twice\"\nBob\n".write(
            toFile: dir + "/b.csv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try BatchFile.load(dir + "/b.csv")) {
            XCTAssertTrue("\($0)".contains("row 3 has 1 field, the header 2"), "\($0)")
        }
        try "name,note\r\nAda,\"says \"\"hi\"\",\nand more\"\r\n".write(
            toFile: dir + "/ok.csv", atomically: true, encoding: .utf8)
        XCTAssertEqual(try BatchFile.load(dir + "/ok.csv").rows, [["name": "Ada", "note": "says \"hi\",\nand more"]])
        let s = Session(provider: .openAI, model: "m")
        let c = QueryClient(provider: .openAI, baseURL: "http://127.0.0.1:1/v1", defaultModel: "m")
        do {
            _ = try await runner(s, c, rows: [["country": "X"], ["other": "Y"]], out: dir + "/o.jsonl").run(session: s)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(
                "\(error)", "row 2: {{country}} is not set (:var country VALUE sets it; {{{{ writes a literal {{)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/o.jsonl"), "nothing was sent or written")
    }
}
