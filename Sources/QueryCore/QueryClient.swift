import Foundation
import Logging

/// Sends prompts to an OpenAI-compatible or Anthropic endpoint with AIDE's `query()` semantics:
/// null options dropped, a FunctionSpec forced and its arguments parsed and checked, transient
/// failures retried with bounded backoff, usage and response info returned.
///
/// ```swift
/// let client = QueryClient(provider: .openAI, baseURL: "http://127.0.0.1:8080/v1")
/// let result = try await client.query(system: "Be brief.", user: "Hi", options: ["model": "gpt-4o-mini"])
/// print(result.output.text ?? "", result.inputTokens ?? -1)
/// ```
///
/// Every call throws only ``QueryError``; pass a `Logger` to a call to see what it does.
public struct QueryClient: Sendable {
    public var provider: Provider
    /// e.g. `https://api.openai.com/v1` (OpenAI: `/chat/completions` is appended) or
    /// `https://api.anthropic.com` (Anthropic: `/v1/messages` is appended).
    public var baseURL: String
    /// Sent only as a header; never logged, never in an error.
    public var apiKey: String?
    /// Used when the options carry no `model`.
    public var defaultModel: String?
    public var transport: any HTTPTransport
    public var retryPolicy: RetryPolicy
    public var clock: any QueryClock
    /// How a FunctionSpec is forced; `.auto` probes the server once per base URL.
    public var forcedCall: ForcedCallStrategy {
        didSet { resolvedFromAuto = false }
    }
    /// What the `.auto` probe found, per base URL; copies of a client share it.
    public var serverKinds: ServerKindCache
    /// ``forcedCall`` was `.auto` before ``resolvingForcedCall(logger:)`` made it concrete.
    private var resolvedFromAuto = false
    /// Allow sending a key over plain http to a host that is not this machine.
    public var allowInsecure: Bool
    /// The `User-Agent` header; an application names itself here.
    public var userAgent = "QueryCore"
    /// Other texts never to show in an error besides ``apiKey`` (e.g. every key in the
    /// environment); credentials in ``baseURL`` are added automatically.
    public var otherSecrets: [String] = []
    /// The longest a whole call may take: every attempt and every wait between them. nil: no
    /// bound beyond the transport's timeouts and the retry policy.
    public var turnTimeout: Double?
    /// Bounds on what a streamed response may make the client hold in memory.
    public var streamLimits = StreamLimits()
    /// Decides when each attempt may be sent (a batch's adaptive concurrency); nil: at once.
    public var attemptGate: (any AttemptGate)?

    public init(
        provider: Provider = .openAI,
        baseURL: String? = nil,
        apiKey: String? = nil,
        defaultModel: String? = nil,
        transport: any HTTPTransport = AsyncHTTPClientTransport(),
        retryPolicy: RetryPolicy = RetryPolicy(),
        clock: any QueryClock = SystemClock(),
        forcedCall: ForcedCallStrategy = .auto,
        serverKinds: ServerKindCache = ServerKindCache(),
        allowInsecure: Bool = false
    ) {
        self.provider = provider
        self.baseURL = baseURL ?? provider.defaultBaseURL
        self.apiKey = apiKey
        self.defaultModel = defaultModel
        self.transport = transport
        self.retryPolicy = retryPolicy
        self.clock = clock
        self.forcedCall = forcedCall
        self.serverKinds = serverKinds
        self.allowInsecure = allowInsecure
    }

    var backend: any Backend {
        switch provider {
        case .openAI: return OpenAIBackend()
        case .anthropic: return AnthropicBackend()
        case .openAIResponses: return ResponsesBackend(llamaCpp: serverKinds.kind(of: baseURL) == .llamaCpp)
        }
    }

    // MARK: - The AIDE forms

    /// AIDE's `query(system_message, user_message, func_spec, **model_kwargs)`, not streamed.
    /// The system and user messages are sent only when non-empty.
    /// - Parameter logger: where the call (and the transport) log; nothing is logged without one.
    /// - Returns: the output (text or the forced function's parsed arguments), timings, tokens, info.
    /// - Throws: ``QueryError``, and nothing else.
    public func query(
        system: String?, user: String?, functionSpec: FunctionSpec? = nil, options: QueryOptions = [:],
        logger: Logger? = nil
    ) async throws(QueryError) -> QueryResult {
        let messages = QueryRequest.messages(system: system, user: user)
        return try await query(messages: messages, functionSpec: functionSpec, options: options, logger: logger)
    }

