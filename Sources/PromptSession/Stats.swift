import Foundation

/// What one turn cost: its recorded figures, how it ended, and what the session made of it.
public struct TurnMetrics: Sendable, Equatable {
    public var figures: TranscriptEvent.Figures
    public var failed: Bool
    public var cancelled: Bool
    /// Ways the function-call arguments broke the FunctionSpec's schema.
    public var schemaViolations: Int = 0
    /// USD, when the model's price and the usage are known.
    public var cost: Double?
    /// This request only carried tool results back: it belongs to the turn before it.
    public var continuesTurn = false
    /// Of the output tokens, those spent reasoning; of the input, those read from a cache.
    public var reasoningTokens: Int?
    public var cachedInputTokens: Int?

    public init(_ figures: TranscriptEvent.Figures, failed: Bool = false, cancelled: Bool = false) {
        self.figures = figures
        self.failed = failed
        self.cancelled = cancelled
    }

    public var latency: Double? { figures.requestTime }
    public var timeToFirstToken: Double? { figures.timeToFirstToken }
    public var inputTokens: Int? { figures.inputTokens }
    public var outputTokens: Int? { figures.outputTokens }
    /// Retries taken (requests sent = retries + 1).
    public var retries: Int { figures.retries }
}

/// Totals for `:stats`. Unknown usage stays unknown: a turn whose server sent no usage is
/// counted as such, never as 0 tokens.
public struct SessionStats: Sendable, Equatable {
    public private(set) var turns: [TurnMetrics] = []

    public init() {}

    public mutating func record(_ m: TurnMetrics) { turns.append(m) }

    /// Turns (a prompt and the tool round it started count once); ``requests`` counts each request.
    public var turnCount: Int { turns.filter { !$0.continuesTurn }.count }
    // Every sum saturates: figures come from servers and files, and no figure may trap.
    public var requests: Int { turns.reduce(0) { $0.adding($1.retries.adding(1)) } }
    public var retries: Int { turns.reduce(0) { $0.adding($1.retries) } }
    public var errors: Int { turns.filter { $0.failed }.count }
    public var cancelled: Int { turns.filter { $0.cancelled }.count }
    public var schemaViolations: Int { turns.reduce(0) { $0.adding($1.schemaViolations) } }

    /// Sum of the known values (failed and cancelled turns included: the server billed what it
    /// reported) and how many completed turns had none.
    func tokenSum(_ key: KeyPath<TurnMetrics, Int?>) -> (sum: Int, unknown: Int) {
        var sum = 0
        var unknown = 0
        for t in turns {
            if let v = t[keyPath: key] {
                sum = sum.adding(v)
            } else if !t.failed && !t.cancelled {
                unknown += 1
            }
        }
        return (sum, unknown)
    }

    public var inputTokens: (sum: Int, unknown: Int) { tokenSum(\.inputTokens) }
    public var outputTokens: (sum: Int, unknown: Int) { tokenSum(\.outputTokens) }

    var latencies: [Double] { turns.compactMap { $0.failed || $0.cancelled ? nil : $0.latency } }

    /// The nearest-rank percentile of `values` (p in 0...100).
    static func percentile(_ values: [Double], _ p: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let s = values.sorted()
        let rank = Int((p / 100 * Double(s.count)).rounded(.up))
        return s[max(0, min(s.count - 1, rank - 1))]
    }

    /// The `:stats` table, one line per figure.
    public func report() -> String {
        var lines: [String] = []
        func tok(_ t: (sum: Int, unknown: Int)) -> String {
            if t.unknown == 0 { return "\(t.sum)" }
            if t.sum == 0 && t.unknown > 0 { return "unknown" }
            return "\(t.sum) + unknown (\(t.unknown) turn\(t.unknown == 1 ? "" : "s") without usage)"
        }
        let inp = inputTokens
        let out = outputTokens
        let lat = latencies
        let ttfts = turns.compactMap { $0.failed || $0.cancelled ? nil : $0.timeToFirstToken }
        lines.append("session")
        lines.append(
            "  turns \(turnCount)   requests \(requests)   retries "
                + "\(retries)   errors \(errors)   cancelled \(cancelled)"
        )
        let both = inp.sum.adding(out.sum)
        let total: String =
            (inp.unknown == 0 && out.unknown == 0) ? "\(both)" : (both > 0 ? "\(both) + unknown" : "unknown")
        lines.append("  tokens in \(tok(inp))   out \(tok(out))   total \(total)")
        let reasoning = turns.compactMap(\.reasoningTokens).reduce(0) { $0.adding($1) }
        let cached = turns.compactMap(\.cachedInputTokens).reduce(0) { $0.adding($1) }
        if reasoning > 0 || cached > 0 {
            lines.append("  of which reasoning \(reasoning) (output)   cached \(cached) (input)")
        }
        if lat.isEmpty {
            lines.append("  latency –")
        } else {
            let mean = lat.reduce(0, +) / Double(lat.count)
            lines.append(
                "  latency total \(s(lat.reduce(0, +)))   mean \(s(mean))   p50 "
                    + "\(s(Self.percentile(lat, 50)!))   p95 \(s(Self.percentile(lat, 95)!))   max \(s(lat.max()!))"
            )
        }
        lines.append(
            "  time to first token mean " + (ttfts.isEmpty ? "–" : s(ttfts.reduce(0, +) / Double(ttfts.count))))
        lines.append("  output tokens/s " + rate(turns.filter { !$0.failed && !$0.cancelled }))
        lines.append(costLine)
        if schemaViolations > 0 {
            let n = turns.filter { $0.schemaViolations > 0 }.count
            lines.append("  schema violations \(schemaViolations) (in \(n) turn\(n == 1 ? "" : "s"))")
        }
        lines += lastTurnLines
        return lines.joined(separator: "\n")
    }

