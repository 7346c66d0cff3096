/// A GitHub-style table, held until its last row, then printed in a frame with its columns
/// aligned as the delimiter row says and fitted to the width (the widest columns give way first;
/// a cell that no longer fits wraps inside its column).
enum TableLayout {
    enum Align { case left, center, right }

    /// A cell laid out: its lines, each with its width, and the widest.
    typealias Laid = (lines: [(bytes: [UInt8], cells: Int)], width: Int)

    /// The cells of a row (`| a | b |`): split at `|` (not `\|`, not inside a code span), trimmed.
    static func cells(_ row: [UInt8]) -> [[UInt8]] {
        var r = row[...]
        while r.last == 0x20 || r.last == 0x09 { r = r.dropLast() }
        if r.first == 0x7C { r = r.dropFirst() }
        if r.last == 0x7C && !(r.count >= 2 && r[r.endIndex - 2] == 0x5C) { r = r.dropLast() }
        var out: [[UInt8]] = []
        var cell: [UInt8] = []
        var inCode = false
        var k = r.startIndex
        while k < r.endIndex {
            let b = r[k]
            if b == 0x5C && k + 1 < r.endIndex && r[k + 1] == 0x7C {
                cell.append(0x7C)
                k += 2
                continue
            }
            if b == 0x60 { inCode.toggle() }
            if b == 0x7C && !inCode {
                out.append(trim(cell))
                cell.removeAll()
            } else {
                cell.append(b)
            }
            k += 1
        }
        out.append(trim(cell))
        return out
    }

    /// The alignments a delimiter row (`|:---|--:|`) gives, or nil when the row is not one.
    static func delimiter(_ row: [UInt8]) -> [Align]? {
        var aligns: [Align] = []
        for c in cells(row) {
            guard c.contains(0x2D), c.allSatisfy({ $0 == 0x2D || $0 == 0x3A || $0 == 0x20 }) else { return nil }
            let left = c.first == 0x3A
            let right = c.last == 0x3A
            aligns.append(left && right ? .center : right ? .right : .left)
        }
        return aligns.isEmpty ? nil : aligns
    }

    private static func trim(_ c: [UInt8]) -> [UInt8] {
        var s = c[...]
        while s.first == 0x20 || s.first == 0x09 { s = s.dropFirst() }
        while s.last == 0x20 || s.last == 0x09 { s = s.dropLast() }
        return Array(s)
    }

    /// A cell's inline Markdown, styled, as lines no wider than `width`, each with its width.
    static func lines(_ cell: [UInt8], width: Int, bold: Bool, like w: LineWriter) -> [(bytes: [UInt8], cells: Int)] {
        var cw = LineWriter(width: width, color: w.color, hyperlinks: w.hyperlinks)
        return lines(cell, bold: bold, in: &cw)
    }

    /// ``lines(_:width:bold:like:)`` written with `cw`, a writer at the start of a line (so one
    /// writer and its buffers serve every cell of a table).
    static func lines(_ cell: [UInt8], bold: Bool, in cw: inout LineWriter) -> [(bytes: [UInt8], cells: Int)] {
        var inline = InlineMarkdown(base: MarkStyle(flags: bold ? MarkStyle.bold : 0))
        cw.out.removeAll(keepingCapacity: true)
        cw.beginLine([], continuation: [])
        for b in cell { inline.put(b, &cw) }
        inline.endLine(&cw)
        cw.endLine()
        var out: [(bytes: [UInt8], cells: Int)] = []
        for piece in cw.out.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
            let bytes = Array(piece)
            out.append((bytes, DisplayWidth.visible(utf8: bytes)))
        }
        return out.isEmpty ? [([], 0)] : out
    }

    /// Each cell laid out unwrapped (the first row bold, as the header), with its widest line.
    static func natural(_ rows: [[[UInt8]]], like w: LineWriter) -> [[Laid]] {
        var cw = LineWriter(width: Int.max / 2, color: w.color, hyperlinks: w.hyperlinks)
        return rows.enumerated().map { r, row in
            row.map { cell in
                let l = lines(cell, bold: r == 0, in: &cw)
                return (l, l.map { $0.cells }.max() ?? 0)
            }
        }
    }

    /// Column widths: each column's widest cell, narrowed (widest first, to 3 at least) until the
    /// table fits in `room` columns.
    static func widths(_ natural: [[Laid]], room: Int) -> [Int] {
        let n = natural.first?.count ?? 0
        var widths = [Int](repeating: 1, count: n)
        for row in natural {
            for (c, cell) in row.enumerated() { widths[c] = max(widths[c], cell.width) }
        }
        let target = room - 3 * n - 1
        while widths.reduce(0, +) > target, let widest = widths.indices.max(by: { widths[$0] < widths[$1] }),
            widths[widest] > 3
        {
            widths[widest] -= 1
        }
        return widths
    }
}

