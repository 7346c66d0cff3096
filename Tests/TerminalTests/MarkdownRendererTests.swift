import XCTest

@testable import Terminal

final class MarkdownRendererTests: XCTestCase {
    /// A reply with every element the renderer knows.
    static let everything = """
        # Title

        Some **bold**, *italic*, _also italic_, ~~struck~~ and `inline code`, a [link](https://example.com/a) \
        and <https://example.org>; snake_case_name and 2 * 3 * 4 stay as they are, \\*escaped\\*.

        ## Lists
        - one
        - two **strong**
          - nested a
            1. deep one
            2. deep two
        - three

        3. third
        4. fourth

        > a quote with *emphasis* that is long enough to wrap at forty columns for sure
        > > nested

        ---

        | Name | Age | City |
        |:-----|----:|:----:|
        | Alice | 30 | Paris |
        | Bob **B** | 4 | `NYC` |

        ```python
        def f(x):  # comment
            return "s" + 42
        ```

        ```swift
        let x = "a" // note
        ```

        ```sh
        echo "$HOME" # done
        ```

        ```js
        const a = 1;
        ```

        ```ts
        let n: number = 2;
        ```

        ```json
        {"a": 1, "b": [true, null]}
        ```

        ```go
        func main() { return }
        ```

        ```rust
        fn main() { let s = "x"; }
        ```

        ```sql
        SELECT name FROM t WHERE id = 3; -- why
        ```

        ```yaml
        key: "value" # c
        n: 5
        ```
        Unicode: 日本語 and 🙂 here.
        ```python
        print("never closed")
        """

    private func render(
        _ text: String, width: Int = 40, color: Bool = true, hyperlinks: Bool = true, pieces: [String]? = nil
    )
        -> String
    {
        var r = MarkdownRenderer(width: width, color: color, hyperlinks: hyperlinks)
        var out = ""
        for p in pieces ?? [text] { out += r.feed(p).text }
        return out + r.finish().text
    }

    private func scalars(_ s: String) -> [String] { s.unicodeScalars.map { String($0) } }

    func testOneScalarAtATimeRendersTheSameAsWhole() {
        for (color, links) in [(true, true), (true, false), (false, false)] {
            let whole = render(Self.everything, color: color, hyperlinks: links)
            let split = render(Self.everything, color: color, hyperlinks: links, pieces: scalars(Self.everything))
            XCTAssertEqual(split, whole, "color \(color) hyperlinks \(links)")
        }
    }

    func testAnyCutRendersTheSame() {
        let whole = render(Self.everything)
        var rng = SystemRandomNumberGenerator()
        let chars = Array(Self.everything.unicodeScalars)
        for _ in 0..<20 {
            var pieces: [String] = []
            var i = 0
            while i < chars.count {
                let n = Int.random(in: 1...9, using: &rng)
                var s = String.UnicodeScalarView()
                s.append(contentsOf: chars[i..<min(i + n, chars.count)])
                pieces.append(String(s))
                i += n
            }
            XCTAssertEqual(render(Self.everything, pieces: pieces), whole)
        }
    }

    func testNothingIsRepaintedAndOnlyStylingEscapesAreWritten() {
        let out = render(Self.everything)
        XCTAssertFalse(out.contains("\r"))
        // Every CSI sequence is SGR (ends in m): no cursor movement, no erasing.
        let csi = try! NSRegularExpression(pattern: "\u{1B}\\[[0-9;?]*([A-Za-z])")
        for m in csi.matches(in: out, range: NSRange(out.startIndex..., in: out)) {
            XCTAssertEqual((out as NSString).substring(with: m.range(at: 1)), "m")
        }
    }

    func testEveryLineFitsTheWidth() {
        for width in [30, 40, 80] {
            for line in render(Self.everything, width: width).split(separator: "\n") {
                XCTAssertLessThanOrEqual(DisplayWidth.visible(String(line)), width, "\(width): \(line)")
            }
        }
    }

