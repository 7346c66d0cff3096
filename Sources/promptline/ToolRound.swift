import Foundation
import LineEditor
import PromptSession
import QueryCore

/// The tool loop: a reply that calls tools is answered, call by call, by the loaded mock or by
/// the user at a `result name#id ›` prompt; the results go back and the model goes on, until it
/// answers in text or `max_tool_rounds` is reached.
///
/// A round that ends before every call is answered (Ctrl-C or end of input at a result prompt,
/// the round limit, a failed request) leaves those calls in the conversation unanswered; the
/// next prompt sends an error result for each ("no result: the user ended the tool round"), so
/// the history stays valid for both APIs and says what happened. Results already typed for
/// them are sent then instead.
extension REPL {
    /// Sends `prompt` (its `{{variables}}` filled in) and runs the tool round its reply starts.
    func runTurn(_ typed: String, isRetry: Bool = false) async {
        let prompt: String
        do {
            prompt = try session.fillOrKeep(typed)
        } catch {
            err.error("\(error)")
            failedTurns += 1
            return
        }
        let held = heldResults
        heldResults = []
        let closing = session.closingResults().map { ended in held.first { $0.callID == ended.callID } ?? ended }
        guard
            let first = await sendRequest(
                prompt: prompt, template: typed == prompt ? nil : typed, results: closing, continuing: false,
                isRetry: isRetry)
        else { return }
        await continueRound(after: first, rounds: 0)
    }

    /// Answers the calls of `turn` and sends the results back, while the model keeps calling.
    func continueRound(after turn: TranscriptEvent.Turn, rounds: Int) async {
        var turn = turn
        var rounds = rounds
        while turn.succeeded, !session.pendingCalls.isEmpty {
            let calls = session.pendingCalls
            guard rounds < session.toolbox.maxRounds else {
                let n = calls.count
                let left = "\(n) call\(n == 1 ? "" : "s") left unanswered"
                out.dim(
                    "max_tool_rounds (\(session.toolbox.maxRounds)) reached: \(left) (the next prompt answers with an error; :set max_tool_rounds N allows more)"
                )
                return
            }
            guard let results = collectResults(calls) else { return }
            rounds += 1
            guard let next = await sendRequest(prompt: "", results: results, continuing: true, isRetry: false),
                next.succeeded
            else {
                // The results did not reach the model: the next prompt sends them (not error results).
                heldResults = results
                return
            }
            turn = next
        }
    }

    /// `:edit`: the last prompt in the line editor; the edited one replaces it and is sent.
    func editLastPrompt() async throws {
        guard let last = session.lastTemplate else { throw SessionError("nothing to edit yet: send a prompt first") }
        guard !last.contains("\n") else {
            throw SessionError(":edit takes one-line prompts; :undo, then send the new one (\"\"\" for several lines)")
        }
        guard case .line(let edited) = editor.readLine(prompt: out.render("\(dim: "edit") › "), initial: last),
            !edited.trimmingCharacters(in: .whitespaces).isEmpty
        else {
            out.finishLine()
            out.dim("edit abandoned: nothing changed")
            return
        }
        remember(edited)
        session.dropLastExchange()
        await runTurn(edited, isRetry: true)
    }

    /// `:copy`: the last reply — its text, or a call's arguments as JSON — on the clipboard.
    func copyLastReply() throws {
        // The conversation on the current branch first: the transcript holds every branch's
        // turns in the order they happened, so its last reply may be another branch's.
        let fromBranch = session.history.last(where: { $0.role == .assistant }).map { m -> String in
            guard m.content.isEmpty, !m.toolCalls.isEmpty else { return m.content }
            if m.toolCalls.count == 1, m.toolCalls[0].name == session.functionSpec?.name {
                return m.toolCalls[0].arguments.serialized(pretty: true)
            }
            return JSONValue.array(m.toolCalls.map { ["name": .string($0.name), "arguments": $0.arguments] })
                .serialized(pretty: true)
        }
        let last =
            fromBranch
            ?? transcript.events.reversed().lazy.compactMap { e -> String? in
                guard case .turn(let t) = e else { return nil }
                switch t.output {
                case .text(let text): return text
                case .functionCall(let c): return c.arguments.serialized(pretty: true)
                case .toolCalls(let calls, let text):
                    return text.isEmpty
                        ? JSONValue.array(calls.map { ["name": .string($0.name), "arguments": $0.arguments] })
                            .serialized(
                                pretty: true) : text
                case .error, .cancelled: return nil
                }
            }.first
        guard let last else { throw SessionError("nothing to copy yet: no reply") }
        guard out.setClipboard(last) else {
            throw SessionError(":copy needs a terminal (it sends the text to the terminal's clipboard with OSC 52)")
        }
        out.dim("copied \(counted(last.count, "character")) (where the terminal allows OSC 52 clipboard writes)")
    }

