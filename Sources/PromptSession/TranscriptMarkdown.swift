import Foundation
import QueryCore

/// `:export`: the session as readable Markdown — settings, each turn's prompt and output with
/// its figures, `:compare` runs, and a stats table.
public enum TranscriptMarkdown {
    static let heading = "# promptline session "

    public static func render(_ t: Transcript, stats: SessionStats) -> String {
        var md = "\(heading)\(t.id)\n\n"
        md +=
            "- created: \(TranscriptClock.iso(t.created))\n- provider: "
            + "\(t.provider) (\(Redactor.url(t.baseURL)))\n- model: \(t.model)\n\n"
        var n = 0
        var lastSettings: TranscriptEvent.Settings?
        for e in t.events {
            switch e {
            case .settings(let s):
                // The first settings whole; after them, only what a `:set` (or the like) changed.
                md += lastSettings.map { changedSettings(from: $0, to: s) } ?? settings(s)
                lastSettings = s
            case .reset: md += "---\n*conversation reset*\n\n"
            case .branch(let b):
                switch b.action {
                case .undo: md += "*last exchange undone*\n\n"
                case .fork(let name): md += "---\n*forked: branch `\(name)`*\n\n"
                case .switchTo(let name): md += "---\n*switched to branch `\(name)`*\n\n"
                }
            case .turn(let turn) where turn.prompt.isEmpty && !turn.toolResults.isEmpty:
                // A request of a tool round: the results that went back, then the reply.
                md += toolResults(turn.toolResults) + output(turn.output) + figures(turn.figures) + "\n"
            case .turn(let turn):
                n += 1
                md += "## Turn \(n)\n\n" + toolResults(turn.toolResults) + "**Prompt**\n\n" + fence(turn.prompt)
                md += output(turn.output) + figures(turn.figures) + "\n"
            case .comparison(let c):
                md += "## Compare\n\n**Prompt**\n\n" + fence(c.prompt)
                for v in c.variants { md += "\n### \(v.label)\n" + output(v.output) + figures(v.figures) }
                md += "\n"
            }
        }
        let i = stats.inputTokens
        let o = stats.outputTokens
        md += "## Stats\n\n| turns | requests | retries | errors | cancelled | input tokens | output tokens |\n"
        md += "|---|---|---|---|---|---|---|\n"
        md += "| \(stats.turnCount) | \(stats.requests) | \(stats.retries) | \(stats.errors) | \(stats.cancelled) "
        md += "| \(i.sum)\(i.unknown > 0 ? "+?" : "") | \(o.sum)\(o.unknown > 0 ? "+?" : "") |\n"
        return md
    }

    static func settings(_ s: TranscriptEvent.Settings) -> String {
        var md = "## Settings\n\n- model: `\(s.model)` (\(s.provider.rawValue))\n- mode: \(s.mode.rawValue)\n"
        if !s.options.keys.isEmpty {
            md +=
                "- options: " + s.options.map { "`\($0.key)=\($0.value.serialized())`" }.joined(separator: ", ") + "\n"
        }
        if let f = s.function { md += "- function: `\(f.name)`\n" }
        let t = s.toolbox
        if !t.tools.isEmpty {
            md += "- tools: " + t.tools.map { "`\($0.name)`" }.joined(separator: ", ") + " (choice \(t.choice))\n"
        }
        if let m = t.mock { md += "- mock: \(m.source)\n" }
        if let schema = t.schema { md += "- output schema: `\(schema.name)`\n" }
        if let system = s.system { md += "\n**System prompt**\n\n" + fence(system) }
        return md + "\n"
    }

    /// What changed between two recorded settings, as a short list (nothing when no field the
    /// export shows changed).
    static func changedSettings(from a: TranscriptEvent.Settings, to b: TranscriptEvent.Settings) -> String {
        var lines: [String] = []
        if a.model != b.model || a.provider != b.provider {
            lines.append("model: `\(b.model)` (\(b.provider.rawValue))")
        }
        if a.mode != b.mode { lines.append("mode: \(b.mode.rawValue)") }
        let set = b.options.filter { a.options[$0.key] != $0.value }.map { "`\($0.key)=\($0.value.serialized())`" }
        let unset = a.options.keys.filter { b.options[$0] == nil }.map { "`\($0)`" }
        if !set.isEmpty { lines.append("options: " + set.joined(separator: ", ")) }
        if !unset.isEmpty { lines.append("unset: " + unset.joined(separator: ", ")) }
        if a.function != b.function { lines.append("function: " + (b.function.map { "`\($0.name)`" } ?? "off")) }
        let (x, y) = (a.toolbox, b.toolbox)
        if x.tools != y.tools || x.choice != y.choice {
            lines.append(
                y.tools.isEmpty
                    ? "tools: none"
                    : "tools: " + y.tools.map { "`\($0.name)`" }.joined(separator: ", ") + " (choice \(y.choice))"
            )
        }
        if x.mock != y.mock { lines.append("mock: " + (y.mock?.source ?? "off")) }
        if x.schema != y.schema { lines.append("output schema: " + (y.schema.map { "`\($0.name)`" } ?? "off")) }
        var md = lines.isEmpty ? "" : "**Settings changed**\n\n" + lines.map { "- \($0)\n" }.joined()
        if a.system != b.system { md += "\n**System prompt**" + (b.system.map { "\n\n" + fence($0) } ?? ": none\n") }
        return md.isEmpty ? "" : md + "\n"
    }

    static func output(_ o: TranscriptEvent.Output) -> String {
        switch o {
        case .text(let text): return "\n**Output**\n\n" + fence(text)
        case .functionCall(let c):
            return "\n**Function call** `\(c.name)`\n\n```json\n\(c.arguments.serialized(pretty: true))\n```\n"
        case .toolCalls(let calls, let text):
            var md = text.isEmpty ? "" : "\n**Output**\n\n" + fence(text)
            for c in calls {
                let args = c.arguments == .null ? c.rawArguments : c.arguments.serialized(pretty: true)
                md += "\n**Tool call** `\(c.name)` (`\(c.id ?? "")`)\n\n```json\n\(args)\n```\n"
            }
            return md
        case .error(let m): return "\n**Error**: \(m)\n"
        case .cancelled: return "\n*cancelled*\n"
        }
    }

    static func toolResults(_ results: [ToolResult]) -> String {
        results.map { r in
            let how = r.source == .typed ? "" : " (\(r.source.rawValue))"
            return "**Tool result** `\(r.name)` (`\(r.callID)`)\(how)\(r.isError ? " — error" : "")\n\n"
                + fence(r.content) + "\n"
        }.joined()
    }

    static func figures(_ f: TranscriptEvent.Figures) -> String {
        var figures: [String] = []
        if let l = f.requestTime { figures.append(String(format: "%.2f s", l)) }
        if let i = f.inputTokens, let o = f.outputTokens { figures.append("\(i) in / \(o) out tokens") }
        if f.retries > 0 { figures.append("\(f.retries) retries") }
        return figures.isEmpty ? "" : "\n*" + figures.joined(separator: " · ") + "*\n"
    }

    static func fence(_ s: String) -> String {
        var ticks = "```"
        while s.contains(ticks) { ticks += "`" }
        return "\(ticks)\n\(s)\n\(ticks)\n"
    }
}
