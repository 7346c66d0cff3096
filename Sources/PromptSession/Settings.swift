import Foundation
import QueryCore

/// The command line as values, before anything is decided from it.
public struct Flags: Equatable, Sendable {
    public var model: String?
    public var baseURL: String?
    public var system: String?
    public var sets: [String] = []
    public var functionFile: String?
    public var mode: SessionMode?
    public var provider: Provider?
    public var local = false
    public var funcVia: ForcedCallStrategy?
    /// `--tool FILE`, repeatable; `--choice`, `--mock FILE`, `--schema FILE`.
    public var tools: [String] = []
    /// `--var name=value`, repeatable.
    public var vars: [String] = []
    public var choice: String?
    public var mock: String?
    public var schema: String?
    /// `--ca-file PEM`.
    public var caFile: String?
    public var maxAttempts: Int?
    public var readTimeout: Double?
    public var turnTimeout: Double?

    public init() {}
}

/// Everything a run starts with, decided once from the flags, the environment and the config
/// file: flags win over the environment, the environment over the config file, the config file
/// over built-in defaults (see ``resolve(flags:environment:config:local:)``).
public struct ResolvedSettings: Equatable, Sendable {
    public var provider: Provider
    public var model: String
    public var mode: SessionMode
    public var options: QueryOptions
    public var forcedCall: ForcedCallStrategy
    /// `:system` / `:set` / `:func` lines the session applies before the first prompt, so a bad
    /// value gets the same one-line error it would get typed.
    public var startupCommands: [Command]
    public var maxAttempts: Int
    public var readTimeout: Double
    public var turnTimeout: Double
    public var historySize: Int
    public var prices: PriceTable
    /// Per provider: the base URL (nil: the provider's own) and the key to send.
    public var endpoints: [Provider: Endpoint]
    /// `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`; nil when no proxy is set.
    public var proxy: ProxySettings?
    /// `--ca-file`, else `SSL_CERT_FILE`: certificate authorities trusted besides the system's.
    public var caFile: String?

    /// Values given with `--var`, `--set` or the config file under a name that says it is a
    /// secret (`…key…`, `…token…`, `…secret…`, `…password…`): redacted like the API keys, even
    /// when no environment variable holds them.
    public var secretValues: [String] {
        var values: [String] = []
        for c in startupCommands {
            switch c {
            case .setVar(let name, let value) where Self.looksSecret(name): values.append(value)
            case .set(let key, let value) where Self.looksSecret(key): values.append(value)
            default: break
            }
        }
        for (k, v) in options where Self.looksSecret(k) { if let s = v.stringValue { values.append(s) } }
        return values.filter { $0.count >= 8 }
    }

    /// Whether a variable or option name says its value is a secret.
    public static func looksSecret(_ name: String) -> Bool {
        let n = name.lowercased()
        return ["key", "token", "secret", "password", "passwd", "credential"].contains { n.contains($0) }
    }

    public struct Endpoint: Equatable, Sendable {
        public var baseURL: String?
        public var apiKey: String?

        public init(baseURL: String? = nil, apiKey: String? = nil) {
            self.baseURL = baseURL
            self.apiKey = apiKey
        }
    }

    /// Options `--local` turns are sent with unless the config file or `--set` sets them (they
    /// show in `:set` and `:request`, and `:unset` drops them):
    /// - `max_tokens` 512: a small model can otherwise ramble until its context is full;
    /// - `temperature` 0.3 and `repeat_penalty` 1.1: at the server's default sampling (0.8, 1.0)
    ///   SmolLM2-135M sometimes opens a forced call's JSON string with `)` or `;` and runs on
    ///   until `max_tokens`. The 10 extraction prompts of scripts/bench through json-schema,
    ///   20 rounds each, on this machine: 196/200 schema-valid at the server's defaults, 198/200
    ///   with repeat_penalty 1.1 and temperature 0.6, 200/200 with 1.1 and 0.3. Plain replies
    ///   to five everyday prompts (a haiku, a joke, …), 20 in all, ran on to a 200-token limit
    ///   5 times at the server's defaults, once with these.
    public static let localDefaults: QueryOptions = [
        "max_tokens": .integer(512), "temperature": .double(0.3), "repeat_penalty": .double(1.1),
    ]

    /// The environment variables a provider's base URL and key come from.
    public static func environmentNames(_ p: Provider) -> (baseURL: String, apiKey: String) {
        switch p {
        case .openAI, .openAIResponses: return ("OPENAI_BASE_URL", "OPENAI_API_KEY")
        case .anthropic: return ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")
        }
    }

