import Foundation
import QueryCore

/// A remote batch run (`:batch FILE remote`): what was sent through the provider's Batch API and
/// how to read the answers back, saved as `<batches>/remote/<run>.json` (mode 0600) as soon as a
/// batch is created — so a run is collected by its batch id after the REPL that sent it closed.
///
/// One run is one batch per (wire format, model): the Batch API takes one model per input file.
public struct RemoteBatchRecord: Sendable {
    /// How one variant's requests were built, enough to read their responses and check them
    /// without the session that sent them: its function, tools, choice, output schema and the
    /// forced-call strategy.
    public struct Variant: Sendable {
        public var label: String
        public var model: String
        public var provider: Provider
        public var request: QueryRequest
        public var forcedCall: ForcedCallStrategy
    }

    /// One batch of the run.
    public struct Part: Sendable {
        public var batchID: String
        public var inputFileID: String
        public var provider: Provider
        public var model: String
        /// The status last seen.
        public var status: String
        /// Its results are in the results file.
        public var collected = false
    }

    public var run: String
    public var created: Date
    /// The API's base URL, credentials left out.
    public var baseURL: String
    public var dataset: String
    public var outPath: String
    public var variants: [Variant]
    public var parts: [Part] = []
    /// Every request of the run by its `custom_id`.
    public var jobs: [String: BatchRunner.Job]

    public init(
        run: String, created: Date, baseURL: String, dataset: String, outPath: String, variants: [Variant],
        jobs: [String: BatchRunner.Job]
    ) {
        (self.run, self.created, self.baseURL, self.dataset) = (run, created, baseURL, dataset)
        (self.outPath, self.variants, self.jobs) = (outPath, variants, jobs)
    }

    public static func customID(_ job: BatchRunner.Job) -> String { "row-\(job.row + 1)-v\(job.variant)" }

    /// Where records are kept: `remote/` under the batch results' folder.
    public static func directory(batches: String) -> String { batches + "/remote" }

    public func path(in directory: String) -> String { directory + "/\(run).json" }

    /// Saves the record, every string in it redacted by `redactor` (a `--var` holding a key is
    /// in its jobs).
    /// - Throws: ``SessionError`` when the file cannot be written.
    public func save(in directory: String, redactor: Redactor) throws {
        try AtomicFile.makePrivateDirectory(directory)
        do {
            try AtomicFile.write(redactor.line(json), to: path(in: directory))
        } catch {
            throw SessionError("cannot save the remote batch record: \(error.localizedDescription)")
        }
    }

    /// Every record in `directory`, newest first; files that do not read as one are skipped.
    public static func all(in directory: String) -> [RemoteBatchRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.compactMap { name in
            FileManager.default.contents(atPath: directory + "/" + name).flatMap { try? JSONValue.parse([UInt8]($0)) }
                .flatMap { try? RemoteBatchRecord(json: $0) }
        }.sorted { $0.created > $1.created }
    }

    /// The record holding batch `id` (or the run named `id`).
    /// - Throws: ``SessionError`` naming where it looked.
    public static func find(_ id: String, in directory: String) throws -> RemoteBatchRecord {
        guard let r = all(in: directory).first(where: { $0.run == id || $0.parts.contains { $0.batchID == id } })
        else {
            throw SessionError(
                "no remote batch \(id) in \(directory) (:batches lists them; promptline keeps only those it sent)")
        }
        return r
    }

