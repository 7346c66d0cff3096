import Foundation
import LineEditor
import PromptSession
import QueryCore
import Terminal

/// `:batch` and `--batch`: the template over a dataset, with a progress line (a bar on a
/// terminal, a line every tenth of the way otherwise) and the summary; Ctrl-C stops it cleanly.
extension REPL {
    /// Runs a batch and says how it went. Returns whether every row succeeded.
    @discardableResult
    func runBatch(_ b: BatchCommand) async throws -> Bool {
        guard let template = b.template ?? session.lastTemplate else {
            throw SessionError("no template: send a prompt first (it becomes the template), or give one after --")
        }
        let file = try BatchFile.load(Session.expand(b.path))
        guard !file.rows.isEmpty else { throw SessionError("batch file \(b.path) has no rows") }
        var runner = try await batchRunner(
            template: template, rows: file.rows, variants: try session.variants(b.axes), concurrency: b.concurrency,
            out: b.out, defaultOut: defaultBatchOut(b.path))
        runner.repeats = b.repeats
        if b.remote { return try await sendRemoteBatch(runner, dataset: b.path, poll: b.poll) }
        let summary = try await execute(runner)
        return summary.failed == 0 && !summary.cancelled
    }

    /// A run's runner: a client per variant (its provider's), the results file's folder made.
    func batchRunner(
        template: String, rows: [[String: String]], variants: [Session.Variant], concurrency: Int?, out: String?,
        defaultOut: String
    ) async throws -> BatchRunner {
        let base = await turnClient()
        let clients = try variants.map { v -> QueryClient in
            guard v.provider != session.provider else { return base }
            var c = try makeClient(v.provider)
            c.forcedCall = session.forcedCall
            return c
        }
        let outPath = out.map(Session.expand) ?? defaultOut
        let outDirectory = (outPath as NSString).deletingLastPathComponent
        // promptline's own batches folder is kept private; a folder given with out= only gets
        // the parts that are missing (0700), an existing one is never changed.
        if out == nil {
            try AtomicFile.makePrivateDirectory(outDirectory)
        } else {
            try AtomicFile.makeDirectory(outDirectory)
        }
        return BatchRunner(
            template: template, rows: rows, variants: variants, clients: clients, concurrency: concurrency ?? 4,
            outPath: outPath)
    }

    /// Runs `runner` here (Ctrl-C stops it cleanly), grading as it goes, then shows the summary,
    /// the grader's usage and what changed since the previous run over the same data.
    func execute(_ runner: BatchRunner) async throws -> BatchSummary {
        var runner = runner
        let rowsGraded = runner.rowChecks?.contains { Assertion.needGrader($0.assertions) } ?? false
        if rowsGraded || Assertion.needGrader(session.assertions, rows: runner.rows) {
            runner.grader = try await grader(usage: GraderUsage())
        }
        let stop = BatchStop()
        let repeats = runner.repeats > 1 ? " × \(runner.repeats) sends" : ""
        out.dim(
            folding:
                "batch: \(counted(runner.rows.count, "row")) × \(runner.variants.count) variant\(runner.variants.count == 1 ? "" : "s")\(repeats) → \(runner.outPath)"
        )
        let run = { [runner] () async -> Result<BatchSummary, Error> in
            do {
                return .success(try await runner.run(session: self.session, stop: stop) { self.showProgress($0) })
            } catch {
                return .failure(error)
            }
        }
        let outcome = await InterruptHub.shared.whileRunning(cancel: { stop.request() }, run)
        let summary = try outcome.get()
        out.eraseSpinner()
        out.line(block: report(summary))
        if let g = runner.grader, g.usage.current.requests > 0 { out.dim(folding: "  " + g.usage.line) }
        lastBatchResults = runner.outPath
        showChangesSincePreviousRun(runner.outPath)
        if summary.failed > 0 { failedTurns += 1 }
        return summary
    }

    /// The summary of a run. On a terminal, laid out to its width: the variants side by side
    /// while they fit, else one row each, else one record each; piped, as ``BatchSummary/report()``.
    func report(_ s: BatchSummary) -> String {
        guard let width = out.width else { return s.report() }
        var lines = Layout.wrap(s.headline, width: width, hanging: 2)
        let names = s.shownFigureNames
        let figures = s.variants.map { Array(s.figures($0).prefix(names.count)) }
        if s.variants.count > 1 {
            let columns = TextTable(
                header: [""] + s.variants, rows: names.indices.map { k in [names[k]] + figures.map { $0[k] } },
                alignments: [.left] + s.variants.map { _ in .right }, gap: 3)
            let rows = TextTable(
                header: ["variant"] + names, rows: s.variants.indices.map { [s.variants[$0]] + figures[$0] },
                alignments: [.left] + names.map { _ in .right }, wrappable: [0])
            lines += columns.naturalWidth <= width ? columns.render(width: width) : rows.render(width: width)
        } else if let v = s.variants.first {
            lines += Layout.fold(s.line(v), width: width, hanging: 2)
        }
        for f in s.failingRows() { lines += Layout.fold(f, width: width, hanging: 4) }
        lines += Layout.wrap("  results: \(s.outPath)", width: width, hanging: 4)
        return lines.joined(separator: "\n")
    }

    /// Results go beside the sessions: `<data>/promptline/batches/<session id>-<file name>.jsonl`.
    func defaultBatchOut(_ path: String) -> String {
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let safe = String(stem.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }.prefix(40))
        return "\(batchesDirectory)/\(transcript.id)-\(safe.isEmpty ? "batch" : safe).jsonl"
    }

    /// `<data>/promptline/batches`: results files, and `remote/` for the remote runs' records.
    var batchesDirectory: String { (store.directory as NSString).deletingLastPathComponent + "/batches" }

    func showProgress(_ p: BatchRunner.Progress) {
        let elapsed = Date().timeIntervalSince(p.started)
        let eta = p.done > 0 ? elapsed / Double(p.done) * Double(p.total - p.done) : nil
        let text =
            "\(p.done)/\(p.total) · \(p.failed) failed" + (p.concurrency > 0 ? " · concurrency \(p.concurrency)" : "")
            + (eta.map { String(format: " · ETA %.0f s", $0) } ?? "")
        if out.isTTY {
            let width = 20
            let filled = p.total > 0 ? width * p.done / p.total : width
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
            out.eraseSpinner()
            out.drawSpinner(frame: bar, text: text)
        } else if p.total > 0, p.done == p.total || p.done % max(1, p.total / 10) == 0, p.done > 0 {
            out.line("batch: \(text)")
        }
    }
}
