import Foundation
import PromptSession
import QueryCore
import Terminal

/// `:compare`: one prompt, run once per combination of settings, concurrently (4 at a time),
/// shown side by side when the terminal is wide enough and stacked otherwise. Function-call
/// outputs are compared field by field.
extension REPL {
    /// How many variants run at once.
    static let comparisonConcurrency = 4

    func runComparison(_ variants: [Session.Variant], prompt: String) async {
        let base = await turnClient()
        var requests: [QueryRequest] = []
        var clients: [QueryClient] = []
        do {
            for v in variants {
                var client = base
                if v.provider != session.provider {
                    client = try makeClient(v.provider)
                    client.forcedCall = session.forcedCall
                }
                clients.append(client)
                var r = try session.request(prompt: prompt, results: [], client: client, stream: false)
                r.messages = session.messages(rerunning: prompt)
                r.options = v.options
                r.options["model"] = nil
                r.model = v.model
                requests.append(r)
            }
        } catch {
            err.error("\(REPL.explain(error))")
            return
        }
        let renderer = TurnRenderer(out: out)
        renderer.start()
        let reqs = requests
        let sending = clients
        let concurrency = Self.comparisonConcurrency
        let task = Task { () -> [Result<QueryResult, Error>] in
            await withTaskGroup(of: VariantOutcome.self) { group in
                var results = [Result<QueryResult, Error>?](repeating: nil, count: reqs.count)
                var next = 0
                while next < min(concurrency, reqs.count) {
                    VariantOutcome.launch(next, of: reqs, with: sending[next], in: &group)
                    next += 1
                }
                for await done in group {
                    if results.indices.contains(done.index) { results[done.index] = done.result }
                    if next < reqs.count {
                        VariantOutcome.launch(next, of: reqs, with: sending[next], in: &group)
                        next += 1
                    }
                }
                return results.map { $0 ?? .failure(QueryError.cancelled) }
            }
        }
        let results = await InterruptHub.shared.whileRunning(cancel: { task.cancel() }, { await task.value })
        renderer.stop()
        if results.allSatisfy({ ($0.failureValue as? QueryError) == .cancelled }) {
            out.dim("cancelled")
        }
        var checks: [AssertionResult?] = []
        for (v, r) in zip(variants, results) { checks.append(await check(v, r, prompt: prompt)) }
        show(variants, results, checks: checks)
        let records = zip(variants, results).map { v, r in record(v, r) }
        transcript.noteComparison(
            TranscriptEvent.Comparison(at: Date(), prompt: prompt, variants: records),
            requestBodies: zip(requests, clients).map { try? $1.requestBody(for: $0) })
        autosave()
    }

    /// The session's assertions on a variant's output (nil when there are none).
    func check(_ v: Session.Variant, _ r: Result<QueryResult, Error>, prompt: String) async -> AssertionResult? {
        guard !session.assertions.isEmpty else { return nil }
        let rec = record(v, r)
        let q = try? r.get()
        return session.assertionResult(
            for: rec.output, finishReason: q?.info.finishReason, cost: rec.cost, latency: q?.requestTime,
            prompt: prompt, grades: await turnGrades(rec.output, prompt: prompt))
    }

    /// A cell's verdicts under its output: how many passed, then each failed one.
    static func verdictLines(_ a: AssertionResult?) -> String {
        guard let a else { return "" }
        let passed = a.verdicts.filter(\.pass).count
        let head =
            (a.pass ? "✓ PASS" : "✗ FAIL") + " \(passed)/\(a.verdicts.count)" + String(format: " · score %.2f", a.score)
        return "\n" + ([head] + a.verdicts.filter { !$0.pass }.map(\.line)).joined(separator: "\n")
    }

    /// A variant's record for the transcript.
    func record(_ v: Session.Variant, _ r: Result<QueryResult, Error>) -> TranscriptEvent.Comparison.Variant {
        let output: TranscriptEvent.Output
        var figures = TranscriptEvent.Figures(requestTime: nil, inputTokens: nil, outputTokens: nil, retries: 0)
        var cost: Double?
        switch r {
        case .success(let q):
            let turn = TranscriptEvent.Turn(prompt: "", outcome: .success(q))
            output = turn.output
            figures = turn.figures
            cost = costOf(q, model: v.model)
        case .failure(let e):
            output = (e as? QueryError) == .cancelled ? .cancelled : .error(Self.explain(e))
        }
        return .init(
            label: v.label, model: v.model, options: v.options, request: nil, output: output, figures: figures,
            cost: cost)
    }

    func costOf(_ r: QueryResult, model: String) -> Double? {
        session.prices.cost(
            model: model, responseModel: r.info.model, inputTokens: r.inputTokens, outputTokens: r.outputTokens,
            usage: r.info.usage)
    }

    func figures(_ r: Result<QueryResult, Error>, model: String) -> String {
        switch r {
        case .success(let q):
            return String(format: "%.2f s", q.requestTime)
                + " · \(q.inputTokens.map(String.init) ?? "?")/\(q.outputTokens.map(String.init) ?? "?") tok · cost \(PriceTable.format(costOf(q, model: model)))"
        case .failure(let e):
            return (e as? QueryError) == .cancelled ? "cancelled" : "failed"
        }
    }

    func body(_ r: Result<QueryResult, Error>) -> String {
        switch r {
        case .success(let q):
            switch q.output {
            case .text(let t):
                return out.isTTY
                    ? {
                        var s = TerminalSanitizer()
                        return s.clean(t)
                    }() : t
            case .functionCall(let c): return "→ \(c.name)\n" + c.arguments.serialized(pretty: true)
            case .toolCalls(let calls, let text):
                return (text.isEmpty ? "" : text + "\n")
                    + calls.map {
                        "→ \($0.name)(\($0.arguments == .null ? $0.rawArguments : $0.arguments.serialized()))"
                    }
                    .joined(separator: "\n")
            }
        case .failure(let e): return "error: " + Self.explain(e)
        }
    }