    /// A multi-turn conversation, not streamed.
    /// - Throws: ``QueryError``, and nothing else.
    public func query(
        messages: [ChatMessage], functionSpec: FunctionSpec? = nil, options: QueryOptions = [:], logger: Logger? = nil
    ) async throws(QueryError) -> QueryResult {
        let request = try makeRequest(messages: messages, functionSpec: functionSpec, options: options, stream: false)
        return try await run(request, logger: logger) { _ in }
    }

    /// The streamed form: text and argument deltas, retry notices, then `.completed(result)`.
    /// Iterating it throws ``QueryError`` only. Cancelling the consuming task (or dropping the
    /// stream) cancels the request.
    public func stream(
        messages: [ChatMessage], functionSpec: FunctionSpec? = nil, options: QueryOptions = [:], logger: Logger? = nil
    ) -> QueryEventStream {
        let request: QueryRequest
        do {
            request = try makeRequest(messages: messages, functionSpec: functionSpec, options: options, stream: true)
        } catch {
            return QueryEventStream(AsyncThrowingStream { $0.finish(throwing: error) })
        }
        return QueryEventStream(
            AsyncThrowingStream { continuation in
                let task = Task {
                    do {
                        let result = try await self.run(request, logger: logger) { continuation.yield($0) }
                        continuation.yield(.completed(result))
                        continuation.finish()
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
                continuation.onTermination = { _ in task.cancel() }
            })
    }

    /// Builds the request the other methods send: the model from `options["model"]` or
    /// ``defaultModel``.
    public func makeRequest(
        messages: [ChatMessage], functionSpec: FunctionSpec?, options: QueryOptions, stream: Bool
    ) throws(QueryError) -> QueryRequest {
        let model = options["model"]?.stringValue ?? defaultModel
        guard let model, !model.isEmpty else {
            throw QueryError.invalidRequest("no model: pass options[\"model\"] or set defaultModel")
        }
        var opts = options
        opts["model"] = nil
        return QueryRequest(model: model, messages: messages, functionSpec: functionSpec, options: opts, stream: stream)
    }

    /// The exact HTTP request that ``run(_:logger:onEvent:)`` would send, key header included.
    public func httpRequest(for request: QueryRequest) throws(QueryError) -> (request: HTTPRequest, notes: [String]) {
        try checkSecurity()
        let (body, path, notes) = try backend.makeRequest(request, forcedCall: strategy(for: request) ?? .auto)
        let headers = self.headers(
            contentType: "application/json", accept: request.stream ? "text/event-stream" : "application/json")
        return (
            HTTPRequest(
                method: "POST", url: url(path), headers: headers, body: JSONValue.object(body).serializedBytes()),
            notes
        )
    }

    /// The headers of every request to the provider: the content type, what is accepted, the
    /// user agent, the key.
    func headers(contentType: String?, accept: String = "application/json") -> HTTPHeaderFields {
        var headers = HTTPHeaderFields()
        if let contentType { headers.add("Content-Type", contentType) }
        headers.add("Accept", accept)
        headers.add("User-Agent", userAgent)
        for (k, v) in backend.authHeaders(apiKey: apiKey) { headers.add(k, v) }
        return headers
    }

    /// The URL of `path` under ``baseURL``. One base URL serves every format (`--base-url …/v1`):
    /// a path with its own `/v1` (Anthropic's) does not double it.
    func url(_ path: String) -> String {
        var base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        if base.hasSuffix("/v1") && path.hasPrefix("/v1/") { base.removeLast(3) }
        return base + path
    }

    /// The JSON body ``run(_:logger:onEvent:)`` would send (what a transcript records; holds no key).
    public func requestBody(for request: QueryRequest) throws(QueryError) -> JSONValue {
        .object(try backend.makeRequest(request, forcedCall: strategy(for: request) ?? .auto).body)
    }

    /// How `request`'s forced function (``QueryRequest/forcedFunction``) is requested, nil when
    /// none is. `.auto` resolves as ``concreteForcedCall`` does, except that a tool named by a
    /// ``ToolChoice`` is forced with the named `tool_choice` rather than alone (the model keeps
    /// seeing the other tools) where the server is not llama.cpp.
    func strategy(for request: QueryRequest) -> ForcedCallStrategy? {
        guard let forced = request.forcedFunction else { return nil }
        let s = concreteForcedCall
        return !forced.strict && (forcedCall == .auto || resolvedFromAuto) && s == .tools ? .named : s
    }

    // MARK: - Choosing how to force a function

    /// The strategy a request is built with now: `.auto` resolves from the probe cache, or to
    /// `.tools` when the server was not probed yet (``resolvingForcedCall()`` probes).
    public var concreteForcedCall: ForcedCallStrategy {
        guard forcedCall == .auto else { return forcedCall }
        guard provider.isOpenAI else { return .tools }
        return serverKinds.kind(of: baseURL) == .llamaCpp ? .jsonSchema : .tools
    }

    /// This client with `.auto` replaced by a concrete strategy: `json-schema` for a llama.cpp
    /// server, `tools` elsewhere. The server is asked once per base URL (`GET {base}/models`:
    /// the `Server: llama.cpp` header or `owned_by: "llamacpp"`); a failed probe is not cached.
    public func resolvingForcedCall(logger: Logger? = nil) async -> QueryClient {
        guard forcedCall == .auto else { return self }
        var c = self
        if provider.isOpenAI, serverKinds.kind(of: baseURL) == nil,
            let kind = await probeServerKind(logger: logger ?? Self.silent)
        {
            serverKinds.set(kind, for: baseURL)
        }
        c.forcedCall = concreteForcedCall
        c.resolvedFromAuto = true
        return c
    }

    func probeServerKind(logger: Logger) async -> ServerKind? {
        do {
            try checkSecurity()
            let probe = HTTPRequest(method: "GET", url: url("/models"), headers: headers(contentType: nil), body: [])
            let response = try await transport.send(probe, logger: logger)
            if response.headers["server"]?.lowercased().contains("llama.cpp") == true { return .llamaCpp }
            let body = try await response.body.collect(limit: 1 << 20)
            guard (200..<300).contains(response.status) else { return .other }
            let owners =
                (try? JSONValue.parse(body))?["data"]?.arrayValue?.compactMap { $0["owned_by"]?.stringValue } ?? []
            return owners.contains("llamacpp") ? .llamaCpp : .other
        } catch {
            return nil
        }
    }

    /// Everything this client must never show: its key, ``otherSecrets``, the base URL's credentials.
    public var redactor: Redactor {
        Redactor([apiKey] + otherSecrets + Redactor.credentials(inURL: baseURL))
    }

    /// Whether `host` (as in a URL, IPv6 with or without brackets) names this machine: an IPv4
    /// literal in 127.0.0.0/8, the IPv6 literal ::1, or `localhost`. Names that merely start
    /// like one (`127.evil.example`) are not.
    public static func isLoopback(host: String) -> Bool {
        var h = host.lowercased()
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h == "localhost" || h == "localhost." { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, h, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, h, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return bytes == [UInt8](repeating: 0, count: 15) + [1]
        }
        return false
    }

    func checkSecurity() throws(QueryError) {
        guard let key = apiKey, !key.isEmpty, !allowInsecure else { return }
        guard let url = URL(string: baseURL), let scheme = url.scheme?.lowercased() else {
            throw QueryError.invalidRequest("base URL \"\(Redactor.url(baseURL))\" is not a URL")
        }
        if scheme == "http" {
            let host = (url.host ?? "").lowercased()
            if !Self.isLoopback(host: host) {
                throw QueryError.insecureTransport(host: host)
            }
        }
    }

    // MARK: - The machinery

    /// Sends `request`, retrying transient failures, reporting events to `onEvent` as they happen.
    /// - Parameter logger: where the call (and the transport) log; nothing is logged without one.
    /// - Throws: ``QueryError`` (``QueryError/cancelled`` when the task is cancelled), and nothing else.
    public func run(
        _ request: QueryRequest, logger: Logger? = nil, onEvent: (QueryEvent) -> Void
    ) async throws(QueryError) -> QueryResult {
        let redactor = self.redactor
        return try await redactingErrors {
            try await runUnredacted(request, redactor: redactor, logger: logger ?? Self.silent, onEvent: onEvent)
        }
    }

    /// Runs `op`, whatever it throws turned into a redacted ``QueryError``: the one rule for what
    /// leaves the client. A cancellation is ``QueryError/cancelled``; anything else (a transport
    /// of the caller's that broke its contract, ``TransportError`` only) a transport error.
    func redactingErrors<T>(_ op: () async throws -> T) async throws(QueryError) -> T {
        let redactor = self.redactor
        do {
            return try await op()
        } catch let e as QueryError {
            throw e.redacting(redactor)
        } catch is CancellationError {
            throw QueryError.cancelled
        } catch {
            throw QueryError.transport(kind: .other, message: "\(error)").redacting(redactor)
        }
    }

    /// The logger of a call that was given none.
    static let silent = Logger(label: "QueryCore", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Runs `op`, or throws ``QueryError/turnTimedOut(seconds:)`` (cancelling it) when the turn's
    /// deadline comes first. The wait is real time: a stalled server is not the clock's business.
    private func bounded<T: Sendable>(_ deadline: Double?, _ op: @escaping @Sendable () async throws -> T) async throws
        -> T
    {
        guard let deadline, let limit = turnTimeout else { return try await op() }
        let remaining = deadline - clock.now()
        if remaining <= 0 { throw QueryError.turnTimedOut(seconds: limit) }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await op() }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(min(remaining, 1e9) * 1e9))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            guard let value = first else { throw QueryError.turnTimedOut(seconds: limit) }
            return value
        }
    }

