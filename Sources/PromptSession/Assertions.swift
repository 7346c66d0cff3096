import Foundation
import QueryCore

/// One check of what a turn or a batch row produced, named as promptfoo names them, so that a
/// promptfoo user recognises them: `contains Paris`, `not-regex ^Sorry`, `cost 0.01`.
public struct Assertion: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case equals, contains, icontains
        case containsAll = "contains-all"
        case containsAny = "contains-any"
        case startsWith = "starts-with"
        case regex
        case isJSON = "is-json"
        case containsJSON = "contains-json"
        case levenshtein, cost, latency
        case finishReason = "finish-reason"
        case toolCall = "tool-call"
        case schemaValid = "schema-valid"
        /// Graded by a model: a rubric, a reference answer, the question (default: the prompt).
        case llmRubric = "llm-rubric"
        case factuality
        case answerRelevance = "answer-relevance"

        /// Whether the type needs a value (is-json and contains-json take an optional JSON Schema,
        /// answer-relevance an optional question).
        var needsValue: Bool { ![.isJSON, .containsJSON, .schemaValid, .answerRelevance].contains(self) }
    }

    public var kind: Kind
    /// `not-TYPE`: passes when the check fails.
    public var negated: Bool
    /// The value as given; `{{name}}` is filled from the row's (or the session's) variables.
    public var value: String
    public var weight: Double
    /// For `levenshtein`: the greatest distance that passes (promptfoo's default, 5).
    public var threshold: Double?

    public init(_ kind: Kind, _ value: String = "", negated: Bool = false, weight: Double = 1, threshold: Double? = nil)
    {
        (self.kind, self.value, self.negated, self.weight, self.threshold) = (kind, value, negated, weight, threshold)
    }

    /// `not-contains`, `regex`, …
    public var name: String { (negated ? "not-" : "") + kind.rawValue }

    /// How it lists: `contains "Paris"` (and its weight or threshold when not the default).
    public var summary: String {
        var s = name
        if !value.isEmpty { s += " \"\(value.oneLine)\"" }
        if weight != 1 { s += " weight=\(Self.number(weight))" }
        if let t = threshold { s += " threshold=\(Self.number(t))" }
        return s
    }

    static func number(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }

    /// An example for each error message.
    static let example = "e.g. :assert contains Paris weight=2"

    /// Reads `TYPE VALUE [weight=W] [threshold=T]`. A regex that does not compile, a missing
    /// value or a number that is not one is an error here, not when a turn is checked.
    /// - Throws: ``SessionError``: one line saying what is wrong, with an example.
    public static func parse(_ text: String) throws -> Assertion {
        guard let typeWord = text.split(separator: " ").first.map(String.init) else {
            throw SessionError(":assert needs a type and a value (\(example))")
        }
        let negated = typeWord.hasPrefix("not-")
        guard let kind = Kind(rawValue: negated ? String(typeWord.dropFirst(4)) : typeWord) else {
            throw SessionError(
                "\(typeWord.oneLine) is not an assertion type; one of "
                    + "\(Kind.allCases.map(\.rawValue).joined(separator: ", ")) (\(example))")
        }
        var a = Assertion(kind, negated: negated)
        var rest = text.trimmingCharacters(in: .whitespaces).dropFirst(typeWord.count)
            .trimmingCharacters(in: .whitespaces)
        while let last = rest.split(separator: " ").last, let eq = last.firstIndex(of: "="),
            ["weight", "threshold"].contains(last[..<eq])
        {
            let key = String(last[..<eq])
            guard let d = Double(last[last.index(after: eq)...]), d.isFinite, d >= 0 else {
                throw SessionError("\(key) takes a number ≥ 0, not \(String(last).oneLine) (e.g. \(key)=2)")
            }
            if key == "weight" { a.weight = d } else { a.threshold = d }
            rest = String(rest.dropLast(last.count)).trimmingCharacters(in: .whitespaces)
        }
        a.value = rest
        try a.validate()
        return a
    }

    /// What can be checked before any output: a value where one is needed, numbers, a regex, JSON.
    func validate() throws {
        let v = value
        if kind.needsValue && v.isEmpty {
            throw SessionError(":assert \(name) needs a value (e.g. :assert \(name) \(Self.sample(kind)))")
        }
        let filled = Template.isTemplate(v) ? nil : v  // a template is checked once filled
        switch kind {
        case .cost, .latency:
            guard let f = filled else { return }
            guard let d = Double(f), d.isFinite, d >= 0 else {
                throw SessionError(
                    ":assert \(name) takes a number ≥ 0, not \(f.oneLine) (e.g. :assert \(name) \(Self.sample(kind)))")
            }
        case .regex:
            guard let f = filled else { return }
            do { _ = try NSRegularExpression(pattern: f) } catch {
                throw SessionError(
                    ":assert regex: \(f.oneLine) is not a valid regular expression (e.g. :assert regex ^[0-9]+$)")
            }
        case .isJSON, .containsJSON:
            guard let f = filled, !f.isEmpty else { return }
            guard case .object = try? JSONValue.parse(f) else {
                throw SessionError(
                    ":assert \(name) takes an optional JSON Schema object (e.g. :assert \(name) {\"type\":\"object\"})")
            }
        case .toolCall:
            guard let f = filled else { return }
            _ = try Self.toolCallValue(f)
        case .schemaValid:
            guard v.isEmpty else {
                throw SessionError(":assert schema-valid takes no value (e.g. :assert schema-valid)")
            }
        default: return
        }
    }

    static func sample(_ k: Kind) -> String {
        switch k {
        case .cost: return "0.01"
        case .latency: return "2.5"
        case .finishReason: return "stop"
        case .toolCall: return "get_weather {\"city\":\"Paris\"}"
        case .containsAll, .containsAny: return "Paris,London"
        case .regex: return "^[0-9]+$"
        case .llmRubric: return "is polite and names one city"
        case .factuality: return "Paris is the capital of France"
        default: return "Paris"
        }
    }

    /// `NAME [ARGUMENTS-JSON]`.
    static func toolCallValue(_ v: String) throws -> (name: String, arguments: JSONValue?) {
        let name = String(v.prefix { !$0.isWhitespace })
        let rest = v.dropFirst(name.count).trimmingCharacters(in: .whitespaces)
        if rest.isEmpty { return (name, nil) }
        guard let args = try? JSONValue.parse(rest) else {
            throw SessionError(
                ":assert tool-call takes a tool name and optional JSON arguments (e.g. :assert tool-call get_weather {\"city\":\"Paris\"})"
            )
        }
        return (name, args)
    }

    /// From a dataset's `assert` column: `{"type": "contains", "value": "x", "weight": 2}`.
    /// - Throws: ``SessionError`` naming what is wrong with the object.
    public init(json: JSONValue) throws {
        guard let type = json["type"]?.stringValue else {
            throw SessionError("an assertion needs a \"type\" (e.g. {\"type\":\"contains\",\"value\":\"Paris\"})")
        }
        var words = [type]
        if let v = json["value"], v != .null { words.append(v.stringValue ?? v.serialized()) }
        self = try Self.parse(words.joined(separator: " "))
        if let w = json["weight"] {
            guard let d = w.doubleValue, d >= 0 else { throw SessionError("an assertion's weight is a number ≥ 0") }
            weight = d
        }
        if let t = json["threshold"] {
            guard let d = t.doubleValue, d >= 0 else { throw SessionError("an assertion's threshold is a number ≥ 0") }
            threshold = d
        }
    }
}

