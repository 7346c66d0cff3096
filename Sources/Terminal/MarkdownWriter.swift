/// How a piece of rendered Markdown looks: a set of flags and, for a link, the index of its URL
/// in the writer's table. Turned into SGR (and OSC 8) codes only by ``LineWriter``.
struct MarkStyle: Equatable {
    var flags: UInt16 = 0
    var link: Int32 = -1

    static let bold: UInt16 = 1
    static let italic: UInt16 = 1 << 1
    static let strike: UInt16 = 1 << 2
    static let code: UInt16 = 1 << 3
    static let link: UInt16 = 1 << 4
    static let heading: UInt16 = 1 << 5
    static let frame: UInt16 = 1 << 6
    static let bullet: UInt16 = 1 << 7
    static let keyword: UInt16 = 1 << 8
    static let string: UInt16 = 1 << 9
    static let comment: UInt16 = 1 << 10
    static let number: UInt16 = 1 << 11
    static let key: UInt16 = 1 << 12
    static let type: UInt16 = 1 << 13

    static let plain = MarkStyle()

    init(flags: UInt16 = 0, link: Int32 = -1) {
        self.flags = flags
        self.link = link
    }

    func has(_ f: UInt16) -> Bool { flags & f == f }

    /// The SGR parameters, e.g. "1;35"; empty for plain text.
    var sgr: String {
        var p: [String] = []
        if flags & (Self.bold | Self.heading) != 0 { p.append("1") }
        if flags & Self.frame != 0 { p.append("2") }
        if flags & Self.italic != 0 { p.append("3") }
        if flags & Self.link != 0 { p.append("4") }
        if flags & Self.strike != 0 { p.append("9") }
        let colours: [(UInt16, String)] = [
            (Self.heading, "35"), (Self.code, "36"), (Self.link, "34"), (Self.bullet, "33"), (Self.keyword, "35"),
            (Self.string, "32"), (Self.comment, "90"), (Self.number, "33"), (Self.key, "34"), (Self.type, "36"),
        ]
        if let c = colours.first(where: { flags & $0.0 != 0 }) { p.append(c.1) }
        return p.joined(separator: ";")
    }
}

/// A piece of a line prefix (a quote's gutter, a list's indentation and bullet).
struct Piece {
    var bytes: [UInt8]
    var style: MarkStyle
    let width: Int

    init(text: String, style: MarkStyle) {
        bytes = Array(text.utf8)
        self.style = style
        width = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F } ? bytes.count : DisplayWidth.of(text)
    }

    init(text: String, style: MarkStyle, width: Int) {
        bytes = Array(text.utf8)
        self.style = style
        self.width = width
    }

    /// `count` times a character one cell wide (a rule, a border).
    init(repeating c: String, count: Int, style: MarkStyle) {
        let one = Array(c.utf8)
        let total = one.count * max(count, 0)
        bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, filled in
            guard let base = buffer.baseAddress, total > 0 else { return }
            one.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: one.count) }
            var done = one.count
            // Doubling: a few block copies, not a loop per character.
            while done < total {
                let n = min(done, total - done)
                (base + done).update(from: base, count: n)
                done += n
            }
            filled = total
        }
        self.style = style
        width = max(count, 0)
    }
}

/// Writes styled text as lines no wider than `width`: words are held until they end, so a word
/// that would cross the edge starts the next line, under the continuation prefix (a hanging
/// indent, a quote's gutter); a word wider than a line is cut. Styles are emitted only when they
/// change and reset before every newline, so each line stands alone. Nothing already written is
/// ever taken back.
struct LineWriter {
    let width: Int
    let color: Bool
    let hyperlinks: Bool
    /// Bytes ready for the terminal.
    var out: [UInt8] = []
    /// URLs of the links on the current line (``MarkStyle/link`` indexes them).
    var links: [String] = []

