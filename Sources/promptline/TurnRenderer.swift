import Foundation
import QueryCore
import Terminal

/// Shows one turn as it happens: a spinner until the first byte (with the time waited and the
/// turn's limit), streamed text, the forced function's name and arguments, retry notices, then
/// a dim status line. All of it goes through ``Output``, which sanitises.
final class TurnRenderer: @unchecked Sendable {
    private let out: Output
    private let lock = NSLock()
    /// The turn's time limit (--turn-timeout), shown while waiting.
    private let turnLimit: Double?
    private let started = Date()
    private var spinnerText: String?
    private var spinnerTask: Task<Void, Never>?
    /// When the last retry's wait ends, and which attempt it starts.
    private var retry: (Date, String)?
    private var argumentBytes = 0
    private var functionName: String?
    private(set) var sawText = false

    /// Whether a function call's name is shown as it starts streaming (a forced `:func` call);
    /// tool calls are shown whole once the reply is complete, with their checks.
    private let showsCalls: Bool
    /// Structured output: the JSON is shown pretty-printed once complete, not as it streams.
    private let structured: Bool
    private var receivedBytes = 0

    /// Whether the model's reasoning is shown (dimmed, before the answer) or only counted.
    private let showsReasoning: Bool
    private var sawReasoning = false
    private var reasoningBytes = 0
    /// Renders the reply's Markdown on a terminal (`:set-view markdown`); nil: text as sent.
    private var markdown: MarkdownRenderer?

    init(
        out: Output, turnLimit: Double? = nil, showsCalls: Bool = true, structured: Bool = false,
        showsReasoning: Bool = true, markdown: Bool = false
    ) {
        self.out = out
        self.turnLimit = turnLimit
        self.showsCalls = showsCalls
        self.structured = structured
        self.showsReasoning = showsReasoning
        if markdown && out.isTTY {
            self.markdown = MarkdownRenderer(width: out.columns, color: out.color, hyperlinks: out.hyperlinks)
        }
    }

    /// The reply's text: rendered, or as sent.
    private func writeText(_ t: String) {
        if let r = markdown?.feed(t) { out.write(r) } else { out.write(t) }
    }

    /// Writes what the Markdown renderer still holds (a last line, a table, an open fence's frame).
    func finishText() {
        lock.withLock {
            if let r = markdown?.finish() { out.write(r) }
        }
    }

