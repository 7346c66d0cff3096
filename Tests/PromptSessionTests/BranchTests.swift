import Foundation
import PromptSession
import QueryCore
import XCTest

/// `:undo`, `:fork`, `:switch`, `:branches`: the conversation changes, and a restored transcript
/// ends on the same branch with the same conversations.
final class BranchTests: XCTestCase {
    func ok(_ text: String) -> QueryResult {
        QueryResult(
            output: .text(text), requestTime: 1, inputTokens: 1, outputTokens: 1, timeToFirstToken: nil, retries: 0,
            info: QueryInfo())
    }

    func testUndoForkSwitchAndRestore() throws {
        let s = Session(provider: .openAI, model: "m")
        var t = Transcript(provider: "openai", baseURL: "http://x", model: "m")
        t.noteSettings(s)
        func turn(_ p: String) {
            let turn = TranscriptEvent.Turn(prompt: p, outcome: .success(ok("re: " + p)))
            s.record(turn)
            t.noteTurn(turn, requestBody: nil)
        }
        func change(_ c: Command, _ action: TranscriptEvent.BranchChange.Action) throws -> String {
            let message = try s.apply(c)
            t.noteBranch(action)
            return message
        }
        turn("one")
        turn("two")
        XCTAssertEqual(try change(.undo, .undo), "removed the last exchange (2 messages); 2 left")
        XCTAssertEqual(s.history.map(\.content), ["one", "re: one"])
        XCTAssertTrue(try change(.fork("short"), .fork("short")).hasPrefix("branch short (from main at 2 messages)"))
        turn("three")
        XCTAssertEqual(try change(.switchBranch("main"), .switchTo("main")), "on main: 2 messages")
        XCTAssertEqual(s.history.map(\.content), ["one", "re: one"])
        turn("four")
        XCTAssertEqual(
            try s.apply(.branches).split(separator: "\n").map(String.init),
            ["* main  4 messages  four", "  short  4 messages  three"])
        XCTAssertThrowsError(try s.apply(.fork("short")))
        XCTAssertThrowsError(try s.apply(.switchBranch("nope")))
        XCTAssertThrowsError(try Session(provider: .openAI, model: "m").apply(.undo))
        // The transcript restores the same branches, on the same one.
        let restored = Session(provider: .openAI, model: "m")
        try t.restore(into: restored)
        XCTAssertEqual(restored.branchName, "main")
        XCTAssertEqual(restored.history, s.history)
        XCTAssertEqual(try restored.apply(.switchBranch("short")), "on short: 4 messages")
        XCTAssertEqual(restored.history.map(\.content), ["one", "re: one", "three", "re: three"])
        XCTAssertEqual(
            t.events.compactMap { if case .branch(let b) = $0 { b.action } else { nil } }.count, 3)
        XCTAssertEqual(try CommandParser.parse(":fork"), .command(.fork(nil)))
        XCTAssertEqual(try CommandParser.parse(":switch main"), .command(.switchBranch("main")))
        XCTAssertEqual(try CommandParser.parse(":edit"), .app(.edit))
        XCTAssertEqual(s.newBranchName(), "b2")
    }
}
