import Foundation
import QueryCore
import Yams

/// Prices per million tokens, by model name. A model not in the table has an unknown cost —
/// never 0 (except where the table says 0, as for the local model).
public struct PriceTable: Equatable, Sendable {
    public struct Price: Equatable, Sendable {
        public var input: Double
        public var output: Double
        /// Input read from the provider's prompt cache (nil: priced as input).
        public var cachedInput: Double?
        public init(input: Double, output: Double, cachedInput: Double? = nil) {
            (self.input, self.output, self.cachedInput) = (input, output, cachedInput)
        }
    }

    public var prices: [String: Price]

    /// Documented defaults (USD per million tokens, list prices as of 2026-11); a config file
    /// overrides or extends them.
    public static let defaults = PriceTable(prices: [
        "gpt-4o-mini": Price(input: 0.15, output: 0.60, cachedInput: 0.075),
        "gpt-4o": Price(input: 2.50, output: 10.00, cachedInput: 1.25),
        "gpt-4.1-mini": Price(input: 0.40, output: 1.60, cachedInput: 0.10),
        "gpt-4.1": Price(input: 2.00, output: 8.00, cachedInput: 0.50),
        "gpt-5": Price(input: 1.25, output: 10.00, cachedInput: 0.125),
        "gpt-5-mini": Price(input: 0.25, output: 2.00, cachedInput: 0.025),
        "o4-mini": Price(input: 1.10, output: 4.40, cachedInput: 0.275),
        "claude-sonnet-4-5": Price(input: 3.00, output: 15.00, cachedInput: 0.30),
        "claude-3-5-haiku-latest": Price(input: 0.80, output: 4.00, cachedInput: 0.08),
        "smollm2-135m-instruct": Price(input: 0, output: 0),
    ])

    /// The cost of one exchange at `model`'s price (the model the response named, when the
    /// table has no price for the one asked for), or nil when the price or the usage is unknown.
    /// The one cost rule: turns, failed turns, restored turns and `:compare` variants use it.
    ///
    /// `usage` (as the server sent it) prices cached input apart: OpenAI's cached tokens are
    /// part of the input count and cost `cachedInput`; Anthropic's cache reads are not (they are
    /// added at `cachedInput`), and its cache writes cost 1.25 × input.
    public func cost(
        model: String, responseModel: String? = nil, inputTokens: Int?, outputTokens: Int?, usage: JSONValue? = nil
    ) -> Double? {
        guard let p = prices[model] ?? responseModel.flatMap({ prices[$0] }), let i = inputTokens, let o = outputTokens
        else {
            return nil
        }
        var input = Double(i) * p.input
        if let read = usage?["cache_read_input_tokens"]?.countValue {
            input += Double(read) * (p.cachedInput ?? p.input)
            input += Double(usage?["cache_creation_input_tokens"]?.countValue ?? 0) * p.input * 1.25
        } else if let cached = QueryInfo.cachedInputTokens(in: usage), let cp = p.cachedInput {
            let c = min(cached, i)
            input = Double(i - c) * p.input + Double(c) * cp
        }
        return (input + Double(o) * p.output) / 1_000_000
    }

    public static func format(_ cost: Double?) -> String {
        guard let cost else { return "unknown" }
        if cost == 0 { return "$0" }
        return cost < 0.01 ? String(format: "$%.6f", cost) : String(format: "$%.4f", cost)
    }
}

/// `$XDG_CONFIG_HOME/promptline/config.yaml`: defaults for the flags, a price table, the history
/// size. Flags override it; it overrides built-in defaults.
///
/// ```yaml
/// provider: openai            # or anthropic
/// model: gpt-4o-mini
/// base_urls: {openai: "http://127.0.0.1:8080/v1", anthropic: "https://api.anthropic.com"}
/// options: {temperature: 0.2, max_tokens: 512}
/// system: You are terse.
/// mode: chat                  # or single
/// history_size: 2000
/// func_via: auto              # or tools, named, json-schema
/// local_model: ~/models/other.gguf   # the GGUF --local serves (default: SmolLM2-135M-Instruct)
/// turn_timeout: 300           # seconds a whole turn may take, retries included
/// tools: [tools/weather.yaml]  # tool files loaded at start (:tool), one path or a list
/// choice: auto                # :choice (auto, none, required or a tool's name)
/// mock: tools/mock.yaml       # :mock
/// schema: person.schema.json  # :schema (structured output)
/// max_tool_rounds: 8          # how many times a turn sends tool results back
/// vars: {audience: engineers}  # template variables ({{audience}} in prompts)
/// markdown: true              # render replies as Markdown on a terminal (:set-view markdown)
/// prices:                     # USD per million tokens
///   my-model: {input: 0.5, output: 1.5}
/// ```
public struct Config: Equatable {
    public var provider: Provider?
    public var model: String?
    public var baseURLs: [Provider: String] = [:]
    public var options = QueryOptions()
    public var system: String?
    public var mode: SessionMode?
    public var historySize: Int?
    public var forcedCall: ForcedCallStrategy?
    public var localModel: String?
    /// Seconds a whole turn may take (every attempt and wait); `--turn-timeout` overrides it.
    public var turnTimeout: Double?
    public var prices = PriceTable.defaults
    /// Tool files, `choice`, `mock`, `schema`, `max_tool_rounds`: applied at start as the
    /// commands would be (`--tool` and the like override them).
    public var tools: [String] = []
    public var choice: String?
    public var mock: String?
    public var schema: String?
    public var maxToolRounds: Int?
    /// `grader: MODEL` or `grader: {model: M, provider: P}`: who grades llm-rubric and its presets.
    public var grader: String?
    /// Template variables set at start (`--var` adds to and overrides them).
    public var vars: [String: String] = [:]
    /// Whether replies are rendered as Markdown on a terminal (`:set-view markdown`); nil: yes.
    public var markdown: Bool?

