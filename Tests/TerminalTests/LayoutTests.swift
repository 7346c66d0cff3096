import XCTest

@testable import Terminal

final class LayoutTests: XCTestCase {
    private func assertFits(_ lines: [String], _ width: Int, file: StaticString = #filePath, line: UInt = #line) {
        for l in lines {
            XCTAssertLessThanOrEqual(DisplayWidth.of(l), width, "too wide: \(l)", file: file, line: line)
        }
    }

    func testWrapKeepsWordsAndIndentsContinuations() {
        let lines = Layout.wrap("    the quick brown fox jumps over the lazy dog", width: 20, hanging: 2)
        XCTAssertEqual(lines, ["    the quick brown", "      fox jumps over", "      the lazy dog"])
        XCTAssertEqual(Layout.wrap("short", width: 20), ["short"])
        XCTAssertEqual(Layout.wrap("a\n\nb", width: 20), ["a", "", "b"], "hard line breaks stay")
    }

    func testWrapMeasuresWideCharactersByCells() {
        // Each CJK character takes two cells: 5 of them fill a 10-cell line.
        let lines = Layout.wrap("日本語 日本語 日本語", width: 10)
        XCTAssertEqual(lines, ["日本語", "日本語", "日本語"])
        let emoji = Layout.wrap("🙂🙂🙂🙂🙂🙂", width: 5)
        XCTAssertEqual(emoji, ["🙂🙂", "🙂🙂", "🙂🙂"], "a wide character is never split across lines")
        assertFits(Layout.wrap("中文字符很长的一句话没有空格也要折行", width: 9, hanging: 2), 9)
    }

    func testALongWordIsBrokenPreferablyAfterASlashOrDash() {
        let lines = Layout.wrap("see /home/someone/.local/share/promptline/sessions/x.jsonl", width: 24, hanging: 4)
        assertFits(lines, 24)
        XCTAssertEqual(lines.first, "see")
        XCTAssertTrue(lines[1].hasSuffix("/"), lines[1])
        XCTAssertEqual(
            lines.map { $0.trimmingCharacters(in: .whitespaces) }.dropFirst().joined(),
            "/home/someone/.local/share/promptline/sessions/x.jsonl")
    }

    func testFoldBreaksBetweenFieldsFirst() {
        let line = "  turns 3   requests 4   retries 0   errors 1   cancelled 0"
        XCTAssertEqual(Layout.fold(line, width: 80), [line], "a line that fits is left alone")
        let folded = Layout.fold(line, width: 30)
        XCTAssertEqual(folded, ["  turns 3   requests 4", "      retries 0   errors 1", "      cancelled 0"])
        let dotted = Layout.fold("smollm2 · 0.12 s · tokens 1 in / 2 out", width: 22, hanging: 2)
        XCTAssertEqual(dotted, ["smollm2 · 0.12 s", "  tokens 1 in / 2 out"])
    }

    func testFoldWrapsAFieldTooLongForALine() {
        let folded = Layout.fold("  get_weather — the weather for a city and the days ahead  requires city", width: 30)
        assertFits(folded, 30)
        XCTAssertEqual(
            folded, ["  get_weather — the weather", "      for a city and the days", "      ahead  requires city"])
    }

    func testStatusLineKeepsTheMostUsefulFields() {
        let fields: [(text: String, priority: Int)] = [
            ("smollm2", 0), ("0.42 s", 0), ("ttft 0.10 s", 2), ("tokens 12 in / 5 out", 0), ("0 retries", 2),
            ("forced via tools", 3), ("cost $0.000006", 0),
        ]
        let wide = Layout.statusLine(fields, width: 200)
        XCTAssertEqual(wide, fields.map(\.text).joined(separator: " · "))
        let narrow = Layout.statusLine(fields, width: 60)
        XCTAssertEqual(narrow, "smollm2 · 0.42 s · tokens 12 in / 5 out · cost $0.000006")
        let middle = Layout.statusLine(fields, width: 75)
        XCTAssertEqual(middle, "smollm2 · 0.42 s · ttft 0.10 s · tokens 12 in / 5 out · cost $0.000006")
        XCTAssertLessThanOrEqual(DisplayWidth.of(Layout.statusLine(fields, width: 20)), 20)
        XCTAssertEqual(Layout.statusLine([("一个很长的模型名字", 0)], width: 10), "一个很长…")
    }

    func testTableFitsAlignedWhenItCan() {
        let t = TextTable(
            header: ["name", "n"], rows: [["a", "1"], ["bbb", "22"]], alignments: [.left, .right])
        XCTAssertEqual(t.render(width: 80), ["  name   n", "  a      1", "  bbb   22"])
    }

    func testTableWrapsCellsWithinANarrowedColumn() {
        let t = TextTable(
            header: ["tool", "about"],
            rows: [["weather", "the weather for a city and the days ahead, in degrees"], ["時計", "the time"]],
            wrappable: [1])
        let lines = t.render(width: 30)
        assertFits(lines, 30)
        XCTAssertEqual(lines[1], "  weather  the weather for a")
        XCTAssertEqual(lines[2], "           city and the days")
        XCTAssertTrue(lines.contains("  時計     the time"), "\(lines)")
    }

    func testTableFoldsToRecordsWhenItCannotFit() {
        let t = TextTable(
            header: ["variant", "ok", "failed", "cost"],
            rows: [["model=a-rather-long-model-name", "3", "0", "$0.01"], ["model=b", "2", "1", "–"]])
        let lines = t.render(width: 24)
        assertFits(lines, 24)
        XCTAssertEqual(
            lines,
            [
                "  model=a-rather-long-", "    model-name", "    ok 3 · failed 0", "      cost $0.01", "  model=b",
                "    ok 2 · failed 1", "      cost –",
            ])
    }
}
