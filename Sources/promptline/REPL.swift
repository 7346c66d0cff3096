import Foundation
import LineEditor
import PromptSession
import QueryCore
import Terminal

/// The read–eval–print loop: a line is a command or a turn; a turn goes through the query core
/// and its events go to the renderer, the session and the transcript. The session owns the
/// session's state (the provider among it); the REPL owns the app: the terminal, the client for
/// the session's provider, files, and the commands that send turns again.
final class REPL {
    let session: Session
    /// The client for ``Session/provider``: replaced only through ``Session/willSwitchProvider``.
    private(set) var client: QueryClient
    let out: Output
    let err: Output
    let editor: LineEditor
    let stream: Bool
    var failedTurns = 0
    /// The last request sent and the client that sent it (for :request).
    private(set) var lastRequest: (request: QueryRequest, client: QueryClient)?
    var transcript: Transcript
    let store: TranscriptStore
    /// Where the transcript is autosaved; nil until the first turn or settings change.
    private(set) var journal: TranscriptJournal?
    /// Results typed in a tool round that was ended before all its calls were answered: sent
    /// with the next prompt, in place of the error results for those calls.
    var heldResults: [ToolResult] = []
    /// The results file of the last `:batch` (what `:report` shows by default).
    var lastBatchResults: String?
    /// `:set-view reasoning on|off`.
    var showsReasoning = true
    /// `:set-view markdown on|off` (config `markdown`): replies rendered as Markdown on a terminal.
    var rendersMarkdown = true
    /// Makes the client for a provider (`:provider`, and `:compare provider=…`).
    let makeClient: (Provider) throws -> QueryClient

    init(
        session: Session, client: QueryClient, makeClient: @escaping (Provider) throws -> QueryClient,
        editor: LineEditor, stream: Bool, store: TranscriptStore
    ) {
        self.session = session
        self.client = client
        self.editor = editor
        self.stream = stream
        self.store = store
        self.makeClient = makeClient
        out = Output()
        err = Output(fd: STDERR_FILENO)
        transcript = Transcript(
            provider: session.provider.rawValue, baseURL: Redactor.url(client.baseURL), model: session.model)
        transcript.secrets = client.redactor.secrets
        (out.redactor, err.redactor) = (client.redactor, client.redactor)
        transcript.noteSettings(session)
        session.willSwitchProvider = { [unowned self] p in
            let c = try makeClient(p)
            self.client = c
            self.transcript.secrets = c.redactor.secrets
            (self.out.redactor, self.err.redactor) = (c.redactor, c.redactor)
            return Redactor.url(c.baseURL)
        }
    }

    /// Continues a saved session: its settings, conversation, stats and transcript.
    func resume(_ path: String) throws {
        let loaded = try TranscriptStore.load(path)
        // Restored into a scratch session first: a file that does not restore leaves this one as it was.
        let scratch = Session(provider: session.provider, model: session.model)
        do {
            try loaded.restore(into: scratch)
        } catch let e as SessionError {
            throw SessionError("\(path): \(e.message)")
        }
        try loaded.restore(into: session)
        transcript = loaded
        transcript.secrets = client.redactor.secrets
        transcript.baseURL = Redactor.url(client.baseURL)
        for note in loaded.loadNotes { err.dim("\(path): \(note)") }
        // A journal in the sessions folder is carried on in place (a version 1 file there, as a
        // journal beside it); one from elsewhere is autosaved under a fresh id, so it can neither
        // replace another session nor aim the autosave anywhere else.
        // This process's own journal keeps its lock (a second lock here would be refused).
        let inPlace =
            journal.flatMap { $0.path == path ? $0 : nil }
            ?? TranscriptJournal(path: path, onDisk: loaded.needsRewrite ? 0 : loaded.events.count)
        if store.contains(path) && path.hasSuffix(".jsonl"), let holder = inPlace.claim() {
            // One writer per journal: a session open in another promptline goes on here as a copy.
            transcript.id = Transcript.newID()
            let copy = store.autosavePath(for: transcript)
            journal = TranscriptJournal(path: copy)
            err.dim("\(path) is open in another promptline (pid \(holder)): this one goes on as a copy, \(copy)")
        } else if store.contains(path) && path.hasSuffix(".jsonl") {
            journal = inPlace
        } else {
            let elsewhere = !store.contains(path)
            if elsewhere { transcript.id = Transcript.newID() }
            journal = TranscriptJournal(path: store.autosavePath(for: transcript, created: elsewhere ? Date() : nil))
        }
        transcript.noteSettings(session)
        autosave(force: true)
    }

