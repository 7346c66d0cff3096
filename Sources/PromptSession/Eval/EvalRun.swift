import Foundation
import QueryCore

/// A batch or eval run read back from its results file (one JSON line per row × variant, as
/// ``BatchResult/json`` writes them): what the matrix, the diff and the HTML report are made of.
public struct EvalRun: Sendable {
    /// One result line.
    public struct Cell: Sendable, Equatable {
        public var row: Int
        public var variant: String
        /// Which of the row's repeated sends (`repeat=N`) this is, from 1.
        public var repetition = 1
        public var vars: [String: String]
        public var prompt: String
        /// The text, a forced function's arguments or the tool calls, as the line holds them.
        public var output: String
        public var error: String?
        /// nil when the row had no assertions.
        public var pass: Bool?
        public var score: Double?
        public var verdicts: [AssertionVerdict]
        public var inputTokens: Int?
        public var outputTokens: Int?
        public var latency: Double?
        public var cost: Double?
    }

    /// A variant's figures, the rows of the matrix.
    public struct Totals: Sendable, Equatable {
        public var rows = 0
        public var failed = 0
        public var graded = 0
        public var passed = 0
        public var scoreSum = 0.0
        public var inputTokens = 0
        public var outputTokens = 0
        public var cost: Double?
        public var latencies: [Double] = []

        public var passRate: Double? { graded > 0 ? Double(passed) / Double(graded) : nil }
        public var meanScore: Double? { graded > 0 ? scoreSum / Double(graded) : nil }
    }

    public var path: String
    /// The cells by row, then variant; a row × variant written twice (a rerun) keeps its last line.
    public private(set) var cells: [Cell] = []
    /// Variants by name, numbers in them compared as numbers ("" for a run without variants).
    public private(set) var variants: [String] = []
    /// Lines that were not result lines (blank lines are not counted).
    public private(set) var unreadable: [Int] = []

    /// Reads `path`; a line that is not a result line is skipped and listed in ``unreadable``.
    public static func load(_ path: String) throws -> EvalRun {
        let text: String
        do {
            text = try FileReader.text(path)
        } catch {
            throw SessionError("cannot read results file \(path): \(error)")
        }
        var run = EvalRun(path: path)
        var at: [String: Int] = [:]
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            guard let json = try? JSONValue.parse(String(line)), let cell = Cell(json: json) else {
                run.unreadable.append(n + 1)
                continue
            }
            let key = "\(cell.row)|\(cell.variant)|\(cell.repetition)"
            if let i = at[key] {
                run.cells[i] = cell
            } else {
                at[key] = run.cells.count
                run.cells.append(cell)
                if !run.variants.contains(cell.variant) { run.variants.append(cell.variant) }
            }
        }
        // Lines are written as requests finish: the run is read back in row order, variants by name.
        run.variants.sort { $0.compare($1, options: .numeric) == .orderedAscending }
        let rank = Dictionary(uniqueKeysWithValues: run.variants.enumerated().map { ($1, $0) })
        run.cells.sort {
            ($0.row, rank[$0.variant] ?? 0, $0.repetition) < ($1.row, rank[$1.variant] ?? 0, $1.repetition)
        }
        guard !run.cells.isEmpty else {
            throw SessionError("\(path) holds no result lines (a :batch or --eval results file is JSON lines)")
        }
        return run
    }

    /// The figures of `variant`'s cells.
    public func totals(_ variant: String) -> Totals {
        var t = Totals()
        for c in cells where c.variant == variant {
            t.rows += 1
            if c.error != nil { t.failed += 1 }
            if let p = c.pass {
                t.graded += 1
                if p { t.passed += 1 }
                t.scoreSum += c.score ?? (p ? 1 : 0)
            }
            t.inputTokens = t.inputTokens.addingReportingOverflow(c.inputTokens ?? 0).partialValue
            t.outputTokens = t.outputTokens.addingReportingOverflow(c.outputTokens ?? 0).partialValue
            if let x = c.cost { t.cost = (t.cost ?? 0) + x }
            if let l = c.latency, c.error == nil { t.latencies.append(l) }
        }
        return t
    }

    /// The cell of `row` under `variant` (its `repetition`-th send).
    public func cell(row: Int, variant: String, repetition: Int = 1) -> Cell? {
        cells.first { $0.row == row && $0.variant == variant && $0.repetition == repetition }
    }

    /// The rows, in order.
    public var rows: [Int] { Array(Set(cells.map(\.row))).sorted() }

    /// Whether any cell was checked against assertions.
    public var graded: Bool { cells.contains { $0.pass != nil } }
}

