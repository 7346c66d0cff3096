import Foundation
import LineEditor
import PromptSession
import QueryCore

/// Cancels the turn in flight when Ctrl-C arrives. The C handler writes a byte to a pipe; a
/// thread reads it and cancels the task registered here.
final class InterruptHub: @unchecked Sendable {
    static let shared = InterruptHub()
    private let lock = NSLock()
    private var cancelCurrent: (() -> Void)?
    private var idleHandler: (() -> Void)?

    func start(fd: Int32, whenIdle: @escaping () -> Void) {
        idleHandler = whenIdle
        let t = Thread {
            var byte: UInt8 = 0
            while true {
                let n = read(fd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                InterruptHub.shared.fire()
            }
        }
        t.name = "promptline-interrupts"
        t.start()
    }

    private func fire() {
        let action: (() -> Void)? = lock.withLock { cancelCurrent ?? idleHandler }
        action?()
    }

    /// Runs `body` with `cancel` registered as the Ctrl-C action.
    func whileRunning<T>(cancel: @escaping () -> Void, _ body: () async -> T) async -> T {
        lock.withLock { cancelCurrent = cancel }
        defer { lock.withLock { cancelCurrent = nil } }
        return await body()
    }
}

/// The read–eval–print loop: a line is a command or a turn; a turn goes through the query core
/// and its events go to the renderer and the session's stats.
final class REPL {
    let session: Session
    var client: QueryClient
    let makeClient: (Provider) throws -> QueryClient
    let out: Output
    let err: Output
    let editor: LineEditor
    let stream: Bool
    private(set) var failedTurns = 0
    /// The last request sent and the client that sent it (for :request).
    private(set) var lastRequest: (request: QueryRequest, client: QueryClient)?
    var transcript: Transcript
    let store: TranscriptStore
    /// Where the transcript is autosaved; nil until the first turn or settings change.
    private(set) var autosavePath: String?

    init(session: Session, client: QueryClient, makeClient: @escaping (Provider) throws -> QueryClient, editor: LineEditor, stream: Bool, store: TranscriptStore) {
        self.session = session
        self.client = client
        self.makeClient = makeClient
        self.editor = editor
        self.stream = stream
        self.store = store
        out = Output()
        err = Output(fd: STDERR_FILENO)
        transcript = Transcript(provider: session.provider.rawValue, baseURL: Redactor.url(client.baseURL), model: session.model)
        transcript.secrets = Self.secrets(client)
        transcript.noteSettings(session)
    }

    /// Continues a saved session: its settings, conversation, stats and transcript.
    func resume(_ path: String) throws {
        let loaded = try TranscriptStore.load(path)
        let scratch = Session(provider: session.provider, model: session.model)
        do {
            try loaded.restore(into: scratch)
        } catch let e as SessionError {
            throw SessionError("\(path): \(e.message)")
        }
        if scratch.provider != session.provider || client.provider != scratch.provider {
            client = try makeClient(scratch.provider)
        }
        session.adopt(scratch)
        transcript = loaded
        transcript.secrets = Self.secrets(client)
        transcript.baseURL = Redactor.url(client.baseURL)
        // A file in the sessions folder keeps its own path; one from elsewhere is autosaved under
        // a fresh id, so it can neither replace another session nor aim the autosave anywhere else.
        if store.contains(path) {
            autosavePath = path
        } else {
            transcript.id = Transcript.newID()
            autosavePath = store.autosavePath(for: transcript)
        }
        transcript.noteSettings(session)
        autosave()
    }

    /// Every secret this process knows: the client's key and base-URL credentials, and every
    /// `*_API_KEY` in the environment (the clients carry those as ``QueryClient/otherSecrets``).
    static func secrets(_ client: QueryClient) -> [String] { client.redactor.secrets }

    /// The values of every `*_API_KEY` variable in the environment.
    static func environmentKeys(_ env: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        env.filter { $0.key.hasSuffix("_API_KEY") && $0.value.count >= 4 }.map(\.value)
    }

    /// Writes the transcript to its autosave path once it holds more than the starting settings
    /// (a session that only started leaves no file). A failure is reported, never fatal.
    func autosave() {
        guard transcript.turnCount > 0 || transcript.events.count > 1 else { return }
        let path = autosavePath ?? store.autosavePath(for: transcript)
        do {
            guard store.contains(path) else { throw SessionError("\(path) is not in \(store.directory)") }
            try AtomicFile.makePrivateDirectory(store.directory)
            try AtomicFile.write(TranscriptStore.encode(transcript, stats: session.stats), to: path)
            autosavePath = path
        } catch {
            err.error("autosave failed: \(error) — :save <path> writes it elsewhere")
        }
    }

