// Fuzz targets for everything that reads untrusted bytes: the SSE parser, the OpenAI and
// Anthropic response decoders (whole bodies and streams, through the public QueryClient with an
// in-memory transport), the `:set` value parser, the FunctionSpec loader and transcripts.
//
// Built by scripts/fuzz with `-sanitize=fuzzer,address -D FUZZING`: libFuzzer drives
// `LLVMFuzzerTestOneInput`, the target named by $PL_FUZZ_TARGET. In an ordinary build the same
// file is a corpus runner: `promptline-fuzz DIR…` feeds every file under DIR to every target
// (scripts/test runs it over Tests/fuzz-corpus as a regression test).
import Foundation
import Logging
import PromptSession
import QueryCore

/// A transport that answers with the fuzz input as the body.
struct BytesTransport: HTTPTransport {
    let body: [UInt8]
    let contentType: String
    func send(_ request: HTTPRequest, logger: Logger) async throws -> HTTPResponse {
        // Deliver in uneven chunks, as a network would.
        let body = self.body
        let box = Box()
        return HTTPResponse(
            status: 200, headers: ["Content-Type": contentType],
            body: HTTPBody {
                let o = box.offset
                guard o < body.count else { return nil }
                let end = min(body.count, o + 1 + (o * 7 + 3) % 61)
                box.offset = end
                return Array(body[o..<end])
            })
    }
    final class Box: @unchecked Sendable { var offset = 0 }
}

/// Runs an async body to completion from synchronous code (the fuzzer's callback).
func blocking(_ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await body()
        done.signal()
    }
    done.wait()
}