    private func runUnredacted(
        _ request: QueryRequest, redactor: Redactor, logger: Logger, onEvent: (QueryEvent) -> Void
    ) async throws -> QueryResult {
        if forcedCall == .auto && request.forcedFunction != nil {
            let resolved = await resolvingForcedCall(logger: logger)
            if resolved.forcedCall != .auto {
                return try await resolved.runUnredacted(request, redactor: redactor, logger: logger, onEvent: onEvent)
            }
        }
        let strategy = strategy(for: request)
        var reporter = EventReporter(request: request, strategy: strategy, provider: provider)
        func deliver(_ event: QueryEvent) { reporter.report(event, to: onEvent) }
        let (http, notes) = try httpRequest(for: request)
        var attempts = Attempts(maxAttempts: max(1, retryPolicy.maxAttempts))
        while true {
            if Task.isCancelled { throw QueryError.cancelled }
            do {
                var (parts, ttft) = try await gatedAttempt(
                    http, request: request, attempts: &attempts, logger: logger, onEvent: deliver)
                parts.info.notes.insert(contentsOf: notes, at: 0)
                if parts.inputTokens != nil || parts.outputTokens != nil {
                    deliver(.usage(inputTokens: parts.inputTokens, outputTokens: parts.outputTokens))
                }
                var result = try Self.result(from: parts, request: request, strategy: strategy)
                (result.requestTime, result.timeToFirstToken) = (clock.now() - (attempts.start ?? 0), ttft)
                result.retries = attempts.count - 1
                return result
            } catch let f as AttemptFailure {
                // Redacted at once: the retry notice below shows part of it.
                let failure = f.error.redacting(redactor)
                if case .turnTimedOut = failure { throw failure }
                if Task.isCancelled { throw QueryError.cancelled }
                let delay = try nextDelay(
                    after: failure, retryable: f.retryable, serverDelay: f.serverDelay, attempts: &attempts)
                let reason = Self.reason(failure)
                let notice = RetryNotice(
                    attempt: attempts.count, maxAttempts: attempts.maxAttempts, delay: delay, reason: reason)
                logger.debug(
                    "retrying", metadata: ["attempt": "\(attempts.count)", "delay": "\(delay)", "reason": "\(reason)"])
                deliver(.retrying(notice))
                do {
                    try await clock.sleep(seconds: delay)
                } catch {
                    throw QueryError.cancelled
                }
                attempts.waited += delay
            } catch is CancellationError {
                throw QueryError.cancelled
            }
        }
    }

