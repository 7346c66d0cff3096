import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import QueryCore

/// An HTTP/1.1 server on 127.0.0.1 (port 0) for tests: it records every request and answers each
/// with the next scripted ``Reply`` — JSON, SSE in chosen chunk sizes and delays, error statuses,
/// HTML pages, a dropped connection, a stalled body.
///
/// Requests to `/_control/…` script it over HTTP (for tests that run the binary in another process):
/// `POST /_control/enqueue` (a reply as JSON, see ``Reply/init(json:)``), `GET /_control/requests`,
/// `POST /_control/reset`, `POST /_control/schedule` (faults on schedule, see ``setSchedule(_:)``).
public final class TestHTTPServer: @unchecked Sendable {
    /// A request as it arrived.
    public struct RecordedRequest: Sendable {
        public var method: String
        public var uri: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
        public var json: JSONValue? { try? JSONValue.parse(body) }

        public var asJSON: JSONValue {
            var h = JSONObject()
            for (n, v) in headers { h[n.lowercased()] = .string(v) }
            return ["method": .string(method), "uri": .string(uri), "headers": .object(h), "body": .string(bodyText)]
        }
    }

    /// One thing the server does while answering.
    public enum Step: Sendable {
        case send([UInt8])
        case delay(milliseconds: Int)
        /// Close the connection (mid-body if a head was sent).
        case close
        /// Reset the connection (RST) rather than close it cleanly.
        case reset
        /// Send nothing more and keep the connection open (the client's read timeout must fire).
        case stall
    }

    /// A scripted answer.
    public struct Reply: Sendable {
        /// nil: no response head at all (use with `.close` / `.reset` / `.stall` steps).
        public var status: Int?
        public var headers: [(String, String)]
        public var steps: [Step]

        public init(status: Int?, headers: [(String, String)] = [], steps: [Step]) {
            self.status = status
            self.headers = headers
            self.steps = steps
        }

        static let sseHeaders = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]

        /// A complete body with Content-Length.
        public static func body(
            _ status: Int, _ body: String, contentType: String = "application/json", headers: [(String, String)] = []
        ) -> Reply {
            let bytes = Array(body.utf8)
            return Reply(
                status: status,
                headers: [("Content-Type", contentType), ("Content-Length", String(bytes.count))] + headers,
                steps: [.send(bytes)])
        }

        public static func json(_ status: Int = 200, _ value: JSONValue, headers: [(String, String)] = []) -> Reply {
            body(status, value.serialized(), headers: headers)
        }

        /// A `text/event-stream` body, chunked: `events` are the data payloads (each sent as
        /// `data: …\n\n`), one chunk per event, or the whole text cut into `chunkSize`-byte
        /// pieces; `delayMs` between chunks.
        public static func sse(
            dataLines events: [String], chunkSize: Int? = nil, delayMs: Int = 0, lineEnd: String = "\n",
            endWith: [Step] = []
        ) -> Reply {
            let lines = events.map { "data: \($0)\(lineEnd)\(lineEnd)" }
            if chunkSize == nil {
                // One chunk per event, `delayMs` apart.
                var steps: [Step] = []
                for (i, l) in lines.enumerated() {
                    if i > 0 && delayMs > 0 { steps.append(.delay(milliseconds: delayMs)) }
                    steps.append(.send(Array(l.utf8)))
                }
                return Reply(status: 200, headers: Reply.sseHeaders, steps: steps + endWith)
            }
            return sseRaw(lines.joined(), chunkSize: chunkSize, delayMs: delayMs, endWith: endWith)
        }

        /// A `text/event-stream` body with the exact text given.
        public static func sseRaw(_ text: String, chunkSize: Int? = nil, delayMs: Int = 0, endWith: [Step] = [])
            -> Reply
        {
            let bytes = Array(text.utf8)
            var steps: [Step] = []
            let size = max(1, chunkSize ?? max(1, bytes.count))
            var i = 0
            while i < bytes.count {
                if i > 0 && delayMs > 0 { steps.append(.delay(milliseconds: delayMs)) }
                steps.append(.send(Array(bytes[i..<min(i + size, bytes.count)])))
                i += size
            }
            return Reply(status: 200, headers: Reply.sseHeaders, steps: steps + endWith)
        }

