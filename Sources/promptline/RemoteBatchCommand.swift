import Foundation
import PromptSession
import QueryCore

/// `:batch FILE remote`, `:batch resume ID`, `:batch cancel ID` and `:batches`: runs through
/// the provider's Batch API, followed with a progress line and collected into the same results
/// file and summary as a batch sent from here. Ctrl-C stops the waiting, never the batch.
extension REPL {
    var remoteDirectory: String { RemoteBatchRecord.directory(batches: batchesDirectory) }

    /// The Batch API of each of `clients`' wire formats.
    func batchAPIs(_ clients: [QueryClient]) throws -> [Provider: BatchAPI] {
        var apis: [Provider: BatchAPI] = [:]
        for c in clients where apis[c.provider] == nil { apis[c.provider] = try BatchAPI(client: c) }
        return apis
    }

    /// Sends the runner's jobs as remote batches, then follows them. Returns whether every row succeeded.
    func sendRemoteBatch(_ runner: BatchRunner, dataset: String, poll: Double?) async throws -> Bool {
        let remote = RemoteBatchRunner(
            apis: try batchAPIs(runner.clients), directory: remoteDirectory, pollInterval: poll ?? 15)
        guard let prepared = try remote.prepare(runner, session: session, dataset: dataset) else {
            out.line("every row is in \(runner.outPath) already: nothing sent")
            return true
        }
        out.dim(
            folding:
                "remote batch: \(counted(runner.rows.count, "row")) × \(runner.variants.count) variant\(runner.variants.count == 1 ? "" : "s") → \(runner.outPath)"
        )
        // Ctrl-C stops an upload; a batch being created is created and recorded all the same.
        let out = self.out
        let task = Task { try await remote.send(prepared) { out.dim("\($0)") } }
        let sent = await InterruptHub.shared.whileRunning(cancel: { task.cancel() }, { await task.result })
        return try await follow(try sent.get(), remote)
    }

    /// Waits for a run's batches (Ctrl-C: stop waiting), then collects them and shows the summary.
    @discardableResult
    func follow(_ record: RemoteBatchRecord, _ remote: RemoteBatchRunner) async throws -> Bool {
        if record.parts.allSatisfy(\.collected) {
            out.line("\(record.parts.map(\.batchID).joined(separator: " ")): collected already, in \(record.outPath)")
            return true
        }
        let stop = BatchStop()
        var last = ""
        let wait = { () async -> Result<RemoteBatchRecord, Error> in
            do {
                return .success(
                    try await remote.wait(record, stop: stop) { p in self.showRemoteProgress(p, last: &last) })
            } catch {
                return .failure(error)
            }
        }
        let waited = await InterruptHub.shared.whileRunning(cancel: { stop.request() }, wait)
        out.eraseSpinner()
        var record = try waited.get()
        let ids = record.parts.map(\.batchID).joined(separator: " ")
        if stop.isRequested {
            let first = record.parts.first?.batchID ?? record.run
            out.line(
                "stopped waiting; \(ids) go\(record.parts.count == 1 ? "es" : "") on at the provider — :batch resume \(first) collects the results (also after promptline closed), :batch cancel \(first) stops it"
            )
            return false
        }
        let summary: BatchSummary
        // Graded after collection: the session's assertions and the rows' own.
        let rows = record.jobs.values.map(\.vars)
        let grader = Assertion.needGrader(session.assertions, rows: rows) ? try await grader(usage: GraderUsage()) : nil
        (record, summary) = try await remote.collect(record, prices: session.prices, checking: session, grader: grader)
        out.line(block: report(summary))
        out.dim("  batches: \(ids) (cost at the Batch API's half price)")
        if let g = grader, g.usage.current.requests > 0 { out.dim(folding: "  " + g.usage.line) }
        lastBatchResults = record.outPath
        if summary.failed > 0 { failedTurns += 1 }
        return summary.failed == 0
    }

