import Foundation

/// One self-contained HTML file for a run: the matrix, every cell's output with its verdicts, filters
/// (failed only, a variant, an assertion) and, given an earlier run, the diff against it.
///
/// Nothing from a result reaches a script: every output, prompt, variable and reason is escaped as
/// text, and the page's Content-Security-Policy lets only its own script run (by its SHA-256), loads
/// nothing from the network and submits nowhere.
public enum EvalReport {
    /// The report of `run`, with the diff against `previous` when given.
    public static func html(_ run: EvalRun, previous: EvalRun? = nil, generated: Date = Date()) -> String {
        let script = filterScript
        let hash = Data(SHA256.digest(Array(script.utf8))).base64EncodedString()
        let csp =
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-\(hash)'; img-src data:; form-action 'none'; base-uri 'none'"
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="\(csp)">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>promptline eval — \(escape((run.path as NSString).lastPathComponent))</title>
            <style>\(style)</style></head><body>
            <h1>promptline eval</h1>
            <p class="meta">\(escape(run.path)) · \(run.cells.count) results · \(run.rows.count) rows × \(run.variants.count) variant\(run.variants.count == 1 ? "" : "s") · generated \(ISO8601DateFormatter().string(from: generated))</p>

            """
        page += matrix(run)
        if let previous { page += diffSection(EvalDiff(old: previous, new: run), old: previous, new: run) }
        page += filters(run)
        page += cells(run)
        page += "<script>\(script)</script>\n</body></html>\n"
        return page
    }

    /// Text as HTML text or an attribute value: nothing in it can open a tag, an attribute or an entity.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\0": out += "\u{FFFD}"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// Variants as columns; pass rate, mean score, tokens, cost and latency as rows.
    static func matrix(_ run: EvalRun) -> String {
        let totals = run.variants.map(run.totals)
        func row(_ name: String, _ f: (EvalRun.Totals) -> String) -> String {
            "<tr><th>\(escape(name))</th>" + totals.map { "<td>\(escape(f($0)))</td>" }.joined() + "</tr>\n"
        }
        func seconds(_ t: EvalRun.Totals, _ p: Double) -> String {
            SessionStats.percentile(t.latencies, p).map { String(format: "%.2f s", $0) } ?? "–"
        }
        var html = "<h2>Matrix</h2>\n<table class=\"matrix\"><thead><tr><th></th>"
        html += run.variants.map { "<th>\(escape(label($0)))</th>" }.joined() + "</tr></thead><tbody>\n"
        html += row("pass rate") { t in
            t.passRate.map { String(format: "%.0f%% (%d/%d)", $0 * 100, t.passed, t.graded) } ?? "–"
        }
        html += row("mean score") { t in t.meanScore.map { String(format: "%.2f", $0) } ?? "–" }
        html += row("ok / failed") { "\($0.rows - $0.failed) / \($0.failed)" }
        html += row("tokens in / out") { "\($0.inputTokens) / \($0.outputTokens)" }
        html += row("cost") { PriceTable.format($0.cost) }
        html += row("latency p50") { seconds($0, 50) }
        html += row("latency p95") { seconds($0, 95) }
        return html + "</tbody></table>\n"
    }

    static func label(_ variant: String) -> String { variant.isEmpty ? "(the run)" : variant }

    /// Rows that flipped since `old`, and each assertion whose passes changed.
    static func diffSection(_ d: EvalDiff, old: EvalRun, new: EvalRun) -> String {
        var html = "<h2>Since the previous run</h2>\n<p class=\"meta\">\(escape(old.path)) → \(escape(new.path)): "
        html +=
            "\(d.compared) graded rows compared · \(d.regressions.count) pass→fail · \(d.fixes.count) fail→pass</p>\n"
        html += "<ul class=\"diff\">\n"
        for f in d.regressions {
            html += "<li class=\"fail\">row \(f.row) · \(escape(label(f.variant))) · pass→fail"
            html += f.failing.isEmpty ? "" : ": " + escape(f.failing.joined(separator: "; "))
            html += "</li>\n"
        }
        for f in d.fixes { html += "<li class=\"pass\">row \(f.row) · \(escape(label(f.variant))) · fail→pass</li>\n" }
        for a in d.deltas where a.before != a.after {
            html +=
                "<li>\(escape(a.assertion)) · \(escape(label(a.variant))): \(a.before)/\(a.of) → \(a.after)/\(a.of)</li>\n"
        }
        return html + "</ul>\n"
    }

    /// The controls the script reads (and the URL's `#failed&variant=…&assertion=…` sets).
    static func filters(_ run: EvalRun) -> String {
        let assertions = Array(Set(run.cells.flatMap { $0.verdicts.map(\.label) })).sorted()
        var html = "<h2>Results</h2>\n<form class=\"filters\" id=\"filters\">"
        html += "<label><input type=\"checkbox\" id=\"failed-only\"> failed only</label> "
        html += "<label>variant <select id=\"variant\"><option value=\"\">all</option>"
        html += run.variants.map { "<option value=\"\(escape($0))\">\(escape(label($0)))</option>" }.joined()
        html += "</select></label> <label>assertion <select id=\"assertion\"><option value=\"\">all</option>"
        html += assertions.map { "<option value=\"\(escape($0))\">\(escape($0))</option>" }.joined()
        html += "</select></label> <span id=\"shown\"></span></form>\n"
        return html
    }

    /// Every result: a block per row × variant with its variables, prompt, output and verdicts.
    static func cells(_ run: EvalRun) -> String {
        var html = "<div id=\"cells\">\n"
        for c in run.cells {
            let state = c.error != nil ? "error" : c.pass.map { $0 ? "pass" : "fail" } ?? "ungraded"
            let failing = c.pass == false || c.error != nil
            let labels = c.verdicts.map(\.label).joined(separator: "\n")
            html += "<section class=\"cell \(state)\" data-row=\"\(c.row)\" data-variant=\"\(escape(c.variant))\""
            html += " data-failed=\"\(failing)\" data-assertions=\"\(escape(labels))\">\n"
            html +=
                "<h3>row \(c.row) · \(escape(label(c.variant))) · <span class=\"verdict\">\(state.uppercased())</span>"
            html += c.score.map { String(format: " · score %.2f", $0) } ?? ""
            html += "</h3>\n"
            if !c.vars.isEmpty {
                let vars = c.vars.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " · ")
                html += "<p class=\"vars\">\(escape(vars))</p>\n"
            }
            html += "<details><summary>prompt</summary><pre class=\"prompt\">\(escape(c.prompt))</pre></details>\n"
            html += "<pre class=\"output\">\(escape(c.error.map { "error: " + $0 } ?? c.output))</pre>\n"
            if !c.verdicts.isEmpty {
                html += "<ul class=\"verdicts\">"
                for v in c.verdicts {
                    html += "<li class=\"\(v.pass ? "pass" : "fail")\">\(v.pass ? "✓" : "✗") \(escape(v.label))"
                    html += v.pass || v.reason.isEmpty ? "" : " — \(escape(v.reason))"
                    html += "</li>"
                }
                html += "</ul>\n"
            }
            html += "</section>\n"
        }
        return html + "</div>\n"
    }

    static let style = """
        body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1d1d1f;background:#fff}
        h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em}h3{font-size:1em;margin:0 0 .4em}
        .meta{color:#666}table.matrix{border-collapse:collapse}
        .matrix th,.matrix td{border:1px solid #ddd;padding:.3em .7em;text-align:right}.matrix th{background:#f5f5f7}
        .cell{border:1px solid #ddd;border-left-width:6px;border-radius:4px;padding:.6em .9em;margin:.6em 0}
        .cell.pass{border-left-color:#2e7d32}.cell.fail,.cell.error{border-left-color:#c62828}
        .cell.ungraded{border-left-color:#999}.cell.hidden{display:none}
        pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f9;padding:.5em;margin:.3em 0}
        .verdicts{list-style:none;padding:0;margin:.3em 0}li.pass{color:#2e7d32}li.fail{color:#c62828}
        .vars{color:#555;margin:.2em 0}.filters{margin:.5em 0 1em}.filters label{margin-right:1em}
        """

    /// Applies the filters; reads and writes them in the URL's fragment so a view can be linked.
    static let filterScript = """
        (function(){
        var f=document.getElementById('failed-only'),v=document.getElementById('variant'),a=document.getElementById('assertion');
        var cells=document.querySelectorAll('.cell'),shown=document.getElementById('shown');
        function apply(){var n=0;for(var i=0;i<cells.length;i++){var c=cells[i];
        var ok=(!f.checked||c.getAttribute('data-failed')==='true')&&(!v.value||c.getAttribute('data-variant')===v.value)
        &&(!a.value||c.getAttribute('data-assertions').split('\\n').indexOf(a.value)>=0);
        c.classList.toggle('hidden',!ok);if(ok)n++;}
        shown.textContent=n+' of '+cells.length+' shown';}
        function save(){var p=[];if(f.checked)p.push('failed');if(v.value)p.push('variant='+encodeURIComponent(v.value));
        if(a.value)p.push('assertion='+encodeURIComponent(a.value));history.replaceState(null,'','#'+p.join('&'));}
        function load(){var h=location.hash.slice(1).split('&');for(var i=0;i<h.length;i++){var kv=h[i].split('=');
        var val=kv.length>1?decodeURIComponent(kv.slice(1).join('=')):'';
        if(kv[0]==='failed')f.checked=true;if(kv[0]==='variant')v.value=val;if(kv[0]==='assertion')a.value=val;}}
        f.addEventListener('change',function(){save();apply();});v.addEventListener('change',function(){save();apply();});
        a.addEventListener('change',function(){save();apply();});load();apply();
        })();
        """
}

extension EvalReport {
    /// The SHA-256 of `bytes` in hex (what the report's script hash is made with; also for files).
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.digest(bytes).map { String(format: "%02x", $0) }.joined()
    }
}