    /// A resumed session that stopped with calls unanswered goes on with them.
    func resumeRound() async {
        guard !session.pendingCalls.isEmpty,
            case .turn(let last)? = transcript.events.last(where: { if case .turn = $0 { true } else { false } }),
            last.succeeded
        else { return }
        let n = session.pendingCalls.count
        out.dim(
            "the session stopped in a tool round: \(n) call\(n == 1 ? "" : "s") await a result (Ctrl-C ends the round)")
        await continueRound(after: last, rounds: 0)
    }

    /// The result of each call, in order: the mock's when it has one (shown, not asked), else
    /// what the user types (text or JSON, `@file`, a `"""` block). nil when the user ended the
    /// round (Ctrl-C, end of input); results typed so far are kept for when the calls are closed.
    func collectResults(_ calls: [FunctionCall]) -> [ToolResult]? {
        var results: [ToolResult] = []
        for call in calls {
            let id = call.id ?? ""
            if let (content, missing) = session.mockAnswer(call, given: results) {
                out.line("\(dim: "result \(call.name)#\(id) (mock) ›") \(content)")
                for m in missing {
                    out.dim("note: the mock's {{\(m)}} names no argument of this call (filled with nothing)")
                }
                results.append(ToolResult(callID: id, name: call.name, content: content, source: .mock))
                continue
            }
            guard let r = askResult(for: call) else {
                heldResults = results
                let left = calls.count - results.count
                let calls = "\(left) call\(left == 1 ? "" : "s") unanswered"
                out.dim(
                    "tool round ended: \(calls); the next prompt answers \(left == 1 ? "it" : "them") with an error result"
                )
                return nil
            }
            results.append(r)
        }
        return results
    }

    /// Asks for one call's result until it gets one; nil on Ctrl-C or end of input.
    func askResult(for call: FunctionCall) -> ToolResult? {
        let id = call.id ?? ""
        while true {
            switch editor.readLine(prompt: out.render("\(yellow: "result \(call.name)#\(id)") › ")) {
            case .interrupted, .eof:
                out.finishLine()
                return nil
            case .line(let line):
                if line.trimmingCharacters(in: .whitespaces) == "\"\"\"" {
                    guard let block = readBlock() else { return nil }
                    return ToolResult(callID: id, name: call.name, content: block, source: .typed)
                }
                if line.hasPrefix("::") {
                    return ToolResult(callID: id, name: call.name, content: String(line.dropFirst()), source: .typed)
                }
                if line.hasPrefix(":") {
                    err.error(
                        "a result prompt takes \(call.name)'s result, not a command (::text sends \":text\"; Ctrl-C ends the round)"
                    )
                    continue
                }
                if line.hasPrefix("@@") {
                    return ToolResult(callID: id, name: call.name, content: String(line.dropFirst()), source: .typed)
                }
                if line.hasPrefix("@") {
                    let path = line.dropFirst().trimmingCharacters(in: .whitespaces)
                    do {
                        let text = try Session.readText(path, what: "result")
                        return ToolResult(callID: id, name: call.name, content: text, source: .file)
                    } catch {
                        err.error("\(error) — type the result, @file, or Ctrl-C to end the round")
                        continue
                    }
                }
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else {
                    out.dim(
                        "type what \(call.name) returned (text or JSON), @file to read it, \"\"\" for several lines, Ctrl-C to end the round"
                    )
                    continue
                }
                return ToolResult(callID: id, name: call.name, content: line, source: .typed)
            }
        }
    }

    /// What a reply came to, after the streamed part: tool calls each as `name#id(args)` with
    /// its schema check, structured output pretty-printed with its check, a forced function's
    /// schema check.
    func showOutput(_ output: TranscriptEvent.Output, violations: [SchemaViolation]) {
        switch output {
        case .toolCalls(let calls, _):
            for call in calls {
                let at = "\(call.name)#\(call.id ?? "?")"
                let args = call.arguments == .null ? call.rawArguments : call.arguments.serialized()
                out.line("\(bold: "→ \(at)")(\(args))")
                let mine = violations.filter { $0.path == at || $0.path.hasPrefix(at + " ") }
                if mine.isEmpty { out.dim("  ✓ arguments match \(call.name)'s schema") }
                for v in mine { err.line("  \(yellow: "schema:") \(v)") }
            }
        case .text(let t) where session.toolbox.schema != nil && session.functionSpec == nil:
            if let v = try? JSONValue.parse(t) {
                out.line(block: v.serialized(pretty: true))
            } else {
                out.line(block: t)
            }
            if violations.isEmpty { out.dim("✓ matches schema \(session.toolbox.schema!.name)") }
            for v in violations { err.line("\(yellow: "schema:") \(v)") }
        default:
            for v in violations { err.line("\(yellow: "schema:") \(v)") }
        }
    }
}
