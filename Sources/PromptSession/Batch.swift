import Foundation
import QueryCore

/// A dataset for `:batch`: rows of variables, from JSONL (one object a line), a JSON array of
/// objects, or CSV with a header row. Values that are not text are kept as JSON text.
public struct BatchFile: Sendable {
    public var rows: [[String: String]]

    /// - Throws: ``SessionError`` naming the file and the line at fault.
    public static func load(_ path: String) throws -> BatchFile {
        let text = try Session.readText(path, what: "batch")
        let lower = path.lowercased()
        do {
            if lower.hasSuffix(".csv") { return BatchFile(rows: try csvRows(text)) }
            return BatchFile(rows: try jsonRows(text))
        } catch let e as SessionError {
            throw SessionError("batch file \(path): \(e.message)")
        }
    }

    static func jsonRows(_ text: String) throws -> [[String: String]] {
        if text.first == "[", let list = (try? JSONValue.parse(text))?.arrayValue {
            return try list.enumerated().map { try row($1, "item \($0 + 1)") }
        }
        var rows: [[String: String]] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let v = try? JSONValue.parse(String(line)) else {
                throw SessionError("line \(n + 1) is not JSON (a row is one JSON object per line, or use .csv)")
            }
            rows.append(try row(v, "line \(n + 1)"))
        }
        return rows
    }

    static func row(_ v: JSONValue, _ at: String) throws -> [String: String] {
        guard let o = v.objectValue else { throw SessionError("\(at) is not an object of variables") }
        return o.reduce(into: [:]) { $0[$1.key] = $1.value.stringValue ?? $1.value.serialized() }
    }

    /// RFC 4180: fields in double quotes may hold commas, newlines and doubled quotes. Read a
    /// byte at a time from the text's own storage: the fields take about the file's size, not
    /// one `Character` (16+ bytes) per byte of it.
    static func csvRows(_ text: String) throws -> [[String: String]] {
        var text = text
        let parsed = text.withUTF8 { csvRecords($0) }
        guard var records = parsed else { throw SessionError("a quoted field is not closed") }
        records.removeAll { $0.isEmpty || $0 == [""] }
        return try csvTable(records)
    }

    /// The records of `bytes` (nil: a quoted field is not closed at the end).
    static func csvRecords(_ bytes: UnsafeBufferPointer<UInt8>) -> [[String]]? {
        let quote = UInt8(ascii: "\"")
        let comma = UInt8(ascii: ",")
        let lf = UInt8(ascii: "\n")
        let cr = UInt8(ascii: "\r")
        var records: [[String]] = [[]]
        var field: [UInt8] = []
        var quoted = false
        var i = 0
        func endField() {
            records[records.count - 1].append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
        }
        while i < bytes.count {
            let c = bytes[i]
            i += 1
            if quoted {
                if c != quote {
                    field.append(c)
                } else if i < bytes.count && bytes[i] == quote {
                    field.append(quote)
                    i += 1
                } else {
                    quoted = false
                }
            } else if c == quote && field.isEmpty {
                quoted = true
            } else if c == comma {
                endField()
            } else if c == lf || c == cr {
                if c == cr && i < bytes.count && bytes[i] == lf { i += 1 }
                endField()
                records.append([])
            } else {
                field.append(c)
            }
        }
        if quoted { return nil }
        if !field.isEmpty || !(records.last ?? []).isEmpty { endField() }
        return records
    }

    /// Rows as variables named by the header row.
    static func csvTable(_ records: [[String]]) throws -> [[String: String]] {
        guard let header = records.first else { throw SessionError("no header row") }
        return try records.dropFirst().enumerated().map { n, r in
            guard r.count == header.count else {
                throw SessionError("row \(n + 2) has \(counted(r.count, "field")), the header \(header.count)")
            }
            return Dictionary(zip(header, r), uniquingKeysWith: { _, b in b })
        }
    }
}

extension BatchRunner {
    /// What the results file is redacted with: every client's key and the environment's keys
    /// (a `--var` holding a key, a reply echoing one).
    public var redactor: Redactor {
        Redactor(clients.flatMap { $0.redactor.secrets } + Redactor.environmentKeys())
    }
}

