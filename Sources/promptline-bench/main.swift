// promptline-bench — the in-process benchmarks behind scripts/bench (run in release mode).
//
//   promptline-bench turns N        per-turn client overhead: N sequential non-streamed queries
//                                   through QueryCore vs. a raw keep-alive socket client, both
//                                   against the same loopback server answering a canned completion
//   promptline-bench stream N       N chunks through the SSE parser + decoder + accumulator
//                                   (in memory), and through the loopback server end to end
//   promptline-bench transcript N   build, save and load an N-turn transcript
//   promptline-bench sessions N     list N saved sessions of 2,000 turns (:sessions, --resume last)
//   promptline-bench batch-faults N N rows at concurrency 32, clean and under faults on schedule
//   promptline-bench markdown [RUNS] the Markdown renderer on a 1 MB reply, in 16-byte chunks and whole
//
// Each prints one JSON object per line: {"name", "unit", "median", "min", "max", …}.
import Foundation
import Logging
import PromptSession
import QueryCore
import TestHTTPServer

func now() -> Double { SystemClock().now() }

func emit(_ name: String, unit: String, _ samples: [Double], extra: JSONObject = [:]) {
    let s = samples.sorted()
    var o: JSONObject = ["name": .string(name), "unit": .string(unit), "runs": .integer(Int64(s.count))]
    o["median"] = .double(s[s.count / 2])
    o["min"] = .double(s.first!)
    o["max"] = .double(s.last!)
    for (k, v) in extra { o[k] = v }
    print(JSONValue.object(o).serialized())
    fflush(nil)
}

func percentile(_ v: [Double], _ p: Double) -> Double {
    let s = v.sorted()
    return s[min(s.count - 1, max(0, Int((p / 100 * Double(s.count)).rounded(.up)) - 1))]
}

// MARK: - per-turn overhead

/// A minimal HTTP/1.1 keep-alive client on a blocking socket: the floor any client pays.
final class RawClient {
    let fd: Int32
    var buffer = [UInt8](repeating: 0, count: 65536)
    init(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
    /// Sends one request and reads until the Content-Length body is complete.
    func roundTrip(_ request: [UInt8]) {
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, request.count, 0) }
        var got: [UInt8] = []
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return }
            got += buffer[0..<n]
            if let headerEnd = find(got, Array("\r\n\r\n".utf8)) {
                let head = String(decoding: got[0..<headerEnd], as: UTF8.self).lowercased()
                if let r = head.range(of: "content-length: ") {
                    let len = Int(head[r.upperBound...].prefix { $0.isNumber }) ?? 0
                    if got.count >= headerEnd + 4 + len { return }
                }
            }
        }
    }
    func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle
        { return i }
        return nil
    }
}

