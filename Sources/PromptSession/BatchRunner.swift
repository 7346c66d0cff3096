import Foundation
import QueryCore

/// `:batch`: the template run over every row of a dataset (× every `:compare`-style variant),
/// each row on its own (the system prompt and the filled template, no conversation), with the
/// session's function, tools and output schema, `concurrency` requests at a time. Each result
/// is appended to the results file as it finishes; rows already there (without an error) are
/// not sent again, so a stopped run is resumed by running it again.
public struct BatchRunner {
    public struct Progress: Sendable {
        public var done: Int
        public var failed: Int
        public var total: Int
        public var started: Date
        /// Requests that may be in flight now: the concurrency asked for, lowered after 429s.
        public var concurrency = 0
    }

    public var template: String
    public var rows: [[String: String]]
    public var variants: [Session.Variant]
    /// The client for each variant (its provider's).
    public var clients: [QueryClient]
    public var concurrency: Int
    public var outPath: String
    /// Grades the model-graded assertions (`llm-rubric`, …), concurrently with the run.
    public var grader: Grader?
    /// Each row's assertions and threshold, given apart from its variables (an eval file's
    /// tests); nil: from the row's `assert` and `expected` columns.
    public var rowChecks: [RowChecks]?
    /// How many times each row is sent under each variant (`repeat=N`: pass@N and stability).
    public var repeats = 1

    /// What a row is checked with besides the session's assertions.
    public struct RowChecks: Sendable {
        public var assertions: [Assertion]
        /// The weighted score the row must reach; nil: the session's rule.
        public var threshold: Double?
        public init(assertions: [Assertion], threshold: Double? = nil) {
            (self.assertions, self.threshold) = (assertions, threshold)
        }
    }

    public init(
        template: String, rows: [[String: String]], variants: [Session.Variant], clients: [QueryClient],
        concurrency: Int, outPath: String
    ) {
        (self.template, self.rows, self.variants, self.clients) = (template, rows, variants, clients)
        (self.concurrency, self.outPath) = (max(1, concurrency), outPath)
    }

    /// One request to send: its row and variant, and what was filled in.
    public struct Job: Sendable {
        public var row: Int
        public var variant: Int
        public var vars: [String: String]
        public var prompt: String
        public var request: QueryRequest
        /// The row's own assertions (its `assert` column), checked beside the session's.
        public var assertions: [Assertion] = []
        /// The row's own threshold (an eval file's test); nil: the session's.
        public var threshold: Double?
        /// Which of the row's `repeats` sends this is, from 0.
        public var repetition = 0
    }

    /// Runs what the results file does not have yet. Cancelling the task stops it cleanly: the
    /// requests in flight are cancelled and not recorded, everything finished is in the file.
    /// - Throws: ``SessionError`` when a row's template cannot be filled (before anything is
    ///   sent) or the results file cannot be written.
    public func run(session: Session, stop: BatchStop = BatchStop(), progress: (Progress) -> Void = { _ in })
        async throws
        -> BatchSummary
    {
        var summary = BatchSummary(variants: variants.map(\.label), outPath: outPath)
        summary.repeats = repeats
        let done = try Self.completed(in: outPath)
        let redactor = self.redactor  // the file holds prompts redacted
        var jobs: [Job] = []
        var regrades: [Regrade] = []
        for job in try makeJobs(session: session) {
            // What the file has already counts in the summary: it is this run's result too.
            if let line = done[key(job, redactor)], Self.needsGrading(job, line, session: session) {
                regrades.append(Regrade(job: job, line: line))
            } else if let line = done[key(job, redactor)], let cell = EvalRun.Cell(json: line) {
                summary.add(cell)
            } else {
                jobs.append(job)
            }
        }
        summary.skipped = rows.count * variants.count * repeats - jobs.count
        let out = try Self.openForAppend(outPath)
        defer { try? out.close() }
        let gate = BatchConcurrency(maximum: concurrency)
        let clients = clients(through: gate)
        // The grader's requests take their places in the same gate: the run's load stays `concurrency`.
        let graded = GradingPlan(
            session: session,
            grader: grader.map { g in
                var g = g
                g.client.attemptGate = gate
                return g
            })
        try await regradeAll(
            regrades, session: session, grader: graded.grader, out: out, summary: &summary, stop: stop)
        var state = Progress(done: 0, failed: 0, total: jobs.count, started: Date(), concurrency: concurrency)
        progress(state)
        try await withThrowingTaskGroup(of: Finished.self) { group in
            var next = 0
            var running = 0
            func launch() {
                let job = jobs[next]
                let client = clients[job.variant]
                next += 1
                running += 1
                group.addTask { await graded.grade(Self.send(job, client)) }
            }
            group.addTask { await stop.wait() }
            // More rows are under way than may be in flight: those waiting to be sent again hold
            // no place in the gate, so the others keep it busy.
            while next < min(concurrency * Self.rowsPerPlace, jobs.count) { launch() }
            while running > 0, let finished = try await group.next() {
                switch finished {
                case .stop:
                    group.cancelAll()  // the requests in flight end as cancelled, unrecorded
                    continue
                case .cancelled:
                    running -= 1
                case .result(let job, let result, let grades):
                    running -= 1
                    let r = record(job, result, session: session, grades: grades)
                    try Self.append(r, to: out, redactor: redactor)
                    summary.add(r)
                    state.done += 1
                    if r.failed { state.failed += 1 }
                    state.concurrency = await gate.limit
                    progress(state)
                }
                if next < jobs.count && !stop.isRequested && !Task.isCancelled { launch() }
            }
            group.cancelAll()  // the stop watcher
        }
        summary.cancelled = stop.isRequested || Task.isCancelled
        summary.rateLimited = await gate.rateLimited
        summary.concurrency = (concurrency, await gate.lowest)
        return summary
    }

