import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix

/// Sends a request for an `http://` URL to an HTTP proxy in absolute form, as curl, Python and Go
/// do: `POST http://host:port/path HTTP/1.1` to the proxy, with the upstream's `Host` and the
/// proxy's credentials in `Proxy-Authorization`. async-http-client 1.37 only tunnels, and a
/// `CONNECT host:80` is refused by common proxies (squid and tinyproxy allow CONNECT to 443 only).
///
/// One connection per request (`Connection: close`). The response body is handed over as it
/// arrives, so a stream stays a stream. `connectTimeout` bounds reaching the proxy; `readTimeout`
/// each wait for bytes after that, the response head included. A compressed body is decoded up to
/// 50 times its size, as with ``AsyncHTTPClientTransport/configuration``.
struct ProxyForwarder: Sendable {
    var proxy: ProxySettings.Server
    var connectTimeout: TimeAmount
    var readTimeout: TimeAmount
    var group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    func send(_ request: HTTPRequest, logger: Logger) async throws -> HTTPResponse {
        let head = try requestHead(request)
        let loop = group.next()
        let responseHead = loop.makePromise(of: HTTPResponseHead.self)
        let (chunks, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
        let body = request.body
        let readTimeout = self.readTimeout
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(connectTimeout)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        let ops = ch.pipeline.syncOperations
                        try ops.addHandler(IdleStateHandler(readTimeout: readTimeout))
                        try ops.addHTTPClientHandlers()
                        try ops.addHandler(NIOHTTPResponseDecompressor(limit: .ratio(50)))
                        try ops.addHandler(
                            ForwardingHandler(head: head, body: body, responseHead: responseHead, chunks: continuation))
                    }
                }
                .connect(host: proxy.host.trimmingCharacters(in: ["[", "]"]), port: proxy.port).get()
        } catch {
            responseHead.fail(error)
            throw Self.connectFailure(error, proxy: proxy)
        }
        continuation.onTermination = { _ in channel.close(promise: nil) }
        logger.debug("sent through the proxy", metadata: ["proxy": "\(proxy)", "target": "\(head.uri)"])
        let response: HTTPResponseHead
        do {
            response = try await withTaskCancellationHandler {
                try await responseHead.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
        if response.status.code == 407 {
            channel.close(promise: nil)
            throw Self.authenticationRefused(proxy)
        }
        var headers = HTTPHeaderFields()
        for h in response.headers { headers.add(h.name, h.value) }
        let iterator = ForwardedChunks(chunks.makeAsyncIterator())
        return HTTPResponse(
            status: Int(response.status.code), headers: headers,
            body: HTTPBody {
                if let chunk = try await iterator.next() { return chunk }
                // The stream also ends when the reading task is cancelled: that is no end of body.
                try Task.checkCancellation()
                return nil
            })
    }

    /// The request line's target (the whole URL, without a fragment) and the headers, the
    /// upstream's `Host` among them.
    func requestHead(_ request: HTTPRequest) throws -> HTTPRequestHead {
        guard let u = URLComponents(string: request.url), u.scheme?.lowercased() == "http", let host = u.host,
            !host.isEmpty
        else {
            throw TransportError(kind: .other, message: "\(Redactor.url(request.url)) is not an http:// URL")
        }
        let authority = host + (u.port.map { ":\($0)" } ?? "")
        let path = u.percentEncodedPath.isEmpty ? "/" : u.percentEncodedPath
        let target = "http://\(authority)\(path)" + (u.percentEncodedQuery.map { "?" + $0 } ?? "")
        var headers = HTTPHeaders()
        for (name, value) in request.headers { headers.add(name: name, value: value) }
        if !headers.contains(name: "host") { headers.add(name: "Host", value: authority) }
        if !request.body.isEmpty || !["GET", "HEAD"].contains(request.method) {
            headers.replaceOrAdd(name: "Content-Length", value: "\(request.body.count)")
        }
        if let credentials = proxy.credentials {
            headers.replaceOrAdd(name: "Proxy-Authorization", value: credentials.authorization)
        }
        headers.replaceOrAdd(name: "Connection", value: "close")
        return HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: target, headers: headers)
    }

    /// A failure to reach the proxy, said as one.
    static func connectFailure(_ error: Error, proxy: ProxySettings.Server) -> TransportError {
        if let e = error as? ChannelError, case .connectTimeout = e {
            return TransportError(
                kind: .connectTimeout, message: "no connection to the proxy \(proxy) within the connect timeout")
        }
        let reason: String
        if let e = error as? NIOConnectionError {
            reason =
                e.connectionErrors.first.map { AsyncHTTPClientTransport.describeIO($0.error) }
                ?? "no address for its name"
        } else {
            reason = AsyncHTTPClientTransport.describeIO(error)
        }
        return TransportError(kind: .connectFailed, message: "cannot connect to the proxy \(proxy) (\(reason))")
    }

    static func authenticationRefused(_ proxy: ProxySettings.Server) -> TransportError {
        let message =
            proxy.credentials == nil
            ? "the proxy \(proxy) asks for credentials (407 Proxy Authentication Required): give them in the proxy URL, http://user:password@\(proxy)"
            : "the proxy \(proxy) refused the user and password in the proxy URL (407 Proxy Authentication Required)"
        return TransportError(kind: .proxyRefused, message: message)
    }
}

