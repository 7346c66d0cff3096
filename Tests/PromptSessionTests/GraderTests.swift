import Foundation
import PromptSession
import QueryCore
import TestHTTPServer
import XCTest

/// `llm-rubric` and its presets graded by a model through a forced `grade` call, against a server
/// whose grades are a rule of the output (worked out here independently).
final class GraderTests: BatchTestCase {
    /// Answers a request forcing `grade` with a grade call (pass when the graded output holds a
    /// 7, score 0.9 or 0.2), or `garbage` arguments when the output holds "bad"; else the echo.
    func gradingServer() async throws -> TestHTTPServer {
        let s = try await TestHTTPServer.start(defaultReply: { req in
            let body = req.json ?? .null
            let last = body["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            let forced = body["tools"]?.arrayValue?.contains { $0["function"]?["name"] == "grade" } ?? false
            guard forced else {
                return .json(200, Self.reply(["role": "assistant", "content": .string("echo: " + last)], "stop"))
            }
            let output = last.components(separatedBy: "<output>").last ?? ""
            let args: String =
                output.contains("bad")
                ? #"{"verdict": "yes"}"#
                : output.contains("7")
                    ? #"{"reason": "it holds a seven", "pass": true, "score": 0.9}"#
                    : #"{"reason": "no seven in it", "pass": false, "score": 0.2}"#
            let call: JSONValue = [
                "id": "call_1", "type": "function", "function": ["name": "grade", "arguments": .string(args)],
            ]
            return .json(200, Self.reply(["role": "assistant", "content": .null, "tool_calls": [call]], "tool_calls"))
        })
        addTeardownBlock { s.stop() }
        return s
    }

    static func reply(_ message: JSONValue, _ finish: String) -> JSONValue {
        [
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [["index": 0, "message": message, "finish_reason": .string(finish)]],
            "usage": ["prompt_tokens": 40, "completion_tokens": 5],
        ]
    }

    func testA200RowBatchIsGradedByTheForcedCallAndCountedApart() async throws {
        let server = try await gradingServer()
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let s = Session(provider: .openAI, model: "m")
        _ = try s.apply(.addAssertion(try Assertion.parse("llm-rubric mentions a seven")))
        _ = try s.apply(.addAssertion(try Assertion.parse("not-factuality the answer is bad weight=0")))
        _ = try s.apply(.assertThreshold(0.5))  // the weighted score: the rubric's alone
        let out = dir + "/out.jsonl"
        var r = try runner(s, c, rows: (0..<200).map { ["country": "C\($0)"] }, out: out)
        let usage = GraderUsage()
        r.grader = Grader(client: c, model: "judge", usage: usage)
        let summary = try await r.run(session: s)
        let lines = try lines(out)
        XCTAssertEqual(lines.count, 200)
        let expected = (0..<200).filter { "C\($0)".contains("7") }
        for l in lines {
            let row = try XCTUnwrap(l["row"]?.intValue)
            let v = try XCTUnwrap(l["assertions"]?.arrayValue)
            XCTAssertEqual(v[0]["type"], "llm-rubric")
            XCTAssertEqual(v[0]["pass"], .bool(expected.contains(row)))
            XCTAssertEqual(v[0]["score"]?.doubleValue, expected.contains(row) ? 0.9 : 0.2)
            XCTAssertEqual(v[0]["reason"]?.stringValue, expected.contains(row) ? "it holds a seven" : "no seven in it")
            // not-factuality: the grader's pass negated, its score inverted.
            XCTAssertEqual(v[1]["pass"], .bool(!expected.contains(row)))
        }
        XCTAssertEqual(summary.totals[""]?.passed, expected.count)
        // The grader's requests: one per row and assertion, forcing grade, with the judge's model.
        let grading = server.requests.compactMap(\.json).filter { $0["tools"] != nil }
        XCTAssertEqual(grading.count, 400)
        XCTAssertEqual(grading[0]["model"], "judge")
        // AIDE's forced call: the one tool, and tool_choice required.
        XCTAssertEqual(grading[0]["tools"]?.arrayValue?.compactMap { $0["function"]?["name"]?.stringValue }, ["grade"])
        XCTAssertEqual(grading[0]["tool_choice"], "required")
        let f = usage.current
        XCTAssertEqual([f.requests, f.failures, f.inputTokens, f.outputTokens], [400, 0, 16_000, 2_000])
        XCTAssertEqual(summary.totals[""]?.inputTokens, 200 * 40, "the graded requests' tokens alone")
    }

    func testAnAnswerThatIsNotAGradeFailsTheAssertionSayingSo() async throws {
        let server = try await gradingServer()
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let grader = Grader(client: c, model: "judge")
        let input = AssertionInput(output: .text("a bad answer"), prompt: "q")
        let a = [try Assertion.parse("llm-rubric is good"), try Assertion.parse("answer-relevance")]
        var graded = input
        graded.grades = await Assertion.grades(a, text: input.text, vars: [:], prompt: "q", grader: grader)
        let result = Assertion.evaluate(a, threshold: nil, input: graded)
        XCTAssertEqual(result.verdicts.map(\.pass), [false, false])
        XCTAssertTrue(result.verdicts[0].reason.contains("not a grade call"), result.verdicts[0].reason)
        XCTAssertEqual(grader.usage.current.failures, 2)
        // answer-relevance asks about the prompt when given no question.
        let asked = server.requests.compactMap(\.json).compactMap {
            $0["messages"]?.arrayValue?.last?["content"]?.stringValue
        }
        XCTAssertTrue(asked.contains { $0.contains("answers it (not another one): q") }, "\(asked)")
        // Without a grader a model-graded assertion fails and says what to do.
        let alone = Assertion.evaluate(a, threshold: nil, input: input)
        XCTAssertTrue(alone.verdicts[0].reason.contains(":grader"), alone.verdicts[0].reason)
    }

    /// A rerun sends nothing the results file has, but checks again the lines lacking a verdict:
    /// assertions added since, and model-graded ones whose grader failed; the good verdicts are
    /// kept, the grader is asked only what is missing, and the new line is the one read back.
    func testARerunGradesOnlyWhatIsNotGraded() async throws {
        let server = try await gradingServer()
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let s = Session(provider: .openAI, model: "m")
        let out = dir + "/out.jsonl"
        let rows = (0..<20).map { ["country": "C\($0)"] }
        // 1. Sent without assertions: 20 lines, no verdicts.
        _ = try await runner(s, c, rows: rows, out: out).run(session: s)
        XCTAssertEqual(server.requests.count, 20)
        // 2. A plain assertion and a rubric added; the grader is down: nothing is sent again, the
        //    plain one is checked from the stored output, the rubric fails as ungraded.
        _ = try s.apply(.addAssertion(try Assertion.parse("contains 7")))
        _ = try s.apply(.addAssertion(try Assertion.parse("llm-rubric mentions a seven")))
        var r = try runner(s, c, rows: rows, out: out)
        let down = QueryClient(
            provider: .openAI, baseURL: "http://127.0.0.1:9/v1", defaultModel: "m", retryPolicy: .none)
        r.grader = Grader(client: down, model: "judge")
        let second = try await r.run(session: s)
        XCTAssertEqual(server.requests.count, 20, "nothing sent again")
        XCTAssertEqual(second.skipped, 20)
        XCTAssertEqual(second.regraded, 20)
        XCTAssertTrue(second.headline.contains("(20 graded again)"), second.headline)
        var run = try EvalRun.load(out)
        XCTAssertEqual(run.cells.count, 20)
        let sevens = Set((0..<20).filter { "C\($0)".contains("7") })
        for cell in run.cells {
            XCTAssertEqual(cell.verdicts.map(\.pass), [sevens.contains(cell.row), false])
            XCTAssertTrue(cell.verdicts[1].reason.hasPrefix("the grader failed"), cell.verdicts[1].reason)
        }
        // 3. The grader is back: only the 20 rubric verdicts are asked for; the lines are not sent.
        r.grader = Grader(client: c, model: "judge")
        let third = try await r.run(session: s)
        XCTAssertEqual(server.requests.count, 40)
        XCTAssertEqual(server.requests.suffix(20).compactMap(\.json).filter { $0["model"] == "judge" }.count, 20)
        XCTAssertEqual(third.regraded, 20)
        XCTAssertEqual(third.totals[""]?.passed, sevens.count)
        run = try EvalRun.load(out)
        for cell in run.cells {
            XCTAssertEqual(cell.verdicts.map(\.pass), [sevens.contains(cell.row), sevens.contains(cell.row)])
            XCTAssertEqual(cell.output, "echo: Capital of C\(cell.row)?", "the stored output, graded again")
        }
        // 4. Everything graded: a fourth run asks nothing and grades nothing again.
        let fourth = try await r.run(session: s)
        XCTAssertEqual(server.requests.count, 40)
        XCTAssertEqual(fourth.regraded, 0)
        XCTAssertEqual(fourth.totals[""]?.passed, sevens.count)
    }

    func testTheGraderCommand() throws {
        let s = Session(provider: .openAI, model: "m")
        XCTAssertTrue(try s.apply(.grader(nil)).contains("the session's own model (m, openai)"))
        XCTAssertTrue(
            try s.apply(CommandParser.parse(":grader claude-sonnet-4-5").sessionCommand()).contains("anthropic"))
        XCTAssertEqual(s.graderModel, "claude-sonnet-4-5")
        _ = try s.apply(.grader("gpt-4o provider=openai-responses"))
        XCTAssertEqual(s.graderProvider, .openAIResponses)
        XCTAssertThrowsError(try s.apply(.grader("gpt-4o provider=nope")))
        XCTAssertThrowsError(try s.apply(.grader("a b")))
        _ = try s.apply(.grader("off"))
        XCTAssertNil(s.graderModel)
        XCTAssertThrowsError(try Assertion.parse("llm-rubric"), "a rubric is needed")
        XCTAssertNoThrow(try Assertion.parse("answer-relevance"))
    }
}

extension Input {
    func sessionCommand() throws -> Command {
        guard case .command(let c) = self else { throw SessionError("not a session command") }
        return c
    }
}