    /// The secrets the environment holds: the values of every `*_API_KEY` variable, and the
    /// credentials in `HTTP_PROXY` / `HTTPS_PROXY`.
    static func environmentKeys(_ env: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        Redactor.environmentKeys(env)
    }

    /// Appends what the transcript recorded since the last call to its journal, once it holds
    /// more than the starting settings (a session that only started leaves no file). A failure
    /// is reported, never fatal.
    func autosave(force: Bool = false) {
        guard force || transcript.events.count > 1 else { return }
        do {
            let j = journal ?? TranscriptJournal(path: store.autosavePath(for: transcript))
            guard store.contains(j.path) else { throw SessionError("\(j.path) is not in \(store.directory)") }
            if journal == nil { try AtomicFile.makePrivateDirectory(store.directory) }
            try j.sync(transcript)
            journal = j
            SessionIndex(sessions: store.directory).note(transcript, journal: j.path)
        } catch {
            err.error("autosave failed: \(error) — :save <path> writes it elsewhere")
        }
    }

    func fileCommand(_ c: AppCommand) throws {
        switch c {
        case .save(let path, let force):
            guard let path else {
                autosave()
                out.line(
                    "\(journal.map { "saved \($0.path)" } ?? "nothing to save yet: no turns and no settings changes")")
                return
            }
            let p = Session.expand(path)
            try Self.requireFolder(of: p, given: path)
            try TranscriptStore.save(transcript, to: p, force: force)
            out.line("saved \(p) (\(counted(transcript.turnCount, "turn")))")
        case .export(let path, let force):
            let p = Session.expand(path)
            try Self.requireFolder(of: p, given: path)
            try TranscriptStore.export(transcript, stats: session.stats, to: p, force: force)
            out.line("exported \(p)")
        case .load(let path):
            try resume(Session.expand(path))
            out.line(
                "loaded \(path): \(counted(transcript.turnCount, "turn")), model \(session.model), \(counted(session.history.count, "message")) in the conversation"
            )
        default:
            listSessions()
        }
    }

