import XCTest

@testable import Terminal

final class DisplayWidthTests: XCTestCase {
    func testASCIIIsOneCellEach() {
        XCTAssertEqual(DisplayWidth.of("hello, world"), 12)
        XCTAssertEqual(DisplayWidth.of(""), 0)
    }

    func testCJKAndEmojiAreTwoCells() {
        XCTAssertEqual(DisplayWidth.of("日本語"), 6)
        XCTAssertEqual(DisplayWidth.of("한국"), 4)
        XCTAssertEqual(DisplayWidth.of("ｆｕｌｌ"), 8)
        XCTAssertEqual(DisplayWidth.of("🙂"), 2)
        XCTAssertEqual(DisplayWidth.of("👩‍👩‍👧"), 2, "a ZWJ sequence is one glyph")
        XCTAssertEqual(DisplayWidth.of("🇫🇷"), 2, "a flag is one glyph")
        XCTAssertEqual(DisplayWidth.of("❤️"), 2, "emoji presentation selector")
    }

    func testCombiningMarksTakeNoCell() {
        XCTAssertEqual(DisplayWidth.of("e\u{301}"), 1)
        XCTAssertEqual(DisplayWidth.of("a\u{200B}b"), 2)
        XCTAssertEqual(DisplayWidth.of("é"), 1)
    }

    func testVisibleSkipsEscapeSequences() {
        XCTAssertEqual(DisplayWidth.visible("\u{1B}[1;31mred\u{1B}[0m"), 3)
        XCTAssertEqual(DisplayWidth.visible("\u{1B}]8;;https://x.y\u{07}link\u{1B}]8;;\u{07}"), 4)
        XCTAssertEqual(DisplayWidth.visible("\u{1B}]8;;u\u{1B}\\t\u{1B}]8;;\u{1B}\\"), 1)
    }

    func testTruncateAndPadCountCells() {
        XCTAssertEqual(DisplayWidth.truncate("abcdef", to: 4), "abc…")
        XCTAssertEqual(DisplayWidth.truncate("abc", to: 4), "abc")
        XCTAssertEqual(DisplayWidth.truncate("日本語", to: 4), "日…")
        XCTAssertEqual(DisplayWidth.pad("日", to: 4), "日  ")
        XCTAssertEqual(DisplayWidth.pad("abcdef", to: 4), "abcdef")
    }
}