    /// The variants' clients, each attempt of theirs let through `gate`. The gate bounds the
    /// load on the server (a row waiting to retry frees its place for another), so a row's own
    /// backoff only delays that row: it is short, 0.1 s doubling up to 1 s.
    func clients(through gate: BatchConcurrency) -> [QueryClient] {
        clients.map { c in
            var c = c
            c.attemptGate = gate
            c.retryPolicy.baseDelay = min(c.retryPolicy.baseDelay, 0.1)
            c.retryPolicy.maxDelay = min(c.retryPolicy.maxDelay, 1)
            return c
        }
    }

    /// Rows under way for each place in flight: enough that rows waiting out a retry's backoff
    /// (0.5 s and more, against milliseconds for a loopback answer) leave no place idle.
    static let rowsPerPlace = 8

    /// The key `job`'s line has in the results file (which holds prompts redacted).
    func key(_ job: Job, _ redactor: Redactor) -> String {
        BatchResult.key(
            row: job.row, variant: variants[job.variant].label, prompt: redactor.redact(job.prompt),
            repetition: job.repetition)
    }

    /// Every (row, variant) request, filled and built before the first is sent.
    func makeJobs(session: Session) throws -> [Job] {
        // Each variant's request is built once (the session's function, tools, schema and the
        // variant's options); a row changes only its messages. The conversation is not sent.
        let system = try session.filledSystem().map { [ChatMessage.system($0)] } ?? []
        let bases = try variants.enumerated().map { k, v in
            var r = try session.request(prompt: "", results: [], client: clients[k], stream: false)
            r.options = v.options
            r.options["model"] = nil
            r.model = v.model
            return r
        }
        var jobs: [Job] = []
        for (i, row) in rows.enumerated() {
            let vars = session.vars.merging(row) { _, r in r }
            var filled: [String: String] = [:]  // by template: the variants' prompts may differ
            let checks = try rowChecks?[i] ?? defaultChecks(row, at: i, session: session)
            for k in variants.indices {
                let t = variants[k].template ?? template
                let prompt = try filled[t] ?? Self.fill(t, vars, row: i)
                filled[t] = prompt
                var r = bases[k]
                r.messages = system + [.user(prompt)]
                for n in 0..<repeats {
                    var job = Job(
                        row: i, variant: k, vars: row, prompt: prompt, request: r, assertions: checks.assertions)
                    (job.threshold, job.repetition) = (checks.threshold, n)
                    jobs.append(job)
                }
            }
        }
        return jobs
    }

    static func fill(_ template: String, _ vars: [String: String], row i: Int) throws -> String {
        do {
            return try Template.fill(template, vars)
        } catch let e as SessionError {
            throw SessionError("row \(i + 1): \(e.message)")
        }
    }

    /// A dataset row's own checks: its `assert` column, or `expected` when nothing else says what
    /// to check (promptfoo's default).
    func defaultChecks(_ row: [String: String], at i: Int, session: Session) throws -> RowChecks {
        RowChecks(
            assertions: session.assertions.isEmpty || row["assert"] != nil ? try Self.rowAssertions(row, at: i) : [])
    }

    /// What a child task of the run ends with.
    enum Finished: Sendable {
        case result(Job, Result<QueryResult, Error>, Grades = Grades())
        /// The request was cancelled (the run stopped): nothing to record.
        case cancelled
        /// The stop was requested (Ctrl-C).
        case stop
    }

    /// Sends one job; each of its attempts waits for its place in the client's gate.
    static func send(_ job: Job, _ client: QueryClient) async -> Finished {
        if Task.isCancelled { return .cancelled }
        do {
            let result = try await client.run(job.request) { _ in }
            return .result(job, .success(result))
        } catch QueryError.cancelled {
            return .cancelled
        } catch {
            return .result(job, .failure(error))
        }
    }

