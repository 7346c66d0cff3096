import Foundation
import QueryCore

/// An eval file: prompts × providers × tests with assertions, in a small subset of promptfoo's
/// config shape (`promptfooconfig.yaml`), so that a simple promptfoo config runs as it is. What
/// promptline does not do is ignored and said in ``ignored``, one note a key.
///
/// ```yaml
/// description: capitals
/// prompts: ["What is the capital of {{country}}?", {label: terse, raw: "Capital of {{country}}? One word."}]
/// providers: [openai:gpt-4o-mini, {id: "anthropic:messages:claude-sonnet-4-5", config: {temperature: 0}}]
/// defaultTest: {assert: [{type: icontains, value: "{{expected}}"}]}
/// tests:
///   - vars: {country: France, expected: Paris}
///   - vars: {country: Japan, expected: Tokyo}
///     assert: [{type: not-contains, value: Kyoto, weight: 2}]
/// threshold: 0.8    # each variant's pass rate must reach it (promptline; default 1: every row)
/// repeat: 3         # each row sent 3 times: pass@3 and stability
/// ```
public struct EvalFile: Sendable {
    /// A prompt template and how the matrix names it.
    public struct Prompt: Sendable, Equatable {
        public var label: String
        public var template: String
    }

    /// A provider entry: the model, the wire format when the id names one, and its options.
    public struct Target: Sendable, Equatable {
        public var label: String
        public var model: String?
        public var provider: Provider?
        public var options: [String: JSONValue]
    }

    /// A test: a row of variables and what it is checked with.
    public struct Test: Sendable {
        public var vars: [String: String]
        public var assertions: [Assertion]
        public var threshold: Double?
    }

    public var path: String
    public var description: String?
    public var prompts: [Prompt] = []
    /// Empty: the session's own model and provider.
    public var providers: [Target] = []
    /// promptline's `variants: {temperature: [0, 0.7]}`: `:compare` keys over every provider.
    public var axes: [CompareAxis] = []
    public var tests: [Test] = []
    /// The pass rate each variant must reach, 0 to 1.
    public var threshold: Double = 1
    public var repeats = 1
    public var concurrency: Int?
    /// What was ignored: `description: key or type, where`.
    public var ignored: [String] = []

    /// The name results files are kept under: the file's name without its extension.
    public var name: String { ((path as NSString).lastPathComponent as NSString).deletingPathExtension }

    /// Reads and checks an eval file (YAML or JSON).
    /// - Throws: ``SessionError`` naming the file and the key at fault, with what was expected.
    public static func load(_ path: String) throws -> EvalFile {
        let doc: JSONValue
        do {
            doc = try FunctionSpec.document(contentsOf: path)
        } catch let e as FunctionSpecError {
            throw SessionError("eval file \(path): \(e.reasonText)")
        }
        do {
            return try EvalFile(doc, path: path)
        } catch let e as SessionError {
            throw SessionError("eval file \(path): \(e.message)")
        }
    }

    /// The top-level keys read; promptfoo's others are noted as ignored, anything else refused.
    static let keys: Set<String> = [
        "description", "prompts", "providers", "tests", "defaultTest", "threshold", "repeat", "evaluateOptions",
        "variants",
    ]
    static let promptfooKeys: Set<String> = [
        "sharing", "outputPath", "scenarios", "derivedMetrics", "env", "extensions", "nunjucksFilters", "tags",
        "writeLatestResults", "commandLineOptions", "redteam", "metadata", "tracing", "$schema",
    ]

    init(_ doc: JSONValue, path: String) throws {
        self.path = path
        guard let top = doc.objectValue else {
            throw SessionError("the file must be a mapping (prompts, providers, tests, …)")
        }
        for (key, _) in top where !Self.keys.contains(key) {
            guard Self.promptfooKeys.contains(key) else {
                throw SessionError(
                    "\(key) is not an eval file key; one of \(Self.keys.sorted().joined(separator: ", "))")
            }
            ignored.append("\(key) (promptfoo's, not used here)")
        }
        description = top["description"]?.stringValue
        prompts = try Self.prompts(top["prompts"], base: path)
        providers = try (top["providers"].map { try Self.list($0, "providers") } ?? []).enumerated().map {
            try Self.target($1, at: "providers[\($0)]", ignored: &ignored)
        }
        axes = try Self.axes(top["variants"])
        try readOptions(top)
        let defaults = try top["defaultTest"].map { try test($0, at: "defaultTest") }
        tests = try readTests(top["tests"], defaults: defaults)
        guard !tests.isEmpty else {
            throw SessionError(
                "tests is empty: give tests (a list of {vars, assert}) or a dataset file (tests: rows.jsonl)")
        }
    }

