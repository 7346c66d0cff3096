/// What a Markdown line is, read from its first bytes: the quotes it is in (`>`), its indentation,
/// and its kind. Nil while the bytes so far do not decide it (`-` may start an item or a rule,
/// `#` a heading or text, `1` a numbered item or text).
struct LineHead {
    enum Kind: Equatable {
        case blank, paragraph, rule, fence, tableRow
        case heading(Int)
        case bullet
        /// The number and its delimiter as written, e.g. `3.` or `3)`.
        case ordered(String)
    }

    var kind = Kind.paragraph
    var quoteDepth = 0
    /// Columns of indentation after the quote markers (a tab counts to the next multiple of 4).
    var indent = 0
    /// The index of the first byte after the indentation.
    var indentEnd = 0
    /// The index of the line's text (after a heading's `#`s or an item's marker).
    var contentStart = 0

    /// Columns the item's marker takes when shown (`• `, `12. `).
    var markerWidth: Int {
        if case .ordered(let n) = kind { return n.count + 1 }
        return 2
    }

    init?(_ line: [UInt8], complete: Bool) {
        let n = line.count
        var i = 0
        while true {
            var sp = 0
            while i + sp < n && line[i + sp] == 0x20 && sp < 3 { sp += 1 }
            if i + sp == n && !complete { return nil }
            guard i + sp < n, line[i + sp] == 0x3E else { break }
            quoteDepth += 1
            i += sp + 1
            if i < n && line[i] == 0x20 { i += 1 }
        }
        var j = i
        while j < n && (line[j] == 0x20 || line[j] == 0x09) {
            indent += line[j] == 0x09 ? 4 - indent % 4 : 1
            j += 1
        }
        indentEnd = j
        contentStart = j
        if j == n {
            guard complete else { return nil }
            kind = .blank
            return
        }
        guard let k = Self.kind(line, at: j, complete: complete) else { return nil }
        kind = k.kind
        contentStart = k.content
    }

    /// The kind of a line whose text starts at `j`, and where its content starts.
    private static func kind(_ line: [UInt8], at j: Int, complete: Bool) -> (kind: Kind, content: Int)? {
        let n = line.count
        let c = line[j]
        switch c {
        case 0x23:  // #
            var k = 0
            while j + k < n && line[j + k] == 0x23 { k += 1 }
            if j + k == n {
                guard complete else { return nil }
                return k <= 6 ? (.heading(k), n) : (.paragraph, j)
            }
            return k <= 6 && line[j + k] == 0x20 ? (.heading(k), skipSpaces(line, j + k)) : (.paragraph, j)
        case 0x60, 0x7E:  // ` ~
            var k = 0
            while j + k < n && line[j + k] == c { k += 1 }
            if k >= 3 { return (.fence, j) }
            return j + k == n && !complete ? nil : (.paragraph, j)
        case 0x7C:  // |
            return (.tableRow, j)
        case 0x2D, 0x2A, 0x2B, 0x5F:  // - * + _
            return markerOrRule(line, at: j, complete: complete)
        case 0x30...0x39:
            var p = j
            while p < n && line[p] >= 0x30 && line[p] <= 0x39 && p - j < 10 { p += 1 }
            if p == n || (p + 1 == n && (line[p] == 0x2E || line[p] == 0x29)) {
                return complete ? (.paragraph, j) : nil
            }
            if p - j <= 9 && (line[p] == 0x2E || line[p] == 0x29) && line[p + 1] == 0x20 {
                return (.ordered(String(decoding: line[j...p], as: UTF8.self)), skipSpaces(line, p + 1))
            }
            return (.paragraph, j)
        default:
            return (.paragraph, j)
        }
    }

    /// `-`, `*`, `+` or `_`: a rule when the line holds three or more of it and spaces only, an
    /// item when a space follows it (`_` never starts one), text otherwise.
    private static func markerOrRule(_ line: [UInt8], at j: Int, complete: Bool) -> (kind: Kind, content: Int)? {
        let c = line[j]
        var count = 0
        var other = false
        for b in line[j...] {
            if b == c {
                count += 1
            } else if b != 0x20 && b != 0x09 {
                other = true
                break
            }
        }
        let spaceAfter = j + 1 < line.count && (line[j + 1] == 0x20 || line[j + 1] == 0x09)
        if !other {
            guard complete else { return nil }
            if count >= 3 { return (.rule, j) }
        }
        return c != 0x5F && spaceAfter ? (.bullet, skipSpaces(line, j + 1)) : (.paragraph, j)
    }

    private static func skipSpaces(_ line: [UInt8], _ i: Int) -> Int {
        var k = i
        while k < line.count && (line[k] == 0x20 || line[k] == 0x09) { k += 1 }
        return k
    }
}