func benchTurns(_ n: Int) async throws {
    let completion: JSONValue = [
        "id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [
            [
                "index": 0, "message": ["role": "assistant", "content": "Hello there, this is a canned answer."],
                "finish_reason": "stop",
            ]
        ], "usage": ["prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18],
    ]
    let server = try await TestHTTPServer.start { _ in .json(200, completion) }
    defer { server.stop() }
    let client = QueryClient(baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
    let request = try client.makeRequest(
        messages: [.system("You are terse."), .user("Say hello.")], functionSpec: nil, options: ["temperature": 0],
        stream: false)
    let http = try client.httpRequest(for: request).request
    var raw =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        + "application/json\r\nContent-Length: \(http.body.count)\r\n\r\n"
    raw += String(decoding: http.body, as: UTF8.self)
    let rawBytes = Array(raw.utf8)
    let rc = RawClient(port: server.port)
    // Warm up both paths.
    for _ in 0..<50 {
        _ = try await client.run(request) { _ in }
        rc.roundTrip(rawBytes)
    }
    var core: [Double] = []
    var rawTimes: [Double] = []
    for _ in 0..<n {
        // Interleaved, so both sides see the same machine load.
        let t0 = now()
        _ = try await client.run(request) { _ in }
        let t1 = now()
        rc.roundTrip(rawBytes)
        let t2 = now()
        core.append((t1 - t0) * 1000)
        rawTimes.append((t2 - t1) * 1000)
    }
    let p50 = percentile(core, 50) - percentile(rawTimes, 50)
    let p99 = percentile(core, 99) - percentile(rawTimes, 99)
    emit(
        "turn.querycore", unit: "ms", core,
        extra: ["p50": .double(percentile(core, 50)), "p99": .double(percentile(core, 99))])
    emit(
        "turn.raw_socket", unit: "ms", rawTimes,
        extra: ["p50": .double(percentile(rawTimes, 50)), "p99": .double(percentile(rawTimes, 99))])
    emit(
        "turn.added", unit: "ms", [p50],
        extra: ["p50_added": .double(p50), "p99_added": .double(p99), "budget_p50": 1.0])
}

// MARK: - streaming

func streamBody(_ chunks: Int) -> [UInt8] {
    var s = ""
    s.reserveCapacity(chunks * 200)
    for i in 0..<chunks {
        s +=
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok\(i % 10) "
            + "\"},\"finish_reason\":null}]}\n\n"
    }
    s +=
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: "
        + "[DONE]\n\n"
    return Array(s.utf8)
}

/// A transport that serves a body from memory in fixed-size chunks: the core's own cost, no socket.
struct MemoryTransport: HTTPTransport {
    let body: [UInt8]
    let chunk: Int
    func send(_ request: HTTPRequest, logger: Logger) async throws -> HTTPResponse {
        let body = self.body
        let chunk = self.chunk
        let box = OffsetBox()
        return HTTPResponse(
            status: 200, headers: ["Content-Type": "text/event-stream"],
            body: HTTPBody {
                let o = box.offset
                guard o < body.count else { return nil }
                let end = min(body.count, o + chunk)
                box.offset = end
                return Array(body[o..<end])
            })
    }
}

final class OffsetBox: @unchecked Sendable { var offset = 0 }

func benchStream(_ n: Int) async throws {
    let body = streamBody(n)
    let mb = Double(body.count) / 1_000_000
    // 1. SSE parser alone.
    var parseTimes: [Double] = []
    for _ in 0..<5 {
        var p = SSEParser()
        var events = 0
        let t0 = now()
        var i = 0
        body.withUnsafeBufferPointer { buf in
            while i < buf.count {
                let end = min(buf.count, i + 180)
                try? p.feed(UnsafeBufferPointer(rebasing: buf[i..<end])) { _ in events += 1 }
                i = end
            }
        }
        parseTimes.append(now() - t0)
        precondition(events == n + 2)
    }
    emit(
        "stream.sse_parser", unit: "MB/s", parseTimes.map { mb / $0 },
        extra: ["chunks": .integer(Int64(n)), "megabytes": .double(mb)])
    // 2. Parser + decoder + accumulator through the client (in-memory transport).
    let client = QueryClient(
        baseURL: "http://127.0.0.1:1/v1", defaultModel: "m", transport: MemoryTransport(body: body, chunk: 4096),
        retryPolicy: .none)
    let request = try client.makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: true)
    var fullTimes: [Double] = []
    for _ in 0..<5 {
        var deltas = 0
        let t0 = now()
        let r = try await client.run(request) { if case .text = $0 { deltas += 1 } }
        fullTimes.append(now() - t0)
        precondition(deltas == n && r.output.text?.isEmpty == false)
    }
    emit(
        "stream.core_in_memory", unit: "MB/s", fullTimes.map { mb / $0 },
        extra: ["chunks_per_s": .double(Double(n) / fullTimes.sorted()[2]), "budget_MB_per_s": 200])
    // 3. End to end over loopback HTTP.
    let server = try await TestHTTPServer.start { _ in .sseRaw(String(decoding: body, as: UTF8.self), chunkSize: 4096) }
    defer { server.stop() }
    let loop = QueryClient(baseURL: server.baseURL + "/v1", defaultModel: "m", retryPolicy: .none)
    var loopTimes: [Double] = []
    for _ in 0..<3 {
        let t0 = now()
        _ = try await loop.run(request) { _ in }
        loopTimes.append(now() - t0)
    }
    emit(
        "stream.loopback_http", unit: "MB/s", loopTimes.map { mb / $0 },
        extra: ["chunks_per_s": .double(Double(n) / loopTimes.sorted()[1])])
}

// MARK: - transcripts

