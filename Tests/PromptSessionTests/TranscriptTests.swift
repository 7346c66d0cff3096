import Foundation
import PromptSession
import QueryCore
import XCTest

final class TranscriptTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "pl-tr-\(UUID())"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    let spec = try! FunctionSpec(
        name: "grade", description: "g",
        parameters: ["type": "object", "properties": ["g": ["type": "string"]], "required": ["g"]])

    func result(_ output: QueryOutput, _ i: Int?, _ o: Int?) -> QueryResult {
        var info = QueryInfo()
        info.id = "resp-1"
        info.systemFingerprint = "fp"
        info.finishReason = "stop"
        return QueryResult(
            output: output, requestTime: 0.5, inputTokens: i, outputTokens: o, timeToFirstToken: 0.1, retries: 1,
            info: info)
    }

    /// A session with a system prompt, option changes, a function call, an error and a cancelled turn.
    func buildSession() throws -> (Session, Transcript, QueryClient) {
        let s = Session(provider: .openAI, model: "m1")
        let client = QueryClient(baseURL: "http://127.0.0.1:9/v1", apiKey: "sk-NEVER-IN-FILES", defaultModel: "m1")
        var t = Transcript(provider: "openai", baseURL: client.baseURL, model: "m1")
        func turn(_ prompt: String, _ outcome: Transcript.TurnOutcome) throws {
            let req = try client.makeRequest(
                messages: s.messages(for: prompt), functionSpec: s.functionSpec, options: s.queryOptions, stream: true)
            let body = try client.requestBody(for: req)
            s.record(t.noteTurn(prompt: prompt, request: body, outcome: outcome))
        }
        _ = try s.apply(.setSystem("Be terse."))
        _ = try s.apply(.set(key: "temperature", value: "0.2"))
        t.noteSettings(s)
        try turn("Q1", .success(result(.text("A1"), 10, 3)))
        _ = try s.apply(.set(key: "temperature", value: "0.9"))
        _ = try s.apply(.set(key: "top_k", value: "7"))
        s.functionSpec = spec
        t.noteSettings(s)
        try turn(
            "Q2",
            .success(
                result(
                    .functionCall(
                        FunctionCall(id: "call_7", name: "grade", arguments: ["g": "A"], rawArguments: #"{"g":"A"}"#)),
                    20, 5)))
        try turn("Q3", .failure(message: "HTTP 500: boom", retries: 2, latency: 1.5))
        try turn(
            "Q3b",
            .failure(
                message: "the model did not call grade", retries: 0, latency: 0.4, inputTokens: 31, outputTokens: 9))
        try turn("Q4", .cancelled(retries: 0, latency: 0.2))
        s.functionSpec = nil
        t.noteSettings(s)
        try turn("Q5", .success(result(.text("A5"), nil, nil)))
        return (s, t, client)
    }

    func testRoundTripRestoresStateAndTheNextRequest() throws {
        let (s, t, client) = try buildSession()
        let path = dir + "/t.jsonl"
        try TranscriptStore.save(t, to: path, force: false)
        let loaded = try TranscriptStore.load(path)
        XCTAssertEqual(loaded.events, t.events)
        XCTAssertEqual(loaded.id, t.id)
        XCTAssertEqual(loaded.created.timeIntervalSince1970, t.created.timeIntervalSince1970, accuracy: 0.001)
        let restored = Session(provider: .anthropic, model: "other")
        try loaded.restore(into: restored)
        XCTAssertEqual(restored.system, s.system)
        XCTAssertEqual(restored.options, s.options)
        XCTAssertEqual(restored.functionSpec, s.functionSpec)
        XCTAssertEqual(restored.mode, s.mode)
        XCTAssertEqual(restored.model, s.model)
        XCTAssertEqual(restored.provider, s.provider)
        XCTAssertEqual(restored.history, s.history)
        XCTAssertEqual(restored.stats, s.stats)
        // The next turn's request is the one the original session would have sent.
        let a = try client.requestBody(
            for: client.makeRequest(
                messages: s.messages(for: "Q6"), functionSpec: s.functionSpec, options: s.queryOptions, stream: true))
        let b = try client.requestBody(
            for: client.makeRequest(
                messages: restored.messages(for: "Q6"), functionSpec: restored.functionSpec,
                options: restored.queryOptions, stream: true))
        XCTAssertEqual(a.serialized(), b.serialized())
        // Settings changes mid-session are recorded, and the key is nowhere in the file.
        XCTAssertEqual(loaded.events.filter { if case .settings = $0 { return true } else { return false } }.count, 3)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertFalse(text.contains("sk-NEVER-IN-FILES"))
        XCTAssert(
            text.contains("\"cancelled\":true") && text.contains("HTTP 500: boom")
                && text.contains("\"system_fingerprint\":\"fp\""), text)
    }

    func testRetriedTurnReplacesItsExchangeOnRestore() throws {
        let s = Session(provider: .openAI, model: "m")
        var t = Transcript(provider: "openai", baseURL: "http://x/v1", model: "m")
        t.noteSettings(s)
        s.recordSuccess(prompt: "Q", result: result(.text("A1"), 1, 1))
        t.noteTurn(prompt: "Q", request: [:], outcome: .success(result(.text("A1"), 1, 1)))
        XCTAssertTrue(s.dropLastExchange())
        s.recordSuccess(prompt: "Q", result: result(.text("A2"), 1, 1))
        t.noteTurn(prompt: "Q", request: [:], outcome: .success(result(.text("A2"), 1, 1)), retry: true)
        let r = Session(provider: .openAI, model: "m")
        try t.restore(into: r)
        XCTAssertEqual(r.history, [.user("Q"), .assistant("A2")])
        XCTAssertEqual(r.history, s.history)
        XCTAssertEqual(r.stats.turnCount, 2, "both attempts count")
    }

    func testFilePermissionsAndAtomicWrite() throws {
        let (_, t, _) = try buildSession()
        let path = dir + "/sub/t.json"
        try TranscriptStore.save(t, to: path, force: false)
        let fileMode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        let dirMode = try FileManager.default.attributesOfItem(atPath: dir + "/sub")[.posixPermissions] as? Int
        XCTAssertEqual(fileMode, 0o600)
        XCTAssertEqual(dirMode, 0o700)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/sub").filter {
            $0.hasSuffix(".tmp")
        }
        XCTAssertEqual(leftovers, [])
    }

    func testSaveRefusesToOverwriteOtherFilesUnlessForced() throws {
        let (_, t, _) = try buildSession()
        try AtomicFile.makeDirectory(dir)
        let other = dir + "/notes.txt"
        try "precious".write(toFile: other, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TranscriptStore.save(t, to: other, force: false)) { e in
            XCTAssert("\(e)".contains(":save!"), "\(e)")
        }
        XCTAssertEqual(try String(contentsOfFile: other, encoding: .utf8), "precious")
        try TranscriptStore.save(t, to: other, force: true)
        // A transcript may be overwritten by a newer one without force.
        try TranscriptStore.save(t, to: other, force: false)
    }

    func testBadFilesGiveOneClearError() throws {
        let (_, t, _) = try buildSession()
        try AtomicFile.makeDirectory(dir)
        let v1 = try Self.fixture("transcript-v1-8707854.json")
        var wrongVersion = try JSONValue.parse(v1).objectValue!
        wrongVersion["version"] = 99
        var badEvent = try JSONValue.parse(v1).objectValue!
        badEvent["events"] = [["type": "turn", "at": "2026-11-28T21:25:14.000Z", "prompt": "x"]]
        var badSpec = try JSONValue.parse(v1).objectValue!
        badSpec["events"] = [
            [
                "type": "settings", "at": "2026-11-28T21:25:14.000Z", "provider": "openai", "model": "m",
                "mode": "chat", "options": [:],
                "function": ["name": "bad name", "parameters": ["type": "object"]],
            ]
        ]
        var journal = t.journalBytes()
        let lines = journal.split(separator: UInt8(ascii: "\n"))
        let badMiddle = Array(lines[0]) + Array("\n{oops\n".utf8) + Array(lines[1]) + [UInt8(ascii: "\n")]
        journal.removeLast(5)
        let cases: [(String, [UInt8], String)] = [
            ("truncated.json", Array(v1.prefix(v1.count / 2)), "not JSON"),
            ("empty.json", [], "empty"),
            ("text.json", Array("hello".utf8), "not JSON"),
            ("other.json", Array("{\"a\":1}".utf8), "not a promptline transcript"),
            ("version.json", Array(JSONValue.object(wrongVersion).serialized().utf8), "version 99 is not supported"),
            ("event.json", Array(JSONValue.object(badEvent).serialized().utf8), "events[0]"),
            ("spec.json", Array(JSONValue.object(badSpec).serialized().utf8), "events[0].function"),
            ("middle.jsonl", badMiddle, "line 2 is not JSON"),
        ]
        for (name, bytes, expected) in cases {
            let p = dir + "/" + name
            _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
            XCTAssertThrowsError(try TranscriptStore.load(p), name) { e in
                XCTAssert("\(e)".contains(p) && "\(e)".contains(expected), "\(name): \(e)")
            }
        }
        XCTAssertThrowsError(try TranscriptStore.load(dir + "/missing.json")) {
            XCTAssert("\($0)".contains("no such file"))
        }
        // A last line cut short by a crash is left out, with a note; the rest loads.
        let torn = try Transcript.parse(journal)
        XCTAssertEqual(torn.events, Array(t.events.dropLast()))
        XCTAssert(torn.needsRewrite && torn.loadNotes.first?.contains("cut short") == true, "\(torn.loadNotes)")
    }

    static func fixture(_ name: String) throws -> [UInt8] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        return [UInt8](try Data(contentsOf: root.appendingPathComponent("Fixtures/" + name)))
    }

    func testMarkdownExportAndListing() throws {
        let (s, t, _) = try buildSession()
        let md = TranscriptMarkdown.render(t, stats: s.stats)
        for needle in [
            "**System prompt**", "Be terse.", "## Turn 2", "**Function call** `grade`", "**Error**: HTTP 500: boom",
            "*cancelled*", "temperature=0.9", "| 6 | 11 | 5 | 2 | 1 | 61+? | 17+? |",
        ] {
            XCTAssert(md.contains(needle), needle + "\n" + md)
        }
        let store = TranscriptStore(directory: dir)
        try TranscriptStore.save(t, to: store.autosavePath(for: t), force: false)
        let recent = store.recent()
        XCTAssertEqual(recent.count, 1)
        XCTAssertEqual(recent.first?.firstPrompt, "Q1")
        XCTAssertEqual(recent.first?.turnCount, 6)
    }
}