/// What a turn or a batch row produced, as the assertions see it.
public struct AssertionInput: Sendable {
    public var output: TranscriptEvent.Output
    public var finishReason: String?
    public var cost: Double?
    /// Seconds.
    public var latency: Double?
    /// What the output is checked against (the function, tools and output schema it was sent with).
    public var functionSpec: FunctionSpec?
    public var tools: [FunctionSpec]
    public var schema: FunctionSpec?
    public var vars: [String: String]
    /// The prompt sent (what `answer-relevance` asks about by default).
    public var prompt: String
    /// The grader's verdicts on the model-graded assertions, by type and filled value.
    public var grades = Grades()

    public init(
        output: TranscriptEvent.Output, finishReason: String? = nil, cost: Double? = nil, latency: Double? = nil,
        functionSpec: FunctionSpec? = nil, tools: [FunctionSpec] = [], schema: FunctionSpec? = nil,
        vars: [String: String] = [:], prompt: String = ""
    ) {
        (self.output, self.finishReason, self.cost, self.latency) = (output, finishReason, cost, latency)
        (self.functionSpec, self.tools, self.schema, self.vars) = (functionSpec, tools, schema, vars)
        self.prompt = prompt
    }

    /// The text the text assertions look at: the reply, or a forced function's argument text.
    public var text: String? {
        switch output {
        case .text(let t): return t
        case .functionCall(let c): return c.rawArguments
        case .toolCalls(_, let t): return t
        case .error, .cancelled: return nil
        }
    }

