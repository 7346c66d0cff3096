import Foundation
import XCTest

@testable import QueryCore

/// The one OpenAI decoder (``OpenAIBody``) held to the tree parser: for every input, both read the
/// same fields or both refuse it.
final class OpenAIBodyTests: XCTestCase {
    /// What ``OpenAIBody/decode(_:payload:wantInfo:)`` must return, spelled with ``JSONValue``.
    static func treeDecode(_ bytes: [UInt8], payload: OpenAIBody.Payload, wantInfo: Bool = true) throws -> OpenAIBody {
        let v = try JSONValue.parse(bytes)
        guard case .object = v else { throw JSONParseError(message: "expected an object", offset: 0) }
        var b = OpenAIBody()
        if wantInfo {
            b.id = v["id"]?.stringValue
            b.model = v["model"]?.stringValue
            b.created = v["created"]?.int64Value
            b.systemFingerprint = v["system_fingerprint"]?.stringValue
        }
        b.usage = v["usage"]
        b.error = v["error"]
        b.choices = v["choices"]?.arrayValue?.compactMap { c -> OpenAIBody.Choice? in
            guard case .object = c else { return nil }
            let p = c[payload == .message ? "message" : "delta"]
            return OpenAIBody.Choice(
                index: c["index"]?.intValue ?? 0, finishReason: c["finish_reason"]?.stringValue,
                content: p?["content"]?.stringValue, toolCalls: p?["tool_calls"]?.arrayValue)
        }
        return b
    }

    func assertSameReading(_ bytes: [UInt8], _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        for payload in [OpenAIBody.Payload.message, .delta] {
            for wantInfo in [true, false] {
                let fast = try? OpenAIBody.decode(bytes, payload: payload, wantInfo: wantInfo)
                let tree = try? Self.treeDecode(bytes, payload: payload, wantInfo: wantInfo)
                XCTAssertEqual(fast, tree, "\(name) (\(payload), wantInfo \(wantInfo))", file: file, line: line)
            }
        }
    }

    /// Every body in the fuzz corpus, whole and without the fuzzer's flag byte, and every SSE event's data.
    static func corpusInputs() throws -> [(name: String, bytes: [UInt8])] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fuzz-corpus")
        var inputs: [(String, [UInt8])] = []
        for dir in ["openai", "response", "sse", "json"] {
            let folder = root.appendingPathComponent(dir)
            for file in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
                let data = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
                let name = "\(dir)/\(file)"
                for (variant, bytes) in [("", data), (" minus flag byte", Array(data.dropFirst()))] {
                    inputs.append((name + variant, bytes))
                    // A scripted response (status, headers, blank line, body): the body too.
                    if let cut = bytes.firstRange(of: Array("\n\n".utf8)) {
                        inputs.append((name + variant + " body", Array(bytes[cut.upperBound...])))
                    }
                    var parser = SSEParser()
                    var n = 0
                    let collect: (SSEEvent) -> Void = { e in
                        n += 1
                        inputs.append(("\(name)\(variant) event \(n)", e.data))
                    }
                    try? parser.feed(bytes, collect)
                    try? parser.finish(collect)
                }
            }
        }
        return inputs
    }

    func testFastDecoderReadsTheCorpusAsTheTreeParserDoes() throws {
        let inputs = try Self.corpusInputs()
        XCTAssertGreaterThan(inputs.count, 100)
        var decoded = 0
        for (name, bytes) in inputs {
            assertSameReading(bytes, name)
            if (try? OpenAIBody.decode(bytes, payload: .delta)) != nil { decoded += 1 }
        }
        XCTAssertGreaterThan(decoded, 10, "the corpus must hold bodies the decoder accepts")
    }

    func testFastDecoderAgreesOnEdgeCases() {
        let cases = [
            #"{"id":"a","id":"b","created":1e19,"model":5,"system_fingerprint":null}"#,
            #"{"\u0069d":"escaped","created":-0.0,"choices":[{"index":1,"message":{"content":"1"}},{"message":"x"}]}"#,
            #"{"choices":[5,null,{"index":0,"delta":{"content":"a"},"delta":{"tool_calls":[{"index":0}]}}]}"#,
            #"{"choices":{"index":0},"usage":{"prompt_tokens":1.5},"error":null}"#,
            #"{"choices":[{"index":"0","finish_reason":7,"message":{"content":[1],"tool_calls":{}}}],"choices":0}"#,
            #"{"choices":[{"index":0,"delta":null,"message":{"content":"m"}}]}"#,
            #"[{"id":"not an object"}]"#, #"{"id":"x"} trailing"#, #"{"id":"\ud83c\udf0d"}"#, "",
        ]
        for c in cases { assertSameReading(Array(c.utf8), c) }
    }

    func testWholeBodyAndStreamShareTheInfoReading() throws {
        // The same envelope as a whole body and as a chunk gives the same QueryInfo.
        let envelope = #""id":"c","model":"m","created":1e300,"system_fingerprint":"fp""#
        let body = "{" + envelope + #","choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"}]}"#
        let whole = try OpenAIBackend().decode(Array(body.utf8))
        var acc = OpenAIStreamAccumulator(backend: OpenAIBackend())
        let chunk = "{" + envelope + #","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}"#
        _ = try acc.handle(SSEEvent(event: nil, data: Array(chunk.utf8)), emit: { _ in })
        _ = try acc.handle(SSEEvent(event: nil, data: Array("[DONE]".utf8)), emit: { _ in })
        let streamed = try acc.finish(complete: true)
        XCTAssertEqual(whole.info, streamed.info)
        XCTAssertEqual(whole.text, streamed.text)
        XCTAssertNil(whole.info.created, "1e300 is no Int64")
    }
}
