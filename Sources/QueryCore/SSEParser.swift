/// One server-sent event.
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field; nil when absent (the default "message" type).
    public var event: String?
    /// The `data:` lines joined with "\n", as bytes (decoded only by whoever needs the JSON).
    public var data: [UInt8]
    /// True for the bare `error: {...}` line some llama.cpp builds send instead of `data:`.
    public var isBareError: Bool = false

    public init(event: String?, data: [UInt8], isBareError: Bool = false) {
        self.event = event
        self.data = data
        self.isBareError = isBareError
    }

    public var dataString: String { String(decoding: data, as: UTF8.self) }
}

/// An incremental parser for `text/event-stream` bodies that accepts chunks split anywhere —
/// inside a line, a UTF-8 sequence or a CRLF pair — and LF, CR or CRLF line ends.
///
/// Feed it bytes with ``feed(_:_:)``; it calls back for each complete event. Call ``finish(_:)``
/// at the end of the body to flush an event that was not followed by a blank line.
public struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventName: String?
    private var lastWasCR = false
    /// Lines longer than this are an error rather than unbounded memory.
    public var maxLineLength = 16 << 20
    /// An event whose `data:` lines together pass this is an error: a server that never sends
    /// the blank line ending an event must not grow memory without bound.
    public var maxEventSize = 16 << 20

    public init() { line.reserveCapacity(1024) }

    /// Parses `chunk`, calling `onEvent` for each event it completes.
    public mutating func feed(_ chunk: [UInt8], _ onEvent: (SSEEvent) throws -> Void) throws {
        try chunk.withUnsafeBufferPointer { try feed($0, onEvent) }
    }

    public mutating func feed(_ chunk: UnsafeBufferPointer<UInt8>, _ onEvent: (SSEEvent) throws -> Void) throws {
        var start = 0
        var i = 0
        let n = chunk.count
        while i < n {
            let b = chunk[i]
            if b == 0x0A || b == 0x0D {
                if b == 0x0A && lastWasCR && i == start && line.isEmpty {
                    // The LF of a CRLF whose CR ended the previous line (maybe in the previous chunk).
                    lastWasCR = false
                    i += 1
                    start = i
                    continue
                }
                lastWasCR = (b == 0x0D)
                if line.isEmpty {
                    // The whole line is in this chunk: no copy into the line buffer.
                    try processLine(UnsafeBufferPointer(rebasing: chunk[start..<i]), onEvent)
                } else {
                    line.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[start..<i]))
                    try processBufferedLine(onEvent)
                }
                i += 1
                start = i
            } else {
                lastWasCR = false
                i += 1
            }
        }
        if start < n {
            line.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[start..<n]))
            if line.count > maxLineLength { throw SSEParseError.lineTooLong(maxLineLength) }
        }
    }

    /// Ends the stream: a final line without a line end, and an event without its blank line,
    /// are delivered (a server that closes right after its last `data:` line loses nothing).
    public mutating func finish(_ onEvent: (SSEEvent) throws -> Void) throws {
        if !line.isEmpty { try processBufferedLine(onEvent) }
        try dispatch(onEvent)
    }

    private mutating func processBufferedLine(_ onEvent: (SSEEvent) throws -> Void) throws {
        let l = line
        line.removeAll(keepingCapacity: true)
        try l.withUnsafeBufferPointer { try processLine($0, onEvent) }
    }

    private mutating func processLine(_ line: UnsafeBufferPointer<UInt8>, _ onEvent: (SSEEvent) throws -> Void) throws {
        if line.isEmpty {
            try dispatch(onEvent)
            return
        }
        if line[0] == UInt8(ascii: ":") { return }  // comment / keep-alive
        var colon = line.count
        for k in 0..<line.count where line[k] == UInt8(ascii: ":") {
            colon = k
            break
        }
        var valueStart = colon + 1
        if valueStart < line.count, line[valueStart] == 0x20 { valueStart += 1 }
        let fieldEnd = colon
        func fieldIs(_ s: StaticString) -> Bool {
            guard fieldEnd == s.utf8CodeUnitCount else { return false }
            let p = s.utf8Start
            for k in 0..<fieldEnd where line[k] != p[k] { return false }
            return true
        }
        let value = UnsafeBufferPointer(rebasing: line[min(valueStart, line.count)...])
        if fieldIs("data") {
            if hasData { data.append(0x0A) }
            if data.count + value.count > maxEventSize { throw SSEParseError.eventTooLarge(maxEventSize) }
            data.append(contentsOf: value)
            hasData = true
        } else if fieldIs("event") {
            eventName = String(decoding: value, as: UTF8.self)
        } else if fieldIs("error") {
            // Older llama.cpp: `error: {json}` on its own, outside the SSE grammar.
            try onEvent(SSEEvent(event: "error", data: Array(value), isBareError: true))
        }
        // id, retry and unknown fields are ignored: the core never reconnects a stream.
    }

    private mutating func dispatch(_ onEvent: (SSEEvent) throws -> Void) throws {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventName = nil
        }
        guard hasData else { return }
        try onEvent(SSEEvent(event: eventName, data: data))
    }
}

public enum SSEParseError: Error, Sendable, Equatable, CustomStringConvertible {
    case lineTooLong(Int)
    case eventTooLarge(Int)

    public var description: String {
        switch self {
        case .lineTooLong(let n): return "a stream line longer than \(StreamLimits.describe(n)), the limit for one line"
        case .eventTooLarge(let n):
            return "a stream event larger than \(StreamLimits.describe(n)), the limit for one event"
        }
    }
}

/// What a streamed response may make the client hold: past any of these the request fails with
/// a clear error (the session goes on). Documented in docs/security.md.
public struct StreamLimits: Sendable, Equatable {
    /// One SSE event (its `data:` lines together).
    public var maxEventBytes: Int
    /// All the text of one response.
    public var maxTextBytes: Int
    /// All the function-call arguments of one response.
    public var maxArgumentBytes: Int

    public init(maxEventBytes: Int = 16 << 20, maxTextBytes: Int = 16 << 20, maxArgumentBytes: Int = 16 << 20) {
        self.maxEventBytes = maxEventBytes
        self.maxTextBytes = maxTextBytes
        self.maxArgumentBytes = maxArgumentBytes
    }

    static func describe(_ bytes: Int) -> String {
        bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
    }
}