    /// Refuses a path whose folder does not exist: a mistyped folder is not made.
    static func requireFolder(of path: String, given: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard dir.isEmpty || FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) && isDir.boolValue else {
            throw SessionError("\(given): the folder \(dir) does not exist (nothing was written)")
        }
    }

    func listSessions() {
        let recent = store.recent()
        if recent.isEmpty {
            out.line("no saved sessions in \(store.directory)")
            return
        }
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm"
        for t in recent {
            let head = "\(f.string(from: t.updated))  \(t.model)  \(counted(t.turnCount, "turn"))"
            out.line(
                block: Self.sessionEntry(head: head, firstPrompt: t.firstPrompt ?? "", path: t.path, width: out.width))
        }
    }

    /// One session of `:sessions`: when, model, turns and the first prompt, then its path under it.
    /// On a terminal (`width`), the prompt is cut to what is left of the line and the path broken
    /// after a `/` when it is too long; piped, the prompt's first 50 characters.
    static func sessionEntry(head: String, firstPrompt: String, path: String, width: Int?) -> String {
        let first = firstPrompt.replacingOccurrences(of: "\n", with: " ")
        guard let width else {
            return "\(head)  \(first.prefix(50))\(first.count > 50 ? "…" : "")\n    \(path)"
        }
        var lines = Layout.fold(head, width: width, hanging: 2)
        let room = width - DisplayWidth.of(lines[lines.count - 1]) - 2
        if !first.isEmpty && room >= 16 {
            lines[lines.count - 1] += "  " + DisplayWidth.truncate(first, to: room)
        } else if !first.isEmpty {
            lines.append("    " + DisplayWidth.truncate(first, to: width - 4))
        }
        return (lines + Layout.wrap("    " + path, width: width, hanging: 2)).joined(separator: "\n")
    }

    var prompt: String {
        var p = "\(session.provider.rawValue):\(session.model)"
        if let f = session.functionSpec {
            p += " ƒ\(f.name)"
        } else if !session.toolbox.tools.isEmpty {
            p += " tools:\(session.toolbox.tools.count)"
        }
        if let s = session.toolbox.schema, session.functionSpec == nil { p += " schema:\(s.name)" }
        if session.mode == .single { p += " single" }
        return out.render("\(dim: p) › ")
    }

    /// Runs until :quit, Ctrl-D or end of input. Returns the exit status.
    func run() async -> Int32 {
        editor.completer = { [unowned self] before in Completion.candidates(for: before, session: self.session) }
        await resumeRound()
        var pendingInterrupt = false
        while true {
            let result = editor.readLine(prompt: prompt)
            switch result {
            case .eof:
                if editor.isInteractive { out.finishLine() }
                return finish()
            case .interrupted:
                if pendingInterrupt {
                    out.finishLine()
                    return finish()
                }
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

    /// Says where the transcript is, gives up the journal's lock, and gives the exit status.
    func finish() -> Int32 {
        if let p = journal?.path { (editor.isInteractive ? out : err).dim(folding: "transcript: \(p)") }
        journal?.release()
        return exitStatus
    }

    var exitStatus: Int32 { failedTurns > 0 && !editor.isInteractive ? 1 : 0 }

    func remember(_ line: String) {
        // A line holding a key (pasted by mistake) never reaches the history file.
        if Self.holdsSecret(line, known: client.redactor.secrets) { return }
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
        do {
            switch try CommandParser.parse(line) {
            case .empty: return true
            case .turn(let text): return await handleTurn(text)
            case .command(let c): try apply(c)
            case .app(let c): return try await run(c)
            }
        } catch {
            err.error("\(REPL.explain(error))")
        }
        return true
    }

    func handleTurn(_ text: String) async -> Bool {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return true }
        await runTurn(text)
        return true
    }

    /// A session command: the session carries it out; the transcript records what changed.
    func apply(_ command: Command) throws {
        // A fork's name is decided here, so the transcript records the one the session used.
        let command = command == .fork(nil) ? .fork(session.newBranchName()) : command
        if case .help(let name) = command, let width = out.width, let lines = HelpView.lines(name, width: width) {
            for l in lines {
                out.line(l.style == .form ? "\(bold: l.text)" : l.style == .example ? "\(dim: l.text)" : "\(l.text)")
            }
            return
        }
        out.line(block: fitted(try session.apply(command), for: command))
        let before = transcript.events.count
        switch command {
        case .reset: transcript.noteReset()
        case .undo: transcript.noteBranch(.undo)
        case .fork(let name?): transcript.noteBranch(.fork(name))
        case .switchBranch(let name): transcript.noteBranch(.switchTo(name))
        default: break
        }
        transcript.noteSettings(session)
        if transcript.events.count != before { autosave() }
    }

    /// A command's answer folded to the terminal's width (lines broken between their fields, the
    /// rest indented under them); unchanged when piped, and for the system prompt, shown as written.
    func fitted(_ text: String, for command: Command) -> String {
        guard let width = out.width, command != .showSystem else { return text }
        return Layout.foldBlock(text, width: width).joined(separator: "\n")
    }

    /// An app command. Returns false to leave.
    func run(_ command: AppCommand) async throws -> Bool {
        switch command {
        case .quit: return false
        case .retry:
            guard let prompt = session.lastTemplate else {
                throw SessionError("nothing to retry yet: send a prompt first")
            }
            session.dropLastExchange()
            out.dim("retrying: \(prompt.count > 60 ? String(prompt.prefix(60)) + "…" : prompt)")
            await runTurn(prompt, isRetry: true)
        case .compare(let axes, let given):
            guard let typed = given ?? session.lastTemplate else {
                throw SessionError("nothing to compare yet: send a prompt, or give one after --")
            }
            await runComparison(try session.variants(axes), prompt: try session.fill(typed))
        case .request(let format):
            guard let last = lastRequest else { throw SessionError("no request yet: send a prompt first") }
            out.line(block: try RequestPrinter.render(last.request, client: last.client, format: format))
        case .editor(let mode):
            editor.setMode(mode == "vi" ? .vi : .emacs)
            out.line("editor keys: \(mode)")
        case .view(let reasoning):
            showsReasoning = reasoning
            out.line("reasoning \(reasoning ? "shown (dimmed, before the answer)" : "hidden (still counted and kept)")")
        case .viewMarkdown(let on):
            rendersMarkdown = on
            out.line(
                "markdown \(on ? "rendered on a terminal (piped output stays as sent)" : "off: replies printed as sent")"
            )
        case .save, .export, .load, .sessions:
            try fileCommand(command)
        case .batch(let b):
            try await runBatch(b)
        case .batchResume(let id):
            try await resumeRemoteBatch(id)
        case .batchCancel(let id):
            try await cancelRemoteBatch(id)
        case .batches:
            await listRemoteBatches()
        case .evalDiff(let old, let new):
            try evalDiff(old: old, new: new)
        case .evalRun(let path, let report):
            if try await !runEval(path, report: report) { failedTurns += 1 }
        case .report(let path, let results, let against):
            try writeReport(to: path, results: results, against: against)
        case .edit:
            try await editLastPrompt()
        case .copy:
            try copyLastReply()
        }
        return true
    }

    /// Sends one request of a turn and shows it: the prompt (or, `continuing`, only the tool
    /// `results` going back). Its record goes to the session (stats, conversation) and to the
    /// transcript; a failed or cancelled one is counted but not added to the conversation.
    /// Returns the record, nil when no request could be built.
    func sendRequest(prompt: String, template: String? = nil, results: [ToolResult], continuing: Bool, isRetry: Bool)
        async -> TranscriptEvent.Turn?
    {
        // A forced function: learn once per server how to force it (json-schema on llama.cpp), so
        // the body recorded and shown by :request is exactly the one sent.
        let client = await turnClient()
        let request: QueryRequest
        let body: JSONValue
        do {
            request = try session.request(
                prompt: prompt, results: results, continuing: continuing, client: client, stream: stream)
            body = try client.requestBody(for: request)
            lastRequest = (request, client)
        } catch {
            err.error("\(REPL.explain(error))")
            failedTurns += 1
            return nil
        }
        let started = Date()
        let (outcome, counters) = await send(request, with: client)
        var turn: TranscriptEvent.Turn
        switch outcome {
        case .success(let result):
            var t = TranscriptEvent.Turn(
                prompt: prompt, toolResults: results, outcome: .success(result), retry: isRetry)
            t.template = template
            turn = session.identified(t)
            let violations = session.record(turn)
            showOutput(turn.output, violations: violations)
            let cost = session.stats.turns.last?.cost
            let fields =
                TurnRenderer.statusFields(result, model: session.model) + [("cost \(PriceTable.format(cost))", 0)]
            // On a terminal, one line that never wraps: what does not fit is left out, least useful first.
            out.dim(
                "\(out.width.map { Layout.statusLine(fields, width: $0) } ?? fields.map(\.text).joined(separator: " · "))"
            )
            let grades = await turnGrades(turn.output, prompt: prompt)
            turn.assertions = session.assertionResult(
                for: turn.output, finishReason: result.info.finishReason, cost: cost, latency: result.requestTime,
                prompt: prompt, grades: grades)
            if let a = turn.assertions { showVerdicts(a) }
        case .failure(let error):
            turn = failedTurn(
                prompt, results: results, error: error, latency: Date().timeIntervalSince(started), counters: counters,
                retry: isRetry)
            turn.template = template
            session.record(turn)
        }
        transcript.noteTurn(turn, requestBody: body)
        autosave()
        return turn
    }

    /// The assertions' verdicts under the status line: a line each, then the turn's score.
    func showVerdicts(_ a: AssertionResult) {
        for v in a.verdicts { out.line("\(v.line)") }
        let passed = a.verdicts.filter(\.pass).count
        let score = String(format: "%.2f", a.score)
        out.dim("assertions: \(passed)/\(a.verdicts.count) passed · score \(score) · \(a.pass ? "PASS" : "FAIL")")
    }

    /// Sends `request`, rendering its events; Ctrl-C cancels it.
    func send(_ request: QueryRequest, with client: QueryClient) async -> (Result<QueryResult, Error>, TurnCounters) {
        let renderer = TurnRenderer(
            out: out, turnLimit: client.turnTimeout, showsCalls: request.functionSpec != nil,
            structured: request.functionSpec == nil && request.outputSchema != nil, showsReasoning: showsReasoning,
            markdown: rendersMarkdown)
        let counter = TurnCounters()
        renderer.start()
        let task = Task { () -> Result<QueryResult, Error> in
            do {
                return .success(
                    try await client.run(request) { event in
                        counter.note(event)
                        renderer.handle(event)
                    })
            } catch {
                return .failure(error)
            }
        }
        let outcome = await InterruptHub.shared.whileRunning(cancel: { task.cancel() }, { await task.value })
        renderer.stop()
        if case .success(let result) = outcome { renderer.showResult(result) } else { renderer.finishText() }
        return (outcome, counter)
    }

    /// Shows a failed or cancelled turn and makes its record: tokens the server reported count.
    func failedTurn(
        _ prompt: String, results: [ToolResult], error: Error, latency: Double, counters: TurnCounters, retry: Bool
    ) -> TranscriptEvent.Turn {
        out.finishLine()
        let usage = counters.usage
        let billed = usage.input != nil || usage.output != nil
        if (error as? QueryError) == .cancelled {
            out.dim("cancelled\(billed ? " · " + TurnRenderer.tokens(usage.input, usage.output) : "")")
            let outcome = TranscriptEvent.TurnOutcome.cancelled(
                retries: counters.retries, latency: latency, inputTokens: usage.input, outputTokens: usage.output)
            return TranscriptEvent.Turn(prompt: prompt, toolResults: results, outcome: outcome, retry: retry)
        }
        failedTurns += 1
        let message = Self.explain(error)
        if case .noFunctionCall(let expected, _)? = (error as? QueryError)?.innermost, counters.streamedText {
            // The text was streamed above: the record keeps it, the screen does not repeat it.
            err.error("the model did not call \(expected); it answered with the text above")
        } else {
            err.error("\(message)")
        }
        if billed { out.dim("\(TurnRenderer.tokens(usage.input, usage.output)) (counted in :stats)") }
        let outcome = TranscriptEvent.TurnOutcome.failure(
            message: message, retries: counters.retries, latency: latency, inputTokens: usage.input,
            outputTokens: usage.output)
        return TranscriptEvent.Turn(prompt: prompt, toolResults: results, outcome: outcome, retry: retry)
    }

    /// The client a turn is sent with: the session's forced-call strategy, resolved for this
    /// server when a function is loaded (the probe runs once per base URL).
    func turnClient() async -> QueryClient {
        var c = client
        c.forcedCall = session.forcedCall
        let forcesByName: Bool
        if case .named = session.toolbox.choice, !session.toolbox.tools.isEmpty {
            forcesByName = true
        } else {
            forcesByName = false
        }
        return session.functionSpec != nil || forcesByName ? await c.resolvingForcedCall() : c
    }

    static func explain(_ error: Error) -> String {
        guard let q = error as? QueryError else { return "\(error)" }
        if case .transport(_, let m) = q.innermost, m.contains("the proxy ") {
            return q.description + " — HTTP_PROXY / HTTPS_PROXY name the proxy, NO_PROXY the hosts reached directly"
        }
        switch q {
        case .transport(.connectionRefused, let m), .retriesExhausted(_, .transport(.connectionRefused, let m)):
            return
                "\(m): nothing listens there, the server is not running (check --base-url / OPENAI_BASE_URL, or use --local)"
                + (q.isRetriesExhausted ? " (gave up after retries)" : "")
        case .transport(.connectFailed, let m), .retriesExhausted(_, .transport(.connectFailed, let m)):
            return "\(m) — is the server running? (check --base-url / OPENAI_BASE_URL, or use --local)"
                + (q.isRetriesExhausted ? " (gave up after retries)" : "")
        default:
            return q.description + (appHint(q.innermost).map { " — " + $0 } ?? "")
        }
    }

    /// What to do about an error, in promptline's terms (flags, commands, variables): the core's
    /// messages name no app.
    static func appHint(_ q: QueryError) -> String? {
        switch q {
        case .insecureTransport: return "--allow-insecure if you mean it"
        case .redirected: return "set --base-url to the address the API really has"
        case .turnTimedOut: return "--turn-timeout, or turn_timeout in the config file, sets the limit"
        case .http(let d) where d.status == 401: return "the key comes from OPENAI_API_KEY or ANTHROPIC_API_KEY"
        case .http(let d) where d.status == 404: return ":model sets the model"
        default:
            guard isContextOverflow(q) else { return nil }
            return
                "the conversation no longer fits the model's context: :reset starts over, :mode single sends only the new prompt"
        }
    }

    /// The server refused the request because the prompt is longer than the model's context
    /// (llama.cpp `exceed_context_size_error`, OpenAI `context_length_exceeded`, Anthropic
    /// "prompt is too long").
    static func isContextOverflow(_ q: QueryError) -> Bool {
        guard case .http(let d) = q.innermost else { return false }
        if d.type == "exceed_context_size_error" || d.code == "context_length_exceeded" { return true }
        let m = d.message.lowercased()
        return m.contains("context") && (m.contains("exceed") || m.contains("maximum context length"))
            || m.contains("prompt is too long")
    }
}

extension QueryError {
    var isRetriesExhausted: Bool { if case .retriesExhausted = self { return true } else { return false } }
    /// The failure itself, under any retriesExhausted wrapping.
    var innermost: QueryError {
        if case .retriesExhausted(_, let last) = self { return last.innermost } else { return self }
    }
}

/// What a turn's events say about its cost: retries taken and the last usage reported (a failed
/// or cancelled turn still counts the tokens the server reported).
final class TurnCounters: @unchecked Sendable {
    // @unchecked: the fields are only touched under `lock` (events arrive on the request task).
    private let lock = NSLock()
    private var retryCount = 0
    private var lastUsage: (input: Int?, output: Int?) = (nil, nil)
    private var textShown = false

    func note(_ event: QueryEvent) {
        lock.withLock {
            switch event {
            case .retrying: retryCount += 1
            case .usage(let i, let o): lastUsage = (i ?? lastUsage.input, o ?? lastUsage.output)
            case .text(let t): textShown = textShown || !t.isEmpty
            default: break
            }
        }
    }

    var retries: Int { lock.withLock { retryCount } }
    var usage: (input: Int?, output: Int?) { lock.withLock { lastUsage } }
    /// Whether the reply's text was streamed to the screen.
    var streamedText: Bool { lock.withLock { textShown } }
}