    func testEscapeSequencesFromTheModelNeverGetThrough() {
        let evil =
            "A\u{1B}]52;c;ZXZpbA==\u{07}B \u{1B}[2J**C\u{1B}[31m** [x](https://e.com/\u{1B}]0;t\u{07}) `\u{1B}[H`\n"
            + "```sh\necho \u{1B}]8;;http://evil\u{1B}\\hi\u{9B}2J\n```\n| a\u{1B}[5m | b |\n|---|---|\n| \u{1B}c | d |\n"
        for color in [true, false] {
            let out = render(evil, color: color, pieces: scalars(evil))
            XCTAssertFalse(out.contains("]52"), out)
            XCTAssertFalse(out.contains("[2J") || out.contains("\u{9B}"), out)
            XCTAssertFalse(out.contains("evil") || out.contains("]0;"), out)
            XCTAssertFalse(out.contains("\u{1B}[31m") || out.contains("\u{1B}[H") || out.contains("\u{1B}[5m"), out)
            XCTAssertFalse(out.contains("\u{07}"), out)
            if !color { XCTAssertFalse(out.contains("\u{1B}"), out) }
            XCTAssertTrue(out.contains("AB"), out)
        }
        // The only OSC is the renderer's own hyperlink, to the URL as sanitised.
        let out = render(evil)
        XCTAssertTrue(out.contains("\u{1B}]8;;https://e.com/\u{1B}\\"), out)
    }

    func testWithoutColourTheStructureStaysAndNoEscapeIsWritten() {
        let out = render(Self.everything, width: 60, color: false, hyperlinks: true)
        XCTAssertFalse(out.contains("\u{1B}"))
        for expected in [
            "# Title", "• one", "  ◦ nested a", "    1. deep one", "3. third", "│ a quote with emphasis",
            "│ │ nested", "╭─ python ─", "│ def f(x):  # comment", "╰──", "┌───────┬─────┬───────┐",
            "│ Name  │ Age │ City  │", "│ Alice │  30 │ Paris │", "│ Bob B │   4 │ `NYC` │",
            "link (https://example.com/a)",
            "`inline code`", "*escaped*", "snake_case_name and 2 * 3 * 4",
        ] {
            XCTAssertTrue(out.contains(expected), "missing \(expected) in\n\(out)")
        }
        XCTAssertFalse(out.contains("**"), "emphasis markers are not shown")
    }

    func testInlineStyles() {
        let out = render("**b** *i* ~~s~~ `c` x_y_z\n", color: true)
        XCTAssertEqual(out, "\u{1B}[1mb\u{1B}[0m \u{1B}[3mi\u{1B}[0m \u{1B}[9ms\u{1B}[0m \u{1B}[36mc\u{1B}[0m x_y_z\n")
    }

    func testHeadingsAreStyledAndTopLevelsUnderlined() {
        let out = render("# Big\n### Small\n", color: true)
        XCTAssertEqual(out, "\u{1B}[1;35mBig\u{1B}[0m\n\u{1B}[1;35m━━━\u{1B}[0m\n\u{1B}[1;35mSmall\u{1B}[0m\n")
    }

    func testLinksAreHyperlinksOrShowTheirURL() {
        let md = "see [the docs](https://example.com/d) now\n"
        XCTAssertEqual(
            render(md, hyperlinks: true),
            "see \u{1B}]8;;https://example.com/d\u{1B}\\\u{1B}[4;34mthe docs\u{1B}[0m\u{1B}]8;;\u{1B}\\ now\n")
        XCTAssertEqual(render(md, color: false), "see the docs (https://example.com/d) now\n")
        XCTAssertEqual(render("[a](javascript:x)\n", color: false), "a (javascript:x)\n")
        XCTAssertFalse(
            render("[a](javascript:x)\n").contains("]8;;javascript"), "only web and mail links are hyperlinks")
        XCTAssertEqual(render("[not a link] here\n", color: false), "[not a link] here\n")
    }

