import Foundation
import Logging

extension QueryClient {
    /// One whole (not streamed) exchange with the provider's API besides the model calls — the
    /// Batch API's files and batches: the key header and the security check as ``run(_:logger:onEvent:)``
    /// has them, transient failures retried by the same ``retryPolicy`` (when `retrying`), an error
    /// status read as the provider's error body, everything redacted.
    /// - Parameters:
    ///   - path: under ``baseURL``, e.g. `/batches`.
    ///   - retrying: false for a request that must not be sent twice on a doubtful failure (a
    ///     timeout may come after the server acted); the caller decides what to do then.
    ///   - onRetry: told before each wait.
    /// - Returns: the response body.
    /// - Throws: ``QueryError``, and nothing else.
    public func exchange(
        _ method: String, _ path: String, body: [UInt8] = [], contentType: String? = nil, retrying: Bool = true,
        bodyLimit: Int = 64 << 20, into file: String? = nil, logger: Logger? = nil,
        onRetry: (RetryNotice) -> Void = { _ in }
    ) async throws(QueryError) -> [UInt8] {
        let redactor = self.redactor
        return try await redactingErrors {
            try checkSecurity()
            let http = HTTPRequest(
                method: method, url: url(path), headers: headers(contentType: contentType), body: body)
            var attempts = Attempts(maxAttempts: retrying ? max(1, retryPolicy.maxAttempts) : 1, deadline: nil)
            while true {
                if Task.isCancelled { throw QueryError.cancelled }
                do {
                    return try await exchangeOnce(http, bodyLimit: bodyLimit, into: file, logger: logger ?? Self.silent)
                } catch let f as AttemptFailure {
                    let failure = f.error.redacting(redactor)
                    let delay = try nextDelay(
                        after: failure, retryable: f.retryable, serverDelay: f.serverDelay, attempts: &attempts)
                    onRetry(
                        RetryNotice(
                            attempt: attempts.count, maxAttempts: attempts.maxAttempts, delay: delay,
                            reason: Self.reason(failure)))
                    do {
                        try await clock.sleep(seconds: delay)
                    } catch {
                        throw QueryError.cancelled
                    }
                    attempts.waited += delay
                }
            }
        }
    }

    /// One exchange. A success's body is written to `file` when one is given (as it arrives, so
    /// memory stays flat; nothing is returned), else returned. A body over `bodyLimit` is refused
    /// and not retried: the same body is as large the next time.
    private func exchangeOnce(_ http: HTTPRequest, bodyLimit: Int, into file: String?, logger: Logger)
        async throws -> [UInt8]
    {
        let response: HTTPResponse
        var data: [UInt8] = []
        do {
            response = try await transport.send(http, logger: logger)
            let ok = (200..<300).contains(response.status)
            if ok, let file {
                try await Self.save(response.body, to: file, limit: bodyLimit)
            } else {
                data = try await Self.collect(response.body, limit: ok ? bodyLimit : 1 << 20)
            }
        } catch let e as TransportError {
            throw AttemptFailure(error: .transport(kind: e.kind, message: e.message), retryable: true)
        }
        if (300..<400).contains(response.status) {
            throw AttemptFailure(
                error: .redirected(status: response.status, location: response.headers["location"]), retryable: false)
        }
        guard (200..<300).contains(response.status) else {
            throw AttemptFailure(
                error: error(status: response.status, body: data, requestID: response.headers["x-request-id"]),
                retryable: retryPolicy.shouldRetry(status: response.status, headers: response.headers),
                serverDelay: retryPolicy.serverDelay(headers: response.headers, now: clock.wallNow()))
        }
        return data
    }

