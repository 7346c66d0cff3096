/// Inline Markdown within one line, byte by byte: emphasis (`*`, `_`), strong, `~~strike~~`,
/// `` `code` ``, links and images (`[text](url)`, `<https://…>`), backslash escapes. Text is
/// passed on as it comes; a delimiter run waits for the one byte after it (which decides whether
/// it opens, closes or is literal), and a link is held from `[` to its `)` (an OSC 8 hyperlink
/// must be opened before its text). Emphasis opens where its delimiters may open and ends where
/// they may close, or at the end of the line.
struct InlineMarkdown {
    /// Styles that apply to the whole line (a heading).
    var base = MarkStyle.plain
    private var style: UInt16 = 0
    private var runChar: UInt8 = 0
    private var runCount = 0
    /// The byte before the pending run (0: start of the line).
    private var prev: UInt8 = 0
    private var escape = false
    private var bang = false
    private var codeLength = 0
    private var hold: Hold?

    private struct Hold {
        enum Kind { case link, image, autolink }
        enum Phase { case text, afterText, url }
        var kind: Kind
        var phase = Phase.text
        var bytes: [UInt8] = []
        var depth = 0
        var textEnd = 0
    }

    init(base: MarkStyle = .plain) { self.base = base }

    private var current: MarkStyle { MarkStyle(flags: base.flags | style, link: base.link) }

    mutating func put(_ b: UInt8, _ w: inout LineWriter) {
        if hold != nil {
            holdPut(b, &w)
            return
        }
        if escape {
            escape = false
            if Self.isPunctuation(b) {
                w.put(b, current)
                prev = b
                return
            }
            w.put(0x5C, current)
            prev = 0x5C
        }
        if runCount > 0 {
            if b == runChar {
                runCount += 1
                return
            }
            resolveRun(next: b, &w)
        }
        if bang {
            bang = false
            if b == 0x5B && codeLength == 0 {
                hold = Hold(kind: .image)
                return
            }
            w.put(0x21, current)
            prev = 0x21
        }
        if codeLength > 0 {
            if b == 0x60 {
                (runChar, runCount) = (b, 1)
            } else {
                w.put(b, current)
                prev = b
            }
            return
        }
        switch b {
        case 0x5C: escape = true
        case 0x2A, 0x5F, 0x7E, 0x60: (runChar, runCount) = (b, 1)
        case 0x5B: hold = Hold(kind: .link)
        case 0x21: bang = true
        case 0x3C: hold = Hold(kind: .autolink)
        default:
            w.put(b, current)
            prev = b
        }
    }

    /// Whether nothing is pending: the next ordinary bytes can go straight on.
    var isIdle: Bool { hold == nil && runCount == 0 && !escape && !bang }

    /// Bytes that are text wherever they stand (not a space, a newline or a delimiter).
    static func isOrdinary(_ b: UInt8) -> Bool {
        switch b {
        case 0x09, 0x0A, 0x20, 0x2A, 0x5F, 0x7E, 0x60, 0x5B, 0x21, 0x3C, 0x5C: return false
        default: return true
        }
    }

    /// Ordinary bytes (see ``isOrdinary(_:)``) while idle.
    mutating func putWord(_ bytes: UnsafeBufferPointer<UInt8>, _ w: inout LineWriter) {
        w.putWord(bytes, current)
        prev = bytes.last ?? prev
    }

    /// The line ended: whatever is pending is resolved as if a space followed, held links that
    /// never closed are literal text, and every style ends.
    mutating func endLine(_ w: inout LineWriter) {
        while hold != nil { failHold(&w) }
        if escape {
            escape = false
            w.put(0x5C, current)
        }
        if runCount > 0 { resolveRun(next: 0, &w) }
        if bang {
            bang = false
            w.put(0x21, current)
        }
        style = 0
        codeLength = 0
        prev = 0
    }

    private mutating func resolveRun(next: UInt8, _ w: inout LineWriter) {
        let (c, n) = (runChar, runCount)
        runCount = 0
        if codeLength > 0 {
            if n == codeLength {
                if !w.color { literal(c, n, &w) }
                style &= ~MarkStyle.code
                codeLength = 0
            } else {
                literal(c, n, &w)
            }
        } else if c == 0x60 {
            if next == 0 {
                literal(c, n, &w)
            } else {
                codeLength = n
                style |= MarkStyle.code
                // Without colour a code span keeps its backticks: they are all that marks it.
                if !w.color { literal(c, n, &w) }
            }
            return
        } else if c == 0x7E {
            emphasis(MarkStyle.strike, n == 2, c, n, next, &w)
        } else {
            let f: UInt16 = n == 1 ? MarkStyle.italic : n == 2 ? MarkStyle.bold : MarkStyle.italic | MarkStyle.bold
            emphasis(f, n <= 3, c, n, next, &w)
        }
        prev = c
    }