    /// Every call the output made (a forced function's, or the tools').
    var calls: [FunctionCall] {
        switch output {
        case .functionCall(let c): return [c]
        case .toolCalls(let c, _): return c
        default: return []
        }
    }
}

/// One assertion's verdict: promptfoo's {pass, score, reason}.
public struct AssertionVerdict: Equatable, Sendable {
    public var name: String
    public var value: String
    public var pass: Bool
    public var score: Double
    public var reason: String

    public init(name: String, value: String, pass: Bool, score: Double, reason: String) {
        (self.name, self.value, self.pass, self.score, self.reason) = (name, value, pass, score, reason)
    }

    public var json: JSONValue {
        [
            "type": .string(name), "value": .string(value), "pass": .bool(pass), "score": .double(score),
            "reason": .string(reason),
        ]
    }

    /// `✓ contains "Paris"`, or `✗ regex "^\d+$" — the output does not match`.
    public var line: String {
        let what = value.isEmpty ? name : "\(name) \"\(value.count > 60 ? String(value.prefix(60)) + "…" : value)\""
        return (pass ? "✓ " : "✗ ") + (what + (pass ? "" : " — " + reason)).oneLine
    }
}

/// A row's (or a turn's) verdicts with their weighted score and whether the row passed.
public struct AssertionResult: Equatable, Sendable {
    public var verdicts: [AssertionVerdict]
    /// Σ(weight·score) / Σweight (1 when every weight is 0).
    public var score: Double
    /// Every assertion passed, or, with a threshold, the score reached it (promptfoo's rule).
    public var pass: Bool

    public init(verdicts: [AssertionVerdict], score: Double, pass: Bool) {
        (self.verdicts, self.score, self.pass) = (verdicts, score, pass)
    }

    public var json: JSONValue {
        ["verdicts": .array(verdicts.map(\.json)), "score": .double(score), "pass": .bool(pass)]
    }

    /// Reads ``json`` back (a transcript's turn).
    init?(json: JSONValue) {
        guard let list = json["verdicts"]?.arrayValue, let score = json["score"]?.doubleValue,
            let pass = json["pass"]?.boolValue
        else { return nil }
        let verdicts = list.compactMap { v -> AssertionVerdict? in
            guard let name = v["type"]?.stringValue, let p = v["pass"]?.boolValue, let s = v["score"]?.doubleValue
            else { return nil }
            return AssertionVerdict(
                name: name, value: v["value"]?.stringValue ?? "", pass: p, score: s,
                reason: v["reason"]?.stringValue ?? "")
        }
        self.init(verdicts: verdicts, score: score, pass: pass)
    }
}

extension Assertion {
    /// Checks every assertion against `input` and combines the verdicts by weight.
    public static func evaluate(_ assertions: [Assertion], threshold: Double?, input: AssertionInput)
        -> AssertionResult
    {
        let verdicts = assertions.map { $0.evaluate(input) }
        let total = assertions.reduce(0) { $0 + $1.weight }
        let weighted = zip(assertions, verdicts).reduce(0) { $0 + $1.0.weight * $1.1.score }
        let score = total > 0 ? weighted / total : 1
        let pass = threshold.map { score >= $0 } ?? verdicts.allSatisfy(\.pass)
        return AssertionResult(verdicts: verdicts, score: score, pass: pass)
    }