/// Writes the request once connected, then hands the response head to a promise and its body
/// to a stream. Every failure (the read timeout, the proxy closing early) ends both.
private final class ForwardingHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private enum State { case waitingForHead, readingBody, done }
    private var state = State.waitingForHead
    private let head: HTTPRequestHead
    private let body: [UInt8]
    private let responseHead: EventLoopPromise<HTTPResponseHead>
    private let chunks: AsyncThrowingStream<[UInt8], Error>.Continuation

    init(
        head: HTTPRequestHead, body: [UInt8], responseHead: EventLoopPromise<HTTPResponseHead>,
        chunks: AsyncThrowingStream<[UInt8], Error>.Continuation
    ) {
        (self.head, self.body, self.responseHead, self.chunks) = (head, body, responseHead, chunks)
    }

    private var phase: String { state == .waitingForHead ? "before the response" : "while reading the body" }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            guard state == .waitingForHead else { return }
            state = .readingBody
            responseHead.succeed(h)
        case .body(var buffer):
            guard state == .readingBody else { return }
            _ = chunks.yield(buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .end:
            guard state == .readingBody else { return }
            state = .done
            chunks.finish()
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            fail(TransportError(kind: .readTimeout, message: "no data \(phase) within the read timeout"))
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(AsyncHTTPClientTransport.map(error, phase: phase))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(TransportError(kind: .connectionClosed, message: "the proxy closed the connection \(phase)"))
        context.fireChannelInactive()
    }

    private func fail(_ error: Error) {
        switch state {
        case .waitingForHead: responseHead.fail(error)
        case .readingBody: chunks.finish(throwing: error)
        case .done: return
        }
        state = .done
        chunks.finish()
    }
}

/// Lets the body closure own the stream's mutable iterator.
private final class ForwardedChunks: @unchecked Sendable {
    // @unchecked: an HTTPBody is read from one task at a time (its documented contract).
    var iterator: AsyncThrowingStream<[UInt8], Error>.AsyncIterator
    init(_ it: AsyncThrowingStream<[UInt8], Error>.AsyncIterator) { iterator = it }
    func next() async throws -> [UInt8]? { try await iterator.next() }
}

extension AsyncHTTPClientTransport {
    /// How a request for `url` goes through a proxy of ``proxy`` without a tunnel: an `http://`
    /// URL with a proxy for it, and the shared client (a caller's client has its own
    /// configuration). nil: async-http-client sends it, tunnelling to a proxy if there is one.
    func forwarder(for url: String) -> ProxyForwarder? {
        guard givenClient == nil, URLComponents(string: url)?.scheme?.lowercased() == "http",
            let server = proxy?.server(for: url)
        else { return nil }
        return ProxyForwarder(
            proxy: server, connectTimeout: Self.amount(connectTimeout), readTimeout: Self.amount(readTimeout))
    }

    /// A tunnel's failure said as one (the proxy unreachable, refusing `CONNECT`, asking for
    /// credentials), or nil for other failures.
    func proxyFailure(_ error: Error, url: String) -> TransportError? {
        guard givenClient == nil, let server = proxy?.server(for: url) else { return nil }
        if error is NIOConnectionError { return ProxyForwarder.connectFailure(error, proxy: server) }
        guard let e = error as? HTTPClientError else { return nil }
        switch e {
        case .proxyAuthenticationRequired: return ProxyForwarder.authenticationRefused(server)
        case .invalidProxyResponse:
            let target = URLComponents(string: url).map { "\($0.host ?? ""):\($0.port ?? 443)" } ?? ""
            return TransportError(
                kind: .proxyRefused,
                message: "the proxy \(server) refused to open a tunnel (CONNECT) to \(target) (many proxies allow "
                    + "port 443 only): ask for that port to be allowed, or add the host to NO_PROXY")
        case .httpProxyHandshakeTimeout:
            return TransportError(kind: .connectTimeout, message: "the proxy \(server) did not open the tunnel in time")
        default: return nil
        }
    }
}
