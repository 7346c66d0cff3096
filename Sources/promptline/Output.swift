import CTerminal
import Foundation
import QueryCore
import Terminal

/// Where the REPL writes: stdout or stderr, with optional styling. The one place text reaches
/// the terminal, so it is also the one place text is made safe for it: every method runs what
/// it is given through ``TerminalSanitizer`` (escape sequences, C0/C1 controls, DEL and bidi
/// controls never get through), and colour is added here, after sanitising, never by callers.
/// Nothing outside this file can write raw bytes.
final class Output: @unchecked Sendable {
    let fd: Int32
    let isTTY: Bool
    let color: Bool
    private let lock = NSLock()
    /// Whether the cursor is at the start of a line (so status lines don't glue onto text).
    private(set) var atLineStart = true
    /// For streamed text: keeps its state between chunks, so a sequence split across deltas
    /// is removed too. Reset by any other output.
    private var streamSanitizer = TerminalSanitizer()
    /// The keys in use: whatever is written is redacted with them first, so a reply or a model
    /// name that echoes a key does not show it (a terminal's scrollback and CI logs are files too).
    var redactor: Redactor {
        get { lock.withLock { _redactor } }
        set { lock.withLock { _redactor = newValue } }
    }
    private var _redactor = Redactor.none

    init(fd: Int32 = STDOUT_FILENO, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.fd = fd
        isTTY = isatty(fd) == 1
        let noColor = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        color = isTTY && !noColor && environment["TERM"] != "dumb"
    }

    /// The terminal's width in columns, asked of the terminal each time (so a resize takes effect
    /// at the next layout); 80 when it does not say; nil when this output is not a terminal
    /// (piped output is not laid out).
    var width: Int? {
        guard isTTY else { return nil }
        for f in [fd, STDOUT_FILENO, STDERR_FILENO, STDIN_FILENO] {
            let w = ct_terminal_width(f)
            if w > 0 { return Int(w) }
        }
        return Layout.defaultWidth
    }

    /// Writes streamed, untrusted text (a model's reply) as it arrives; newlines and tabs kept.
    func write(_ s: String) {
        lock.withLock {
            let clean = streamSanitizer.clean(_redactor.redact(s))
            emitLocked(clean, transient: false)
        }
    }

    /// Writes a reply the Markdown renderer made: the model's text already sanitised by it, with
    /// its styling added after (``RenderedText`` comes from nowhere else).
    func write(_ r: RenderedText) {
        lock.withLock {
            streamSanitizer = TerminalSanitizer()
            emitLocked(r.text, transient: false)
        }
    }

    /// The terminal's columns now (80 when unknown).
    var columns: Int {
        let c = Int(ct_terminal_width(fd))
        return c > 0 ? c : 80
    }

    /// Whether links may be OSC 8 hyperlinks: with colour, and not inside tmux or screen (which
    /// may drop them, and the URL with them) or on the Linux console.
    var hyperlinks: Bool {
        let term = ProcessInfo.processInfo.environment["TERM"] ?? ""
        return color && !["screen", "tmux", "linux"].contains { term.hasPrefix($0) }
    }

    /// Writes streamed, untrusted text dimmed (a model's reasoning, apart from its answer).
    func write(dim s: String) {
        lock.withLock {
            let clean = streamSanitizer.clean(_redactor.redact(s))
            guard !clean.isEmpty else { return }
            emitLocked(color ? "\u{1B}[2m" + clean + "\u{1B}[0m" : clean, transient: false)
        }
    }

    /// Sets the terminal's clipboard (OSC 52) to `text`, base64-encoded: nothing of it reaches the
    /// screen. False when this output is not a terminal.
    func setClipboard(_ text: String) -> Bool {
        guard isTTY else { return false }
        lock.withLock { emitLocked("\u{1B}]52;c;" + Data(text.utf8).base64EncodedString() + "\u{07}", transient: true) }
        return true
    }

    /// A block the program composed, which may span several lines (help, :stats, :request,
    /// JSON). Sanitised all the same: it may quote untrusted text.
    func line(block s: String) { line(TerminalText(multiline: s)) }

    /// A line: literal parts as written, each interpolated value sanitised and kept on one line.
    func line(_ t: TerminalText) {
        lock.withLock {
            streamSanitizer = TerminalSanitizer()
            emitLocked((atLineStart ? "" : "\n") + renderLocked(t) + "\n", transient: false)
        }
    }

    /// A dim line (status, hints), always one line; plain when colour is off.
    func dim(_ t: TerminalText) {
        line(TerminalText(runs: t.runs.map { TerminalText.Run(text: $0.text, style: .dim, multiline: false) }))
    }

    /// A dim note the program composed, folded to the terminal's width between its fields
    /// (``Layout/fold(_:width:hanging:)``), each line dim; one line when piped.
    func dim(folding text: String) {
        for l in width.map({ Layout.fold(text, width: $0, hanging: 2) }) ?? [text] { dim("\(l)") }
    }

