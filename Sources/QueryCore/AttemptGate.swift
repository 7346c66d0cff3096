/// Decides when each attempt of a call may be sent, and learns how it went: the seam through
/// which a caller sending many requests at once (a batch) holds them to a concurrency that adapts
/// to the server's rate limits.
///
/// ``QueryClient`` enters the gate before every attempt and leaves it as soon as the attempt's
/// HTTP exchange is over, before any wait for a retry: a request waiting to be sent again holds
/// no place. Every ``enter(retry:)`` that returns is followed by exactly one ``leave(_:_:)``.
public protocol AttemptGate: Sendable {
    /// Waits until an attempt may be sent. `retry`: the call already made an attempt (a gate may
    /// let it go first). Returns a ticket to give back to ``leave(_:_:)``.
    /// - Throws: `CancellationError` when the waiting task is cancelled.
    func enter(retry: Bool) async throws -> AttemptTicket
    /// The attempt entered with `ticket` is over, with `outcome`.
    func leave(_ ticket: AttemptTicket, _ outcome: AttemptOutcome) async
}

/// What ``AttemptGate/enter(retry:)`` hands out: which round of the gate's decisions the attempt
/// started in, so a gate can tell a 429 answered to a request sent before it last slowed down
/// from one sent after.
public struct AttemptTicket: Sendable, Equatable {
    public var round: Int
    public init(round: Int) { self.round = round }
}

/// How an attempt's HTTP exchange ended, as a gate sees it.
public enum AttemptOutcome: Sendable, Equatable {
    /// A response came (whatever its content).
    case succeeded
    /// A 429. `retryAfter`: the wait the server asked for (`retry-after-ms` / `retry-after`),
    /// if it named one.
    case rateLimited(retryAfter: Double?)
    /// Any other failure: an error status, a connection that failed or dropped, a timeout.
    case failed
    /// The calling task was cancelled.
    case cancelled
}