    /// `threshold`, `repeat` and promptfoo's `evaluateOptions` (`maxConcurrency`, `repeat`).
    mutating func readOptions(_ top: JSONObject) throws {
        if let t = top["threshold"] {
            guard let d = t.doubleValue, (0...1).contains(d) else {
                throw SessionError("threshold is the pass rate each variant must reach, from 0 to 1 (e.g. 0.8)")
            }
            threshold = d
        }
        let options = top["evaluateOptions"]?.objectValue ?? [:]
        for (k, _) in options where !["maxConcurrency", "repeat"].contains(k) {
            ignored.append("evaluateOptions.\(k)")
        }
        if let r = top["repeat"] ?? options["repeat"] {
            guard let n = r.intValue, (1...BatchCommand.maxRepeats).contains(n) else {
                throw SessionError("repeat is how many times each row is sent, from 1 to \(BatchCommand.maxRepeats)")
            }
            repeats = n
        }
        if let c = options["maxConcurrency"] {
            guard let n = c.intValue, (1...64).contains(n) else {
                throw SessionError("evaluateOptions.maxConcurrency must be from 1 to 64")
            }
            concurrency = n
        }
    }

    static func list(_ v: JSONValue, _ key: String) throws -> [JSONValue] {
        if let a = v.arrayValue { return a }
        if v.stringValue != nil || v.objectValue != nil { return [v] }
        throw SessionError("\(key) must be a list")
    }

    /// `prompts`: texts, `{raw|prompt, label|id}` objects, or `file://` paths (read relative to the file).
    static func prompts(_ v: JSONValue?, base: String) throws -> [Prompt] {
        guard let v else { throw SessionError("prompts is missing: give at least one prompt template") }
        let items = try list(v, "prompts")
        guard !items.isEmpty else { throw SessionError("prompts is empty: give at least one prompt template") }
        var out: [Prompt] = []
        for (i, item) in items.enumerated() {
            var text = item.stringValue ?? item["raw"]?.stringValue ?? item["prompt"]?.stringValue
            guard var t = text else {
                throw SessionError("prompts[\(i)] must be a text or {raw: TEXT, label: NAME}")
            }
            if t.hasPrefix("file://") {
                t = try Session.readText(relative(String(t.dropFirst(7)), to: base), what: "prompt")
            }
            text = t
            let label = item["label"]?.stringValue ?? item["id"]?.stringValue ?? "prompt \(i + 1)"
            guard !out.contains(where: { $0.label == label }) else {
                throw SessionError("prompts[\(i)]: the label \(label) is used twice")
            }
            out.append(Prompt(label: label, template: t))
        }
        return out
    }

    /// A path as written in the file: relative to the file's folder unless absolute or `~`.
    static func relative(_ p: String, to base: String) -> String {
        let e = Session.expand(p)
        if e.hasPrefix("/") { return e }
        let dir = (base as NSString).deletingLastPathComponent
        return dir.isEmpty ? e : dir + "/" + e
    }