extension MarkdownRenderer {
    /// A held line that starts with `|`: the header, the delimiter row, or a row.
    mutating func tableLine(_ line: [UInt8]) {
        guard let head = LineHead(line, complete: true) else { return }
        let row = Array(line[head.indentEnd...])
        guard var t = table else {
            table = Table(context: context, header: row)
            return
        }
        if t.aligns == nil {
            if let aligns = TableLayout.delimiter(row), aligns.count == TableLayout.cells(t.header).count {
                t.aligns = aligns
                table = t
            } else {
                // The line before was text after all.
                table = nil
                textLine(t.header, t.context)
                table = Table(context: context, header: row)
            }
            return
        }
        t.rows.append(row)
        table = t
    }

    /// Prints the held table (or, when no delimiter row followed it, the line held as text).
    mutating func flushTable() {
        guard let t = table else { return }
        table = nil
        guard let aligns = t.aligns else {
            textLine(t.header, t.context)
            return
        }
        let n = aligns.count
        let rows = ([t.header] + t.rows).map { r -> [[UInt8]] in
            let c = TableLayout.cells(r)
            return Array((c + [[UInt8]](repeating: [], count: max(n - c.count, 0))).prefix(n))
        }
        let natural = TableLayout.natural(rows, like: w)
        let widths = TableLayout.widths(natural, room: w.width - prefixWidth(t.context))
        let prefix = prefix(t.context)
        border("┌", "┬", "┐", widths, prefix)
        for (r, row) in rows.enumerated() {
            // A cell as wide as its column or narrower is laid out as it was measured.
            let cells = row.enumerated().map { c, cell in
                natural[r][c].width <= widths[c]
                    ? natural[r][c].lines : TableLayout.lines(cell, width: widths[c], bold: r == 0, like: w)
            }
            tableRow(cells, widths: widths, aligns: aligns, prefix: prefix)
            if r == 0 { border("├", "┼", "┤", widths, prefix) }
        }
        border("└", "┴", "┘", widths, prefix)
    }

    private mutating func border(_ l: String, _ m: String, _ r: String, _ widths: [Int], _ prefix: [Piece]) {
        var line = Piece(text: l, style: Self.frame, width: widths.reduce(0) { $0 + $1 + 3 } + 1)
        for (k, width) in widths.enumerated() {
            if k > 0 { line.bytes += m.utf8 }
            line.bytes += Piece(repeating: "─", count: width + 2, style: Self.frame).bytes
        }
        line.bytes += r.utf8
        w.rawLine(prefix + [line])
    }

    private mutating func tableRow(
        _ cells: [[(bytes: [UInt8], cells: Int)]], widths: [Int], aligns: [TableLayout.Align], prefix: [Piece]
    ) {
        let height = cells.map(\.count).max() ?? 1
        let bar = Piece(text: "│", style: Self.frame, width: 1)
        for k in 0..<height {
            w.beginLine(prefix, continuation: [])
            for (c, lines) in cells.enumerated() {
                w.rawPiece(bar)
                let (bytes, used) = k < lines.count ? lines[k] : ([], 0)
                let space = max(widths[c] - used, 0)
                let before = aligns[c] == .right ? space : aligns[c] == .center ? space / 2 : 0
                w.appendStyled(Array(repeating: 0x20, count: before + 1) + bytes, cells: before + 1 + used)
                w.appendStyled(Array(repeating: 0x20, count: space - before + 1), cells: space - before + 1)
            }
            w.rawPiece(bar)
            w.endLine()
        }
    }

    /// One line of inline text under `context` (a line held as a possible table header).
    mutating func textLine(_ bytes: [UInt8], _ context: Context) {
        w.beginLine(prefix(context), continuation: prefix(context))
        var inline = InlineMarkdown()
        for b in bytes { inline.put(b, &w) }
        inline.endLine(&w)
        w.endLine()
    }
}
