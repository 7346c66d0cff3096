import PromptSession
import QueryCore

/// Shorthands for tests: a turn's record made from its outcome and given to the session, as
/// the REPL does.
extension Session {
    func recordSuccess(prompt: String, result: QueryResult) {
        record(TranscriptEvent.Turn(prompt: prompt, outcome: .success(result)))
    }

    func recordFailure(
        prompt: String = "", retries: Int, latency: Double?, cancelled: Bool, inputTokens: Int? = nil,
        outputTokens: Int? = nil
    ) {
        let outcome: TranscriptEvent.TurnOutcome =
            cancelled
            ? .cancelled(retries: retries, latency: latency, inputTokens: inputTokens, outputTokens: outputTokens)
            : .failure(
                message: "failed", retries: retries, latency: latency, inputTokens: inputTokens,
                outputTokens: outputTokens)
        record(TranscriptEvent.Turn(prompt: prompt, outcome: outcome))
    }
}