    /// A body read whole, at most `limit` bytes.
    static func collect(_ body: HTTPBody, limit: Int) async throws -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try await body.next() {
            guard all.count + chunk.count <= limit else { throw tooLarge(limit) }
            all += chunk
        }
        return all
    }

    /// A body written to `path` (a new 0600 file, replacing one a failed attempt left), at most
    /// `limit` bytes.
    static func save(_ body: HTTPBody, to path: String, limit: Int) async throws {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw AttemptFailure(
                error: .invalidRequest("cannot write \(path): \(String(cString: strerror(errno)))"), retryable: false)
        }
        defer { close(fd) }
        var written = 0
        while let chunk = try await body.next() {
            written += chunk.count
            guard written <= limit else { throw tooLarge(limit) }
            let ok = chunk.withUnsafeBytes { b in
                var off = 0
                while off < b.count {
                    let n = write(fd, b.baseAddress! + off, b.count - off)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { return false }
                    off += n
                }
                return true
            }
            guard ok else {
                throw AttemptFailure(
                    error: .invalidRequest("cannot write \(path): \(String(cString: strerror(errno)))"),
                    retryable: false)
            }
        }
    }

    /// A body past its limit: refused at once, not retried.
    static func tooLarge(_ limit: Int) -> AttemptFailure {
        AttemptFailure(
            error: .malformedResponse(
                reason:
                    "the server sent more than \(limit >= 1 << 20 ? "\(limit >> 20) MB" : "\(limit) bytes") (the most promptline reads here); not retried",
                snippet: ""),
            retryable: false)
    }

    /// An error response (`status`, `body`) as this provider's ``QueryError/http(_:)``.
    public func error(status: Int, body: [UInt8], requestID: String? = nil) -> QueryError {
        var details = backend.errorDetails(status: status, body: body)
        details.requestID = requestID
        return QueryError.http(details).redacting(redactor)
    }

    /// A whole response body to `request` read as ``run(_:logger:onEvent:)`` reads one: the
    /// output (the forced function's checked arguments, tool calls, text), tokens and info. Its
    /// request time is 0: the caller knows when it was asked. For a response that arrived some
    /// other way (a Batch API output file).
    /// - Throws: ``QueryError`` (a malformed body, a missing or wrong function call).
    public func result(decoding body: [UInt8], for request: QueryRequest) throws(QueryError) -> QueryResult {
        do {
            return try Self.result(from: try backend.decode(body), request: request, strategy: strategy(for: request))
        } catch let f as AttemptFailure {
            throw f.error.redacting(redactor)
        } catch let e as QueryError {
            throw e.redacting(redactor)
        } catch {
            throw QueryError.malformedResponse(reason: "\(error)", snippet: "").redacting(redactor)
        }
    }
}

/// A batch as the OpenAI Batch API reports it (`GET /v1/batches/{id}`).
public struct RemoteBatch: Sendable, Equatable {
    public var id: String
    /// validating, in_progress, finalizing, completed, failed, expired, cancelling, cancelled.
    public var status: String
    public var endpoint: String
    public var model: String?
    public var inputFileID: String?
    public var outputFileID: String?
    public var errorFileID: String?
    public var total: Int
    public var completed: Int
    public var failed: Int
    public var createdAt: Int?
    public var metadata: [String: String]
    /// Why the batch as a whole failed (validation errors), one line each.
    public var errors: [String]

    /// Reads a Batch object; nil when it has no id or status.
    public init?(json v: JSONValue) {
        guard let id = v["id"]?.stringValue, let status = v["status"]?.stringValue else { return nil }
        (self.id, self.status) = (id, status)
        endpoint = v["endpoint"]?.stringValue ?? ""
        model = v["model"]?.stringValue
        inputFileID = v["input_file_id"]?.stringValue
        outputFileID = v["output_file_id"]?.stringValue
        errorFileID = v["error_file_id"]?.stringValue
        let counts = v["request_counts"]
        total = counts?["total"]?.intValue ?? 0
        completed = counts?["completed"]?.intValue ?? 0
        failed = counts?["failed"]?.intValue ?? 0
        createdAt = v["created_at"]?.intValue
        metadata = (v["metadata"]?.objectValue ?? JSONObject()).reduce(into: [:]) { $0[$1.key] = $1.value.stringValue }
        errors = (v["errors"]?["data"]?.arrayValue ?? []).map { e in
            let line = e["line"]?.intValue.map { "line \($0): " } ?? ""
            return line + (e["message"]?.stringValue ?? e["code"]?.stringValue ?? e.serialized())
        }
    }

    /// The batch will not change any more: its output and error files (if any) are final.
    public var isFinished: Bool { ["completed", "failed", "expired", "cancelled"].contains(status) }
}