    public init() {}

    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        XDG.directory("XDG_CONFIG_HOME", default: ".config", environment: environment) + "/promptline/config.yaml"
    }

    /// Reads the file; a missing file is an empty config, unless `required` (a file named with
    /// `--config`: a typo there must not quietly run with no config at all).
    /// - Throws: ``SessionError`` naming the file, the line and the key.
    public static func load(_ path: String, required: Bool = false) throws -> Config {
        guard FileManager.default.fileExists(atPath: path) else {
            guard !required else { throw SessionError("--config \(path): no such file") }
            return Config()
        }
        let text: String
        do {
            text = try FileReader.text(path)
        } catch {
            throw SessionError(
                error.notText ? "\(path): cannot be read as UTF-8 text" : "\(path): cannot be read (\(error))")
        }
        do {
            return try parse(text)
        } catch let e as SessionError {
            throw SessionError("\(path): \(e.message)")
        }
    }

    public static func parse(_ text: String) throws -> Config {
        let node: Node?
        do {
            node = try YAMLToJSON.compose(text)
        } catch let e as YAMLToJSON.ConversionError {
            throw SessionError(e.description)
        } catch {
            let first = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            throw SessionError("not valid YAML: \(first)")
        }
        var c = Config()
        guard let node else { return c }
        guard let map = node.mapping else {
            throw SessionError("line \(line(node)): the file must be a mapping of keys (provider, model, …)")
        }
        for (k, v) in map {
            guard let key = k.string else { throw SessionError("line \(line(k)): keys must be plain names") }
            try c.set(key, v, keyNode: k)
        }
        return c
    }

    /// Reads one top-level key of the file.
    mutating func set(_ key: String, _ v: Node, keyNode k: Node) throws {
        func str() throws -> String {
            guard let s = v.string, v.scalar != nil else {
                throw SessionError("line \(Config.line(v)): \(key) must be text")
            }
            return s
        }
        switch key {
        case "provider":
            guard let p = Provider(rawValue: try str()) else {
                throw SessionError("line \(Config.line(v)): provider must be openai, openai-responses or anthropic")
            }
            self.provider = p
        case "model": self.model = try str()
        case "system": self.system = try str()
        case "mode":
            guard let m = SessionMode(rawValue: try str()) else {
                throw SessionError("line \(Config.line(v)): mode must be chat or single")
            }
            self.mode = m
        case "func_via":
            guard let f = ForcedCallStrategy(rawValue: try str()) else {
                throw SessionError(
                    "line \(Config.line(v)): func_via must be one of "
                        + "\(ForcedCallStrategy.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            self.forcedCall = f
        case "local_model": self.localModel = try str()
        case "turn_timeout":
            guard let n = Double(v.string ?? ""), n > 0, n.isFinite else {
                throw SessionError("line \(Config.line(v)): turn_timeout must be a positive number of seconds")
            }
            self.turnTimeout = n
        case "history_size":
            guard let n = v.int, n > 0 else {
                throw SessionError("line \(Config.line(v)): history_size must be a positive integer")
            }
            self.historySize = n
        case "base_urls": self.baseURLs = try Config.baseURLs(v)
        case "options": self.options = try Config.options(v)
        case "prices": try Config.prices(v, into: &prices)
        case "markdown":
            guard let b = v.bool else { throw SessionError("line \(Config.line(v)): markdown must be true or false") }
            self.markdown = b
        default:
            guard try setToolKey(key, v) else {
                throw SessionError(
                    "line \(Config.line(k)): unknown key \(key) (provider, model, base_urls, options, "
                        + "system, mode, history_size, func_via, local_model, turn_timeout, prices, tools, "
                        + "choice, mock, schema, max_tool_rounds, vars, markdown)"
                )
            }
        }

    }

    /// The tool workbench's keys; false for any other.
    mutating func setToolKey(_ key: String, _ v: Node) throws -> Bool {
        func str() throws -> String {
            guard let s = v.string, v.scalar != nil, !s.isEmpty else {
                throw SessionError("line \(Config.line(v)): \(key) must be text")
            }
            return s
        }
        switch key {
        case "tools":
            if let list = v.sequence {
                tools = try list.map {
                    guard let s = $0.string, $0.scalar != nil else {
                        throw SessionError("line \(Config.line($0)): tools lists file paths")
                    }
                    return s
                }
            } else {
                tools = [try str()]
            }
        case "choice": choice = try str()
        case "vars":
            guard let m = v.mapping else { throw SessionError("line \(Config.line(v)): vars must map names to text") }
            for (k, val) in m {
                guard let name = k.string, Template.isValidName(name), let text = val.string, val.scalar != nil else {
                    throw SessionError("line \(Config.line(k)): vars maps variable names to text")
                }
                vars[name] = text
            }
        case "mock": mock = try str()
        case "schema": schema = try str()
        case "max_tool_rounds":
            guard let n = v.int, n >= 1, n <= 1000 else {
                throw SessionError("line \(Config.line(v)): max_tool_rounds must be a whole number from 1 to 1000")
            }
            maxToolRounds = n
        case "grader": grader = try Config.grader(v)
        default: return false
        }
        return true
    }

    /// `grader`'s words as `:grader` takes them: `MODEL [provider=P]`.
    static func grader(_ v: Node) throws -> String {
        if let s = v.string, v.scalar != nil, !s.isEmpty, !s.contains(" ") { return s }
        guard let m = v.mapping, let model = m["model"]?.string, !model.isEmpty, !model.contains(" ") else {
            throw SessionError(
                "line \(line(v)): grader is a model name, or {model: NAME, provider: openai|openai-responses|anthropic}"
            )
        }
        for (k, _) in m where !["model", "provider"].contains(k.string ?? "") {
            throw SessionError("line \(line(k)): grader takes model and provider, not \(k.string ?? "?")")
        }
        guard let p = m["provider"] else { return model }
        guard let name = p.string, Provider(rawValue: name) != nil else {
            throw SessionError("line \(line(p)): grader.provider must be openai, openai-responses or anthropic")
        }
        return "\(model) provider=\(name)"
    }

    static func baseURLs(_ v: Node) throws -> [Provider: String] {
        guard let m = v.mapping else {
            throw SessionError("line \(line(v)): base_urls must map openai/anthropic to URLs")
        }
        var out: [Provider: String] = [:]
        for (pk, pv) in m {
            guard let name = pk.string, let p = Provider(rawValue: name) else {
                throw SessionError(
                    "line \(line(pk)): base_urls.\(pk.string ?? "?") is not openai, openai-responses or anthropic")
            }
            guard let url = pv.string, URL(string: url)?.scheme != nil else {
                throw SessionError("line \(line(pv)): base_urls.\(name) must be a URL")
            }
            out[p] = url
        }
        return out
    }

    static func options(_ v: Node) throws -> QueryOptions {
        guard let m = v.mapping else {
            throw SessionError("line \(line(v)): options must be a mapping of sampling options")
        }
        var out = QueryOptions()
        for (ok, ov) in m {
            guard let name = ok.string else { throw SessionError("line \(line(ok)): option names must be text") }
            let value: JSONValue
            do { value = try YAMLToJSON.value(ov) } catch {
                throw SessionError("line \(line(ov)): options.\(name): \(error)")
            }
            do {
                _ = try OptionValues.check(name, value)
            } catch let e as SessionError {
                throw SessionError("line \(line(ov)): options.\(name): \(e.message)")
            }
            out[name] = value
        }
        return out
    }

    static func prices(_ v: Node, into table: inout PriceTable) throws {
        guard let m = v.mapping else {
            throw SessionError("line \(line(v)): prices must map model names to {input, output}")
        }
        for (mk, mv) in m {
            guard let model = mk.string else { throw SessionError("line \(line(mk)): model names must be text") }
            func usd(_ k: String) -> Double? { mv.mapping?[k]?.float ?? mv.mapping?[k]?.int.map(Double.init) }
            let cached = usd("cached_input")
            guard let i = usd("input"), let o = usd("output"), i >= 0, o >= 0, (cached ?? 0) >= 0 else {
                throw SessionError(
                    "line \(line(mv)): prices.\(model) must be {input: <USD per million>, output: <USD per million>}"
                        + " (and optionally cached_input)")
            }
            table.prices[model] = PriceTable.Price(input: i, output: o, cachedInput: cached)
        }
    }

    static func line(_ n: Node) -> Int { (n.mark?.line ?? 0) }
}
