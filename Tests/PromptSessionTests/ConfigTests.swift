import PromptSession
import QueryCore
import XCTest

final class ConfigTests: XCTestCase {
    func testFullConfig() throws {
        let c = try Config.parse(
            """
            provider: anthropic
            model: claude-x
            base_urls: {openai: "http://127.0.0.1:8080/v1", anthropic: "https://proxy.example/a"}
            options:
              temperature: 0.2
              stop: ["END"]
              top_k: 40
            system: You are terse.
            mode: single
            history_size: 50
            prices:
              claude-x: {input: 1, output: 2.5}
            """)
        XCTAssertEqual(c.provider, .anthropic)
        XCTAssertEqual(c.model, "claude-x")
        XCTAssertEqual(c.baseURLs[.openAI], "http://127.0.0.1:8080/v1")
        XCTAssertEqual(c.options.keys, ["temperature", "stop", "top_k"])
        XCTAssertEqual(c.options["stop"], ["END"])
        XCTAssertEqual(c.system, "You are terse.")
        XCTAssertEqual(c.mode, .single)
        XCTAssertEqual(c.historySize, 50)
        XCTAssertEqual(c.prices.cost(model: "claude-x", inputTokens: 1_000_000, outputTokens: 2_000_000), 6)
        XCTAssertEqual(
            c.prices.cost(model: "gpt-4o-mini", inputTokens: 1_000_000, outputTokens: 0), 0.15, "defaults stay")
        XCTAssertNil(c.prices.cost(model: "no-such-model", inputTokens: 1, outputTokens: 1), "unknown, not 0")
        XCTAssertEqual(try Config.parse(""), Config())
    }

    func testErrorsNameLineAndKey() {
        let cases: [(String, String)] = [
            ("model: m\ntemperature: 1\n", "line 2: unknown key temperature"),
            ("options:\n  temperature: 7\n", "line 2: options.temperature: temperature must be a number from 0 to 2"),
            ("provider: google\n", "line 1: provider must be openai, openai-responses or anthropic"),
            ("model: [a\n", "not valid YAML"),
            ("prices:\n  m: {input: cheap}\n", "line 2: prices.m must be"),
            ("base_urls: {openai: notaurl}\n", "base_urls.openai must be a URL"),
            ("- a\n- b\n", "must be a mapping"),
            ("history_size: -1\n", "history_size must be a positive integer"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try Config.parse(text), text) { e in
                XCTAssert("\(e)".contains(expected), "\(text) → \(e)")
            }
        }
    }

    func testCostInStats() {
        let s = Session(provider: .openAI, model: "gpt-4o-mini")
        let r = QueryResult(
            output: .text("x"), requestTime: 1, inputTokens: 1000, outputTokens: 1000, timeToFirstToken: nil,
            retries: 0, info: QueryInfo())
        s.recordSuccess(prompt: "a", result: r)
        XCTAssert(s.stats.report().contains("cost $0.000750"), s.stats.report())
        let noUsage = QueryResult(
            output: .text("x"), requestTime: 1, inputTokens: nil, outputTokens: nil, timeToFirstToken: nil, retries: 0,
            info: QueryInfo())
        s.recordSuccess(prompt: "b", result: noUsage)
        XCTAssert(
            s.stats.report().contains("cost $0.000750 + unknown (1 turn without a price or usage)"), s.stats.report())
        let t = Session(provider: .openAI, model: "mystery")
        t.recordSuccess(prompt: "a", result: r)
        XCTAssert(t.stats.report().contains("cost unknown"), t.stats.report())
    }

    /// Cached input is priced apart: OpenAI counts it within the input, Anthropic beside it
    /// (and charges cache writes at 1.25 × input); reasoning and cached tokens show in :stats.
    func testCachedInputAndReasoningTokens() throws {
        let table = PriceTable.defaults
        let openAI: JSONValue = [
            "prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": ["cached_tokens": 600],
            "completion_tokens_details": ["reasoning_tokens": 40],
        ]
        // gpt-4o: 400 × 2.50 + 600 × 1.25 + 100 × 10.00, per million.
        XCTAssertEqual(
            try XCTUnwrap(table.cost(model: "gpt-4o", inputTokens: 1000, outputTokens: 100, usage: openAI)), 0.00275,
            accuracy: 1e-12)
        let anthropic: JSONValue = [
            "input_tokens": 200, "output_tokens": 100, "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 400,
        ]
        // claude-sonnet-4-5: 200 × 3 + 1000 × 0.30 + 400 × 3.75 + 100 × 15, per million.
        XCTAssertEqual(
            try XCTUnwrap(
                table.cost(model: "claude-sonnet-4-5", inputTokens: 200, outputTokens: 100, usage: anthropic)),
            0.0039, accuracy: 1e-12)
        let s = Session(provider: .openAI, model: "gpt-4o")
        var info = QueryInfo()
        info.usage = openAI
        s.recordSuccess(
            prompt: "a",
            result: QueryResult(
                output: .text("x"), requestTime: 1, inputTokens: 1000, outputTokens: 100, timeToFirstToken: nil,
                retries: 0, info: info))
        XCTAssertTrue(
            s.stats.report().contains("of which reasoning 40 (output)   cached 600 (input)"), s.stats.report())
        XCTAssertTrue(s.stats.report().contains("cost $0.002750"), s.stats.report())
        let c = try Config.parse("prices:\n  my-model: {input: 1, output: 2, cached_input: 0.1}\n")
        XCTAssertEqual(c.prices.prices["my-model"], PriceTable.Price(input: 1, output: 2, cachedInput: 0.1))
    }
}