    func transcriptCommand(_ c: Command) throws {
        switch c {
        case .save(let path, let force):
            guard let path else {
                autosave()
                out.line("\(autosavePath.map { "saved \($0)" } ?? "nothing to save yet: no turns and no settings changes")")
                return
            }
            let p = Session.expand(path)
            try TranscriptStore.save(transcript, stats: session.stats, to: p, force: force)
            out.line("saved \(p) (\(transcript.turnCount) turns)")
        case .export(let path, let force):
            let p = Session.expand(path)
            try TranscriptStore.export(transcript, stats: session.stats, to: p, force: force)
            out.line("exported \(p)")
        case .load(let path):
            try resume(Session.expand(path))
            out.line("loaded \(path): \(transcript.turnCount) turns, model \(session.model), \(session.history.count) messages in the conversation")
        case .sessions:
            let recent = store.recent()
            if recent.isEmpty { out.line("no saved sessions in \(store.directory)"); return }
            let f = DateFormatter()
            f.dateFormat = "yyyy-MM-dd HH:mm"
            for (path, t) in recent {
                let first = (t.firstPrompt ?? "").replacingOccurrences(of: "\n", with: " ")
                out.line("\(f.string(from: t.updated))  \(t.model)  \(t.turnCount) turns  \(first.prefix(50))\(first.count > 50 ? "…" : "")\n    \(path)")
            }
        default:
            break
        }
    }

    var prompt: String {
        let p = "\(session.provider.rawValue):\(session.model)\(session.functionSpec.map { " ƒ\($0.name)" } ?? "")\(session.mode == .single ? " single" : "")"
        return out.render("\(dim: p) › ")
    }

    /// Runs until :quit, Ctrl-D or end of input. Returns the exit status.
    func run() async -> Int32 {
        editor.completer = { [unowned self] before in Completion.candidates(for: before, session: self.session) }
        var pendingInterrupt = false
        while true {
            let result = editor.readLine(prompt: prompt)
            switch result {
            case .eof:
                if editor.isInteractive { out.finishLine() }
                return finish()
            case .interrupted:
                if pendingInterrupt { out.finishLine(); return finish() }
                pendingInterrupt = true
                out.finishLine()
                out.dim("(Ctrl-C again or Ctrl-D to quit; :help for commands)")
                continue
            case .line(let raw):
                pendingInterrupt = false
                var line = raw
                if line.trimmingCharacters(in: .whitespaces) == "\"\"\"" {
                    guard let block = readBlock() else { continue }
                    line = block
                    if !block.isEmpty { remember("\"\"\"\n" + block + "\n\"\"\"") }
                    if await handleTurn(block) == false { return finish() }
                    continue
                }
                if !line.isEmpty { remember(line) }
                if await handle(line) == false { return finish() }
            }
        }
    }

    /// Says where the transcript is, and gives the exit status.
    func finish() -> Int32 {
        if let p = autosavePath { (editor.isInteractive ? out : err).dim("transcript: \(p)") }
        return exitStatus
    }

    var exitStatus: Int32 { failedTurns > 0 && !editor.isInteractive ? 1 : 0 }

    func remember(_ line: String) {
        // A line holding a key (pasted by mistake) never reaches the history file.
        if Self.holdsSecret(line, known: Self.secrets(client)) { return }
        editor.addHistory(line)
    }

    /// Whether `line` holds one of `known` (or a ≥ 12-character start of one), or anything
    /// shaped like an OpenAI or Anthropic key (`sk-…`, `sk-ant-…`).
    static func holdsSecret(_ line: String, known: [String]) -> Bool {
        if Redactor(known).redact(line) != line { return true }
        return line.range(of: #"sk-[A-Za-z0-9_\-]{16,}"#, options: .regularExpression) != nil
    }

    /// Reads the lines of a `"""` block. nil when Ctrl-C abandoned it.
    func readBlock() -> String? {
        var lines: [String] = []
        while true {
            switch editor.readLine(prompt: "… ") {
            case .line(let l):
                if l.trimmingCharacters(in: .whitespaces) == "\"\"\"" { return lines.joined(separator: "\n") }
                lines.append(l)
            case .eof:
                return lines.joined(separator: "\n")
            case .interrupted:
                out.finishLine()
                out.dim("(block abandoned)")
                return nil
            }
        }
    }

    /// Handles one line. Returns false to leave.
    func handle(_ line: String) async -> Bool {
        let input: Input
        do {
            input = try CommandParser.parse(line)
        } catch {
            err.error("\(error)")
            return true
        }
        switch input {
        case .empty: return true
        case .turn(let text): return await handleTurn(text)
        case .command(let c): return await apply(c)
        }
    }

    func handleTurn(_ text: String) async -> Bool {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return true }
        await runTurn(text)
        return true
    }