    /// One call's attempts so far.
    struct Attempts {
        var count = 1
        var waited = 0.0
        let maxAttempts: Int
        /// When the first attempt was let through (the ``attemptGate`` may hold it back first),
        /// and the turn's deadline counted from then.
        var start: Double?
        var deadline: Double?
    }

    /// One attempt, through the ``attemptGate`` when there is one: it waits for its place, the
    /// first attempt's admission starts the turn's clock, and the gate learns how the exchange
    /// ended (before any wait for a retry, so a request waiting to be sent again holds no place).
    private func gatedAttempt(
        _ http: HTTPRequest, request: QueryRequest, attempts: inout Attempts, logger: Logger,
        onEvent: (QueryEvent) -> Void
    ) async throws -> (ResponseParts, Double?) {
        var ticket: AttemptTicket?
        if let gate = attemptGate {
            do {
                ticket = try await gate.enter(retry: attempts.count > 1)
            } catch {
                throw QueryError.cancelled
            }
        }
        if attempts.start == nil {
            let start = clock.now()
            attempts.start = start
            attempts.deadline = turnTimeout.map { start + $0 }
        }
        do {
            let r = try await attemptOnce(
                http, request: request, attemptStart: clock.now(), deadline: attempts.deadline, logger: logger,
                onEvent: onEvent)
            if let ticket { await attemptGate?.leave(ticket, .succeeded) }
            return r
        } catch {
            if let ticket { await attemptGate?.leave(ticket, Self.outcome(of: error)) }
            throw error
        }
    }

