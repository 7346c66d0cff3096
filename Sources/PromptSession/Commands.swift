import Foundation
import QueryCore

/// How the conversation is sent.
public enum SessionMode: String, Sendable, Equatable, CaseIterable {
    /// Every turn carries the conversation so far.
    case chat
    /// Every turn sends exactly the system prompt and this message (AIDE's `query`).
    case single
}

/// A parsed `:command` that acts on the session (see ``Session/apply(_:)``).
public enum Command: Equatable, Sendable {
    case help(String?)
    case showSystem
    case setSystem(String)
    case loadSystem(path: String)
    case clearSystem
    case showOptions
    case set(key: String, value: String)
    case unset(key: String)
    case showModel
    case setModel(String)
    case showFunction
    case loadFunction(path: String)
    case functionOff
    /// `:func-via [auto | tools | named | json-schema]`: how a forced function is requested.
    case funcVia(ForcedCallStrategy?)
    case mode(SessionMode?)
    case reset
    case stats
    case provider(String?)
}

/// A parsed `:command` that acts on the app rather than the session: the terminal, files,
/// sending turns again. The REPL carries these out; ``Session`` never sees them.
public enum AppCommand: Equatable, Sendable {
    case editor(String)
    case save(path: String?, force: Bool)
    case export(path: String, force: Bool)
    case load(path: String)
    case sessions
    case retry
    case request(RequestFormat)
    /// `:compare key=v1,v2 … [-- prompt]`: the values stay raw text, typed when applied.
    case compare(axes: [CompareAxis], prompt: String?)
    case quit
}

/// One setting varied by `:compare`, with the values to try.
public struct CompareAxis: Equatable, Sendable {
    public var key: String
    public var values: [String]
    public init(key: String, values: [String]) {
        self.key = key
        self.values = values
    }
}

/// How `:request` shows the last request.
public enum RequestFormat: String, Sendable, Equatable, CaseIterable {
    case curl, json, swift
}

/// What one input line means.
public enum Input: Equatable, Sendable {
    /// Send this text as a user turn.
    case turn(String)
    case command(Command)
    case app(AppCommand)
    /// Nothing to do (a blank line).
    case empty
}

/// One entry of `:help`.
public struct CommandHelp: Sendable {
    public var name: String
    public var usage: String
    public var summary: String
    public var example: String
}