    public var json: JSONValue {
        var o: JSONObject = [
            "run": .string(run), "created": .double(created.timeIntervalSince1970), "base_url": .string(baseURL),
            "dataset": .string(dataset), "out": .string(outPath),
        ]
        o["variants"] = .array(
            variants.map { v in
                let r = v.request
                var shape: JSONObject = [
                    "label": .string(v.label), "model": .string(v.model), "provider": .string(v.provider.rawValue),
                    "forced_call": .string(v.forcedCall.rawValue), "tools": .array(r.tools.map(\.json)),
                ]
                shape["function"] = r.functionSpec?.json
                shape["output_schema"] = r.outputSchema?.json
                shape["tool_choice"] = r.toolChoice.map { .string($0.description) }
                return .object(shape)
            })
        o["parts"] = .array(
            parts.map {
                [
                    "batch_id": .string($0.batchID), "input_file_id": .string($0.inputFileID),
                    "provider": .string($0.provider.rawValue), "model": .string($0.model),
                    "status": .string($0.status), "collected": .bool($0.collected),
                ]
            })
        o["jobs"] = .object(
            JSONObject(
                jobs.sorted { ($0.value.row, $0.value.variant) < ($1.value.row, $1.value.variant) }.map { id, j in
                    let vars = JSONObject(j.vars.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
                    return (
                        id,
                        [
                            "row": .integer(Int64(j.row)), "variant": .integer(Int64(j.variant)), "vars": .object(vars),
                            "prompt": .string(j.prompt),
                        ]
                    )
                }))
        return .object(o)
    }

    /// - Throws: ``SessionError`` for a record that does not read.
    public init(json v: JSONValue) throws {
        guard let run = v["run"]?.stringValue, let out = v["out"]?.stringValue else {
            throw SessionError("not a remote batch record")
        }
        (self.run, outPath) = (run, out)
        created = Date(timeIntervalSince1970: v["created"]?.doubleValue ?? 0)
        baseURL = v["base_url"]?.stringValue ?? ""
        dataset = v["dataset"]?.stringValue ?? ""
        variants = try (v["variants"]?.arrayValue ?? []).map(Self.variant)
        parts = (v["parts"]?.arrayValue ?? []).compactMap { p in
            guard let id = p["batch_id"]?.stringValue, let provider = p["provider"]?.stringValue.flatMap(Provider.init)
            else { return nil }
            var part = Part(
                batchID: id, inputFileID: p["input_file_id"]?.stringValue ?? "", provider: provider,
                model: p["model"]?.stringValue ?? "", status: p["status"]?.stringValue ?? "")
            part.collected = p["collected"] == true
            return part
        }
        jobs = (v["jobs"]?.objectValue ?? JSONObject()).reduce(into: [:]) { acc, entry in
            let j = entry.value
            guard let row = j["row"]?.intValue, let variant = j["variant"]?.intValue else { return }
            let vars = (j["vars"]?.objectValue ?? JSONObject()).reduce(into: [String: String]()) {
                $0[$1.key] = $1.value.stringValue
            }
            acc[entry.key] = BatchRunner.Job(
                row: row, variant: variant, vars: vars, prompt: j["prompt"]?.stringValue ?? "",
                request: QueryRequest(model: "", messages: []))
        }
    }

    static func variant(_ v: JSONValue) throws -> Variant {
        guard let provider = v["provider"]?.stringValue.flatMap(Provider.init) else {
            throw SessionError("a remote batch record's variant names no provider")
        }
        let model = v["model"]?.stringValue ?? ""
        let request = QueryRequest(
            model: model, messages: [], functionSpec: try v["function"].map(FunctionSpec.init(json:)),
            tools: try (v["tools"]?.arrayValue ?? []).map(FunctionSpec.init(json:)),
            toolChoice: v["tool_choice"]?.stringValue.map(ToolChoice.init),
            outputSchema: try v["output_schema"].map(FunctionSpec.init(json:)), stream: false)
        return Variant(
            label: v["label"]?.stringValue ?? "", model: model, provider: provider, request: request,
            forcedCall: v["forced_call"]?.stringValue.flatMap(ForcedCallStrategy.init) ?? .auto)
    }
}

/// `:batch FILE remote`: the jobs a ``BatchRunner`` would send, sent instead through the
/// provider's Batch API — written as its input file, uploaded, created, polled, and the output
/// and error files read back into the same results file and summary.
public struct RemoteBatchRunner: Sendable {
    /// What a wait is told as the batches move.
    public struct Progress: Sendable {
        public var status: String
        public var done: Int
        public var failed: Int
        public var total: Int
    }

    /// The API to use for each wire format (its client's base URL, key, retries).
    public var apis: [Provider: BatchAPI]
    /// Where the run's record and input files are kept.
    public var directory: String
    /// Seconds between polls.
    public var pollInterval: Double
    /// Seconds one poll may take before it is abandoned and asked again (each poll is told to
    /// the progress line; after ``maxStalledPolls`` in a row the wait fails).
    public var pollTimeout: Double = 30
    public static let maxStalledPolls = 3

    public init(apis: [Provider: BatchAPI], directory: String, pollInterval: Double = 10) {
        (self.apis, self.directory, self.pollInterval) = (apis, directory, max(0.05, pollInterval))
    }