    /// A bar on a terminal; otherwise a line each time the status or the count changes.
    func showRemoteProgress(_ p: RemoteBatchRunner.Progress, last: inout String) {
        let text = "\(p.done)/\(p.total) · \(p.failed) failed · \(p.status)"
        if out.isTTY {
            let width = 20
            let filled = p.total > 0 ? width * p.done / p.total : 0
            out.eraseSpinner()
            out.drawSpinner(
                frame: "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                    + "]",
                text: text)
        } else if text != last {
            out.line("remote batch: \(text)")
        }
        last = text
    }

    /// The runner for a record sent earlier: its wire formats' clients, each the one configured
    /// for the base URL the run was sent to (its key, credentials included). A run sent elsewhere
    /// is refused: the key configured here belongs to another server and is never sent to the
    /// record's.
    /// - Throws: ``SessionError`` naming both base URLs.
    func runner(for record: RemoteBatchRecord, poll: Double? = nil) throws -> RemoteBatchRunner {
        var apis: [Provider: BatchAPI] = [:]
        for p in Set(record.parts.map(\.provider)).sorted(by: { $0.rawValue < $1.rawValue }) {
            let c = p == session.provider ? client : try makeClient(p)
            guard Self.sameBase(Redactor.url(c.baseURL), record.baseURL) else {
                throw SessionError(
                    "run \(record.run) was sent to \(record.baseURL), but this session's \(p.rawValue) key is for \(Redactor.url(c.baseURL)) — start promptline with --base-url \(record.baseURL) and that server's key to follow it"
                )
            }
            apis[p] = try BatchAPI(client: c)
        }
        return RemoteBatchRunner(apis: apis, directory: remoteDirectory, pollInterval: poll ?? 15)
    }

    /// Whether two base URLs name the same API (a trailing `/` apart).
    static func sameBase(_ a: String, _ b: String) -> Bool {
        func trimmed(_ s: String) -> String { s.hasSuffix("/") ? String(s.dropLast()) : s }
        return trimmed(a) == trimmed(b)
    }

    /// Waits for a run sent earlier (by its run or a batch id) and collects it. Returns whether
    /// every row succeeded.
    @discardableResult
    func resumeRemoteBatch(_ id: String, poll: Double? = nil) async throws -> Bool {
        let record = try RemoteBatchRecord.find(id, in: remoteDirectory)
        out.dim("remote batch \(record.run): \(record.dataset) → \(record.outPath)")
        return try await follow(record, try runner(for: record, poll: poll))
    }

    func cancelRemoteBatch(_ id: String) async throws {
        let record = try? RemoteBatchRecord.find(id, in: remoteDirectory)
        let remote = try record.map { try runner(for: $0) }
        let api = try remote?.apis.values.first ?? BatchAPI(client: client)
        let ids = record.map { r in r.parts.filter { !$0.collected }.map(\.batchID) } ?? [id]
        for b in ids {
            let outcome: Result<RemoteBatch, QueryError>
            do {
                outcome = .success(try await api.cancel(b))
            } catch {
                outcome = .failure(error)
            }
            if case .failure(.http(let d)) = outcome, d.status == 404 {
                throw SessionError("no batch \(b) at \(Redactor.url(api.client.baseURL)) (:batches lists them)")
            }
            let batch = try outcome.get()
            out.line("\(batch.id): \(batch.status)")
        }
        if let record { out.dim("  :batch resume \(record.run) collects what finished") }
    }

    /// promptline's runs (from their records), each batch's status refreshed when the API
    /// answers, then the account's other recent batches.
    func listRemoteBatches() async {
        let records = RemoteBatchRecord.all(in: remoteDirectory)
        var fresh: [String: RemoteBatch] = [:]
        do {
            for b in try await BatchAPI(client: client).list(limit: 100) { fresh[b.id] = b }
        } catch {
            out.dim("(statuses as last seen, not refreshed: \(Self.explain(error)))")
        }
        if records.isEmpty && fresh.isEmpty {
            out.line("no remote batches (:batch FILE remote sends one)")
            return
        }
        var known: Set<String> = []
        for r in records {
            out.line("run \(r.run)  \(r.dataset) → \(r.outPath)")
            for p in r.parts {
                known.insert(p.batchID)
                out.line(
                    "  \(Self.describe(p.batchID, model: p.model, status: p.status, fresh[p.batchID], collected: p.collected))"
                )
            }
        }
        let others = fresh.values.filter { !known.contains($0.id) }.sorted { ($0.createdAt ?? 0) > ($1.createdAt ?? 0) }
        if !others.isEmpty {
            out.line("not sent by promptline:")
            for b in others {
                out.line("  \(Self.describe(b.id, model: b.model ?? "?", status: b.status, b, collected: false))")
            }
        }
    }

    static func describe(_ id: String, model: String, status: String, _ b: RemoteBatch?, collected: Bool) -> String {
        var s = "\(id)  \(b?.status ?? status)  \(model)"
        if let b, b.total > 0 { s += "  \(b.completed + b.failed)/\(b.total) done, \(b.failed) failed" }
        if collected {
            s += "  collected"
        } else if b?.isFinished ?? false {
            s += "  (:batch resume \(id) collects it)"
        }
        return s
    }
}
