import Foundation
import QueryCore

/// Turns what a user typed after `:set key` into a typed JSON value, and checks known keys.
public enum OptionValues {
    /// `null`, `true`/`false`, integers, decimals, JSON arrays/objects and `"quoted strings"` are
    /// typed; anything else is a plain string.
    /// - Throws: ``SessionError`` when the text starts like JSON (`[`, `{`, `"`) but is not valid JSON.
    public static func parse(_ raw: String) throws -> JSONValue {
        let t = raw.trimmingCharacters(in: .whitespaces)
        switch t {
        case "": throw SessionError("no value given; use :unset to remove a key")
        case "null": return .null
        case "true": return .bool(true)
        case "false": return .bool(false)
        default: break
        }
        if let first = t.first, first == "[" || first == "{" || first == "\"" {
            do {
                return try JSONValue.parse(t)
            } catch let e as JSONParseError {
                throw SessionError("\(t) looks like JSON but is not valid (\(e)); quote a plain string or fix the JSON")
            }
        }
        if let i = Int64(t) { return .integer(i) }
        if isDecimal(t), let d = Double(t), d.isFinite { return .double(d) }
        return .string(t)
    }

    /// Only plain decimal notation counts as a number ("inf", "nan", "0x10" stay strings).
    static func isDecimal(_ t: String) -> Bool {
        var sawDigit = false
        for (i, c) in t.enumerated() {
            if c.isASCII && c.isNumber {
                sawDigit = true
                continue
            }
            if (c == "-" || c == "+") && (i == 0 || ["e", "E"].contains(Array(t)[i - 1])) { continue }
            if c == "." || c == "e" || c == "E" { continue }
            return false
        }
        return sawDigit
    }

    /// The keys promptline knows, with their checks (OpenAI's documented ranges).
    public static let knownKeys: [String] = [
        "temperature", "top_p", "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
        "seed", "stop", "n", "response_format", "reasoning_effort", "logprobs", "top_logprobs", "parallel_tool_calls",
        "top_k", "min_p", "repeat_penalty", "thinking",
    ]

    /// Checks a known key's value. Returns a note for keys it does not know (they pass through).
    /// - Throws: ``SessionError`` saying what is allowed.
    public static func check(_ key: String, _ value: JSONValue) throws -> String? {
        if value == .null { return nil }  // null means "not sent"
        func number(_ lo: Double, _ hi: Double) throws {
            guard let d = value.doubleValue, d >= lo, d <= hi else {
                throw SessionError("\(key) must be a number from \(fmt(lo)) to \(fmt(hi)), got \(value.serialized())")
            }
        }
        func positiveInt() throws {
            guard case .integer(let i) = value, i > 0 else {
                throw SessionError("\(key) must be a positive integer, got \(value.serialized())")
            }
        }
        func bool() throws {
            guard case .bool = value else {
                throw SessionError("\(key) must be true or false, got \(value.serialized())")
            }
        }
        switch key {
        case "temperature": try number(0, 2)
        case "top_p": try number(0, 1)
        case "max_tokens", "max_completion_tokens", "n": try positiveInt()
        case "presence_penalty", "frequency_penalty": try number(-2, 2)
        case "seed":
            guard case .integer = value else {
                throw SessionError("seed must be an integer, got \(value.serialized())")
            }
        case "stop", "response_format", "reasoning_effort", "thinking": try checkShape(key, value)
        case "logprobs", "parallel_tool_calls": try bool()
        case "top_logprobs":
            guard case .integer(let i) = value, (0...20).contains(i) else {
                throw SessionError("top_logprobs must be an integer from 0 to 20, got \(value.serialized())")
            }
        case "top_k":
            guard case .integer(let i) = value, i >= 0 else {
                throw SessionError("top_k must be a non-negative integer, got \(value.serialized())")
            }
        case "min_p": try number(0, 1)
        case "repeat_penalty": try number(0, 10)
        case "model", "messages", "tools", "tool_choice", "stream", "stream_options":
            throw SessionError("\(key) is managed by promptline (use :model, :func, :system); it cannot be :set")
        default:
            return "\(key) is not a key promptline knows; it is sent unchecked"
        }
        return nil
    }

    /// The options whose value is a shape rather than a number: stop, response_format, reasoning_effort.
    static func checkShape(_ key: String, _ value: JSONValue) throws {
        switch key {
        case "stop":
            switch value {
            case .string: break
            case .array(let a) where a.count <= 4 && a.allSatisfy({ $0.stringValue != nil }): break
            default:
                throw SessionError("stop must be a string or an array of at most 4 strings, got \(value.serialized())")
            }
        case "response_format":
            let t = value["type"]?.stringValue
            guard case .object = value, let t, ["text", "json_object", "json_schema"].contains(t) else {
                throw SessionError(
                    #"response_format must be an object like {"type":"json_object"} (type text, json_object or json_schema)"#
                )
            }
            if t == "json_schema" && value["json_schema"]?.objectValue == nil {
                throw SessionError("response_format json_schema needs a \"json_schema\" object")
            }
        case "reasoning_effort":
            let allowed = ["none", "minimal", "low", "medium", "high", "xhigh"]
            guard let s = value.stringValue, allowed.contains(s) else {
                throw SessionError(
                    "reasoning_effort must be one of \(allowed.joined(separator: ", ")), got \(value.serialized())")
            }
        case "thinking":
            // Anthropic extended thinking: a budget of at least 1024 tokens, or the API's own object.
            if case .integer(let n) = value, n >= 1024 { break }
            guard case .object = value, value["type"]?.stringValue != nil else {
                throw SessionError(
                    #"thinking takes a token budget of at least 1024 (or {"type":"enabled","budget_tokens":N}), got "#
                        + value.serialized())
            }
        default:
            break
        }
    }

    static func fmt(_ d: Double) -> String { d == d.rounded() ? String(Int(d)) : String(d) }
}

/// A mistake in what the user typed; the message says what was wrong and what to do.
public struct SessionError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension String {
    /// The text as one line of a listing: newlines, other control characters and the Unicode
    /// line and paragraph separators become spaces, so a description or a name read from a file
    /// cannot print a line of its own (an official-looking one) in `:tools` or any other listing.
    public var oneLine: String {
        String(
            String.UnicodeScalarView(
                unicodeScalars.map { u in
                    u.properties.generalCategory == .control || u.value == 0x2028 || u.value == 0x2029 ? " " : u
                }))
    }
}