    /// One poll of batch `id`, bounded by ``pollTimeout``: a poll that stalls is abandoned and
    /// asked again (`onStall` is told which try follows), at most ``maxStalledPolls`` times.
    /// - Throws: ``SessionError`` when every try stalled; the API's ``QueryError``.
    func poll(_ id: String, _ provider: Provider, onStall: (Int) -> Void) async throws -> RemoteBatch {
        let api = try api(provider)
        let timeout = pollTimeout
        for attempt in 1...Self.maxStalledPolls {
            let outcome = await withTaskGroup(of: Result<RemoteBatch, Error>?.self) { group in
                group.addTask {
                    do { return .success(try await api.retrieve(id)) } catch { return .failure(error) }
                }
                group.addTask {
                    try? await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            if let outcome { return try outcome.get() }
            if attempt < Self.maxStalledPolls { onStall(attempt + 1) }
        }
        throw SessionError(
            "batch \(id): \(Self.maxStalledPolls) polls in a row had no answer in \(String(format: "%g", timeout)) s — :batch resume \(id) tries again"
        )
    }

    /// What every file of the run is redacted with: each API's key and the environment's keys.
    public var redactor: Redactor {
        Redactor(apis.values.flatMap { $0.client.redactor.secrets } + Redactor.environmentKeys())
    }

    func api(_ p: Provider) throws -> BatchAPI {
        guard let a = apis[p] else { throw SessionError("no client for \(p.rawValue)") }
        return a
    }

    /// A run made ready to send: its record (no batch yet) and its jobs, one group per batch.
    public struct Prepared: Sendable {
        public var record: RemoteBatchRecord
        var groups: [(provider: Provider, model: String, jobs: [BatchRunner.Job])]
    }

    /// The jobs the results file does not have yet, one group per (wire format, model): the Batch
    /// API takes one model a batch. nil when there is nothing to send.
    /// - Throws: ``SessionError`` (a template that does not fill, a results file that does not read).
    public func prepare(_ runner: BatchRunner, session: Session, dataset: String) throws -> Prepared? {
        let done = try BatchRunner.completed(in: runner.outPath)
        let redactor = runner.redactor  // the file holds prompts redacted
        let jobs = try runner.makeJobs(session: session).filter { done[runner.key($0, redactor)] == nil }
        guard !jobs.isEmpty else { return nil }
        let record = RemoteBatchRecord(
            run: Self.runID(), created: Date(), baseURL: Redactor.url(runner.clients[0].baseURL), dataset: dataset,
            outPath: runner.outPath,
            variants: runner.variants.enumerated().map { k, v in
                var shape = jobs.first { $0.variant == k }?.request ?? QueryRequest(model: v.model, messages: [])
                shape.messages = []
                return .init(
                    label: v.label, model: v.model, provider: v.provider, request: shape,
                    forcedCall: runner.clients[k].concreteForcedCall)
            },
            jobs: Dictionary(jobs.map { (RemoteBatchRecord.customID($0), $0) }, uniquingKeysWith: { a, _ in a }))
        let groups = Dictionary(grouping: jobs) { j in
            "\(runner.variants[j.variant].provider.rawValue) \(runner.variants[j.variant].model)"
        }
        if let big = groups.values.first(where: { $0.count > BatchAPI.maxRequests }) {
            throw SessionError(
                "\(big.count) requests to one model: the Batch API takes at most \(BatchAPI.maxRequests) a batch — split the file"
            )
        }
        return Prepared(
            record: record,
            groups: groups.keys.sorted().map { key in
                let v = runner.variants[groups[key]![0].variant]
                return (v.provider, v.model, groups[key]!)
            })
    }

    /// Sends a prepared run: each group written as an input file, uploaded, and created as a
    /// batch; the record is saved after each batch is created. Cancelling the task stops an
    /// upload, never a creation (a batch the server made is recorded). `say` is told each step.
    /// - Throws: ``SessionError`` (more than the API takes, a record that cannot be saved) or
    ///   ``QueryError`` from the API; batches created before it stay in the record.
    public func send(_ prepared: Prepared, say: @Sendable (String) -> Void) async throws -> RemoteBatchRecord {
        var record = prepared.record
        for group in prepared.groups {
            let api = try api(group.provider)
            let file = try inputFile(group.jobs, api: api, run: record.run, part: record.parts.count)
            let size = ByteCountFormatter.string(fromByteCount: Int64(file.count), countStyle: .file)
            say("uploading \(group.jobs.count) requests to \(group.model) (\(size))")
            let fileID = try await api.upload(file, filename: "promptline-\(record.run)-\(record.parts.count).jsonl")
            let metadata = ["promptline_run": record.run, "promptline_part": "\(record.parts.count)"]
            let batch = try await Task { try await self.create(api, fileID: fileID, metadata: metadata) }.value
            record.parts.append(
                .init(
                    batchID: batch.id, inputFileID: fileID, provider: group.provider, model: group.model,
                    status: batch.status))
            try record.save(in: directory, redactor: redactor)
            say("created \(batch.id) (\(batch.status))")
            if Task.isCancelled && record.parts.count < prepared.groups.count {
                throw SessionError(
                    "stopped sending: \(record.parts.count) of \(prepared.groups.count) batches created — :batch resume \(record.run) follows them; the same :batch … remote again sends the rest"
                )
            }
        }
        return record
    }

    /// ``prepare(_:session:dataset:)`` then ``send(_:say:)``.
    public func submit(
        _ runner: BatchRunner, session: Session, dataset: String, say: @Sendable (String) -> Void
    ) async throws -> RemoteBatchRecord? {
        guard let prepared = try prepare(runner, session: session, dataset: dataset) else { return nil }
        return try await send(prepared, say: say)
    }

    static func runID() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date()) + "-" + UUID().uuidString.prefix(6).lowercased()
    }