/// One row's result under one variant: a line of the results file.
public struct BatchResult: Sendable {
    public var row: Int
    public var variant: String
    public var vars: [String: String]
    public var prompt: String
    public var output: TranscriptEvent.Output
    public var violations: [String] = []
    public var inputTokens: Int?
    public var outputTokens: Int?
    public var latency: Double?
    public var cost: Double?
    /// The assertions' verdicts (the session's and the row's); nil when there are none.
    public var assertions: AssertionResult?
    /// Which of a row's repeated sends this is, from 0 (nil: the row is sent once).
    public var repetition: Int?
    /// Why the model stopped, as the server said (`finish-reason` is checked against it).
    public var finishReason: String?

    public var failed: Bool { if case .error = output { true } else { false } }

    init(row: Int, variant: String, vars: [String: String], prompt: String, output: TranscriptEvent.Output) {
        (self.row, self.variant, self.vars, self.prompt, self.output) = (row, variant, vars, prompt, output)
    }

    /// The result line of a finished job, sent directly or through a remote batch: its output
    /// checked by `check`, its cost priced by `prices` (`priceFactor`: the Batch API's discount).
    /// A remote result has no latency of its own (`latency` false).
    init(
        job: BatchRunner.Job, label: String, model: String, result: Result<QueryResult, Error>,
        check: (TranscriptEvent.Output) -> [SchemaViolation], prices: PriceTable, priceFactor: Double = 1,
        latency: Bool = true
    ) {
        self.init(row: job.row, variant: label, vars: job.vars, prompt: job.prompt, output: .cancelled)
        switch result {
        case .success(let q):
            output = TranscriptEvent.Turn(prompt: job.prompt, outcome: .success(q)).output
            violations = check(output).map(\.description)
            (inputTokens, outputTokens) = (q.inputTokens, q.outputTokens)
            finishReason = q.info.finishReason
            self.latency = latency ? q.requestTime : nil
            cost =
                prices.cost(
                    model: model, responseModel: q.info.model, inputTokens: q.inputTokens, outputTokens: q.outputTokens,
                    usage: q.info.usage
                ).map { $0 * priceFactor }
        case .failure(let e):
            output = .error((e as? QueryError)?.description ?? "\(e)")
        }
    }

