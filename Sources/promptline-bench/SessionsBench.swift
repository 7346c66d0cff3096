import Foundation
import PromptSession
import QueryCore

/// `promptline-bench sessions N [TURNS] [DIR]`: N saved sessions of TURNS turns each (default
/// 2,000, about 1.1 MB a journal), written as promptline writes them (the journal, then its
/// summary in `.index`), then listed as `:sessions` and `--resume last` list them. Reports the
/// listing's time (budget 100 ms at 500 × 2,000); with DIR the folder is kept there for
/// scripts/bench's run of `:sessions` through the binary.
func benchSessions(_ n: Int, turns: Int, keep dir: String?) throws {
    let folder = dir ?? NSTemporaryDirectory() + "pl-bench-sessions-\(UUID())"
    defer { if dir == nil { try? FileManager.default.removeItem(atPath: folder) } }
    try AtomicFile.makePrivateDirectory(folder)
    var t = longTranscript(turns)
    let whole = t.journalBytes()
    let body = whole[(whole.firstIndex(of: UInt8(ascii: "\n"))! + 1)...]
    let index = SessionIndex(sessions: folder)
    let store = TranscriptStore(directory: folder)
    for i in 0..<n {
        t.id = String(format: "s%07d", i)
        let path = store.autosavePath(for: t, created: t.created.addingTimeInterval(Double(i)))
        try AtomicFile.write(Array((t.header.serialized() + "\n").utf8) + body, to: path)
        index.note(t, journal: path)
    }
    var ms: [Double] = []
    var listed = 0
    for _ in 0..<15 {
        let t0 = now()
        let recent = store.recent()
        ms.append((now() - t0) * 1000)
        let last = store.recent(limit: 1).first
        precondition(recent.count == min(20, n) && recent.allSatisfy { $0.turnCount == turns })
        precondition(last?.path == store.autosavePath(for: t, created: t.created.addingTimeInterval(Double(n - 1))))
        listed = recent.count
    }
    let bytes = Int64(whole.count) * Int64(n)
    emit(
        "sessions.list", unit: "ms", ms,
        extra: [
            "sessions": .integer(Int64(n)), "turns": .integer(Int64(turns)), "bytes": .integer(bytes),
            "listed": .integer(Int64(listed)), "budget": .double(100),
        ])
}

/// A chat transcript of `n` turns, each request the whole conversation so far.
func longTranscript(_ n: Int) -> Transcript {
    let s = Session(provider: .openAI, model: "m")
    var t = Transcript(provider: "openai", baseURL: "http://127.0.0.1/v1", model: "m")
    t.noteSettings(s)
    let answer = "An answer of moderate length, about one line of text."
    let r = QueryResult(
        output: .text(answer), requestTime: 0.4, inputTokens: 30, outputTokens: 12, timeToFirstToken: 0.1, retries: 0,
        info: QueryInfo())
    var messages: [JSONValue] = []
    for i in 0..<n {
        let prompt = "Prompt number \(i), asking something."
        messages.append(["role": "user", "content": .string(prompt)])
        t.noteTurn(prompt: prompt, request: ["model": "m", "messages": .array(messages)], outcome: .success(r))
        messages.append(["role": "assistant", "content": .string(answer)])
    }
    return t
}
