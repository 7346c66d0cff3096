import Foundation

/// Where the REPL writes: stdout with optional styling. One seam, so rendering can be pointed at
/// /dev/null in benchmarks or a buffer in tests.
final class Output: @unchecked Sendable {
    let fd: Int32
    let isTTY: Bool
    let color: Bool
    private let lock = NSLock()
    /// Whether the cursor is at the start of a line (so status lines don't glue onto text).
    private(set) var atLineStart = true

    init(fd: Int32 = STDOUT_FILENO, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.fd = fd
        isTTY = isatty(fd) == 1
        let noColor = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        color = isTTY && !noColor && environment["TERM"] != "dumb"
    }

    /// Writes `s`. A `transient` write (spinner frames, line erasing) leaves the line state alone.
    func write(_ s: String, transient: Bool = false) {
        guard !s.isEmpty else { return }
        lock.lock()
        defer { lock.unlock() }
        var s = s
        s.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = Foundation.write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    return  // stdout gone (closed pipe): nothing useful to do
                }
                off += n
            }
        }
        if !transient { atLineStart = s.hasSuffix("\n") }
    }

    func line(_ s: String) { write((atLineStart ? "" : "\n") + s + "\n") }

    /// A dim line (status, hints); plain when colour is off.
    func dim(_ s: String) { line(color ? "\u{1B}[2m\(s)\u{1B}[0m" : s) }
    /// An error line, in red when colour is on.
    func error(_ s: String) { line(color ? "\u{1B}[31merror:\u{1B}[0m \(s)" : "error: \(s)") }
    func bold(_ s: String) -> String { color ? "\u{1B}[1m\(s)\u{1B}[0m" : s }

    /// Ends the current line if something was written on it.
    func finishLine() { if !atLineStart { write("\n") } }
}

/// Makes untrusted model text safe for a terminal: ANSI escape sequences (CSI, OSC — e.g. OSC 52
/// clipboard writes, title changes —, DCS and the rest) are removed, C0 controls other than
/// newline and tab become visible `^X`, and UTF-8 passes unchanged. It keeps state between
/// chunks, so a sequence split across deltas is removed too.
struct TerminalSanitizer {
    private enum State { case text, esc, csi, osc, oscEsc, str, strEsc }
    private var state = State.text

    mutating func clean(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            let v = u.value
            switch state {
            case .text:
                if v == 0x1B {
                    state = .esc
                } else if v == 0x9B {
                    state = .csi  // 8-bit CSI
                } else if v == 0x9D {
                    state = .osc
                } else if v == 0x0A || v == 0x09 {
                    out.append(u)
                } else if v < 0x20 || v == 0x7F {
                    if v == 0x0D { continue }  // CR would let text overwrite what came before
                    out.append(contentsOf: "^".unicodeScalars)
                    out.append(Unicode.Scalar(v == 0x7F ? 0x3F : v + 0x40)!)
                } else if (0x80...0x9F).contains(v) {
                    continue  // other C1 controls
                } else {
                    out.append(u)
                }
            case .esc:
                switch v {
                case 0x5B: state = .csi  // [
                case 0x5D: state = .osc  // ]
                case 0x50, 0x58, 0x5E, 0x5F: state = .str  // DCS, SOS, PM, APC
                case 0x20...0x2F: state = .esc  // intermediate bytes
                default: state = .text  // a two-byte sequence: dropped
                }
            case .csi:
                if (0x40...0x7E).contains(v) { state = .text }
                else if v == 0x1B { state = .esc }
            case .osc:
                if v == 0x07 || v == 0x9C { state = .text }
                else if v == 0x1B { state = .oscEsc }
            case .oscEsc:
                state = v == 0x5C ? .text : .osc
            case .str:
                if v == 0x9C { state = .text }
                else if v == 0x1B { state = .strEsc }
            case .strEsc:
                state = v == 0x5C ? .text : .str
            }
        }
        return String(out)
    }
}
