import Foundation
import QueryCore

/// Shows one turn as it happens: a spinner until the first byte, streamed text, the forced
/// function's name and arguments, retry notices, then a dim status line.
final class TurnRenderer: @unchecked Sendable {
    private let out: Output
    private let lock = NSLock()
    private var sanitizer = TerminalSanitizer()
    private var spinnerText: String?
    private var spinnerTask: Task<Void, Never>?
    private var argumentBytes = 0
    private var functionName: String?
    private(set) var sawText = false

    init(out: Output) { self.out = out }

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
            guard let t = spinnerText, out.atLineStart else { return }
            out.write("\r\(frame) \(out.color ? "\u{1B}[2m\(t)\u{1B}[0m" : t)\u{1B}[K\r", transient: true)
            // The spinner line is erased before anything real is written; the cursor stays at column 0.
        }
    }

    /// Erases the spinner line (caller holds the lock).
    private func clearSpinnerLocked() {
        if spinnerText != nil && out.isTTY { out.write("\r\u{1B}[K", transient: true) }
    }

    func handle(_ event: QueryEvent) {
        lock.withLock {
            switch event {
            case .text(let t):
                clearSpinnerLocked()
                spinnerText = nil
                sawText = true
                out.write(out.isTTY ? sanitizer.clean(t) : t)
            case .functionArguments(_, let name, let fragment):
                if let name {
                    clearSpinnerLocked()
                    functionName = name
                    out.line(out.bold("→ \(name)") + "(…)")
                }
                argumentBytes += fragment.utf8.count
                if spinnerText != nil || name != nil { spinnerText = "receiving arguments (\(argumentBytes) bytes)" }
            case .retrying(let n):
                clearSpinnerLocked()
                out.dim(String(format: "retrying in %.1f s (%@, attempt %d/%d)", n.delay, n.reason, n.attempt, n.maxAttempts))
                if out.isTTY { spinnerText = "waiting to retry" }
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
        switch result.output {
        case .text(let t):
            if !sawText && !t.isEmpty { out.write(out.isTTY ? sanitizer.clean(t) : t) }
            out.finishLine()
        case .functionCall(let call):
            if functionName == nil { out.line(out.bold("→ \(call.name)")) }
            let pretty = call.arguments.serialized(pretty: true)
            out.line(out.isTTY ? sanitizer.clean(pretty) : pretty)
        }
        for note in result.info.notes { out.dim("note: \(note)") }
    }

    /// The dim one-line summary after a turn.
    static func statusLine(_ r: QueryResult, model: String) -> String {
        var parts = [r.info.model ?? model, String(format: "%.2f s", r.requestTime)]
        if let t = r.timeToFirstToken { parts.append(String(format: "ttft %.2f s", t)) }
        let tin = r.inputTokens.map(String.init) ?? "?"
        let tout = r.outputTokens.map(String.init) ?? "?"
        parts.append("tokens \(tin) in / \(tout) out")
        parts.append("\(r.retries) \(r.retries == 1 ? "retry" : "retries")")
        if let f = r.info.forcedCall { parts.append("forced via \(f.rawValue)") }
        if let f = r.info.finishReason, f != "stop", f != "end_turn", f != "tool_calls", f != "tool_use" { parts.append("finish: \(f)") }
        return parts.joined(separator: " · ")
    }
}
