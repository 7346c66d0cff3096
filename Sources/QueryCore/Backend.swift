import Foundation

/// A tool call as it came off the wire, arguments still text.
struct RawToolCall: Sendable, Equatable {
    var id: String?
    var name: String
    var arguments: String
    /// Anthropic sends `input` as parsed JSON in non-streamed responses.
    var parsed: JSONValue?

    /// The call as a caller sees it, arguments parsed where they are JSON (null where they are
    /// not: the raw text stays, for the caller to show and check). No arguments at all read as `{}`.
    var call: FunctionCall {
        let trimmed = arguments.trimmingCharacters(in: .whitespacesAndNewlines)
        let args = parsed ?? (trimmed.isEmpty ? .object([:]) : (try? JSONValue.parse(arguments)) ?? .null)
        return FunctionCall(id: id, name: name, arguments: args, rawArguments: arguments)
    }
}

/// A response, decoded but not yet checked against the FunctionSpec.
struct ResponseParts: Sendable {
    var text = ""
    /// Reasoning the server showed (a summary, or the thinking itself), apart from the answer.
    var reasoning = ""
    var toolCalls: [RawToolCall] = []
    var info = QueryInfo()
    var inputTokens: Int?
    var outputTokens: Int?
}

extension ResponseParts {
    /// Takes a usage object: kept as sent (in `info.usage`) and its counts read from `input` and
    /// `output` — the one rule for every wire format's usage. `merge`: a stream that reports
    /// usage in parts (Anthropic) keeps what earlier parts said.
    mutating func read(usage: JSONValue?, input: String, output: String, merge: Bool = false) {
        guard let usage, case .object(let u) = usage else { return }
        var merged = merge ? info.usage?.objectValue ?? JSONObject() : JSONObject()
        for (k, v) in u { merged[k] = v }
        info.usage = .object(merged)
        if let i = merged[input]?.countValue { inputTokens = i } else if !merge { inputTokens = nil }
        if let o = merged[output]?.countValue { outputTokens = o } else if !merge { outputTokens = nil }
    }
}

/// Folds a stream's events into ``ResponseParts``, reporting deltas as it goes.
protocol StreamAccumulator {
    /// What has accumulated so far; read for the usage (Anthropic sends input tokens first).
    var parts: ResponseParts { get }
    /// Handles one SSE event. Returns true when the stream says it is complete.
    mutating func handle(_ event: SSEEvent, emit: (QueryEvent) -> Void) throws -> Bool
    /// The response so far; `complete` says whether the stream's end marker arrived.
    func finish(complete: Bool) throws -> ResponseParts
}

/// What differs between the providers: the request body, the response and stream formats, and
/// the error body.
protocol Backend: Sendable {
    var provider: Provider { get }
    func makeRequest(
        _ request: QueryRequest, forcedCall: ForcedCallStrategy
    ) throws(QueryError) -> (body: JSONObject, path: String, notes: [String])
    func authHeaders(apiKey: String?) -> [(String, String)]
    func decode(_ body: [UInt8]) throws -> ResponseParts
    func makeAccumulator() -> any StreamAccumulator
    func errorDetails(status: Int?, body: [UInt8]) -> APIErrorDetails
}

/// How a forced function (a ``FunctionSpec``) is requested from the server.
///
/// Servers differ in what they honour: OpenAI forces a call with `tool_choice: "required"` and one
/// tool; llama.cpp's server reads `tool_choice` as a string only and, even with `"required"`,
/// lets a small model write text before the call — but it applies a `response_format` JSON schema
/// as a grammar from the first token. So the strategy is chosen per server.
public enum ForcedCallStrategy: String, Sendable, Equatable, CaseIterable {
    /// `json-schema` for a llama.cpp server (probed once per base URL), `tools` elsewhere.
    case auto
    /// One tool and `tool_choice: "required"` (Anthropic: `{"type":"tool","name":…}`).
    case tools
    /// AIDE's `tool_choice: {"type":"function","function":{"name":…}}`.
    case named
    /// The spec's schema as `response_format` json_schema; the reply's JSON text is the call's
    /// arguments. Same result type, same errors, same schema check as a tool call.
    case jsonSchema = "json-schema"
}

extension Backend {
    /// A whole response body's JSON and its `key` array (the content, choices, output…): an error
    /// body (`isError`) is the server's error, a body without the array is malformed.
    func body(_ bytes: [UInt8], listing key: String, isError: (JSONValue) -> Bool) throws -> (JSONValue, [JSONValue]) {
        let v = try parseBody(bytes)
        if isError(v) { throw QueryError.streamError(errorDetails(status: nil, body: bytes)) }
        guard let list = v[key]?.arrayValue else {
            throw QueryError.malformedResponse(
                reason: "no \"\(key)\" in the response",
                snippet: QueryError.snippet(v.serialized(), max: QueryError.keptLength))
        }
        return (v, list)
    }

    /// A whole (non-streamed) response body as JSON, or the typed error with a snippet of it.
    func parseBody(_ body: [UInt8]) throws -> JSONValue {
        do {
            return try JSONValue.parse(body)
        } catch {
            throw QueryError.malformedResponse(
                reason: "not JSON (\(error))",
                snippet: QueryError.snippet(
                    String(decoding: body.prefix(QueryError.keptLength), as: UTF8.self), max: QueryError.keptLength))
        }
    }

    /// The error object of a JSON error body (`{"error": {...}}`, or Anthropic's
    /// `{"type":"error","error":{...}}`), or a snippet of a body that is not one: both wire
    /// formats' errors read the same way.
    func errorDetails(status: Int?, body: [UInt8]) -> APIErrorDetails {
        if let v = try? JSONValue.parse(body) {
            let e = v["error"] ?? v
            if case .object = e {
                let message = e["message"]?.stringValue ?? e["detail"]?.stringValue ?? e.serialized()
                let code: String?
                switch e["code"] {
                case .string(let s): code = s
                case .integer(let i): code = String(i)
                case .double(let d): code = String(d)
                default: code = nil
                }
                return APIErrorDetails(
                    status: status, message: message, type: e["type"]?.stringValue, code: code,
                    param: e["param"]?.stringValue)
            }
            if case .string(let s) = e { return APIErrorDetails(status: status, message: s) }
        }
        let text = String(decoding: body.prefix(4096), as: UTF8.self)
        let snippet = htmlSnippet(text)
        return APIErrorDetails(
            status: status, message: snippet.isEmpty ? "(empty body)" : "non-JSON body: \(snippet)",
            bodySnippet: snippet)
    }

    /// For an HTML page: its <title> (or the text without tags), shortened to one line.
    func htmlSnippet(_ text: String) -> String {
        var t = text
        if let r1 = t.range(of: "<title>", options: .caseInsensitive),
            let r2 = t.range(of: "</title>", options: .caseInsensitive, range: r1.upperBound..<t.endIndex)
        {
            t = String(t[r1.upperBound..<r2.lowerBound])
        } else if t.contains("<") {
            t = t.replacingOccurrences(of: "<[^>]*>", with: " ", options: .regularExpression)
        }
        return QueryError.snippet(t, max: QueryError.keptLength)  // shortened for display only after redaction
    }
}