    private mutating func emphasis(
        _ f: UInt16, _ valid: Bool, _ c: UInt8, _ n: Int, _ next: UInt8, _ w: inout LineWriter
    ) {
        let rightFlanking = !Self.isSpace(prev)
        let leftFlanking = !Self.isSpace(next)
        let canOpen = leftFlanking && (c != 0x5F || !Self.isWordByte(prev))
        let canClose = rightFlanking && (c != 0x5F || !Self.isWordByte(next))
        if valid && canClose && style & f == f {
            style &= ~f
        } else if valid && canOpen && style & f == 0 {
            style |= f
        } else {
            literal(c, n, &w)
        }
    }

    /// `n` delimiters shown as they are.
    private mutating func literal(_ c: UInt8, _ n: Int, _ w: inout LineWriter) {
        for _ in 0..<n { w.put(c, current) }
    }

    // MARK: - Links

    private mutating func holdPut(_ b: UInt8, _ w: inout LineWriter) {
        guard var h = hold else { return }
        h.bytes.append(b)
        var done = false
        var failed = h.bytes.count > 2048
        switch (h.kind, h.phase) {
        case (.autolink, _):
            if b == 0x3E {
                done = true
            } else if b == 0x20 || b == 0x3C {
                failed = true
            }
        case (_, .text):
            if b == 0x5B { h.depth += 1 }
            if b == 0x5D {
                if h.depth == 0 {
                    h.phase = .afterText
                    h.textEnd = h.bytes.count - 1
                } else {
                    h.depth -= 1
                }
            }
        case (_, .afterText):
            if b == 0x28 { h.phase = .url } else { failed = true }
        case (_, .url):
            if b == 0x28 { h.depth += 1 }
            if b == 0x29 {
                if h.depth == 0 { done = true } else { h.depth -= 1 }
            }
        }
        hold = h
        if failed {
            failHold(&w)
        } else if done {
            finishHold(h, &w)
        }
    }

    /// Not a link after all: its opener is text, and what was held is read again after it.
    private mutating func failHold(_ w: inout LineWriter) {
        guard let h = hold else { return }
        hold = nil
        let opener: [UInt8] = h.kind == .image ? [0x21, 0x5B] : h.kind == .link ? [0x5B] : [0x3C]
        for b in opener { w.put(b, current) }
        prev = opener.last ?? 0
        for b in h.bytes { put(b, &w) }
    }

    private mutating func finishHold(_ h: Hold, _ w: inout LineWriter) {
        hold = nil
        let text: [UInt8]
        var url: [UInt8]
        if h.kind == .autolink {
            url = Array(h.bytes.dropLast())
            guard url.contains(0x3A), !url.isEmpty else {
                hold = h
                failHold(&w)
                return
            }
            text = url
        } else {
            text = Array(h.bytes[0..<h.textEnd])
            url = Array(h.bytes[(h.textEnd + 2)..<(h.bytes.count - 1)])
            while url.first == 0x20 { url.removeFirst() }
            if let space = url.firstIndex(of: 0x20) { url = Array(url[..<space]) }  // a title follows
            if url.first == 0x3C && url.last == 0x3E && url.count >= 2 { url = Array(url.dropFirst().dropLast()) }
        }
        link(text: text, url: String(decoding: url, as: UTF8.self), image: h.kind == .image, &w)
        prev = 0x29
    }

    private func link(text: [UInt8], url: String, image: Bool, _ w: inout LineWriter) {
        let lower = url.lowercased()
        let linkable = w.hyperlinks && ["http://", "https://", "mailto:"].contains { lower.hasPrefix($0) }
        var look = current
        look.flags |= MarkStyle.link
        if linkable {
            w.links.append(url)
            look.link = Int32(w.links.count - 1)
        }
        if image { w.put("image: ", look) }
        var inner = InlineMarkdown(base: look)
        for b in text { inner.put(b, &w) }
        inner.endLine(&w)
        let shown = String(decoding: text, as: UTF8.self)
        if !linkable && !url.isEmpty && shown != url {
            w.put(" (", current)
            w.put(url, MarkStyle(flags: current.flags | MarkStyle.frame))
            w.put(")", current)
        }
    }

    // MARK: - Classes of bytes

    static func isSpace(_ b: UInt8) -> Bool { b == 0 || b == 0x20 || b == 0x09 || b == 0x0A }

    /// Letters, digits and every non-ASCII byte: what `_` may not touch to open or close.
    static func isWordByte(_ b: UInt8) -> Bool {
        b >= 0x80 || (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A)
    }

    static func isPunctuation(_ b: UInt8) -> Bool {
        (0x21...0x2F).contains(b) || (0x3A...0x40).contains(b) || (0x5B...0x60).contains(b) || (0x7B...0x7E).contains(b)
    }
}
