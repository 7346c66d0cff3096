import Foundation
import QueryCore

/// Grading resumes like sending: a rerun does not send a row the results file has, but it does
/// check that row again when its line lacks a verdict the run asks for — assertions added since,
/// or a grader that failed or was not there. Only the missing model-graded verdicts are asked
/// of the grader; the line's good ones are kept. The new line supersedes the old (the last line
/// of a row × variant × send is the one read back).
extension BatchRunner {
    /// A line already sent whose verdicts are to be made again, and the job it answers.
    struct Regrade: Sendable {
        var job: Job
        var line: JSONValue
    }

    /// Whether `line` lacks a verdict `job` asks for, or holds one the grader did not give.
    static func needsGrading(_ job: Job, _ line: JSONValue, session: Session) -> Bool {
        let all = session.assertions + job.assertions
        guard !all.isEmpty else { return false }
        let verdicts = (line["assertions"]?.arrayValue ?? []).compactMap(AssertionVerdict.init(json:))
        let vars = session.vars.merging(job.vars) { _, r in r }
        let asked = all.map { a in "\(a.name)\u{0}\((try? Template.fill(a.value, vars)) ?? a.value)" }
        guard asked == verdicts.map({ "\($0.name)\u{0}\($0.value)" }) else { return true }
        return zip(all, verdicts).contains { a, v in a.kind.isModelGraded && Grader.isUngraded(v.reason) }
    }

    /// A line read back, with what the grader is still to be asked of it.
    struct Pending: Sendable {
        var item: Regrade
        var result: BatchResult
        var vars: [String: String]
        /// The model-graded assertions the line has no good verdict for.
        var ask: [Assertion]
        /// The line's good model-graded verdicts, kept.
        var kept: Grades
    }

    /// `item`'s stored output and what to ask the grader; nil when the line does not read back.
    func pending(_ item: Regrade, session: Session) -> Pending? {
        guard var r = BatchResult(line: item.line, functionName: session.functionSpec?.name ?? "") else { return nil }
        r.variant = variants[item.job.variant].label
        let vars = session.vars.merging(item.job.vars) { _, row in row }
        let good = Dictionary(
            (item.line["assertions"]?.arrayValue ?? []).compactMap(AssertionVerdict.init(json:))
                .filter { !Grader.isUngraded($0.reason) }.map { ("\($0.name)\u{0}\($0.value)", $0) },
            uniquingKeysWith: { _, last in last })
        var p = Pending(item: item, result: r, vars: vars, ask: [], kept: Grades())
        for a in (session.assertions + item.job.assertions) where a.kind.isModelGraded {
            let filled = (try? Template.fill(a.value, vars)) ?? a.value
            if let v = good["\(a.name)\u{0}\(filled)"] {
                // The line holds the verdict negated when the assertion is: the grade is the plain one.
                p.kept.verdicts[a.gradeKey(filled)] = (v.pass != a.negated, a.negated ? 1 - v.score : v.score, v.reason)
            } else {
                p.ask.append(a)
            }
        }
        return p
    }

    /// Grades `items` again, `concurrency` at a time (the grader's requests share the run's
    /// gate), appending each new line as it is made. Between rows it stops when `stop` is
    /// requested; a line not graded again counts as it is.
    func regradeAll(
        _ items: [Regrade], session: Session, grader: Grader?, out: FileHandle, summary: inout BatchSummary,
        stop: BatchStop
    ) async throws {
        var work: [Pending] = []
        for item in items {
            if let p = pending(item, session: session) {
                work.append(p)
            } else if let cell = EvalRun.Cell(json: item.line) {
                summary.add(cell)
            }
        }
        var next = 0
        try await withThrowingTaskGroup(of: (Int, Grades).self) { group in
            func launch() {
                let (i, p) = (next, work[next])
                next += 1
                group.addTask {
                    guard let grader, !p.ask.isEmpty else { return (i, p.kept) }
                    let text = AssertionInput(output: p.result.output).text
                    let asked = await Assertion.grades(
                        p.ask, text: text, vars: p.vars, prompt: p.result.prompt, grader: grader)
                    var all = p.kept
                    all.verdicts.merge(asked.verdicts) { _, new in new }
                    return (i, all)
                }
            }
            while next < min(concurrency, work.count) { launch() }
            while let (i, grades) = try await group.next() {
                let p = work[i]
                var r = p.result
                r.assertions = session.assertionResult(
                    for: r.output, finishReason: r.finishReason, cost: r.cost, latency: r.latency,
                    vars: p.item.job.vars,
                    extraAssertions: p.item.job.assertions, prompt: r.prompt, grades: grades,
                    threshold: p.item.job.threshold)
                try Self.append(r, to: out, redactor: redactor)
                summary.add(r)
                summary.regraded += 1
                if next < work.count && !stop.isRequested && !Task.isCancelled { launch() }
            }
        }
        for p in work[next...] {
            if let cell = EvalRun.Cell(json: p.item.line) { summary.add(cell) }
        }
    }
}
