import PromptSession
import QueryCore
import XCTest

/// Which of the flags, the environment, the config file and the defaults wins.
final class SettingsTests: XCTestCase {
    func config(_ yaml: String) throws -> Config { try Config.parse(yaml) }

    func testDefaultsWithNothingSet() throws {
        let s = try ResolvedSettings.resolve(flags: Flags(), environment: [:], config: Config())
        XCTAssertEqual(s.provider, .openAI)
        XCTAssertEqual(s.model, "gpt-4o-mini")
        XCTAssertEqual(s.mode, .chat)
        XCTAssertEqual(s.forcedCall, .auto)
        XCTAssertEqual(s.maxAttempts, 6)
        XCTAssertEqual(s.readTimeout, 120)
        XCTAssertEqual(s.turnTimeout, 300)
        XCTAssertEqual(s.historySize, 1000)
        XCTAssertEqual(s.options, QueryOptions())
        XCTAssertEqual(s.startupCommands, [])
        XCTAssertEqual(s.endpoints[.openAI], .init(baseURL: nil, apiKey: nil))
    }

    func testValuesUnderSecretNamesAreSecretsWhereverTheyCameFrom() throws {
        var f = Flags()
        f.vars = ["api_token=tok-1234567890abcdef", "country=France-and-more"]
        f.sets = ["x_secret=\"sec-1234567890\"", "temperature=0.2"]
        let c = try config(
            """
            vars: {db_password: hunter2-hunter2, city: Paris-the-city}
            options: {provider_key: key-abcdefghij}
            """)
        let s = try ResolvedSettings.resolve(flags: f, environment: [:], config: c)
        let secrets = Set(s.secretValues)
        XCTAssertTrue(secrets.contains("tok-1234567890abcdef"))
        XCTAssertTrue(secrets.contains("hunter2-hunter2"))
        XCTAssertTrue(secrets.contains("key-abcdefghij"))
        XCTAssertTrue(secrets.contains { $0.contains("sec-1234567890") })
        XCTAssertFalse(secrets.contains { $0.contains("France") || $0.contains("Paris") || $0.contains("0.2") })
        let redactor = Redactor(s.secretValues)
        XCTAssertEqual(redactor.redact("token tok-1234567890abcdef here"), "token [redacted] here")
    }

    func testTheConfigFileOverridesDefaults() throws {
        let c = try config(
            """
            model: claude-3-5-haiku-latest
            mode: single
            func_via: named
            turn_timeout: 30
            history_size: 50
            system: From the config.
            options: {temperature: 0.1}
            base_urls: {anthropic: "http://127.0.0.1:9"}
            """)
        let s = try ResolvedSettings.resolve(flags: Flags(), environment: [:], config: c)
        XCTAssertEqual(s.provider, .anthropic, "the provider follows the config's model")
        XCTAssertEqual(s.model, "claude-3-5-haiku-latest")
        XCTAssertEqual(s.mode, .single)
        XCTAssertEqual(s.forcedCall, .named)
        XCTAssertEqual(s.turnTimeout, 30)
        XCTAssertEqual(s.historySize, 50)
        XCTAssertEqual(s.options["temperature"], 0.1)
        XCTAssertEqual(s.startupCommands, [.setSystem("From the config.")])
        XCTAssertEqual(s.endpoints[.anthropic]?.baseURL, "http://127.0.0.1:9")
    }

    func testTheEnvironmentOverridesTheConfigFileAndFlagsOverrideBoth() throws {
        let c = try config(
            "base_urls: {openai: \"http://config/v1\"}\nmodel: from-config\nsystem: config system\nturn_timeout: 30")
        let env = ["OPENAI_BASE_URL": "http://env/v1", "OPENAI_API_KEY": "sk-env", "ANTHROPIC_API_KEY": ""]
        var s = try ResolvedSettings.resolve(flags: Flags(), environment: env, config: c)
        XCTAssertEqual(s.endpoints[.openAI], .init(baseURL: "http://env/v1", apiKey: "sk-env"))
        XCTAssertEqual(s.endpoints[.anthropic], .init(baseURL: nil, apiKey: nil), "an empty variable is unset")
        var f = Flags()
        f.baseURL = "http://flag/v1"
        f.model = "claude-sonnet-4-5"
        f.system = "@prompt.txt"
        f.sets = ["temperature=0.5", "max_tokens = 7"]
        f.functionFile = "f.yaml"
        f.mode = .single
        f.funcVia = .jsonSchema
        f.turnTimeout = 5
        f.maxAttempts = 1
        s = try ResolvedSettings.resolve(flags: f, environment: env, config: c)
        XCTAssertEqual(s.endpoints[.openAI]?.baseURL, "http://flag/v1")
        XCTAssertEqual(s.endpoints[.anthropic]?.baseURL, "http://flag/v1", "--base-url is for whichever provider runs")
        XCTAssertEqual(s.provider, .anthropic)
        XCTAssertEqual(s.model, "claude-sonnet-4-5")
        XCTAssertEqual(s.turnTimeout, 5)
        XCTAssertEqual(s.maxAttempts, 1)
        XCTAssertEqual(s.forcedCall, .jsonSchema)
        XCTAssertEqual(
            s.startupCommands,
            [
                .loadSystem(path: "prompt.txt"), .set(key: "temperature", value: "0.5"),
                .set(key: "max_tokens", value: "7"), .loadFunction(path: "f.yaml"),
            ])
        f.provider = .openAI
        XCTAssertEqual(
            try ResolvedSettings.resolve(flags: f, environment: env, config: c).provider, .openAI,
            "--provider beats the model's")
    }