    /// Starts the "waiting" spinner (TTY only).
    func start() {
        guard out.isTTY else { return }
        setSpinner("waiting for the first token")
        spinnerTask = Task { [weak self] in
            let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
            var i = 0
            while !Task.isCancelled {
                self?.drawSpinner(frames[i % frames.count])
                i += 1
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
        }
    }

    private func setSpinner(_ text: String?) {
        lock.withLock { spinnerText = text }
    }

    private func drawSpinner(_ frame: String) {
        lock.withLock {
            guard var t = spinnerText else { return }
            if let (at, attempt) = retry, Date() >= at {
                // The wait is over: the request is out again, connecting or waiting for its answer.
                t = "sent again (\(attempt)), waiting for the server"
            }
            // The spinner line is erased before anything real is written; the cursor stays at column 0.
            out.drawSpinner(frame: frame, text: t + waited())
        }
    }

    /// " · 12 s of 300 s" once a wait is long enough to wonder about.
    private func waited() -> String {
        let s = Int(Date().timeIntervalSince(started))
        guard s >= 1 else { return "" }
        return " · \(s) s" + (turnLimit.map { " of \(Int($0.rounded())) s (--turn-timeout)" } ?? "")
    }

    /// Erases the spinner line (caller holds the lock).
    private func clearSpinnerLocked() {
        if spinnerText != nil { out.eraseSpinner() }
    }

    func handle(_ event: QueryEvent) {
        lock.withLock {
            if case .retrying = event {} else { retry = nil }  // the answer is coming: no longer waiting
            switch event {
            case .reasoning(let t) where !showsReasoning:
                reasoningBytes += t.utf8.count
                if out.isTTY {
                    spinnerText = "reasoning (\(counted(reasoningBytes, "byte")), hidden: :set-view reasoning on)"
                }
            case .reasoning(let t):
                clearSpinnerLocked()
                spinnerText = nil
                sawReasoning = true
                out.write(dim: t)
            case .text(let t) where structured:
                receivedBytes += t.utf8.count
                if out.isTTY { spinnerText = "receiving JSON (\(counted(receivedBytes, "byte")))" }
            case .functionArguments(_, _, let fragment) where !showsCalls:
                receivedBytes += fragment.utf8.count
                if out.isTTY { spinnerText = "receiving tool calls (\(counted(receivedBytes, "byte")))" }
            case .text(let t):
                clearSpinnerLocked()
                spinnerText = nil
                if sawReasoning && !sawText {
                    out.finishLine()  // the answer starts on a line of its own, after the reasoning
                }
                sawText = true
                writeText(t)
            case .functionArguments(_, let name, let fragment):
                if let name {
                    clearSpinnerLocked()
                    functionName = name
                    out.line("\(bold: "→ \(name)")(…)")
                }
                argumentBytes += fragment.utf8.count
                if spinnerText != nil || name != nil {
                    spinnerText = "receiving arguments (\(counted(argumentBytes, "byte")))"
                }
            case .retrying(let n):
                clearSpinnerLocked()
                out.dim(
                    "\(String(format: "retrying in %.1f s", n.delay)) (\(n.reason), attempt \(n.attempt)/\(n.maxAttempts))"
                )
                if out.isTTY {
                    spinnerText = "waiting to retry (\(n.reason))"
                    retry = (Date().addingTimeInterval(n.delay), "attempt \(n.attempt)/\(n.maxAttempts)")
                }
            case .completed, .usage:
                break
            }
        }
    }

    /// Stops the spinner and erases it.
    func stop() {
        spinnerTask?.cancel()
        lock.withLock {
            clearSpinnerLocked()
            spinnerText = nil
        }
    }

    /// Prints the final output of a function call (text was already streamed).
    func showResult(_ result: QueryResult) {
        if let r = result.info.reasoning, showsReasoning, !sawReasoning, !r.isEmpty {
            out.write(dim: r)  // not streamed: shown whole, before the answer
            out.finishLine()
        }
        switch result.output {
        case .text(let t):
            // Structured output is shown by the REPL, pretty-printed, once checked.
            if !sawText && !t.isEmpty && !structured { lock.withLock { writeText(t) } }
            finishText()
            out.finishLine()
        case .toolCalls(_, let text):
            // The calls are shown by the REPL with their checks; text beside them, here.
            if !sawText && !text.isEmpty { lock.withLock { writeText(text) } }
            finishText()
            out.finishLine()
        case .functionCall(let call):
            if functionName == nil { out.line("\(bold: "→ \(call.name)")") }
            out.line(block: call.arguments.serialized(pretty: true))
        }
        for note in result.info.notes { out.dim("note: \(note)") }
    }

    /// "tokens 12 in / 5 out", with "?" for a count the server did not send.
    static func tokens(_ input: Int?, _ output: Int?) -> String {
        "tokens \(input.map(String.init) ?? "?") in / \(output.map(String.init) ?? "?") out"
    }

    /// The dim one-line summary after a turn.
    static func statusLine(_ r: QueryResult, model: String) -> String {
        statusFields(r, model: model).map(\.text).joined(separator: " · ")
    }

    /// The status line's fields, each with its priority for a narrow terminal (lower is kept
    /// first): model, latency, tokens and cost; then what went unusually (finish reason); then
    /// ttft, retries and the forced-call strategy; then the reasoning and cached counts.
    static func statusFields(_ r: QueryResult, model: String) -> [(text: String, priority: Int)] {
        var parts: [(text: String, priority: Int)] = [
            (r.info.model ?? model, 0), (String(format: "%.2f s", r.requestTime), 0),
        ]
        if let t = r.timeToFirstToken { parts.append((String(format: "ttft %.2f s", t), 2)) }
        parts.append((tokens(r.inputTokens, r.outputTokens), 0))
        if let n = r.info.reasoningTokens, n > 0 { parts.append(("\(n) reasoning", 4)) }
        if let n = r.info.cachedInputTokens, n > 0 { parts.append(("\(n) cached", 4)) }
        parts.append(("\(r.retries) \(r.retries == 1 ? "retry" : "retries")", r.retries > 0 ? 1 : 2))
        if let f = r.info.forcedCall { parts.append(("forced via \(f.rawValue)", 3)) }
        if let f = r.info.finishReason, !["stop", "end_turn", "tool_calls", "tool_use", "completed"].contains(f) {
            parts.append(("finish: \(f)", 1))
        }
        return parts
    }
}
