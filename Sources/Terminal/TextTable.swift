/// A table of text cells laid out to a width in display cells: aligned columns when they fit;
/// else the wrappable columns narrowed, their cells wrapped within them; else, when even that
/// cannot fit, one record per row (its first cell, then `header: value` lines).
public struct TextTable: Sendable {
    public enum Alignment: Sendable { case left, right }

    public var header: [String]
    public var rows: [[String]]
    public var alignments: [Alignment]
    /// Columns whose cells may be wrapped within a narrower column.
    public var wrappable: Set<Int>
    public var indent: Int
    public var gap: Int

    public init(
        header: [String], rows: [[String]], alignments: [Alignment] = [], wrappable: Set<Int> = [], indent: Int = 2,
        gap: Int = 2
    ) {
        self.header = header
        self.rows = rows.map { r in r + Array(repeating: "", count: max(0, header.count - r.count)) }
        self.alignments = alignments + Array(repeating: .left, count: max(0, header.count - alignments.count))
        self.wrappable = wrappable
        self.indent = indent
        self.gap = gap
    }

    /// The table's lines, none wider than `width` cells.
    public func render(width: Int) -> [String] {
        guard !header.isEmpty else { return [] }
        let natural = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(DisplayWidth.of).max() ?? 0 }
        let chrome = indent + gap * (header.count - 1)
        if chrome + natural.reduce(0, +) <= width { return lines(widths: natural) }
        if let narrowed = narrowed(natural, room: width - chrome) { return lines(widths: narrowed) }
        return records(width: width)
    }

    /// Column widths with the wrappable columns shrunk to share `room`, or nil when they cannot
    /// keep their minimum (the widest word of a body cell, at least 6 cells, at most the column).
    func narrowed(_ natural: [Int], room: Int) -> [Int]? {
        let fixed = natural.indices.filter { !wrappable.contains($0) }.map { natural[$0] }.reduce(0, +)
        let flexible = natural.indices.filter { wrappable.contains($0) }.sorted { natural[$0] < natural[$1] }
        guard !flexible.isEmpty else { return nil }
        let minimum = { (c: Int) -> Int in
            let words = rows.flatMap { $0[c].split(separator: " ") }.map(DisplayWidth.of).max() ?? 0
            return min(natural[c], max(6, words))
        }
        var left = room - fixed
        guard left >= flexible.map(minimum).reduce(0, +) else { return nil }
        var widths = natural
        // Water-filling: the narrowest columns keep their width, the others share what is left.
        for (k, c) in flexible.enumerated() {
            let share = left / (flexible.count - k)
            widths[c] = max(minimum(c), min(natural[c], share))
            left -= widths[c]
        }
        return left >= 0 ? widths : nil
    }

    func lines(widths: [Int]) -> [String] {
        // A header of empty cells is no header.
        (header.allSatisfy(\.isEmpty) ? rows : [header] + rows).flatMap { row -> [String] in
            let cells = row.indices.map { c in
                DisplayWidth.of(row[c]) <= widths[c] ? [row[c]] : Layout.wrap(row[c], width: widths[c])
            }
            let height = cells.map(\.count).max() ?? 1
            return (0..<height).map { k in
                let parts = cells.indices.map { c -> String in
                    let s = k < cells[c].count ? cells[c][k] : ""
                    let pad = String(repeating: " ", count: max(0, widths[c] - DisplayWidth.of(s)))
                    return alignments[c] == .right ? pad + s : s + pad
                }
                return Layout.trimmedRight(
                    String(repeating: " ", count: indent)
                        + parts.joined(separator: String(repeating: " ", count: gap)))
            }
        }
    }

    /// One record per row: its first cell, then the others as `header value` fields (` · `
    /// between them), folded to the width.
    func records(width: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        return rows.flatMap { row -> [String] in
            let fields = row.indices.dropFirst().filter { !row[$0].isEmpty }.map { c in
                header[c].isEmpty ? row[c] : header[c] + " " + row[c]
            }
            let title = Layout.wrap(pad + row[0], width: width, hanging: 2)
            guard !fields.isEmpty else { return title }
            return title + Layout.fold(pad + "  " + fields.joined(separator: " · "), width: width, hanging: 2)
        }
    }

    /// The width of the table with every column as wide as its widest cell.
    public var naturalWidth: Int {
        let natural = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(DisplayWidth.of).max() ?? 0 }
        return indent + gap * max(0, header.count - 1) + natural.reduce(0, +)
    }
}
