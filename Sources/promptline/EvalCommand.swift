import Foundation
import PromptSession
import QueryCore
import Terminal

/// `:eval diff`, `:report` and `--report`: a run's results read back, compared with an earlier
/// run, and written as an HTML page.
extension REPL {
    /// `:eval FILE` and `--eval FILE`: the file's prompts × providers × tests run as one batch,
    /// the matrix and failing rows shown, the report written when asked. Returns whether every
    /// variant's pass rate reached the file's threshold (and no request failed when nothing is
    /// checked); `results` names the results file (default: beside the sessions, per eval file).
    func runEval(_ path: String, report: String?, results: String? = nil, concurrency: Int? = nil) async throws -> Bool
    {
        let eval = try EvalFile.load(Session.expand(path))
        if !eval.ignored.isEmpty {
            let list = eval.ignored.prefix(6).joined(separator: "; ") + (eval.ignored.count > 6 ? "; …" : "")
            err.dim(folding: "note: \(path): ignored (promptline does not run these): \(list)")
        }
        if let d = eval.description { out.line("eval: \(d)") }
        let safe = String(eval.name.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }.prefix(40))
        var runner = try await batchRunner(
            template: eval.prompts[0].template, rows: eval.rows, variants: try eval.variants(session: session),
            concurrency: concurrency ?? eval.concurrency, out: results,
            defaultOut: "\(batchesDirectory)/\(transcript.id)-\(safe.isEmpty ? "eval" : safe)-eval.jsonl")
        (runner.rowChecks, runner.repeats) = (eval.rowChecks, eval.repeats)
        let summary = try await execute(runner)
        let passed = thresholdVerdict(summary, threshold: eval.threshold)
        if let report { try writeReport(to: report, results: runner.outPath, against: nil) }
        return passed && !summary.cancelled
    }

    /// Says whether each variant's pass rate reached `threshold`; true when all did.
    func thresholdVerdict(_ s: BatchSummary, threshold: Double) -> Bool {
        let percent = String(format: "%.0f%%", threshold * 100)
        let rates = s.variants.map { v in (v.isEmpty ? "the run" : v, s.totals[v]?.passRate) }
        guard rates.contains(where: { $0.1 != nil }) else {
            let ok = s.failed == 0
            out.line(
                ok ? "no assertions: every request answered" : "no assertions; \(counted(s.failed, "request")) failed")
            return ok
        }
        let under = rates.filter { ($0.1 ?? 0) < threshold - 1e-9 }
        let line: String
        if under.isEmpty {
            line = "✓ pass rate ≥ \(percent) under every variant"
        } else {
            let named = under.map { "\($0.0) \(String(format: "%.0f%%", ($0.1 ?? 0) * 100))" }
            line = "✗ pass rate under \(percent): " + named.joined(separator: ", ")
        }
        show([line])
        return under.isEmpty
    }

    /// `:eval diff OLD NEW`: the rows that flipped and the assertions whose passes changed.
    func evalDiff(old: String, new: String) throws {
        let (a, b) = (try EvalRun.load(Session.expand(old)), try EvalRun.load(Session.expand(new)))
        noteUnreadable(a)
        noteUnreadable(b)
        show(EvalDiff(old: a, new: b).report(old: old, new: new))
    }

    /// `:report OUT [RESULTS] [against=OLD]`: one self-contained HTML file. RESULTS defaults to
    /// the last batch's results; OLD to the run before it over the same dataset.
    func writeReport(to path: String, results: String?, against: String?) throws {
        guard let source = results.map(Session.expand) ?? lastBatchResults else {
            throw SessionError(
                ":report needs a results file: run :batch first, or name one (:report out.html results.jsonl)")
        }
        let run = try EvalRun.load(source)
        noteUnreadable(run)
        let previous = try (against.map(Session.expand) ?? EvalRun.previous(of: source)).map(EvalRun.load)
        let target = Session.expand(path)
        try Self.requireFolder(of: target, given: path)
        // The page shows prompts and outputs, redacted like every file promptline writes.
        let html = out.redactor.redact(EvalReport.html(run, previous: previous))
        do {
            try AtomicFile.write(Array(html.utf8), to: target)
        } catch {
            throw SessionError("cannot write \(path): \(error)")
        }
        let against = previous.map { " against \($0.path)" } ?? ""
        out.line("report: \(target) (\(counted(run.cells.count, "result"))\(against)) — open it in a browser")
    }

    /// After a batch with assertions: what changed since the previous run over the same dataset.
    func showChangesSincePreviousRun(_ results: String) {
        guard let before = EvalRun.previous(of: results), let old = try? EvalRun.load(before),
            let new = try? EvalRun.load(results), new.graded, old.graded
        else { return }
        let d = EvalDiff(old: old, new: new)
        guard d.compared > 0 else { return }
        show(d.report(old: (before as NSString).lastPathComponent, new: (results as NSString).lastPathComponent))
    }

    private func show(_ lines: [String]) {
        for l in lines {
            if let width = out.width {
                for w in Layout.wrap(l, width: width, hanging: 4) { out.line("\(w)") }
            } else {
                out.line("\(l)")
            }
        }
    }

    private func noteUnreadable(_ run: EvalRun) {
        guard !run.unreadable.isEmpty else { return }
        let n = run.unreadable.count
        err.dim(
            "\(run.path): \(counted(n, "line")) skipped, not result lines (line \(run.unreadable[0])\(n > 1 ? ", …" : ""))"
        )
    }
}

extension REPL {
    /// The grader for model-graded assertions: `:grader`'s model and provider, else the session's
    /// own; its forced call resolved for its server (json-schema on llama.cpp), never `:func-via`'s.
    func grader(usage: GraderUsage? = nil) async throws -> Grader {
        let provider = session.graderModel.map { session.graderProvider ?? Provider.forModel($0) } ?? session.provider
        var c = provider == session.provider ? client : try makeClient(provider)
        c.forcedCall = .auto
        return Grader(
            client: await c.resolvingForcedCall(), model: session.graderModel ?? session.model, prices: session.prices,
            usage: usage ?? session.graderUsage)
    }

    /// The grader's verdicts on a turn's output, when the session has model-graded assertions.
    func turnGrades(_ output: TranscriptEvent.Output, prompt: String) async -> Grades {
        guard Assertion.needGrader(session.assertions) else { return Grades() }
        do {
            let text = AssertionInput(output: output).text
            return await Assertion.grades(
                session.assertions, text: text, vars: session.vars, prompt: prompt, grader: try grader())
        } catch {
            err.error("the grader: \(REPL.explain(error)) — :grader names another model")
            return Grades()
        }
    }
}
