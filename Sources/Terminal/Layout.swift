/// Text laid out to a terminal's width, measured in display cells (``DisplayWidth``): paragraphs
/// wrapped with a hanging indent, lines of fields broken between fields, a status line that keeps
/// its most useful fields, and text cut to columns. Pure functions: the caller knows the width.
public enum Layout {
    /// The width to use when the terminal's is unknown.
    public static let defaultWidth = 80

    /// `text` word-wrapped to `width` cells. Each line of `text` is a paragraph: its leading
    /// spaces are kept on its first line, and the lines it continues on are indented by those
    /// spaces plus `hanging`. A word longer than a line is broken (after a `/` when one fits).
    public static func wrap(_ text: String, width: Int, hanging: Int = 0) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).flatMap { paragraph -> [String] in
            let indent = paragraph.prefix { $0 == " " }.count
            let words = paragraph.dropFirst(indent).split(separator: " ").map(String.init)
            return pack(words, indent: indent, hanging: indent + hanging, width: width)
        }
    }

    /// A line of fields (separated by two or more spaces, or ` · `) broken between fields when it
    /// does not fit in `width` cells; the lines it continues on are indented by its own leading
    /// spaces plus `hanging`. A field that does not fit a line on its own is word-wrapped.
    public static func fold(_ line: String, width: Int, hanging: Int = 4) -> [String] {
        guard DisplayWidth.of(line) > width else { return [line] }
        let indent = line.prefix { $0 == " " }.count
        let (fields, separators) = splitFields(String(line.dropFirst(indent)))
        var packer = LinePacker(width: width, indent: indent, hanging: indent + hanging)
        for (i, field) in fields.enumerated() {
            packer.add(field, after: i == 0 ? "" : separators[i - 1])
        }
        return packer.finish()
    }

    /// Every line of `block` folded (``fold(_:width:hanging:)``) to `width` cells.
    public static func foldBlock(_ block: String, width: Int, hanging: Int = 4) -> [String] {
        block.split(separator: "\n", omittingEmptySubsequences: false).flatMap {
            fold(String($0), width: width, hanging: hanging)
        }
    }

    /// A one-line summary that never wraps: the fields that fit, taken by `priority` (lower
    /// first; equal ones in order) and shown in their original order. When not even the first
    /// fits, it is cut with `…`.
    public static func statusLine(_ fields: [(text: String, priority: Int)], width: Int, separator: String = " · ")
        -> String
    {
        let order = fields.indices.sorted { (fields[$0].priority, $0) < (fields[$1].priority, $1) }
        let sepWidth = DisplayWidth.of(separator)
        var chosen = Set<Int>()
        var used = 0
        for i in order {
            let w = DisplayWidth.of(fields[i].text) + (chosen.isEmpty ? 0 : sepWidth)
            if used + w <= width {
                chosen.insert(i)
                used += w
            }
        }
        guard !chosen.isEmpty else { return DisplayWidth.truncate(fields.first?.text ?? "", to: width) }
        return fields.indices.filter(chosen.contains).map { fields[$0].text }.joined(separator: separator)
    }

    // MARK: - Helpers

    /// Words packed greedily into lines: the first starts after `indent` spaces, the others after
    /// `hanging`. A word wider than a line is broken.
    static func pack(_ words: [String], indent: Int, hanging: Int, width: Int) -> [String] {
        var packer = LinePacker(width: width, indent: indent, hanging: hanging)
        for word in words { packer.add(word, after: " ") }
        return packer.finish()
    }

    /// The start of `word` that fits in `cells` (at least one character; cut after its last `/`,
    /// `-`, `_`, `,` or `=` when that keeps half of it), and the rest.
    static func breakWord(_ word: String, cells: Int) -> (head: String, tail: String) {
        var head = ""
        var used = 0
        for ch in word {
            let w = DisplayWidth.of(ch)
            if used + w > cells && !head.isEmpty { break }
            head.append(ch)
            used += w
        }
        if head.count < word.count, let cut = head.lastIndex(where: { "/-_,=".contains($0) }),
            DisplayWidth.of(head[...cut]) * 2 >= cells
        {
            head = String(head[...cut])
        }
        return (head, String(word.dropFirst(head.count)))
    }

    /// Fields and the separators between them: runs of two or more spaces, or ` · `.
    static func splitFields(_ s: String) -> (fields: [String], separators: [String]) {
        var fields: [String] = []
        var separators: [String] = []
        var current = ""
        let chars = Array(s)
        var i = 0
        while i < chars.count {
            if chars[i] == " ", i + 2 < chars.count, chars[i + 1] == "·", chars[i + 2] == " " {
                fields.append(current)
                separators.append(" · ")
                current = ""
                i += 3
            } else if chars[i] == " ", i + 1 < chars.count, chars[i + 1] == " " {
                var j = i
                while j < chars.count, chars[j] == " " { j += 1 }
                fields.append(current)
                separators.append(String(chars[i..<j]))
                current = ""
                i = j
            } else {
                current.append(chars[i])
                i += 1
            }
        }
        fields.append(current)
        return (fields, separators)
    }

    /// `s` without its trailing spaces.
    public static func trimmedRight(_ s: String) -> String {
        var s = s
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// Fills lines with tokens, each after its separator, breaking before a token that does not fit.
/// A token too wide for a line of its own is split into its words, and a word too wide is cut.
struct LinePacker {
    let width: Int
    let hanging: Int
    private(set) var lines: [String] = []
    private var current: String
    private var used: Int
    private var hasToken = false

    init(width: Int, indent: Int, hanging: Int) {
        self.width = max(1, width)
        // A continuation indent leaves at least half the line for text.
        self.hanging = min(hanging, self.width / 2)
        current = String(repeating: " ", count: min(indent, self.width / 2))
        used = current.count
    }

    mutating func add(_ token: String, after separator: String) {
        let w = DisplayWidth.of(token)
        let sepWidth = DisplayWidth.of(separator)
        if hasToken {
            if used + sepWidth + w <= width {
                current += separator + token
                used += sepWidth + w
                return
            }
            newLine()
        }
        if used + w > width, token.contains(" ") {
            let words = token.split(separator: " ")
            for (i, word) in words.enumerated() { add(String(word), after: i == 0 ? "" : " ") }
            return
        }
        var rest = token
        while DisplayWidth.of(rest) > width - used {
            let (head, tail) = Layout.breakWord(rest, cells: max(1, width - used))
            current += head
            newLine()
            rest = tail
        }
        current += rest
        used += DisplayWidth.of(rest)
        hasToken = hasToken || !rest.isEmpty
    }

    private mutating func newLine() {
        lines.append(Layout.trimmedRight(current))
        current = String(repeating: " ", count: hanging)
        used = hanging
        hasToken = false
    }

    /// The lines, the last one included.
    mutating func finish() -> [String] {
        if hasToken || lines.isEmpty { lines.append(Layout.trimmedRight(current)) }
        return lines
    }
}