    /// The session's cost: known costs summed, and how many completed turns had none.
    var costLine: String {
        let done = turns.filter { !$0.failed && !$0.cancelled }
        let known = turns.compactMap(\.cost)
        let unknownCost = done.filter { $0.cost == nil }.count
        if done.isEmpty && known.isEmpty {
            return "  cost –"
        } else if known.isEmpty {
            return "  cost unknown (no price for the model, or no usage; prices: config.yaml)"
        } else {
            return
                ("  cost \(PriceTable.format(known.reduce(0, +)))"
                + (unknownCost > 0
                    ? " + unknown (\(unknownCost) turn\(unknownCost == 1 ? "" : "s") without a price or usage)"
                    : ""))
        }
    }

    /// The last turn's requests: its prompt's and those of the tool round it started.
    var lastTurn: [TurnMetrics] {
        guard let start = turns.lastIndex(where: { !$0.continuesTurn }) else { return Array(turns.suffix(1)) }
        return Array(turns[start...])
    }

    /// The last turn as one: its requests' figures summed (latency, tokens, retries, cost; time
    /// to first token is the first request's), failed or cancelled when its last request was.
    static func sum(_ requests: [TurnMetrics]) -> TurnMetrics? {
        guard var total = requests.first else { return nil }
        for r in requests.dropFirst() {
            total.figures.requestTime = add(total.figures.requestTime, r.figures.requestTime)
            total.figures.inputTokens = add(total.figures.inputTokens, r.figures.inputTokens)
            total.figures.outputTokens = add(total.figures.outputTokens, r.figures.outputTokens)
            total.figures.retries = total.figures.retries.adding(r.figures.retries)
            total.cost = add(total.cost, r.cost)
            total.schemaViolations = total.schemaViolations.adding(r.schemaViolations)
            (total.failed, total.cancelled) = (r.failed, r.cancelled)
        }
        return total
    }

    /// Known values summed; unknown when any is.
    static func add<T: Numeric & Comparable>(_ a: T?, _ b: T?) -> T? {
        guard let a, let b else { return nil }
        if let x = a as? Int, let y = b as? Int { return x.adding(y) as? T }
        return a + b
    }

    /// The last turn's figures.
    var lastTurnLines: [String] {
        var lines: [String] = []
        let requests = lastTurn
        lines.append("last turn" + (requests.count > 1 ? " (\(requests.count) requests: a tool round)" : ""))
        if let last = Self.sum(requests) {
            var status = "ok"
            if last.failed { status = "failed" }
            if last.cancelled { status = "cancelled" }
            lines.append(
                "  \(status)   latency \(last.latency.map(s) ?? "–")   ttft "
                    + "\(last.timeToFirstToken.map(s) ?? "–")   retries \(last.retries)"
            )
            lines.append(
                "  tokens in \(last.inputTokens.map(String.init) ?? "unknown")   out "
                    + "\(last.outputTokens.map(String.init) ?? "unknown")   output "
                    + "tokens/s \(rate([last]))   cost \(PriceTable.format(last.cost))"
            )
        } else {
            lines.append("  –")
        }
        return lines
    }

    /// Output tokens per second of generation (latency minus time to first token when streamed).
    func rate(_ ts: [TurnMetrics]) -> String {
        var tokens = 0
        var seconds = 0.0
        for t in ts {
            guard let o = t.outputTokens, let l = t.latency else { continue }
            tokens = tokens.adding(o)
            seconds += max(0.000_001, l - (t.timeToFirstToken ?? 0))
        }
        guard seconds > 0, tokens > 0 else { return "unknown" }
        return String(format: "%.1f", Double(tokens) / seconds)
    }

    func s(_ v: Double) -> String { v < 10 ? String(format: "%.2f s", v) : String(format: "%.1f s", v) }
}

extension Int {
    /// `self + other`, pinned at `Int.max` / `Int.min` instead of trapping.
    func adding(_ other: Int) -> Int {
        let (r, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : r
    }
}
