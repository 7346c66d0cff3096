import Foundation
import QueryCore
import Terminal

/// A Markdown reply of `bytes` bytes or a little more: prose with emphasis, code spans and
/// links, nested lists, a quote, a table and fenced code in three languages, repeated.
func markdownReply(bytes: Int) -> String {
    let unit = """
        ## Section heading

        Some **bold** text with `code`, a [link](https://example.com/docs) and *emphasis*, in a paragraph \
        long enough to wrap at the terminal's width more than once, like the replies models write.

        - an item with **strong** words
        - another item
          1. nested, numbered
          2. and another

        > A quoted line with _emphasis_ in it.

        | Name | Value | Note |
        |:-----|------:|------|
        | alpha | 1 | first |
        | beta | 22 | `second` |

        ```python
        def total(xs):
            # sum the values
            return sum(x * 2 for x in xs) + 42
        ```

        ```json
        {"name": "promptline", "version": 1, "tags": ["a", "b"], "ok": true}
        ```

        ```swift
        let answer = values.map { $0 * 2 }.reduce(0, +)  // doubled
        ```


        """
    var text = ""
    while text.utf8.count < bytes { text += unit }
    return text
}

/// The Markdown renderer's cost: a 1 MB reply fed in token-sized chunks (16 bytes, about four
/// tokens) and fed whole, colour and hyperlinks on, at 100 columns.
func benchMarkdown(runs: Int) {
    let text = markdownReply(bytes: 1_000_000)
    let bytes = Array(text.utf8)
    var chunks: [String] = []
    var i = 0
    while i < bytes.count {
        var end = min(i + 16, bytes.count)
        while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end += 1 }  // whole characters
        chunks.append(String(decoding: bytes[i..<end], as: UTF8.self))
        i = end
    }
    var perChunk: [Double] = []
    var chunkedRate: [Double] = []
    var wholeRate: [Double] = []
    var printed = 0
    for _ in 0..<runs {
        var r = MarkdownRenderer(width: 100, color: true, hyperlinks: true)
        let t0 = now()
        for c in chunks { printed &+= r.feed(c).text.utf8.count }
        printed &+= r.finish().text.utf8.count
        let t = now() - t0
        perChunk.append(t / Double(chunks.count) * 1e6)
        chunkedRate.append(Double(bytes.count) / t / 1e6)
        var whole = MarkdownRenderer(width: 100, color: true, hyperlinks: true)
        let t1 = now()
        printed &+= whole.feed(text).text.utf8.count + whole.finish().text.utf8.count
        wholeRate.append(Double(bytes.count) / (now() - t1) / 1e6)
    }
    var extra: JSONObject = ["bytes": .integer(Int64(bytes.count)), "chunks": .integer(Int64(chunks.count))]
    extra["budget"] = "<= 50"
    emit("markdown.per_chunk_16B", unit: "us", perChunk, extra: extra)
    extra["budget"] = ">= 50"
    emit("markdown.MB_per_s_16B_chunks", unit: "MB/s", chunkedRate, extra: extra)
    emit("markdown.MB_per_s_whole", unit: "MB/s", wholeRate, extra: extra)
    if printed == 0 { print("nothing rendered") }
}
