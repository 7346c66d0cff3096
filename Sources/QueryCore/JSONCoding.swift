/// Why a text is not JSON: what was wrong and the byte offset where it was seen.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "\(message) at byte \(offset)" }
    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }
}

extension JSONValue {
    /// Parses one JSON value (RFC 8259) from UTF-8 bytes; surrounding white space is allowed.
    /// - Throws: ``JSONParseError`` naming the problem and its byte offset.
    public static func parse<C: Collection>(_ bytes: C) throws -> JSONValue where C.Element == UInt8 {
        if let r = try bytes.withContiguousStorageIfAvailable({ try parseBuffer($0) }) { return r }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { try parseBuffer($0) }
    }

    /// Parses one JSON value from a string.
    public static func parse(_ text: String) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { try parseBuffer($0) }
    }

    private static func parseBuffer(_ buf: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var p = JSONParser(buf: buf)
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        if p.i != buf.count { throw p.error("unexpected text after the JSON value") }
        return v
    }
}

struct JSONParser {
    let buf: UnsafeBufferPointer<UInt8>
    var i = 0
    static let maxDepth = 512

    init(buf: UnsafeBufferPointer<UInt8>) { self.buf = buf }

    func error(_ m: String) -> JSONParseError { JSONParseError(message: m, offset: i) }

    mutating func skipWhitespace() {
        while i < buf.count {
            switch buf[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws -> JSONValue {
        guard i < buf.count else { throw error("unexpected end of JSON") }
        switch buf[i] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character '\(printable(buf[i]))'")
        }
    }

    func printable(_ b: UInt8) -> String {
        (0x20..<0x7F).contains(b) ? String(UnicodeScalar(b)) : "0x" + String(b, radix: 16, uppercase: true)
    }

    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= buf.count else { throw error("unexpected end of JSON") }
        let w = word.utf8Start
        for k in 0..<n where buf[i + k] != w[k] { throw error("invalid literal") }
        i += n
    }

    mutating func parseObject(depth: Int) throws -> JSONValue {
        if depth > Self.maxDepth { throw error("JSON nested too deeply") }
        var obj = JSONObject()
        if try opensEmpty(UInt8(ascii: "{"), UInt8(ascii: "}"), else: "expected an object") { return .object(obj) }
        while true {
            skipWhitespace()
            guard i < buf.count else { throw error("unexpected end of JSON in an object") }
            guard buf[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard i < buf.count, buf[i] == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
            i += 1
            skipWhitespace()
            obj.appendParsed(key, try parseValue(depth: depth))
            if try closes(with: UInt8(ascii: "}"), in: "an object") { return .object(obj) }
        }
    }

    mutating func parseArray(depth: Int) throws -> JSONValue {
        if depth > Self.maxDepth { throw error("JSON nested too deeply") }
        var arr: [JSONValue] = []
        if try opensEmpty(UInt8(ascii: "["), UInt8(ascii: "]"), else: "expected an array") { return .array(arr) }
        while true {
            skipWhitespace()
            arr.append(try parseValue(depth: depth))
            if try closes(with: UInt8(ascii: "]"), in: "an array") { return .array(arr) }
        }
    }

    /// After a member or element: true at the closing bracket, false at a comma (both consumed).
    /// - Throws: at the end of the input or anything else.
    @inline(__always)
    mutating func closes(with closer: UInt8, in what: StaticString) throws -> Bool {
        skipWhitespace()
        guard i < buf.count else { throw error("unexpected end of JSON in \(what)") }
        if buf[i] == UInt8(ascii: ",") {
            i += 1
            return false
        }
        if buf[i] == closer {
            i += 1
            return true
        }
        throw error("expected ',' or '\(Character(Unicode.Scalar(closer)))' in \(what)")
    }

    mutating func parseString() throws -> String {
        i += 1  // opening quote
        let start = i
        // Fast path: no escapes.
        while i < buf.count {
            let b = buf[i]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)
                try checkUTF8(start, i)
                i += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in a string") }
            i += 1
        }
        return try parseEscapedString(from: start)
    }

    /// The rest of a string that has escapes, from `i` (its first backslash): `start` is where
    /// its text began, the bytes before `i` having been checked by the fast path.
    mutating func parseEscapedString(from start: Int) throws -> String {
        var out = [UInt8](UnsafeBufferPointer(rebasing: buf[start..<i]))
        while i < buf.count {
            let b = buf[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                return s
            }
            if b < 0x20 { throw error("control character in a string") }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                i += 1
                continue
            }
            i += 1
            guard i < buf.count else { break }
            try appendEscape(to: &out)
        }
        throw error("unterminated string")
    }

