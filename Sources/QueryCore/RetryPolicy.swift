import Foundation

/// When and how long to wait before sending a failed request again.
///
/// Defaults follow the OpenAI SDK's contract, with bounds AIDE lacked: at most `maxAttempts`
/// attempts and at most `maxTotalWait` seconds spent waiting in all. The delay before retry n
/// (n = 1, 2, …) is `min(baseDelay · 2^(n-1), maxDelay) · (1 − jitter · random)`; a server's
/// `retry-after-ms` / `retry-after` (seconds or HTTP date) is used instead when it is in
/// `[0, maxRetryAfter]` (0, or a date past, is now); `x-should-retry: true|false` overrides the status-based decision.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first included (6 = up to 5 retries).
    public var maxAttempts: Int
    public var baseDelay: Double
    public var maxDelay: Double
    /// Fraction of the delay removed at random (0.25: the delay is 75–100 % of the nominal one).
    public var jitter: Double
    /// Longest server-requested wait that is honoured; longer ones fall back to backoff.
    public var maxRetryAfter: Double
    /// Total seconds of waiting after which no more retries start.
    public var maxTotalWait: Double

    public init(
        maxAttempts: Int = 6, baseDelay: Double = 0.5, maxDelay: Double = 8, jitter: Double = 0.25,
        maxRetryAfter: Double = 60, maxTotalWait: Double = 90
    ) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
        self.maxRetryAfter = maxRetryAfter
        self.maxTotalWait = maxTotalWait
    }

    /// No retries at all.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The backoff delay before retry number `retry` (1-based), with `random` in [0, 1).
    public func backoff(retry: Int, random: Double) -> Double {
        let nominal = min(baseDelay * pow(2, Double(retry - 1)), maxDelay)
        return nominal * (1 - jitter * random)
    }

    /// The wait a server asked for in its headers, if it is one to honour.
    /// - Parameter now: the current wall-clock time, for an HTTP-date `retry-after`.
    public func serverDelay(headers: HTTPHeaderFields, now: Date) -> Double? {
        var seconds: Double?
        if let ms = headers["retry-after-ms"].flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) {
            seconds = ms / 1000
        } else if let ra = headers["retry-after"]?.trimmingCharacters(in: .whitespaces) {
            if let s = Double(ra) {
                seconds = s
            } else if let date = RetryPolicy.parseHTTPDate(ra) {
                seconds = date.timeIntervalSince(now)
            }
        }
        // 0 (or a date already past) means now: the server's word, not a reason to back off.
        guard let s = seconds, s.isFinite, s <= maxRetryAfter else { return nil }
        return max(0, s)
    }

    /// Whether the response's headers and status say to retry.
    public func shouldRetry(status: Int, headers: HTTPHeaderFields) -> Bool {
        switch headers["x-should-retry"]?.lowercased() {
        case "true": return true
        case "false": return false
        default: return Self.isRetryable(status: status)
        }
    }

    /// The OpenAI SDK's retryable statuses: 408, 409, 429 and every 5xx. The one place that list lives.
    public static func isRetryable(status: Int) -> Bool {
        status == 408 || status == 409 || status == 429 || status >= 500
    }

    static func parseHTTPDate(_ s: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            f.dateFormat = format
            if let d = f.date(from: s) { return d }
        }
        return nil
    }
}

/// The seam for time: the core measures durations and waits through this, so tests can run
/// backoff instantly and check every wait.
public protocol QueryClock: Sendable {
    /// Monotonic seconds.
    func now() -> Double
    /// Wall-clock time, for HTTP-date `retry-after`.
    func wallNow() -> Date
    /// Waits `seconds`; throws `CancellationError` when the task is cancelled.
    func sleep(seconds: Double) async throws
    /// A number in [0, 1) for jitter.
    func random() -> Double
}

/// The real clock.
public struct SystemClock: QueryClock {
    public init() {}
    public func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
    public func wallNow() -> Date { Date() }
    public func sleep(seconds: Double) async throws {
        try await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9))
    }
    public func random() -> Double { Double.random(in: 0..<1) }
}
