import Foundation
import QueryCore

/// The model that grades `llm-rubric`, `factuality` and `answer-relevance` assertions. Its answer
/// is a forced call of `grade(pass, score, reason)`, so it always parses: on llama.cpp the call is
/// forced with the JSON schema as a grammar, elsewhere with tool choice, and the arguments are
/// checked against the schema before they are believed.
public struct Grader: Sendable {
    /// The grader's client (its provider's), its forced-call strategy resolved for its server.
    public var client: QueryClient
    public var model: String
    public var prices: PriceTable
    /// What grading cost, counted apart from the graded requests.
    public let usage: GraderUsage

    public init(client: QueryClient, model: String, prices: PriceTable = .defaults, usage: GraderUsage = GraderUsage())
    {
        (self.client, self.model, self.prices, self.usage) = (client, model, prices, usage)
    }

    /// The function the grader must call.
    public static let spec: FunctionSpec = {
        let parameters: JSONValue = [
            "type": "object",
            "properties": [
                "reason": [
                    "type": "string", "maxLength": 160,
                    "description": "one sentence: why the output does or does not meet the rubric",
                ],
                "pass": ["type": "boolean", "description": "true when the output meets the rubric"],
                "score": ["type": "number", "minimum": 0, "maximum": 1, "description": "how well, from 0 to 1"],
            ],
            "required": ["reason", "pass", "score"],
            "additionalProperties": false,
        ]
        // The schema is a constant known to be valid.
        return try! FunctionSpec(
            name: "grade", description: "Record the verdict on the output.", parameters: parameters)
    }()

    static let system = """
        You grade the output of an AI model against a rubric. Read the rubric and the output, then call \
        grade with pass (true only when the output meets the rubric), score (0 to 1) and a one-sentence reason.
        """

    /// The verdict's parts for `output` judged against `rubric`. A grader that fails (the request,
    /// or an answer that is not a valid call) gives a failing verdict saying so.
    static let notAGrade = "the grader's answer was not a grade call"
    static let failed = "the grader failed: "
    static let absent = "no grader to ask (:grader names one; the session's model grades by default)"

    /// Whether a model-graded verdict's reason says no grade was given (a rerun asks again).
    static func isUngraded(_ reason: String) -> Bool {
        reason == notAGrade || reason == absent || reason.hasPrefix(failed)
    }

    func grade(rubric: String, output: String) async -> (pass: Bool, score: Double, reason: String) {
        let user = "<rubric>\n\(rubric)\n</rubric>\n\n<output>\n\(output)\n</output>"
        do {
            let r = try await client.query(
                system: Self.system, user: user, functionSpec: Self.spec,
                options: ["model": .string(model), "max_tokens": 400])
            usage.add(
                r,
                cost: prices.cost(
                    model: model, responseModel: r.info.model, inputTokens: r.inputTokens,
                    outputTokens: r.outputTokens, usage: r.info.usage))
            guard let args = r.output.functionCall?.arguments, let pass = args["pass"]?.boolValue,
                let score = args["score"]?.doubleValue, score.isFinite
            else {
                usage.failed()
                return (false, 0, Self.notAGrade)
            }
            let reason = args["reason"]?.stringValue ?? ""
            return (pass, min(1, max(0, score)), reason.isEmpty ? (pass ? "ok" : "the grader gave no reason") : reason)
        } catch {
            usage.failed()
            return (false, 0, Self.failed + "\(error)")
        }
    }
}

/// Requests, tokens and cost the grader spent (shared by a run's concurrent gradings).
public final class GraderUsage: @unchecked Sendable {
    // @unchecked: every field is read and written under `lock`.
    private let lock = NSLock()
    private var figures = Figures()

    public struct Figures: Sendable, Equatable {
        public var requests = 0
        public var failures = 0
        public var inputTokens = 0
        public var outputTokens = 0
        public var cost: Double?
    }

    public init() {}

    public var current: Figures { lock.withLock { figures } }

    func add(_ r: QueryResult, cost: Double?) {
        lock.withLock {
            figures.requests += 1
            figures.inputTokens = figures.inputTokens.addingReportingOverflow(r.inputTokens ?? 0).partialValue
            figures.outputTokens = figures.outputTokens.addingReportingOverflow(r.outputTokens ?? 0).partialValue
            if let cost { figures.cost = (figures.cost ?? 0) + cost }
        }
    }

    func failed() {
        lock.withLock {
            figures.requests += 1
            figures.failures += 1
        }
    }

    /// `grader: 3 requests · tokens in 300 out 60 · cost $0.0001`.
    public var line: String {
        let f = current
        return "grader: \(f.requests) request\(f.requests == 1 ? "" : "s")"
            + (f.failures > 0 ? " (\(f.failures) failed)" : "")
            + " · tokens in \(f.inputTokens) out \(f.outputTokens) · cost \(PriceTable.format(f.cost))"
    }
}

extension Assertion.Kind {
    /// Graded by a model (the grader), not by a rule.
    public var isModelGraded: Bool { [.llmRubric, .factuality, .answerRelevance].contains(self) }
}

extension Assertion {
    /// The rubric the grader is given: the value for `llm-rubric`; a preset around it for the others.
    func rubric(_ filled: String, prompt: String) -> String {
        switch kind {
        case .factuality:
            return "The output is factually consistent with this reference answer (it may add detail, "
                + "but must not contradict it): \(filled)"
        case .answerRelevance:
            let question = filled.isEmpty ? prompt : filled
            return "The output is relevant to this question and answers it (not another one): \(question)"
        default: return filled
        }
    }

    /// The grader's verdicts on the model-graded ones of `assertions` for `text`, asked
    /// concurrently; empty when there are none or no grader.
    /// Whether any of `assertions`, or of those a dataset's `assert` column names, is model-graded.
    public static func needGrader(_ assertions: [Assertion], rows: [[String: String]] = []) -> Bool {
        let names = Kind.allCases.filter(\.isModelGraded).map { "\"\($0.rawValue)\"" }
        return assertions.contains { $0.kind.isModelGraded }
            || rows.contains { r in r["assert"].map { a in names.contains { a.contains($0) } } ?? false }
    }

    public static func grades(
        _ assertions: [Assertion], text: String?, vars: [String: String], prompt: String, grader: Grader?
    ) async -> Grades {
        let graded = assertions.filter { $0.kind.isModelGraded }
        guard !graded.isEmpty, let grader, let text else { return Grades() }
        var grades = Grades()
        await withTaskGroup(of: (String, (pass: Bool, score: Double, reason: String)).self) { group in
            for a in graded {
                guard let filled = try? Template.fill(a.value, vars) else { continue }
                let rubric = a.rubric(filled, prompt: prompt)
                group.addTask { (a.gradeKey(filled), await grader.grade(rubric: rubric, output: text)) }
            }
            for await (key, g) in group { grades.verdicts[key] = g }
        }
        return grades
    }

    func gradeKey(_ filled: String) -> String { "\(kind.rawValue)\u{0}\(filled)" }

    /// A model-graded check: the grader's verdict, looked up in `input`.
    func checkGraded(_ v: String, _ input: AssertionInput) -> (Bool, String, Double) {
        guard let g = input.grades.verdicts[gradeKey(v)] else {
            return (false, Grader.absent, 0)
        }
        return (g.pass, g.reason, g.score)
    }
}

/// The grader's verdicts for one output, by assertion type and filled value.
public struct Grades: Sendable {
    var verdicts: [String: (pass: Bool, score: Double, reason: String)] = [:]
    public init() {}
}
