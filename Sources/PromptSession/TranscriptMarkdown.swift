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
        for e in t.events {
            switch e {
            case .settings(let s): md += settings(s)
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