    /// Decodes the escape whose letter is at `i` (just past the backslash) onto `out`.
    @inline(__always) mutating func appendEscape(to out: inout [UInt8]) throws {
        let e = buf[i]
        i += 1
        switch e {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"): try appendUnicodeEscape(to: &out)
        default:
            i -= 1
            throw error("invalid escape '\\\(printable(e))'")
        }
    }

    /// Decodes a `\u` escape's hex digits at `i` onto `out` as UTF-8, joining a surrogate pair
    /// written as two escapes; a lone or mismatched surrogate becomes U+FFFD.
    @inline(__always) mutating func appendUnicodeEscape(to out: inout [UInt8]) throws {
        var scalar = try hex4()
        if (0xD800..<0xDC00).contains(scalar) {
            // A high surrogate must be followed by \u and a low one; otherwise U+FFFD.
            if i + 1 < buf.count, buf[i] == UInt8(ascii: "\\"), buf[i + 1] == UInt8(ascii: "u") {
                i += 2
                let low = try hex4()
                if (0xDC00..<0xE000).contains(low) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    appendScalar(0xFFFD, to: &out)
                    scalar = low
                }
            } else {
                scalar = 0xFFFD
            }
        }
        if (0xD800..<0xE000).contains(scalar) { scalar = 0xFFFD }
        appendScalar(scalar, to: &out)
    }

    func checkUTF8(_ a: Int, _ b: Int) throws {
        // Pure ASCII is the common case; validate only when a high byte is present.
        var k = a
        while k < b {
            if buf[k] >= 0x80 { break }
            k += 1
        }
        if k == b { return }
        if String(validating: UnsafeBufferPointer(rebasing: buf[a..<b]), as: UTF8.self) == nil {
            throw JSONParseError(message: "invalid UTF-8 in a string", offset: k)
        }
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= buf.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    func appendScalar(_ v: UInt32, to out: inout [UInt8]) {
        let s = Unicode.Scalar(v) ?? "\u{FFFD}"
        out.append(contentsOf: UTF8.encode(s)!)
    }

    mutating func parseNumber() throws -> JSONValue {
        let start = i
        var isInteger = true
        if buf[i] == UInt8(ascii: "-") { i += 1 }
        guard i < buf.count, isDigit(buf[i]) else { throw error("invalid number") }
        if buf[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < buf.count, isDigit(buf[i]) { i += 1 }
        }
        if i < buf.count, buf[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard i < buf.count, isDigit(buf[i]) else { throw error("invalid number") }
            while i < buf.count, isDigit(buf[i]) { i += 1 }
        }
        if i < buf.count, buf[i] == UInt8(ascii: "e") || buf[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if i < buf.count, buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-") { i += 1 }
            guard i < buf.count, isDigit(buf[i]) else { throw error("invalid number") }
            while i < buf.count, isDigit(buf[i]) { i += 1 }
        }
        if isInteger && i - start <= 18 {
            // Fits in Int64 for sure: no String round trip.
            var k = start
            let negative = buf[k] == UInt8(ascii: "-")
            if negative { k += 1 }
            var v: Int64 = 0
            while k < i {
                v = v &* 10 &+ Int64(buf[k] &- 0x30)
                k += 1
            }
            return .integer(negative ? -v : v)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)
        if isInteger, let v = Int64(text) { return .integer(v) }
        guard let d = Double(text) else { throw JSONParseError(message: "invalid number", offset: start) }
        return .double(d)
    }

    @inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
}