    /// The input file of one batch: a line per job, within the API's size limit. A copy is kept beside
    /// the record (`<run>-<part>.input.jsonl`).
    func inputFile(_ jobs: [BatchRunner.Job], api: BatchAPI, run: String, part: Int) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var copy: [UInt8] = []
        let redactor = self.redactor
        for j in jobs {
            let line = try api.inputLine(customID: RemoteBatchRecord.customID(j), request: j.request)
            bytes += line.serializedBytes()
            bytes.append(UInt8(ascii: "\n"))
            copy += redactor.line(line)
        }
        guard bytes.count <= BatchAPI.maxFileBytes else {
            throw SessionError(
                "the batch input file would be \(bytes.count >> 20) MB; the Batch API takes 200 MB — split the file")
        }
        try AtomicFile.makePrivateDirectory(directory)
        // The copy kept is redacted; what is uploaded is what the rows asked for.
        try AtomicFile.write(copy, to: directory + "/\(run)-\(part).input.jsonl")
        return bytes
    }

    /// Creates a batch once. A failure that may have happened after the server acted (a dropped
    /// connection, a timeout, a 5xx) is checked against the list of batches by the run's
    /// metadata before it is sent again, so a batch is never paid for twice.
    func create(_ api: BatchAPI, fileID: String, metadata: [String: String]) async throws -> RemoteBatch {
        var lastError: QueryError?
        for attempt in 0..<3 {
            if attempt > 0 {
                let recent = try await api.list(limit: 100)
                if let made = recent.first(where: { b in metadata.allSatisfy { k, v in b.metadata[k] == v } }) {
                    return made
                }
                try await api.client.clock.sleep(
                    seconds: api.client.retryPolicy.backoff(retry: attempt, random: api.client.clock.random()))
            }
            let outcome: Result<RemoteBatch, QueryError>
            do {
                outcome = .success(try await api.create(inputFileID: fileID, metadata: metadata))
            } catch {
                outcome = .failure(error)
            }
            switch outcome {
            case .success(let b): return b
            case .failure(let e):
                // Only a failure the server may have acted on is looked up and sent again.
                guard e.isTransient || Self.isServerError(e) else { throw e }
                lastError = e
            }
        }
        throw lastError ?? QueryError.cancelled
    }

    static func isServerError(_ e: QueryError) -> Bool {
        if case .http(let d) = e, let s = d.status { return s >= 500 }
        return false
    }