public enum CommandParser {
    public static let help: [CommandHelp] = [
        CommandHelp(
            name: "help", usage: ":help [command]", summary: "list commands, or explain one", example: ":help set"),
        CommandHelp(
            name: "system", usage: ":system [text | @file | off]",
            summary: "show, set, load or clear the system prompt", example: ":system You are terse."),
        CommandHelp(
            name: "set", usage: ":set [key value]",
            summary: "show the sampling options, or set one (typed: numbers, true/false, null, JSON)",
            example: ":set temperature 0.2"),
        CommandHelp(name: "unset", usage: ":unset key", summary: "remove an option", example: ":unset temperature"),
        CommandHelp(
            name: "model", usage: ":model [name]", summary: "show or set the model", example: ":model gpt-4o-mini"),
        CommandHelp(
            name: "func", usage: ":func [file | off]",
            summary: "show, load (JSON/YAML) or drop the function every turn must call",
            example: ":func tools/review.yaml"),
        CommandHelp(
            name: "func-via", usage: ":func-via [auto | tools | named | json-schema]",
            summary:
                "how :func forces the call: auto (json-schema on llama.cpp, tools elsewhere), "
                + "one tool + tool_choice, the named tool_choice, or the schema as response_format",
            example: ":func-via json-schema"),
        CommandHelp(
            name: "mode", usage: ":mode [chat | single]",
            summary: "chat keeps the conversation; single sends system + this prompt only", example: ":mode single"),
        CommandHelp(
            name: "reset", usage: ":reset", summary: "forget the conversation so far (settings stay)", example: ":reset"
        ),
        CommandHelp(
            name: "stats", usage: ":stats", summary: "tokens, latency and retries for the session and the last turn",
            example: ":stats"),
        CommandHelp(
            name: "provider", usage: ":provider [openai | anthropic]", summary: "show or switch the API protocol",
            example: ":provider anthropic"),
        CommandHelp(
            name: "save", usage: ":save [path]  (:save! path overwrites)",
            summary: "write the transcript (it is also autosaved after every turn)", example: ":save experiment.json"),
        CommandHelp(
            name: "load", usage: ":load path", summary: "restore a saved session: settings, conversation, stats",
            example: ":load experiment.json"),
        CommandHelp(
            name: "export", usage: ":export path.md  (:export! path overwrites any file)",
            summary: "write the session as readable Markdown", example: ":export notes.md"),
        CommandHelp(
            name: "sessions", usage: ":sessions", summary: "list recent autosaved sessions", example: ":sessions"),
        CommandHelp(
            name: "retry", usage: ":retry",
            summary: "send the last prompt again with the current settings, replacing the last exchange",
            example: ":retry"),
        CommandHelp(
            name: "request", usage: ":request [curl | json | swift]",
            summary:
                "the last request as a runnable curl command (key as $OPENAI_API_KEY), as JSON, or as a QueryCore call",
            example: ":request curl"),
        CommandHelp(
            name: "compare", usage: ":compare key=v1,v2[,…] [key2=…] [-- prompt]",
            summary: "run the last (or the given) prompt once per combination, side by side",
            example: ":compare temperature=0,0.7,1.2"),
        CommandHelp(
            name: "set-editor", usage: ":set-editor emacs | vi", summary: "line-editing keys", example: ":set-editor vi"
        ),
        CommandHelp(name: "quit", usage: ":quit  (or :exit, Ctrl-D)", summary: "leave", example: ":quit"),
    ]

    /// Every command word, for completion.
    public static var commandWords: [String] { help.map { ":" + $0.name } + [":exit"] }

    /// Parses one line. A line starting with `:` is a command (`::text` sends `:text`).
    /// - Throws: ``SessionError`` for an unknown command or wrong arguments.
    public static func parse(_ line: String) throws -> Input {
        if line.hasPrefix("::") { return .turn(String(line.dropFirst())) }
        guard line.hasPrefix(":") else {
            return line.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? .empty : .turn(line)
        }
        let body = line.dropFirst()
        let name = String(body.prefix { !$0.isWhitespace })
        let rest = body.dropFirst(name.count).trimmingCharacters(in: .whitespaces)
        let noArgs = { () throws -> Void in
            guard rest.isEmpty else { throw SessionError(":\(name) takes no arguments") }
        }
        if let c = try sessionCommand(name, rest, noArgs: noArgs) { return .command(c) }
        if let c = try appCommand(name, rest, noArgs: noArgs) { return .app(c) }
        if name.isEmpty { throw SessionError("a lone ':' is not a command; :help lists them (::text sends \":text\")") }
        let near = commandWords.filter { $0.dropFirst().hasPrefix(name.prefix(2)) }
        let hint = near.isEmpty ? ":help lists the commands" : "did you mean \(near.joined(separator: " or "))?"
        throw SessionError("unknown command :\(name); \(hint) (::\(name) sends it as text)")
    }