    /// `openai:gpt-4o-mini`, `openai:chat:M`, `openai:responses:M`, `anthropic:messages:M`,
    /// `anthropic:M`, a bare model name, or `{id, label, config}`.
    static func target(_ v: JSONValue, at: String, ignored: inout [String]) throws -> Target {
        guard let id = v.stringValue ?? v["id"]?.stringValue, !id.isEmpty else {
            throw SessionError("\(at) must be a provider id (openai:gpt-4o-mini) or {id: …, label: …, config: {…}}")
        }
        let parts = id.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var t = Target(label: v["label"]?.stringValue ?? id, model: nil, provider: nil, options: [:])
        switch (parts.first ?? "", parts.count) {
        case ("openai", 2): (t.provider, t.model) = (.openAI, parts[1])
        case ("openai", 3) where parts[1] == "chat": (t.provider, t.model) = (.openAI, parts[2])
        case ("openai", 3) where parts[1] == "responses": (t.provider, t.model) = (.openAIResponses, parts[2])
        case ("anthropic", 2): (t.provider, t.model) = (.anthropic, parts[1])
        case ("anthropic", 3) where parts[1] == "messages": (t.provider, t.model) = (.anthropic, parts[2])
        case (_, 1): t.model = id  // a model name: its provider as --model decides
        default:
            throw SessionError(
                "\(at): \(id) is not a provider promptline speaks; use openai:MODEL, openai:responses:MODEL, "
                    + "anthropic:messages:MODEL or a model name")
        }
        guard let model = t.model, !model.isEmpty, !model.contains(" ") else {
            throw SessionError("\(at): \(id) names no model")
        }
        for (k, value) in v["config"]?.objectValue ?? [:] {
            let key = ["maxTokens": "max_tokens", "topP": "top_p"][k] ?? k
            if ["apiKey", "apiBaseUrl", "apiHost", "organization", "headers"].contains(k) {
                ignored.append("\(at).config.\(k) (keys and URLs come from the environment and --base-url)")
                continue
            }
            _ = try OptionValues.check(key, value)
            t.options[key] = value
        }
        return t
    }

    /// promptline's `variants`: a mapping of `:compare` keys to lists of values.
    static func axes(_ v: JSONValue?) throws -> [CompareAxis] {
        guard let v else { return [] }
        guard let o = v.objectValue else {
            throw SessionError("variants maps option names to lists of values (variants: {temperature: [0, 0.7]})")
        }
        return try o.map { k, values in
            let list = values.arrayValue ?? [values]
            guard !list.isEmpty else { throw SessionError("variants.\(k) lists no values") }
            return CompareAxis(key: k, values: list.map { $0.stringValue ?? $0.serialized() })
        }
    }

    /// `tests`: a list of tests (or of dataset files, `file://` or not), or one dataset file.
    mutating func readTests(_ v: JSONValue?, defaults: Test?) throws -> [Test] {
        guard let v else { throw SessionError("tests is missing: give a list of {vars, assert} or a dataset file") }
        var out: [Test] = []
        for (i, item) in try Self.list(v, "tests").enumerated() {
            if var p = item.stringValue {
                if p.hasPrefix("file://") { p = String(p.dropFirst(7)) }
                let file = try BatchFile.load(Self.relative(p, to: path))
                for (n, row) in file.rows.enumerated() {
                    let own = try BatchRunner.rowAssertions(row, at: n)
                    out.append(Test(vars: row, assertions: own, threshold: nil))
                }
            } else {
                out.append(try test(item, at: "tests[\(i)]"))
            }
        }
        guard let defaults else { return out }
        return out.map { t in
            Test(
                vars: defaults.vars.merging(t.vars) { _, own in own }, assertions: defaults.assertions + t.assertions,
                threshold: t.threshold ?? defaults.threshold)
        }
    }

    /// One test (or `defaultTest`): `vars`, `assert`, `threshold`; promptfoo's other keys noted.
    mutating func test(_ v: JSONValue, at: String) throws -> Test {
        guard let o = v.objectValue else { throw SessionError("\(at) must be a mapping of vars and assert") }
        for (k, _) in o where !["vars", "assert", "threshold", "description"].contains(k) {
            ignored.append("\(at).\(k)")
        }
        var vars: [String: String] = [:]
        if let given = o["vars"] {
            guard let m = given.objectValue else { throw SessionError("\(at).vars must map names to values") }
            for (k, value) in m { vars[k] = value.stringValue ?? value.serialized() }
        }
        var assertions: [Assertion] = []
        let listed = try o["assert"].map { try Self.list($0, "\(at).assert") } ?? []
        for (k, a) in listed.enumerated() {
            if let parsed = try assertion(a, at: "\(at).assert[\(k)]") { assertions.append(parsed) }
        }
        var threshold: Double?
        if let t = o["threshold"] {
            guard let d = t.doubleValue, d >= 0 else { throw SessionError("\(at).threshold is a score from 0 to 1") }
            threshold = d
        }
        return Test(vars: vars, assertions: assertions, threshold: threshold)
    }