    /// How a failed attempt looks to an ``AttemptGate``.
    static func outcome(of error: any Error) -> AttemptOutcome {
        guard let f = error as? AttemptFailure else { return error is CancellationError ? .cancelled : .failed }
        switch f.error {
        case .http(let d) where d.status == 429: return .rateLimited(retryAfter: f.serverDelay)
        case .cancelled: return .cancelled
        default: return .failed
        }
    }

    /// What one streamed attempt has shown so far: the bytes of text and of function-call
    /// arguments (held to the ``StreamLimits``), when the first event was shown, the usage last
    /// reported.
    private struct StreamProgress {
        let limits: StreamLimits
        let attemptStart: Double
        var textBytes = 0
        var argumentBytes = 0
        /// Why the stream must stop, once its text or arguments passed their limit.
        var overLimit: String?
        var delivered = false
        /// Time to the first event shown, from the attempt's start.
        var ttft: Double?
        var reported: (Int?, Int?) = (nil, nil)

        init(limits: StreamLimits, attemptStart: Double) {
            self.limits = limits
            self.attemptStart = attemptStart
        }

        /// Counts `e` against the limits; true when it may be shown (the first such sets
        /// ``ttft``), false once a limit is passed (``overLimit`` then says which).
        mutating func admit(_ e: QueryEvent, clock: any QueryClock) -> Bool {
            switch e {
            case .text(let t): textBytes += t.utf8.count
            case .functionArguments(_, _, let f): argumentBytes += f.utf8.count
            default: break
            }
            if textBytes > limits.maxTextBytes {
                overLimit =
                    "the streamed text passed \(StreamLimits.describe(limits.maxTextBytes)), the limit for one response"
            } else if argumentBytes > limits.maxArgumentBytes {
                overLimit =
                    "the function-call arguments passed \(StreamLimits.describe(limits.maxArgumentBytes)), the limit for one response"
            }
            if overLimit != nil { return false }
            if !delivered {
                delivered = true
                ttft = clock.now() - attemptStart
            }
            return true
        }

        /// The usage event to report when `parts`' token counts changed since the last one.
        mutating func newUsage(in parts: ResponseParts) -> QueryEvent? {
            let now = (parts.inputTokens, parts.outputTokens)
            guard now != reported else { return nil }
            reported = now
            return .usage(inputTokens: now.0, outputTokens: now.1)
        }
    }