/// A transport whose whole response — status, headers and body — comes from the fuzz input:
/// `STATUS\nName: value\n…\n\nbody`. It answers every attempt the same way.
struct ResponseTransport: HTTPTransport {
    let data: [UInt8]
    func send(_ request: HTTPRequest, logger: Logger) async throws -> HTTPResponse {
        let text = String(decoding: data, as: UTF8.self)
        let (head, body) =
            text.range(of: "\n\n").map { (String(text[..<$0.lowerBound]), String(text[$0.upperBound...])) } ?? (
                text, ""
            )
        var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let status = lines.isEmpty ? 200 : Int(lines.removeFirst().prefix(6)).map { min(max($0, 100), 599) } ?? 200
        var headers = HTTPHeaderFields()
        for l in lines {
            guard let colon = l.firstIndex(of: ":") else { continue }
            headers.add(String(l[..<colon]), String(l[l.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        let bytes = Array(body.utf8)
        let box = BytesTransport.Box()
        return HTTPResponse(
            status: status, headers: headers,
            body: HTTPBody {
                guard box.offset == 0, !bytes.isEmpty else { return nil }
                box.offset = 1
                return bytes
            })
    }
}

/// A clock that never waits, so retry paths (Retry-After of any size) run at full speed.
struct InstantClock: QueryClock {
    func now() -> Double { 0 }
    func wallNow() -> Date { Date(timeIntervalSince1970: 1_700_000_000) }
    func sleep(seconds: Double) async throws { try Task.checkCancellation() }
    func random() -> Double { 0.5 }
}

let spec = try! FunctionSpec(name: "f", parameters: ["type": "object", "properties": ["a": ["type": "string"]]])

func fuzzClient(_ provider: Provider, _ data: [UInt8]) {
    let streamed = (data.first ?? 0) & 1 == 1
    let withSpec = (data.first ?? 0) & 2 == 2
    let body = Array(data.dropFirst())
    let client = QueryClient(
        provider: provider, baseURL: "http://127.0.0.1:1", defaultModel: "m",
        transport: BytesTransport(body: body, contentType: streamed ? "text/event-stream" : "application/json"),
        retryPolicy: .none, forcedCall: withSpec && (data.first ?? 0) & 4 == 4 ? .jsonSchema : .tools)
    blocking {
        do throws(QueryError) {
            let request = try client.makeRequest(
                messages: [.user("x")], functionSpec: withSpec ? spec : nil, options: [:], stream: streamed)
            let r = try await client.run(request) { _ in }
            _ = r.output
            account(r)
        } catch {
            // Typed throws: the query core can fail with nothing but a QueryError (`do
            // throws(QueryError)` would not compile otherwise), and every one must render as a line.
            _ = error.description
        }
    }
}

/// What the REPL does with a result: the stats and the transcript, then `:stats` twice over
/// (a second identical turn doubles every figure: sums must saturate, never trap).
func account(_ r: QueryResult) {
    let session = Session(provider: .openAI, model: "m")
    session.prices.prices["m"] = PriceTable.Price(input: 1e300, output: 1e300)
    var t = Transcript(provider: "openai", baseURL: "http://127.0.0.1:1", model: "m")
    t.noteSettings(session)
    for _ in 0..<2 { session.record(t.noteTurn(prompt: "x", request: [:], outcome: .success(r))) }
    let failed = Transcript.TurnOutcome.failure(
        message: "x", retries: Int.max, latency: .infinity, inputTokens: r.inputTokens, outputTokens: r.outputTokens)
    session.record(t.noteTurn(prompt: "x", request: nil, outcome: failed))
    _ = session.stats.report()
    _ = TranscriptMarkdown.render(t, stats: session.stats)
    _ = t.journalBytes()
}

/// Status, headers (Retry-After in every form, request ids, x-should-retry) and body from the
/// input, through the whole client with retries on.
func fuzzResponse(_ data: [UInt8]) {
    let streamed = (data.first ?? 0) & 1 == 1
    let withSpec = (data.first ?? 0) & 2 == 2
    let provider: Provider = (data.first ?? 0) & 4 == 4 ? .anthropic : .openAI
    let client = QueryClient(
        provider: provider, baseURL: "http://127.0.0.1:1", defaultModel: "m",
        transport: ResponseTransport(data: Array(data.dropFirst())),
        retryPolicy: RetryPolicy(maxAttempts: 3), clock: InstantClock(), forcedCall: .tools)
    blocking {
        do throws(QueryError) {
            let request = try client.makeRequest(
                messages: [.user("x")], functionSpec: withSpec ? spec : nil, options: [:], stream: streamed)
            account(try await client.run(request) { _ in })
        } catch {
            _ = error.description  // a QueryError: typed throws, as in fuzzClient
        }
    }
}

func fuzzSSE(_ data: [UInt8]) {
    var p = SSEParser()
    let cut = data.isEmpty ? 0 : Int(data[0]) % data.count
    var n = 0
    do {
        try p.feed(Array(data[..<cut])) { _ in n += 1 }
        try p.feed(Array(data[cut...])) { _ in n += 1 }
        try p.finish { _ in n += 1 }
    } catch {}
    // The same bytes in one piece give the same events.
    var q = SSEParser()
    var m = 0
    do {
        try q.feed(data) { _ in m += 1 }
        try q.finish { _ in m += 1 }
    } catch {}
    precondition(n == m, "event count depends on the split: \(n) vs \(m)")
}

func fuzzSetValue(_ data: [UInt8]) {
    let text = String(decoding: data, as: UTF8.self)
    guard let v = try? OptionValues.parse(text) else { return }
    for key in OptionValues.knownKeys + ["unknown_key"] { _ = try? OptionValues.check(key, v) }
    let session = Session(provider: .openAI, model: "m")
    _ = try? session.apply(.set(key: "temperature", value: text))
    _ = try? CommandParser.parse(text)
    _ = try? CommandParser.parse(":" + text)
}

func fuzzFunctionSpec(_ data: [UInt8]) {
    let text = String(decoding: data, as: UTF8.self)
    if let s = try? FunctionSpec(text: text, yaml: false) { precondition((try? FunctionSpec(json: s.json)) == s) }
    _ = try? FunctionSpec(text: text, yaml: true)
}

func fuzzTranscript(_ data: [UInt8]) {
    guard let t = try? Transcript.parse(data) else { return }
    let s = Session(provider: .openAI, model: "m")
    _ = try? t.restore(into: s)
    _ = TranscriptMarkdown.render(t, stats: s.stats)
    _ = s.stats.report()
    // What promptline writes it reads back the same.
    let again = try? Transcript.parse(t.journalBytes())
    precondition(again?.events == t.events, "a transcript did not survive being written and read back")
}

func fuzzJSON(_ data: [UInt8]) {
    guard let v = try? JSONValue.parse(data) else { return }
    let once = v.serialized()
    guard let back = try? JSONValue.parse(once) else { preconditionFailure("serialized JSON does not parse: \(once)") }
    if isFinite(v) {
        precondition(back == v, "serialize/parse round trip changed the value")
    } else {
        // A number too large for a Double (1e400) parses as infinity and is written as null,
        // as JSON has no infinity; from then on the text is stable.
        precondition(back.serialized() == once, "serializing is not stable")
    }
}

func isFinite(_ v: JSONValue) -> Bool {
    switch v {
    case .double(let d): return d.isFinite
    case .array(let a): return a.allSatisfy(isFinite)
    case .object(let o): return o.allSatisfy { isFinite($0.value) }
    default: return true
    }
}

let targets: [String: @Sendable ([UInt8]) -> Void] = [
    "sse": fuzzSSE, "openai": { fuzzClient(.openAI, $0) }, "anthropic": { fuzzClient(.anthropic, $0) },
    "setvalue": fuzzSetValue, "funcspec": fuzzFunctionSpec, "transcript": fuzzTranscript, "json": fuzzJSON,
    "response": fuzzResponse,
]

#if FUZZING
    let selected: @Sendable ([UInt8]) -> Void = {
        let name = ProcessInfo.processInfo.environment["PL_FUZZ_TARGET"] ?? ""
        guard let t = targets[name] else {
            FileHandle.standardError.write(
                "PL_FUZZ_TARGET must be one of \(targets.keys.sorted())\n".data(using: .utf8)!)
            exit(2)
        }
        return t
    }()

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        selected(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }

    // swift-format-ignore: AlwaysUseLowerCamelCase
    // libFuzzer's own C name.
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt

    /// SwiftPM links an executable's entry point as `<module>_main`; without @main it is this,
    /// handing control to libFuzzer's driver.
    @_cdecl("promptline_fuzz_main")
    public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
        var c = argc
        var v: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
        return LLVMFuzzerRunDriver(&c, &v) { data, size in fuzzOne(data, size) }
    }
#else
    @main
    struct CorpusRunner {
        static func main() {
            var files: [String] = []
            for dir in CommandLine.arguments.dropFirst() {
                guard let e = FileManager.default.enumerator(atPath: dir) else { continue }
                for case let f as String in e where !f.hasPrefix(".") {
                    var isDir: ObjCBool = false
                    if FileManager.default.fileExists(atPath: dir + "/" + f, isDirectory: &isDir), !isDir.boolValue {
                        files.append(dir + "/" + f)
                    }
                }
            }
            guard !files.isEmpty else {
                print("fuzz corpus: no files under \(CommandLine.arguments.dropFirst().joined(separator: " "))")
                exit(1)
            }
            for f in files.sorted() {
                let bytes = [UInt8](FileManager.default.contents(atPath: f) ?? Data())
                for name in targets.keys.sorted() { targets[name]!(bytes) }
            }
            print("fuzz corpus: \(files.count) passed, 0 failed (every file through \(targets.count) targets)")
        }
    }
#endif
