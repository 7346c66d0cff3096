import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix
import NIOSSL

/// The real transport: swift-server/async-http-client, which streams bodies on Linux and stops a
/// request when its task is cancelled.
///
/// Both timeouts are per request, whatever the client's own configuration says: `connectTimeout`
/// plus `readTimeout` bound connecting and the wait for the response head; `readTimeout` then
/// bounds each wait for more body bytes (a stalled stream fails after it, however long the whole
/// response takes).
public struct AsyncHTTPClientTransport: HTTPTransport {
    /// The client requests go through: the one given, else ``sharedClient`` — made at the first
    /// request, not before (its event-loop threads cost a program that never sends anything
    /// start-up time and memory). Whoever created a client shuts it down.
    public var client: HTTPClient { givenClient ?? Self.sharedClient }
    let givenClient: HTTPClient?
    /// Seconds to wait for a connection (a host that drops the SYN); part of the bound on the
    /// wait for the response head. A client's own connect timeout is client-wide:
    /// ``configuration`` sets ``defaultConnectTimeout``.
    public var connectTimeout: Double
    public var readTimeout: Double
    /// The connect timeout of the clients this transport makes.
    public static let defaultConnectTimeout = 10.0
    /// The HTTP(S) proxies requests go through (nil: none). Only with the shared client: a
    /// client of the caller's has its own configuration.
    public var proxy: ProxySettings?
    /// A PEM file of certificate authorities trusted besides the system's (a private CA, a
    /// corporate proxy's). Only with the shared client, as ``proxy``.
    public var caFile: String?

    /// - Parameter client: a client that never follows redirects (``configuration`` has that);
    ///   nil for ``sharedClient``, which is one. Not `HTTPClient.shared`: it follows up to 20
    ///   redirects, keeping headers such as `x-api-key` on the way to another origin.
    /// - Parameter proxy: proxies by scheme, and the hosts reached directly (see ``ProxySettings``).
    /// - Parameter caFile: certificate authorities to trust besides the system's (PEM).
    public init(
        client: HTTPClient? = nil, connectTimeout: Double = 10, readTimeout: Double = 120, proxy: ProxySettings? = nil,
        caFile: String? = nil
    ) {
        givenClient = client
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.proxy = proxy
        self.caFile = caFile
    }