    /// An error: one line (newlines in a server's message are folded), with a red `error:` when
    /// colour is on. On a terminal narrower than the message it is folded between words with a
    /// hanging indent, after it was redacted and sanitised (a key is never split before it is
    /// redacted); piped, always exactly one line.
    func error(_ t: TerminalText) {
        let runs = t.runs.map { TerminalText.Run(text: $0.text, style: $0.style, multiline: false) }
        guard let width, t.runs.allSatisfy({ $0.style == .plain }) else {
            line(
                TerminalText(
                    runs: [
                        .init(text: "error:", style: .red, multiline: false),
                        .init(text: " ", style: .plain, multiline: false),
                    ] + runs))
            return
        }
        // Plain runs render to their redacted, sanitised text (no styling codes).
        let text = render(TerminalText(runs: runs))
        let lines = Layout.fold("error: " + text, width: width, hanging: 2)
        for (i, l) in lines.enumerated() {
            let body = i == 0 ? String(l.dropFirst("error:".count)) : l
            line(
                TerminalText(
                    runs: (i == 0 ? [.init(text: "error:", style: .red, multiline: false)] : []) + [
                        .init(text: body, style: .plain, multiline: false)
                    ]))
        }
    }

    /// Ends the current line if something was written on it.
    func finishLine() {
        lock.withLock { if !atLineStart { emitLocked("\n", transient: false) } }
    }

    /// Sanitised text with this output's styling, for a terminal string written by someone
    /// else (the line editor's prompt).
    func render(_ t: TerminalText) -> String { lock.withLock { renderLocked(t) } }

    /// ``render(_:)`` with the lock held: each run redacted, then sanitised.
    private func renderLocked(_ t: TerminalText) -> String {
        // Sanitise each run, join neighbours of the same style, then add the codes.
        var pieces: [(style: TerminalText.Style, text: String)] = []
        for run in t.runs {
            var sanitizer = TerminalSanitizer(oneLine: !run.multiline)
            let clean = sanitizer.clean(_redactor.redact(run.text))
            if let last = pieces.last, last.style == run.style {
                pieces[pieces.count - 1].text += clean
            } else {
                pieces.append((run.style, clean))
            }
        }
        return pieces.map { p in
            guard color, let code = p.style.code, !p.text.isEmpty else { return p.text }
            return "\u{1B}[\(code)m" + p.text + "\u{1B}[0m"
        }.joined()
    }

    // MARK: - The spinner: the only cursor control, composed here

    /// Draws a spinner frame and its (sanitised, dim) text on the current line, which must be
    /// empty; the cursor goes back to column 0.
    func drawSpinner(frame: String, text: String) {
        lock.withLock {
            guard atLineStart, isTTY else { return }
            // Never wider than the line: a wrapped spinner would leave its first half behind.
            let room = max(1, (width ?? Layout.defaultWidth) - DisplayWidth.of(frame) - 2)
            emitLocked(
                "\r" + renderLocked("\(frame) \(dim: DisplayWidth.truncate(text, to: room))") + "\u{1B}[K\r",
                transient: true)
        }
    }

    /// Erases the spinner's line.
    func eraseSpinner() {
        lock.withLock { if isTTY { emitLocked("\r\u{1B}[K", transient: true) } }
    }

    /// Writes bytes as they are (caller holds the lock). A `transient` write (spinner frames,
    /// line erasing) leaves the line state alone.
    private func emitLocked(_ s: String, transient: Bool) {
        guard !s.isEmpty else { return }
        var s = s
        // A failure means stdout is gone (a closed pipe): nothing useful to do.
        s.withUTF8 { buf in _ = ct_write_all(fd, buf.baseAddress, buf.count) }
        if !transient { atLineStart = s.hasSuffix("\n") }
    }
}

/// Text on its way to the terminal: literal parts written by the program, and interpolated
/// values (server, model or file text) that are sanitised and kept on one line. Styles are
/// named, not escape codes: ``Output`` adds the codes after sanitising.
///
///     out.line("\(bold: "→ \(name)")(…)")     // name cannot break the line or inject escapes
struct TerminalText: ExpressibleByStringInterpolation {
    enum Style {
        case plain, bold, dim, red, yellow
        var code: String? {
            switch self {
            case .plain: return nil
            case .bold: return "1"
            case .dim: return "2"
            case .red: return "31"
            case .yellow: return "33"
            }
        }
    }

    struct Run {
        var text: String
        var style: Style
        /// Whether newlines and tabs are kept (program-composed text) or folded to spaces.
        var multiline: Bool
    }

    var runs: [Run]

    init(runs: [Run]) { self.runs = runs }
    init(multiline s: String) { runs = [Run(text: s, style: .plain, multiline: true)] }
    init(stringLiteral s: String) { runs = [Run(text: s, style: .plain, multiline: true)] }
    init(stringInterpolation i: StringInterpolation) { runs = i.runs }

    struct StringInterpolation: StringInterpolationProtocol {
        var runs: [Run] = []
        init(literalCapacity: Int, interpolationCount: Int) {}
        mutating func appendLiteral(_ s: String) { runs.append(Run(text: s, style: .plain, multiline: true)) }
        mutating func appendInterpolation<T>(_ v: T) { runs.append(Run(text: "\(v)", style: .plain, multiline: false)) }
        mutating func appendInterpolation(bold v: String) { runs.append(Run(text: v, style: .bold, multiline: false)) }
        mutating func appendInterpolation(dim v: String) { runs.append(Run(text: v, style: .dim, multiline: false)) }
        mutating func appendInterpolation(yellow v: String) {
            runs.append(Run(text: v, style: .yellow, multiline: false))
        }
        /// A value that may span lines (a model's multi-line reply shown in a block).
        mutating func appendInterpolation(lines v: String) { runs.append(Run(text: v, style: .plain, multiline: true)) }
    }
}
