/// Makes untrusted text safe for a terminal: ANSI escape sequences (CSI, OSC — e.g. OSC 52
/// clipboard writes, title changes —, DCS, SOS, PM, APC and two-byte ones) and their 8-bit C1
/// forms are removed, other C1 controls and the bidi controls (U+202A–U+202E, U+2066–U+2069,
/// U+200E, U+200F, U+061C: they reorder what is shown) are dropped, C0 controls and DEL become
/// visible `^X`, and other text passes unchanged. Newline and tab are kept, or folded to a
/// space in `oneLine` mode (with CR and U+2028/U+2029). It keeps state between calls, so a
/// sequence split across deltas is removed too.
public struct TerminalSanitizer {
    private enum State { case text, esc, csi, osc, oscEsc, str, strEsc }
    private var state = State.text
    public let oneLine: Bool

    public init(oneLine: Bool = false) { self.oneLine = oneLine }

    /// Whether `s` has nothing to remove or change: no control but newline and tab, and no
    /// scalar from the blocks that hold C1 controls (U+0080–U+00BF), U+061C (U+0600–U+063F) or
    /// the bidi controls and line separators (U+2000–U+2FFF), told by their UTF-8 lead bytes.
    static func isPlain(_ s: String) -> Bool {
        if let plain = s.utf8.withContiguousStorageIfAvailable(isPlain) { return plain }
        return isPlain(s.utf8)
    }

    private static func isPlain(_ bytes: some Sequence<UInt8>) -> Bool {
        for b in bytes {
            if b < 0x20 {
                if b != 0x0A && b != 0x09 { return false }
            } else if b == 0x7F || b == 0xC2 || b == 0xD8 || b == 0xE2 {
                return false
            }
        }
        return true
    }

    public static func isBidiControl(_ v: UInt32) -> Bool {
        (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) || v == 0x200E || v == 0x200F || v == 0x061C
    }

    public mutating func clean(_ s: String) -> String {
        if state == .text && !oneLine && Self.isPlain(s) { return s }
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
                    state = .osc  // 8-bit OSC
                } else if v == 0x90 || v == 0x98 || v == 0x9E || v == 0x9F {
                    state = .str  // 8-bit DCS, SOS, PM, APC
                } else if v == 0x0A || v == 0x09 || v == 0x2028 || v == 0x2029 {
                    if oneLine {
                        out.append(" ")
                    } else if v == 0x0A || v == 0x09 {
                        out.append(u)
                    } else {
                        out.append("\n")
                    }
                } else if v == 0x0D {
                    if oneLine { out.append(" ") }  // otherwise dropped: CR would let text overwrite what came before
                } else if v < 0x20 || v == 0x7F {
                    out.append(contentsOf: "^".unicodeScalars)
                    out.append(Unicode.Scalar(v == 0x7F ? 0x3F : v + 0x40)!)
                } else if (0x80...0x9F).contains(v) || Self.isBidiControl(v) {
                    continue  // other C1 controls; bidi controls
                } else {
                    out.append(u)
                }
            case .esc:
                switch v {
                case 0x5B: state = .csi  // [
                case 0x5D: state = .osc  // ]
                case 0x50, 0x58, 0x5E, 0x5F: state = .str  // DCS, SOS, PM, APC
                case 0x20...0x2F: state = .esc  // intermediate bytes
                case 0x1B: state = .esc
                default: state = .text  // a two-byte sequence: dropped
                }
            case .csi:
                if (0x40...0x7E).contains(v) { state = .text } else if v == 0x1B { state = .esc }
            case .osc:
                if v == 0x07 || v == 0x9C { state = .text } else if v == 0x1B { state = .oscEsc }
            case .oscEsc:
                state = v == 0x5C ? .text : .osc
            case .str:
                if v == 0x9C { state = .text } else if v == 0x1B { state = .strEsc }
            case .strEsc:
                state = v == 0x5C ? .text : .str
            }
        }
        return String(out)
    }
}