    /// The wait before the next attempt. Throws the failure (after retries, wrapped in
    /// ``QueryError/retriesExhausted(attempts:last:)``) when there is to be none.
    func nextDelay(
        after failure: QueryError, retryable: Bool, serverDelay: Double?, attempts: inout Attempts
    ) throws -> Double {
        let giveUp = attempts.count > 1 ? QueryError.retriesExhausted(attempts: attempts.count, last: failure) : failure
        guard retryable, attempts.count < attempts.maxAttempts else { throw giveUp }
        let delay = serverDelay ?? retryPolicy.backoff(retry: attempts.count, random: clock.random())
        let pastDeadline = attempts.deadline.map { clock.now() + delay >= $0 } ?? false
        guard attempts.waited + delay <= retryPolicy.maxTotalWait, !pastDeadline else { throw giveUp }
        attempts.count += 1
        return delay
    }

    struct AttemptFailure: Error {
        var error: QueryError
        var retryable: Bool
        var serverDelay: Double?
    }

    /// One HTTP exchange. Failures come out as ``AttemptFailure`` saying whether a retry is safe.
    private func attemptOnce(
        _ http: HTTPRequest, request: QueryRequest, attemptStart: Double, deadline: Double?, logger: Logger,
        onEvent: (QueryEvent) -> Void
    ) async throws -> (ResponseParts, Double?) {
        let backend = self.backend
        let response: HTTPResponse
        let transport = self.transport
        do {
            response = try await bounded(deadline) { try await transport.send(http, logger: logger) }
        } catch let e as TransportError {
            throw Self.sendFailure(e, url: http.url)
        }
        let requestID = response.headers["x-request-id"] ?? response.headers["request-id"]
        if (300..<400).contains(response.status) {
            throw AttemptFailure(
                error: .redirected(status: response.status, location: response.headers["location"]), retryable: false)
        }
        if !(200..<300).contains(response.status) {
            let body: [UInt8]
            do {
                body = try await bounded(deadline) { try await response.body.collect(limit: 1 << 20) }
            } catch let e as TransportError {
                body = Array("(body unreadable: \(e.message))".utf8)
            }
            var details = backend.errorDetails(status: response.status, body: body)
            details.requestID = requestID
            throw AttemptFailure(
                error: .http(details),
                retryable: retryPolicy.shouldRetry(status: response.status, headers: response.headers),
                serverDelay: retryPolicy.serverDelay(headers: response.headers, now: clock.wallNow()))
        }
        let contentType = response.headers["content-type"]?.lowercased() ?? ""
        if !request.stream || contentType.contains("application/json") {
            // Also the path for a server that ignores `stream: true` and answers with one JSON body.
            let body: [UInt8]
            do {
                body = try await bounded(deadline) { try await response.body.collect() }
            } catch let e as TransportError {
                throw AttemptFailure(error: .transport(kind: e.kind, message: e.message), retryable: true)
            }
            do {
                let parts = try backend.decode(body)
                if request.stream {
                    if !parts.text.isEmpty { onEvent(.text(parts.text)) }
                    return (parts, clock.now() - attemptStart)
                }
                return (parts, nil)
            } catch let e as QueryError {
                throw AttemptFailure(error: e, retryable: e.isTransient)
            }
        }
        // The deadline bounds the wait for each chunk too: a stream that sends its head and then
        // stalls ends at the turn's limit, not at the transport's read timeout.
        let body = deadline.map { HTTPBody.bounded(response.body, until: $0, clock: clock) } ?? response.body
        return try await readStream(
            body, backend: backend, attemptStart: attemptStart, deadline: deadline, onEvent: onEvent)
    }

    /// What a failure to send (before any response) is. Nothing listening on this machine's
    /// port is not sent again: it finds nothing there either. A refusal is named by its
    /// address, which the transport does not always know.
    static func sendFailure(_ e: TransportError, url: String) -> AttemptFailure {
        guard e.kind == .connectionRefused, let u = URL(string: url) else {
            // A proxy's refusal (407, a CONNECT it will not open) is the same on every attempt.
            return AttemptFailure(
                error: .transport(kind: e.kind, message: e.message), retryable: e.kind != .proxyRefused)
        }
        let message = "cannot connect to \(u.host ?? "?"):\(u.port.map(String.init) ?? "-") (connection refused)"
        return AttemptFailure(
            error: .transport(kind: e.kind, message: message), retryable: !isLoopback(host: u.host ?? ""))
    }