    /// Decides the run's settings. `local`: what `--local` found running — the OpenAI base URL
    /// (`http://127.0.0.1:8080/v1`) and the name it serves its model under. Pure: no files, no network (the caller reads the config file
    /// and starts the local server).
    /// - Throws: ``SessionError`` for a `--set` that is not `key=value`.
    public static func resolve(
        flags: Flags, environment: [String: String], config: Config, local: (url: String, model: String)? = nil
    ) throws -> ResolvedSettings {
        // With --local the config file's model and provider are for remote runs: the local
        // server decides the model.
        let configModel = local == nil ? config.model : nil
        let provider =
            flags.provider ?? flags.model.map(Provider.forModel) ?? (local == nil ? config.provider : nil)
            ?? configModel.map(Provider.forModel) ?? .openAI
        let model =
            flags.model ?? configModel ?? local?.model ?? (provider == .anthropic ? "claude-sonnet-4-5" : "gpt-4o-mini")
        do {
            try Session.checkModelName(model)
        } catch let e as SessionError {
            throw SessionError((flags.model != nil ? "--model: " : "the config's model: ") + e.message)
        }
        var options = config.options
        let commands = try startupCommands(flags: flags, config: config)
        if local != nil {
            for (key, value) in localDefaults
            where options[key] == nil && !commands.contains(where: { Self.setsKey($0, key) }) {
                options[key] = value
            }
        }
        return ResolvedSettings(
            provider: provider, model: model, mode: flags.mode ?? config.mode ?? .chat, options: options,
            forcedCall: flags.funcVia ?? config.forcedCall ?? .auto,
            startupCommands: commands, maxAttempts: flags.maxAttempts ?? 6,
            readTimeout: flags.readTimeout ?? 120, turnTimeout: flags.turnTimeout ?? config.turnTimeout ?? 300,
            historySize: config.historySize ?? 1000, prices: config.prices,
            endpoints: try endpoints(flags: flags, environment: environment, config: config, local: local),
            proxy: try ProxySettings(environment: environment),
            caFile: try caFile(flags.caFile ?? environment["SSL_CERT_FILE"].flatMap { $0.isEmpty ? nil : $0 }))
    }

    /// A CA file that exists and can be read, or one error naming it.
    static func caFile(_ path: String?) throws -> String? {
        guard let path else { return nil }
        let p = Session.expand(path)
        guard FileManager.default.isReadableFile(atPath: p) else {
            throw SessionError("CA file \(path) cannot be read (--ca-file or SSL_CERT_FILE names a PEM file)")
        }
        return p
    }

    static func startupCommands(flags: Flags, config: Config) throws -> [Command] {
        var commands: [Command] = []
        if let s = flags.system {
            commands.append(s.hasPrefix("@") ? .loadSystem(path: String(s.dropFirst())) : .setSystem(s))
        } else if let s = config.system {
            commands.append(.setSystem(s))
        }
        for kv in flags.sets {
            guard let eq = kv.firstIndex(of: "=") else { throw SessionError("--set takes key=value, got \(kv)") }
            let key = kv[..<eq].trimmingCharacters(in: .whitespaces)
            commands.append(.set(key: key, value: kv[kv.index(after: eq)...].trimmingCharacters(in: .whitespaces)))
        }
        if let f = flags.functionFile { commands.append(.loadFunction(path: f)) }
        for (k, v) in config.vars.sorted(by: { $0.key < $1.key }) { commands.append(.setVar(name: k, value: v)) }
        for kv in flags.vars {
            guard let eq = kv.firstIndex(of: "="), Template.isValidName(String(kv[..<eq])) else {
                throw SessionError("--var takes name=value (a name of letters, digits, _ - and .), got \(kv)")
            }
            commands.append(.setVar(name: String(kv[..<eq]), value: String(kv[kv.index(after: eq)...])))
        }
        return commands + toolCommands(flags: flags, config: config)
    }

    /// Tools first (a choice names one of them), then the choice, mock, schema and round limit.
    static func toolCommands(flags: Flags, config: Config) -> [Command] {
        var commands = (flags.tools.isEmpty ? config.tools : flags.tools).map { Command.loadTools(path: $0) }
        if let c = flags.choice ?? config.choice { commands.append(.choice(c)) }
        if let m = flags.mock ?? config.mock { commands.append(.loadMock(path: m)) }
        if let s = flags.schema ?? config.schema { commands.append(.loadSchema(path: s)) }
        if let n = config.maxToolRounds { commands.append(.set(key: "max_tool_rounds", value: String(n))) }
        if let g = config.grader { commands.append(.grader(g)) }
        return commands
    }

    static func setsKey(_ c: Command, _ key: String) -> Bool {
        if case .set(let k, _) = c { return k == key }
        return false
    }

    /// `--base-url` for every provider; else the provider's environment variable, else the config
    /// file's `base_urls`. With `--local` (and no `--base-url`) the local server answers both
    /// APIs, and no key is sent to it.
    static func endpoints(
        flags: Flags, environment: [String: String], config: Config, local: (url: String, model: String)?
    ) throws
        -> [Provider: Endpoint]
    {
        var out: [Provider: Endpoint] = [:]
        for p in Provider.allCases {
            let names = environmentNames(p)
            let fromEnvironment = environment[names.baseURL].flatMap { $0.isEmpty ? nil : $0 }
            var base = flags.baseURL ?? fromEnvironment ?? config.baseURLs[p]
            if let base {
                let source =
                    flags.baseURL != nil
                    ? "--base-url" : fromEnvironment != nil ? names.baseURL : "base_urls.\(p.rawValue) in the config"
                try checkBaseURL(base, source: source, example: p.defaultBaseURL)
            }
            var key = environment[names.apiKey].flatMap { $0.isEmpty ? nil : $0 }
            if let local, flags.baseURL == nil {
                // llama-server speaks both: /v1/chat/completions and /v1/messages.
                base = p.isOpenAI ? local.url : String(local.url.dropLast(local.url.hasSuffix("/v1") ? 3 : 0))
                key = nil
            }
            out[p] = Endpoint(baseURL: base, apiKey: key)
        }
        return out
    }

    /// A base URL the client can use: `http` or `https`, with a host. Checked at start, so a
    /// typo is one line naming where it came from, not a transport error at the first turn.
    static func checkBaseURL(_ url: String, source: String, example: String) throws {
        let c = URLComponents(string: url)
        guard let scheme = c?.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = c?.host, !host.isEmpty
        else {
            throw SessionError("\(source) \(Redactor.url(url)) is not an http(s) URL; give one like \(example)")
        }
    }
}
