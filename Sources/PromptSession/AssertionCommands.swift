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

    /// The session's assertions checked against a turn's output, nil when there are none.
    /// The `tools` and schemas are the session's (those the turn was sent with).
    public func assertionResult(
        for output: TranscriptEvent.Output, finishReason: String?, cost: Double?, latency: Double?,
        vars extra: [String: String] = [:], extraAssertions: [Assertion] = []
    ) -> AssertionResult? {
        let all = assertions + extraAssertions
        guard !all.isEmpty else { return nil }
        let input = AssertionInput(
            output: output, finishReason: finishReason, cost: cost, latency: latency, functionSpec: functionSpec,
            tools: toolbox.tools, schema: toolbox.schema, vars: vars.merging(extra) { _, r in r })
        return Assertion.evaluate(all, threshold: assertThreshold, input: input)
    }
}