    /// Reads a streamed body to the end, handing events to `onEvent` as they come. Returns the
    /// response and the time to the first event shown.
    private func readStream(
        _ body: HTTPBody, backend: any Backend, attemptStart: Double, deadline: Double?, onEvent: (QueryEvent) -> Void
    ) async throws -> (ResponseParts, Double?) {
        var parser = SSEParser()
        parser.maxEventSize = streamLimits.maxEventBytes
        var acc = backend.makeAccumulator()
        var progress = StreamProgress(limits: streamLimits, attemptStart: attemptStart)
        var complete = false
        let clock = self.clock
        func emit(_ e: QueryEvent) {
            if progress.admit(e, clock: clock) { onEvent(e) }
        }
        func handle(_ event: SSEEvent) throws {
            if complete { return }
            if try acc.handle(event, emit: emit) { complete = true }
            // The accumulator holds at most one event past the limit before this stops it.
            if let overLimit = progress.overLimit { throw QueryError.malformedResponse(reason: overLimit, snippet: "") }
        }
        do {
            // Chunks are the hot path: no task per read. A body that stops arriving altogether
            // ends at the deadline (``HTTPBody/bounded(_:until:clock:)``), one that keeps
            // arriving is checked here as each chunk comes.
            while !complete, let chunk = try await body.next() {
                if let deadline, clock.now() >= deadline { throw HTTPBody.DeadlineReached() }
                try parser.feed(chunk, handle)
                // Usage is reported as soon as it arrives, so a cancelled stream still counts it.
                if let usage = progress.newUsage(in: acc.parts) { onEvent(usage) }
            }
            if !complete {
                try parser.finish(handle)
            }
            return (try acc.finish(complete: complete), progress.ttft)
        } catch {
            throw streamFailure(error, delivered: progress.delivered)
        }
    }

    /// What a stream's reading failed with, as an ``AttemptFailure`` saying whether a retry is
    /// safe: only a stream that has shown nothing yet may be sent again. Other errors (a
    /// cancellation) are returned as they are.
    private func streamFailure(_ error: any Error, delivered: Bool) -> any Error {
        switch error {
        case is HTTPBody.DeadlineReached:
            return AttemptFailure(error: .turnTimedOut(seconds: turnTimeout ?? 0), retryable: false)
        case let e as TransportError:
            return AttemptFailure(
                error: .transport(kind: e.kind, message: e.message + (delivered ? " (mid-stream)" : "")),
                retryable: !delivered)
        case let e as QueryError:
            return AttemptFailure(error: e, retryable: !delivered && e.isTransient)
        case let e as SSEParseError:
            return AttemptFailure(error: .malformedResponse(reason: "\(e)", snippet: ""), retryable: false)
        default:
            return error
        }
    }

    /// The result a caller sees of a decoded response (its times and retries left at 0 for the
    /// caller to set): the info with the strategy and the reasoning, the output checked.
    static func result(from parts: ResponseParts, request: QueryRequest, strategy: ForcedCallStrategy?) throws
        -> QueryResult
    {
        var info = parts.info
        info.forcedCall = strategy
        if !parts.reasoning.isEmpty { info.reasoning = parts.reasoning }
        return QueryResult(
            output: try output(from: parts, request: request, strategy: strategy), requestTime: 0,
            inputTokens: parts.inputTokens, outputTokens: parts.outputTokens, timeToFirstToken: nil, retries: 0,
            info: info)
    }