extension JSONParser {
    /// Steps over one value without building it (validating as it goes, but allocating nothing
    /// for strings without escapes).
    mutating func skipValue(depth: Int) throws {
        guard i < buf.count else { throw error("unexpected end of JSON") }
        switch buf[i] {
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close: UInt8 = buf[i] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let isObject = close == UInt8(ascii: "}")
            if depth > Self.maxDepth { throw error("JSON nested too deeply") }
            i += 1
            skipWhitespace()
            if i < buf.count, buf[i] == close {
                i += 1
                return
            }
            while true {
                skipWhitespace()
                if isObject {
                    guard i < buf.count, buf[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                    try skipString()
                    skipWhitespace()
                    guard i < buf.count, buf[i] == UInt8(ascii: ":") else {
                        throw error("expected ':' after an object key")
                    }
                    i += 1
                    skipWhitespace()
                }
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard i < buf.count else { throw error("unexpected end of JSON") }
                if buf[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                if buf[i] == close {
                    i += 1
                    return
                }
                throw error("expected ',' or a closing bracket")
            }
        default:
            _ = try parseValue(depth: depth)  // literals and numbers: cheap, no allocation to speak of
        }
    }

    mutating func skipString() throws {
        i += 1
        while i < buf.count {
            let b = buf[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return
            }
            if b == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if b < 0x20 { throw error("control character in a string") }
            i += 1
        }
        throw error("unterminated string")
    }

    /// Walks an object, handing each key to `body`, which must consume the value. Keys come as
    /// their raw bytes (between the quotes, escapes not decoded) to compare without a String.
    mutating func forEachMember(depth: Int, _ body: (inout JSONParser, JSONKey) throws -> Void) throws {
        if try opensEmpty(UInt8(ascii: "{"), UInt8(ascii: "}"), else: "expected an object") { return }
        while true {
            skipWhitespace()
            guard i < buf.count, buf[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let start = i + 1
            try skipString()
            let key = JSONKey(bytes: UnsafeBufferPointer(rebasing: buf[start..<(i - 1)]))
            skipWhitespace()
            guard i < buf.count, buf[i] == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
            i += 1
            skipWhitespace()
            try body(&self, key)
            if try closes(with: UInt8(ascii: "}"), in: "an object") { return }
        }
    }

    /// At `opener` (after whitespace): consumes it, and returns true when `closer` follows at
    /// once (consumed too: the container is empty).
    /// - Throws: `message` when something else comes first.
    @inline(__always)
    mutating func opensEmpty(_ opener: UInt8, _ closer: UInt8, else message: StaticString) throws -> Bool {
        skipWhitespace()
        guard i < buf.count, buf[i] == opener else { throw error("\(message)") }
        i += 1
        skipWhitespace()
        guard i < buf.count, buf[i] == closer else { return false }
        i += 1
        return true
    }

    /// Walks an array, handing each element to `body`, which must consume it.
    mutating func forEachElement(_ body: (inout JSONParser) throws -> Void) throws {
        if try opensEmpty(UInt8(ascii: "["), UInt8(ascii: "]"), else: "expected an array") { return }
        while true {
            skipWhitespace()
            try body(&self)
            if try closes(with: UInt8(ascii: "]"), in: "an array") { return }
        }
    }

    mutating func finish() throws {
        skipWhitespace()
        if i != buf.count { throw error("unexpected text after the JSON value") }
    }
}

/// An object key as raw bytes, compared against ASCII names without making a String.
struct JSONKey {
    let bytes: UnsafeBufferPointer<UInt8>
    @inline(__always) func `is`(_ name: StaticString) -> Bool {
        if bytes.contains(0x5C) {
            // An escaped key (legal, if odd): decode it and compare the text.
            var quoted: [UInt8] = [0x22]
            quoted += bytes
            quoted.append(0x22)
            return (try? JSONValue.parse(quoted)) == .string(name.description)
        }
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        let p = name.utf8Start
        for k in 0..<bytes.count where bytes[k] != p[k] { return false }
        return true
    }
}

// MARK: - Serializing

extension JSONValue {
    /// The value as JSON text. Compact by default; `pretty` indents with two spaces.
    /// Non-finite doubles (not representable in JSON) are written as `null`.
    public func serialized(pretty: Bool = false) -> String {
        var out = ""
        write(to: &out, pretty: pretty, indent: 0)
        return out
    }

    /// The value as UTF-8 JSON bytes (compact).
    public func serializedBytes() -> [UInt8] { Array(serialized().utf8) }

    private func write(to out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let v): out += String(v)
        case .double(let d):
            if !d.isFinite {
                out += "null"
            } else if d == d.rounded(), abs(d) < 1e15 {
                // 2.0 is written "2.0" so it stays a double on the way back.
                out += String(Int64(d)) + ".0"
            } else {
                out += "\(d)"
            }
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let a):
            if a.isEmpty {
                out += "[]"
                return
            }
            out += "["
            for (k, v) in a.enumerated() {
                if k > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                v.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "]"
        case .object(let o):
            if o.isEmpty {
                out += "{}"
                return
            }
            out += "{"
            var first = true
            for (k, v) in o {
                if !first { out += "," }
                first = false
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                JSONValue.writeString(k, to: &out)
                out += pretty ? ": " : ":"
                v.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "}"
        }
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        var needsEscape = false
        for b in s.utf8 where b < 0x20 || b == 0x22 || b == 0x5C {
            needsEscape = true
            break
        }
        if !needsEscape {
            out += s
        } else {
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                default:
                    if u.value < 0x20 {
                        let h = String(u.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                    } else {
                        out.unicodeScalars.append(u)
                    }
                }
            }
        }
        out += "\""
    }
}
