import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The real transport: swift-server/async-http-client, which streams bodies on Linux and stops a
/// request when its task is cancelled.
///
/// `connectTimeout` bounds connecting; `readTimeout` bounds each wait for more bytes (a stalled
/// stream fails after it, however long the whole response takes).
public struct AsyncHTTPClientTransport: HTTPTransport {
    public var connectTimeout: Double
    public var readTimeout: Double

    public init(connectTimeout: Double = 10, readTimeout: Double = 120) {
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let client = ClientCache.client(connect: connectTimeout, read: readTimeout)
        var req = HTTPClientRequest(url: request.url)
        req.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { req.headers.add(name: name, value: value) }
        req.body = .bytes(ByteBuffer(bytes: request.body))
        let response: HTTPClientResponse
        do {
            // The deadline stops counting at the response head; the read timeout guards the body.
            response = try await client.execute(req, timeout: .milliseconds(Int64((connectTimeout + readTimeout) * 1000)))
        } catch {
            throw Self.map(error, phase: "before the response")
        }
        var headers = HTTPHeaderFields()
        for h in response.headers { headers.add(h.name, h.value) }
        let box = IteratorBox(response.body.makeAsyncIterator())
        return HTTPResponse(
            status: Int(response.status.code), headers: headers,
            body: HTTPBody {
                do {
                    guard var buf = try await box.next() else { return nil }
                    return buf.readBytes(length: buf.readableBytes) ?? []
                } catch {
                    throw Self.map(error, phase: "while reading the body")
                }
            })
    }

    /// Turns async-http-client and NIO errors into a ``TransportError`` (or a cancellation).
    static func map(_ error: Error, phase: String) -> Error {
        if error is CancellationError { return error }
        if let e = error as? HTTPClientError {
            switch e {
            case .cancelled: return CancellationError()
            case .connectTimeout: return TransportError(kind: .connectTimeout, message: "no connection within the connect timeout")
            case .readTimeout: return TransportError(kind: .readTimeout, message: "no data \(phase) within the read timeout")
            case .deadlineExceeded: return TransportError(kind: .readTimeout, message: "no response within the time limit")
            case .remoteConnectionClosed: return TransportError(kind: .connectionClosed, message: "the server closed the connection \(phase)")
            default: return TransportError(kind: .other, message: "\(e) \(phase)")
            }
        }
        if let e = error as? NIOConnectionError {
            if let first = e.connectionErrors.first {
                return TransportError(kind: .connectFailed, message: "cannot connect to \(e.host):\(e.port) (\(describeIO(first.error)))")
            }
            return TransportError(kind: .connectFailed, message: "cannot connect to \(e.host):\(e.port)")
        }
        if let e = error as? ChannelError {
            switch e {
            case .connectTimeout: return TransportError(kind: .connectTimeout, message: "no connection within the connect timeout")
            case .ioOnClosedChannel, .alreadyClosed, .eof:
                return TransportError(kind: .connectionClosed, message: "the server closed the connection \(phase)")
            default: return TransportError(kind: .other, message: "\(e) \(phase)")
            }
        }
        if let e = error as? IOError {
            let kind: TransportErrorKind = e.errnoCode == ECONNREFUSED ? .connectFailed : .connectionClosed
            return TransportError(kind: kind, message: "\(describeIO(e)) \(phase)")
        }
        return TransportError(kind: .other, message: "\(error) \(phase)")
    }

    static func describeIO(_ error: Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        return "\(error)"
    }
}

/// async-http-client wants each client shut down before it is released; promptline keeps one
/// per timeout setting for the life of the process instead.
private enum ClientCache {
    static let lock = NSLock()
    nonisolated(unsafe) static var clients: [String: HTTPClient] = [:]

    static func client(connect: Double, read: Double) -> HTTPClient {
        let key = "\(connect)/\(read)"
        lock.lock()
        defer { lock.unlock() }
        if let c = clients[key] { return c }
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .milliseconds(Int64(connect * 1000)), read: .milliseconds(Int64(read * 1000)))
        config.decompression = .enabled(limit: .ratio(50))
        config.httpVersion = .automatic
        // Never follow a redirect: async-http-client would resend the body and keep headers such
        // as x-api-key on the way to another origin (or to plain http). A 3xx reaches the core,
        // which reports it as an error naming the Location.
        config.redirectConfiguration = .disallow
        let c = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: config)
        clients[key] = c
        return c
    }
}

/// Lets the body closure own a mutable async iterator.
private final class IteratorBox: @unchecked Sendable {
    var iterator: HTTPClientResponse.Body.AsyncIterator
    init(_ it: HTTPClientResponse.Body.AsyncIterator) { iterator = it }
    func next() async throws -> ByteBuffer? { try await iterator.next() }
}