    /// The output a caller sees: text (structured output's JSON text among it), the forced
    /// function's checked arguments, or the tool calls made.
    static func output(from parts: ResponseParts, request: QueryRequest, strategy: ForcedCallStrategy?) throws
        -> QueryOutput
    {
        var parts = parts
        if strategy == .jsonSchema, parts.toolCalls.isEmpty, let spec = request.forcedFunction?.spec {
            // The schema-constrained reply is the arguments; an empty reply is no call at all.
            let text = parts.text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty {
                parts.toolCalls = [RawToolCall(id: nil, name: spec.name, arguments: text)]
                parts.text = ""
            }
        }
        guard let spec = request.functionSpec else {
            if let schema = request.outputSchema, let call = parts.toolCalls.first(where: { $0.name == schema.name }) {
                return .text(call.arguments)  // Anthropic: the forced tool's input is the reply
            }
            guard !parts.toolCalls.isEmpty, !request.tools.isEmpty else { return .text(parts.text) }
            return .toolCalls(parts.toolCalls.map(\.call), text: parts.text)
        }
        guard let call = parts.toolCalls.first else {
            throw AttemptFailure(error: .noFunctionCall(expected: spec.name, content: parts.text), retryable: false)
        }
        guard call.name == spec.name else {
            throw AttemptFailure(
                error: .wrongFunction(expected: spec.name, got: call.name, rawArguments: call.arguments),
                retryable: false)
        }
        let args: JSONValue
        if let parsed = call.parsed {
            args = parsed
        } else {
            do {
                args = try JSONValue.parse(call.arguments)
            } catch {
                throw AttemptFailure(
                    error: .invalidArguments(function: spec.name, raw: call.arguments, reason: "\(error)"),
                    retryable: false)
            }
        }
        guard case .object = args else {
            throw AttemptFailure(
                error: .invalidArguments(
                    function: spec.name, raw: call.arguments, reason: "expected a JSON object, got \(args.typeName)"),
                retryable: false)
        }
        return .functionCall(FunctionCall(id: call.id, name: call.name, arguments: args, rawArguments: call.arguments))
    }

    /// A short reason for a retry line: "429 rate limited", "503 service unavailable", "connection refused".
    static func reason(_ e: QueryError) -> String {
        switch e {
        case .http(let d):
            let s = d.status ?? 0
            if s == 429 { return "429 rate limited" }
            if s == 529 { return "529 overloaded" }
            return "\(s) " + (QueryError.reasonPhrase(s)?.lowercased() ?? "server error")
        case .transport(let kind, _): return kind.rawValue
        case .streamError(let d): return d.type ?? "stream error"
        default: return "\(e)"
        }
    }
}

/// What kind of server a base URL leads to, as far as forcing a function call goes.
public enum ServerKind: Sendable, Equatable {
    /// llama.cpp's `llama-server`: `tool_choice` is not reliable, a `response_format` grammar is.
    case llamaCpp
    case other
}

/// The `.auto` strategy's probe results, one per base URL. A reference type so that the copies of
/// a ``QueryClient`` (it is a value) share what was learned; the caller that makes clients decides
/// how long it lives (promptline: one per session).
public final class ServerKindCache: @unchecked Sendable {
    // @unchecked: `kinds` is only touched under `lock`.
    private let lock = NSLock()
    private var kinds: [String: ServerKind] = [:]

    public init() {}

    public func kind(of baseURL: String) -> ServerKind? { lock.withLock { kinds[baseURL] } }
    public func set(_ kind: ServerKind, for baseURL: String) { lock.withLock { kinds[baseURL] = kind } }
}

/// What a streamed query reports: the events as they come, except that a reply which is, on the
/// wire, something else is reported as what it means — json-schema forcing's text is the call's
/// arguments; Anthropic's forced tool for structured output is the reply's text.
struct EventReporter {
    private let forced: FunctionSpec?
    private let toolIsText: Bool
    private var first = true

    init(request: QueryRequest, strategy: ForcedCallStrategy?, provider: Provider) {
        forced = strategy == .jsonSchema ? request.forcedFunction?.spec : nil
        toolIsText = provider == .anthropic && request.functionSpec == nil && request.outputSchema != nil
    }

    mutating func report(_ event: QueryEvent, to onEvent: (QueryEvent) -> Void) {
        switch event {
        case .text(let t) where forced != nil:
            onEvent(.functionArguments(index: 0, name: first ? forced?.name : nil, fragment: t))
            first = false
        case .functionArguments(_, _, let f) where toolIsText:
            if !f.isEmpty { onEvent(.text(f)) }
        default:
            onEvent(event)
        }
    }
}