    func apply(_ command: Command) async -> Bool {
        do {
            switch try session.apply(command) {
            case .retry(let prompt):
                session.dropLastExchange()
                out.dim("retrying: \(prompt.count > 60 ? String(prompt.prefix(60)) + "…" : prompt)")
                await runTurn(prompt, isRetry: true)
                return true
            case .compare(let variants, let prompt):
                await runComparison(variants, prompt: prompt)
                return true
            case .request(let format):
                guard let last = lastRequest else { throw SessionError("no request yet: send a prompt first") }
                out.line(block: try RequestPrinter.render(last.request, client: last.client, format: format))
                return true
            case .message(let m): out.line(block: m)
            case .stats(let s): out.line(block: s)
            case .quit: return false
            case .editor(let mode):
                editor.setMode(mode == "vi" ? .vi : .emacs)
                out.line("editor keys: \(mode)")
            case .provider(let p, let message):
                let newClient = try makeClient(p)
                client = newClient
                session.provider = p
                out.line("\(message) — \(Redactor.url(newClient.baseURL))")
            case .transcript(let c):
                try transcriptCommand(c)
            }
            if command == .reset { transcript.noteReset() }
            let before = transcript.events.count
            transcript.noteSettings(session)
            if transcript.events.count != before || command == .reset { autosave() }
        } catch {
            err.error("\(error)")
        }
        return true
    }

    /// Sends one turn and shows it. The session records it; a failed or cancelled turn is counted
    /// but not added to the conversation.
    func runTurn(_ prompt: String, isRetry: Bool = false) async {
        let request: QueryRequest
        let body: JSONValue
        // A forced function: learn once per server how to force it (json-schema on llama.cpp), so
        // the body recorded and shown by :request is exactly the one sent.
        let client = await turnClient()
        do {
            request = try client.makeRequest(messages: session.messages(for: prompt), functionSpec: session.functionSpec, options: session.queryOptions, stream: stream)
            body = try client.requestBody(for: request)
            lastRequest = (request, client)
        } catch {
            err.error("\(error)")
            failedTurns += 1
            return
        }
        let renderer = TurnRenderer(out: out, turnLimit: client.turnTimeout)
        let started = Date()
        var retries = 0
        let counter = TurnCounters()
        renderer.start()
        let task = Task { () -> Result<QueryResult, Error> in
            do {
                return .success(try await client.run(request) { event in
                    counter.note(event)
                    renderer.handle(event)
                })
            } catch {
                return .failure(error)
            }
        }
        let outcome = await InterruptHub.shared.whileRunning(cancel: { task.cancel() }) { await task.value }
        renderer.stop()
        retries = counter.retries
        let usage = counter.usage
        switch outcome {
        case .success(let result):
            renderer.showResult(result)
            var violations: [SchemaViolation] = []
            if case .functionCall(let call) = result.output, let spec = request.functionSpec {
                violations = SchemaCheck.violations(of: call.arguments, against: spec.parameters)
                for v in violations { err.line("\(yellow: "schema:") \(v)") }
            }
            session.recordSuccess(prompt: prompt, result: result, schemaViolations: violations.count)
            transcript.noteTurn(prompt: prompt, request: body, outcome: .success(result), retry: isRetry)
            out.dim("\(TurnRenderer.statusLine(result, model: session.model)) · cost \(PriceTable.format(session.cost(of: result)))")
        case .failure(let error):
            out.finishLine()
            let cancelled = (error as? QueryError) == .cancelled
            let latency = Date().timeIntervalSince(started)
            session.recordFailure(
                prompt: prompt, retries: retries, latency: latency, cancelled: cancelled, inputTokens: usage.input, outputTokens: usage.output)
            let billed = usage.input != nil || usage.output != nil
            if cancelled {
                out.dim("cancelled\(billed ? " · " + TurnRenderer.tokens(usage.input, usage.output) : "")")
                transcript.noteTurn(
                    prompt: prompt, request: body,
                    outcome: .cancelled(retries: retries, latency: latency, inputTokens: usage.input, outputTokens: usage.output), retry: isRetry)
            } else {
                failedTurns += 1
                let message = Self.explain(error)
                err.error("\(message)")
                if billed {
                    out.dim("\(TurnRenderer.tokens(usage.input, usage.output)) (counted in :stats)")
                }
                transcript.noteTurn(
                    prompt: prompt, request: body,
                    outcome: .failure(message: message, retries: retries, latency: latency, inputTokens: usage.input, outputTokens: usage.output),
                    retry: isRetry)
            }
        }
        autosave()
    }

