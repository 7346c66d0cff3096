import Foundation
import PromptSession
import QueryCore
import XCTest

/// Transcript version 2: an append-only journal whose requests are written as what changed.
final class JournalTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "pl-journal-\(UUID())"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func text(_ s: String, _ i: Int? = 10, _ o: Int? = 2) -> QueryResult {
        QueryResult(
            output: .text(s), requestTime: 0.2, inputTokens: i, outputTokens: o, timeToFirstToken: 0.05, retries: 0,
            info: QueryInfo())
    }

    /// A chat session driven as the REPL drives it: each turn's body made by the core, the turn
    /// recorded by the session and noted by the transcript.
    struct Driver {
        let session = Session(provider: .openAI, model: "m")
        let client = QueryClient(baseURL: "http://127.0.0.1:9/v1", defaultModel: "m")
        var transcript = Transcript(provider: "openai", baseURL: "http://127.0.0.1:9/v1", model: "m")
        var bodies: [JSONValue] = []

        init() { transcript.noteSettings(session) }

        mutating func turn(_ prompt: String, _ outcome: Transcript.TurnOutcome, retry: Bool = false) throws {
            if retry { session.dropLastExchange() }
            let request = try client.makeRequest(
                messages: session.messages(for: prompt), functionSpec: session.functionSpec,
                options: session.queryOptions, stream: true)
            let body = try client.requestBody(for: request)
            bodies.append(body)
            session.record(transcript.noteTurn(prompt: prompt, request: body, outcome: outcome, retry: retry))
        }

        mutating func command(_ c: Command) throws {
            _ = try session.apply(c)
            if c == .reset { transcript.noteReset() }
            transcript.noteSettings(session)
        }
    }

    func testEveryRequestIsRebuiltFromItsDeltaThroughRetriesResetsAndSettingsChanges() throws {
        var d = Driver()
        try d.turn("one", .success(text("A1")))
        try d.turn("two", .success(text("A2")))
        try d.turn("two", .success(text("A2 again")), retry: true)
        try d.command(.set(key: "temperature", value: "0.3"))
        try d.turn("three", .failure(message: "HTTP 500", retries: 1, latency: 0.1))
        try d.command(.reset)
        try d.turn("four", .success(text("A4")))
        try d.command(.unset(key: "temperature"))
        try d.command(.mode(.single))
        try d.turn("five", .cancelled(retries: 0, latency: 0.1))
        let back = try Transcript.parse(d.transcript.journalBytes())
        XCTAssertEqual(back.events, d.transcript.events)
        // The same objects (a key set again may come back in another place: JSON objects have no order).
        XCTAssertEqual(try back.requestBodies(), d.bodies)
        // Only the first request is written whole; the others are what changed.
        let lines = String(decoding: d.transcript.journalBytes(), as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.contains("\"request\":{") }.count, 1)
        XCTAssertEqual(lines.filter { $0.contains("\"request_delta\"") }.count, 5)
    }

    func testAChatTranscriptGrowsLinearlyWithItsTurns() throws {
        var d = Driver()
        var sizes: [Int] = []
        for i in 1...400 {
            try d.turn("question number \(i)", .success(text("answer number \(i)")))
            if i % 100 == 0 { sizes.append(d.transcript.journalBytes().count) }
        }
        let perTurn = zip(sizes.dropFirst(), sizes).map { Double($0 - $1) / 100 }
        XCTAssertLessThan(perTurn.max()! / perTurn.min()!, 1.05, "bytes per 100 turns: \(perTurn)")
        XCTAssertLessThan(perTurn.max()!, 1000)
    }

    func testTheJournalIsOnlyAppendedToAndATornLastLineIsLeftOutOnce() throws {
        var d = Driver()
        let path = dir + "/t.jsonl"
        try AtomicFile.makePrivateDirectory(dir)
        let journal = TranscriptJournal(path: path)
        var previous: [UInt8] = []
        for i in 1...5 {
            try d.turn("q\(i)", .success(text("a\(i)")))
            try journal.sync(d.transcript)
            let now = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            XCTAssertEqual(Array(now.prefix(previous.count)), previous, "turn \(i) rewrote what was there")
            XCTAssertEqual(now, d.transcript.journalBytes())
            previous = now
        }
        // A crash in the middle of the next line.
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"type":"turn","at":"2026-11-28T21:00:00.000Z","prom"#.utf8))
        try handle.close()
        let torn = try TranscriptStore.load(path)
        XCTAssertEqual(torn.events, d.transcript.events)
        XCTAssertTrue(torn.needsRewrite)
        XCTAssertEqual(torn.loadNotes.count, 1)
        // Carried on, the file is written anew once, then appended to again.
        var resumed = torn
        journal.release()  // the promptline that wrote it has ended: one writer per journal
        let carried = TranscriptJournal(path: path, onDisk: 0)
        let session = Session(provider: .openAI, model: "m")
        try resumed.restore(into: session)
        resumed.noteTurn(prompt: "q6", request: ["model": "m"], outcome: .success(text("a6")))
        try carried.sync(resumed)
        let healed = try TranscriptStore.load(path)
        XCTAssertEqual(healed.events, resumed.events)
        XCTAssertEqual(healed.loadNotes, [])
    }

    func testAJournalWhoseFileWasReplacedOrRemovedIsWrittenWholeAgain() throws {
        var d = Driver()
        let path = dir + "/t.jsonl"
        try AtomicFile.makePrivateDirectory(dir)
        let journal = TranscriptJournal(path: path)
        try d.turn("q1", .success(text("a1")))
        try journal.sync(d.transcript)
        try d.turn("q2", .success(text("a2")))
        try journal.sync(d.transcript)
        // `:save` to the journal's own path replaces the file under the open descriptor.
        try TranscriptStore.save(d.transcript, to: path, force: true)
        try d.turn("q3", .success(text("a3")))
        try journal.sync(d.transcript)
        XCTAssertEqual(try TranscriptStore.load(path).events, d.transcript.events)
        try FileManager.default.removeItem(atPath: path)
        try d.turn("q4", .success(text("a4")))
        try journal.sync(d.transcript)
        XCTAssertEqual(try TranscriptStore.load(path).turnCount, 4)
    }

    /// A file written by promptline 8707854 (transcript version 1) loads, restores the state that
    /// version showed on --resume, and is carried on as a journal.
    func testAVersion1TranscriptFromThePreviousReleaseLoadsAndRestores() throws {
        let v1 = try TranscriptTests.fixture("transcript-v1-8707854.json")
        let t = try Transcript.parse(v1)
        XCTAssertEqual(t.turnCount, 7)
        XCTAssertTrue(t.needsRewrite)
        let s = Session(provider: .anthropic, model: "other")
        try t.restore(into: s)
        // What `promptline --resume` of 8707854 printed for this file.
        XCTAssertEqual(s.history.count, 4)
        XCTAssertEqual(s.stats.turnCount, 7)
        XCTAssertEqual(s.stats.errors, 1)
        XCTAssertEqual(s.stats.inputTokens.sum, 193)
        XCTAssertEqual(s.stats.outputTokens.sum, 19)
        XCTAssertEqual(s.system, "Be terse.")
        XCTAssertEqual(s.options["temperature"], 0.2)
        XCTAssertEqual(s.options["max_tokens"], 50)
        XCTAssertEqual(s.mode, .chat)
        XCTAssertEqual(s.provider, .openAI)
        XCTAssertEqual(s.model, "m")
        XCTAssertEqual(s.history.map(\.content), ["after reset", "echo: after reset", "last one", "echo: last one"])
        // Its whole requests stay whole; written as a journal it reads back the same.
        let again = try Transcript.parse(t.journalBytes())
        XCTAssertEqual(again.events, t.events)
        XCTAssertEqual(try again.requestBodies().compactMap { $0 }.count, 7)
        let md = TranscriptMarkdown.render(t, stats: s.stats)
        XCTAssert(md.contains("## Compare") && md.contains("**Function call** `get_weather`"), md)
    }
}