    private var current = MarkStyle.plain
    private(set) var col = 0
    /// The column after the first prefix: a word is wrapped only when something precedes it.
    private var lineStart = 0
    private(set) var maxCol = 0
    private var cont: [Piece] = []
    private var contWidth = 0
    private var word: [UInt8] = []
    private var wordStyles: [(at: Int, style: MarkStyle)] = []
    private var wordWidth = 0
    private var wordASCII = true
    private var gap: [MarkStyle] = []
    private var sgrCache: [UInt16: [UInt8]] = [:]

    init(width: Int, color: Bool, hyperlinks: Bool) {
        self.width = max(width, 1)
        self.color = color
        self.hyperlinks = hyperlinks && color
    }

    /// Starts a line: `prefix` now, `continuation` on every line it wraps onto.
    mutating func beginLine(_ prefix: [Piece], continuation: [Piece]) {
        for p in prefix { emit(p) }
        lineStart = col
        maxCol = col
        cont = continuation
        contWidth = continuation.reduce(0) { $0 + $1.width }
    }

    /// One byte of inline text in `style` (UTF-8; a multi-byte character arrives byte by byte).
    mutating func put(_ b: UInt8, _ style: MarkStyle) {
        if b == 0x20 || b == 0x09 {
            flushWord()
            gap.append(style)
            return
        }
        if wordStyles.last?.style != style { wordStyles.append((word.count, style)) }
        word.append(b)
        if b < 0x80 {
            wordWidth += 1
        } else {
            wordASCII = false
            if b & 0xC0 != 0x80 { wordWidth += 1 }
        }
        // A word that cannot fit on any line is cut where it reaches the edge.
        if wordWidth > width - contWidth && b & 0xC0 != 0x80 { flushLongWord() }
    }

    /// Bytes of one word (no space among them) in one style.
    mutating func putWord(_ bytes: UnsafeBufferPointer<UInt8>, _ style: MarkStyle) {
        if wordStyles.last?.style != style { wordStyles.append((word.count, style)) }
        word.append(contentsOf: bytes)
        for b in bytes {
            if b < 0x80 {
                wordWidth += 1
            } else {
                wordASCII = false
                if b & 0xC0 != 0x80 { wordWidth += 1 }
            }
        }
        if wordWidth > width - contWidth { flushLongWord() }
    }

    /// A whole string of inline text in one style.
    mutating func put(_ s: String, _ style: MarkStyle) {
        for b in s.utf8 { put(b, style) }
    }

    /// Ends the line (the held word is written, trailing spaces are dropped).
    mutating func endLine() {
        flushWord()
        gap.removeAll()
        setStyle(.plain)
        out.append(0x0A)
        col = 0
        links.removeAll(keepingCapacity: true)
    }

    /// Writes the held word and spaces before it, on this line or the next.
    mutating func flushWord() {
        guard !word.isEmpty else { return }
        let w = wordASCII ? wordWidth : DisplayWidth.of(String(decoding: word, as: UTF8.self))
        if col + gap.count + w > width && col > lineStart {
            wrap()
        } else {
            for s in gap { emitByte(0x20, s) }
            col += gap.count
        }
        gap.removeAll(keepingCapacity: true)
        emitWord()
        col += w
        maxCol = max(maxCol, col)
        clearWord()
    }

    /// A word longer than a line: what fits here, the rest on the lines after.
    private mutating func flushLongWord() {
        if col > lineStart && col + gap.count + 1 >= width {
            wrap()
        } else {
            for s in gap { emitByte(0x20, s) }
            col += gap.count
        }
        gap.removeAll(keepingCapacity: true)
        var i = 0
        var styleIndex = 0
        while i < word.count {
            while styleIndex + 1 < wordStyles.count && wordStyles[styleIndex + 1].at <= i { styleIndex += 1 }
            let n = Self.scalarLength(word[i])
            let end = min(i + n, word.count)
            let cells = Self.cells(word, i, end)
            if col + cells > width { wrap() }
            setStyle(wordStyles[styleIndex].style)
            out.append(contentsOf: word[i..<end])
            col += cells
            i = end
        }
        maxCol = max(maxCol, col)
        clearWord()
    }

