import Foundation
import PromptSession
import QueryCore
import XCTest

final class CommandParserTests: XCTestCase {
    func parse(_ s: String) throws -> Input { try CommandParser.parse(s) }

    /// The help table is text: each entry must have read as one command, with a summary, whose
    /// example parses as that command.
    func testHelpTableReadsEveryEntry() throws {
        let help = CommandParser.help
        // A command may have several forms (:batch FILE, :batch FILE remote, :batch resume), one
        // entry each, side by side; `:help batch` shows them all.
        let runs = help.map(\.name).reduce(into: [String]()) { if $0.last != $1 { $0.append($1) } }
        XCTAssertEqual(runs.count, Set(runs).count, "the forms of one command are side by side")
        XCTAssertEqual(help.filter { $0.name == "batch" }.count, 3)
        XCTAssertEqual(Session.helpText("batch").components(separatedBy: "example: ").count, 4)
        XCTAssertEqual(help.first?.name, "help")
        XCTAssertEqual(help.last?.usage, ":quit  (or :exit, Ctrl-D)")
        for h in help {
            XCTAssertTrue(h.usage.hasPrefix(":" + h.name), h.usage)
            XCTAssertFalse(h.summary.isEmpty, h.name)
            XCTAssertFalse(h.summary.contains("e.g."), h.name)
            XCTAssertTrue(h.example.hasPrefix(":" + h.name), "\(h.name): \(h.example)")
            XCTAssertNoThrow(try parse(h.example), h.example)
        }
    }

    func testRemoteBatchForms() throws {
        XCTAssertEqual(
            try parse(":batch rows.csv remote poll=2.5 out=r.jsonl model=a,b -- Hi {{x}}"),
            .app(
                .batch(
                    BatchCommand(
                        path: "rows.csv", out: "r.jsonl", axes: [CompareAxis(key: "model", values: ["a", "b"])],
                        template: "Hi {{x}}", remote: true, poll: 2.5))))
        XCTAssertEqual(try parse(":batch resume batch_abc"), .app(.batchResume("batch_abc")))
        XCTAssertEqual(try parse(":batch cancel batch_abc"), .app(.batchCancel("batch_abc")))
        XCTAssertEqual(try parse(":batches"), .app(.batches))
        for (line, message) in [
            (":batch resume", ":batch resume takes one batch id"),
            (":batch cancel a b", ":batch cancel takes one batch id"),
            (":batch rows.csv remote concurrency=2", "concurrency is for a batch sent from here"),
            (":batch rows.csv poll=2", "poll goes with remote"),
            (":batch rows.csv remote poll=0", "poll takes the seconds"),
            (":batch rows.csv later", ":batch takes one file"),
            (":batches all", ":batches takes no arguments"),
        ] {
            XCTAssertThrowsError(try parse(line), line) { XCTAssertTrue("\($0)".contains(message), "\(line): \($0)") }
        }
    }

