import Foundation
import PromptSession
import QueryCore
import XCTest

/// `{{name}}` templates: filling, escapes, unset variables named before anything is sent, the
/// variables in the settings record and the template in each turn's record.
final class TemplateTests: XCTestCase {
    func testFillEscapesAndErrors() throws {
        let vars = ["city": "Oslo", "n": "3"]
        XCTAssertEqual(try Template.fill("Weather in {{city}} for {{ n }} days", vars), "Weather in Oslo for 3 days")
        XCTAssertEqual(try Template.fill("no placeholders", [:]), "no placeholders")
        XCTAssertEqual(try Template.fill("literal {{{{city}} and {{city}}", vars), "literal {{city}} and Oslo")
        XCTAssertThrowsError(try Template.fill("Hi {{name}}", vars)) {
            XCTAssertEqual("\($0)", "{{name}} is not set (:var name VALUE sets it; {{{{ writes a literal {{)")
        }
        XCTAssertThrowsError(try Template.fill("open {{city", vars))
        XCTAssertEqual(Template.names(in: "{{a}} {{b}} {{a}} {{{{c}}"), ["a", "b"])
        XCTAssertFalse(Template.isValidName("1x"))
        XCTAssertTrue(Template.isValidName("user.name"))
    }

    func testVarCommandsSystemPromptAndTheRecord() throws {
        let s = Session(provider: .openAI, model: "m")
        XCTAssertEqual(try CommandParser.parse(":var city Oslo"), .command(.setVar(name: "city", value: "Oslo")))
        XCTAssertEqual(try CommandParser.parse(":var rm city"), .command(.removeVar("city")))
        XCTAssertEqual(try CommandParser.parse(":vars"), .command(.vars(nil)))
        XCTAssertThrowsError(try CommandParser.parse(":var 9lives x"))
        _ = try s.apply(.setVar(name: "city", value: "Oslo"))
        let dir = NSTemporaryDirectory() + "pl-vars-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "a long text\n".write(toFile: dir + "/doc.txt", atomically: true, encoding: .utf8)
        _ = try s.apply(.setVar(name: "doc", value: "@" + dir + "/doc.txt"))
        XCTAssertEqual(s.vars["doc"], "a long text")
        _ = try s.apply(.setVar(name: "at", value: "@@home"))
        XCTAssertEqual(s.vars["at"], "@home")
        XCTAssertTrue(try s.apply(.vars(nil)).contains("city  Oslo"))
        _ = try s.apply(.setSystem("You answer about {{city}}."))
        XCTAssertEqual(s.messages(for: "x").first?.content, "You answer about Oslo.")
        _ = try s.apply(.setSystem("About {{country}}."))
        let c = QueryClient(provider: .openAI, baseURL: "http://127.0.0.1:1/v1", defaultModel: "m")
        XCTAssertThrowsError(try s.request(prompt: "x", results: [], client: c, stream: false)) {
            XCTAssertTrue("\($0)".hasPrefix("system prompt: {{country}} is not set"), "\($0)")
        }
        // The settings record keeps the variables; a turn keeps its template beside what was sent.
        var t = Transcript(provider: "openai", baseURL: "http://x", model: "m")
        t.noteSettings(s)
        var turn = TranscriptEvent.Turn(
            prompt: "Weather in Oslo?",
            outcome: .success(
                QueryResult(
                    output: .text("Sunny"), requestTime: 1, inputTokens: 1, outputTokens: 1, timeToFirstToken: nil,
                    retries: 0, info: QueryInfo())))
        turn.template = "Weather in {{city}}?"
        t.noteTurn(turn, requestBody: nil)
        let restored = try t.reloaded(at: dir + "/t.jsonl", model: "m")
        XCTAssertEqual(restored.vars, s.vars)
        XCTAssertEqual(restored.lastTemplate, "Weather in {{city}}?")
        XCTAssertEqual(restored.lastPrompt, "Weather in Oslo?")
    }

    func testVarFlagsOverrideTheConfigFile() throws {
        var f = Flags()
        f.vars = ["city=Rome", "empty="]
        let c = try Config.parse("vars: {city: Oslo, lang: en}\n")
        let s = try ResolvedSettings.resolve(flags: f, environment: [:], config: c)
        XCTAssertEqual(
            s.startupCommands,
            [
                .setVar(name: "city", value: "Oslo"), .setVar(name: "lang", value: "en"),
                .setVar(name: "city", value: "Rome"),
                .setVar(name: "empty", value: ""),
            ])
        f.vars = ["nonsense"]
        XCTAssertThrowsError(try ResolvedSettings.resolve(flags: f, environment: [:], config: c))
    }
}