extension EvalRun.Cell {
    /// A result line; nil when `json` is not one (no row number).
    init?(json: JSONValue) {
        guard case .object = json, let row = json["row"]?.intValue else { return nil }
        self.row = row
        variant = json["variant"]?.stringValue ?? ""
        repetition = max(1, json["repeat"]?.intValue ?? 1)
        var vars: [String: String] = [:]
        if case .object(let o)? = json["vars"] {
            for (k, v) in o { vars[k] = v.stringValue ?? v.serialized() }
        }
        self.vars = vars
        prompt = json["prompt"]?.stringValue ?? ""
        output = Self.output(of: json)
        error = json["error"]?.stringValue
        pass = json["pass"]?.boolValue
        score = json["score"]?.doubleValue
        verdicts = (json["assertions"]?.arrayValue ?? []).compactMap(AssertionVerdict.init(json:))
        inputTokens = json["input_tokens"]?.intValue
        outputTokens = json["output_tokens"]?.intValue
        latency = json["latency"]?.doubleValue
        cost = json["cost"]?.doubleValue
    }

    /// The output as the line holds it: the text, the function's arguments, or the tool calls.
    static func output(of json: JSONValue) -> String {
        if let calls = json["tool_calls"], calls != .null, calls.arrayValue?.isEmpty == false {
            let text = json["output"]?.stringValue ?? ""
            return (text.isEmpty ? "" : text + "\n") + calls.serialized(pretty: true)
        }
        if let args = json["arguments"], args != .null { return args.stringValue ?? args.serialized(pretty: true) }
        return json["output"]?.stringValue ?? ""
    }
}

extension AssertionVerdict {
    /// Reads ``json`` back (a results line's `assertions`).
    init?(json v: JSONValue) {
        guard let name = v["type"]?.stringValue, let pass = v["pass"]?.boolValue else { return nil }
        self.init(
            name: name, value: v["value"]?.stringValue ?? "", pass: pass,
            score: v["score"]?.doubleValue ?? (pass ? 1 : 0),
            reason: v["reason"]?.stringValue ?? "")
    }

    /// What names the assertion across runs: its type and value.
    public var label: String { value.isEmpty ? name : "\(name) \(value)" }
}

extension EvalRun {
    /// The results file of the run before `path` over the same dataset: in promptline's batches
    /// folder a run's file is `<session id>-<dataset>.jsonl`, so it is the newest other file with
    /// the same dataset part written no later than `path`. nil for a name of another shape.
    public static func previous(of path: String) -> String? {
        let name = (path as NSString).lastPathComponent
        let dir = (path as NSString).deletingLastPathComponent
        guard let dataset = datasetPart(name) else { return nil }
        let fm = FileManager.default
        func modified(_ p: String) -> Date? { (try? fm.attributesOfItem(atPath: p))?[.modificationDate] as? Date }
        let limit = modified(path) ?? .distantFuture
        let candidates = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).compactMap { other -> (String, Date)? in
            guard other != name, datasetPart(other) == dataset else { return nil }
            let p = (dir.isEmpty ? "" : dir + "/") + other
            guard let m = modified(p), m <= limit else { return nil }
            return (p, m)
        }
        return candidates.max { $0.1 < $1.1 }?.0
    }

    /// `rows.jsonl` of `1a2b3c4d-rows.jsonl` (a session id, then the dataset's name).
    static func datasetPart(_ name: String) -> String? {
        let parts = name.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 8, parts[0].allSatisfy(\.isHexDigit), name.hasSuffix(".jsonl")
        else { return nil }
        return String(parts[1])
    }
}