    /// The client for `url`: the caller's, or the shared one, or one that goes through the proxy
    /// the settings give for that URL (one such client per proxy, for the life of the process).
    func client(for url: String) -> HTTPClient {
        let key = ClientKey(proxy: proxy?.server(for: url), caFile: caFile)
        guard givenClient == nil, key.proxy != nil || key.caFile != nil else { return client }
        return Self.configuredClients.withLockedValue { clients in
            if let c = clients[key] { return c }
            var config = Self.configuration
            if let server = key.proxy {
                let authorization = server.credentials.map {
                    HTTPClient.Authorization.basic(username: $0.user, password: $0.password)
                }
                config.proxy = .server(host: server.host, port: server.port, authorization: authorization)
                // A refused tunnel is not transient: said at once, not retried until the deadline.
                config.connectionPool.retryConnectionEstablishment = false
            }
            if let caFile = key.caFile {
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.additionalTrustRoots = [.file(caFile)]
                config.tlsConfiguration = tls
            }
            let c = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: config)
            clients[key] = c
            return c
        }
    }

    /// What a client made for this transport differs by: the proxy and the trusted CAs.
    private struct ClientKey: Hashable {
        var proxy: ProxySettings.Server?
        var caFile: String?
    }

    private static let configuredClients = NIOLockedValueBox<[ClientKey: HTTPClient]>([:])

    /// What a client for this transport should be configured with: redirects never followed
    /// (async-http-client would resend the body and keep `x-api-key` on the way to another origin
    /// or to plain http; a 3xx reaches the core, which reports it naming the Location), compressed
    /// bodies decoded up to 50 times their size. A connection that cannot be made fails the
    /// request at once (async-http-client would otherwise try again with backoff until its connect
    /// timeout, 10 s, so a refused port on this machine took 10 s an attempt); the core decides
    /// what is retried. Connecting is bounded by ``defaultConnectTimeout``; the other timeouts
    /// are per request.
    public static var configuration: HTTPClient.Configuration {
        var config = HTTPClient.Configuration()
        config.connectionPool.retryConnectionEstablishment = false
        config.timeout.connect = amount(defaultConnectTimeout)
        config.decompression = .enabled(limit: .ratio(50))
        config.httpVersion = .automatic
        config.redirectConfiguration = .disallow
        return config
    }

    /// A client with ``configuration`` for the life of the process, like `HTTPClient.shared`
    /// (never shut down), for callers that do not bring their own.
    public static let sharedClient = HTTPClient(
        eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)

    public func send(_ request: HTTPRequest, logger: Logger) async throws -> HTTPResponse {
        if let forwarding = forwarder(for: request.url) { return try await forwarding.send(request, logger: logger) }
        var req = HTTPClientRequest(url: request.url)
        req.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { req.headers.add(name: name, value: value) }
        req.body = .bytes(ByteBuffer(bytes: request.body))
        let response: HTTPClientResponse
        do {
            // async-http-client stops counting this deadline at the response head; the body has
            // its own read timeout below.
            let deadline = NIODeadline.now() + Self.amount(connectTimeout + readTimeout)
            response = try await client(for: request.url).execute(req, deadline: deadline, logger: logger)
        } catch {
            throw proxyFailure(error, url: request.url) ?? Self.map(error, phase: "before the response")
        }
        var headers = HTTPHeaderFields()
        for h in response.headers { headers.add(h.name, h.value) }
        let chunks = Self.read(response.body, readTimeout: Self.amount(readTimeout), on: client.eventLoopGroup.any())
        let box = IteratorBox(chunks.makeAsyncIterator())
        return HTTPResponse(
            status: Int(response.status.code), headers: headers,
            body: HTTPBody {
                if let chunk = try await box.next() { return chunk }
                // The stream also ends when the reading task is cancelled: that is no end of body.
                try Task.checkCancellation()
                return nil
            })
    }

    static func amount(_ seconds: Double) -> TimeAmount { .nanoseconds(Int64(min(max(seconds, 0), 1e9) * 1e9)) }

    /// Reads `body` on a task of its own: async-http-client ends a body read only when the task
    /// reading it is cancelled, so the read timeout (and the consumer going away) cancel that task.
    /// Chunks are handed over as they arrive; the consumer of a response body reads promptly.
    static func read(
        _ body: HTTPClientResponse.Body, readTimeout: TimeAmount, on eventLoop: EventLoop
    ) -> AsyncThrowingStream<[UInt8], Error> {
        let (stream, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
        let watch = IdleWatch(limit: readTimeout, on: eventLoop) {
            let message = "no data while reading the body within the read timeout"
            continuation.finish(throwing: TransportError(kind: .readTimeout, message: message))
        }
        let reader = Task {
            do {
                for try await var buffer in body {
                    watch.touch()
                    let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
                    if case .terminated = continuation.yield(bytes) { break }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: map(error, phase: "while reading the body"))
            }
        }
        continuation.onTermination = { _ in
            watch.stop()
            reader.cancel()
        }
        return stream
    }

    /// Turns async-http-client and NIO errors into a ``TransportError`` (or a cancellation).
    static func map(_ error: Error, phase: String) -> Error {
        if error is CancellationError || error is TransportError { return error }
        if let e = error as? HTTPClientError {
            switch e {
            case .cancelled: return CancellationError()
            case .connectTimeout:
                return TransportError(kind: .connectTimeout, message: "no connection within the connect timeout")
            case .readTimeout:
                return TransportError(kind: .readTimeout, message: "no data \(phase) within the read timeout")
            case .deadlineExceeded:
                return TransportError(kind: .readTimeout, message: "no response within the time limit")
            case .remoteConnectionClosed:
                return TransportError(kind: .connectionClosed, message: "the server closed the connection \(phase)")
            default: return TransportError(kind: .other, message: "\(e) \(phase)")
            }
        }
        if let e = error as? NIOConnectionError {
            if let first = e.connectionErrors.first {
                return TransportError(
                    kind: isRefused(first.error) ? .connectionRefused : .connectFailed,
                    message: "cannot connect to \(e.host):\(e.port) (\(describeIO(first.error)))")
            }
            return TransportError(kind: .connectFailed, message: "cannot connect to \(e.host):\(e.port)")
        }
        if let e = error as? ChannelError {
            switch e {
            case .connectTimeout:
                return TransportError(kind: .connectTimeout, message: "no connection within the connect timeout")
            case .ioOnClosedChannel, .alreadyClosed, .eof:
                return TransportError(kind: .connectionClosed, message: "the server closed the connection \(phase)")
            default: return TransportError(kind: .other, message: "\(e) \(phase)")
            }
        }
        if let e = error as? IOError {
            let kind: TransportErrorKind = e.errnoCode == ECONNREFUSED ? .connectionRefused : .connectionClosed
            return TransportError(kind: kind, message: "\(describeIO(e)) \(phase)")
        }
        return TransportError(kind: .other, message: "\(error) \(phase)")
    }

    static func isRefused(_ error: Error) -> Bool { (error as? IOError)?.errnoCode == ECONNREFUSED }

    static func describeIO(_ error: Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        return "\(error)"
    }
}

/// Calls `onIdle` once when no ``touch()`` came for `limit`. One timer per response, re-armed
/// from the last touch when it fires early, rather than one timer per chunk.
private final class IdleWatch: Sendable {
    private struct State {
        var last = NIODeadline.now()
        var timer: Scheduled<Void>?
        var stopped = false
    }
    private let state = NIOLockedValueBox(State())
    private let limit: TimeAmount
    private let eventLoop: EventLoop
    private let onIdle: @Sendable () -> Void

    init(limit: TimeAmount, on eventLoop: EventLoop, onIdle: @escaping @Sendable () -> Void) {
        self.limit = limit
        self.eventLoop = eventLoop
        self.onIdle = onIdle
        arm(at: .now() + limit)
    }

    func touch() { state.withLockedValue { $0.last = .now() } }

    func stop() {
        state.withLockedValue {
            $0.stopped = true
            $0.timer?.cancel()
            $0.timer = nil  // it holds a closure that holds this watch
        }
    }

    private func arm(at deadline: NIODeadline) {
        state.withLockedValue {
            guard !$0.stopped else { return }
            $0.timer = eventLoop.scheduleTask(deadline: deadline) { self.fire() }
        }
    }

    private func fire() {
        let (due, stopped) = state.withLockedValue { ($0.last + limit, $0.stopped) }
        if stopped { return }
        if due <= .now() { onIdle() } else { arm(at: due) }
    }
}

/// Lets the body closure own a mutable async iterator.
private final class IteratorBox: @unchecked Sendable {
    // @unchecked: an HTTPBody is read from one task at a time (its documented contract).
    var iterator: AsyncThrowingStream<[UInt8], Error>.AsyncIterator
    init(_ it: AsyncThrowingStream<[UInt8], Error>.AsyncIterator) { iterator = it }
    func next() async throws -> [UInt8]? { try await iterator.next() }
}
