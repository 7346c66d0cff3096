import Foundation
import QueryCore

/// The tool workbench's settings: the tools offered, which one the model may or must call,
/// canned results, structured output, and how many tool rounds a turn may take.
public struct Toolbox: Equatable, Sendable {
    /// Offered to the model on every request (`:tool FILE`), unless a `:func` is loaded.
    public var tools: [FunctionSpec] = []
    /// `:choice`: applies to the first request of a turn; the requests that carry tool results
    /// back go with `auto`, so a forced tool does not loop until `max_tool_rounds`.
    public var choice: ToolChoice = .auto
    /// `:mock FILE`: results given without asking.
    public var mock: ToolMock?
    /// `:schema FILE`: structured output (the reply is JSON checked against it).
    public var schema: FunctionSpec?
    /// How many times a turn sends tool results back before it stops asking (`:set max_tool_rounds`).
    public var maxRounds = Toolbox.defaultMaxRounds

    public static let defaultMaxRounds = 8

    public init() {}

    public func tool(named name: String) -> FunctionSpec? { tools.first { $0.name == name } }

    /// `:tools`: one line per tool (name, description, required parameters), then the choice.
    public var listing: String {
        guard !tools.isEmpty else { return "no tools loaded (:tool FILE loads some)" }
        var lines = tools.map { t in
            // Each field is one line: a file's text never starts a line of its own.
            let required = (t.parameters["required"]?.arrayValue ?? []).compactMap(\.stringValue)
            let params = required.isEmpty ? "" : "  requires \(required.joined(separator: ", ").oneLine)"
            let about = t.description.isEmpty ? "" : " — \(String(t.description.oneLine.prefix(70)))"
            return "  \(t.name.oneLine)\(about)\(params)"
        }
        lines.append(
            "choice \(String(describing: choice).oneLine)" + (mock.map { " · mock \($0.source.oneLine)" } ?? ""))
        return lines.joined(separator: "\n")
    }
}

/// One tool call's result as it went back to the model.
public struct ToolResult: Equatable, Sendable {
    /// Where the result came from.
    public enum Source: String, Sendable {
        /// Typed at the result prompt.
        case typed
        /// Read from a file (`@file` at the result prompt).
        case file
        /// The loaded `:mock` answered.
        case mock
        /// Nobody answered: the round ended first (Ctrl-C, end of input, `max_tool_rounds`) and
        /// the call is answered with an error, so the conversation stays valid.
        case ended
    }

    public var callID: String
    public var name: String
    public var content: String
    public var isError: Bool
    public var source: Source

    public init(callID: String, name: String, content: String, isError: Bool = false, source: Source) {
        (self.callID, self.name, self.content) = (callID, name, content)
        (self.isError, self.source) = (isError, source)
    }

    /// The error result of a call nobody answered.
    public static func ended(_ call: FunctionCall) -> ToolResult {
        ToolResult(
            callID: call.id ?? "", name: call.name,
            content: "error: no result; the user ended the tool round before answering this call", isError: true,
            source: .ended)
    }

    var message: ChatMessage { .toolResult(content, callID: callID, isError: isError) }
}

/// Canned tool results (`:mock FILE`, JSON or YAML):
/// - an object of tool name → result: a string (its `{{args.NAME}}`, `{{name}}`, `{{id}}`
///   placeholders filled from the call) or any other JSON (sent as JSON text; strings inside it
///   are filled too); a list there is that tool's results in order, one per call;
/// - a list at the top: results in order, whichever tool is called.
/// A tool the mock does not cover, or whose list is used up, is asked for as without a mock.
public struct ToolMock: Equatable, Sendable {
    public var value: JSONValue
    /// Where it was loaded from.
    public var source: String

    /// - Throws: ``SessionError`` when `value` is neither an object nor a non-empty list.
    public init(_ value: JSONValue, source: String) throws {
        switch value {
        case .object(let o) where !o.isEmpty: break
        case .array(let a) where !a.isEmpty: break
        default:
            throw SessionError(
                "mock \(source): expected an object of tool name → result, or a list of results (got \(value.typeName))"
            )
        }
        self.value = value
        self.source = source
    }

    /// The tools it names (empty for a top-level list, which answers any tool).
    public var names: [String] { value.objectValue?.keys ?? [] }

    /// The result for `call`, the `uses`-th call this mock answers for that tool (for a top-level
    /// list, the `uses`-th call of any tool); nil when it has none. Placeholders naming an
    /// argument the call lacks are filled with nothing and reported in `missing`.
    public func answer(_ call: FunctionCall, uses: Int) -> (content: String, missing: [String])? {
        // (JSONValue reads a nil literal as null: the list's end is said with Optional.none.)
        let entry: JSONValue?
        switch value.arrayValue != nil ? value : value[call.name] {
        case .array(let list)?: entry = uses < list.count ? .some(list[uses]) : .none
        case let other: entry = other
        }
        guard let entry else { return nil }
        var missing: [String] = []
        let filled = Self.fill(entry, call, &missing)
        return (filled.stringValue ?? filled.serialized(), missing)
    }

    /// What a call of `name` counts its uses under: the tool (an object mock) or every call (a list).
    func counter(for name: String) -> String { value.objectValue != nil ? name : "" }

    static func fill(_ v: JSONValue, _ call: FunctionCall, _ missing: inout [String]) -> JSONValue {
        switch v {
        case .string(let s): return .string(fill(s, call, &missing))
        case .array(let a): return .array(a.map { fill($0, call, &missing) })
        case .object(let o): return .object(JSONObject(o.map { ($0.key, fill($0.value, call, &missing)) }))
        default: return v
        }
    }

    /// Fills `{{args.NAME}}` (a string argument as is, any other as JSON; `args.a.b` reaches
    /// into objects), `{{args}}` (all of them as JSON), `{{name}}` and `{{id}}`.
    static func fill(_ s: String, _ call: FunctionCall, _ missing: inout [String]) -> String {
        guard s.contains("{{") else { return s }
        var out = ""
        var rest = Substring(s)
        while let open = rest.range(of: "{{"), let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex)
        {
            out += rest[..<open.lowerBound]
            let key = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            out += value(of: key, in: call, missing: &missing) ?? String(rest[open.lowerBound..<close.upperBound])
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    static func value(of key: String, in call: FunctionCall, missing: inout [String]) -> String? {
        switch key {
        case "name": return call.name
        case "id": return call.id ?? ""
        case "args": return call.arguments.serialized()
        default:
            guard key.hasPrefix("args.") else { return nil }
            var v: JSONValue? = call.arguments
            for part in key.dropFirst(5).split(separator: ".") { v = v?[String(part)] }
            guard let v else {
                missing.append(key)
                return ""
            }
            return v.stringValue ?? v.serialized()
        }
    }
}
