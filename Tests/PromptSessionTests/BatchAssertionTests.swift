import Foundation
import PromptSession
import QueryCore
import TestHTTPServer
import XCTest

/// `:batch` with assertions against the in-process echo server: each result line carries its
/// verdicts, pass and score; a row's `assert` column adds to the session's; the summary's pass
/// rate per variant is the count worked out here.
final class BatchAssertionTests: BatchTestCase {
    func testResultLinesCarryVerdictsAndTheSummaryAPassRatePerVariant() async throws {
        let server = try await echoServer()
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let s = Session(provider: .openAI, model: "m")
        _ = try s.apply(.addAssertion(try Assertion.parse("contains 7")))
        _ = try s.apply(.addAssertion(try Assertion.parse("starts-with echo: Capital of {{country}}")))
        _ = try s.apply(.addAssertion(try Assertion.parse("finish-reason stop")))
        let rows = (0..<200).map { i -> [String: String] in
            var r = ["country": "C\(i)"]
            if i % 4 == 0 { r["assert"] = #"[{"type":"not-contains","value":"C1","weight":2}]"# }
            return r
        }
        let out = dir + "/out.jsonl"
        let v = try s.variants([CompareAxis(key: "model", values: ["a", "b"])])
        let summary = try await runner(s, c, rows: rows, variants: v, out: out).run(session: s)
        let results = try lines(out)
        XCTAssertEqual(results.count, 400)
        // A row passes when its name holds a 7 and, for every fourth row, not "C1".
        func passes(_ i: Int) -> Bool {
            "C\(i)".contains("7") && !(i % 4 == 0 && "echo: Capital of C\(i)?".contains("C1"))
        }
        let expected = (0..<200).filter(passes).count
        for r in results {
            let row = try XCTUnwrap(r["row"]?.intValue)
            XCTAssertEqual(r["pass"], .bool(passes(row)), "row \(row)")
            XCTAssertEqual(r["assertions"]?.arrayValue?.count, row % 4 == 0 ? 4 : 3)
        }
        let row40 = try XCTUnwrap(results.first { $0["row"] == 40 })  // C40: no 7, has "C4" not "C1"
        XCTAssertEqual(row40["score"]?.doubleValue ?? -1, 4.0 / 5.0, accuracy: 1e-9)
        let report = summary.report()
        let rate = String(format: "%.0f%%", Double(expected) * 100 / 200) + " (\(expected)/200)"
        XCTAssertTrue(report.contains("pass rate"), report)
        XCTAssertEqual(report.components(separatedBy: rate).count - 1, 2, report)
    }

    func testABadAssertColumnStopsTheRunBeforeAnythingIsSent() async throws {
        let server = try await echoServer()
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let s = Session(provider: .openAI, model: "m")
        let rows = [["country": "A"], ["country": "B", "assert": #"[{"type":"regex","value":"("}]"#]]
        do {
            _ = try await runner(s, c, rows: rows, out: dir + "/out.jsonl").run(session: s)
            XCTFail("a bad regex in a row must stop the run")
        } catch let e as SessionError {
            XCTAssertTrue(e.message.hasPrefix("row 2: :assert regex"), e.message)
        }
        XCTAssertEqual(server.requests.count, 0)
    }
}

extension BatchAssertionTests {
    func testAnExpectedColumnIsCheckedWithEqualsWhenNothingElseIsSet() async throws {
        let server = try await echoServer()
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let s = Session(provider: .openAI, model: "m")
        let rows = (0..<10).map { i in
            ["country": "C\(i)", "expected": i % 3 == 0 ? "echo: Capital of C\(i)?" : "Paris"]
        }
        let out = dir + "/out.jsonl"
        let summary = try await runner(s, c, rows: rows, out: out).run(session: s)
        let results = try lines(out)
        for r in results {
            let row = try XCTUnwrap(r["row"]?.intValue)
            XCTAssertEqual(r["pass"], .bool(row % 3 == 0))
            XCTAssertEqual(r["assertions"]?.arrayValue?.first?["type"], "equals")
        }
        XCTAssertTrue(summary.report().contains("pass rate 40% (4/10)"), summary.report())
        // With session assertions, the column is only a variable.
        _ = try s.apply(.addAssertion(try Assertion.parse("contains {{expected}}")))
        let out2 = dir + "/out2.jsonl"
        _ = try await runner(s, c, rows: rows, out: out2).run(session: s)
        XCTAssertEqual(try lines(out2).map { $0["assertions"]?.arrayValue?.count }, Array(repeating: 1, count: 10))
    }
}
