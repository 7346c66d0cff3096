import Foundation

/// What an API said about an error, from its JSON error body or a mid-stream error event.
public struct APIErrorDetails: Sendable, Equatable {
    /// HTTP status; nil for an error that arrived inside a 200 stream.
    public var status: Int?
    public var message: String
    /// OpenAI `error.type` / Anthropic `error.type` (`overloaded_error`, …).
    public var type: String?
    /// OpenAI `error.code` — a string there, an integer from llama.cpp; kept as text.
    public var code: String?
    public var param: String?
    /// The `x-request-id` / `request-id` response header, when present.
    public var requestID: String?
    /// For a body that was not a JSON error (an HTML proxy page): a short snippet of it.
    public var bodySnippet: String?

    public init(
        status: Int?, message: String, type: String? = nil, code: String? = nil, param: String? = nil,
        requestID: String? = nil, bodySnippet: String? = nil
    ) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.requestID = requestID
        self.bodySnippet = bodySnippet
    }
}

/// Everything a query can fail with. Each case reads as one line for a user (`description`).
public enum QueryError: Error, Sendable, Equatable {
    /// The server answered with an error status.
    case http(APIErrorDetails)
    /// An error event inside a stream (OpenAI `data: {"error":…}`, llama.cpp `error:`, Anthropic `event: error`).
    case streamError(APIErrorDetails)
    /// No connection, a reset, or a timeout. `phase` says when: "connect", "before the response", "mid-stream".
    case transport(kind: TransportErrorKind, message: String)
    /// A FunctionSpec was forced, but the model answered without calling it. `content` is what it sent instead.
    case noFunctionCall(expected: String, content: String)
    /// The model called another function.
    case wrongFunction(expected: String, got: String, rawArguments: String)
    /// The arguments are not valid JSON (or not an object). `raw` is exactly what the model sent.
    case invalidArguments(function: String, raw: String, reason: String)
    /// A 2xx response that cannot be understood (not JSON, no choices, …).
    case malformedResponse(reason: String, snippet: String)
    /// The stream stopped before the response was complete.
    case truncatedStream(reason: String)
    /// The request cannot be sent as asked (an option the provider refuses, an insecure URL, …).
    case invalidRequest(String)
    /// The client would send its key over plain http to a host that is not this machine
    /// (``QueryClient/allowInsecure`` permits it).
    case insecureTransport(host: String)
    /// The server answered with a redirect (3xx). promptline never follows one: an API does not
    /// need it, and following would send the key and the prompt to wherever it points.
    case redirected(status: Int, location: String?)
    /// The whole turn (every attempt and every wait) took longer than its limit.
    case turnTimedOut(seconds: Double)
    /// Retries ran out; `last` is the final failure.
    indirect case retriesExhausted(attempts: Int, last: QueryError)
    /// The calling task was cancelled.
    case cancelled

    /// Whether the core retries this failure (before any body data arrived).
    public var isTransient: Bool {
        switch self {
        case .http(let d):
            guard let s = d.status else { return false }
            return RetryPolicy.isRetryable(status: s)
        case .streamError(let d):
            return ["overloaded_error", "rate_limit_error", "api_error", "server_error"].contains(d.type ?? "")
        case .transport: return true
        default: return false
        }
    }

    /// The HTTP status behind the error, when there is one.
    public var status: Int? {
        switch self {
        case .http(let d), .streamError(let d): return d.status
        case .retriesExhausted(_, let last): return last.status
        default: return nil
        }
    }
}

/// How a connection failed.
public enum TransportErrorKind: String, Sendable, Equatable {
    case connectFailed = "connection failed"
    /// Nothing listens at the address (the system refused the connection at once). Not sent
    /// again when the host is this machine: a server that is not running is not there a second
    /// later either.
    case connectionRefused = "connection refused"
    case connectTimeout = "connect timeout"
    case readTimeout = "read timeout"
    case connectionClosed = "connection closed"
    /// The proxy said no (a `407`, a refused `CONNECT`): not retried, asking again changes nothing.
    case proxyRefused = "proxy refused"
    case other = "network error"
}

extension QueryError: CustomStringConvertible, LocalizedError {
    public var errorDescription: String? { description }

