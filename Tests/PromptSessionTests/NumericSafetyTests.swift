import Foundation
import PromptSession
import QueryCore
import XCTest

/// Figures come from servers and files: every sum saturates, every bad number in a file refuses
/// the file with one line, and a failed turn's billed tokens are counted.
final class NumericSafetyTests: XCTestCase {
    func result(_ i: Int?, _ o: Int?, retries: Int = 0) -> QueryResult {
        QueryResult(
            output: .text("x"), requestTime: 0.1, inputTokens: i, outputTokens: o, timeToFirstToken: nil,
            retries: retries, info: QueryInfo())
    }

    func testTokenSumsAcrossTurnsSaturateInsteadOfTrapping() {
        let s = Session(provider: .openAI, model: "m")
        s.recordSuccess(prompt: "a", result: result(Int.max - 1, Int.max))
        s.recordSuccess(prompt: "b", result: result(Int.max - 1, Int.max, retries: Int.max))
        XCTAssertEqual(s.stats.inputTokens.sum, Int.max)
        XCTAssertEqual(s.stats.requests, Int.max)
        let report = s.stats.report()
        XCTAssert(report.contains("tokens in \(Int.max)   out \(Int.max)   total \(Int.max)"), report)
    }

    func testAFailedTurnCountsTheTokensTheServerReported() {
        let s = Session(provider: .openAI, model: "m")
        // $1 per input token, $2 per output token.
        s.prices.prices["m"] = PriceTable.Price(input: 1_000_000, output: 2_000_000)
        s.recordFailure(prompt: "p", retries: 0, latency: 0.3, cancelled: false, inputTokens: 40, outputTokens: 12)
        s.recordFailure(prompt: "p", retries: 0, latency: 0.1, cancelled: true, inputTokens: 5, outputTokens: nil)
        XCTAssertEqual(s.stats.inputTokens.sum, 45)
        XCTAssertEqual(s.stats.outputTokens.sum, 12)
        XCTAssertEqual(s.stats.inputTokens.unknown, 0, "a failed turn without usage is not an unknown")
        let report = s.stats.report()
        XCTAssert(report.contains("tokens in 45   out 12   total 57"), report)
        XCTAssert(report.contains("cost $64.0000"), report)
    }

    func transcript(turn: JSONObject) -> [UInt8] {
        var e: JSONObject = ["type": "turn", "at": "2026-01-01T00:00:00.000Z", "prompt": "p", "output": ["text": "a"]]
        for (k, v) in turn { e[k] = v }
        let t: JSONValue = [
            "format": "promptline-transcript", "version": 1, "id": "abc", "created": "2026-01-01T00:00:00.000Z",
            "updated": "2026-01-01T00:00:00.000Z", "provider": "openai", "base_url": "http://x", "model": "m",
            "events": [
                [
                    "type": "settings", "at": "2026-01-01T00:00:00.000Z", "provider": "openai", "model": "m",
                    "mode": "chat", "options": [:],
                ],
                .object(e),
            ],
        ]
        return t.serializedBytes()
    }

    func testATranscriptWithFiguresPromptlineNeverWritesIsRefusedWithOneLine() throws {
        XCTAssertNoThrow(
            try Transcript.parse(transcript(turn: ["retries": 2, "input_tokens": 10, "request_time": 0.5])))
        let bad: [(String, JSONValue)] = [
            ("retries", .integer(Int64.max)), ("retries", -1), ("input_tokens", 1.5), ("output_tokens", "many"),
            ("request_time", -2), ("time_to_first_token", "soon"),
        ]
        for (k, v) in bad {
            XCTAssertThrowsError(try Transcript.parse(transcript(turn: [k: v])), "\(k): \(v.serialized())") { e in
                let m = "\(e)"
                XCTAssert(m.contains("events[1].\(k)"), m)
                XCTAssertFalse(m.contains("\n"), m)
            }
        }
    }
}
