import AsyncHTTPClient
import Logging
import QueryCore
import TestHTTPServer
import XCTest

/// docs/library.md, run: each snippet of the doc is in a test below, verbatim, against the
/// in-process server; ``testEverySwiftBlockOfTheDocIsInThisFile()`` keeps the two from drifting.
final class LibraryDocTests: XCTestCase {
    var server: TestHTTPServer!
    var baseURL = ""
    let apiKey = "sk-doc-key"

    override func setUp() async throws {
        server = try await TestHTTPServer.start()
        baseURL = server.baseURL + "/v1"
    }

    override func tearDown() {
        server.stop()
    }

    /// "Make a client".
    func makeClient() -> QueryClient {
        let client = QueryClient(
            provider: .openAI,
            baseURL: baseURL,  // "https://api.openai.com/v1", or a local server's "http://127.0.0.1:8080/v1"
            apiKey: apiKey,  // sent as a header only; never logged, never in an error
            defaultModel: "gpt-4o-mini"
        )
        return client
    }

    func testPlainQuery() async throws {
        server.enqueue(.json(200, OpenAIFixture.completion(text: "Hello!")))
        let client = makeClient()
        let result = try await client.query(system: "Be brief.", user: "Say hello.", options: ["temperature": 0])
        print(result.output.text ?? "", result.inputTokens ?? 0, result.outputTokens ?? 0, result.requestTime)
        XCTAssertEqual(result.output.text, "Hello!")
        XCTAssertEqual(result.inputTokens, 12)
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["model"], "gpt-4o-mini")
        XCTAssertEqual(body["temperature"], 0)
        XCTAssertEqual(server.requests.first?.header("Authorization"), "Bearer sk-doc-key")
    }

    func testForcedFunctionCall() async throws {
        let args = #"{"city":"Paris","days":3}"#
        let reply = OpenAIFixture.completion(text: nil, toolCall: ("weather", args), finish: "tool_calls")
        server.enqueue(.json(200, reply))
        let client = makeClient()
        let weather = try FunctionSpec(
            name: "weather",
            description: "The city and the number of days asked about",
            parameters: [
                "type": "object",
                "properties": ["city": ["type": "string"], "days": ["type": "integer"]],
                "required": ["city", "days"],
            ]
        )
        let call = try await client.query(system: nil, user: "Weather in Paris for 3 days?", functionSpec: weather)
        if let arguments = call.output.functionCall?.arguments {
            print(arguments["city"]?.stringValue ?? "", arguments["days"]?.intValue ?? 0)
        }
        XCTAssertEqual(call.output.functionCall?.arguments, ["city": "Paris", "days": 3])
        XCTAssertEqual(server.requests.first?.json?["tool_choice"], "required")
    }

    func testStreaming() async throws {
        server.enqueue(.sse(dataLines: OpenAIFixture.textStream(["Once ", "upon a time."])))
        let client = makeClient()
        var story = ""
        for try await event in client.stream(messages: [.system("Be brief."), .user("Tell me a story.")]) {
            switch event {
            case .text(let piece): story += piece  // show it as it comes
            case .retrying(let notice): print("retrying in \(notice.delay) s: \(notice.reason)")
            case .completed(let result): print("\n\(result.outputTokens ?? 0) tokens")
            default: break
            }
        }
        XCTAssertEqual(story, "Once upon a time.")
    }

    func testErrors() async throws {
        server.enqueue(.body(404, #"{"error":{"message":"The model does not exist","code":"model_not_found"}}"#))
        let client = makeClient()
        do throws(QueryError) {
            _ = try await client.query(system: nil, user: "Hi", options: ["model": "no-such-model"])
        } catch {
            // The query calls throw QueryError and nothing else, so `error` is one.
            switch error {
            case .http(let details) where details.status == 404: print("no such model: \(details.message)")
            case .retriesExhausted(let attempts, let last): print("gave up after \(attempts) attempts: \(last)")
            default: print(error)  // every case reads as one line
            }
        }
        XCTAssertEqual(server.requests.count, 1, "a 404 is not retried")
    }

    func testOwnHTTPClient() async throws {
        server.enqueue(.json(200, OpenAIFixture.completion(text: "Done thinking.")))
        let httpClient = HTTPClient(configuration: AsyncHTTPClientTransport.configuration)
        let patient = QueryClient(
            baseURL: baseURL, apiKey: apiKey, defaultModel: "gpt-4o-mini",
            transport: AsyncHTTPClientTransport(client: httpClient, connectTimeout: 5, readTimeout: 300)
        )
        let answer = try await patient.query(system: nil, user: "Think hard.")
        try await httpClient.shutdown()  // you made it, you shut it down
        XCTAssertEqual(answer.output.text, "Done thinking.")
    }

    func testOwnTransport() async throws {
        /// Answers every request with one canned completion.
        struct CannedTransport: HTTPTransport {
            func send(_ request: HTTPRequest, logger: Logger) async throws -> HTTPResponse {
                let body = #"{"choices":[{"index":0,"message":{"content":"canned"},"finish_reason":"stop"}]}"#
                let headers: HTTPHeaderFields = ["Content-Type": "application/json"]
                return HTTPResponse(status: 200, headers: headers, body: HTTPBody(chunks: [Array(body.utf8)]))
            }
        }
        let offline = QueryClient(baseURL: "https://x.invalid/v1", defaultModel: "m", transport: CannedTransport())
        let canned = try await offline.query(system: nil, user: "Hi")
        XCTAssertEqual(canned.output.text, "canned")
    }

    func testLogging() async throws {
        server.enqueue(.json(200, OpenAIFixture.completion(text: "Logged.")))
        let client = makeClient()
        var logger = Logger(label: "my-tool.llm")
        logger.logLevel = .debug
        let logged = try await client.query(system: nil, user: "Hi", logger: logger)
        XCTAssertEqual(logged.output.text, "Logged.")
    }

    /// The logger of a call reaches the transport, retries are logged to it, and a call without
    /// one hands the transport a logger that logs nothing.
    func testTheCallersLoggerReachesTheTransport() async throws {
        let seen = LogRecorder()
        var logger = Logger(label: "caller") { _ in seen }
        logger.logLevel = .debug
        server.enqueue(.body(503, "{}"), .json(200, OpenAIFixture.completion()), .json(200, OpenAIFixture.completion()))
        var client = makeClient()
        client.clock = TestClock()
        client.transport = LabelRecordingTransport(inner: client.transport, labels: seen)
        _ = try await client.query(system: nil, user: "Hi", logger: logger)
        let logged = seen.messages
        XCTAssertEqual(logged.filter { $0 == "retrying" }.count, 1, "\(logged)")
        XCTAssertGreaterThan(logged.count, 1, "AsyncHTTPClient's execute logs through it too")
        _ = try await client.query(system: nil, user: "Hi")
        XCTAssertEqual(seen.labels, ["caller", "caller", "QueryCore"])
        XCTAssertEqual(seen.messages, logged, "no logger, nothing logged")
    }

    func testEverySwiftBlockOfTheDocIsInThisFile() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/library.md"), encoding: .utf8)
        let source = try String(contentsOf: here, encoding: .utf8)
        let blocks = Self.swiftBlocks(doc)
        XCTAssertEqual(blocks.count, 9)
        for block in blocks {
            let found = [0, 4, 8, 12].contains { n in
                let pad = String(repeating: " ", count: n)
                let lines = block.split(separator: "\n", omittingEmptySubsequences: false)
                return source.contains(lines.map { $0.isEmpty ? "" : pad + $0 }.joined(separator: "\n") + "\n")
            }
            XCTAssert(found, "docs/library.md has a swift block this file does not run:\n\(block)")
        }
    }

    /// The ```swift blocks of `markdown` (not ```swift Package.swift: a manifest excerpt).
    static func swiftBlocks(_ markdown: String) -> [String] {
        var blocks: [String] = []
        var current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if var lines = current {
                if line == "```" {
                    blocks.append(lines.joined(separator: "\n"))
                    current = nil
                } else {
                    lines.append(line)
                    current = lines
                }
            } else if line == "```swift" {
                current = []
            }
        }
        return blocks
    }
}

/// Records the label of every logger a transport is handed, and what is logged through them.
final class LogRecorder: LogHandler, @unchecked Sendable {
    // @unchecked: the arrays are only touched under `lock`.
    private let lock = NSLock()
    private var _labels: [String] = []
    private var _messages: [String] = []
    var labels: [String] { lock.withLock { _labels } }
    var messages: [String] { lock.withLock { _messages } }
    func record(label: String) { lock.withLock { _labels.append(label) } }

    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { lock.withLock { _messages.append("\(event.message)") } }
}

struct LabelRecordingTransport: HTTPTransport {
    let inner: any HTTPTransport
    let labels: LogRecorder
    func send(_ request: HTTPRequest, logger: Logger) async throws -> HTTPResponse {
        labels.record(label: logger.label)
        return try await inner.send(request, logger: logger)
    }
}