    /// Polls the run's unfinished batches until each is finished, or `stop` is requested (Ctrl-C:
    /// the batches go on at the provider). Returns the record with the statuses seen.
    public func wait(
        _ record: RemoteBatchRecord, stop: BatchStop, progress: (Progress) -> Void
    ) async throws -> RemoteBatchRecord {
        var record = record
        var seen: [String: RemoteBatch] = [:]
        var saved = record.parts.map(\.status)
        var shown = Progress(status: "", done: 0, failed: 0, total: 0)
        while !stop.isRequested && !Task.isCancelled {
            for (i, part) in record.parts.enumerated()
            where !part.collected && !(seen[part.batchID]?.isFinished ?? false) {
                let b = try await poll(part.batchID, part.provider) { n in
                    // The counts last seen stay; the status says what the wait is doing.
                    var p = shown
                    p.status =
                        "no answer about \(part.batchID) in \(String(format: "%g", pollTimeout)) s, asking again (\(n)/\(Self.maxStalledPolls))"
                    progress(p)
                }
                seen[b.id] = b
                record.parts[i].status = b.status
            }
            let all = record.parts.compactMap { seen[$0.batchID] }
            let totals = all.reduce(into: (0, 0, 0)) { $0 = ($0.0 + $1.completed, $0.1 + $1.failed, $0.2 + $1.total) }
            let statuses = Set(all.map(\.status)).sorted().joined(separator: ", ")
            shown = Progress(status: statuses, done: totals.0 + totals.1, failed: totals.1, total: totals.2)
            progress(shown)
            if record.parts.allSatisfy({ $0.collected || (seen[$0.batchID]?.isFinished ?? false) }) { break }
            if record.parts.map(\.status) != saved {
                try? record.save(in: directory, redactor: redactor)
                saved = record.parts.map(\.status)
            }
            var slept = 0.0
            while slept < pollInterval && !stop.isRequested && !Task.isCancelled {
                let step = min(0.05, pollInterval - slept)
                try? await Task.sleep(nanoseconds: UInt64(step * 1e9))
                slept += step
            }
        }
        try record.save(in: directory, redactor: redactor)
        return record
    }

    /// Reads every finished, not yet collected batch of the run into the results file: each
    /// output and error line as the job's result (priced at the Batch API's half price), and a job
    /// the batch never ran (expired, cancelled, failed) as an error saying so — a rerun of the same
    /// `:batch … remote` sends those again. Each output is checked against the function, tools
    /// and schema its variant was sent with, and priced by `prices`.
    /// With `session`, each result is checked against its assertions and the row's own (graded by
    /// `grader` where model-graded) as it is collected.
    public func collect(
        _ record: RemoteBatchRecord, prices: PriceTable, checking session: Session? = nil, grader: Grader? = nil
    ) async throws -> (RemoteBatchRecord, BatchSummary) {
        var record = record
        var summary = BatchSummary(variants: record.variants.map(\.label), outPath: record.outPath)
        let checks = session.map { Self.hasAssertions(record, $0) } ?? false
        let done = try BatchRunner.completed(in: record.outPath)
        let out = try BatchRunner.openForAppend(record.outPath)
        defer { try? out.close() }
        for (i, part) in record.parts.enumerated() where !part.collected {
            // Responses are read with the strategy their requests were built with.
            var api = try api(part.provider)
            if let v = record.variants.first(where: { $0.provider == part.provider && $0.model == part.model }) {
                api.client.forcedCall = v.forcedCall
            }
            let batch = try await api.retrieve(part.batchID)
            record.parts[i].status = batch.status
            guard batch.isFinished else { continue }
            var answered: Set<String> = []
            var lines: [(BatchRunner.Job, Result<QueryResult, Error>)] = []
            for fileID in [batch.outputFileID, batch.errorFileID].compactMap({ $0 }) {
                // Downloaded to disk and read a line at a time: a large output file never sits
                // in memory whole.
                try AtomicFile.makePrivateDirectory(directory)
                let path = directory + "/.\(record.run)-\(i).download"
                defer { unlink(path) }
                try await api.download(fileID: fileID, to: path)
                try JSONLines.forEach(in: path) { line in
                    guard let v = try? JSONValue.parse(line), let id = v["custom_id"]?.stringValue,
                        let job = record.jobs[id], !answered.contains(id)
                    else { return }
                    answered.insert(id)
                    let outcome = api.read(outputLine: v, request: request(job, record)).mapError { $0 as Error }
                    if checks {
                        lines.append((job, outcome))  // checked below: grading is async
                    } else {
                        try append(result(job, outcome, record, prices), done: done, out: out, summary: &summary)
                    }
                }
            }
            let why = Self.notRun(batch)
            for (id, job) in record.jobs.sorted(by: {
                ($0.value.row, $0.value.variant) < ($1.value.row, $1.value.variant)
            })
            where !answered.contains(id) && record.variants[job.variant].provider == part.provider
                && record.variants[job.variant].model == part.model
            {
                lines.append((job, .failure(SessionError(why))))
            }
            try await appendAll(
                lines, record, prices, checking: session, grader: grader, done: done, out: out, summary: &summary)
            record.parts[i].collected = true
            try record.save(in: directory, redactor: redactor)
        }
        return (record, summary)
    }

