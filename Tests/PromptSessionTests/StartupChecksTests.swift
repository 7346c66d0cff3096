import Foundation
import PromptSession
import QueryCore
import XCTest

/// What is refused at start (one line naming the flag or file), and the session rules the flags
/// share with the commands.
final class StartupChecksTests: XCTestCase {
    func resolveError(_ f: Flags, environment: [String: String] = [:], config: Config = Config()) -> String? {
        do {
            _ = try ResolvedSettings.resolve(flags: f, environment: environment, config: config)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testABaseURLThatIsNotAnHTTPURLIsRefusedNamingWhereItCameFrom() {
        var f = Flags()
        f.baseURL = "not-a-url"
        XCTAssertEqual(
            resolveError(f), "--base-url not-a-url is not an http(s) URL; give one like https://api.openai.com/v1")
        f.baseURL = "ftp://host/v1"
        XCTAssertNotNil(resolveError(f))
        f.baseURL = "http://127.0.0.1:8080/v1"
        XCTAssertNil(resolveError(f))
        XCTAssertEqual(
            resolveError(Flags(), environment: ["ANTHROPIC_BASE_URL": "localhost:9"]),
            "ANTHROPIC_BASE_URL localhost:9 is not an http(s) URL; give one like https://api.anthropic.com")
        f.baseURL = "https://user:hunter2@/v1"
        XCTAssertFalse(resolveError(f)?.contains("hunter2") ?? true, "credentials are never shown")
    }

    func testAModelNameFollowsTheSameRuleAsModelCommand() throws {
        var f = Flags()
        f.model = "a b"
        XCTAssertEqual(resolveError(f), "--model: a model name has no spaces: a b")
        f.model = ""
        XCTAssertEqual(resolveError(f), "--model: a model name cannot be empty")
        let s = Session(provider: .openAI, model: "m")
        XCTAssertThrowsError(try s.apply(.setModel("a b"))) {
            XCTAssertEqual("\($0)", "a model name has no spaces: a b")
        }
    }

    func testAConfigNamedOnTheCommandLineMustExist() throws {
        let missing = NSTemporaryDirectory() + "nope-\(UUID()).yaml"
        XCTAssertThrowsError(try Config.load(missing, required: true)) {
            XCTAssertEqual("\($0)", "--config \(missing): no such file")
        }
        XCTAssertEqual(try Config.load(missing), Config(), "the default path may be missing")
    }

    func testAModelOfAnotherProviderSwitchesBackToTheOneLeft() throws {
        let s = Session(provider: .openAIResponses, model: "smollm2")
        var made: [Provider] = []
        s.willSwitchProvider = { p in
            made.append(p)
            return nil
        }
        XCTAssertEqual(
            try s.apply(.setModel("claude-sonnet-4-5")), "model claude-sonnet-4-5; switching to the anthropic provider")
        XCTAssertEqual(s.provider, .anthropic)
        XCTAssertEqual(
            try s.apply(.setModel("smollm2")), "model smollm2; switching back to the openai-responses provider")
        XCTAssertEqual(s.provider, .openAIResponses)
        XCTAssertEqual(made, [.anthropic, .openAIResponses])
        // Chosen with :provider, the Anthropic provider stays whatever the model is called.
        _ = try s.apply(.provider("anthropic"))
        _ = try s.apply(.setModel("my-proxy-model"))
        XCTAssertEqual(s.provider, .anthropic)
    }

    func testTheExportShowsOnlyWhatEachLaterSettingChanged() throws {
        let s = Session(provider: .openAI, model: "m")
        var t = Transcript(provider: "openai", baseURL: "http://x/v1", model: "m")
        _ = try s.apply(.setSystem("Be terse."))
        t.noteSettings(s)
        _ = try s.apply(.set(key: "temperature", value: "0.5"))
        t.noteSettings(s)
        _ = try s.apply(.set(key: "top_p", value: "0.9"))
        t.noteSettings(s)
        _ = try s.apply(.unset(key: "temperature"))
        t.noteSettings(s)
        let md = TranscriptMarkdown.render(t, stats: s.stats)
        XCTAssertEqual(md.components(separatedBy: "## Settings").count - 1, 1, md)
        XCTAssertEqual(md.components(separatedBy: "Be terse.").count - 1, 1, "the system prompt once\n" + md)
        XCTAssertTrue(md.contains("**Settings changed**\n\n- options: `temperature=0.5`\n"), md)
        XCTAssertTrue(md.contains("**Settings changed**\n\n- options: `top_p=0.9`\n"), md)
        XCTAssertTrue(md.contains("**Settings changed**\n\n- unset: `temperature`\n"), md)
    }
}
