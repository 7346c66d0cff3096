import Foundation
import QueryCore
import TestHTTPServer
import XCTest

@testable import PromptSession

/// Security round 3 (issue #25): a key planted in every field a file can hold never reaches one;
/// YAML alias bombs are refused before they expand; CSV is read without a `Character` per byte;
/// downloads stop at the API's limit without retrying; polls that stall or answer about another
/// batch end; folders given with out= keep their mode; listings print one line per field.
final class SecurityRound3Tests: XCTestCase {
    static let key = "sk-planted-SECRET-0123456789abcdef"
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "pl-sec3-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A chat completion with the key in every string field the client reads: id, model, system
    /// fingerprint, finish reason, text, tool-call id, name and arguments.
    static func echoingReply(_ req: TestHTTPServer.RecordedRequest) -> TestHTTPServer.Reply {
        let k = key
        let tool = req.json?["tools"]?.arrayValue?.first?["function"]?["name"]
        var message: JSONObject = ["role": "assistant", "content": .string("here is \(k)")]
        if let tool {
            message["tool_calls"] = [
                [
                    "id": .string("call-\(k)"), "type": "function",
                    "function": ["name": tool, "arguments": .string(#"{"q":"\#(k)","\#(k)":1}"#)],
                ]
            ]
        }
        return .json(
            200,
            [
                "id": .string("chatcmpl-\(k)"), "object": "chat.completion", "created": 1, "model": .string("m-\(k)"),
                "system_fingerprint": .string("fp-\(k)"),
                "choices": [["index": 0, "message": .object(message), "finish_reason": .string("stop-\(k)")]],
                "usage": ["prompt_tokens": 10, "completion_tokens": 3],
            ])
    }

    func server() async throws -> TestHTTPServer {
        let s = try await TestHTTPServer.start(defaultReply: Self.echoingReply)
        addTeardownBlock { s.stop() }
        return s
    }

    func client(_ s: TestHTTPServer) -> QueryClient {
        QueryClient(
            provider: .openAI, baseURL: s.baseURL + "/v1", apiKey: Self.key, defaultModel: "gpt-4o-mini",
            retryPolicy: RetryPolicy(maxAttempts: 2, baseDelay: 0.01, maxDelay: 0.02), forcedCall: .tools)
    }

    /// Every file under `dir`, with the paths of those holding the key (or its first 12 characters).
    func filesHoldingTheKey() throws -> (all: [String], holding: [String]) {
        let prefix = String(Self.key.prefix(Redactor.minimumPrefix))
        var all: [String] = []
        var holding: [String] = []
        let walker = FileManager.default.enumerator(atPath: dir)
        while let name = walker?.nextObject() as? String {
            let path = dir + "/" + name
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else { continue }
            all.append(name)
            let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
            if text.contains(prefix) { holding.append(name) }
        }
        return (all.sorted(), holding.sorted())
    }

    /// A session whose every setting holds the key: a variable, the system prompt using it, an
    /// option, a tool's name and description, a branch name.
    func plantedSession() throws -> Session {
        let k = Self.key
        let s = Session(provider: .openAI, model: "gpt-4o-mini")
        _ = try s.apply(.setVar(name: "k", value: k))
        _ = try s.apply(.setSystem("The key is {{k}}."))
        _ = try s.apply(.set(key: "user", value: k))
        s.toolbox.tools = [
            try FunctionSpec(
                name: "t-\(k)", description: "about \(k)",
                parameters: ["type": "object", "properties": ["q": ["type": "string", "description": .string(k)]]])
        ]
        return s
    }

    func testAKeyPlantedInEveryFieldReachesNoFileSessionBatchOrRemote() async throws {
        let server = try await server()
        let c = client(server)
        let s = try plantedSession()

        // A turn: the prompt and every field of the reply hold the key.
        var transcript = Transcript(provider: "openai", baseURL: c.baseURL, model: s.model)
        transcript.secrets = c.redactor.secrets
        transcript.noteSettings(s)
        let request = try s.request(prompt: "use {{k}} \(Self.key)", results: [], client: c, stream: false)
        let result = try await c.run(request) { _ in }
        XCTAssertEqual(result.info.model, "m-\(Self.key)", "the server did echo it")
        transcript.noteTurn(
            prompt: "use \(Self.key)", request: try c.requestBody(for: request), outcome: .success(result))
        _ = try s.apply(.fork("b-\(Self.key)"))
        transcript.noteBranch(.fork("b-\(Self.key)"))
        transcript.noteSettings(s)
        let recorded = transcript.events.count
        transcript.noteSettings(s)
        XCTAssertEqual(transcript.events.count, recorded, "settings holding a key are not recorded again unchanged")
        try TranscriptJournal(path: dir + "/sessions/journal.jsonl").sync(transcript)
        try TranscriptStore.save(transcript, to: dir + "/saved.jsonl", force: true)
        try TranscriptStore.export(transcript, stats: s.stats, to: dir + "/export.md", force: true)
        for case .turn(let t) in transcript.events {
            XCTAssertFalse("\(t)".contains(String(Self.key.prefix(12))), "the kept record is redacted too")
        }

        // A local batch: the row's variable and every reply field hold it.
        let variants = try s.variants([])
        let runner = BatchRunner(
            template: "say {{k}} {{v}}", rows: [["v": Self.key], ["v": "plain"]], variants: variants,
            clients: [c], concurrency: 2, outPath: dir + "/local.jsonl")
        let summary = try await runner.run(session: s)
        XCTAssertEqual(summary.totals[""]?.ok, 2)
        let again = try await runner.run(session: s)
        XCTAssertEqual(again.skipped, 2, "a redacted prompt still counts as done")

        // A remote batch whose validation error echoes the key.
        server.batchAPI.fault = .fail
        server.batchAPI.failMessage = "line 1 holds \(Self.key)"
        let remoteRunner = BatchRunner(
            template: "say {{v}}", rows: [["v": Self.key]], variants: variants, clients: [c], concurrency: 1,
            outPath: dir + "/remote.jsonl")
        let remote = RemoteBatchRunner(
            apis: [.openAI: try BatchAPI(client: c)], directory: dir + "/remote", pollInterval: 0.01)
        let submitted = try await remote.submit(remoteRunner, session: s, dataset: "d", say: { _ in })
        let record = try XCTUnwrap(submitted)
        let waited = try await remote.wait(record, stop: BatchStop()) { _ in }
        let (_, remoteSummary) = try await remote.collect(waited, prices: .defaults)
        XCTAssertEqual(remoteSummary.totals[""]?.failed, 1)
        let upload = try XCTUnwrap(server.requests.first { $0.uri == "/v1/files" })
        XCTAssertTrue(upload.bodyText.contains(Self.key), "what is uploaded is what the row asked for")

        let (all, holding) = try filesHoldingTheKey()
        XCTAssertEqual(holding, [], "files holding the key, of \(all)")
        for name in [
            "sessions/journal.jsonl", "saved.jsonl", "export.md", "local.jsonl", "remote.jsonl",
            "remote/\(record.run).json", "remote/\(record.run)-0.input.jsonl",
        ] {
            XCTAssertTrue(all.contains(name), "\(name) was written: \(all)")
        }
        let journal = try String(contentsOfFile: dir + "/sessions/journal.jsonl", encoding: .utf8)
        XCTAssertTrue(journal.contains("m-[redacted]"), "the model field was redacted, not dropped")
        XCTAssertTrue(journal.contains("fp-[redacted]"))
        let results = try String(contentsOfFile: dir + "/remote.jsonl", encoding: .utf8)
        XCTAssertTrue(results.contains("line 1 holds [redacted]"), results)
    }

    func testAThinkingBlockAndEveryTranscriptFieldAreRedactedAsEncoded() throws {
        let k = Self.key
        var info = QueryInfo()
        info.model = "m-\(k)"
        info.id = "id-\(k)"
        info.notes = ["note \(k)"]
        info.thinkingBlocks = [["type": "thinking", "thinking": .string("I saw \(k)"), "signature": .string(k)]]
        var t = Transcript(provider: "anthropic", baseURL: "http://x", model: "m")
        t.secrets = [k]
        let result = QueryResult(
            output: .text("ok"), requestTime: 0.1, inputTokens: 1, outputTokens: 1, timeToFirstToken: nil,
            retries: 0, info: info)
        t.noteTurn(prompt: "p", request: nil, outcome: .success(result))
        let bytes = String(decoding: t.journalBytes(), as: UTF8.self)
        XCTAssertFalse(bytes.contains(String(k.prefix(12))), bytes)
        XCTAssertTrue(bytes.contains("I saw [redacted]"), bytes)
    }

    // MARK: - YAML

    static let bomb = """
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
        """

    func testAYAMLAliasBombIsRefusedInOneLineBeforeItExpands() throws {
        let started = Date()
        let path = dir + "/bomb.yaml"
        try Self.bomb.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try FunctionSpec.document(contentsOf: path)) { e in
            XCTAssertTrue("\(e)".contains("line 2: YAML aliases (*name) are not supported"), "\(e)")
            XCTAssertFalse("\(e)".contains("\n"))
        }
        XCTAssertThrowsError(try Config.parse("options:\n  x: &x [1, 2]\n  y: *x\n")) { e in
            XCTAssertTrue("\(e)".contains("line 3: YAML aliases"), "\(e)")
        }
        XCTAssertThrowsError(try Config.parse(Self.bomb))
        let s = Session(provider: .openAI, model: "m")
        for command in [
            Command.loadMock(path: path), .loadTools(path: path), .loadSchema(path: path), .loadFunction(path: path),
        ] {
            XCTAssertThrowsError(try s.apply(command), "\(command)") { e in
                XCTAssertTrue("\(e)".contains("aliases"), "\(e)")
            }
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "refused, not expanded")
        // Anchors without aliases, and YAML without either, still read.
        XCTAssertEqual(try Config.parse("model: &m gpt-4o\n").model, "gpt-4o")
        XCTAssertNoThrow(try FunctionSpec(text: "name: f\nparameters: {type: object}\n", yaml: true))
    }

    // MARK: - CSV

    func testCSVIsReadByteWiseWithTheSameRules() throws {
        let rows = try BatchFile.csvRows("a,b\r\n\"x, \"\"q\"\"\",é😀\n\"multi\nline\",2\r3,4\n")
        XCTAssertEqual(rows.count, 3)
        XCTAssertEqual(rows[0], ["a": "x, \"q\"", "b": "é😀"])
        XCTAssertEqual(rows[1], ["a": "multi\nline", "b": "2"])
        XCTAssertEqual(rows[2], ["a": "3", "b": "4"])
        XCTAssertThrowsError(try BatchFile.csvRows("a\n\"open")) {
            XCTAssertTrue("\($0)".contains("a quoted field is not closed"))
        }
    }

    func testACSVOfOneLargeFieldTakesAboutItsSizeInMemory() throws {
        // 16 MB in one field: read as Characters it took ~18× (288 MB); byte-wise it stays near 3×.
        let size = 16 << 20
        var text = "a\n\""
        text += String(repeating: "x", count: size)
        text += "\"\n"
        let before = Self.residentBytes()
        let rows = try BatchFile.csvRows(text)
        let grew = Self.residentBytes() - before
        XCTAssertEqual(rows.first?["a"]?.utf8.count, size)
        XCTAssertLessThan(grew, 4 * size, "resident memory grew \(grew >> 20) MB for a \(size >> 20) MB field")
    }

    /// This process's resident set now (from /proc/self/statm).
    static func residentBytes() -> Int {
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    // MARK: - Batch API downloads and polls

    func remoteRun(rows: Int) async throws -> (TestHTTPServer, Session, BatchRunner, RemoteBatchRunner) {
        let server = try await TestHTTPServer.start(defaultReply: { _ in
            .json(
                200,
                [
                    "id": "c", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [
                        ["index": 0, "message": ["role": "assistant", "content": "fine"], "finish_reason": "stop"]
                    ],
                ])
        })
        addTeardownBlock { server.stop() }
        let c = QueryClient(
            provider: .openAI, baseURL: server.baseURL + "/v1", apiKey: "sk-other-1234567890", defaultModel: "m",
            retryPolicy: RetryPolicy(maxAttempts: 6, baseDelay: 0.01, maxDelay: 0.02))
        let s = Session(provider: .openAI, model: "m")
        let v = try s.variants([])
        let runner = BatchRunner(
            template: "row {{n}}", rows: (0..<rows).map { ["n": "\($0)"] }, variants: v, clients: [c], concurrency: 1,
            outPath: dir + "/out.jsonl")
        let remote = RemoteBatchRunner(
            apis: [.openAI: try BatchAPI(client: c)], directory: dir + "/remote", pollInterval: 0.01)
        return (server, s, runner, remote)
    }

    func testAnOutputFileOverTheLimitIsOneErrorAndNotDownloadedAgain() async throws {
        var (server, s, runner, remote) = try await remoteRun(rows: 20)
        remote.apis[.openAI]?.downloadLimit = 1000
        let submitted = try await remote.submit(runner, session: s, dataset: "d", say: { _ in })
        let record = try XCTUnwrap(submitted)
        let waited = try await remote.wait(record, stop: BatchStop()) { _ in }
        do {
            _ = try await remote.collect(waited, prices: .defaults)
            XCTFail("collected a file over the limit")
        } catch {
            XCTAssertTrue("\(error)".contains("the server sent more than 1000 bytes"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"))
        }
        let downloads = server.requests.filter { $0.uri.hasSuffix("/content") }
        XCTAssertEqual(downloads.count, 1, "a body over the limit is not asked for again")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/remote").filter {
            $0.hasSuffix(".download")
        }
        XCTAssertEqual(left, [], "the partial download is removed")

        // Within the limit, the file is downloaded to disk and read a line at a time.
        remote.apis[.openAI]?.downloadLimit = BatchAPI.maxFileBytes
        let (_, summary) = try await remote.collect(waited, prices: .defaults)
        XCTAssertEqual(summary.totals[""]?.ok, 20)
    }

    func testAPollAnsweringAboutAnotherBatchEndsTheWaitInOneLine() async throws {
        let (server, s, runner, remote) = try await remoteRun(rows: 2)
        let submitted = try await remote.submit(runner, session: s, dataset: "d", say: { _ in })
        let record = try XCTUnwrap(submitted)
        server.batchAPI.fault = .otherID
        let started = Date()
        do {
            _ = try await remote.wait(record, stop: BatchStop()) { _ in }
            XCTFail("waited on an answer about another batch")
        } catch {
            let id = record.parts[0].batchID
            XCTAssertTrue(
                "\(error)".contains("asked about batch \(id), the server answered about batch \(id)-other"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    func testAStalledPollIsAbandonedAskedAgainAndShown() async throws {
        var (server, s, runner, remote) = try await remoteRun(rows: 2)
        remote.pollTimeout = 0.5
        let submitted = try await remote.submit(runner, session: s, dataset: "d", say: { _ in })
        let record = try XCTUnwrap(submitted)
        server.enqueue(.stallBeforeResponse)
        var seen: [String] = []
        let started = Date()
        let waited = try await remote.wait(record, stop: BatchStop()) { seen.append($0.status) }
        XCTAssertTrue(waited.parts.allSatisfy { ["completed"].contains($0.status) }, "\(waited.parts)")
        XCTAssertTrue(
            seen.contains { $0.contains("no answer about \(record.parts[0].batchID) in 0.5 s, asking again (2/3)") },
            "\(seen)")
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    func testAPollThatNeverAnswersEndsTheWaitAfterThreeTriesInOneLine() async throws {
        var (server, s, runner, remote) = try await remoteRun(rows: 2)
        remote.pollTimeout = 0.3
        let submitted = try await remote.submit(runner, session: s, dataset: "d", say: { _ in })
        let record = try XCTUnwrap(submitted)
        server.enqueue(.stallBeforeResponse, .stallBeforeResponse, .stallBeforeResponse)
        do {
            _ = try await remote.wait(record, stop: BatchStop()) { _ in }
            XCTFail("waited past three stalled polls")
        } catch {
            let id = record.parts[0].batchID
            XCTAssertEqual(
                "\(error)", "batch \(id): 3 polls in a row had no answer in 0.3 s — :batch resume \(id) tries again")
        }
    }

    // MARK: - Folders and listings

    func testOutCreatesOnlyMissingFoldersAndNeverChangesAnExistingOne() throws {
        let existing = dir + "/shared"
        try FileManager.default.createDirectory(atPath: existing, withIntermediateDirectories: true)
        chmod(existing, 0o775)
        try AtomicFile.makeDirectory(existing)
        try AtomicFile.makeDirectory(existing + "/new/deeper")
        var st = stat()
        stat(existing, &st)
        XCTAssertEqual(st.st_mode & 0o777, 0o775, "the existing folder keeps its mode")
        for made in [existing + "/new", existing + "/new/deeper"] {
            stat(made, &st)
            XCTAssertEqual(st.st_mode & 0o077, 0, "\(made) is private")
        }
        XCTAssertNoThrow(try AtomicFile.makeDirectory(""), "a bare file name's folder is the current one")
    }

    func testToolListingsAreOneLinePerField() throws {
        let s = Session(provider: .openAI, model: "m")
        s.toolbox.tools = [
            try FunctionSpec(
                name: "lookup", description: "Finds things.\nchoice required · mock official\r\u{1B}[2Jok\u{2028}x",
                parameters: [
                    "type": "object", "properties": ["q\nforged": ["type": "string"]], "required": ["q\nforged"],
                ])
        ]
        let listing = s.toolbox.listing
        let lines = listing.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 2, listing)
        XCTAssertTrue(lines[0].hasPrefix("  lookup — Finds things. choice required"), listing)
        XCTAssertFalse(listing.contains("\u{1B}") || listing.contains("\r") || listing.contains("\u{2028}"))
        XCTAssertTrue(lines[1].hasPrefix("choice "))
    }
}
