/// Text the renderer made for the terminal: the model's text, sanitised, with the renderer's own
/// styling added after. Only ``MarkdownRenderer`` makes one, so whoever writes it raw knows it
/// holds no escape sequence the model sent.
public struct RenderedText: Sendable, Equatable {
    public let text: String
    init(_ bytes: [UInt8]) { text = String(decoding: bytes, as: UTF8.self) }
}

/// Renders a Markdown reply for a terminal as it streams: `feed` each piece as it arrives and
/// print what it returns, then print what `finish` returns. A pure, incremental state machine:
/// no I/O, and the same text gives the same output however it is cut into pieces.
///
/// The text is sanitised first (``TerminalSanitizer``: escape sequences and controls the model
/// sent never get through), then styled. What a line is (heading, list item, quote, rule, fence,
/// table row, paragraph) is decided from its first characters, and the rest of it streams; only
/// what that needs is held: a delimiter until the byte after it, a link until its `)`, a word
/// until it ends (it may wrap), a line of code until its end, a table until its last row (it is
/// printed aligned and fitted to the width). Nothing printed is ever repainted.
///
/// Without colour (`color: false`, as under `NO_COLOR`) the structure stays (bullets, frames,
/// gutters, indentation, aligned tables) and no escape sequence is written. Links are OSC 8
/// hyperlinks when `hyperlinks` is true (and colour is on); otherwise the URL follows the text.
public struct MarkdownRenderer {
    private var sanitizer = TerminalSanitizer()
    var w: LineWriter
    private var line: [UInt8] = []
    private var mode = Mode.start
    private var inline = InlineMarkdown()
    var context = Context()
    /// The heading being written (0: none).
    private var headingLevel = 0
    var fence: Fence?
    var table: Table?
    private var lists: [ListItem] = []
    private var listQuoteDepth = 0
    private var previous = LineKind.blank

    private enum Mode {
        case start, inline
        case held(Held)
    }
    enum Held { case fenceLine, fenceOpen, table, rule }
    private enum LineKind { case blank, paragraph, other }

    /// Where a line sits: inside how many quotes, under which list item.
    struct Context {
        var quoteDepth = 0
        /// Columns of list indentation before the line's content.
        var indent = 0
    }

    struct ListItem {
        var markerIndent: Int
        var contentColumn: Int
    }

    struct Fence {
        var char: UInt8
        var length: Int
        var indent: Int
        var context: Context
        var highlighter: CodeHighlighter
    }

    struct Table {
        var context: Context
        var header: [UInt8]
        var aligns: [TableLayout.Align]?
        var rows: [[UInt8]] = []
    }

    /// - Parameters:
    ///   - width: the terminal's columns; lines are wrapped and tables fitted to it.
    ///   - color: whether SGR styling is written.
    ///   - hyperlinks: whether links are OSC 8 hyperlinks (only with colour).
    public init(width: Int, color: Bool, hyperlinks: Bool) {
        w = LineWriter(width: width, color: color, hyperlinks: hyperlinks)
    }

    /// Renders the next piece of the reply; returns what is ready to print.
    public mutating func feed(_ chunk: String) -> RenderedText {
        var clean = sanitizer.clean(chunk)
        clean.withUTF8 { process($0) }
        return drain()
    }

    /// Ends the reply: the line in progress, a table still held, a fence left open (its frame is
    /// closed) are written.
    public mutating func finish() -> RenderedText {
        if !line.isEmpty || !isAtStart { endLine() }
        flushTable()
        if let f = fence {
            closeFence(f)
            fence = nil
        }
        return drain()
    }

    private mutating func process(_ bytes: UnsafeBufferPointer<UInt8>) {
        var i = 0
        while i < bytes.count {
            // Inline text between delimiters goes on a word at a time.
            if case .inline = mode, inline.isIdle {
                var j = i
                while j < bytes.count && InlineMarkdown.isOrdinary(bytes[j]) { j += 1 }
                if j > i {
                    inline.putWord(UnsafeBufferPointer(rebasing: bytes[i..<j]), &w)
                    i = j
                    continue
                }
            }
            step(bytes[i])
            i += 1
        }
    }

    private var isAtStart: Bool {
        if case .start = mode { return true }
        return false
    }

    private mutating func drain() -> RenderedText {
        let r = RenderedText(w.out)
        w.out.removeAll(keepingCapacity: true)
        return r
    }

