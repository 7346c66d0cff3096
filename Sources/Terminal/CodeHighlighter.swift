/// Colours a fenced code block line by line: keywords, strings, comments, numbers (and keys in
/// JSON and YAML, variables in shell, capitalised type names in the C family). One small
/// tokenizer, set up per language family by a ``CodeHighlighter/Language``; block comments and
/// multi-line strings carry over from one line to the next.
struct CodeHighlighter {
    struct Language {
        var keywords: Set<String>
        var lineComments: [[UInt8]] = []
        var blockComment: (open: [UInt8], close: [UInt8])?
        var quotes: [UInt8] = [0x22, 0x27]
        /// Quotes whose strings may span lines (JavaScript's backtick, Python's triple quotes).
        var multiLineQuotes: [UInt8] = []
        var tripleQuotes = false
        var caseInsensitive = false
        var capitalizedTypes = false
        var keys = false
        var shellVariables = false
    }

    private let language: Language?
    /// Open across lines: a block comment, or a string with its quote (and whether tripled).
    private var inComment = false
    private var inString: (quote: UInt8, triple: Bool)?

    /// `info` is the fence's info string (`python`, `ts title="x"`…); nil when no language is known.
    init(info: String) {
        let name = info.split(separator: " ").first.map { $0.lowercased() } ?? ""
        language = Self.language(named: name)
    }

    var knowsLanguage: Bool { language != nil }

    /// The style of each byte of `line`.
    mutating func styles(_ line: [UInt8]) -> [MarkStyle] {
        var out = [MarkStyle](repeating: .plain, count: line.count)
        guard let lang = language else { return out }
        var i = 0
        while i < line.count {
            if inComment {
                let end = Self.find(lang.blockComment?.close ?? [], in: line, from: i)
                let stop = end.map { $0 + (lang.blockComment?.close.count ?? 0) } ?? line.count
                mark(&out, i, stop, MarkStyle.comment)
                inComment = end == nil
                i = stop
                continue
            }
            if let s = inString {
                i = string(line, from: i, quote: s.quote, triple: s.triple, &out)
                continue
            }
            i = token(line, at: i, lang, &out)
        }
        return out
    }

    /// One token from `i`; returns where the next starts.
    private mutating func token(_ line: [UInt8], at i: Int, _ lang: Language, _ out: inout [MarkStyle]) -> Int {
        let b = line[i]
        if b == 0x20 || b == 0x09 { return i + 1 }
        for c in lang.lineComments where Self.matches(c, line, i) {
            // In shell, `#` starts a comment only at the start of a word.
            if c == [0x23] && lang.shellVariables && i > 0 && line[i - 1] != 0x20 && line[i - 1] != 0x09 { continue }
            mark(&out, i, line.count, MarkStyle.comment)
            return line.count
        }
        if let bc = lang.blockComment, Self.matches(bc.open, line, i) {
            mark(&out, i, i + bc.open.count, MarkStyle.comment)
            inComment = true
            return i + bc.open.count
        }
        if lang.quotes.contains(b) {
            let triple = lang.tripleQuotes && i + 2 < line.count && line[i + 1] == b && line[i + 2] == b
            mark(&out, i, i + (triple ? 3 : 1), MarkStyle.string)
            let end = string(line, from: i + (triple ? 3 : 1), quote: b, triple: triple, &out)
            if lang.keys && Self.followedByColon(line, end) { mark(&out, i, end, MarkStyle.key) }
            if !lang.multiLineQuotes.contains(b) && !triple { inString = nil }
            return end
        }
        if lang.shellVariables && b == 0x24 {
            var j = i + 1
            if j < line.count && line[j] == 0x7B {
                while j < line.count && line[j] != 0x7D { j += 1 }
                j = min(j + 1, line.count)
            } else {
                while j < line.count && Self.isIdent(line[j]) { j += 1 }
            }
            mark(&out, i, j, MarkStyle.type)
            return max(j, i + 1)
        }
        if Self.isDigit(b) || (b == 0x2D && i + 1 < line.count && Self.isDigit(line[i + 1]) && lang.keys) {
            var j = i + 1
            while j < line.count && (Self.isIdent(line[j]) || line[j] == 0x2E) { j += 1 }
            mark(&out, i, j, MarkStyle.number)
            return j
        }
        if Self.isIdentStart(b) {
            var j = i + 1
            while j < line.count && (Self.isIdent(line[j]) || (lang.keys && line[j] == 0x2D)) { j += 1 }
            var word = String(decoding: line[i..<j], as: UTF8.self)
            if lang.caseInsensitive { word = word.lowercased() }
            if lang.keys && Self.followedByColon(line, j) {
                mark(&out, i, j, MarkStyle.key)
            } else if lang.keywords.contains(word) {
                mark(&out, i, j, MarkStyle.keyword)
            } else if lang.capitalizedTypes && b >= 0x41 && b <= 0x5A {
                mark(&out, i, j, MarkStyle.type)
            }
            return j
        }
        return i + 1
    }

    /// The rest of a string from `i` (after its opening quote); returns the index after its end,
    /// or the line's end with the string left open.
    private mutating func string(_ line: [UInt8], from i: Int, quote: UInt8, triple: Bool, _ out: inout [MarkStyle])
        -> Int
    {
        var j = i
        while j < line.count {
            if line[j] == 0x5C {
                j += 2
                continue
            }
            if line[j] == quote && (!triple || (j + 2 < line.count && line[j + 1] == quote && line[j + 2] == quote)) {
                let end = j + (triple ? 3 : 1)
                mark(&out, i, end, MarkStyle.string)
                inString = nil
                return end
            }
            j += 1
        }
        mark(&out, i, line.count, MarkStyle.string)
        inString = (quote, triple)
        return line.count
    }

    private func mark(_ out: inout [MarkStyle], _ from: Int, _ to: Int, _ flag: UInt16) {
        let s = MarkStyle(flags: flag)
        for k in from..<min(to, out.count) { out[k] = s }
    }

    private static func matches(_ p: [UInt8], _ line: [UInt8], _ i: Int) -> Bool {
        guard !p.isEmpty, i + p.count <= line.count else { return false }
        for k in 0..<p.count where line[i + k] != p[k] { return false }
        return true
    }

    private static func find(_ p: [UInt8], in line: [UInt8], from i: Int) -> Int? {
        var j = i
        while j + p.count <= line.count {
            if matches(p, line, j) { return j }
            j += 1
        }
        return nil
    }

    private static func followedByColon(_ line: [UInt8], _ i: Int) -> Bool {
        var j = i
        while j < line.count && line[j] == 0x20 { j += 1 }
        return j < line.count && line[j] == 0x3A
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    static func isIdentStart(_ b: UInt8) -> Bool { b == 0x5F || b == 0x40 || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) }
    static func isIdent(_ b: UInt8) -> Bool { isIdentStart(b) || isDigit(b) }
}