        /// Drop the connection without answering.
        public static let closeWithoutResponse = Reply(status: nil, steps: [.close])
        /// Keep the connection open without answering.
        public static let stallBeforeResponse = Reply(status: nil, steps: [.stall])

        /// A reply described in JSON (the `/_control/enqueue` form):
        /// `{"status": 200, "headers": {"k": "v"}, "json": {...}}`, or `"body": "text"`,
        /// or `"sse": ["data1", …]` with optional `"chunk_size"`, `"delay_ms"`, `"raw_sse": "text"`,
        /// then optional `"then": "close" | "reset" | "stall"`; `"status": null` sends no head.
        public init(json v: JSONValue) throws {
            let status: Int? = v["status"] == .null ? nil : (v["status"]?.intValue ?? 200)
            var headers: [(String, String)] = []
            for (k, hv) in v["headers"]?.objectValue ?? JSONObject() {
                headers.append((k, hv.stringValue ?? hv.serialized()))
            }
            var end: [Step] = []
            switch v["then"]?.stringValue {
            case "close": end = [.close]
            case "reset": end = [.reset]
            case "stall": end = [.stall]
            default: break
            }
            let chunk = v["chunk_size"]?.intValue
            let delay = v["delay_ms"]?.intValue ?? 0
            var r: Reply
            if let events = v["sse"]?.arrayValue {
                r = .sse(
                    dataLines: events.map { $0.stringValue ?? $0.serialized() }, chunkSize: chunk, delayMs: delay,
                    endWith: end)
            } else if let raw = v["raw_sse"]?.stringValue {
                r = .sseRaw(raw, chunkSize: chunk, delayMs: delay, endWith: end)
            } else if let j = v["json"] {
                r = .json(status ?? 200, j)
                r.steps += end
            } else if let b = v["body"]?.stringValue {
                r = .body(status ?? 200, b, contentType: v["content_type"]?.stringValue ?? "text/plain")
                r.steps += end
            } else {
                r = Reply(status: status, steps: end)
            }
            r.status = status
            r.headers += headers
            self = r
        }
    }

    private let group: EventLoopGroup
    private var channel: Channel?
    private let lock = NSLock()
    private var queue: [Reply] = []
    private var recorded: [RecordedRequest] = []
    private var defaultReply: @Sendable (RecordedRequest) -> Reply

    /// The port it listens on (chosen by the system).
    public private(set) var port: Int = 0
    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts a server. `defaultReply` answers when no scripted reply is queued.
    public static func start(
        host: String = "127.0.0.1", port: Int = 0,
        defaultReply: @escaping @Sendable (RecordedRequest) -> Reply = { _ in
            .body(500, "{\"error\":{\"message\":\"no reply scripted\"}}")
        }
    ) async throws -> TestHTTPServer {
        let server = TestHTTPServer(defaultReply: defaultReply)
        try await server.bind(host: host, port: port)
        return server
    }

    private init(defaultReply: @escaping @Sendable (RecordedRequest) -> Reply) {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.defaultReply = defaultReply
        self.batchAPI = FakeBatchAPI(answer: defaultReply)
    }

    /// The Batch API's routes (`/v1/files`, `/v1/batches`), answered when no reply is queued;
    /// each input line is answered by the default reply.
    public let batchAPI: FakeBatchAPI

    private func bind(host: String, port: Int) async throws {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(Handler(server: self))
                }
            }
        let ch = try await bootstrap.bind(host: host, port: port).get()
        channel = ch
        self.port = ch.localAddress?.port ?? 0
    }

    /// Queues replies, answered in order.
    public func enqueue(_ replies: Reply...) {
        lock.lock()
        queue += replies
        lock.unlock()
    }

    /// Every request received so far (control requests excluded).
    public var requests: [RecordedRequest] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    public func reset() {
        lock.lock()
        queue = []
        recorded = []
        recordedProbes = []
        schedule = []
        scheduled = 0
        lock.unlock()
        batchAPI.reset()
    }

    public func stop() {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }

    /// Which server it claims to be when a client asks `GET …/models` (what the `.auto` forced-call
    /// strategy probes). Such probes are answered here, never from the queue, and are kept apart
    /// from ``requests`` in ``probes``.
    public enum Identity: String, Sendable {
        /// An OpenAI-compatible server that is not llama.cpp.
        case generic
        /// Answers like llama.cpp's server: a `Server: llama.cpp` header and `owned_by: "llamacpp"`.
        case llamaCpp = "llama.cpp"
    }

    public var identity: Identity {
        get { lock.withLock { _identity } }
        set { lock.withLock { _identity = newValue } }
    }
    private var _identity = Identity.generic
    private var recordedProbes: [RecordedRequest] = []

    /// The `GET …/models` probes received so far.
    public var probes: [RecordedRequest] { lock.withLock { recordedProbes } }

    private func modelsReply() -> Reply {
        let llama = _identity == .llamaCpp
        let list: JSONValue = [
            "object": "list",
            "data": [["id": "test-model", "object": "model", "owned_by": llama ? "llamacpp" : "promptline-test"]],
        ]
        return .json(200, list, headers: llama ? [("Server", "llama.cpp")] : [])
    }

    fileprivate func reply(for request: RecordedRequest) -> Reply {
        if request.uri.hasPrefix("/_control/") { return control(request) }
        if request.method == "GET", request.uri.hasSuffix("/models") {
            return lock.withLock {
                recordedProbes.append(request)
                return modelsReply()
            }
        }
        lock.lock()
        recorded.append(request)
        scheduled += 1
        let n = scheduled
        let fault = schedule.first { n % $0.every == 0 }?.reply
        let r = fault ?? (queue.isEmpty ? nil : queue.removeFirst())
        lock.unlock()
        return r ?? batchAPI.reply(request) ?? defaultReply(request)
    }

    /// Faults on schedule: request number n (counted from 1 since the schedule was set; control
    /// requests and model probes are not counted) is answered by the reply of the first rule
    /// whose `every` divides n, before anything queued. An empty schedule ends it.
    public func setSchedule(_ rules: [(every: Int, reply: Reply)]) {
        lock.withLock {
            schedule = rules.filter { $0.every > 0 }
            scheduled = 0
        }
    }
    private var schedule: [(every: Int, reply: Reply)] = []
    private var scheduled = 0

    /// `POST /_control/schedule`'s body: `[{"every": 7, "reply": {…a reply as for enqueue…}}, …]`.
    private func scheduleControl(_ request: RecordedRequest) -> Reply {
        do {
            guard let rules = request.json?.arrayValue else {
                throw JSONParseError(message: "body is not a JSON array of rules", offset: 0)
            }
            let parsed = try rules.map { r -> (every: Int, reply: Reply) in
                guard let every = r["every"]?.intValue, every > 0, let reply = r["reply"] else {
                    throw JSONParseError(message: "each rule needs \"every\" (> 0) and \"reply\"", offset: 0)
                }
                return (every, try Reply(json: reply))
            }
            setSchedule(parsed)
            return .json(200, ["rules": .integer(Int64(parsed.count))])
        } catch {
            return .body(400, "bad schedule: \(error)", contentType: "text/plain")
        }
    }

    private func control(_ request: RecordedRequest) -> Reply {
        switch (request.method, request.uri) {
        case ("POST", "/_control/enqueue"):
            do {
                guard let v = request.json else { throw JSONParseError(message: "body is not JSON", offset: 0) }
                let replies = try (v.arrayValue ?? [v]).map { try Reply(json: $0) }
                lock.lock()
                queue += replies
                lock.unlock()
                return .json(200, ["queued": .integer(Int64(replies.count))])
            } catch {
                return .body(400, "bad reply: \(error)", contentType: "text/plain")
            }
        case ("GET", "/_control/requests"):
            return .json(200, .array(requests.map(\.asJSON)))
        case ("POST", "/_control/reset"):
            reset()
            return .json(200, ["reset": true])
        case ("POST", "/_control/identity"):
            guard let name = request.json?["identity"]?.stringValue, let id = Identity(rawValue: name) else {
                return .body(400, "identity must be generic or llama.cpp", contentType: "text/plain")
            }
            identity = id
            return .json(200, ["identity": .string(id.rawValue)])
        case ("POST", "/_control/batch"):
            // {"fault": "none" | "fail" | "expire" | "error_lines" | "drop_create" | "other_id",
            //  "lines_per_poll": n, "fail_message": "…"}
            if let f = request.json?["fault"]?.stringValue {
                guard let fault = FakeBatchAPI.Fault(rawValue: f) else {
                    return .body(
                        400, "fault must be one of \(FakeBatchAPI.Fault.allCases.map(\.rawValue))",
                        contentType: "text/plain")
                }
                batchAPI.fault = fault
            }
            if let n = request.json?["lines_per_poll"]?.intValue { batchAPI.linesPerPoll = n }
            if let m = request.json?["fail_message"]?.stringValue { batchAPI.failMessage = m }
            return .json(
                200, ["fault": .string(batchAPI.fault.rawValue), "batches": .integer(Int64(batchAPI.batchCount))])
        case ("POST", "/_control/schedule"):
            return scheduleControl(request)
        case ("GET", "/_control/probes"):
            return .json(200, .array(probes.map(\.asJSON)))
        default:
            return .body(404, "unknown control \(request.uri)", contentType: "text/plain")
        }
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: TestHTTPServer
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(server: TestHTTPServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = []
            case .body(var buf):
                body += buf.readBytes(length: buf.readableBytes) ?? []
            case .end:
                guard let h = head else { return }
                let req = RecordedRequest(
                    method: h.method.rawValue, uri: h.uri, headers: h.headers.map { ($0.name, $0.value) }, body: body)
                let reply = server.reply(for: req)
                respond(reply, context: context)
            }
        }

        func respond(_ reply: Reply, context: ChannelHandlerContext) {
            if let status = reply.status {
                var headers = HTTPHeaders()
                for (k, v) in reply.headers { headers.add(name: k, value: v) }
                if !headers.contains(name: "Content-Length") {
                    headers.add(name: "Transfer-Encoding", value: "chunked")
                }
                let head = HTTPResponseHead(
                    version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
                context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
            }
            Responder(context: context, reply: reply).next()
        }
    }

    /// Plays a reply's steps on the connection's event loop.
    private final class Responder: @unchecked Sendable {
        let context: ChannelHandlerContext
        let hasHead: Bool
        var steps: ArraySlice<Step>

        init(context: ChannelHandlerContext, reply: Reply) {
            self.context = context
            self.hasHead = reply.status != nil
            self.steps = reply.steps[...]
        }

        func next() {
            // Sends in a row are written in a loop, not by recursion: a body cut into 1-byte
            // chunks has tens of thousands of them.
            while case .send(let bytes)? = steps.first {
                steps.removeFirst()
                if hasHead {
                    context.writeAndFlush(
                        NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: bytes)))), promise: nil)
                }
            }
            guard let step = steps.popFirst() else {
                if hasHead { context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil) }
                return
            }
            switch step {
            case .send:
                next()
            case .delay(let ms):
                context.eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) { self.next() }
            case .close:
                context.close(promise: nil)
            case .reset:
                if let provider = context.channel as? SocketOptionProvider {
                    provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
                        self.context.close(promise: nil)
                    }
                } else {
                    context.close(promise: nil)
                }
            case .stall:
                return
            }
        }
    }
}
