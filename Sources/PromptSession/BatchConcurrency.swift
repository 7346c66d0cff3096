import Foundation
import QueryCore

/// A batch run's concurrency, adapted to the server's rate limits: at most ``limit`` attempts in
/// flight, ``limit`` halved on a 429 and grown back by one with each success, up to the
/// `--concurrency` asked for. Only one 429 per round halves it: a 429 answered to a request sent
/// before the last decrease is the same overload, already answered. A request waiting to be sent
/// again holds no place, and goes first when it is. A 429 that names a wait (`retry-after`,
/// `retry-after-ms`) holds back every new attempt that long, and no longer; 0 is now.
public actor BatchConcurrency: AttemptGate {
    /// The concurrency asked for: ``limit`` never grows past it.
    public let maximum: Int
    /// Attempts that may be in flight now.
    public private(set) var limit: Int
    /// The lowest ``limit`` has been.
    public private(set) var lowest: Int
    /// 429s seen.
    public private(set) var rateLimited = 0
    /// 429s that named a wait longer than 0, which every new attempt then waited out.
    public private(set) var pauses = 0
    private var inFlight = 0
    /// Bumped at each decrease; a ticket carries the round it was let in.
    private var round = 0
    private var pausedUntil = 0.0
    private var wakeUp: Task<Void, Never>?
    private var waiting: [Waiter] = []
    private var nextWaiter = 0
    private let clock: any QueryClock

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<AttemptTicket, Error>
    }

    public init(maximum: Int, clock: any QueryClock = SystemClock()) {
        self.maximum = max(1, maximum)
        self.limit = max(1, maximum)
        self.lowest = max(1, maximum)
        self.clock = clock
    }

    public func enter(retry: Bool) async throws -> AttemptTicket {
        try Task.checkCancellation()
        if waiting.isEmpty && canAdmit() { return admit() }
        let id = nextWaiter
        nextWaiter += 1
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { c in
                let w = Waiter(id: id, continuation: c)
                if retry { waiting.insert(w, at: 0) } else { waiting.append(w) }
                admitWaiting()  // or set the timer that ends a pause
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    public func leave(_ ticket: AttemptTicket, _ outcome: AttemptOutcome) {
        inFlight -= 1
        switch outcome {
        case .succeeded:
            limit = min(maximum, limit + 1)
        case .rateLimited(let retryAfter):
            rateLimited += 1
            if ticket.round == round {
                limit = max(1, limit / 2)
                lowest = min(lowest, limit)
                round += 1
            }
            if let wait = retryAfter, wait > 0 {
                pauses += 1
                pausedUntil = max(pausedUntil, clock.now() + wait)
            }
        case .failed, .cancelled:
            break
        }
        admitWaiting()
    }

    private func canAdmit() -> Bool { inFlight < limit && clock.now() >= pausedUntil }

    private func admit() -> AttemptTicket {
        inFlight += 1
        return AttemptTicket(round: round)
    }

    private func admitWaiting() {
        while !waiting.isEmpty && canAdmit() {
            waiting.removeFirst().continuation.resume(returning: admit())
        }
        let pause = pausedUntil - clock.now()
        if !waiting.isEmpty, pause > 0, wakeUp == nil {
            // Nothing else may come to let the waiting in when the pause ends: a timer does.
            wakeUp = Task {
                try? await clock.sleep(seconds: pause)
                self.wokeUp()
            }
        }
    }

    private func wokeUp() {
        wakeUp = nil
        admitWaiting()
    }

    private func cancelWaiter(_ id: Int) {
        guard let i = waiting.firstIndex(where: { $0.id == id }) else { return }
        waiting.remove(at: i).continuation.resume(throwing: CancellationError())
    }
}