    private mutating func step(_ b: UInt8) {
        if b == 0x0A {
            endLine()
            return
        }
        switch mode {
        case .inline: inline.put(b, &w)
        case .start:
            line.append(b)
            decide(complete: false)
        case .held: line.append(b)
        }
    }

    private mutating func endLine() {
        switch mode {
        case .start:
            decide(complete: true)
            switch mode {
            case .inline: endInlineLine()
            case .held(let h): endHeldLine(h)
            case .start: break
            }
        case .inline: endInlineLine()
        case .held(let h): endHeldLine(h)
        }
        mode = .start
        line.removeAll(keepingCapacity: true)
    }

    private mutating func endInlineLine() {
        inline.endLine(&w)
        w.flushWord()
        let underline = w.color && headingLevel > 0 && headingLevel <= 2 ? w.maxCol - prefixWidth(context) : 0
        w.endLine()
        if underline > 0 {
            let rule = Piece(
                repeating: headingLevel == 1 ? "━" : "─", count: underline, style: MarkStyle(flags: MarkStyle.heading))
            w.rawLine(prefix(context) + [rule])
        }
        headingLevel = 0
        previous = .paragraph
    }

    // MARK: - Deciding what a line is

    /// Reads the start of the line; once it is known what the line is, sets the mode (and, for
    /// inline text, writes the prefix and what was read so far).
    private mutating func decide(complete: Bool) {
        if fence != nil {
            mode = .held(.fenceLine)
            return
        }
        guard let head = LineHead(line, complete: complete) else { return }
        if table != nil {
            if head.kind == .tableRow && head.quoteDepth == table?.context.quoteDepth {
                mode = .held(.table)
                return
            }
            flushTable()
        }
        switch head.kind {
        case .blank:
            // A blank line: the gutter of the quotes it is in, nothing else.
            w.rawLine(quoteGutter(head.quoteDepth))
            previous = .blank
        case .fence: setHeld(.fenceOpen, head)
        case .tableRow: setHeld(.table, head)
        case .rule: setHeld(.rule, head)
        case .heading(let level):
            context = place(head, item: false)
            headingLevel = level
            startInline(head, at: w.color ? head.contentStart : head.indentEnd, base: MarkStyle.heading)
        case .bullet, .ordered:
            context = place(head, item: true)
            let marker: Piece
            if case .ordered(let number) = head.kind {
                marker = Piece(text: number + " ", style: MarkStyle(flags: MarkStyle.bullet))
            } else {
                marker = Self.bullets[(lists.count - 1) % 3]
            }
            let pieces = prefix(Context(quoteDepth: head.quoteDepth, indent: context.indent - marker.width))
            w.beginLine(pieces + [marker], continuation: prefix(context))
            beginInline(head, at: head.contentStart, base: 0)
        case .paragraph:
            context = place(head, item: false)
            startInline(head, at: head.contentStart, base: 0)
        }
    }

    private mutating func setHeld(_ h: Held, _ head: LineHead) {
        context = place(head, item: false)
        mode = .held(h)
    }

    private mutating func startInline(_ head: LineHead, at start: Int, base: UInt16) {
        w.beginLine(prefix(context), continuation: prefix(context))
        beginInline(head, at: start, base: base)
    }

    private mutating func beginInline(_ head: LineHead, at start: Int, base: UInt16) {
        inline = InlineMarkdown(base: MarkStyle(flags: base))
        mode = .inline
        for b in line[min(start, line.count)...] { inline.put(b, &w) }
        previous = .paragraph
    }

    /// Where a line goes among the open list items: a new item nests under one whose content it
    /// is indented to, other lines belong to the item they are indented under (or, right after
    /// its text, continue it).
    private mutating func place(_ head: LineHead, item: Bool) -> Context {
        if head.quoteDepth != listQuoteDepth {
            lists.removeAll()
            listQuoteDepth = head.quoteDepth
        }
        let lazy = !item && previous == .paragraph && head.kind == .paragraph
        if !lazy {
            while let last = lists.last, head.indent < last.markerIndent + 2 { lists.removeLast() }
        }
        if item {
            let parent = lists.last?.contentColumn ?? 0
            let width = head.markerWidth
            lists.append(ListItem(markerIndent: head.indent, contentColumn: parent + width))
        }
        previous = .other
        return Context(quoteDepth: head.quoteDepth, indent: lists.last?.contentColumn ?? 0)
    }