/// The OpenAI Batch API (`/v1/files`, `/v1/batches`) through a ``QueryClient`` (its base URL,
/// key, transport, retries and redaction): requests written as the input file's lines,
/// uploaded, run by the provider within 24 hours at its batch price, their responses read back
/// as ``QueryResult``s exactly as a direct call's.
///
/// ```swift
/// let api = try BatchAPI(client: client)
/// let line = try api.inputLine(customID: "row-1", request: request)
/// let file = try await api.upload(Array((line.serialized() + "\n").utf8), filename: "rows.jsonl")
/// var batch = try await api.create(inputFileID: file)
/// while !batch.isFinished { try await Task.sleep(for: .seconds(30)); batch = try await api.retrieve(batch.id) }
/// ```
public struct BatchAPI: Sendable {
    public var client: QueryClient
    /// The endpoint every request of a batch goes to: the client's wire format's.
    public var endpoint: String

    /// The most requests one input file may hold, and its largest size.
    public static let maxRequests = 50_000
    public static let maxFileBytes = 200 << 20
    /// The most an output or error file may be: the API's documented file limit.
    public var downloadLimit = BatchAPI.maxFileBytes

    /// - Throws: ``QueryError/invalidRequest(_:)`` for a provider without this API (Anthropic's
    ///   Message Batches are another API).
    public init(client: QueryClient) throws(QueryError) {
        switch client.provider {
        case .openAI: endpoint = "/v1/chat/completions"
        case .openAIResponses: endpoint = "/v1/responses"
        case .anthropic:
            throw QueryError.invalidRequest(
                "remote batches use OpenAI's Batch API: switch with :provider openai (or openai-responses)")
        }
        self.client = client
    }

    /// One line of the input file: `custom_id`, `method`, `url` and the body ``QueryClient/run(_:logger:onEvent:)``
    /// would send for `request` (not streamed).
    public func inputLine(customID: String, request: QueryRequest) throws(QueryError) -> JSONValue {
        var r = request
        r.stream = false
        return [
            "custom_id": .string(customID), "method": "POST", "url": .string(endpoint),
            "body": try client.requestBody(for: r),
        ]
    }

    /// Uploads an input file (`POST /files`, purpose `batch`, multipart). Returns the file's id.
    public func upload(_ jsonl: [UInt8], filename: String, onRetry: (RetryNotice) -> Void = { _ in })
        async throws(QueryError) -> String
    {
        let boundary = "promptline-" + UUID().uuidString
        var body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n".utf8)
        let safeName = filename.filter { $0 != "\"" && $0 != "\r" && $0 != "\n" }
        body += Array(
            ("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(safeName)\"\r\n"
                + "Content-Type: application/jsonl\r\n\r\n").utf8)
        body += jsonl
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        let reply = try await orNoBatchAPI { () async throws(QueryError) -> [UInt8] in
            try await client.exchange(
                "POST", "/files", body: body, contentType: "multipart/form-data; boundary=\(boundary)",
                onRetry: onRetry)
        }
        guard let id = try Self.object(reply, what: "the uploaded file")["id"]?.stringValue else {
            throw QueryError.malformedResponse(reason: "the uploaded file has no id", snippet: Self.snippet(reply))
        }
        return id
    }

