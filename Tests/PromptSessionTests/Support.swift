import PromptSession
import QueryCore
import XCTest

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

extension Transcript {
    /// The transcript saved to `path`, loaded back (failing the test when an event was lost) and
    /// replayed into a new session of `model`: what `--resume` does in another process.
    func reloaded(at path: String, model: String) throws -> Session {
        try TranscriptStore.save(self, to: path, force: true)
        let loaded = try TranscriptStore.load(path)
        XCTAssertEqual(loaded.events, events)
        let session = Session(provider: .openAI, model: model)
        try loaded.restore(into: session)
        return session
    }
}