    /// The result line of a finished job: its output checked against the session's schemas,
    /// and against the session's assertions and the row's own, the row's variables filling them.
    func record(_ job: Job, _ result: Result<QueryResult, Error>, session: Session, grades: Grades = Grades())
        -> BatchResult
    {
        var r = BatchResult(
            job: job, label: variants[job.variant].label, model: variants[job.variant].model, result: result,
            check: session.check, prices: session.prices)
        if repeats > 1 { r.repetition = job.repetition }
        let finish = (try? result.get())?.info.finishReason
        r.assertions = session.assertionResult(
            for: r.output, finishReason: finish, cost: r.cost, latency: r.latency, vars: job.vars,
            extraAssertions: job.assertions, prompt: job.prompt, grades: grades, threshold: job.threshold)
        return r
    }

    /// What a run's finished requests are graded with: the session's model-graded assertions
    /// and each row's, the session's variables under the row's.
    struct GradingPlan: Sendable {
        var assertions: [Assertion]
        var vars: [String: String]
        var grader: Grader?

        init(session: Session, grader: Grader?) {
            (assertions, vars, self.grader) = (session.assertions, session.vars, grader)
        }

        /// `finished` with the grader's verdicts on its output, when it has model-graded assertions.
        func grade(_ finished: Finished) async -> Finished {
            guard let grader, case .result(let job, let result, _) = finished, case .success(let q) = result else {
                return finished
            }
            let all = (assertions + job.assertions).filter { $0.kind.isModelGraded }
            guard !all.isEmpty else { return finished }
            let text = AssertionInput(output: TranscriptEvent.Turn(prompt: job.prompt, outcome: .success(q)).output)
                .text
            let grades = await Assertion.grades(
                all, text: text, vars: vars.merging(job.vars) { _, r in r }, prompt: job.prompt, grader: grader)
            return .result(job, result, grades)
        }
    }

    /// A row's `assert` column: a JSON list of `{type, value[, weight, threshold]}` objects; a
    /// row without one but with an `expected` column is checked with `equals {{expected}}`.
    /// - Throws: ``SessionError`` naming the row, before anything is sent.
    static func rowAssertions(_ row: [String: String], at i: Int) throws -> [Assertion] {
        guard let text = row["assert"] else {
            return row["expected"] == nil ? [] : [Assertion(.equals, "{{expected}}")]
        }
        guard let list = (try? JSONValue.parse(text))?.arrayValue else {
            throw SessionError(
                "row \(i + 1): the assert column must be a list of {\"type\": …, \"value\": …} objects "
                    + "(e.g. [{\"type\":\"contains\",\"value\":\"Paris\"}])")
        }
        do {
            return try list.map(Assertion.init(json:))
        } catch let e as SessionError {
            throw SessionError("row \(i + 1): \(e.message)")
        }
    }

    /// The lines the results file already has without an error, by their (row, variant, prompt,
    /// repetition) key. A torn last line (a run killed mid-write) is not one of them.
    static func completed(in path: String) throws -> [String: JSONValue] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        var lines: [String: JSONValue] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let v = try? JSONValue.parse(String(line)), let row = v["row"]?.intValue,
                v["error"] == nil || v["error"] == .null
            else { continue }
            let key = BatchResult.key(
                row: row, variant: v["variant"]?.stringValue ?? "", prompt: v["prompt"]?.stringValue ?? "",
                repetition: max(0, (v["repeat"]?.intValue ?? 1) - 1))
            lines[key] = v
        }
        return lines
    }

    static func openForAppend(_ path: String) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            else { throw SessionError("cannot create the results file \(path)") }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw SessionError("cannot write \(path)") }
        // A torn last line (a run killed mid-write) is cut off, so the file stays one object a line.
        let data = FileManager.default.contents(atPath: path) ?? Data()
        if let last = data.last, last != UInt8(ascii: "\n") {
            let keep = (data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
            try? h.truncate(atOffset: UInt64(keep))
        }
        _ = try? h.seekToEnd()
        return h
    }

    static func append(_ r: BatchResult, to h: FileHandle, redactor: Redactor) throws {
        do {
            try h.write(contentsOf: Data(redactor.line(r.json)))
        } catch {
            throw SessionError("cannot append to the results file: \(error.localizedDescription)")
        }
    }
}

/// Stops a batch run from outside it (Ctrl-C): the requests in flight are cancelled, nothing
/// more is sent, and what finished stays in the results file.
public final class BatchStop: @unchecked Sendable {
    // @unchecked: `requested` is only touched under `lock`.
    private let lock = NSLock()
    private var requested = false

    public init() {}

    public func request() { lock.withLock { requested = true } }

    public var isRequested: Bool { lock.withLock { requested } }

    /// Returns once a stop is requested (or the waiting task is cancelled).
    func wait() async -> BatchRunner.Finished {
        while !isRequested {
            if Task.isCancelled { return .cancelled }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return .stop
    }
}
