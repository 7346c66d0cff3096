import Foundation
import PromptSession
import QueryCore
import TestHTTPServer
import XCTest

/// The tool round as the REPL drives it, through the session and the query core against the
/// in-process server: parallel calls answered out of order, ids checked before anything is
/// sent, unknown tools and arguments that are not JSON, mocks in every form, a round ended
/// early, and a round resumed from its transcript. Every Chat Completions body is recorded for
/// the schema check in scripts/test.
final class ToolRoundTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "pl-tools-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try write(
            "tools.yaml",
            """
            - name: get_weather
              description: Weather for a city
              json_schema: {type: object, properties: {city: {type: string}}, required: [city]}
            - type: function
              function:
                name: get_time
                parameters: {type: object, properties: {tz: {type: string}}, required: [tz]}
            """)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
    }

    func startServer() async throws -> TestHTTPServer {
        let s = try await TestHTTPServer.start()
        addTeardownBlock { s.stop() }
        return s
    }

    func makeSession(_ provider: Provider = .openAI) throws -> Session {
        let s = Session(provider: provider, model: provider == .openAI ? "gpt-test" : "claude-test")
        _ = try s.apply(.loadTools(path: dir + "/tools.yaml"))
        return s
    }

    func client(_ server: TestHTTPServer, _ provider: Provider = .openAI) -> QueryClient {
        QueryClient(
            provider: provider, baseURL: server.baseURL + (provider == .openAI ? "/v1" : ""), apiKey: "sk-test-key",
            defaultModel: "gpt-test", retryPolicy: .none)
    }

    /// Sends one request of a turn and records it, as the REPL does.
    @discardableResult
    func send(
        _ s: Session, _ c: QueryClient, prompt: String = "", results: [ToolResult] = [], transcript: inout Transcript
    ) async throws -> (TranscriptEvent.Turn, [SchemaViolation]) {
        let request = try s.request(
            prompt: prompt, results: results, continuing: prompt.isEmpty, client: c, stream: false)
        let body = try c.requestBody(for: request)
        let result = try await c.run(request) { _ in }
        let turn = s.identified(TranscriptEvent.Turn(prompt: prompt, toolResults: results, outcome: .success(result)))
        let violations = s.record(turn)
        transcript.noteTurn(turn, requestBody: body)
        return (turn, violations)
    }

    static func reply(_ calls: [(id: String?, name: String, args: String)], text: String? = nil) -> TestHTTPServer.Reply
    {
        let list: [JSONValue] = calls.map { c in
            var o: JSONObject = [
                "type": "function", "function": ["name": .string(c.name), "arguments": .string(c.args)],
            ]
            if let id = c.id { o["id"] = .string(id) }
            return .object(o)
        }
        let message: JSONValue = [
            "role": "assistant", "content": text.map { .string($0) } ?? .null, "tool_calls": .array(list),
        ]
        return .json(
            200,
            [
                "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-test",
                "choices": [["index": 0, "message": message, "finish_reason": "tool_calls"]],
                "usage": ["prompt_tokens": 20, "completion_tokens": 10],
            ])
    }

    static func text(_ t: String) -> TestHTTPServer.Reply {
        .json(
            200,
            [
                "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-test",
                "choices": [
                    ["index": 0, "message": ["role": "assistant", "content": .string(t)], "finish_reason": "stop"]
                ],
                "usage": ["prompt_tokens": 30, "completion_tokens": 5],
            ])
    }

    func testParallelCallsAnsweredOutOfOrderGoBackWithTheirIDs() async throws {
        let server = try await startServer()
        server.enqueue(
            Self.reply([
                ("call_a", "get_forecast", #"{"city":"Oslo"}"#), ("call_b", "get_time", #"{"tz": Europe/Oslo}"#),
                ("call_c", "get_weather", #"{"city": 3}"#),
            ]),
            Self.text("Done."))
        let s = try makeSession()
        let c = client(server)
        var t = Transcript(provider: "openai", baseURL: server.baseURL, model: "gpt-test")
        let (_, violations) = try await send(s, c, prompt: "Forecast, time and weather for Oslo?", transcript: &t)
        XCTAssertEqual(
            violations.map(\.description),
            [
                "get_forecast#call_a: no tool of that name is loaded", "get_time#call_b: the arguments are not JSON",
                "get_weather#call_c $.city: expected string, got integer 3",
            ])
        XCTAssertEqual(s.pendingCalls.compactMap(\.id), ["call_a", "call_b", "call_c"])
        // Answered in another order than called: each result keeps its call's id.
        let results = [
            ToolResult(callID: "call_c", name: "get_weather", content: "rain", source: .typed),
            ToolResult(callID: "call_a", name: "get_forecast", content: #"{"days": []}"#, source: .typed),
            ToolResult(callID: "call_b", name: "get_time", content: "10:00", source: .file),
        ]
        try await send(s, c, results: results, transcript: &t)
        XCTAssertEqual(s.pendingCalls, [])
        let sent = try XCTUnwrap(server.requests.last?.json?["messages"]?.arrayValue)
        XCTAssertEqual(sent.suffix(3).map { $0["tool_call_id"] }, ["call_c", "call_a", "call_b"])
        XCTAssertEqual(sent.suffix(3).map { $0["content"] }, ["rain", #"{"days": []}"#, "10:00"])
        XCTAssertEqual(server.requests.last?.json?["tool_choice"], "auto")
        XCTAssertEqual(s.stats.turnCount, 1, "a prompt and its round are one turn")
        XCTAssertEqual(s.stats.requests, 2)
        XCTAssertTrue(s.stats.report().contains("last turn (2 requests: a tool round)"), s.stats.report())
        XCTAssertTrue(s.stats.report().contains("tokens in 50   out 15"), s.stats.report())
        SchemaRecorder.record(server.requests, name: "round-parallel")
    }

    func testAWrongCallIDIsNeverSent() async throws {
        let server = try await startServer()
        server.enqueue(
            Self.reply([("call_a", "get_weather", #"{"city":"Oslo"}"#), ("call_b", "get_time", #"{"tz":"CET"}"#)]))
        let s = try makeSession()
        let c = client(server)
        var t = Transcript(provider: "openai", baseURL: server.baseURL, model: "gpt-test")
        try await send(s, c, prompt: "Weather and time?", transcript: &t)
        let a = ToolResult(callID: "call_a", name: "get_weather", content: "sun", source: .typed)
        let b = ToolResult(callID: "call_b", name: "get_time", content: "10:00", source: .typed)
        let wrong = ToolResult(callID: "call_z", name: "get_time", content: "10:00", source: .typed)
        for bad in [[a, wrong], [a], [a, b, b]] {
            XCTAssertThrowsError(try s.request(prompt: "", results: bad, continuing: true, client: c, stream: false)) {
                XCTAssertTrue("\($0)".contains("call_"), "\($0)")
            }
        }
        XCTAssertEqual(server.requests.count, 1, "nothing was sent")
        XCTAssertNoThrow(try s.request(prompt: "", results: [b, a], continuing: true, client: c, stream: false))
    }

    /// Ctrl-C at a result prompt ends the round: the next prompt answers the open calls with
    /// error results first, so the conversation stays valid (OpenAI and Anthropic alike).
    func testAnEndedRoundIsClosedByTheNextPrompt() async throws {
        for provider in [Provider.openAI, .anthropic] {
            let server = try await startServer()
            if provider == .openAI {
                server.enqueue(Self.reply([("call_a", "get_weather", #"{"city":"Oslo"}"#)]), Self.text("Fine."))
            } else {
                server.enqueue(
                    .json(
                        200,
                        [
                            "id": "m", "type": "message", "role": "assistant", "model": "claude-test",
                            "content": [
                                ["type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": ["city": "Oslo"]]
                            ],
                            "stop_reason": "tool_use", "usage": ["input_tokens": 5, "output_tokens": 5],
                        ]),
                    .json(
                        200,
                        [
                            "id": "m", "type": "message", "role": "assistant", "model": "claude-test",
                            "content": [["type": "text", "text": "Fine."]], "stop_reason": "end_turn",
                            "usage": ["input_tokens": 5, "output_tokens": 5],
                        ]))
            }
            let s = try makeSession(provider)
            let c = client(server, provider)
            var t = Transcript(provider: provider.rawValue, baseURL: server.baseURL, model: s.model)
            try await send(s, c, prompt: "Weather?", transcript: &t)
            let id = try XCTUnwrap(s.pendingCalls.first?.id)
            // The user ended the round; the next prompt carries the closing results.
            let closing = s.closingResults()
            XCTAssertEqual(closing.map(\.callID), [id])
            XCTAssertEqual(closing.first?.isError, true)
            try await send(s, c, prompt: "Never mind. Say fine.", results: closing, transcript: &t)
            XCTAssertEqual(s.pendingCalls, [])
            let sent = try XCTUnwrap(server.requests.last?.json?["messages"]?.arrayValue)
            if provider == .openAI {
                XCTAssertEqual(sent.suffix(2).map { $0["role"] }, ["tool", "user"])
                XCTAssertEqual(sent.suffix(2).first?["tool_call_id"], .string(id))
                SchemaRecorder.record(server.requests, name: "round-ended")
            } else {
                let last = try XCTUnwrap(sent.last?["content"]?.arrayValue)
                XCTAssertEqual(last.map { $0["type"] }, ["tool_result", "text"])
                XCTAssertEqual(last.first?["is_error"], true)
            }
            XCTAssertEqual(s.stats.turnCount, 2)
        }
    }

    func testMocksInEveryForm() throws {
        let s = try makeSession()
        let weather = FunctionCall(id: "1", name: "get_weather", arguments: ["city": "Oslo"], rawArguments: "")
        let time = FunctionCall(id: "2", name: "get_time", arguments: ["tz": "CET"], rawArguments: "")
        // A map: a template for one tool, a list (used in order, then asked) for the other.
        try write(
            "mock.yaml",
            """
            get_weather: '{"city": "{{args.city}}", "sky": "clear", "asked": "{{args.country}}"}'
            get_time: ["09:00", {"time": "10:00", "tz": "{{args.tz}}"}]
            """)
        _ = try s.apply(.loadMock(path: dir + "/mock.yaml"))
        let w = try XCTUnwrap(s.mockAnswer(weather))
        XCTAssertEqual(w.content, #"{"city": "Oslo", "sky": "clear", "asked": ""}"#)
        XCTAssertEqual(w.missing, ["args.country"])
        XCTAssertEqual(s.mockAnswer(time)?.content, "09:00")
        let first = ToolResult(callID: "2", name: "get_time", content: "09:00", source: .mock)
        XCTAssertEqual(s.mockAnswer(time, given: [first])?.content, #"{"time":"10:00","tz":"CET"}"#)
        XCTAssertNil(s.mockAnswer(time, given: [first, first]), "a used-up list is asked for")
        // A list at the top: any tool, in order.
        try write("list.json", #"["first", {"n": 2}]"#)
        _ = try s.apply(.loadMock(path: dir + "/list.json"))
        XCTAssertEqual(s.mockAnswer(time)?.content, "first")
        let used = ToolResult(callID: "2", name: "get_time", content: "first", source: .mock)
        XCTAssertEqual(s.mockAnswer(weather, given: [used])?.content, #"{"n":2}"#)
        // Bad files: one clear line each, the mock as it was.
        try write("bad.json", #"{"get_weather": "#)
        XCTAssertThrowsError(try s.apply(.loadMock(path: dir + "/bad.json"))) {
            XCTAssertTrue("\($0)".hasPrefix("mock \(dir)/bad.json: not valid JSON"), "\($0)")
        }
        try write("empty.json", "[]")
        XCTAssertThrowsError(try s.apply(.loadMock(path: dir + "/empty.json")))
        XCTAssertEqual(s.toolbox.mock?.source, dir + "/list.json")
    }

    /// A transcript that stops in a round restores its calls, results and mock uses: the
    /// resumed session goes on where it stopped, with the same ids.
    func testAResumedRoundContinues() async throws {
        let server = try await startServer()
        server.enqueue(
            Self.reply([(nil, "get_time", #"{"tz":"CET"}"#)]), Self.reply([(nil, "get_time", #"{"tz":"UTC"}"#)]),
            Self.text("It is 10:00 in CET and 09:00 in UTC."))
        try write("mock.json", #"{"get_time": ["10:00", "09:00"]}"#)
        let s = try makeSession()
        _ = try s.apply(.loadMock(path: dir + "/mock.json"))
        let c = client(server)
        var t = Transcript(provider: "openai", baseURL: server.baseURL, model: "gpt-test")
        t.noteSettings(s)
        try await send(s, c, prompt: "Time in CET and UTC?", transcript: &t)
        let call1 = try XCTUnwrap(s.pendingCalls.first)
        XCTAssertEqual(call1.id, "call_1_0", "a call without an id gets one")
        let answer = try XCTUnwrap(s.mockAnswer(call1))
        let r1 = ToolResult(callID: "call_1_0", name: "get_time", content: answer.content, source: .mock)
        try await send(s, c, results: [r1], transcript: &t)
        XCTAssertEqual(s.pendingCalls.map(\.id), ["call_2_0"])
        // The app stops here; the transcript is saved and restored elsewhere.
        let path = dir + "/t.jsonl"
        try TranscriptStore.save(t, to: path, force: true)
        let loaded = try TranscriptStore.load(path)
        XCTAssertEqual(loaded.events, t.events)
        let resumed = Session(provider: .openAI, model: "gpt-test")
        try loaded.restore(into: resumed)
        XCTAssertEqual(resumed.pendingCalls, s.pendingCalls)
        XCTAssertEqual(resumed.toolbox, s.toolbox)
        let call2 = resumed.pendingCalls[0]
        XCTAssertEqual(resumed.mockAnswer(call2)?.content, "09:00", "the mock goes on where it stopped")
        let r2 = ToolResult(callID: "call_2_0", name: "get_time", content: "09:00", source: .mock)
        var t2 = loaded
        try await send(resumed, c, results: [r2], transcript: &t2)
        XCTAssertEqual(resumed.pendingCalls, [])
        let sent = try XCTUnwrap(server.requests.last?.json?["messages"]?.arrayValue)
        XCTAssertEqual(sent.compactMap { $0["tool_call_id"]?.stringValue }, ["call_1_0", "call_2_0"])
        XCTAssertEqual(resumed.history.count, 6)
        XCTAssertEqual(resumed.stats.turnCount, 1)
        SchemaRecorder.record(server.requests, name: "round-resumed")
    }

    /// Single mode keeps no conversation, but a turn's round carries the turn so far.
    func testSingleModeCarriesTheRound() async throws {
        let server = try await startServer()
        server.enqueue(
            Self.reply([("call_a", "get_weather", #"{"city":"Oslo"}"#)]), Self.text("Sunny."), Self.text("Hi."))
        let s = try makeSession()
        _ = try s.apply(.mode(.single))
        let c = client(server)
        var t = Transcript(provider: "openai", baseURL: server.baseURL, model: "gpt-test")
        try await send(s, c, prompt: "Weather?", transcript: &t)
        try await send(
            s, c, results: [ToolResult(callID: "call_a", name: "get_weather", content: "sun", source: .typed)],
            transcript: &t)
        XCTAssertEqual(
            server.requests.last?.json?["messages"]?.arrayValue?.map { $0["role"] }, ["user", "assistant", "tool"])
        try await send(s, c, prompt: "Hello", transcript: &t)
        XCTAssertEqual(server.requests.last?.json?["messages"]?.arrayValue?.map { $0["role"] }, ["user"])
        XCTAssertEqual(s.history, [], "single mode keeps no conversation")
        SchemaRecorder.record(server.requests, name: "round-single")
    }

    func testToolCommands() throws {
        let s = try makeSession()
        XCTAssertEqual(s.toolbox.tools.map(\.name), ["get_weather", "get_time"])
        try write("one.json", #"{"name": "get_time", "description": "Now", "input_schema": {"type": "object"}}"#)
        XCTAssertTrue(try s.apply(.loadTools(path: dir + "/one.json")).contains("tool get_time replaced"))
        XCTAssertEqual(s.toolbox.tool(named: "get_time")?.description, "Now")
        XCTAssertThrowsError(try s.apply(.choice("nope"))) {
            XCTAssertTrue("\($0)".contains("get_weather, get_time"), "\($0)")
        }
        _ = try s.apply(.choice("get_time"))
        XCTAssertEqual(s.toolbox.choice, .named("get_time"))
        XCTAssertTrue(try s.apply(.removeTool("get_time")).contains("choice back to auto"))
        try write(
            "dup.json",
            #"[{"name": "a", "parameters": {"type": "object"}}, {"name": "a", "parameters": {"type": "object"}}]"#)
        XCTAssertThrowsError(try s.apply(.loadTools(path: dir + "/dup.json"))) {
            XCTAssertTrue("\($0)".contains("[1] names a a second time"), "\($0)")
        }
        try write("badtool.yaml", "- name: x\n  parameters: {type: array}\n")
        XCTAssertThrowsError(try s.apply(.loadTools(path: dir + "/badtool.yaml"))) {
            XCTAssertTrue("\($0)".contains("parameters.type must be \"object\""), "\($0)")
        }
        XCTAssertEqual(s.toolbox.tools.map(\.name), ["get_weather"], "a bad file changes nothing")
        XCTAssertThrowsError(try s.apply(.set(key: "max_tool_rounds", value: "0")))
        _ = try s.apply(.set(key: "max_tool_rounds", value: "3"))
        XCTAssertEqual(s.toolbox.maxRounds, 3)
        XCTAssertNil(s.queryOptions["max_tool_rounds"], "a session setting, never sent")
        try write(
            "person.schema.json",
            #"{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}"#)
        _ = try s.apply(.loadSchema(path: dir + "/person.schema.json"))
        XCTAssertEqual(s.toolbox.schema?.name, "person")
        XCTAssertEqual(s.check(.text(#"{"name": 1}"#)).map(\.description), ["$.name: expected string, got integer 1"])
        XCTAssertEqual(s.check(.text("not json")).map(\.message), ["the reply is not JSON"])
        XCTAssertEqual(
            try CommandParser.parse(":tool rm get_time"), .command(.removeTool("get_time")))
        XCTAssertEqual(try CommandParser.parse(":tool off"), .command(.toolsOff))
        XCTAssertEqual(try CommandParser.parse(":choice"), .command(.choice(nil)))
        XCTAssertEqual(try CommandParser.parse(":mock off"), .command(.mockOff))
        XCTAssertEqual(try CommandParser.parse(":schema x.json"), .command(.loadSchema(path: "x.json")))
    }
}