    /// The result file's line: row, variant, variables, the prompt sent, the output (text, the
    /// function's arguments or the tool calls), the schema check, tokens, latency, cost, error.
    public var json: JSONValue {
        var o: JSONObject = ["row": .integer(Int64(row))]
        if !variant.isEmpty { o["variant"] = .string(variant) }
        if let n = repetition { o["repeat"] = .integer(Int64(n + 1)) }
        o["vars"] = .object(JSONObject(vars.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
        o["prompt"] = .string(prompt)
        switch output {
        case .text(let t): o["output"] = .string(t)
        case .functionCall(let c): o["arguments"] = c.arguments == .null ? .string(c.rawArguments) : c.arguments
        case .toolCalls(let calls, let t):
            o["output"] = .string(t)
            o["tool_calls"] = .array(calls.map { ["name": .string($0.name), "arguments": $0.arguments] })
        case .error(let m): o["error"] = .string(m)
        case .cancelled: o["error"] = "cancelled"
        }
        o["schema_violations"] = .array(violations.map { .string($0) })
        o["input_tokens"] = inputTokens.map { .integer(Int64($0)) } ?? .null
        o["output_tokens"] = outputTokens.map { .integer(Int64($0)) } ?? .null
        o["latency"] = latency.map { .double($0) } ?? .null
        o["cost"] = cost.map { .double($0) } ?? .null
        if let f = finishReason { o["finish_reason"] = .string(f) }
        if let a = assertions {
            o["assertions"] = .array(a.verdicts.map(\.json))
            o["pass"] = .bool(a.pass)
            o["score"] = .double(a.score)
        }
        if o["error"] == nil { o["error"] = .null }
        return .object(o)
    }

    /// A line of a results file read back (to grade it again): everything but the verdicts.
    /// A function call's name is not in the line; it is `functionName`, the session's function.
    init?(line v: JSONValue, functionName: String) {
        guard let row = v["row"]?.intValue, v["error"] == nil || v["error"] == .null else { return nil }
        var vars: [String: String] = [:]
        if case .object(let o)? = v["vars"] {
            for (k, x) in o { vars[k] = x.stringValue ?? x.serialized() }
        }
        let text = v["output"]?.stringValue ?? ""
        let output: TranscriptEvent.Output
        if let calls = v["tool_calls"]?.arrayValue, !calls.isEmpty {
            output = .toolCalls(
                calls.map { c in
                    let args = c["arguments"] ?? .object([:])
                    return FunctionCall(
                        name: c["name"]?.stringValue ?? "", arguments: args, rawArguments: args.serialized())
                },
                text: text)
        } else if let args = v["arguments"], args != .null {
            let raw = args.stringValue ?? args.serialized()
            let parsed = args.stringValue == nil ? args : .null  // a string: arguments that did not parse
            output = .functionCall(FunctionCall(name: functionName, arguments: parsed, rawArguments: raw))
        } else {
            output = .text(text)
        }
        self.init(
            row: row, variant: v["variant"]?.stringValue ?? "", vars: vars, prompt: v["prompt"]?.stringValue ?? "",
            output: output)
        violations = (v["schema_violations"]?.arrayValue ?? []).compactMap(\.stringValue)
        (inputTokens, outputTokens) = (v["input_tokens"]?.intValue, v["output_tokens"]?.intValue)
        (latency, cost) = (v["latency"]?.doubleValue, v["cost"]?.doubleValue)
        repetition = v["repeat"]?.intValue.map { $0 - 1 }
        finishReason = v["finish_reason"]?.stringValue
    }

    /// What a rerun skips by: the row, the variant, the prompt sent (another template, or other
    /// data in the row, is another request) and which of its repeated sends it is.
    static func key(row: Int, variant: String, prompt: String, repetition: Int = 0) -> String {
        "\(row)|\(variant)|\(prompt)" + (repetition > 0 ? "|#\(repetition + 1)" : "")
    }
}

extension BatchSummary.Totals {
    public var passRate: Double? { graded > 0 ? Double(passed) / Double(graded) : nil }
    public var meanScore: Double? { graded > 0 ? scoreSum / Double(graded) : nil }
    /// Rows with at least one passing send.
    public var passAtN: Int { runs.values.filter { $0.passed > 0 }.count }
    /// The mean over rows of the share of sends that agreed with the row's most common output.
    public var stability: Double? {
        runs.isEmpty ? nil : runs.values.reduce(0) { $0 + $1.agreement } / Double(runs.count)
    }
}

extension JSONValue {
    /// A result line's output as ``EvalRun/Cell`` reads it (what repeated sends are compared by).
    var outputText: String { EvalRun.Cell.output(of: self) }
}

/// Totals of a batch run, per variant, for the summary.
public struct BatchSummary: Sendable {
    public struct Totals: Sendable {
        public var ok = 0
        public var failed = 0
        public var inputTokens = 0
        public var outputTokens = 0
        public var cost: Double?
        public var latencies: [Double] = []
        /// Rows whose assertions were checked, those that passed them, and their scores' sum.
        public var graded = 0
        public var passed = 0
        public var scoreSum = 0.0
        /// Each row's sends (several with `repeat=N`): how many passed, and each output's count.
        public var runs: [Int: RowRuns] = [:]
    }

    /// A row's repeated sends under one variant.
    public struct RowRuns: Sendable {
        public var sent = 0
        public var passed = 0
        public var outputs: [String: Int] = [:]

        /// The share of the sends that gave the most common output.
        public var agreement: Double { sent > 0 ? Double(outputs.values.max() ?? 0) / Double(sent) : 0 }
    }

    /// A row × variant whose assertions failed, and the first assertion that did.
    public struct Failure: Sendable {
        public var row: Int
        public var variant: String
        public var repetition: Int?
        public var verdict: String
    }
    public var variants: [String]
    public var totals: [String: Totals] = [:]
    /// Rows × variants already in the results file (a resumed run does not send them again).
    public var skipped = 0
    /// Of those, the lines checked again (their verdicts were missing or ungraded).
    public var regraded = 0
    /// 429s answered to the run's requests.
    public var rateLimited = 0
    /// The concurrency asked for, and the lowest the run went down to after 429s.
    public var concurrency = (asked: 0, lowest: 0)
    public var cancelled = false
    public var outPath: String
    /// Each row's sends under each variant (`repeat=N`).
    public var repeats = 1
    /// The rows whose assertions failed, in the order they finished.
    public var failures: [Failure] = []

    public init(variants: [String], outPath: String) { (self.variants, self.outPath) = (variants, outPath) }

    mutating func add(_ r: BatchResult) {
        let failing = r.assertions.flatMap { a in a.pass ? nil : a.verdicts.first { !$0.pass }?.line ?? "✗ score" }
        add(
            variant: r.variant, row: r.row, failed: r.failed, tokens: (r.inputTokens, r.outputTokens), cost: r.cost,
            latency: r.latency, verdict: r.assertions.map { ($0.pass, $0.score) }, output: r.json.outputText,
            failing: failing.map { Failure(row: r.row, variant: r.variant, repetition: r.repetition, verdict: $0) })
    }

    /// A line already in the results file (a rerun does not send it again).
    mutating func add(_ c: EvalRun.Cell) {
        let failing = c.pass == false ? c.verdicts.first { !$0.pass }?.line ?? "✗ score" : nil
        add(
            variant: c.variant, row: c.row, failed: c.error != nil, tokens: (c.inputTokens, c.outputTokens),
            cost: c.cost, latency: c.latency, verdict: c.pass.map { ($0, c.score ?? ($0 ? 1 : 0)) }, output: c.output,
            failing: failing.map {
                Failure(row: c.row, variant: c.variant, repetition: repeats > 1 ? c.repetition - 1 : nil, verdict: $0)
            })
    }

    // swift-format-ignore: one argument per figure of a result
    private mutating func add(
        variant: String, row: Int, failed: Bool, tokens: (Int?, Int?), cost: Double?, latency: Double?,
        verdict: (pass: Bool, score: Double)?, output: String, failing: Failure?
    ) {
        var t = totals[variant] ?? Totals()
        if failed { t.failed += 1 } else { t.ok += 1 }
        t.inputTokens = t.inputTokens.adding(tokens.0 ?? 0)
        t.outputTokens = t.outputTokens.adding(tokens.1 ?? 0)
        if let c = cost { t.cost = (t.cost ?? 0) + c }
        if let l = latency, !failed { t.latencies.append(l) }
        var runs = t.runs[row] ?? RowRuns()
        runs.sent += 1
        runs.outputs[failed ? "\u{0}error" : output, default: 0] += 1
        if let v = verdict {
            t.graded += 1
            t.scoreSum += v.score
            if v.pass {
                t.passed += 1
                runs.passed += 1
            }
        }
        t.runs[row] = runs
        totals[variant] = t
        if let failing { failures.append(failing) }
    }

    public var failed: Int { totals.values.reduce(0) { $0 + $1.failed } }

    /// One line per variant (ok, failed, tokens, cost, latency p50/p95), the failing rows, then
    /// where the results are.
    public func report() -> String {
        ([headline] + (variants.count > 1 ? table() : [line(variants.first ?? "")]) + failingRows()
            + ["  results: \(outPath)"])
            .joined(separator: "\n")
    }

    /// The report's first line: done or stopped, rows skipped, rate limits met.
    public var headline: String {
        var head = cancelled ? "batch stopped (Ctrl-C)" : "batch done"
        if skipped > 0 { head += "; \(skipped) already in the results file, not sent again" }
        if regraded > 0 { head += " (\(regraded) graded again)" }
        if rateLimited > 0 {
            head +=
                "; rate limited \(rateLimited) time\(rateLimited == 1 ? "" : "s")"
                + " (concurrency lowered to \(concurrency.lowest) of \(concurrency.asked) at the least)"
        }
        return head
    }

    /// What ``figures(_:)`` gives, in order.
    public static let figureNames = ["ok", "failed", "tokens in", "tokens out", "cost", "latency p50", "latency p95"]

    /// The figures a summary shows: ``figureNames``; the pass rate and mean score when rows were
    /// checked; pass@N and the outputs' agreement when each row was sent N times.
    public var shownFigureNames: [String] {
        Self.figureNames + (graded ? ["pass rate", "mean score"] : [])
            + (repeats > 1 ? (graded ? ["pass@\(repeats)"] : []) + ["stability"] : [])
    }

    /// One variant's figures, as ``shownFigureNames`` names them.
    public func figures(_ v: String) -> [String] {
        let t = totals[v] ?? Totals()
        let p = { (q: Double) in SessionStats.percentile(t.latencies, q).map { String(format: "%.2f s", $0) } ?? "–" }
        var f = [
            "\(t.ok)", "\(t.failed)", "\(t.inputTokens)", "\(t.outputTokens)", PriceTable.format(t.cost), p(50), p(95),
        ]
        if graded { f += [Self.passRate(t), t.meanScore.map { String(format: "%.2f", $0) } ?? "–"] }
        if repeats > 1 {
            if graded { f.append(Self.rate(t.passAtN, of: t.runs.count)) }
            f.append(t.stability.map { String(format: "%.0f%%", $0 * 100) } ?? "–")
        }
        return f
    }

    /// `75% (3/4)`, or – when no row was checked.
    static func passRate(_ t: Totals) -> String { rate(t.graded > 0 ? t.passed : nil, of: t.graded) }

    static func rate(_ n: Int?, of total: Int) -> String {
        guard let n, total > 0 else { return "–" }
        return String(format: "%.0f%%", Double(n) * 100 / Double(total)) + " (\(n)/\(total))"
    }

    /// The lowest pass rate of any variant (nil when no row was checked), for `--eval`'s threshold.
    public var lowestPassRate: (variant: String, rate: Double)? {
        variants.compactMap { v in totals[v]?.passRate.map { (v, $0) } }.min { $0.1 < $1.1 }
    }

    /// The failing rows, at most `limit`: `row 3 · B: ✗ contains "Paris" — …`.
    public func failingRows(limit: Int = 10) -> [String] {
        guard !failures.isEmpty else { return [] }
        let sorted = failures.sorted {
            ($0.row, $0.variant, $0.repetition ?? 0) < ($1.row, $1.variant, $1.repetition ?? 0)
        }
        var lines = ["failing rows (\(failures.count)):"]
        for f in sorted.prefix(limit) {
            let variant = f.variant.isEmpty ? "" : " · \(f.variant)"
            let run = f.repetition.map { " (run \($0 + 1))" } ?? ""
            lines.append("  row \(f.row)\(variant)\(run): \(f.verdict)")
        }
        if failures.count > limit { lines.append("  … and \(failures.count - limit) more (:report shows them all)") }
        return lines
    }

    /// Whether any row of the run was checked against assertions.
    var graded: Bool { totals.values.contains { $0.graded > 0 } }

    /// The one variant of a plain run.
    public func line(_ v: String) -> String {
        let f = figures(v)
        let more = zip(shownFigureNames, f).dropFirst(Self.figureNames.count).map { " · \($0) \($1)" }
        return
            "  \(f[0]) ok, \(f[1]) failed · tokens in \(f[2]) out \(f[3]) · cost \(f[4]) · latency p50 \(f[5]) p95 \(f[6])"
            + more.joined()
    }

    /// Variants side by side: a row per figure, a column per variant.
    func table() -> [String] {
        let names = [""] + shownFigureNames
        let columns = variants.map { Array(([$0] + figures($0)).prefix(names.count)) }
        let labelWidth = names.map(\.count).max() ?? 0
        let widths = columns.map { c in c.map(\.count).max() ?? 0 }
        return names.indices.map { row in
            let cells = columns.indices.map { c in
                let cell = columns[c][row]
                return String(repeating: " ", count: widths[c] - cell.count) + cell
            }
            return "  " + names[row].padding(toLength: labelWidth, withPad: " ", startingAt: 0) + "  "
                + cells.joined(separator: "   ")
        }
    }
}
