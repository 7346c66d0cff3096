import Foundation
import PromptSession
import QueryCore
import TestHTTPServer
import XCTest

/// Eval files end to end through the library: the file read, its prompts × providers made into
/// variants, its tests run as a batch against the echo server, and the pass counts compared with
/// counts worked out here from the replies alone.
final class EvalFileTests: BatchTestCase {
    func write(_ name: String, _ json: JSONValue) throws -> String {
        let path = dir + "/" + name
        try json.serialized().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func run(_ eval: EvalFile, _ s: Session, _ c: QueryClient, out: String) async throws -> BatchSummary {
        let variants = try eval.variants(session: s)
        var r = BatchRunner(
            template: eval.prompts[0].template, rows: eval.rows, variants: variants, clients: variants.map { _ in c },
            concurrency: 8, outPath: out)
        (r.rowChecks, r.repeats) = (eval.rowChecks, eval.repeats)
        return try await r.run(session: s)
    }

    /// The checks of the file below, done by hand on "echo: <prompt>".
    func expected(_ out: String, weights: Bool) -> (pass: Bool, score: Double) {
        let n = out.split(separator: " ").last.map(String.init) ?? ""
        let checks: [(Bool, Double)] = [
            (out.contains("7"), 1),
            (out.hasPrefix("echo: A"), weights ? 2 : 1),
            (out.hasSuffix("x"), 1),
            (!out.lowercased().contains("c 1"), weights ? 3 : 1),
            (levenshtein(out, "echo: A 100") <= 1, 1),
            (out.contains("5") || out.contains("9"), weights ? 0.5 : 1),
        ]
        _ = n
        let total = checks.reduce(0) { $0 + $1.1 }
        let score = checks.reduce(0) { $0 + ($1.0 ? $1.1 : 0) } / total
        return (weights ? score >= 0.5 : checks.allSatisfy(\.0), score)
    }

    func levenshtein(_ a: String, _ b: String) -> Int {
        let (x, y) = (Array(a), Array(b))
        var d = (0...y.count).map { $0 }
        for i in 1...max(1, x.count) where !x.isEmpty {
            var prev = d[0]
            d[0] = i
            for j in 1...y.count {
                let keep = d[j]
                d[j] = Swift.min(d[j] + 1, d[j - 1] + 1, prev + (x[i - 1] == y[j - 1] ? 0 : 1))
                prev = keep
            }
        }
        return d[y.count]
    }

    func evalJSON(weights: Bool) -> JSONValue {
        func a(_ type: String, _ value: String, weight: Double = 1, threshold: Double? = nil) -> JSONValue {
            var o: JSONObject = ["type": .string(type), "value": .string(value)]
            if weights { o["weight"] = .double(weight) }
            if let threshold { o["threshold"] = .double(threshold) }
            return .object(o)
        }
        var defaultTest: JSONObject = [
            "assert": [
                a("contains", "7"), a("starts-with", "echo: A", weight: 2), a("regex", "x$"),
                a("not-icontains", "c 1", weight: 3), a("levenshtein", "echo: A 100", threshold: 1),
                a("contains-any", "5,9", weight: 0.5),
            ]
        ]
        if weights { defaultTest["threshold"] = 0.5 }
        return [
            "description": "200 rows × 3 prompts × 6 assertion types",
            "prompts": ["A {{n}}", ["label": "B", "raw": "B {{n}} x"], ["label": "C", "raw": "C {{n}}"]],
            "defaultTest": .object(defaultTest),
            "tests": .array((0..<200).map { i in ["vars": ["n": .string(String(i))]] }),
            "threshold": 0.2,
        ]
    }

    func testTwoHundredRowsThreeVariantsSixTypesGiveExactlyTheExpectedPassCounts() async throws {
        let server = try await echoServer()
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        for weights in [false, true] {
            let eval = try EvalFile.load(try write("eval-\(weights).yaml", evalJSON(weights: weights)))
            XCTAssertEqual(eval.tests.count, 200)
            XCTAssertEqual(eval.tests[0].assertions.count, 6)
            let s = Session(provider: .openAI, model: "m")
            let summary = try await run(eval, s, c, out: dir + "/r-\(weights).jsonl")
            XCTAssertEqual(summary.variants, ["prompt 1", "B", "C"])
            for (label, prompt) in [("prompt 1", "A %d"), ("B", "B %d x"), ("C", "C %d")] {
                let outs = (0..<200).map { "echo: " + String(format: prompt, $0) }
                let want = outs.filter { expected($0, weights: weights).pass }.count
                let meanScore = outs.reduce(0) { $0 + expected($1, weights: weights).score } / 200
                let t = try XCTUnwrap(summary.totals[label])
                XCTAssertEqual(t.graded, 200, label)
                XCTAssertEqual(t.passed, want, "\(label) weights=\(weights)")
                XCTAssertEqual(try XCTUnwrap(t.meanScore), meanScore, accuracy: 1e-9, label)
            }
            XCTAssertEqual(summary.failures.count, 600 - summary.totals.values.reduce(0) { $0 + $1.passed })
        }
        // Spot check of the figures the weights change: without weights only A rows can pass all six.
        XCTAssertEqual(expected("echo: A 100", weights: false).pass, false)  // no 7, no x$
    }

    func testRepeatThreeGivesPassAtNAndStability() async throws {
        // The k-th time a prompt arrives it is answered by a reply fixed by its row and k: rows
        // with n % 3 == 0 always "same"; == 1 "same", "same", "other"; == 2 "x", "y", "z".
        let seen = Counts()
        let server = try await TestHTTPServer.start(defaultReply: { req in
            let body = req.json ?? .null
            let prompt = body["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            let n = Int(prompt.split(separator: " ").last ?? "") ?? 0
            let k = seen.next(prompt)
            let text = [["same", "same", "same"], ["same", "same", "other"], ["x", "y", "z"]][n % 3][min(k, 2)]
            return .json(
                200,
                [
                    "id": "c", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [
                        [
                            "index": 0, "message": ["role": "assistant", "content": .string(text)],
                            "finish_reason": "stop",
                        ]
                    ],
                ])
        })
        addTeardownBlock { server.stop() }
        let c = QueryClient(provider: .openAI, baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
        let eval = try EvalFile.load(
            try write(
                "repeat.yaml",
                [
                    "prompts": ["Row {{n}}"], "repeat": 3,
                    "tests": .array(
                        (0..<30).map { i in
                            ["vars": ["n": .string(String(i))], "assert": [["type": "equals", "value": "same"]]]
                        }),
                ]))
        XCTAssertEqual(eval.repeats, 3)
        let s = Session(provider: .openAI, model: "m")
        let out = dir + "/repeat.jsonl"
        let summary = try await run(eval, s, c, out: out)
        XCTAssertEqual(server.requests.count, 90)
        let t = try XCTUnwrap(summary.totals[""])
        XCTAssertEqual(t.graded, 90)
        XCTAssertEqual(t.passed, 10 * 3 + 10 * 2)
        XCTAssertEqual(t.passAtN, 20, "rows with at least one pass")
        XCTAssertEqual(try XCTUnwrap(t.stability), (1.0 + 2.0 / 3 + 1.0 / 3) / 3, accuracy: 1e-9)
        XCTAssertEqual(summary.shownFigureNames.suffix(2), ["pass@3", "stability"])
        let figures = summary.figures("")
        XCTAssertEqual(figures[figures.count - 2], "67% (20/30)")
        XCTAssertEqual(figures.last, "67%")
        // Every send is its own line, numbered; a rerun sends nothing and counts the file's lines.
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONValue.parse(String($0)) }
        XCTAssertEqual(Set(lines.compactMap { $0["repeat"]?.intValue }), [1, 2, 3])
        let again = try await run(eval, s, c, out: out)
        XCTAssertEqual(server.requests.count, 90)
        XCTAssertEqual(again.skipped, 90)
        XCTAssertEqual(again.totals[""]?.passAtN, 20)
        XCTAssertEqual(again.totals[""]?.passed, 50)
    }

    func testPromptfooShapesAreReadAndWhatIsNotRunIsNoted() throws {
        let path = dir + "/promptfooconfig.yaml"
        try """
        description: capitals
        prompts:
          - "What is the capital of {{country}}?"
        providers:
          - openai:gpt-4o-mini
          - id: anthropic:messages:claude-sonnet-4-5
            label: claude
            config: {temperature: 0, apiKey: sk-nope}
        defaultTest:
          assert:
            - type: icontains
              value: "{{expected}}"
            - type: latency
              threshold: 5000
        tests:
          - vars: {country: France, expected: Paris}
            assert:
              - type: javascript
                value: output.length < 100
          - vars: {country: Japan, expected: Tokyo}
        sharing: false
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let eval = try EvalFile.load(path)
        XCTAssertEqual(eval.providers.map(\.label), ["openai:gpt-4o-mini", "claude"])
        XCTAssertEqual(eval.providers[1].provider, .anthropic)
        XCTAssertEqual(eval.providers[1].options["temperature"], 0)
        XCTAssertEqual(eval.tests[0].assertions.map(\.summary), ["icontains \"{{expected}}\"", "latency \"5\""])
        XCTAssertEqual(eval.ignored.count, 3, "\(eval.ignored)")
        XCTAssertTrue(eval.ignored.contains { $0.contains("javascript") })
        let s = Session(provider: .openAI, model: "m")
        let v = try eval.variants(session: s)
        XCTAssertEqual(v.map(\.label), ["openai:gpt-4o-mini", "claude"])
        XCTAssertEqual(v.map(\.provider), [.openAI, .anthropic])
        // A garbled file is one line naming what is wrong.
        for (text, says) in [
            ("prompts: [a]\n", "tests is missing"),
            ("prompts: [a]\ntests: [{vars: {x: 1}}]\nthreshold: 3\n", "threshold"),
            ("prompts: [a]\nproviders: [ollama:llama3]\ntests: [{}]\n", "ollama:llama3 is not a provider"),
            ("prompts: [a]\ntests: [{assert: [{type: nope}]}]\n", "nope is not an assertion type"),
            ("promps: [a]\n", "promps is not an eval file key"),
        ] {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try EvalFile.load(path)) { e in
                XCTAssertTrue("\(e)".contains(says), "\(e)")
                XCTAssertFalse("\(e)".contains("\n"))
            }
        }
    }
}

/// How many times each prompt has arrived.
final class Counts: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    func next(_ key: String) -> Int {
        lock.withLock {
            defer { counts[key, default: 0] += 1 }
            return counts[key, default: 0]
        }
    }
}