    func testCodeIsHighlightedPerLanguage() {
        let cases: [(String, String, [(String, String)])] = [
            ("python", "def f(): return 'x' # c 1", [("35", "def"), ("32", "'x'"), ("90", "# c 1")]),
            ("swift", "let a = \"s\" // c", [("35", "let"), ("32", "\"s\""), ("90", "// c")]),
            ("javascript", "const n = 42; /* c */", [("35", "const"), ("33", "42"), ("90", "/* c */")]),
            ("typescript", "let s: string = `t`", [("35", "let"), ("35", "string"), ("32", "`t`")]),
            (
                "json", "{\"k\": \"v\", \"n\": 1.5, \"b\": true}",
                [("34", "\"k\""), ("32", "\"v\""), ("33", "1.5"), ("35", "true")]
            ),
            ("bash", "for f in *; do echo $f; done # x", [("35", "for"), ("36", "$f"), ("90", "# x")]),
            ("go", "func main() { fmt.Println(\"hi\") }", [("35", "func"), ("32", "\"hi\"")]),
            ("rust", "fn main() { let x = 5; }", [("35", "fn"), ("35", "let"), ("33", "5")]),
            (
                "sql", "select * from t where a = 'x' -- c",
                [("35", "select"), ("35", "from"), ("32", "'x'"), ("90", "-- c")]
            ),
            ("yaml", "name: \"x\" # c", [("34", "name"), ("32", "\"x\""), ("90", "# c")]),
        ]
        for (lang, code, expected) in cases {
            let out = render("```\(lang)\n\(code)\n```\n", width: 80)
            for (sgr, text) in expected {
                XCTAssertTrue(
                    out.contains("\u{1B}[\(sgr)m\(text)\u{1B}[0m"),
                    "\(lang): \(text) in \(sgr)\n\(out.debugDescription)")
            }
        }
        XCTAssertTrue(
            render("```python\n'''a\nb'''\nx\n```\n").contains("\u{1B}[32mb'''\u{1B}[0m"), "strings span lines")
    }

    func testAnUnclosedFenceIsClosedAtTheEnd() {
        let out = render("```python\nprint(1)", width: 20, color: false)
        XCTAssertEqual(
            out,
            "╭─ python " + String(repeating: "─", count: 10) + "\n│ print(1)\n╰" + String(repeating: "─", count: 19)
                + "\n")
    }

    func testATableIsHeldUntilItEndsThenFitted() {
        var r = MarkdownRenderer(width: 30, color: false, hyperlinks: false)
        XCTAssertEqual(r.feed("| a | b |\n|---|---|\n| one two three four five six | x |\n").text, "")
        let out = r.feed("\nafter\n").text
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.last, "after")
        for l in lines { XCTAssertLessThanOrEqual(DisplayWidth.of(l), 30, l) }
        // The column borders line up on every line of the table.
        let bars = lines.dropLast(2).map { l in
            l.indices.filter { "│┼┬┴├┤┌┐└┘".contains(l[$0]) }.map { l.distance(from: l.startIndex, to: $0) }
        }
        XCTAssertEqual(Set(bars.map { $0 }).count, 1, out)
    }

    func testALineThatIsNotATableIsText() {
        XCTAssertEqual(render("| not a table\nnext\n", color: false), "| not a table\nnext\n")
    }

    func testListItemsAndQuotesWrapUnderTheirIndent() {
        let out = render(
            "- " + String(repeating: "word ", count: 12) + "\n> " + String(repeating: "quote ", count: 8), width: 24,
            color: false)
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("• word"))
        XCTAssertTrue(lines[1].hasPrefix("  word"), out)
        XCTAssertTrue(lines.last!.hasPrefix("│ quote"), out)
        for l in lines { XCTAssertLessThanOrEqual(DisplayWidth.of(l), 24, l) }
    }

    func testRulesAndPlainText() {
        XCTAssertEqual(render("a\n\n---\nb", width: 10, color: false), "a\n\n──────────\nb\n")
        XCTAssertEqual(render("just text\n", color: false), "just text\n")
        XCTAssertEqual(render("", color: false), "")
    }
}