    func testEveryCommand() throws {
        XCTAssertEqual(try parse("hello there"), .turn("hello there"))
        XCTAssertEqual(try parse("   "), .empty)
        XCTAssertEqual(try parse("::set x"), .turn(":set x"))
        XCTAssertEqual(try parse(":help"), .command(.help(nil)))
        XCTAssertEqual(try parse(":help :set"), .command(.help("set")))
        XCTAssertEqual(try parse(":system"), .command(.showSystem))
        XCTAssertEqual(try parse(":system  Be terse. "), .command(.setSystem("Be terse.")))
        XCTAssertEqual(try parse(":system @p.txt"), .command(.loadSystem(path: "p.txt")))
        XCTAssertEqual(try parse(":system off"), .command(.clearSystem))
        XCTAssertEqual(try parse(":set"), .command(.showOptions))
        XCTAssertEqual(try parse(":set temperature 0.2"), .command(.set(key: "temperature", value: "0.2")))
        XCTAssertEqual(try parse(":set stop=[\"a\", \"b\"]"), .command(.set(key: "stop", value: "[\"a\", \"b\"]")))
        XCTAssertEqual(try parse(":unset temperature"), .command(.unset(key: "temperature")))
        XCTAssertEqual(try parse(":model"), .command(.showModel))
        XCTAssertEqual(try parse(":model gpt-4o"), .command(.setModel("gpt-4o")))
        XCTAssertEqual(try parse(":func"), .command(.showFunction))
        XCTAssertEqual(try parse(":func off"), .command(.functionOff))
        XCTAssertEqual(try parse(":func a.yaml"), .command(.loadFunction(path: "a.yaml")))
        XCTAssertEqual(try parse(":mode"), .command(.mode(nil)))
        XCTAssertEqual(try parse(":mode single"), .command(.mode(.single)))
        XCTAssertEqual(try parse(":reset"), .command(.reset))
        XCTAssertEqual(try parse(":stats"), .command(.stats))
        XCTAssertEqual(try parse(":provider anthropic"), .command(.provider("anthropic")))
        XCTAssertEqual(try parse(":set-editor vi"), .app(.editor("vi")))
        XCTAssertEqual(try parse(":save"), .app(.save(path: nil, force: false)))
        XCTAssertEqual(try parse(":save a.json"), .app(.save(path: "a.json", force: false)))
        XCTAssertEqual(try parse(":save! a.json"), .app(.save(path: "a.json", force: true)))
        XCTAssertEqual(try parse(":load a.json"), .app(.load(path: "a.json")))
        XCTAssertEqual(try parse(":export a.md"), .app(.export(path: "a.md", force: false)))
        XCTAssertEqual(try parse(":export! a.md"), .app(.export(path: "a.md", force: true)))
        XCTAssertEqual(try parse(":sessions"), .app(.sessions))
        XCTAssertEqual(try parse(":retry"), .app(.retry))
        XCTAssertEqual(
            try parse(":compare temperature=0,0.7 model=a,b"),
            .app(
                .compare(
                    axes: [
                        CompareAxis(key: "temperature", values: ["0", "0.7"]),
                        CompareAxis(key: "model", values: ["a", "b"]),
                    ], prompt: nil)))
        XCTAssertEqual(
            try parse(":compare top_p=1 -- a prompt -- with dashes"),
            .app(.compare(axes: [CompareAxis(key: "top_p", values: ["1"])], prompt: "a prompt -- with dashes")))
        XCTAssertEqual(try parse(":request"), .app(.request(.curl)))
        XCTAssertEqual(try parse(":request swift"), .app(.request(.swift)))
        XCTAssertEqual(try parse(":quit"), .app(.quit))
        XCTAssertEqual(try parse(":exit"), .app(.quit))
    }

    func testErrorsSayWhatToDo() {
        let cases: [(String, String)] = [
            (":sett x", "unknown command :sett"), (":stat", "did you mean"), (":", "lone ':'"),
            (":set temperature", "needs a value"),
            (":unset", "one key"), (":mode fast", "chat or single"), (":stats now", "no arguments"),
            (":system @", "file name"),
            (":set-editor nano", "emacs or vi"), (":save!", "needs a path"), (":load", "needs a path"),
            (":export", "needs a path"),
            (":sessions x", "no arguments"), (":compare", "at least one"), (":compare temperature", "key=v1,v2"),
            (":compare temperature=0,", "separated by commas"), (":request xml", "curl, json or swift"),
            (":retry now", "no arguments"),
        ]
        for (line, expected) in cases {
            XCTAssertThrowsError(try parse(line), line) { e in
                XCTAssert("\(e)".contains(expected), "\(line): \(e)")
            }
        }
    }
}

