import Foundation
import Logging

/// Case-insensitive HTTP header fields, in order.
public struct HTTPHeaderFields: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}
    public init(_ fields: [(String, String)]) { self.fields = fields.map { (name: $0.0, value: $0.1) } }
    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    /// The first value of `name`, compared case-insensitively.
    public subscript(name: String) -> String? {
        let lower = name.lowercased()
        return fields.first { $0.name.lowercased() == lower }?.value
    }

    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (a: HTTPHeaderFields, b: HTTPHeaderFields) -> Bool {
        a.fields.count == b.fields.count
            && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// An HTTP request as the core builds it.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    public var url: String
    public var headers: HTTPHeaderFields
    public var body: [UInt8]

    public init(method: String = "POST", url: String, headers: HTTPHeaderFields, body: [UInt8]) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// A response whose body arrives in chunks.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaderFields
    public var body: HTTPBody

    public init(status: Int, headers: HTTPHeaderFields, body: HTTPBody) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A response body: call `next()` until it returns nil. Read it from one task only.
public final class HTTPBody: @unchecked Sendable {
    private let nextChunk: () async throws -> [UInt8]?

    public init(next: @escaping () async throws -> [UInt8]?) { self.nextChunk = next }

    /// A body that delivers `chunks` in order, then ends: for transports in tests.
    public convenience init(chunks: [[UInt8]]) {
        let queue = ChunkQueue(chunks)
        self.init { queue.next() }
    }

    /// The next chunk, or nil at the end. Throws ``TransportError`` when the connection fails.
    public func next() async throws -> [UInt8]? { try await nextChunk() }

    /// Reads the rest of the body, at most `limit` bytes (more is an error).
    public func collect(limit: Int = 64 << 20) async throws -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try await next() {
            all.append(contentsOf: chunk)
            if all.count > limit {
                throw TransportError(kind: .other, message: "response body larger than \(limit) bytes")
            }
        }
        return all
    }
}

/// A failure of the connection itself (as opposed to an HTTP error status).
public struct TransportError: Error, Sendable, Equatable {
    public var kind: TransportErrorKind
    public var message: String
    public init(kind: TransportErrorKind, message: String) {
        self.kind = kind
        self.message = message
    }
}

/// The one seam between the core and the network: bytes in, a status, headers and body chunks out.
///
/// ``AsyncHTTPClientTransport`` is the real one; tests and callers with their own HTTP stack
/// write others. Implementations must stop at once when the calling task is cancelled, and report
/// connection failures as ``TransportError`` (anything else is reported as a transport error of
/// kind `.other`, and not retried).
public protocol HTTPTransport: Sendable {
    /// Sends `request` and returns once the response head has arrived.
    /// - Parameter logger: the caller's logger, for the transport's own messages.
    func send(_ request: HTTPRequest, logger: Logger) async throws -> HTTPResponse
}

/// The chunks of ``HTTPBody/init(chunks:)``.
private final class ChunkQueue: @unchecked Sendable {
    // @unchecked: `chunks` is only touched under `lock`.
    private let lock = NSLock()
    private var chunks: ArraySlice<[UInt8]>
    init(_ chunks: [[UInt8]]) { self.chunks = chunks[...] }
    func next() -> [UInt8]? { lock.withLock { chunks.popFirst() } }
}

extension HTTPBody {
    /// What a body made by ``bounded(_:until:clock:)`` throws once its deadline has passed.
    struct DeadlineReached: Error {}

    /// `body`, whose reads end with ``DeadlineReached`` at `deadline` (in `clock.now()` seconds),
    /// also while one is waiting for a chunk that never comes. It is read on a task of its own
    /// and its chunks handed over as they arrive; the deadline is real time, as in the other
    /// waits of a turn.
    static func bounded(_ body: HTTPBody, until deadline: Double, clock: any QueryClock) -> HTTPBody {
        let (stream, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
        let pump = Task {
            do {
                while let chunk = try await body.next() {
                    if case .terminated = continuation.yield(chunk) { return }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        let remaining = max(0, deadline - clock.now())
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(min(remaining, 1e9) * 1e9))
            if !Task.isCancelled { continuation.finish(throwing: DeadlineReached()) }
        }
        continuation.onTermination = { _ in
            pump.cancel()
            timer.cancel()
        }
        let box = BoundedBody(stream.makeAsyncIterator(), tasks: [pump, timer])
        return HTTPBody {
            if let chunk = try await box.next() { return chunk }
            // The stream also ends when the reading task is cancelled: that is no end of body.
            try Task.checkCancellation()
            return nil
        }
    }
}

/// The reading end of ``HTTPBody/bounded(_:until:clock:)``; its tasks end with it, however the
/// body was left (read to the end, or dropped half-way).
private final class BoundedBody: @unchecked Sendable {
    // @unchecked: an HTTPBody is read from one task at a time (its documented contract).
    private var iterator: AsyncThrowingStream<[UInt8], Error>.AsyncIterator
    private let tasks: [Task<Void, Never>]
    init(_ iterator: AsyncThrowingStream<[UInt8], Error>.AsyncIterator, tasks: [Task<Void, Never>]) {
        self.iterator = iterator
        self.tasks = tasks
    }
    deinit { for t in tasks { t.cancel() } }
    func next() async throws -> [UInt8]? { try await iterator.next() }
}