    static let gutter = Piece(text: "│ ", style: MarkStyle(flags: MarkStyle.frame), width: 2)
    static let bullets = ["• ", "◦ ", "▪ "].map { Piece(text: $0, style: MarkStyle(flags: MarkStyle.bullet), width: 2) }

    func quoteGutter(_ depth: Int) -> [Piece] { Array(repeating: Self.gutter, count: depth) }

    func prefix(_ c: Context) -> [Piece] {
        quoteGutter(c.quoteDepth) + (c.indent > 0 ? [Piece(repeating: " ", count: c.indent, style: .plain)] : [])
    }

    func prefixWidth(_ c: Context) -> Int { c.quoteDepth * 2 + c.indent }

    // MARK: - Held lines

    private mutating func endHeldLine(_ h: Held) {
        switch h {
        case .fenceLine: fenceLine()
        case .fenceOpen: openFence()
        case .table: tableLine(line)
        case .rule:
            let n = max(w.width - prefixWidth(context), 3)
            w.rawLine(prefix(context) + [Piece(repeating: "─", count: n, style: MarkStyle(flags: MarkStyle.frame))])
        }
        previous = .other
    }

    /// A fence's opening line: the frame's top, with the language.
    private mutating func openFence() {
        guard let head = LineHead(line, complete: true), case .fence = head.kind else { return }
        var i = head.contentStart
        let c = line[i]
        while i < line.count && line[i] == c { i += 1 }
        let info = String(decoding: line[i...], as: UTF8.self).trimmingSpaces
        if c == 0x60 && info.contains("`") {
            // Not a fence: inline code on a line of its own.
            w.beginLine(prefix(context), continuation: prefix(context))
            beginInline(head, at: head.contentStart, base: 0)
            endInlineLine()
            return
        }
        let f = Fence(
            char: c, length: i - head.contentStart, indent: head.indent, context: context,
            highlighter: CodeHighlighter(info: info))
        fence = f
        let label = info.split(separator: " ").first.map(String.init) ?? ""
        let frame = MarkStyle(flags: MarkStyle.frame)
        let room = max(w.width - prefixWidth(context), 8)
        var top = [Piece(text: "╭─", style: frame, width: 2)]
        if !label.isEmpty {
            let name = DisplayWidth.truncate(label, to: max(room - 6, 1))
            top += [
                Piece(text: " ", style: frame, width: 1), Piece(text: name, style: MarkStyle(flags: MarkStyle.bold)),
                Piece(text: " ", style: frame, width: 1),
            ]
        }
        let used = top.reduce(0) { $0 + $1.width }
        top.append(Piece(repeating: "─", count: max(room - used, 1), style: frame))
        w.rawLine(prefix(context) + top)
    }

    private mutating func closeFence(_ f: Fence) {
        let room = max(w.width - prefixWidth(f.context), 8)
        w.rawLine(
            prefix(f.context) + [
                Piece(text: "╰", style: Self.frame, width: 1),
                Piece(repeating: "─", count: room - 1, style: Self.frame),
            ])
    }

    static let frame = MarkStyle(flags: MarkStyle.frame)

    /// A line inside a fence: its end, or a line of code (highlighted, in the frame).
    private mutating func fenceLine() {
        guard var f = fence else { return }
        var i = 0
        var depth = 0
        while depth < f.context.quoteDepth && i < line.count {
            while i < line.count && line[i] == 0x20 && i < 3 { i += 1 }
            guard i < line.count, line[i] == 0x3E else { break }
            i += 1
            if i < line.count && line[i] == 0x20 { i += 1 }
            depth += 1
        }
        var spaces = 0
        while i + spaces < line.count && line[i + spaces] == 0x20 { spaces += 1 }
        var run = 0
        while i + spaces + run < line.count && line[i + spaces + run] == f.char { run += 1 }
        let rest = line[(i + spaces + run)...]
        if run >= f.length && rest.allSatisfy({ $0 == 0x20 }) {
            closeFence(f)
            fence = nil
            return
        }
        let code = Array(line[(i + min(spaces, f.indent))...])
        let styles = f.highlighter.styles(code)
        fence = f
        let gutter = prefix(f.context) + [Self.gutter]
        w.codeLine(code, styles, prefix: gutter, continuation: gutter)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