final class OptionValueTests: XCTestCase {
    func testTyping() throws {
        XCTAssertEqual(try OptionValues.parse("0.5"), .double(0.5))
        XCTAssertEqual(try OptionValues.parse("42"), .integer(42))
        XCTAssertEqual(try OptionValues.parse("-3"), .integer(-3))
        XCTAssertEqual(try OptionValues.parse("1e3"), .double(1000))
        XCTAssertEqual(try OptionValues.parse("true"), .bool(true))
        XCTAssertEqual(try OptionValues.parse("null"), .null)
        XCTAssertEqual(try OptionValues.parse("[\"a\",1]"), ["a", 1])
        XCTAssertEqual(try OptionValues.parse("{\"type\":\"json_object\"}"), ["type": "json_object"])
        XCTAssertEqual(try OptionValues.parse("\"42\""), .string("42"))
        XCTAssertEqual(try OptionValues.parse("hello world"), .string("hello world"))
        XCTAssertEqual(try OptionValues.parse("nan"), .string("nan"))
        XCTAssertEqual(try OptionValues.parse("inf"), .string("inf"))
        XCTAssertThrowsError(try OptionValues.parse("[1,"))
        XCTAssertThrowsError(try OptionValues.parse("{bad}"))
    }

    func testKnownKeysAreChecked() throws {
        let bad: [(String, JSONValue)] = [
            ("temperature", 2.5), ("temperature", "hot"), ("top_p", 1.1), ("max_tokens", 0), ("max_tokens", 1.5),
            ("max_completion_tokens", -1), ("presence_penalty", 3), ("frequency_penalty", -2.1), ("seed", 1.5),
            ("stop", ["a", "b", "c", "d", "e"]), ("stop", 5), ("n", 0), ("response_format", "json"),
            ("response_format", ["type": "yaml"]), ("reasoning_effort", "max"), ("logprobs", "yes"),
            ("top_logprobs", 21), ("parallel_tool_calls", 1), ("model", "x"), ("stream", true),
        ]
        for (k, v) in bad { XCTAssertThrowsError(try OptionValues.check(k, v), "\(k)=\(v)") }
        let good: [(String, JSONValue)] = [
            ("temperature", 0), ("temperature", 2), ("top_p", 0.9), ("max_tokens", 64), ("presence_penalty", -2),
            ("seed", 7),
            ("stop", "END"), ("stop", ["a", "b"]), ("n", 2), ("response_format", ["type": "json_object"]),
            ("reasoning_effort", "low"),
            ("logprobs", true), ("top_logprobs", 20), ("parallel_tool_calls", false), ("temperature", nil),
        ]
        for (k, v) in good { XCTAssertNil(try OptionValues.check(k, v), "\(k)=\(v)") }
        XCTAssertEqual(
            try OptionValues.check("mirostat", 2), "mirostat is not a key promptline knows; it is sent unchecked")
    }
}

final class SessionTests: XCTestCase {
    func testSetKeepsOldValueOnError() throws {
        let s = Session(provider: .openAI, model: "m")
        _ = try s.apply(.set(key: "temperature", value: "0.3"))
        XCTAssertThrowsError(try s.apply(.set(key: "temperature", value: "7")))
        XCTAssertEqual(s.options["temperature"], 0.3)
        let m = try s.apply(.set(key: "mirostat", value: "2"))
        XCTAssert(m.contains("unchecked"))
        let shown = try s.apply(.showOptions)
        XCTAssert(shown.contains("temperature") && shown.contains("0.3") && shown.contains("mirostat"), shown)
        _ = try s.apply(.unset(key: "mirostat"))
        XCTAssertNil(s.options["mirostat"])
        XCTAssertThrowsError(try s.apply(.unset(key: "mirostat")))
    }