    /// This assertion's verdict on `input`. A failed request fails every assertion, negated or not.
    public func evaluate(_ input: AssertionInput) -> AssertionVerdict {
        let filled: String
        do { filled = try Template.fill(value, input.vars) } catch let e as SessionError {
            return AssertionVerdict(name: name, value: value, pass: false, score: 0, reason: e.message)
        } catch { return AssertionVerdict(name: name, value: value, pass: false, score: 0, reason: "\(error)") }
        switch input.output {
        case .error(let m):
            return AssertionVerdict(
                name: name, value: filled, pass: false, score: 0, reason: "the request failed: \(m)")
        case .cancelled:
            return AssertionVerdict(
                name: name, value: filled, pass: false, score: 0, reason: "the request was cancelled")
        default: break
        }
        if kind.isModelGraded {
            let (pass, reason, score) = checkGraded(filled, input)
            return AssertionVerdict(
                name: name, value: filled, pass: pass != negated, score: negated ? 1 - score : score, reason: reason)
        }
        var (pass, reason) = check(filled, input)
        if negated {
            reason = pass ? "it should not hold, but does" : "ok"
            pass.toggle()
        }
        return AssertionVerdict(
            name: name, value: filled, pass: pass, score: pass ? 1 : 0, reason: pass ? "ok" : reason)
    }

    /// Whether the (un-negated) check holds, and if not, why.
    func check(_ v: String, _ input: AssertionInput) -> (Bool, String) {
        let text = input.text ?? ""
        switch kind {
        case .equals: return (text == v, "the output is not exactly \(Self.quoted(v))")
        case .contains: return (text.contains(v), "the output does not contain \(Self.quoted(v))")
        case .icontains:
            return (
                text.lowercased().contains(v.lowercased()), "the output does not contain \(Self.quoted(v)) in any case"
            )
        case .containsAll:
            let missing = Self.list(v).filter { !text.contains($0) }
            return (missing.isEmpty, "missing \(missing.map(Self.quoted).joined(separator: ", "))")
        case .containsAny:
            let items = Self.list(v)
            return (items.contains { text.contains($0) }, "none of \(items.map(Self.quoted).joined(separator: ", "))")
        case .startsWith: return (text.hasPrefix(v), "the output does not start with \(Self.quoted(v))")
        case .regex:
            guard let re = try? NSRegularExpression(pattern: v) else {
                return (false, "\(v) is not a valid regular expression")
            }
            let found = re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
            return (found, "the output does not match")
        case .isJSON:
            guard let j = try? JSONValue.parse(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                return (false, "the output is not JSON")
            }
            return Self.schemaCheck(j, v)
        case .containsJSON:
            let found = Self.jsonValues(in: text)
            guard !found.isEmpty else { return (false, "no JSON value in the output") }
            if v.isEmpty { return (true, "ok") }
            if found.contains(where: { Self.schemaCheck($0, v).0 }) { return (true, "ok") }
            return Self.schemaCheck(found[0], v)
        default: return checkFigures(v, input)
        }
    }

    /// The checks that are not on the text: distance, cost, latency, finish reason, calls, schemas.
    func checkFigures(_ v: String, _ input: AssertionInput) -> (Bool, String) {
        switch kind {
        case .levenshtein:
            let d = Self.levenshtein(input.text ?? "", v)
            let most = threshold ?? 5
            return (Double(d) <= most, "distance \(d) from \(Self.quoted(v)), more than \(Self.number(most))")
        case .cost:
            guard let c = input.cost else { return (false, "the cost is not known (no price for the model)") }
            let most = Double(v) ?? 0
            return (c <= most, "cost \(PriceTable.format(c)) is over \(PriceTable.format(most))")
        case .latency:
            guard let l = input.latency else { return (false, "no latency was measured") }
            let most = Double(v) ?? 0
            return (l <= most, String(format: "latency %.2f s is over %@ s", l, Self.number(most)))
        case .finishReason:
            let r = input.finishReason
            return (r == v, "finish reason \(r.map(Self.quoted) ?? "unknown"), not \(Self.quoted(v))")
        case .toolCall: return checkToolCall(v, input)
        case .schemaValid:
            guard input.functionSpec != nil || input.schema != nil || !input.calls.isEmpty else {
                return (false, "no function, tool call or output schema to check against")
            }
            let violations = Session.check(
                input.output, functionSpec: input.functionSpec, tools: input.tools, schema: input.schema)
            return (violations.isEmpty, violations.map(\.description).joined(separator: "; "))
        default: return (false, "not a check of figures")
        }
    }