    func testLocalPicksItsModelBoundsTurnsAndSendsNoKey() throws {
        let c = try config("model: gpt-4.1\nprovider: anthropic")
        var f = Flags()
        f.local = true
        let local = (url: "http://127.0.0.1:8080/v1", model: "smollm2-135m-instruct")
        let env = ["OPENAI_API_KEY": "sk-real", "OPENAI_BASE_URL": "https://api.openai.com/v1"]
        var s = try ResolvedSettings.resolve(flags: f, environment: env, config: c, local: local)
        XCTAssertEqual(s.provider, .openAI, "the config's remote provider is not for --local")
        XCTAssertEqual(s.model, "smollm2-135m-instruct")
        XCTAssertEqual(s.options, ResolvedSettings.localDefaults)
        XCTAssertEqual(s.options["max_tokens"], 512)
        XCTAssertEqual(s.options["repeat_penalty"], 1.1)
        XCTAssertEqual(s.endpoints[.openAI], .init(baseURL: "http://127.0.0.1:8080/v1", apiKey: nil))
        XCTAssertEqual(s.endpoints[.anthropic], .init(baseURL: "http://127.0.0.1:8080", apiKey: nil))
        f.sets = ["max_tokens=64"]
        s = try ResolvedSettings.resolve(flags: f, environment: env, config: c, local: local)
        XCTAssertNil(s.options["max_tokens"], "set by the user: their value comes through --set")
        XCTAssertEqual(s.options["repeat_penalty"], 1.1)
        XCTAssertEqual(s.options["temperature"], 0.3)
        s = try ResolvedSettings.resolve(
            flags: f, environment: env, config: try config("options: {repeat_penalty: 1.0}"), local: local)
        XCTAssertEqual(s.options["repeat_penalty"], 1.0, "the config file's value wins")
        f.baseURL = "http://elsewhere/v1"
        s = try ResolvedSettings.resolve(flags: f, environment: env, config: c, local: local)
        XCTAssertEqual(s.endpoints[.openAI], .init(baseURL: "http://elsewhere/v1", apiKey: "sk-real"))
    }

    /// Tool flags override the config file's keys; tools load before the choice that names one.
    func testToolFlagsOverrideTheConfigFile() throws {
        let c = try config(
            """
            tools: [a.yaml, b.yaml]
            choice: get_time
            mock: m.yaml
            schema: s.json
            max_tool_rounds: 3
            """)
        let fromConfig = try ResolvedSettings.resolve(flags: Flags(), environment: [:], config: c)
        XCTAssertEqual(
            fromConfig.startupCommands,
            [
                .loadTools(path: "a.yaml"), .loadTools(path: "b.yaml"), .choice("get_time"), .loadMock(path: "m.yaml"),
                .loadSchema(path: "s.json"), .set(key: "max_tool_rounds", value: "3"),
            ])
        var f = Flags()
        (f.tools, f.choice, f.mock) = (["c.yaml"], "auto", "n.yaml")
        let fromFlags = try ResolvedSettings.resolve(flags: f, environment: [:], config: c)
        XCTAssertEqual(
            fromFlags.startupCommands,
            [
                .loadTools(path: "c.yaml"), .choice("auto"), .loadMock(path: "n.yaml"), .loadSchema(path: "s.json"),
                .set(key: "max_tool_rounds", value: "3"),
            ])
        XCTAssertThrowsError(try config("max_tool_rounds: 0")) {
            XCTAssertTrue("\($0)".contains("max_tool_rounds must be a whole number from 1 to 1000"), "\($0)")
        }
        XCTAssertThrowsError(try config("tools: {a: 1}")) {
            XCTAssertTrue("\($0)".contains("tools must be text"), "\($0)")
        }
    }

    func testABadSetIsOneClearError() {
        var f = Flags()
        f.sets = ["temperature"]
        XCTAssertThrowsError(try ResolvedSettings.resolve(flags: f, environment: [:], config: Config())) {
            XCTAssertEqual("\($0)", "--set takes key=value, got temperature")
        }
    }
}
