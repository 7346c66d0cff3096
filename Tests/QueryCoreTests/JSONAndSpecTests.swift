import Foundation
import QueryCore
import XCTest

final class JSONValueTests: XCTestCase {
    func testIntegersStayExactAndKeyOrderIsKept() throws {
        let text = #"{"z":9007199254740993,"a":-1,"m":[1.5,true,null,"x"],"big":1e400}"#
        let v = try JSONValue.parse(text)
        XCTAssertEqual(v["z"], .integer(9_007_199_254_740_993))
        XCTAssertEqual(v.objectValue?.keys, ["z", "a", "m", "big"])
        XCTAssertEqual(v["big"], .double(.infinity))
        XCTAssertEqual(v.serialized(), #"{"z":9007199254740993,"a":-1,"m":[1.5,true,null,"x"],"big":null}"#)
    }

    func testStringsEscapesAndUnicode() throws {
        let v = try JSONValue.parse(#""a\"b\\c\n\t\u00e9\ud83c\udf0d\u0001""#)
        XCTAssertEqual(v, .string("a\"b\\c\n\té🌍\u{01}"))
        XCTAssertEqual(v.serialized(), #""a\"b\\c\n\té🌍\u0001""#)
        XCTAssertEqual(try JSONValue.parse(v.serialized()), v)
        // A lone surrogate becomes U+FFFD rather than an invalid string.
        XCTAssertEqual(try JSONValue.parse(#""\ud800x""#), .string("\u{FFFD}x"))
    }

    func testDoublesRoundTrip() throws {
        for d in [0.7, 2.0, -0.0001, 1e300, 123456.789] {
            XCTAssertEqual(try JSONValue.parse(JSONValue.double(d).serialized()), .double(d))
        }
    }

    func testErrorsNameTheProblemAndOffset() {
        let cases = ["", "{", "[1,]", "{\"a\" 1}", "tru", "01", "\"abc", "{\"a\":1} x", "\"\u{01}\"", "1.", "-"]
        for c in cases {
            XCTAssertThrowsError(try JSONValue.parse(c), c) { e in
                XCTAssert(e is JSONParseError, "\(c): \(e)")
            }
        }
        XCTAssertThrowsError(try JSONValue.parse("[1,]")) { e in
            XCTAssertEqual((e as? JSONParseError)?.offset, 3)
        }
        XCTAssertThrowsError(try JSONValue.parse(String(repeating: "[", count: 10_000)))
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xFF, 0x22]))  // invalid UTF-8
    }

    func testObjectEditing() {
        var o: JSONObject = ["b": 1, "a": 2]
        o["c"] = 3
        o["b"] = nil
        o["a"] = 4
        XCTAssertEqual(o.keys, ["a", "c"])
        XCTAssertEqual(JSONValue.object(o).serialized(), #"{"a":4,"c":3}"#)
    }

    func testOptionsDropNullsAndKeepUnknownKeys() {
        var o: QueryOptions = ["temperature": 0.5, "max_tokens": nil, "top_k": 40, "min_p": 0.05]
        o["seed"] = .null
        XCTAssertEqual(o.sendable.keys, ["temperature", "top_k", "min_p"])
    }
}

final class FunctionSpecTests: XCTestCase {
    let schema: JSONValue = [
        "type": "object", "properties": ["city": ["type": "string"], "days": ["type": "integer"]], "required": ["city"],
    ]

    func testValidSpec() throws {
        let s = try FunctionSpec(name: "get_weather", description: "Weather", parameters: schema)
        XCTAssertEqual(s.openAITool["function"]?["name"], "get_weather")
        XCTAssertEqual(s.anthropicTool["input_schema"], schema)
    }

    func testValidationNamesTheField() {
        func field(_ name: String, _ p: JSONValue) -> String? {
            do {
                _ = try FunctionSpec(name: name, parameters: p)
                return nil
            } catch FunctionSpecError.invalid(let f, _) {
                return f
            } catch { return "other: \(error)" }
        }
        XCTAssertEqual(field("bad name", schema), "name")
        XCTAssertEqual(field("", schema), "name")
        XCTAssertEqual(field(String(repeating: "a", count: 65), schema), "name")
        XCTAssertNil(field(String(repeating: "a", count: 64), schema))
        XCTAssertEqual(field("f", ["type": "array"]), "parameters.type")
        XCTAssertEqual(field("f", "object"), "parameters")
        XCTAssertEqual(field("f", ["type": "object", "properties": [1]]), "parameters.properties")
        XCTAssertEqual(field("f", ["type": "object", "properties": ["a": 1]]), "parameters.properties.a")
        XCTAssertEqual(
            field("f", ["type": "object", "properties": ["a": [:]], "required": ["b"]]), "parameters.required[0]")
        XCTAssertEqual(field("f", ["type": "object", "required": "a"]), "parameters.required")
    }

    func testAllFourShapesInJSONAndYAML() throws {
        let shapes = [
            #"{"name":"f","description":"d","json_schema":{"type":"object","properties":{"x":{"type":"integer"}}}}"#,
            #"{"name":"f","description":"d","parameters":{"type":"object","properties":{"x":{"type":"integer"}}}}"#,
            #"{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{"x":{"type":"integer"}}}}}"#,
            #"{"name":"f","description":"d","input_schema":{"type":"object","properties":{"x":{"type":"integer"}}}}"#,
        ]
        let expected = try FunctionSpec(
            name: "f", description: "d", parameters: ["type": "object", "properties": ["x": ["type": "integer"]]])
        for s in shapes { XCTAssertEqual(try FunctionSpec(text: s), expected) }
        let yaml = """
            type: function
            function:
              name: f
              description: d
              parameters:
                type: object
                properties:
                  x: {type: integer}
            """
        XCTAssertEqual(try FunctionSpec(text: yaml, yaml: true), expected)
        let aide = "name: f\ndescription: d\njson_schema:\n  type: object\n  properties:\n    x:\n      type: integer\n"
        XCTAssertEqual(try FunctionSpec(text: aide, yaml: true), expected)
    }

    func testFilesAndTheirErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pl-spec-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) -> String {
            let p = dir.appendingPathComponent(name).path
            _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
            return p
        }
        let ok = write("ok.yml", "name: f\ninput_schema: {type: object}\n")
        XCTAssertEqual(try FunctionSpec(contentsOf: ok).name, "f")
        func message(_ path: String) -> String {
            do {
                _ = try FunctionSpec(contentsOf: path)
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssert(message(dir.appendingPathComponent("missing.json").path).contains("cannot be read"))
        let m1 = message(write("bad.json", "{\"name\": \"f\","))
        XCTAssert(m1.contains("bad.json") && m1.contains("not valid JSON"), m1)
        let m2 = message(write("bad.yaml", "name: [unclosed\n"))
        XCTAssert(m2.contains("not valid YAML"), m2)
        let m3 = message(write("noschema.json", "{\"name\":\"f\"}"))
        XCTAssert(m3.contains("parameters is missing"), m3)
        let m4 = message(write("req.yaml", "name: f\njson_schema:\n  type: object\n  required: [q]\n"))
        XCTAssert(m4.contains("json_schema.required[0]"), m4)
        let m5 = message(write("bin.json", "\u{FF}"))
        XCTAssertFalse(m5 == "no error")
    }
}

final class SSEParserTests: XCTestCase {
    func parseAll(_ bytes: [UInt8], chunk: Int) throws -> [SSEEvent] {
        var p = SSEParser()
        var out: [SSEEvent] = []
        var i = 0
        while i < bytes.count {
            try p.feed(Array(bytes[i..<min(i + chunk, bytes.count)])) { out.append($0) }
            i += chunk
        }
        try p.finish { out.append($0) }
        return out
    }

    func testAnySplitGivesTheSameEvents() throws {
        let text =
            ": keep-alive\r\ndata: {\"a\":\"é🌍\"}\r\n\r\nevent: ping\ndata: "
            + "x\ndata: y\n\ndata:no-space\r\rerror: {\"message\":\"boom\"}\n"
            + "data: [DONE]\n\n"
        let bytes = Array(text.utf8)
        let expected = [
            SSEEvent(event: nil, data: Array("{\"a\":\"é🌍\"}".utf8)),
            SSEEvent(event: "ping", data: Array("x\ny".utf8)),
            SSEEvent(event: nil, data: Array("no-space".utf8)),
            SSEEvent(event: "error", data: Array("{\"message\":\"boom\"}".utf8), isBareError: true),
            SSEEvent(event: nil, data: Array("[DONE]".utf8)),
        ]
        for size in 1...bytes.count {
            XCTAssertEqual(try parseAll(bytes, chunk: size), expected, "chunk size \(size)")
        }
    }

    func testFinalEventWithoutBlankLineIsDelivered() throws {
        XCTAssertEqual(
            try parseAll(Array("data: last".utf8), chunk: 3), [SSEEvent(event: nil, data: Array("last".utf8))])
    }

    func testCRLFSplitAcrossChunksIsOneLineEnd() throws {
        var p = SSEParser()
        var out: [SSEEvent] = []
        try p.feed(Array("data: a\r".utf8)) { out.append($0) }
        try p.feed(Array("\n\r".utf8)) { out.append($0) }
        try p.feed(Array("\ndata: b\n\n".utf8)) { out.append($0) }
        XCTAssertEqual(out.map(\.dataString), ["a", "b"])
    }
}