    func testFunctionLoadingKeepsPreviousOnBadFile() throws {
        let dir = NSTemporaryDirectory() + "pl-sess-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "name: f\nparameters: {type: object}\n".write(toFile: dir + "/ok.yaml", atomically: true, encoding: .utf8)
        try "{\"name\": \"g\", \"parameters\": {\"type\": \"array\"}}".write(
            toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        let s = Session(provider: .openAI, model: "m")
        _ = try s.apply(.loadFunction(path: dir + "/ok.yaml"))
        XCTAssertEqual(s.functionSpec?.name, "f")
        XCTAssertThrowsError(try s.apply(.loadFunction(path: dir + "/bad.json"))) { e in
            XCTAssert("\(e)".contains("parameters.type") && "\(e)".contains("(f) stays"), "\(e)")
        }
        XCTAssertThrowsError(try s.apply(.loadFunction(path: dir + "/none.json")))
        XCTAssertEqual(s.functionSpec?.name, "f")
        _ = try s.apply(.functionOff)
        XCTAssertNil(s.functionSpec)
    }

    func testSystemFromFileAndModes() throws {
        let path = NSTemporaryDirectory() + "pl-sys-\(UUID()).txt"
        try "You are terse.\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let s = Session(provider: .openAI, model: "m")
        _ = try s.apply(.loadSystem(path: path))
        XCTAssertEqual(s.system, "You are terse.")
        XCTAssertThrowsError(try s.apply(.loadSystem(path: path + ".missing")))
        XCTAssertEqual(s.system, "You are terse.")
        let r = QueryResult(
            output: .text("A1"), requestTime: 1, inputTokens: 3, outputTokens: 2, timeToFirstToken: 0.1, retries: 0,
            info: QueryInfo())
        s.recordSuccess(prompt: "Q1", result: r)
        XCTAssertEqual(s.messages(for: "Q2"), [.system("You are terse."), .user("Q1"), .assistant("A1"), .user("Q2")])
        s.recordFailure(retries: 1, latency: 0.5, cancelled: true)
        XCTAssertEqual(s.messages(for: "Q2").count, 4, "a cancelled turn is not in the history")
        _ = try s.apply(.mode(.single))
        XCTAssertEqual(s.messages(for: "Q2"), [.system("You are terse."), .user("Q2")])
        _ = try s.apply(.mode(.chat))
        _ = try s.apply(.reset)
        _ = try s.apply(.clearSystem)
        XCTAssertEqual(s.messages(for: "Q3"), [.user("Q3")])
    }

    func testCompareVariantsAreTheCartesianProductTypedAndChecked() throws {
        let s = Session(provider: .openAI, model: "m")
        _ = try s.apply(.set(key: "top_p", value: "0.5"))
        let v = try s.variants([
            CompareAxis(key: "temperature", values: ["0", "1.2"]), CompareAxis(key: "model", values: ["a", "b"]),
        ])
        XCTAssertEqual(
            v.map(\.label),
            ["temperature=0 model=a", "temperature=0 model=b", "temperature=1.2 model=a", "temperature=1.2 model=b"])
        XCTAssertEqual(v[3].options["temperature"], 1.2)
        XCTAssertEqual(v[3].options["top_p"], 0.5)
        XCTAssertEqual(v[3].model, "b")
        XCTAssertThrowsError(try s.variants([CompareAxis(key: "temperature", values: ["0", "9"])]))
        XCTAssertThrowsError(
            try s.variants([
                CompareAxis(key: "a", values: ["1", "2", "3", "4", "5"]),
                CompareAxis(key: "b", values: ["1", "2", "3", "4"]),
            ]))
        // Re-running the last prompt leaves its own exchange out.
        s.recordSuccess(
            prompt: "Q",
            result: QueryResult(
                output: .text("A"), requestTime: 1, inputTokens: nil, outputTokens: nil, timeToFirstToken: nil,
                retries: 0, info: QueryInfo()))
        XCTAssertEqual(s.messages(rerunning: "Q"), [.user("Q")])
        XCTAssertEqual(s.messages(rerunning: "other"), [.user("Q"), .assistant("A"), .user("other")])
    }

    func testFunctionCallHistoryStaysValid() {
        let s = Session(provider: .openAI, model: "m")
        let call = FunctionCall(id: nil, name: "f", arguments: ["a": 1], rawArguments: "{\"a\":1}")
        s.recordSuccess(
            prompt: "Q",
            result: QueryResult(
                output: .functionCall(call), requestTime: 1, inputTokens: nil, outputTokens: nil, timeToFirstToken: nil,
                retries: 0, info: QueryInfo()))
        let m = s.messages(for: "next")
        XCTAssertEqual(m.map(\.role), [.user, .assistant, .tool, .user])
        XCTAssertEqual(m[1].functionCall?.id, m[2].toolCallID)
    }

    func testStatsSumsAndUnknownUsage() {
        var st = SessionStats()
        st.record(
            TurnMetrics(.init(requestTime: 1.0, timeToFirstToken: 0.2, inputTokens: 10, outputTokens: 5, retries: 1)))
        st.record(
            TurnMetrics(.init(requestTime: 3.0, timeToFirstToken: 0.4, inputTokens: 20, outputTokens: 7, retries: 0)))
        st.record(
            TurnMetrics(
                .init(requestTime: 0.5, timeToFirstToken: nil, inputTokens: nil, outputTokens: nil, retries: 2),
                failed: true))
        XCTAssertEqual(st.requests, 6)
        XCTAssertEqual(st.retries, 3)
        XCTAssertEqual(st.errors, 1)
        XCTAssertEqual(st.inputTokens.sum, 30)
        XCTAssertEqual(st.outputTokens.sum, 12)
        let r = st.report()
        XCTAssert(r.contains("tokens in 30   out 12   total 42"), r)
        XCTAssert(r.contains("p50 1.00 s") && r.contains("p95 3.00 s") && r.contains("max 3.00 s"), r)
        st.record(
            TurnMetrics(.init(requestTime: 1, timeToFirstToken: nil, inputTokens: nil, outputTokens: nil, retries: 0)))
        let r2 = st.report()
        XCTAssert(r2.contains("30 + unknown (1 turn without usage)"), r2)
        XCTAssert(r2.contains("tokens in unknown   out unknown"), r2)
    }
}

final class ForcedCallHistoryTests: XCTestCase {
    func call(via: ForcedCallStrategy) -> QueryResult {
        var info = QueryInfo()
        info.forcedCall = via
        let c = FunctionCall(
            id: via == .jsonSchema ? nil : "call_9", name: "get_weather", arguments: ["city": "Oslo", "days": 2],
            rawArguments: #"{"city":"Oslo","days":2}"#)
        return QueryResult(
            output: .functionCall(c), requestTime: 0.1, inputTokens: 5, outputTokens: 7, timeToFirstToken: nil,
            retries: 0, info: info)
    }

    func testACallForcedThroughJSONSchemaStaysTheAssistantsJSONTextInTheConversation() throws {
        let s = Session(provider: .openAI, model: "m")
        s.recordSuccess(prompt: "Oslo?", result: call(via: .jsonSchema))
        XCTAssertEqual(s.history, [.user("Oslo?"), .assistant(#"{"city":"Oslo","days":2}"#)])
        let t = Session(provider: .openAI, model: "m")
        t.recordSuccess(prompt: "Oslo?", result: call(via: .tools))
        XCTAssertEqual(
            t.history.map(\.role), [.user, .assistant, .tool], "a tool call is answered before the next turn")
    }

    func testTheTranscriptRestoresEachCallAsItWasSent() throws {
        let s = Session(provider: .openAI, model: "m")
        var tr = Transcript(provider: "openai", baseURL: "http://127.0.0.1:1/v1", model: "m")
        tr.noteSettings(s)
        for (prompt, via) in [("a", ForcedCallStrategy.jsonSchema), ("b", .tools)] {
            let r = call(via: via)
            s.recordSuccess(prompt: prompt, result: r)
            tr.noteTurn(prompt: prompt, request: [:], outcome: .success(r))
        }
        let back = try Transcript.parse(tr.journalBytes())
        let restored = Session(provider: .openAI, model: "m")
        try back.restore(into: restored)
        XCTAssertEqual(restored.history, s.history)
    }
}
