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

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let err = Output(fd: STDERR_FILENO)
        // Flags override the config file; the config file overrides built-in defaults.
        let settings: Config
        do {
            settings = try Config.load(config.map(Session.expand) ?? Config.defaultPath())
        } catch {
            err.error("\(error)")
            throw ExitCode(2)
        }
        var localServer: LocalServer.State?
        if local {
            do {
                localServer = try LocalServer.start(model: (localModel ?? settings.localModel).map(Session.expand))
            } catch {
                err.error("\(error)")
                throw ExitCode(2)
            }
        }
        let localURL = localServer?.url
        let configModel = local ? nil : settings.model
        let chosenProvider: Provider =
            provider.flatMap { Provider(rawValue: $0.lowercased()) }
            ?? model.map(Provider.forModel) ?? (local ? nil : settings.provider) ?? configModel.map(Provider.forModel) ?? .openAI
        let modelName = model ?? configModel ?? localServer?.model ?? (chosenProvider == .anthropic ? "claude-sonnet-4-5" : "gpt-4o-mini")

        let retry = RetryPolicy(maxAttempts: maxAttempts ?? 6)
        let transport = AsyncHTTPClientTransport(connectTimeout: 10, readTimeout: readTimeout ?? 120)
        let baseFlag = baseURL
        let allowInsecure = self.allowInsecure
        let turnLimit = turnTimeout ?? settings.turnTimeout ?? 300
        let environmentKeys = REPL.environmentKeys(env)
        let serverKinds = ServerKindCache()
        let makeClient: (Provider) throws -> QueryClient = { p in
            var base = baseFlag ?? env[p.baseURLEnvironmentVariable].flatMap { $0.isEmpty ? nil : $0 } ?? settings.baseURLs[p]
            if let localURL, baseFlag == nil {
                // llama-server speaks both: /v1/chat/completions and /v1/messages.
                base = p == .openAI ? localURL : String(localURL.dropLast(3))
            }
            let key = env[p.apiKeyEnvironmentVariable].flatMap { $0.isEmpty ? nil : $0 }
            var client = QueryClient(
                provider: p, baseURL: base, apiKey: localURL != nil && baseFlag == nil ? nil : key, defaultModel: modelName, transport: transport,
                retryPolicy: retry, serverKinds: serverKinds, allowInsecure: allowInsecure)
            client.otherSecrets = environmentKeys
            client.turnTimeout = turnLimit
            client.userAgent = "promptline/\(PromptlineVersion.current) (QueryCore; Swift)"
            return client
        }
        let client = try makeClient(chosenProvider)

        let session = Session(provider: chosenProvider, model: modelName, options: settings.options, mode: mode.flatMap(SessionMode.init) ?? settings.mode ?? .chat)
        session.prices = settings.prices
        session.forcedCall = funcVia.flatMap(ForcedCallStrategy.init(rawValue:)) ?? settings.forcedCall ?? .auto
        if localServer != nil && session.options["max_tokens"] == nil && !sets.contains(where: { $0.hasPrefix("max_tokens=") }) {
            // A small local model can ramble until its context is full: bound a turn unless told otherwise.
            session.options["max_tokens"] = .integer(LocalServer.defaultMaxTokens)
        }
        var startupCommands: [Command] = []
        if system == nil, let s = settings.system { startupCommands.append(.setSystem(s)) }
        if let s = system {
            startupCommands.append(s.hasPrefix("@") ? .loadSystem(path: String(s.dropFirst())) : .setSystem(s))
        }
        for kv in sets {
            guard let eq = kv.firstIndex(of: "=") else {
                err.error("--set takes key=value, got \(kv)")
                throw ExitCode(2)
            }
            startupCommands.append(.set(key: String(kv[..<eq]), value: String(kv[kv.index(after: eq)...])))
        }
        if let f = functionFile { startupCommands.append(.loadFunction(path: f)) }
        for c in startupCommands {
            do {
                if case .message(let m) = try session.apply(c), m.contains("note:") { err.line(block: m) }
            } catch {
                err.error("\(error)")
                throw ExitCode(2)
            }
        }

        // The history folder is promptline's own: made (or tightened to) 0700 once, here.
        try? AtomicFile.makePrivateDirectory((Paths.history as NSString).deletingLastPathComponent)
        let editor = LineEditor(configuration: .init(programName: "promptline", historyPath: Paths.history, historySize: settings.historySize ?? 1000, mode: vi ? .vi : .emacs))
        LineEditor.installInterruptHandler()
        let interactive = editor.isInteractive
        InterruptHub.shared.start(fd: LineEditor.interruptFileDescriptor) {
            // Ctrl-C while no turn runs and no line is being edited (reading a pipe): leave.
            if !interactive { Foundation.exit(130) }
        }
        let store = TranscriptStore(directory: TranscriptStore.defaultDirectory())
        let repl = REPL(session: session, client: client, makeClient: makeClient, editor: editor, stream: !noStream, store: store)
        if let resume {
            let path: String
            if resume == "last" {
                guard let last = store.recent(limit: 1).first else {
                    err.error("--resume last: no saved sessions in \(store.directory)")
                    throw ExitCode(2)
                }
                path = last.path
            } else {
                path = Session.expand(resume)
            }
            do {
                try repl.resume(path)
            } catch {
                err.error("\(error)")
                throw ExitCode(2)
            }
            err.dim("resumed \(path): \(repl.transcript.turnCount) turns, \(session.history.count) messages in the conversation")
        }
        if let localServer {
            // Said on stderr even when piped: which model answers, and how much it can hold.
            err.dim("local model \(localServer.model) (\((localServer.file as NSString).lastPathComponent), context \(localServer.contextSize.map(String.init) ?? "?") tokens) at \(localServer.url)")
        }
        if interactive {
            let out = Output()
            out.dim("promptline \(PromptlineVersion.current) · \(chosenProvider.rawValue):\(modelName) at \(Redactor.url(client.baseURL)) · :help for commands, Ctrl-D to quit")
        }
        let status = await repl.run()
        if status != 0 { throw ExitCode(status) }
    }
}

/// Where promptline keeps its files (XDG base directories).
enum Paths {
    static var env: [String: String] { ProcessInfo.processInfo.environment }
    static func xdg(_ variable: String, _ fallback: String) -> String {
        if let v = env[variable], v.hasPrefix("/") { return v }
        return NSHomeDirectory() + "/" + fallback
    }
    static var history: String { xdg("XDG_STATE_HOME", ".local/state") + "/promptline/history" }
}

/// The local llama.cpp server managed by scripts/local-llm.
enum LocalServer {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// `max_tokens` for --local turns unless set: a small model can otherwise ramble until its
    /// context is full.
    static let defaultMaxTokens: Int64 = 512

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