    /// The client a turn is sent with: the session's forced-call strategy, resolved for this
    /// server when a function is loaded (the probe runs once per base URL).
    func turnClient() async -> QueryClient {
        var c = client
        c.forcedCall = session.forcedCall
        return session.functionSpec != nil ? await c.resolvingForcedCall() : c
    }

    static func explain(_ error: Error) -> String {
        guard let q = error as? QueryError else { return "\(error)" }
        switch q {
        case .transport(.connectFailed, let m), .retriesExhausted(_, .transport(.connectFailed, let m)):
            return "\(m) — is the server running? (check --base-url / OPENAI_BASE_URL, or use --local)" + (q.isRetriesExhausted ? " (gave up after retries)" : "")
        default:
            return q.description + (isContextOverflow(q) ? " — the conversation no longer fits the model's context: :reset starts over, :mode single sends only the new prompt" : "")
        }
    }

    /// The server refused the request because the prompt is longer than the model's context
    /// (llama.cpp `exceed_context_size_error`, OpenAI `context_length_exceeded`, Anthropic
    /// "prompt is too long").
    static func isContextOverflow(_ q: QueryError) -> Bool {
        guard case .http(let d) = q.innermost else { return false }
        if d.type == "exceed_context_size_error" || d.code == "context_length_exceeded" { return true }
        let m = d.message.lowercased()
        return m.contains("context") && (m.contains("exceed") || m.contains("maximum context length")) || m.contains("prompt is too long")
    }
}

extension QueryError {
    var isRetriesExhausted: Bool { if case .retriesExhausted = self { return true } else { return false } }
    /// The failure itself, under any retriesExhausted wrapping.
    var innermost: QueryError { if case .retriesExhausted(_, let last) = self { return last.innermost } else { return self } }
}

/// What a turn's events say about its cost: retries taken and the last usage reported (a failed
/// or cancelled turn still counts the tokens the server reported).
final class TurnCounters: @unchecked Sendable {
    // @unchecked: the two fields are only touched under `lock` (events arrive on the request task).
    private let lock = NSLock()
    private var retryCount = 0
    private var lastUsage: (input: Int?, output: Int?) = (nil, nil)

    func note(_ event: QueryEvent) {
        lock.withLock {
            switch event {
            case .retrying: retryCount += 1
            case .usage(let i, let o): lastUsage = (i ?? lastUsage.input, o ?? lastUsage.output)
            default: break
            }
        }
    }

    var retries: Int { lock.withLock { retryCount } }
    var usage: (input: Int?, output: Int?) { lock.withLock { lastUsage } }
}

/// Tab completion: command names, `:set` keys, models used, file paths.
enum Completion {
    static func candidates(for before: String, session: Session) -> [String] {
        guard before.hasPrefix(":") else { return [] }
        let words = before.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        if words.count == 1 { return CommandParser.commandWords.filter { $0.hasPrefix(before) } }
        let cmd = words[0]
        let current = words.last ?? ""
        switch cmd {
        case ":set", ":unset":
            guard words.count == 2 else { return [] }
            let keys = Array(Set(OptionValues.knownKeys + session.options.keys)).sorted()
            return keys.filter { $0.hasPrefix(current) }
        case ":model":
            return session.modelsUsed.filter { $0.hasPrefix(current) }
        case ":mode": return ["chat", "single"].filter { $0.hasPrefix(current) }
        case ":func-via": return ForcedCallStrategy.allCases.map(\.rawValue).filter { $0.hasPrefix(current) }
        case ":provider": return ["openai", "anthropic"].filter { $0.hasPrefix(current) }
        case ":set-editor": return ["emacs", "vi"].filter { $0.hasPrefix(current) }
        case ":help": return CommandParser.help.map(\.name).filter { $0.hasPrefix(current) }
        case ":func", ":save", ":load", ":export":
            return paths(current)
        case ":system":
            guard current.hasPrefix("@") else { return [] }
            return paths(String(current.dropFirst())).map { "@" + $0 }
        default:
            return []
        }
    }

    static func paths(_ partial: String) -> [String] {
        let expanded = partial.hasPrefix("~/") ? NSHomeDirectory() + partial.dropFirst() : partial
        let dir: String
        let prefix: String
        if let slash = expanded.lastIndex(of: "/") {
            dir = String(expanded[...slash])
            prefix = String(expanded[expanded.index(after: slash)...])
        } else {
            dir = ""
            prefix = expanded
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else { return [] }
        let shownDir = partial.hasPrefix("~/") ? "~/" + dir.dropFirst(NSHomeDirectory().count + 1) : dir
        return names.filter { $0.hasPrefix(prefix) && (prefix.hasPrefix(".") || !$0.hasPrefix(".")) }.sorted().map { name in
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: dir + name, isDirectory: &isDir)
            return shownDir + name + (isDir.boolValue ? "/" : "")
        }
    }
}
