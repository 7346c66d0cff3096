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
        switch cmd {
        case ":set", ":unset":
            guard words.count == 2 else { return [] }
            let keys = Array(Set(OptionValues.knownKeys + session.options.keys)).sorted()
            return keys.filter { $0.hasPrefix(current) }
        case ":model":
            return session.modelsUsed.filter { $0.hasPrefix(current) }
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

    static func paths(_ partial: String) -> [String] {
        let expanded = partial.hasPrefix("~/") ? NSHomeDirectory() + partial.dropFirst() : partial
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
        let shownDir = partial.hasPrefix("~/") ? "~/" + dir.dropFirst(NSHomeDirectory().count + 1) : dir
        return names.filter { $0.hasPrefix(prefix) && (prefix.hasPrefix(".") || !$0.hasPrefix(".")) }.sorted().map {
            name in
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: dir + name, isDirectory: &isDir)
            return shownDir + name + (isDir.boolValue ? "/" : "")
        }
    }
}