    /// The variants side by side when the terminal has room for columns of 28 cells or more
    /// (up to 4), stacked otherwise (and when piped); function calls then field by field. On a
    /// terminal every line is laid out to its width, measured in display cells.
    func show(_ variants: [Session.Variant], _ results: [Result<QueryResult, Error>], checks: [AssertionResult?] = []) {
        let verdicts = variants.indices.map { checks.indices.contains($0) ? Self.verdictLines(checks[$0]) : "" }
        let width = out.width
        let n = variants.count
        let columnWidth = n > 0 ? ((width ?? 0) - 3 * (n - 1)) / n : 0
        if let width, n <= 4, columnWidth >= 28 {
            sideBySide(variants, results, verdicts: verdicts, columnWidth: columnWidth, width: width)
        } else {
            for i in 0..<n {
                let label = "[\(variants[i].label)]"
                let figures = figures(results[i], model: variants[i].model)
                if let width, DisplayWidth.of(label + "  " + figures) > width {
                    for l in Layout.wrap(label, width: width, hanging: 2) { out.line("\(bold: l)") }
                    out.line(block: Layout.fold("  " + figures, width: width, hanging: 2).joined(separator: "\n"))
                } else {
                    out.line("\(bold: label)  \(figures)")
                }
                let text = body(results[i]) + verdicts[i]
                out.line(
                    block: width.map { Layout.wrap(Self.untabbed(text), width: $0).joined(separator: "\n") } ?? text)
            }
        }
        showArguments(variants, results, width: width)
    }

    func sideBySide(
        _ variants: [Session.Variant], _ results: [Result<QueryResult, Error>], verdicts: [String], columnWidth: Int,
        width: Int
    ) {
        let heads = variants.indices.map { i -> [String] in
            Layout.wrap(variants[i].label, width: columnWidth, hanging: 2)
                + Layout.fold(figures(results[i], model: variants[i].model), width: columnWidth, hanging: 2)
        }
        // The rules under the heads line up however many lines each head took.
        let headHeight = heads.map(\.count).max() ?? 0
        let columns = variants.indices.map { i -> [String] in
            heads[i] + Array(repeating: "", count: headHeight - heads[i].count)
                + [String(repeating: "─", count: columnWidth)]
                + Layout.wrap(Self.untabbed(body(results[i]) + verdicts[i]), width: columnWidth)
        }
        let rows = columns.map(\.count).max() ?? 0
        for r in 0..<rows {
            let cells = columns.map { col in DisplayWidth.pad(r < col.count ? col[r] : "", to: columnWidth) }
            out.line("\(Layout.trimmedRight(cells.joined(separator: " │ ")))")
        }
    }

    /// Function calls: one row per argument, marked where the variants disagree. On a terminal, a
    /// row too wide for it gives each variant's value a line of its own.
    func showArguments(_ variants: [Session.Variant], _ results: [Result<QueryResult, Error>], width: Int?) {
        let calls = results.map { r -> JSONObject? in
            if case .success(let q) = r, case .functionCall(let c) = q.output { return c.arguments.objectValue }
            return nil
        }
        guard calls.count > 1, calls.allSatisfy({ $0 != nil }) else { return }
        var keys: [String] = []
        for c in calls { for k in c!.keys where !keys.contains(k) { keys.append(k) } }
        out.line("arguments, field by field:")
        for k in keys {
            let values = calls.map { $0![k]?.serialized() ?? "(missing)" }
            let same = Set(values).count == 1
            let labelled = values.enumerated().map { "[\(variants[$0.offset].label)] \($0.element)" }
            let line = "  \(same ? " " : "≠") \(k): \(same ? values[0] : labelled.joined(separator: "  "))"
            guard let width, DisplayWidth.of(line) > width else {
                out.line("\(line)")
                continue
            }
            if same {
                out.line(block: Layout.wrap(line, width: width, hanging: 4).joined(separator: "\n"))
            } else {
                out.line(block: Layout.wrap("  ≠ \(k):", width: width, hanging: 4).joined(separator: "\n"))
                for v in labelled {
                    out.line(block: Layout.wrap("      " + v, width: width, hanging: 2).joined(separator: "\n"))
                }
            }
        }
    }

    /// Tabs as spaces, so that what is laid out measures as it shows.
    static func untabbed(_ s: String) -> String { s.replacingOccurrences(of: "\t", with: "    ") }
}

/// One finished `:compare` variant: which one, and how it went.
struct VariantOutcome: Sendable {
    let index: Int
    let result: Result<QueryResult, Error>

    /// Starts variant `i`. The child computes its result in full before returning it: returning
    /// `(i, .success(try await …))` directly is miscompiled by Swift 6.3 at -O — the index, known
    /// before the suspension, was written into the task's result buffer before it and lost across
    /// it (swiftlang/swift#91911, fixed after 6.3), so the release build read a garbage index and
    /// trapped in `results[i] = r`.
    static func launch(
        _ i: Int, of requests: [QueryRequest], with client: QueryClient, in group: inout TaskGroup<VariantOutcome>
    ) {
        group.addTask {
            let outcome: Result<QueryResult, Error>
            do { outcome = .success(try await client.run(requests[i]) { _ in }) } catch { outcome = .failure(error) }
            return VariantOutcome(index: i, result: outcome)
        }
    }
}

extension Result {
    var failureValue: Failure? { if case .failure(let e) = self { return e } else { return nil } }
}
