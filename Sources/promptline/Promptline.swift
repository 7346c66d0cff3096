import ArgumentParser
import Foundation
import LineEditor
import PromptSession
import QueryCore

@main
struct Promptline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promptline",
        abstract: "A terminal REPL for prompt experimentation against OpenAI-compatible and Anthropic APIs.",
        // Prose is one line per paragraph (the help wraps it to the terminal, between words); a
        // list item is a line of its own, short enough for 60 columns, so neither is broken in
        // mid-phrase.
        discussion: """
            Environment:
              OPENAI_API_KEY, ANTHROPIC_API_KEY: the API keys
              OPENAI_BASE_URL, ANTHROPIC_BASE_URL: the base URLs
              HTTPS_PROXY, HTTP_PROXY: proxies for https, http URLs
              NO_PROXY: the hosts reached directly
              SSL_CERT_FILE: more CAs to trust (as --ca-file)
              NO_COLOR: no colour

            With stdin not a terminal, lines (prompts and :commands) are read from it, \
            and the exit status is 1 if any turn failed:
              printf ':set temperature 0\\nhello\\n:stats\\n' | promptline
            """,
        version: PromptlineVersion.current)

    @Option(help: "Model name (default: gpt-4o-mini; claude-sonnet-4-5 for anthropic; the local model with --local).")
    var model: String?

    @Option(
        name: .customLong("base-url"),
        help: "API base URL (default: OPENAI_BASE_URL / ANTHROPIC_BASE_URL, else the provider's).")
    var baseURL: String?

    @Option(help: ArgumentHelp("System prompt, or @FILE to read it from a file.", valueName: "TEXT|@FILE"))
    var system: String?

    @Option(
        name: .customLong("set"), help: ArgumentHelp("A sampling option, repeatable (as :set).", valueName: "key=value")
    )
    var sets: [String] = []

    @Option(
        name: .customLong("func"),
        help: ArgumentHelp("A FunctionSpec file (JSON or YAML) to force on every turn.", valueName: "FILE"))
    var functionFile: String?

    @Option(
        name: .customLong("var"),
        help: ArgumentHelp(
            "A template variable for {{name}}, repeatable (as :var; @FILE reads one).", valueName: "name=value"))
    var variables: [String] = []

    @Option(
        name: .customLong("tool"),
        help: ArgumentHelp("A tool file (JSON or YAML: one tool or a list), repeatable (as :tool).", valueName: "FILE"))
    var toolFiles: [String] = []

    @Option(
        help: ArgumentHelp("Which tool the model may or must call (as :choice).", valueName: "auto|none|required|NAME"))
    var choice: String?

    @Option(help: ArgumentHelp("Canned tool results, used without asking (as :mock).", valueName: "FILE"))
    var mock: String?

    @Option(
        help: ArgumentHelp("Structured output: a JSON Schema the reply must match (as :schema).", valueName: "FILE"))
    var schema: String?

    @Option(
        help: ArgumentHelp(
            "Run the template over FILE's rows (JSONL or CSV), then exit (as :batch).", valueName: "FILE"))
    var batch: String?

    @Option(
        help: ArgumentHelp(
            "With --batch: the prompt template (default: the resumed session's last).", valueName: "TEXT|@FILE"))
    var template: String?

    @Option(
        help: ArgumentHelp(
            "Run an eval file (prompts, providers, tests with assertions), print the matrix, then exit: 1 if a pass rate is under its threshold (as :eval).",
            valueName: "FILE"))
    var eval: String?

    @Option(
        help: ArgumentHelp(
            "With --eval or --batch: also write the run as one HTML page (as :report).", valueName: "OUT.html"))
    var report: String?

    @Option(
        help: ArgumentHelp(
            "With --batch or --eval: the results file (default: beside the sessions).", valueName: "PATH"))
    var out: String?

    @Option(
        help: ArgumentHelp(
            "With --batch or --eval: requests at a time, 1 to 64 (default 4; an eval file's maxConcurrency).",
            valueName: "n"))
    var concurrency: Int?

    @Option(
        name: .customLong("repeat"),
        help: ArgumentHelp("With --batch: send each row N times (pass@N and stability).", valueName: "N"))
    var repeats: Int?

    @Flag(help: "With --batch: send it through OpenAI's Batch API (as :batch FILE remote), wait, collect.")
    var remote = false

    @Option(
        help: ArgumentHelp(
            "Wait for a remote batch sent earlier, collect its results, then exit (as :batch resume).",
            valueName: "ID"))
    var batchResume: String?

    @Option(
        help: ArgumentHelp("With --remote or --batch-resume: seconds between polls (default 15).", valueName: "seconds")
    )
    var poll: Double?

    @Option(
        help: "chat (keep the conversation; the default) or single (system + this prompt only).",
        completion: .list(["chat", "single"]))
    var mode: String?

    @Option(
        help: ArgumentHelp("The config file (default: config.yaml in $XDG_CONFIG_HOME/promptline).", valueName: "FILE"))
    var config: String?

    @Option(
        help: "openai, openai-responses or anthropic (default: anthropic for claude-* models, else openai).",
        completion: .list(Provider.allCases.map(\.rawValue)))
    var provider: String?

    @Flag(help: "Use the bundled local llama.cpp server (started if needed).")
    var local = false

    @Option(
        help: ArgumentHelp(
            "With --local: the GGUF model to serve (default: SmolLM2-135M-Instruct; config: local_model).",
            valueName: "PATH.gguf"))
    var localModel: String?

    @Option(
        help: ArgumentHelp("How --func forces the call (see :help func-via; default auto).", valueName: "how"),
        completion: .list(ForcedCallStrategy.allCases.map(\.rawValue)))
    var funcVia: String?

    @Option(
        help: ArgumentHelp(
            "Continue a saved session: a transcript path, or last for the most recent autosave.", valueName: "path|last"
        ))
    var resume: String?

    @Flag(help: "vi line-editing keys (default: emacs).")
    var vi = false

    @Flag(help: "Wait for whole responses instead of streaming.")
    var noStream = false

    @Option(
        help: ArgumentHelp(
            "Certificate authorities to trust besides the system's (default: SSL_CERT_FILE).", valueName: "PEM"),
        completion: .file())
    var caFile: String?

    @Flag(help: "Allow sending an API key over plain http to a non-loopback host.")
    var allowInsecure = false

    @Option(help: ArgumentHelp("Attempts per request, the first included (default 6).", valueName: "n"))
    var maxAttempts: Int?

    @Option(help: ArgumentHelp("Seconds to wait for more bytes before giving up (default 120).", valueName: "seconds"))
    var readTimeout: Double?

    @Option(help: ArgumentHelp("Seconds a turn may take, retries included (default 300).", valueName: "seconds"))
    var turnTimeout: Double?

    /// The entry point: the flag parser's errors are said as every other error is — one
    /// `error:` line on stderr, exit status 2 (the parser's own style is `Error:`, a usage
    /// block and status 64). `--help` and `--version` are the parser's.
    static func main() async {
        let command: Promptline
        do {
            var parsed = try parseAsRoot()
            guard let p = parsed as? Promptline else {
                try parsed.run()  // the parser's own: --help as a command, and the like
                exit(withError: nil)
            }
            command = p
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            let text = message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            let said = text.filter { !$0.isEmpty }.joined(separator: "; ")
            Output(fd: STDERR_FILENO).error("\(said) (promptline --help lists the flags)")
            exit(withError: ExitCode(2))
        }
        do {
            let c = command
            try await c.run()
        } catch let e as ExitCode {
            exit(withError: e)
        } catch {
            Output(fd: STDERR_FILENO).error("\(REPL.explain(error))")
            exit(withError: ExitCode(2))
        }
    }

    func validate() throws {
        if batch == nil && (template != nil || remote || repeats != nil) {
            throw ValidationError("--template, --remote and --repeat go with --batch FILE")
        }
        if batch == nil && eval == nil && (out != nil || concurrency != nil || report != nil) {
            throw ValidationError("--out, --concurrency and --report go with --batch FILE or --eval FILE")
        }
        if eval != nil && (batch != nil || batchResume != nil) {
            throw ValidationError("--eval runs on its own: not with --batch or --batch-resume")
        }
        if remote && report != nil { throw ValidationError("--report is for a batch sent from here (not --remote)") }
        if let n = repeats, !(1...BatchCommand.maxRepeats).contains(n) {
            throw ValidationError("--repeat must be from 1 to \(BatchCommand.maxRepeats)")
        }
        if remote && repeats != nil { throw ValidationError("--repeat is for a batch sent from here (not --remote)") }
        if remote && concurrency != nil {
            throw ValidationError(
                "--concurrency is for a batch sent from here; a remote batch runs at the provider's pace")
        }
        if batch != nil && batchResume != nil { throw ValidationError("--batch and --batch-resume: one at a time") }
        if poll != nil && !remote && batchResume == nil {
            throw ValidationError("--poll goes with --batch FILE --remote or --batch-resume ID")
        }
        if let p = poll, !(0.05...3600).contains(p) {
            throw ValidationError("--poll must be from 0.05 to 3600 seconds")
        }
        if let n = concurrency, !(1...64).contains(n) { throw ValidationError("--concurrency must be from 1 to 64") }
        if let mode, SessionMode(rawValue: mode) == nil { throw ValidationError("--mode must be chat or single") }
        if let p = provider, Provider(rawValue: p.lowercased()) == nil {
            throw ValidationError("--provider must be openai, openai-responses or anthropic")
        }
        if let m = maxAttempts, m < 1 { throw ValidationError("--max-attempts must be at least 1") }
        if let t = readTimeout, t <= 0 { throw ValidationError("--read-timeout must be positive") }
        if let f = funcVia, ForcedCallStrategy(rawValue: f) == nil {
            throw ValidationError(
                "--func-via must be one of \(ForcedCallStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if localModel != nil && !local { throw ValidationError("--local-model needs --local") }
        if let t = turnTimeout, !(t > 0 && t.isFinite) {
            throw ValidationError("--turn-timeout must be a positive number of seconds")
        }
    }

    /// The flags as values (``ResolvedSettings`` decides from them).
    var flags: Flags {
        var f = Flags()
        f.model = model
        f.baseURL = baseURL
        f.system = system
        f.sets = sets
        f.functionFile = functionFile
        (f.tools, f.choice, f.mock, f.schema) = (toolFiles, choice, mock, schema)
        f.vars = variables
        f.caFile = caFile
        f.mode = mode.flatMap(SessionMode.init(rawValue:))
        f.provider = provider.flatMap { Provider(rawValue: $0.lowercased()) }
        f.local = local
        f.funcVia = funcVia.flatMap(ForcedCallStrategy.init(rawValue:))
        f.maxAttempts = maxAttempts
        f.readTimeout = readTimeout
        f.turnTimeout = turnTimeout
        return f
    }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let err = Output(fd: STDERR_FILENO)
        let config = try orExit(err) {
            try Config.load(self.config.map(Session.expand) ?? Config.defaultPath(), required: self.config != nil)
        }
        let localServer =
            try local
            ? orExit(err) { try LocalServer.start(model: (localModel ?? config.localModel).map(Session.expand)) } : nil
        let settings = try orExit(err) {
            try ResolvedSettings.resolve(
                flags: flags, environment: env, config: config,
                local: localServer.map { ($0.url, $0.model) })
        }
        let makeClient = Self.clientFactory(settings, allowInsecure: allowInsecure, environment: env)
        let client = try makeClient(settings.provider)
        let session = Session(
            provider: settings.provider, model: settings.model, options: settings.options, mode: settings.mode)
        session.prices = settings.prices
        session.forcedCall = settings.forcedCall
        for c in settings.startupCommands {
            let message = try orExit(err) { try session.apply(c) }
            if message.contains("note:") { err.line(block: message) }
        }
        // The history folder is promptline's own: made (or tightened to) 0700 once, here.
        try? AtomicFile.makePrivateDirectory((Paths.history as NSString).deletingLastPathComponent)
        let editor = LineEditor(
            configuration: .init(
                programName: "promptline", historyPath: Paths.history, historySize: settings.historySize,
                mode: vi ? .vi : .emacs))
        LineEditor.installInterruptHandler()
        let interactive = editor.isInteractive
        InterruptHub.shared.start(fd: LineEditor.interruptFileDescriptor) {
            // Ctrl-C while no turn runs and no line is being edited (reading a pipe): leave.
            if !interactive { Foundation.exit(130) }
        }
        let store = TranscriptStore(directory: TranscriptStore.defaultDirectory())
        let repl = REPL(
            session: session, client: client, makeClient: makeClient, editor: editor, stream: !noStream, store: store)
        repl.rendersMarkdown = config.markdown ?? true
        if let resume { try orExit(err) { try Self.resume(resume, repl: repl, store: store, err: err) } }
        Self.announce(localServer, settings: settings, client: client, interactive: interactive, err: err)
        try await runWithoutPrompt(repl, err: err)
        let status = await repl.run()
        if status != 0 { throw ExitCode(status) }
    }

    /// `--batch`, `--eval` and `--batch-resume`: the run, then exit (0: it went well, 1: not).
    func runWithoutPrompt(_ repl: REPL, err: Output) async throws {
        if let batch {
            let ok = try await orExit(err) { () async throws -> Bool in
                let done = try await repl.runBatch(try batchCommand(batch))
                if let report { try repl.writeReport(to: report, results: repl.lastBatchResults, against: nil) }
                return done
            }
            throw ExitCode(ok ? 0 : 1)
        }
        if let eval {
            let ok = try await orExit(err) { () async throws -> Bool in
                try await repl.runEval(eval, report: report, results: out, concurrency: concurrency)
            }
            throw ExitCode(ok ? 0 : 1)
        }
        if let batchResume {
            let ok = try await orExit(err) { () async throws -> Bool in
                try await repl.resumeRemoteBatch(batchResume, poll: poll)
            }
            throw ExitCode(ok ? 0 : 1)
        }
    }

    /// `--batch` and its options as the `:batch` command they stand for.
    func batchCommand(_ path: String) throws -> BatchCommand {
        let t = try template.map {
            $0.hasPrefix("@") ? try Session.readText(String($0.dropFirst()), what: "template") : $0
        }
        var b = BatchCommand(path: path, concurrency: concurrency, out: out, template: t, remote: remote, poll: poll)
        b.repeats = repeats ?? 1
        return b
    }

    /// Which model answers (on stderr even when piped) and, on a terminal, the banner.
    static func announce(
        _ localServer: LocalServer.State?, settings: ResolvedSettings, client: QueryClient, interactive: Bool,
        err: Output
    ) {
        if let localServer {
            let context = localServer.contextSize.map(String.init) ?? "?"
            err.dim(
                folding:
                    "local model \(localServer.model) (\((localServer.file as NSString).lastPathComponent), context \(context) tokens) at \(localServer.url)"
            )
        }
        if interactive {
            let endpoint = "\(settings.provider.rawValue):\(settings.model) at \(Redactor.url(client.baseURL))"
            Output().dim(
                folding: "promptline \(PromptlineVersion.current) · \(endpoint) · :help for commands, Ctrl-D to quit")
        }
    }

    /// Runs `body`; an error is said in one line and the run ends with status 2.
    func orExit<T>(_ err: Output, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            err.error("\(REPL.explain(error))")
            throw ExitCode(2)
        }
    }

    func orExit<T>(_ err: Output, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            err.error("\(REPL.explain(error))")
            throw ExitCode(2)
        }
    }

    /// Makes the client for a provider from the resolved settings (one transport and one
    /// forced-call probe cache shared by every client of the run).
    static func clientFactory(
        _ s: ResolvedSettings, allowInsecure: Bool, environment: [String: String]
    ) -> (Provider) throws -> QueryClient {
        let transport = AsyncHTTPClientTransport(
            connectTimeout: 10, readTimeout: s.readTimeout, proxy: s.proxy, caFile: s.caFile)
        let retry = RetryPolicy(maxAttempts: s.maxAttempts)
        let serverKinds = ServerKindCache()
        let environmentKeys = REPL.environmentKeys(environment) + s.secretValues
        return { p in
            let endpoint = s.endpoints[p] ?? .init()
            var client = QueryClient(
                provider: p, baseURL: endpoint.baseURL, apiKey: endpoint.apiKey, defaultModel: s.model,
                transport: transport,
                retryPolicy: retry, serverKinds: serverKinds, allowInsecure: allowInsecure)
            client.otherSecrets = environmentKeys
            client.turnTimeout = s.turnTimeout
            client.userAgent = "promptline/\(PromptlineVersion.current) (QueryCore; Swift)"
            return client
        }
    }

    /// `--resume path|last`.
    static func resume(_ what: String, repl: REPL, store: TranscriptStore, err: Output) throws {
        var path = Session.expand(what)
        if what == "last" {
            guard let last = store.recent(limit: 1).first else {
                throw SessionError("--resume last: no saved sessions in \(store.directory)")
            }
            path = last.path
        }
        try repl.resume(path)
        err.dim(
            "resumed \(path): \(counted(repl.transcript.turnCount, "turn")), \(counted(repl.session.history.count, "message")) in the conversation"
        )
    }
}

/// Where promptline keeps its files (XDG base directories).
enum Paths {
    static var history: String { XDG.directory("XDG_STATE_HOME", default: ".local/state") + "/promptline/history" }
}