/// A chat session of `n` turns whose requests carry the whole conversation (the case that made
/// version 1 transcripts grow quadratically), autosaved after every turn as the REPL does.
/// Reports the autosave time per turn near turn n (`autosave_ms_at_10k` for n = 10,000), the
/// file size at every tenth of the way (linear in turns when it is), and a whole save and a
/// load + restore of the result.
func benchTranscript(_ n: Int) throws {
    let dir = NSTemporaryDirectory() + "pl-bench-\(UUID())"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try AtomicFile.makePrivateDirectory(dir)
    let session = Session(provider: .openAI, model: "m")
    var t = Transcript(provider: "openai", baseURL: "http://127.0.0.1/v1", model: "m")
    t.noteSettings(session)
    let journal = TranscriptJournal(path: dir + "/t.jsonl")
    let answer = "An answer of moderate length, about one line of text."
    let result = QueryResult(
        output: .text(answer), requestTime: 0.4, inputTokens: 30, outputTokens: 12, timeToFirstToken: 0.1, retries: 0,
        info: QueryInfo())
    var messages: [JSONValue] = []
    var autosaveMs: [Double] = []
    var sizes: [JSONValue] = []
    for i in 0..<n {
        let prompt = "Prompt number \(i), asking something."
        messages.append(["role": "user", "content": .string(prompt)])
        let request: JSONValue = ["model": "m", "messages": .array(messages), "stream": true]
        let t0 = now()
        session.record(t.noteTurn(prompt: prompt, request: request, outcome: .success(result)))
        try journal.sync(t)
        autosaveMs.append((now() - t0) * 1000)
        messages.append(["role": "assistant", "content": .string(answer)])
        if (i + 1) % max(1, n / 10) == 0 {
            let size = (try? FileManager.default.attributesOfItem(atPath: journal.path)[.size] as? Int) ?? 0
            sizes.append(["turns": .integer(Int64(i + 1)), "bytes": .integer(Int64(size))])
        }
    }
    let tail = Array(autosaveMs.suffix(100))
    let name = n == 10_000 ? "autosave_ms_at_10k" : "autosave_ms_at_\(n)"
    emit(
        name, unit: "ms", tail,
        extra: ["turns": .integer(Int64(n)), "sizes": .array(sizes), "p99": .double(percentile(tail, 99))])
    let path = dir + "/saved.jsonl"
    var saves: [Double] = []
    var loads: [Double] = []
    for _ in 0..<3 {
        let t0 = now()
        try TranscriptStore.save(t, to: path, force: true)
        let t1 = now()
        let loaded = try TranscriptStore.load(path)
        try loaded.restore(into: Session(provider: .openAI, model: "m"))
        let t2 = now()
        precondition(loaded.turnCount == n)
        saves.append((t1 - t0) * 1000)
        loads.append((t2 - t1) * 1000)
    }
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    emit("transcript.save", unit: "ms", saves, extra: ["turns": .integer(Int64(n)), "bytes": .integer(Int64(size))])
    emit("transcript.load_restore", unit: "ms", loads, extra: ["turns": .integer(Int64(n))])
}

/// Writes an n-turn chat transcript to `path`, for the memory benchmark of loading one.
func writeTranscript(_ n: Int, to path: String) throws {
    let s = Session(provider: .openAI, model: "m")
    var t = Transcript(provider: "openai", baseURL: "http://127.0.0.1/v1", model: "m")
    t.noteSettings(s)
    let r = QueryResult(
        output: .text("An answer of moderate length, about one line of text."), requestTime: 0.4, inputTokens: 30,
        outputTokens: 12,
        timeToFirstToken: 0.1, retries: 0, info: QueryInfo())
    var messages: [JSONValue] = []
    for i in 0..<n {
        messages.append(["role": "user", "content": .string("Prompt \(i)")])
        t.noteTurn(prompt: "Prompt \(i)", request: ["model": "m", "messages": .array(messages)], outcome: .success(r))
        messages.append(["role": "assistant", "content": "An answer of moderate length, about one line of text."])
    }
    try TranscriptStore.save(t, to: path, force: true)
}

let args = CommandLine.arguments
let n = args.count > 2 ? Int(args[2]) ?? 1000 : 1000
switch args.count > 1 ? args[1] : "" {
case "turns": try await benchTurns(n)
case "stream": try await benchStream(n)
case "stream-core":
    // One pass of the in-memory streaming path, for profiling (valgrind --tool=callgrind).
    let client = QueryClient(
        baseURL: "http://127.0.0.1:1/v1", defaultModel: "m",
        transport: MemoryTransport(body: streamBody(n), chunk: 4096), retryPolicy: .none)
    _ = try await client.run(
        try client.makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: true)
    ) { _ in }
case "transcript": try benchTranscript(n)
case "batch-faults": try await benchBatchFaults(n)
case "markdown": benchMarkdown(runs: args.count > 2 ? n : 7)
case "write-transcript": try writeTranscript(n, to: args[3])
case "sessions":
    try benchSessions(n, turns: args.count > 3 ? Int(args[3]) ?? 2000 : 2000, keep: args.count > 4 ? args[4] : nil)
default:
    FileHandle.standardError.write(
        "usage: promptline-bench turns|stream|transcript|batch-faults|sessions|markdown N\n".data(using: .utf8)!)
    exit(2)
}