    /// Creates the batch (`POST /batches`, completion window 24h). It is sent once: a doubtful
    /// failure (a timeout, a dropped connection, a 5xx) may have created it anyway, so look for it
    /// with ``list(limit:)`` by its `metadata` before sending again.
    public func create(inputFileID: String, metadata: [String: String] = [:]) async throws(QueryError) -> RemoteBatch {
        var body: JSONObject = [
            "input_file_id": .string(inputFileID), "endpoint": .string(endpoint), "completion_window": "24h",
        ]
        if !metadata.isEmpty {
            body["metadata"] = .object(
                JSONObject(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
        }
        let reply = try await client.exchange(
            "POST", "/batches", body: JSONValue.object(body).serializedBytes(), contentType: "application/json",
            retrying: false)
        return try Self.batch(reply)
    }

    /// `GET /batches/{id}`.
    public func retrieve(_ id: String, onRetry: (RetryNotice) -> Void = { _ in }) async throws(QueryError)
        -> RemoteBatch
    {
        try Self.batch(try await client.exchange("GET", "/batches/" + Self.pathSafe(id), onRetry: onRetry), asked: id)
    }

    /// `POST /batches/{id}/cancel`: the batch stops; what finished stays in its output file.
    public func cancel(_ id: String) async throws(QueryError) -> RemoteBatch {
        try Self.batch(try await client.exchange("POST", "/batches/" + Self.pathSafe(id) + "/cancel"), asked: id)
    }

    /// The most recent batches, newest first (`GET /batches?limit=`).
    public func list(limit: Int = 20) async throws(QueryError) -> [RemoteBatch] {
        let reply = try await orNoBatchAPI { () async throws(QueryError) -> [UInt8] in
            try await client.exchange("GET", "/batches?limit=\(max(1, min(limit, 100)))")
        }
        guard let data = try Self.object(reply, what: "the batch list")["data"]?.arrayValue else {
            throw QueryError.malformedResponse(reason: "the batch list has no data", snippet: Self.snippet(reply))
        }
        return data.compactMap(RemoteBatch.init(json:))
    }

    /// A file's content (`GET /files/{id}/content`): an output or error file, at most
    /// ``downloadLimit`` (the API's documented file limit).
    public func content(fileID: String, onRetry: (RetryNotice) -> Void = { _ in }) async throws(QueryError)
        -> [UInt8]
    {
        try await client.exchange(
            "GET", "/files/" + Self.pathSafe(fileID) + "/content", bodyLimit: downloadLimit, onRetry: onRetry)
    }

    /// A file's content written to `path` as it arrives (memory stays flat), at most
    /// ``downloadLimit``: past it the download stops with one error and is not retried.
    public func download(fileID: String, to path: String, onRetry: (RetryNotice) -> Void = { _ in })
        async throws(QueryError)
    {
        _ = try await client.exchange(
            "GET", "/files/" + Self.pathSafe(fileID) + "/content", bodyLimit: downloadLimit, into: path,
            onRetry: onRetry)
    }

    /// One line of an output or error file, read against the request it answers: its
    /// `custom_id` and the result — the response body read as a direct call's, or the error
    /// (an error status with its body, or the line's own `error`).
    public func read(outputLine line: JSONValue, request: QueryRequest) -> Result<QueryResult, QueryError> {
        if let response = line["response"], response != .null {
            let status = response["status_code"]?.intValue ?? 0
            let body = response["body"].map { $0.serializedBytes() } ?? []
            guard (200..<300).contains(status) else {
                return .failure(
                    client.error(status: status, body: body, requestID: response["request_id"]?.stringValue))
            }
            do {
                return .success(try client.result(decoding: body, for: request))
            } catch {
                return .failure(error)
            }
        }
        let e = line["error"]
        let message = e?["message"]?.stringValue ?? "the line has neither a response nor an error"
        return .failure(
            .http(APIErrorDetails(status: nil, message: message, type: nil, code: e?["code"]?.stringValue))
                .redacting(client.redactor))
    }

    /// `op`, a 404 from it said as what it means: the server has no Batch API at all (llama.cpp's has none).
    func orNoBatchAPI(_ op: () async throws(QueryError) -> [UInt8]) async throws(QueryError) -> [UInt8] {
        do {
            return try await op()
        } catch {
            guard case .http(let d) = error, d.status == 404 else { throw error }
            throw QueryError.invalidRequest(
                "\(Redactor.url(client.baseURL)) has no Batch API (404 for /files or /batches); remote batches need OpenAI's API, e.g. --base-url https://api.openai.com/v1 with OPENAI_API_KEY"
            )
        }
    }

    /// - Parameter asked: the id asked about: an answer about another batch is refused (waiting
    ///   for one that never answers would poll forever).
    static func batch(_ reply: [UInt8], asked: String? = nil) throws(QueryError) -> RemoteBatch {
        guard let b = RemoteBatch(json: .object(try object(reply, what: "the batch"))) else {
            throw QueryError.malformedResponse(reason: "the batch has no id or status", snippet: snippet(reply))
        }
        if let asked, b.id != asked {
            throw QueryError.malformedResponse(
                reason: "asked about batch \(asked), the server answered about batch \(b.id)", snippet: "")
        }
        return b
    }

    static func object(_ reply: [UInt8], what: String) throws(QueryError) -> JSONObject {
        guard let o = (try? JSONValue.parse(reply))?.objectValue else {
            throw QueryError.malformedResponse(reason: "\(what) is not a JSON object", snippet: snippet(reply))
        }
        return o
    }

    static func snippet(_ bytes: [UInt8]) -> String { String(decoding: bytes.prefix(200), as: UTF8.self) }

    /// An id as one path segment: anything but letters, digits, `-` and `_` is refused by
    /// percent-encoding it, so an id cannot reach another path.
    static func pathSafe(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "-_").union(.alphanumerics)) ?? ""
    }
}
