import Foundation
import PromptSession
import QueryCore

/// Tab completion: command names, `:set` keys, models used, file paths.
enum Completion {
    static func candidates(for before: String, session: Session) -> [String] {
        guard before.hasPrefix(":") else { return [] }
        let words = before.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        if words.count == 1 { return CommandParser.commandWords.filter { $0.hasPrefix(before) } }
        let cmd = words[0]
        let current = words.last ?? ""
        // These take one word: past it there is nothing to complete (a second Tab after a
        // completed word would add it again).
        let oneWord = [
            ":set", ":unset", ":model", ":mode", ":func-via", ":provider", ":set-editor", ":help", ":choice",
        ]
        if oneWord.contains(cmd) && words.count > 2 { return [] }
        switch cmd {
        case ":set", ":unset":
            let keys = Array(Set(OptionValues.knownKeys + ["max_tool_rounds"] + session.options.keys)).sorted()
            return keys.filter { $0.hasPrefix(current) }
        case ":model":
            return session.modelsUsed.filter { $0.hasPrefix(current) }
        case ":batch":
            return batch(words)
        case ":eval":
            return eval(words)
        case ":var":
            // :var NAME @file
            guard words.count == 3, current.hasPrefix("@") else { return [] }
            return paths(String(current.dropFirst())).map { "@" + $0 }
        case ":mode": return ["chat", "single"].filter { $0.hasPrefix(current) }
        case ":func-via": return ForcedCallStrategy.allCases.map(\.rawValue).filter { $0.hasPrefix(current) }
        case ":provider": return Provider.allCases.map(\.rawValue).filter { $0.hasPrefix(current) }
        case ":set-editor": return ["emacs", "vi"].filter { $0.hasPrefix(current) }
        case ":set-view":
            return (words.count == 2 ? ["markdown", "reasoning"] : ["on", "off"]).filter { $0.hasPrefix(current) }
        case ":help": return CommandParser.help.map(\.name).filter { $0.hasPrefix(current) }
        case ":func", ":save", ":load", ":export", ":mock", ":schema":
            return paths(current)
        case ":tool":
            if words.count == 3 && words[1] == "rm" {
                return session.toolbox.tools.map(\.name).filter { $0.hasPrefix(current) }
            }
            return words.count == 2 ? (["rm", "off"].filter { $0.hasPrefix(current) } + paths(current)) : []
        case ":assert":
            if words.count == 3 && words[1] == "rm" {
                return (["all"] + session.assertions.indices.map { "\($0 + 1)" }).filter { $0.hasPrefix(current) }
            }
            guard words.count == 2 else { return [] }
            let types = Assertion.Kind.allCases.map(\.rawValue)
            return (["rm", "threshold"] + types + types.map { "not-" + $0 }).filter { $0.hasPrefix(current) }
        case ":choice":
            let names = ["auto", "none", "required"] + session.toolbox.tools.map(\.name)
            return names.filter { $0.hasPrefix(current) }
        case ":system":
            guard current.hasPrefix("@") else { return [] }
            return paths(String(current.dropFirst())).map { "@" + $0 }
        default:
            return []
        }
    }

    /// `:batch FILE …` (or `resume`/`cancel`): the file first, then `remote` and `out=PATH`;
    /// nothing after `--` (the template is free text).
    static func batch(_ words: [String]) -> [String] {
        let current = words.last ?? ""
        if words.dropLast().contains("--") { return [] }
        if words.count == 2 {
            return ["resume", "cancel"].filter { $0.hasPrefix(current) && !current.isEmpty } + paths(current)
        }
        if ["resume", "cancel"].contains(words[1]) { return [] }
        if current.hasPrefix("out=") { return paths(String(current.dropFirst(4))).map { "out=" + $0 } }
        return ["remote"].filter { $0.hasPrefix(current) && !current.isEmpty }
    }

    /// `:eval FILE [report=OUT.html]` or `:eval diff OLD NEW`: files, `diff` first, paths after `report=`.
    static func eval(_ words: [String]) -> [String] {
        let current = words.last ?? ""
        if words.count == 2 { return ["diff"].filter { $0.hasPrefix(current) && !current.isEmpty } + paths(current) }
        if words[1] == "diff" { return words.count <= 4 ? paths(current) : [] }
        if current.hasPrefix("report=") { return paths(String(current.dropFirst(7))).map { "report=" + $0 } }
        return []
    }

    static func paths(_ partial: String) -> [String] {
        let expanded = partial.hasPrefix("~/") ? XDG.home() + partial.dropFirst() : partial
        let dir: String
        let prefix: String
        if let slash = expanded.lastIndex(of: "/") {
            dir = String(expanded[...slash])
            prefix = String(expanded[expanded.index(after: slash)...])
        } else {
            dir = ""
            prefix = expanded
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else {
            return []
        }
        let shownDir = partial.hasPrefix("~/") ? "~/" + dir.dropFirst(XDG.home().count + 1) : dir
        return names.filter { $0.hasPrefix(prefix) && (prefix.hasPrefix(".") || !$0.hasPrefix(".")) }.sorted().map {
            name in
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: dir + name, isDirectory: &isDir)
            return shownDir + name + (isDir.boolValue ? "/" : "")
        }
    }
}