    /// The named tool (or forced function) was called, with arguments valid against its schema,
    /// and equal to the given ones when there are some.
    func checkToolCall(_ v: String, _ input: AssertionInput) -> (Bool, String) {
        guard let (tool, expected) = try? Self.toolCallValue(v) else { return (false, "\(v) is not NAME [JSON]") }
        let calls = input.calls.filter { $0.name == tool }
        guard !calls.isEmpty else {
            let made = input.calls.map(\.name)
            return (false, made.isEmpty ? "no tool was called" : "called \(made.joined(separator: ", ")), not \(tool)")
        }
        let spec = input.tools.first { $0.name == tool } ?? input.functionSpec.flatMap { $0.name == tool ? $0 : nil }
        var why = "no schema for \(tool) is loaded"
        for call in calls {
            guard let spec else { break }
            let violations = SchemaCheck.violations(of: call.arguments, against: spec.parameters)
            if !violations.isEmpty {
                why = violations.map(\.description).joined(separator: "; ")
                continue
            }
            if let expected, call.arguments != expected {
                why = "called with \(call.arguments.serialized()), not \(expected.serialized())"
                continue
            }
            return (true, "ok")
        }
        return (false, why)
    }

    static func schemaCheck(_ j: JSONValue, _ schema: String) -> (Bool, String) {
        guard !schema.isEmpty else { return (true, "ok") }
        guard let s = try? JSONValue.parse(schema) else { return (false, "the schema is not JSON") }
        let violations = SchemaCheck.violations(of: j, against: s)
        return (violations.isEmpty, violations.map(\.description).joined(separator: "; "))
    }

    static func quoted(_ s: String) -> String { "\"\(s.count > 40 ? String(s.prefix(40)) + "…" : s)\"" }

    /// A JSON array of strings, or items separated by commas.
    static func list(_ v: String) -> [String] {
        if let a = (try? JSONValue.parse(v))?.arrayValue { return a.map { $0.stringValue ?? $0.serialized() } }
        return v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The JSON objects and arrays inside `text`, outermost first, in order.
    static func jsonValues(in text: String) -> [JSONValue] {
        let chars = Array(text.utf8)
        var found: [JSONValue] = []
        var i = 0
        while i < chars.count {
            guard chars[i] == UInt8(ascii: "{") || chars[i] == UInt8(ascii: "["),
                let end = closing(chars, from: i),
                let v = try? JSONValue.parse(String(decoding: chars[i...end], as: UTF8.self))
            else {
                i += 1
                continue
            }
            found.append(v)
            i = end + 1
        }
        return found
    }

    /// Where the bracket opened at `start` closes (strings skipped), nil if it does not.
    static func closing(_ c: [UInt8], from start: Int) -> Int? {
        var depth = 0
        var inString = false
        var i = start
        while i < c.count {
            let b = c[i]
            if inString {
                if b == UInt8(ascii: "\\") { i += 1 } else if b == UInt8(ascii: "\"") { inString = false }
            } else if b == UInt8(ascii: "\"") {
                inString = true
            } else if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                depth += 1
            } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 { return i }
            }
            i += 1
        }
        return nil
    }

    /// Edits (insert, delete, substitute a character) from `a` to `b`.
    static func levenshtein(_ a: String, _ b: String) -> Int {
        let x = Array(a)
        let y = Array(b)
        if x.isEmpty || y.isEmpty { return max(x.count, y.count) }
        var previous = Array(0...y.count)
        var row = previous
        for i in 1...x.count {
            row[0] = i
            for j in 1...y.count {
                row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&previous, &row)
        }
        return previous[y.count]
    }
}
