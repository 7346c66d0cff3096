import Foundation
import PromptSession
import QueryCore
import XCTest

/// The assertion engine: each type's verdicts over outputs whose expected pass counts are worked
/// out here independently; `not-`, weights and the row threshold; parse errors at `:assert` time.
final class AssertionTests: XCTestCase {
    /// 200 outputs: every third says Paris, every fifth is JSON, every seventh is fenced JSON.
    func outputs() -> [String] {
        (0..<200).map { i in
            if i % 5 == 0 { return "{\"n\": \(i), \"city\": \"Paris\"}" }
            if i % 7 == 0 { return "```json\n{\"n\": \(i)}\n```" }
            return i % 3 == 0 ? "The capital is Paris (\(i))" : "Answer \(i)"
        }
    }

    func passes(_ spec: String, _ outs: [String], vars: (Int) -> [String: String] = { _ in [:] }) throws -> Int {
        let a = try Assertion.parse(spec)
        return outs.enumerated().filter { i, o in
            a.evaluate(AssertionInput(output: .text(o), vars: vars(i))).pass
        }.count
    }

    func testEachTextTypeGivesTheCountWorkedOutIndependently() throws {
        let outs = outputs()
        let paris = outs.filter { $0.contains("Paris") }.count
        XCTAssertEqual(paris, (0..<200).filter { $0 % 5 == 0 || ($0 % 7 != 0 && $0 % 3 == 0) }.count)
        XCTAssertEqual(try passes("contains Paris", outs), paris)
        XCTAssertEqual(try passes("not-contains Paris", outs), 200 - paris)
        XCTAssertEqual(try passes("icontains PARIS", outs), paris)
        XCTAssertEqual(try passes("contains PARIS", outs), 0)
        let plainJSON = (0..<200).filter { $0 % 5 == 0 }.count
        XCTAssertEqual(try passes("is-json", outs), plainJSON, "a fenced block is not JSON as a whole")
        let fenced = (0..<200).filter { $0 % 5 != 0 && $0 % 7 == 0 }.count
        XCTAssertEqual(try passes("contains-json", outs), plainJSON + fenced)
        XCTAssertEqual(
            try passes(#"is-json {"type":"object","required":["city"]}"#, outs), plainJSON)
        XCTAssertEqual(try passes(#"contains-json {"required":["city"]}"#, outs), plainJSON)
        let answers = (0..<200).filter { $0 % 5 != 0 && $0 % 7 != 0 && $0 % 3 != 0 }.count
        XCTAssertEqual(try passes("starts-with Answer", outs), answers)
        XCTAssertEqual(
            try passes(#"regex ^Answer \d*7$"#, outs),
            (0..<200).filter {
                $0 % 5 != 0 && $0 % 7 != 0 && $0 % 3 != 0 && $0 % 10 == 7
            }.count)
        XCTAssertEqual(
            try passes("contains-all Paris,capital", outs),
            (0..<200).filter {
                $0 % 5 != 0 && $0 % 7 != 0 && $0 % 3 == 0
            }.count)
        XCTAssertEqual(try passes("contains-any Paris,Answer", outs), paris + answers)
        XCTAssertEqual(
            try passes("equals {{expected}}", outs, vars: { ["expected": $0 % 2 == 0 ? "Answer \($0)" : "x"] }),
            (0..<200).filter { $0 % 2 == 0 && $0 % 5 != 0 && $0 % 7 != 0 && $0 % 3 != 0 }.count)
        // "Answer 1" is 1 edit from "Answer 12", 2 from "Answer 123" and 4 from "Answer" + 5 digits.
        XCTAssertEqual(try passes("levenshtein Answer1 threshold=2", ["Answer 1", "Answer 12", "Answer 123"]), 2)
    }

    func testFiguresFinishReasonToolCallAndSchema() throws {
        let weather = try FunctionSpec(
            name: "get_weather",
            parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])
        func call(_ args: JSONValue) -> TranscriptEvent.Output {
            .toolCalls(
                [FunctionCall(id: "c1", name: "get_weather", arguments: args, rawArguments: args.serialized())],
                text: "")
        }
        func check(_ spec: String, _ input: AssertionInput) throws -> Bool {
            try Assertion.parse(spec).evaluate(input).pass
        }
        let good = AssertionInput(output: call(["city": "Paris"]), tools: [weather])
        let bad = AssertionInput(output: call(["town": "Paris"]), tools: [weather])
        XCTAssertTrue(try check("tool-call get_weather", good))
        XCTAssertTrue(try check(#"tool-call get_weather {"city":"Paris"}"#, good))
        XCTAssertFalse(try check(#"tool-call get_weather {"city":"Rome"}"#, good))
        XCTAssertFalse(try check("tool-call get_weather", bad), "arguments breaking the schema")
        XCTAssertFalse(try check("tool-call other", good))
        XCTAssertTrue(try check("schema-valid", good))
        XCTAssertFalse(try check("schema-valid", bad))
        XCTAssertTrue(try check("not-schema-valid", bad))
        XCTAssertFalse(try check("schema-valid", AssertionInput(output: .text("hi"))), "nothing to check against")
        let figures = AssertionInput(output: .text("x"), finishReason: "length", cost: 0.02, latency: 1.5)
        XCTAssertTrue(try check("finish-reason length", figures))
        XCTAssertFalse(try check("finish-reason stop", figures))
        XCTAssertTrue(try check("cost 0.02", figures))
        XCTAssertFalse(try check("cost 0.01", figures))
        XCTAssertTrue(try check("latency 2", figures))
        XCTAssertFalse(try check("latency 1", figures))
        XCTAssertFalse(try check("cost 1", AssertionInput(output: .text("x"))), "an unknown cost does not pass")
        XCTAssertFalse(try check("not-contains x", AssertionInput(output: .error("500"))), "a failed request fails all")
    }

    func testWeightsAndThresholdFollowPromptfoosRule() throws {
        let asserts = try ["contains Paris weight=3", "contains London", "not-contains Rome weight=0"].map(
            Assertion.parse)
        let input = AssertionInput(output: .text("Paris and Rome"))
        let all = Assertion.evaluate(asserts, threshold: nil, input: input)
        XCTAssertEqual(all.verdicts.map(\.pass), [true, false, false])
        XCTAssertEqual(all.score, 3.0 / 4.0, accuracy: 1e-9)
        XCTAssertFalse(all.pass)
        XCTAssertTrue(Assertion.evaluate(asserts, threshold: 0.75, input: input).pass)
        XCTAssertFalse(Assertion.evaluate(asserts, threshold: 0.8, input: input).pass)
        XCTAssertEqual(Assertion.evaluate([], threshold: nil, input: input).score, 1)
    }

    func testBadAssertionsAreOneLineErrorsWhenAdded() {
        for (spec, says) in [
            ("regex ([a-z", "not a valid regular expression"), ("contains", "needs a value"),
            ("cost cheap", "takes a number"), ("nope x", "is not an assertion type"),
            ("contains x weight=-1", "weight takes a number"), ("is-json [1", "JSON Schema"),
            ("tool-call f {bad", "tool name and optional JSON"),
        ] {
            XCTAssertThrowsError(try CommandParser.parse(":assert \(spec)"), spec) { e in
                let m = "\(e)"
                XCTAssertTrue(m.contains(says), "\(spec): \(m)")
                XCTAssertTrue(m.contains("e.g."), "\(spec): an example: \(m)")
                XCTAssertFalse(m.contains("\n"))
            }
        }
        XCTAssertNoThrow(try CommandParser.parse(":assert regex {{pattern}}"), "a template is checked once filled")
    }

    func testSessionCommandsAddListRemoveAndSetTheThreshold() throws {
        let s = Session(provider: .openAI, model: "m")
        for line in [":assert contains Paris weight=2", ":assert not-regex ^Sorry", ":assert threshold 0.5"] {
            guard case .command(let c) = try CommandParser.parse(line) else { return XCTFail(line) }
            _ = try s.apply(c)
        }
        let list = try s.apply(.asserts)
        XCTAssertEqual(
            list, "  1. contains \"Paris\" weight=2\n  2. not-regex \"^Sorry\"\n  pass: weighted score ≥ 0.5")
        let r = s.assertionResult(for: .text("Sorry, Paris"), finishReason: nil, cost: nil, latency: nil)
        XCTAssertEqual(r?.verdicts.map(\.pass), [true, false])
        XCTAssertEqual(r?.pass, true)
        XCTAssertThrowsError(try s.apply(.removeAssertion(3)))
        _ = try s.apply(.removeAssertion(1))
        XCTAssertEqual(s.assertions.map(\.name), ["not-regex"])
        _ = try s.apply(.removeAssertion(nil))
        XCTAssertTrue(s.assertions.isEmpty)
        XCTAssertNil(s.assertionResult(for: .text("x"), finishReason: nil, cost: nil, latency: nil))
    }

    func testVerdictsRoundTripThroughTheTranscriptAndOldTurnsHaveNone() throws {
        let q = QueryResult(
            output: .text("Paris"), requestTime: 1, inputTokens: 1, outputTokens: 1, timeToFirstToken: nil, retries: 0,
            info: QueryInfo())
        var turn = TranscriptEvent.Turn(prompt: "p", outcome: .success(q))
        let plain = try TranscriptEvent(json: TranscriptEvent.turn(turn).json, index: 0)
        guard case .turn(let old) = plain else { return XCTFail("not a turn") }
        XCTAssertNil(old.assertions)
        turn.assertions = Assertion.evaluate(
            [try Assertion.parse("contains Paris"), try Assertion.parse("regex ^x")], threshold: nil,
            input: AssertionInput(output: turn.output))
        let back = try TranscriptEvent(json: TranscriptEvent.turn(turn).json, index: 0)
        guard case .turn(let t) = back else { return XCTFail("not a turn") }
        XCTAssertEqual(t.assertions, turn.assertions)
        XCTAssertEqual(t.assertions?.verdicts.map(\.pass), [true, false])
    }
}
