import Foundation

/// What changed between two runs of the same rows: per variant, the rows that went from pass to
/// fail and from fail to pass, and each assertion's pass count before and after.
public struct EvalDiff: Sendable, Equatable {
    public struct Flip: Sendable, Equatable {
        public var row: Int
        public var variant: String
        /// The assertions that failed in the run where the row failed.
        public var failing: [String]
    }

    /// One assertion's passes over the rows both runs graded, before and after.
    public struct Delta: Sendable, Equatable {
        public var variant: String
        public var assertion: String
        public var before: Int
        public var after: Int
        public var of: Int
    }

    public var regressions: [Flip] = []
    public var fixes: [Flip] = []
    public var deltas: [Delta] = []
    /// Rows × variants graded in both runs.
    public var compared = 0
    /// Variants found in only one run.
    public var unmatchedVariants: [String] = []

    public init(old: EvalRun, new: EvalRun) {
        unmatchedVariants =
            old.variants.filter { !new.variants.contains($0) }
            + new.variants.filter {
                !old.variants.contains($0)
            }
        for variant in new.variants where old.variants.contains(variant) {
            var counts: [String: (before: Int, after: Int, of: Int)] = [:]
            var order: [String] = []
            for c in new.cells where c.variant == variant {
                guard let now = c.pass, let was = old.cell(row: c.row, variant: variant, repetition: c.repetition),
                    let then = was.pass
                else {
                    continue
                }
                compared += 1
                if then && !now { regressions.append(Flip(row: c.row, variant: variant, failing: Self.failing(c))) }
                if !then && now { fixes.append(Flip(row: c.row, variant: variant, failing: Self.failing(was))) }
                let before = Dictionary(was.verdicts.map { ($0.label, $0.pass) }, uniquingKeysWith: { a, b in a && b })
                for v in c.verdicts {
                    guard let b = before[v.label] else { continue }
                    if counts[v.label] == nil { order.append(v.label) }
                    var n = counts[v.label] ?? (0, 0, 0)
                    n = (n.before + (b ? 1 : 0), n.after + (v.pass ? 1 : 0), n.of + 1)
                    counts[v.label] = n
                }
            }
            deltas += order.map { a in
                let n = counts[a]!
                return Delta(variant: variant, assertion: a, before: n.before, after: n.after, of: n.of)
            }
        }
    }

    static func failing(_ c: EvalRun.Cell) -> [String] {
        c.error.map { ["error: \($0)"] } ?? c.verdicts.filter { !$0.pass }.map(\.label)
    }

    /// The diff as lines: a headline, the flips, then each assertion whose passes changed.
    public func report(old: String, new: String) -> [String] {
        var lines = [
            "\(old) → \(new): \(compared) graded row\(compared == 1 ? "" : "s") compared · "
                + "\(regressions.count) pass→fail · \(fixes.count) fail→pass"
        ]
        func name(_ f: Flip) -> String { f.variant.isEmpty ? "row \(f.row)" : "row \(f.row) [\(f.variant)]" }
        for f in regressions {
            lines.append(
                "  ✗ \(name(f)) pass→fail" + (f.failing.isEmpty ? "" : ": " + f.failing.joined(separator: "; ")))
        }
        for f in fixes { lines.append("  ✓ \(name(f)) fail→pass") }
        let changed = deltas.filter { $0.before != $0.after }
        if !changed.isEmpty { lines.append("  assertions whose passes changed:") }
        for d in changed {
            let v = d.variant.isEmpty ? "" : " [\(d.variant)]"
            let sign = d.after > d.before ? "+" : ""
            lines.append(
                "    \(d.assertion)\(v): \(d.before)/\(d.of) → \(d.after)/\(d.of) (\(sign)\(d.after - d.before))")
        }
        if !unmatchedVariants.isEmpty {
            lines.append(
                "  in one run only (not compared): "
                    + unmatchedVariants.map { $0.isEmpty ? "(no variant)" : $0 }.joined(separator: ", "))
        }
        if compared == 0 {
            lines.append(
                "  no row was graded in both runs: the diff compares rows with assertions (:assert, an assert column)")
        }
        return lines
    }
}