    private mutating func clearWord() {
        word.removeAll(keepingCapacity: true)
        wordStyles.removeAll(keepingCapacity: true)
        wordWidth = 0
        wordASCII = true
    }

    private mutating func emitWord() {
        for (k, ws) in wordStyles.enumerated() {
            let end = k + 1 < wordStyles.count ? wordStyles[k + 1].at : word.count
            setStyle(ws.style)
            out.append(contentsOf: word[ws.at..<end])
        }
    }

    private mutating func wrap() {
        setStyle(.plain)
        out.append(0x0A)
        col = 0
        for p in cont { emit(p) }
        lineStart = col
    }

    /// A line of code: cut (not word-wrapped) at the edge, each piece under `continuation`.
    mutating func codeLine(_ bytes: [UInt8], _ styles: [MarkStyle], prefix: [Piece], continuation: [Piece]) {
        beginLine(prefix, continuation: continuation)
        let start = col
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x09 {
                let stop = start + ((col - start) / 4 + 1) * 4
                for _ in col..<stop {
                    if col >= width { wrap() }
                    emitByte(0x20, .plain)
                    col += 1
                }
                i += 1
                continue
            }
            let end = min(i + Self.scalarLength(bytes[i]), bytes.count)
            let cells = Self.cells(bytes, i, end)
            if col + cells > width && col > contWidth { wrap() }
            setStyle(styles[i])
            out.append(contentsOf: bytes[i..<end])
            col += cells
            i = end
        }
        setStyle(.plain)
        out.append(0x0A)
        col = 0
    }

    /// A whole line of pieces (a rule, a frame's border, a table row).
    mutating func rawLine(_ pieces: [Piece]) {
        for p in pieces { emit(p) }
        setStyle(.plain)
        out.append(0x0A)
        col = 0
    }

    /// Bytes already styled by another writer (a table's cells), `cells` wide.
    mutating func appendStyled(_ bytes: [UInt8], cells: Int) {
        setStyle(.plain)
        out.append(contentsOf: bytes)
        col += cells
    }

    /// One piece on the current line, as it is.
    mutating func rawPiece(_ p: Piece) { emit(p) }

    private mutating func emit(_ p: Piece) {
        setStyle(p.style)
        out.append(contentsOf: p.bytes)
        col += p.width
    }

    private mutating func emitByte(_ b: UInt8, _ s: MarkStyle) {
        setStyle(s)
        out.append(b)
    }

    /// Emits what it takes to go from the current style to `s`.
    mutating func setStyle(_ s: MarkStyle) {
        guard s != current else { return }
        defer { current = s }
        guard color else { return }
        if current.flags != 0 { out.append(contentsOf: [0x1B, 0x5B, 0x30, 0x6D]) }  // ESC[0m
        if hyperlinks && s.link != current.link {
            if current.link >= 0 { out.append(contentsOf: Array("\u{1B}]8;;\u{1B}\\".utf8)) }
            if s.link >= 0 && Int(s.link) < links.count {
                out.append(contentsOf: Array("\u{1B}]8;;\(links[Int(s.link)])\u{1B}\\".utf8))
            }
        }
        guard s.flags != 0 else { return }
        if let cached = sgrCache[s.flags] {
            out.append(contentsOf: cached)
        } else {
            let codes = Array("\u{1B}[\(s.sgr)m".utf8)
            sgrCache[s.flags] = codes
            out.append(contentsOf: codes)
        }
    }

    /// Bytes in the UTF-8 sequence that starts with `lead`.
    static func scalarLength(_ lead: UInt8) -> Int {
        lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
    }

    /// Cells taken by the one character in `bytes[i..<end]`.
    static func cells(_ bytes: [UInt8], _ i: Int, _ end: Int) -> Int {
        if bytes[i] < 0x80 { return bytes[i] < 0x20 ? 0 : 1 }
        return String(decoding: bytes[i..<end], as: UTF8.self).unicodeScalars.first.map { DisplayWidth.width(of: $0) }
            ?? 0
    }
}
