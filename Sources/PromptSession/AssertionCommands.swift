import Foundation
import QueryCore

extension Session {
    /// Carries out `:assert …` and `:asserts`.
    func applyAssertion(_ command: Command) throws -> String {
        switch command {
        case .addAssertion(let a):
            assertions.append(a)
            return "assertion \(assertions.count): \(a.summary) (checked after every turn; :asserts lists them)"
        case .removeAssertion(let n?):
            guard n <= assertions.count else {
                throw SessionError(
                    "no assertion \(n); there \(assertions.count == 1 ? "is" : "are") \(assertions.count) (:asserts lists them)"
                )
            }
            let a = assertions.remove(at: n - 1)
            return "assertion \(n) removed: \(a.summary)"
        case .removeAssertion(nil):
            let n = assertions.count
            assertions.removeAll()
            return "\(counted(n, "assertion")) removed"
        case .assertThreshold(let t):
            assertThreshold = t
            return t.map { "a turn passes when its weighted score is at least \(Assertion.number($0))" }
                ?? "a turn passes when every assertion passes"
        default:
            guard !assertions.isEmpty else {
                return "no assertions (:assert contains Paris adds one; :help assert lists the types)"
            }
            let lines = assertions.enumerated().map { "  \($0 + 1). \($1.summary)" }
            let rule = assertThreshold.map { "pass: weighted score ≥ \(Assertion.number($0))" } ?? "pass: all of them"
            return (lines + ["  \(rule)"]).joined(separator: "\n")
        }
    }

    /// `:grader`: shows, sets or clears the grader's model and provider.
    func applyGrader(_ words: String?) throws -> String {
        guard let words else {
            guard let m = graderModel else {
                return "grader: the session's own model (\(model), \(provider.rawValue)); :grader MODEL sets another"
            }
            return "grader: \(m) (\((graderProvider ?? Provider.forModel(m)).rawValue))"
        }
        if words == "off" {
            (graderModel, graderProvider) = (nil, nil)
            return "grader: the session's own model (\(model), \(provider.rawValue))"
        }
        var parts = words.split(separator: " ").map(String.init)
        var chosen: Provider?
        if let i = parts.firstIndex(where: { $0.hasPrefix("provider=") }) {
            let name = String(parts.remove(at: i).dropFirst("provider=".count))
            guard let p = Provider(rawValue: name.lowercased()) else {
                throw SessionError("provider must be openai, openai-responses or anthropic, not \(name.oneLine)")
            }
            chosen = p
        }
        guard parts.count == 1, !parts[0].contains("=") else {
            throw SessionError(
                ":grader takes a model and an optional provider=P (e.g. :grader gpt-4o provider=openai), or off")
        }
        (graderModel, graderProvider) = (parts[0], chosen)
        return
            "grader: \(parts[0]) (\((chosen ?? Provider.forModel(parts[0])).rawValue)) grades llm-rubric, factuality and answer-relevance"
    }

    /// The session's assertions checked against a turn's output, nil when there are none.
    /// The `tools` and schemas are the session's (those the turn was sent with).
    public func assertionResult(
        for output: TranscriptEvent.Output, finishReason: String?, cost: Double?, latency: Double?,
        vars extra: [String: String] = [:], extraAssertions: [Assertion] = [], prompt: String = "",
        grades: Grades = Grades(), threshold: Double? = nil
    ) -> AssertionResult? {
        let all = assertions + extraAssertions
        guard !all.isEmpty else { return nil }
        var input = AssertionInput(
            output: output, finishReason: finishReason, cost: cost, latency: latency, functionSpec: functionSpec,
            tools: toolbox.tools, schema: toolbox.schema, vars: vars.merging(extra) { _, r in r }, prompt: prompt)
        input.grades = grades
        return Assertion.evaluate(all, threshold: threshold ?? assertThreshold, input: input)
    }
}