    public var description: String {
        switch self {
        case .http(let d):
            var s = "HTTP \(d.status.map(String.init) ?? "?")"
            if let reason = d.status.flatMap(QueryError.reasonPhrase) { s += " \(reason)" }
            s += ": \(QueryError.snippet(d.message, max: QueryError.shownLength))"
            if let t = d.type, !d.message.contains(t) { s += " (\(QueryError.snippet(t, max: 80)))" }
            if let c = d.code, c != d.type { s += " [code \(QueryError.snippet(c, max: 80))]" }
            if let id = d.requestID { s += " request-id \(QueryError.snippet(id, max: 80))" }
            if let hint = QueryError.hint(for: d.status) { s += " — \(hint)" }
            return s
        case .streamError(let d):
            var s = "error in the stream: \(QueryError.snippet(d.message, max: QueryError.shownLength))"
            if let t = d.type { s += " (\(QueryError.snippet(t, max: 80)))" }
            return s
        case .transport(let kind, let message):
            return "\(kind.rawValue): \(message)"
        case .noFunctionCall(let expected, let content):
            return "the model did not call \(expected); it answered with text: \(QueryError.snippet(content, max: 300))"
        case .wrongFunction(let expected, let got, let raw):
            return
                "the model called \(QueryError.snippet(got, max: 80)) instead of \(expected), with arguments \(QueryError.snippet(raw, max: 300))"
        case .invalidArguments(let fn, let raw, let reason):
            return "\(fn) arguments are not valid JSON (\(reason)): \(QueryError.snippet(raw, max: 300))"
        case .malformedResponse(let reason, let snippet):
            return "unreadable response: \(QueryError.snippet(reason, max: QueryError.shownLength))"
                + (snippet.isEmpty ? "" : ": \(QueryError.snippet(snippet, max: 160))")
        case .truncatedStream(let reason):
            return "the stream ended early: \(reason)"
        case .invalidRequest(let m):
            return m
        case .insecureTransport(let host):
            return
                "refusing to send the API key over plain http to \(host) (anyone on the path could read it); use https"
        case .redirected(let status, let location):
            let to = location.map { "to \(QueryError.snippet($0, max: 200))" } ?? "without a Location"
            return
                "HTTP \(status): the server redirected \(to); redirects are not followed (they would carry the API key elsewhere)"
        case .turnTimedOut(let seconds):
            return
                "no complete answer within \(Int(seconds.rounded())) s, the limit for a whole turn"
        case .retriesExhausted(let attempts, let last):
            return "\(last.description) (gave up after \(attempts) attempts)"
        case .cancelled:
            return "cancelled"
        }
    }

    static func hint(for status: Int?) -> String? {
        switch status {
        case 401: return "check the API key"
        case 403: return "the key is not allowed to do this; check its project and permissions"
        case 404: return "check the model name and the base URL"
        case 429: return "rate limited; wait and try again, or lower the request rate"
        default: return nil
        }
    }

    static func reasonPhrase(_ status: Int) -> String? {
        switch status {
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Payload Too Large"
        case 422: return "Unprocessable Entity"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 529: return "Overloaded"
        default: return nil
        }
    }

    /// How much of a server's message an error line shows.
    static let shownLength = 500
    /// How much of a server's text an error keeps (redaction runs on this, then the description
    /// shortens it to what is shown).
    static let keptLength = 4096

    /// A one-line excerpt: line breaks and other white space folded to single spaces, at most
    /// `max` characters. Other controls stay for the terminal sanitiser, which removes whole
    /// escape sequences (folding their ESC would leave the rest of them on screen as text).
    static func snippet(_ s: String, max: Int) -> String {
        var out = ""
        var lastSpace = false
        for ch in s.unicodeScalars {
            let isSpace =
                (0x09...0x0D).contains(ch.value) || ch.value == 0x85 || ch.value == 0x2028 || ch.value == 0x2029
                || ch == " "
            if isSpace {
                if !lastSpace && !out.isEmpty { out.append(" ") }
                lastSpace = true
            } else {
                out.unicodeScalars.append(ch)
                lastSpace = false
            }
            if out.count >= max { return out + "…" }
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    /// The same error with every secret removed from every string in it: each one came from
    /// outside (a server, a model) or may quote such text.
    public func redacting(_ redactor: Redactor) -> QueryError {
        redactor.isEmpty ? self : mapStrings(redactor.redact)
    }

    /// The same error with `f` applied to every string it holds.
    func mapStrings(_ f: (String) -> String) -> QueryError {
        func rd(_ d: APIErrorDetails) -> APIErrorDetails {
            var d = d
            d.message = f(d.message)
            d.type = d.type.map(f)
            d.code = d.code.map(f)
            d.param = d.param.map(f)
            d.requestID = d.requestID.map(f)
            d.bodySnippet = d.bodySnippet.map(f)
            return d
        }
        switch self {
        case .http(let d): return .http(rd(d))
        case .streamError(let d): return .streamError(rd(d))
        case .transport(let k, let m): return .transport(kind: k, message: f(m))
        case .noFunctionCall(let e, let c): return .noFunctionCall(expected: f(e), content: f(c))
        case .wrongFunction(let e, let g, let r): return .wrongFunction(expected: f(e), got: f(g), rawArguments: f(r))
        case .invalidArguments(let fn, let raw, let reason):
            return .invalidArguments(function: f(fn), raw: f(raw), reason: f(reason))
        case .malformedResponse(let reason, let snip): return .malformedResponse(reason: f(reason), snippet: f(snip))
        case .truncatedStream(let reason): return .truncatedStream(reason: f(reason))
        case .invalidRequest(let m): return .invalidRequest(f(m))
        case .insecureTransport(let host): return .insecureTransport(host: f(host))
        case .redirected(let s, let l): return .redirected(status: s, location: l.map(f))
        case .retriesExhausted(let a, let last): return .retriesExhausted(attempts: a, last: last.mapStrings(f))
        case .turnTimedOut, .cancelled: return self
        }
    }
}