    /// promptfoo's assertion types promptline does not run: noted, not refused.
    static let otherPromptfooTypes: Set<String> = [
        "javascript", "python", "webhook", "similar", "rouge-n", "bleu", "gleu", "meteor", "g-eval",
        "model-graded-closedqa", "model-graded-factuality", "context-recall", "context-relevance",
        "context-faithfulness", "perplexity", "perplexity-score", "moderation", "select-best", "classifier",
        "is-valid-openai-tools-call", "is-valid-openai-function-call", "is-sql", "contains-sql", "is-xml",
        "contains-xml", "is-html", "contains-html", "is-refusal", "guardrails", "human", "icontains-all",
        "icontains-any", "regex-all", "trace-span-count", "word-count", "equals-json", "tool-call-f1", "pi",
    ]

    /// An assertion of the file: `{type, value, weight, threshold}` with promptfoo's meanings
    /// (`latency`'s threshold in milliseconds, `cost`'s in dollars). nil: a type not run here.
    mutating func assertion(_ v: JSONValue, at: String) throws -> Assertion? {
        guard let type = v["type"]?.stringValue else {
            throw SessionError("\(at) needs a type (e.g. {type: contains, value: Paris})")
        }
        let base = type.hasPrefix("not-") ? String(type.dropFirst(4)) : type
        if Assertion.Kind(rawValue: base) == nil && Self.otherPromptfooTypes.contains(base) {
            ignored.append("\(at): type \(type)")
            return nil
        }
        var json = v.objectValue ?? [:]
        for (k, _) in json where !["type", "value", "weight", "threshold"].contains(k) { ignored.append("\(at).\(k)") }
        if ["latency", "cost"].contains(base), json["value"] == nil, let t = json["threshold"]?.doubleValue {
            // promptfoo gives latency in milliseconds and cost in dollars as a threshold.
            json["value"] = .string(Assertion.number(base == "latency" ? t / 1000 : t))
            json["threshold"] = nil
        }
        do {
            return try Assertion(json: .object(json))
        } catch let e as SessionError {
            throw SessionError("\(at): \(e.message.replacingOccurrences(of: ":assert ", with: ""))")
        }
    }

    /// The tests as a batch sees them: rows of variables and what each is checked with.
    public var rows: [[String: String]] { tests.map(\.vars) }
    public var rowChecks: [BatchRunner.RowChecks] {
        tests.map { BatchRunner.RowChecks(assertions: $0.assertions, threshold: $0.threshold) }
    }

    /// The matrix's columns: each prompt × provider × `variants` combination, named by what varies.
    /// - Throws: ``SessionError`` for an option the provider refuses or more than 16 combinations.
    public func variants(session: Session) throws -> [Session.Variant] {
        let targets = providers.isEmpty ? [nil] : providers.map(Optional.some)
        var out: [Session.Variant] = []
        for prompt in prompts {
            for target in targets {
                var v = Session.Variant(
                    label: "", model: session.model, options: session.queryOptions, provider: session.provider,
                    template: prompt.template)
                if let t = target, let model = t.model {
                    v.model = model
                    v.provider = t.provider ?? Provider.forModel(model)
                    for (k, value) in t.options { v.options[k] = value }
                    if let bad = v.options.keys.compactMap({ v.provider.refusalReason(option: $0) }).first {
                        throw SessionError("\(t.label): \(bad)")
                    }
                }
                var parts: [String] = []
                if prompts.count > 1 { parts.append(prompt.label) }
                if providers.count > 1, let t = target { parts.append(t.label) }
                v.label = parts.joined(separator: " · ")
                out += try session.variants(axes, from: v)
            }
        }
        guard out.count <= 16 else {
            throw SessionError(
                "the file makes \(out.count) combinations of prompts, providers and variants; 16 at most")
        }
        return out
    }
}