    /// Appends collected results, each checked against its assertions when there is a session.
    func appendAll(
        _ lines: [(BatchRunner.Job, Result<QueryResult, Error>)], _ record: RemoteBatchRecord, _ prices: PriceTable,
        checking session: Session?, grader: Grader?, done: [String: JSONValue], out: FileHandle,
        summary: inout BatchSummary
    ) async throws {
        for (job, outcome) in lines {
            var r = result(job, outcome, record, prices)
            if let session {
                r.assertions = await Self.assess(
                    r, job, finish: (try? outcome.get())?.info.finishReason, variant: record.variants[job.variant],
                    session: session, grader: grader)
            }
            try append(r, done: done, out: out, summary: &summary)
        }
    }

    /// Whether a run's results have assertions to check: the session's, or the rows' columns.
    static func hasAssertions(_ record: RemoteBatchRecord, _ session: Session) -> Bool {
        !session.assertions.isEmpty
            || record.jobs.values.contains { $0.vars["assert"] != nil || $0.vars["expected"] != nil }
    }

    /// A collected result's verdicts: the session's assertions and the row's own (its `assert` or
    /// `expected` column), against the function, tools and schema its variant was sent with.
    static func assess(
        _ r: BatchResult, _ job: BatchRunner.Job, finish: String?, variant: RemoteBatchRecord.Variant,
        session: Session, grader: Grader?
    ) async -> AssertionResult? {
        let own =
            session.assertions.isEmpty || job.vars["assert"] != nil
            ? (try? BatchRunner.rowAssertions(job.vars, at: job.row)) ?? [] : []
        let all = session.assertions + own
        guard !all.isEmpty else { return nil }
        let vars = session.vars.merging(job.vars) { _, row in row }
        var input = AssertionInput(
            output: r.output, finishReason: finish, cost: r.cost, latency: nil,
            functionSpec: variant.request.functionSpec,
            tools: variant.request.tools, schema: variant.request.outputSchema, vars: vars, prompt: job.prompt)
        input.grades = await Assertion.grades(
            all, text: input.text, vars: vars, prompt: job.prompt, grader: grader)
        return Assertion.evaluate(all, threshold: session.assertThreshold, input: input)
    }

    /// Why a finished batch did not answer a request.
    static func notRun(_ b: RemoteBatch) -> String {
        let errors = b.errors.isEmpty ? "" : ": " + b.errors.prefix(3).joined(separator: "; ")
        return "not run: batch \(b.id) \(b.status)\(errors) — run the same :batch … remote again to send it"
    }

    func request(_ job: BatchRunner.Job, _ record: RemoteBatchRecord) -> QueryRequest {
        var r = record.variants[job.variant].request
        r.model = record.variants[job.variant].model
        return r
    }

    func result(
        _ job: BatchRunner.Job, _ result: Result<QueryResult, some Error>, _ record: RemoteBatchRecord,
        _ prices: PriceTable
    ) -> BatchResult {
        let v = record.variants[job.variant]
        return BatchResult(
            job: job, label: v.label, model: v.model, result: result.mapError { $0 as Error },
            check: {
                Session.check(
                    $0, functionSpec: v.request.functionSpec, tools: v.request.tools, schema: v.request.outputSchema)
            }, prices: prices, priceFactor: 0.5, latency: false)
    }

    /// Appends a result unless the results file has it already (a batch collected twice).
    func append(_ r: BatchResult, done: [String: JSONValue], out: FileHandle, summary: inout BatchSummary) throws {
        guard done[BatchResult.key(row: r.row, variant: r.variant, prompt: redactor.redact(r.prompt))] == nil else {
            summary.skipped += 1
            return
        }
        try BatchRunner.append(r, to: out, redactor: redactor)
        summary.add(r)
    }
}

/// The lines of a file, read a chunk at a time (a file of any size in little memory).
enum JSONLines {
    /// Calls `body` with each non-empty line of `path`.
    /// - Throws: ``SessionError`` when the file cannot be read; whatever `body` throws.
    static func forEach(in path: String, _ body: ([UInt8]) throws -> Void) throws {
        guard let h = FileHandle(forReadingAtPath: path) else { throw SessionError("cannot read \(path)") }
        defer { try? h.close() }
        var pending: [UInt8] = []
        while true {
            let chunk: Data
            do {
                chunk = try h.read(upToCount: 1 << 20) ?? Data()
            } catch {
                throw SessionError("cannot read \(path): \(error.localizedDescription)")
            }
            if chunk.isEmpty { break }
            pending += chunk
            var start = 0
            while let nl = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                if nl > start { try body(Array(pending[start..<nl])) }
                start = nl + 1
            }
            pending.removeFirst(start)
        }
        if !pending.isEmpty { try body(pending) }
    }
}
