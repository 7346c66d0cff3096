/// How many terminal cells text takes: East Asian wide and fullwidth characters and emoji take
/// two, combining marks, zero-width joiners and variation selectors none, everything else one.
/// Measured per extended grapheme cluster (Swift's `Character`), so an emoji sequence joined by
/// ZWJ or a flag counts once. ANSI escape sequences are not text: callers measure before styling,
/// or use ``DisplayWidth/visible(_:)`` which skips CSI and OSC sequences.
public enum DisplayWidth {
    /// Cells taken by `s` as printed (no escape sequences expected).
    public static func of(_ s: some StringProtocol) -> Int {
        // Printable ASCII is one cell a byte; anything else is measured per character.
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return s.utf8.count }
        var total = 0
        for ch in s { total += of(ch) }
        return total
    }

    /// Cells taken by one character (grapheme cluster).
    public static func of(_ ch: Character) -> Int {
        if ch.isASCII {
            guard let v = ch.asciiValue else { return 1 }  // "\r\n" is one Character
            return v < 0x20 || v == 0x7F ? 0 : 1
        }
        let scalars = ch.unicodeScalars
        guard let first = scalars.first else { return 0 }
        // An emoji presentation selector (U+FE0F) makes a text-default symbol wide.
        if scalars.contains(where: { $0.value == 0xFE0F }) && first.properties.isEmoji { return 2 }
        return width(of: first)
    }

    /// Cells taken by `s` with ANSI CSI (`ESC [ … final`) and OSC (`ESC ] … BEL|ST`) sequences
    /// skipped: the width of styled text as the terminal shows it.
    public static func visible(_ s: String) -> Int {
        var total = 0
        var state = EscapeState.text
        for ch in s {
            switch state {
            case .text:
                if ch == "\u{1B}" { state = .escape } else { total += of(ch) }
            case .escape:
                state = ch == "[" ? .csi : ch == "]" ? .osc : .text
            case .csi:
                if let v = ch.asciiValue, (0x40...0x7E).contains(v) { state = .text }
            case .osc:
                if ch == "\u{07}" { state = .text } else if ch == "\u{1B}" { state = .oscEscape }
            case .oscEscape:
                state = ch == "\\" ? .text : .osc
            }
        }
        return total
    }

    /// ``visible(_:)`` of UTF-8 bytes, without making a string when the text is ASCII.
    static func visible(utf8 bytes: [UInt8]) -> Int {
        var total = 0
        var state = EscapeState.text
        for b in bytes {
            guard b < 0x80 else { return visible(String(decoding: bytes, as: UTF8.self)) }
            switch state {
            case .text:
                if b == 0x1B { state = .escape } else if b >= 0x20 && b != 0x7F { total += 1 }
            case .escape:
                state = b == 0x5B ? .csi : b == 0x5D ? .osc : .text
            case .csi:
                if (0x40...0x7E).contains(b) { state = .text }
            case .osc:
                if b == 0x07 { state = .text } else if b == 0x1B { state = .oscEscape }
            case .oscEscape:
                state = b == 0x5C ? .text : .osc
            }
        }
        return total
    }

    private enum EscapeState { case text, escape, csi, osc, oscEscape }

    /// The width of a single scalar, as `wcwidth` would give it for a UTF-8 locale.
    static func width(of scalar: Unicode.Scalar) -> Int {
        let v = scalar.value
        if v == 0 { return 0 }
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: break
        }
        if v == 0x200B || (0x1160...0x11FF).contains(v) { return 0 }  // zero width space, Hangul medial vowels
        if scalar.properties.isEmojiPresentation { return 2 }
        return isWide(v) ? 2 : 1
    }

    /// East Asian Wide (W) and Fullwidth (F) ranges (Unicode 15 EastAsianWidth.txt, merged).
    private static let wideRanges: [ClosedRange<UInt32>] = [
        0x1100...0x115F, 0x231A...0x231B, 0x2329...0x232A, 0x23E9...0x23EC, 0x23F0...0x23F0,
        0x23F3...0x23F3, 0x25FD...0x25FE, 0x2614...0x2615, 0x2648...0x2653, 0x267F...0x267F,
        0x2693...0x2693, 0x26A1...0x26A1, 0x26AA...0x26AB, 0x26BD...0x26BE, 0x26C4...0x26C5,
        0x26CE...0x26CE, 0x26D4...0x26D4, 0x26EA...0x26EA, 0x26F2...0x26F3, 0x26F5...0x26F5,
        0x26FA...0x26FA, 0x26FD...0x26FD, 0x2705...0x2705, 0x270A...0x270B, 0x2728...0x2728,
        0x274C...0x274C, 0x274E...0x274E, 0x2753...0x2755, 0x2757...0x2757, 0x2795...0x2797,
        0x27B0...0x27B0, 0x27BF...0x27BF, 0x2B1B...0x2B1C, 0x2B50...0x2B50, 0x2B55...0x2B55,
        0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
        0xA960...0xA97F, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE10...0xFE19, 0xFE30...0xFE6F,
        0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x16FE0...0x16FE4, 0x17000...0x18CFF, 0x1B000...0x1B2FF,
        0x1F004...0x1F004, 0x1F0CF...0x1F0CF, 0x1F18E...0x1F18E, 0x1F191...0x1F19A,
        0x1F200...0x1F202, 0x1F210...0x1F23B, 0x1F240...0x1F248, 0x1F250...0x1F251,
        0x1F260...0x1F265, 0x1F300...0x1F64F, 0x1F680...0x1F6FF, 0x1F7E0...0x1F7EB,
        0x1F90C...0x1F9FF, 0x1FA70...0x1FAFF, 0x20000...0x2FFFD, 0x30000...0x3FFFD,
    ]

    private static func isWide(_ v: UInt32) -> Bool {
        guard v >= 0x1100 else { return false }
        var lo = 0
        var hi = wideRanges.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            let r = wideRanges[mid]
            if v < r.lowerBound { hi = mid - 1 } else if v > r.upperBound { lo = mid + 1 } else { return true }
        }
        return false
    }

    /// `s` cut to at most `cells` cells; when cut, the last cell is `…`.
    public static func truncate(_ s: String, to cells: Int) -> String {
        guard cells > 0 else { return "" }
        guard of(s) > cells else { return s }
        var out = ""
        var used = 0
        for ch in s {
            let w = of(ch)
            if used + w > cells - 1 { break }
            out.append(ch)
            used += w
        }
        return out + "…"
    }

    /// `s` padded with spaces on the right to `cells` cells (unchanged when already wider).
    public static func pad(_ s: String, to cells: Int) -> String {
        let w = of(s)
        return w >= cells ? s : s + String(repeating: " ", count: cells - w)
    }
}