    static func sessionCommand(_ name: String, _ rest: String, noArgs: () throws -> Void) throws -> Command? {
        switch name {
        case "help", "h", "?":
            return .help(rest.isEmpty ? nil : rest.trimmingCharacters(in: CharacterSet(charactersIn: ":")))
        case "system":
            if rest.isEmpty { return .showSystem }
            if rest == "off" { return .clearSystem }
            guard rest.hasPrefix("@") else { return .setSystem(rest) }
            let path = String(rest.dropFirst()).trimmingCharacters(in: .whitespaces)
            guard !path.isEmpty else { throw SessionError(":system @ needs a file name, e.g. :system @prompt.txt") }
            return .loadSystem(path: path)
        case "set":
            if rest.isEmpty { return .showOptions }
            let key = String(rest.prefix { !$0.isWhitespace && $0 != "=" })
            var value = rest.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("=") { value = String(value.dropFirst()).trimmingCharacters(in: .whitespaces) }
            guard !value.isEmpty else {
                throw SessionError(":set \(key) needs a value, e.g. :set \(key) 0.5 (or :unset \(key))")
            }
            return .set(key: key, value: value)
        case "unset":
            guard !rest.isEmpty, !rest.contains(" ") else {
                throw SessionError(":unset takes one key, e.g. :unset temperature")
            }
            return .unset(key: rest)
        case "model": return rest.isEmpty ? .showModel : .setModel(rest)
        case "func": return rest.isEmpty ? .showFunction : rest == "off" ? .functionOff : .loadFunction(path: rest)
        case "func-via":
            if rest.isEmpty { return .funcVia(nil) }
            guard let v = ForcedCallStrategy(rawValue: rest) else {
                throw SessionError(
                    ":func-via takes "
                        + "\(ForcedCallStrategy.allCases.map(\.rawValue).joined(separator: ", ")), not \(rest)"
                )
            }
            return .funcVia(v)
        case "mode":
            if rest.isEmpty { return .mode(nil) }
            guard let m = SessionMode(rawValue: rest) else {
                throw SessionError(":mode takes chat or single, not \(rest)")
            }
            return .mode(m)
        case "reset":
            try noArgs()
            return .reset
        case "stats":
            try noArgs()
            return .stats
        case "provider": return .provider(rest.isEmpty ? nil : rest)
        default: return nil
        }
    }

    static func appCommand(_ name: String, _ rest: String, noArgs: () throws -> Void) throws -> AppCommand? {
        switch name {
        case "set-editor":
            guard rest == "vi" || rest == "emacs" else { throw SessionError(":set-editor takes emacs or vi") }
            return .editor(rest)
        case "save", "save!":
            if name == "save!" && rest.isEmpty { throw SessionError(":save! needs a path") }
            return .save(path: rest.isEmpty ? nil : rest, force: name == "save!")
        case "export", "export!":
            guard !rest.isEmpty else { throw SessionError(":\(name) needs a path, e.g. :export session.md") }
            return .export(path: rest, force: name == "export!")
        case "load":
            guard !rest.isEmpty else { throw SessionError(":load needs a path (:sessions lists autosaved ones)") }
            return .load(path: rest)
        case "sessions":
            try noArgs()
            return .sessions
        case "retry":
            try noArgs()
            return .retry
        case "compare": return try compare(rest)
        case "request":
            if rest.isEmpty { return .request(.curl) }
            guard let f = RequestFormat(rawValue: rest) else {
                throw SessionError(":request takes curl, json or swift, not \(rest)")
            }
            return .request(f)
        case "quit", "exit", "q":
            try noArgs()
            return .quit
        default: return nil
        }
    }

    static func compare(_ rest: String) throws -> AppCommand {
        var spec = rest
        var prompt: String?
        if let r = rest.range(of: " -- ") ?? (rest.hasPrefix("-- ") ? rest.range(of: "-- ") : nil) {
            spec = String(rest[..<r.lowerBound])
            prompt = String(rest[r.upperBound...])
        }
        var axes: [CompareAxis] = []
        for word in spec.split(separator: " ") {
            guard let eq = word.firstIndex(of: "="), eq != word.startIndex else {
                throw SessionError(":compare takes key=v1,v2 pairs, e.g. :compare temperature=0,0.7 (got \(word))")
            }
            let values = word[word.index(after: eq)...].split(separator: ",", omittingEmptySubsequences: false).map(
                String.init)
            guard values.count >= 1, !values.contains("") else {
                throw SessionError(":compare \(word): give values separated by commas")
            }
            axes.append(CompareAxis(key: String(word[..<eq]), values: values))
        }
        guard !axes.isEmpty else {
            throw SessionError(":compare needs at least one key=v1,v2, e.g. :compare temperature=0,0.7")
        }
        return .compare(axes: axes, prompt: prompt.flatMap { $0.isEmpty ? nil : $0 })
    }
}
