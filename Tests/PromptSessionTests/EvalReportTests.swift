import Foundation
import PromptSession
import QueryCore
import TestHTTPServer
import XCTest

/// Two real batch runs against the echo server, read back as eval runs: the matrix figures, the
/// diff's flipped rows (worked out here from the data) and the HTML report's escaping.
final class EvalReportTests: BatchTestCase {
    /// Runs `countries` (row i's `country`) through the echo server under "contains 7" and "icontains capital".
    func run(_ countries: [String], to out: String) async throws {
        let server = try await echoServer()
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let s = Session(provider: .openAI, model: "m")
        _ = try s.apply(.addAssertion(try Assertion.parse("contains 7")))
        _ = try s.apply(.addAssertion(try Assertion.parse("icontains capital")))
        let v = try s.variants([CompareAxis(key: "model", values: ["a", "b"])])
        _ = try await runner(s, c, rows: countries.map { ["country": $0] }, variants: v, out: out).run(session: s)
    }

    func testTheDiffListsExactlyTheRowsThatFlipped() async throws {
        let before = (0..<60).map { "C\($0)" }
        // Every fifth row gains a 7 and every seventh loses its digits: those flip, the rest stay.
        let after = (0..<60).map { i in i % 5 == 0 ? "C\(i)x7" : i % 7 == 0 ? "D" : "C\(i)" }
        try await run(before, to: dir + "/old.jsonl")
        try await run(after, to: dir + "/new.jsonl")
        let old = try EvalRun.load(dir + "/old.jsonl")
        let new = try EvalRun.load(dir + "/new.jsonl")
        XCTAssertEqual(old.variants, ["model=a", "model=b"])
        let broke = (0..<60).filter { before[$0].contains("7") && !after[$0].contains("7") }
        let fixed = (0..<60).filter { !before[$0].contains("7") && after[$0].contains("7") }
        XCTAssertFalse(broke.isEmpty)
        XCTAssertFalse(fixed.isEmpty)
        let d = EvalDiff(old: old, new: new)
        XCTAssertEqual(d.compared, 120)
        for variant in ["model=a", "model=b"] {
            XCTAssertEqual(d.regressions.filter { $0.variant == variant }.map(\.row), broke)
            XCTAssertEqual(d.fixes.filter { $0.variant == variant }.map(\.row), fixed)
        }
        XCTAssertEqual(d.regressions.first?.failing, ["contains 7"])
        let passedBefore = before.filter { $0.contains("7") }.count
        let passedAfter = after.filter { $0.contains("7") }.count
        let delta = try XCTUnwrap(d.deltas.first { $0.variant == "model=a" && $0.assertion == "contains 7" })
        XCTAssertEqual([delta.before, delta.after, delta.of], [passedBefore, passedAfter, 60])
        let capital = try XCTUnwrap(d.deltas.first { $0.variant == "model=a" && $0.assertion == "icontains capital" })
        XCTAssertEqual([capital.before, capital.after], [60, 60])
        let report = d.report(old: "old.jsonl", new: "new.jsonl")
        XCTAssertEqual(
            report[0],
            "old.jsonl → new.jsonl: 120 graded rows compared · \(broke.count * 2) pass→fail · \(fixed.count * 2) fail→pass"
        )
        XCTAssertTrue(report.contains("  ✗ row \(broke[0]) [model=a] pass→fail: contains 7"), "\(report)")
        XCTAssertTrue(
            report.contains(
                "    contains 7 [model=b]: \(passedBefore)/60 → \(passedAfter)/60 (+\(passedAfter - passedBefore))"),
            "\(report)")
        // The matrix: the pass rate per variant is the count of rows holding a 7.
        XCTAssertEqual(new.totals("model=a").passed, passedAfter)
        XCTAssertEqual(new.totals("model=a").graded, 60)
        XCTAssertEqual(new.totals("model=b").inputTokens, 600)
    }

    func testTheReportKeepsAModelsScriptAsTextAndRunsOnlyItsOwn() throws {
        let line: JSONValue = [
            "row": 1, "variant": "v<b>", "vars": ["x": "\"><img src=x onerror=alert(1)>"],
            "prompt": "p", "output": "<script>document.title='pwned'</script> & done",
            "assertions": [
                ["type": "contains", "value": "</pre><script>", "pass": false, "score": 0, "reason": "<i>no</i>"]
            ],
            "pass": false, "score": 0, "error": .null,
        ]
        try Data((line.serialized() + "\n{not json\n").utf8).write(to: URL(fileURLWithPath: dir + "/r.jsonl"))
        let run = try EvalRun.load(dir + "/r.jsonl")
        XCTAssertEqual(run.unreadable, [2])
        let html = EvalReport.html(run)
        XCTAssertTrue(html.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; &amp; done"), html)
        XCTAssertFalse(html.contains("<img"))
        XCTAssertFalse(html.contains("<b>"))
        XCTAssertFalse(html.contains("<i>no"))
        // One script element, the report's own, and a policy naming its hash.
        XCTAssertEqual(html.components(separatedBy: "<script>").count - 1, 1)
        XCTAssertTrue(html.contains("script-src 'sha256-"))
    }

    func testAFileWithNoResultLinesIsOneClearError() throws {
        try Data("hello\n\n".utf8).write(to: URL(fileURLWithPath: dir + "/x.jsonl"))
        XCTAssertThrowsError(try EvalRun.load(dir + "/x.jsonl")) { e in
            XCTAssertTrue("\(e)".contains("holds no result lines"), "\(e)")
        }
        XCTAssertThrowsError(try EvalRun.load(dir + "/missing.jsonl")) { e in
            XCTAssertTrue("\(e)".hasPrefix("cannot read results file"), "\(e)")
        }
    }
}

final class SHA256Tests: XCTestCase {
    func testKnownDigests() {
        func hex(_ s: String) -> String { EvalReport.sha256Hex(Array(s.utf8)) }
        XCTAssertEqual(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            hex(String(repeating: "a", count: 1_000)),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
