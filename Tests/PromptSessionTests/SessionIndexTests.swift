import Foundation
import PromptSession
import QueryCore
import XCTest

/// The sessions folder's listing (`:sessions`, `--resume last`) and where files go.
final class SessionIndexTests: XCTestCase {
    var dir: String!

    override func setUp() { dir = NSTemporaryDirectory() + "pl-index-\(UUID())" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    let answer = QueryResult(
        output: .text("ok"), requestTime: 0.1, inputTokens: 1, outputTokens: 1, timeToFirstToken: nil, retries: 0,
        info: QueryInfo())

    /// A transcript of `turns` turns, the first at `start`, one second apart.
    func transcript(_ id: String, turns: Int, start: Date) -> Transcript {
        let s = Session(provider: .openAI, model: "m-\(id)")
        var t = Transcript(id: id, created: start, provider: "openai", baseURL: "http://x/v1", model: s.model)
        t.noteSettings(s, at: start)
        for i in 0..<turns {
            t.noteTurn(
                prompt: "\(id) prompt \(i)", request: nil, outcome: .success(answer),
                at: start.addingTimeInterval(Double(i + 1)))
        }
        return t
    }

    /// Writes `t` as the REPL's autosave does: the journal, then its summary.
    @discardableResult
    func write(_ t: Transcript, store: TranscriptStore, created: Date? = nil) throws -> String {
        let path = store.autosavePath(for: t, created: created)
        try AtomicFile.write(t.journalBytes(), to: path)
        SessionIndex(sessions: store.directory).note(t, journal: path)
        return path
    }

    func testTheMostRecentlyWrittenComesFirstWhateverItsName() throws {
        let store = TranscriptStore(directory: dir)
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        // "zzz" sorts last by name and was created last, but "aaa" was written after it.
        let old = try write(transcript("zzz", turns: 2, start: base.addingTimeInterval(100)), store: store)
        let new = try write(transcript("aaa", turns: 200, start: base), store: store)
        let recent = store.recent()
        XCTAssertEqual(recent.map(\.path), [new, old])
        XCTAssertEqual(recent.first?.turnCount, 200)
        XCTAssertEqual(recent.first?.firstPrompt, "aaa prompt 0")
        XCTAssertEqual(recent.first?.model, "m-aaa")
        XCTAssertEqual(store.recent(limit: 1).map(\.path), [new])
    }

    func testAListingReadsTheSummaryNotTheJournal() throws {
        let store = TranscriptStore(directory: dir)
        let path = try write(transcript("abc", turns: 3, start: Date()), store: store)
        // The journal's bytes replaced by others of the same size and time: a listing that read
        // the journal would now fail to load it and list nothing.
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        let size = Int(st.st_size)
        let fd = open(path, O_WRONLY)
        let junk = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        XCTAssertEqual(junk.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, size) }, size)
        var times = [st.st_atim, st.st_mtim]
        XCTAssertEqual(futimens(fd, &times), 0)
        close(fd)
        XCTAssertNil(try? TranscriptStore.load(path))
        XCTAssertEqual(store.recent().map(\.turnCount), [3])
    }

    func testAStaleOrMissingSummaryIsMadeAgainFromTheJournal() throws {
        let store = TranscriptStore(directory: dir)
        var t = transcript("abc", turns: 3, start: Date())
        let path = try write(t, store: store)
        // The journal grows without its summary being told (an older promptline, a copy).
        t.noteTurn(prompt: "one more", request: nil, outcome: .success(answer))
        try AtomicFile.write(t.journalBytes(), to: path)
        XCTAssertEqual(store.recent().map(\.turnCount), [4])
        try FileManager.default.removeItem(atPath: dir + "/.index")
        XCTAssertEqual(store.recent().map(\.turnCount), [4])
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: dir + "/.index/" + (path as NSString).lastPathComponent + ".json"))
        // A file that is not a transcript is left out, as before.
        try AtomicFile.write(Array("not json\n".utf8), to: dir + "/20000101T000000Z-bad.jsonl")
        XCTAssertEqual(store.recent().count, 1)
    }

    func testAJournalIsNamedForWhenItStarted() throws {
        let store = TranscriptStore(directory: dir)
        let t = transcript("abc", turns: 1, start: Date(timeIntervalSince1970: 1_800_000_000))
        XCTAssertEqual(store.autosavePath(for: t), dir + "/20270115T080000Z-abc.jsonl")
        XCTAssertEqual(
            store.autosavePath(for: t, created: Date(timeIntervalSince1970: 1_800_000_061)),
            dir + "/20270115T080101Z-abc.jsonl")
    }

    func testHomeIsReadFromTheEnvironmentFirst() {
        XCTAssertEqual(XDG.home(environment: ["HOME": "/tmp/h"]), "/tmp/h")
        XCTAssertEqual(XDG.home(environment: ["HOME": "/tmp/h/"]), "/tmp/h")
        XCTAssertFalse(XDG.home(environment: [:]).isEmpty, "no HOME: the passwd entry's")
        XCTAssertEqual(XDG.home(environment: ["HOME": "relative"]), XDG.home(environment: [:]))
        XCTAssertEqual(
            XDG.directory("XDG_DATA_HOME", default: ".local/share", environment: ["HOME": "/tmp/h"]),
            "/tmp/h/.local/share")
        XCTAssertEqual(
            TranscriptStore.defaultDirectory(environment: ["HOME": "/tmp/h"]), "/tmp/h/.local/share/promptline/sessions"
        )
        XCTAssertEqual(Config.defaultPath(environment: ["HOME": "/tmp/h"]), "/tmp/h/.config/promptline/config.yaml")
        XCTAssertEqual(XDG.expandTilde("~/a/b", environment: ["HOME": "/tmp/h"]), "/tmp/h/a/b")
        XCTAssertEqual(XDG.expandTilde("~", environment: ["HOME": "/tmp/h"]), "/tmp/h")
        XCTAssertEqual(XDG.expandTilde("a/~/b", environment: ["HOME": "/tmp/h"]), "a/~/b")
    }
}
