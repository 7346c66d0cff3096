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
        discussion: """
            Environment: OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, NO_COLOR.
            With stdin not a terminal, lines (prompts and :commands) are read from it and the exit
            status is 1 if any turn failed:  printf ':set temperature 0\\nhello\\n:stats\\n' | promptline
            """,
        version: PromptlineVersion.current)

    @Option(help: "Model name (default: gpt-4o-mini; claude-sonnet-4-5 for anthropic; the local model with --local).")
    var model: String?

    @Option(name: .customLong("base-url"), help: "API base URL (default: OPENAI_BASE_URL / ANTHROPIC_BASE_URL, else the provider's).")
    var baseURL: String?

    @Option(help: ArgumentHelp("System prompt, or @FILE to read it from a file.", valueName: "TEXT|@FILE"))
    var system: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("A sampling option, repeatable (as :set).", valueName: "key=value"))
    var sets: [String] = []

    @Option(name: .customLong("func"), help: ArgumentHelp("A FunctionSpec file (JSON or YAML) to force on every turn.", valueName: "FILE"))
    var functionFile: String?

    @Option(help: "chat (keep the conversation; the default) or single (system + this prompt only).")
    var mode: String?

    @Option(help: ArgumentHelp("The config file (default: $XDG_CONFIG_HOME/promptline/config.yaml).", valueName: "FILE"))
    var config: String?

    @Option(help: "openai or anthropic (default: anthropic for claude-* models, else openai).")
    var provider: String?

    @Flag(help: "Use the bundled local llama.cpp server (started if needed).")
    var local = false

    @Option(
        name: .customLong("local-model"),
        help: ArgumentHelp("With --local: the GGUF model to serve (default: SmolLM2-135M-Instruct; config: local_model).", valueName: "PATH.gguf"))
    var localModel: String?

    @Option(
        name: .customLong("func-via"),
        help: "How --func/:func forces the call: auto (json-schema on llama.cpp, tools elsewhere), tools, named or json-schema.")
    var funcVia: String?

    @Option(help: ArgumentHelp("Continue a saved session: a transcript path, or last for the most recent autosave.", valueName: "path|last"))
    var resume: String?

    @Flag(help: "vi line-editing keys (default: emacs).")
    var vi = false

    @Flag(name: .customLong("no-stream"), help: "Wait for whole responses instead of streaming.")
    var noStream = false

    @Flag(name: .customLong("allow-insecure"), help: "Allow sending an API key over plain http to a non-loopback host.")
    var allowInsecure = false

    @Option(name: .customLong("max-attempts"), help: "Attempts per request, the first included (default 6).")
    var maxAttempts: Int?

    @Option(name: .customLong("read-timeout"), help: "Seconds to wait for more response bytes before giving up (default 120).")
    var readTimeout: Double?

    @Option(name: .customLong("turn-timeout"), help: "Seconds a whole turn may take, every retry and wait included (default 300, or turn_timeout in the config file).")
    var turnTimeout: Double?

    func validate() throws {
        if let mode, SessionMode(rawValue: mode) == nil { throw ValidationError("--mode must be chat or single") }
        if let p = provider, Provider(rawValue: p.lowercased()) == nil { throw ValidationError("--provider must be openai or anthropic") }
        if let m = maxAttempts, m < 1 { throw ValidationError("--max-attempts must be at least 1") }
        if let t = readTimeout, t <= 0 { throw ValidationError("--read-timeout must be positive") }
        if let f = funcVia, ForcedCallStrategy(rawValue: f) == nil {
            throw ValidationError("--func-via must be one of \(ForcedCallStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if localModel != nil && !local { throw ValidationError("--local-model needs --local") }
        if let t = turnTimeout, !(t > 0 && t.isFinite) { throw ValidationError("--turn-timeout must be a positive number of seconds") }
    }

    /// The flags as values (``ResolvedSettings`` decides from them).
    var flags: Flags {
        var f = Flags()
        f.model = model
        f.baseURL = baseURL
        f.system = system
        f.sets = sets
        f.functionFile = functionFile
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
        let config = try orExit(err) { try Config.load(self.config.map(Session.expand) ?? Config.defaultPath()) }
        let localServer = try local ? orExit(err) { try LocalServer.start(model: (localModel ?? config.localModel).map(Session.expand)) } : nil
        let settings = try orExit(err) {
            try ResolvedSettings.resolve(
                flags: flags, environment: env, config: config, local: localServer.map { LocalEndpoint(url: $0.url, model: $0.model) })
        }
        let makeClient = Self.clientFactory(settings, allowInsecure: allowInsecure, environment: env)
        let client = try makeClient(settings.provider)
        let session = Session(provider: settings.provider, model: settings.model, options: settings.options, mode: settings.mode)
        session.prices = settings.prices
        session.forcedCall = settings.forcedCall
        for c in settings.startupCommands {
            let message = try orExit(err) { try session.apply(c) }
            if message.contains("note:") { err.line(block: message) }
        }
        // The history folder is promptline's own: made (or tightened to) 0700 once, here.
        try? AtomicFile.makePrivateDirectory((Paths.history as NSString).deletingLastPathComponent)
        let editor = LineEditor(
            configuration: .init(programName: "promptline", historyPath: Paths.history, historySize: settings.historySize, mode: vi ? .vi : .emacs))
        LineEditor.installInterruptHandler()
        let interactive = editor.isInteractive
        InterruptHub.shared.start(fd: LineEditor.interruptFileDescriptor) {
            // Ctrl-C while no turn runs and no line is being edited (reading a pipe): leave.
            if !interactive { Foundation.exit(130) }
        }
        let store = TranscriptStore(directory: TranscriptStore.defaultDirectory())
        let repl = REPL(session: session, client: client, makeClient: makeClient, editor: editor, stream: !noStream, store: store)
        if let resume { try orExit(err) { try Self.resume(resume, repl: repl, store: store, err: err) } }
        if let localServer {
            // Said on stderr even when piped: which model answers, and how much it can hold.
            let context = localServer.contextSize.map(String.init) ?? "?"
            err.dim("local model \(localServer.model) (\((localServer.file as NSString).lastPathComponent), context \(context) tokens) at \(localServer.url)")
        }
        if interactive {
            let endpoint = "\(settings.provider.rawValue):\(settings.model) at \(Redactor.url(client.baseURL))"
            Output().dim("promptline \(PromptlineVersion.current) · \(endpoint) · :help for commands, Ctrl-D to quit")
        }
        let status = await repl.run()
        if status != 0 { throw ExitCode(status) }
    }

    /// Runs `body`; an error is said in one line and the run ends with status 2.
    func orExit<T>(_ err: Output, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            err.error("\(error)")
            throw ExitCode(2)
        }
    }

    /// Makes the client for a provider from the resolved settings (one transport and one
    /// forced-call probe cache shared by every client of the run).
    static func clientFactory(
        _ s: ResolvedSettings, allowInsecure: Bool, environment: [String: String]
    ) -> (Provider) throws -> QueryClient {
        let transport = AsyncHTTPClientTransport(connectTimeout: 10, readTimeout: s.readTimeout)
        let retry = RetryPolicy(maxAttempts: s.maxAttempts)
        let serverKinds = ServerKindCache()
        let environmentKeys = REPL.environmentKeys(environment)
        return { p in
            let endpoint = s.endpoints[p] ?? .init()
            var client = QueryClient(
                provider: p, baseURL: endpoint.baseURL, apiKey: endpoint.apiKey, defaultModel: s.model, transport: transport,
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
            guard let last = store.recent(limit: 1).first else { throw SessionError("--resume last: no saved sessions in \(store.directory)") }
            path = last.path
        }
        try repl.resume(path)
        err.dim("resumed \(path): \(repl.transcript.turnCount) turns, \(repl.session.history.count) messages in the conversation")
    }
}

/// Where promptline keeps its files (XDG base directories).
enum Paths {
    static var history: String { XDG.directory("XDG_STATE_HOME", default: ".local/state") + "/promptline/history" }
}

/// The local llama.cpp server managed by scripts/local-llm.
enum LocalServer {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// What scripts/local-llm wrote about the server it started.
    struct State {
        var url: String
        var model: String
        var file: String
        var contextSize: Int?
    }

    static var stateFile: String {
        let cache = ProcessInfo.processInfo.environment["PROMPTLINE_CACHE"] ?? NSHomeDirectory() + "/.cache/promptline"
        return cache + "/run/local-llm.env"
    }

    /// The running server, started (or restarted with another model) by scripts/local-llm.
    /// - Parameter model: a GGUF path to serve instead of the default model.
    static func start(model: String?) throws -> State {
        // Without a model the script decides (it knows the default, and restarts a server that
        // serves another one); it answers at once when the right server is already up.
        if let model, let s = running(), s.file == model { return s }
        guard let script = findScript() else {
            throw Failure(description: "cannot find scripts/local-llm to start the local server; set PROMPTLINE_LOCAL_LLM to its path")
        }
        var env = ProcessInfo.processInfo.environment
        env["LOCAL_LLM_MODEL"] = model
        let status = try runScript(["/bin/bash", script, "start"], environment: env)
        guard status == 0, let s = running() else {
            throw Failure(description: "the local server did not start (exit \(status)); see the lines above")
        }
        return s
    }

    /// Runs `argv` with stdin and stdout on /dev/null (its stderr is ours: the script's progress
    /// lines) and waits for it. posix_spawn and waitpid rather than Foundation's Process, whose
    /// waitUntilExit never returned here once the script had left llama-server running in the
    /// background (the script exited, and stayed a zombie nobody reaped).
    static func runScript(_ argv: [String], environment: [String: String]) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let args = argv.map { strdup($0) } + [nil]
        let env = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            args.forEach { free($0) }
            env.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, args, env)
        guard rc == 0 else { throw Failure(description: "cannot run \(argv[1]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(description: "waiting for \(argv[1]): \(String(cString: strerror(errno)))") }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import: low 7 bits 0 means it exited.
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    static func running() -> State? {
        guard let text = try? String(contentsOfFile: stateFile, encoding: .utf8) else { return nil }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") { values[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        guard let url = values["URL"], let pid = values["PID"].flatMap({ pid_t($0) }), kill(pid, 0) == 0 else { return nil }
        return State(url: url, model: values["MODEL"] ?? "local", file: values["MODEL_PATH"] ?? "?", contextSize: values["CTX_SIZE"].flatMap { Int($0) })
    }

    static func findScript() -> String? {
        if let p = ProcessInfo.processInfo.environment["PROMPTLINE_LOCAL_LLM"], FileManager.default.isExecutableFile(atPath: p) { return p }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("scripts/local-llm").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}
