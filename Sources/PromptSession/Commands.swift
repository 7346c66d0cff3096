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
    /// `:grader [MODEL [provider=P] | off]`: who grades the model-graded assertions.
    case grader(String?)
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
    /// `:tools` (and `:tool` alone).
    case showTools
    /// `:tool FILE`: add the file's tools (one or a list), replacing those of the same name.
    case loadTools(path: String)
    /// `:tool rm NAME`.
    case removeTool(String)
    /// `:tool off`: drop them all.
    case toolsOff
    /// `:choice [auto | none | required | NAME]`.
    case choice(String?)
    case showMock
    case loadMock(path: String)
    case mockOff
    case showSchema
    case loadSchema(path: String)
    case schemaOff
    /// `:vars`, or `:var NAME` (one variable).
    case vars(String?)
    /// `:var NAME VALUE` (`@file` for a file's text, `@@x` for "@x").
    case setVar(name: String, value: String)
    /// `:var rm NAME`.
    case removeVar(String)
    /// `:undo`: drop the last exchange.
    case undo
    /// `:fork [name]`: go on as a new branch (the one left stays as it is).
    case fork(String?)
    /// `:branches`.
    case branches
    /// `:switch name`.
    case switchBranch(String)
    /// `:assert TYPE VALUE [weight=W] [threshold=T]`: checked after every turn.
    case addAssertion(Assertion)
    /// `:asserts` (and `:assert` alone).
    case asserts
    /// `:assert rm N` (nil: `:assert rm all`).
    case removeAssertion(Int?)
    /// `:assert threshold X` (nil: `:assert threshold off`).
    case assertThreshold(Double?)
}

/// A parsed `:command` that acts on the app rather than the session: the terminal, files,
/// sending turns again. The REPL carries these out; ``Session`` never sees them.
public enum AppCommand: Equatable, Sendable {
    case editor(String)
    /// `:set-view reasoning on|off`: whether the model's reasoning is shown (it is always kept).
    case view(reasoning: Bool)
    /// `:set-view markdown on|off`: whether replies are rendered as Markdown on a terminal (the
    /// text kept, copied and saved is always the one the server sent).
    case viewMarkdown(Bool)
    case save(path: String?, force: Bool)
    case export(path: String, force: Bool)
    case load(path: String)
    case sessions
    case retry
    case request(RequestFormat)
    /// `:compare key=v1,v2 … [-- prompt]`: the values stay raw text, typed when applied.
    case compare(axes: [CompareAxis], prompt: String?)
    /// `:batch FILE [remote] [concurrency=N] [out=PATH] [poll=S] [key=v1,v2 …] [-- template]`.
    case batch(BatchCommand)
    /// `:batch resume ID`: wait for a remote batch sent earlier and collect its results.
    case batchResume(String)
    /// `:batch cancel ID`: stop a remote batch at the provider.
    case batchCancel(String)
    /// `:batches`: the remote batches, promptline's and the account's recent ones.
    case batches
    /// `:eval diff OLD NEW`: what changed between two runs' results.
    case evalDiff(old: String, new: String)
    /// `:eval FILE [report=OUT.html]`: an eval file run in the session, as `--eval` runs it.
    case evalRun(path: String, report: String?)
    /// `:report OUT [RESULTS] [against=OLD]`: a run's results as one HTML page.
    case report(path: String, results: String?, against: String?)
    /// `:edit`: the last prompt in the line editor, sent again as edited.
    case edit
    /// `:copy`: the last reply to the clipboard (OSC 52).
    case copy
    case quit
}

/// `:batch`'s arguments.
public struct BatchCommand: Equatable, Sendable {
    /// The most sends of a row `repeat=` asks for.
    public static let maxRepeats = 100

    public var path: String
    public var concurrency: Int?
    public var out: String?
    /// `:compare`-style keys: the run is the product of the rows and these variants.
    public var axes: [CompareAxis]
    /// The template (default: the last prompt as typed).
    public var template: String?
    /// Through the provider's Batch API (`remote`) rather than request by request.
    public var remote = false
    /// Seconds between polls of a remote batch.
    public var poll: Double?
    /// Sends of each row under each variant (`repeat=N`: pass@N and stability).
    public var repeats = 1

    public init(
        path: String, concurrency: Int? = nil, out: String? = nil, axes: [CompareAxis] = [], template: String? = nil,
        remote: Bool = false, poll: Double? = nil
    ) {
        (self.path, self.concurrency, self.out, self.axes, self.template) = (path, concurrency, out, axes, template)
        (self.remote, self.poll) = (remote, poll)
    }
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

    /// Reads ``CommandParser/help``'s text: blocks separated by blank lines, each a usage line,
    /// indented summary lines, and an `e.g.` line.
    static func table(_ text: String) -> [CommandHelp] {
        text.components(separatedBy: "\n\n").map { block in
            let lines = block.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            let usage = lines.first ?? ""
            let name = usage.dropFirst().prefix { !$0.isWhitespace }
            let example = lines.last.map { String($0.dropFirst("e.g. ".count)) } ?? ""
            let summary = lines.dropFirst().dropLast().joined(separator: " ")
            return CommandHelp(name: String(name), usage: usage, summary: summary, example: example)
        }
    }
}

public enum CommandParser {
    /// Every command: its usage line (the first word names it), what it does (indented), and an
    /// example (`e.g.`). Kept as text so that a command's help reads as it prints.
    public static let help: [CommandHelp] = CommandHelp.table(
        """
        :help [command]
            list commands, or explain one
        e.g. :help set

        :system [text | @file | off]
            show, set, load or clear the system prompt
        e.g. :system You are terse.

        :set [key value]
            show the sampling options, or set one (typed: numbers, true/false, null, JSON)
        e.g. :set temperature 0.2

        :unset key
            remove an option
        e.g. :unset temperature

        :model [name]
            show or set the model
        e.g. :model gpt-4o-mini

        :func [file | off]
            show, load (JSON/YAML) or drop the function every turn must call (AIDE's forced call; the tools
            are not sent while it is loaded)
        e.g. :func tools/review.yaml

        :tool [FILE | rm NAME | off]
            add the tools in FILE (JSON/YAML: one or a list; AIDE, OpenAI or Anthropic shapes), replacing
            same-named ones; rm drops one, off all
        e.g. :tool tools/weather.yaml

        :tools
            list the loaded tools (name, description, required parameters) and the choice
        e.g. :tools

        :choice [auto | none | required | NAME]
            which tool the first request of a turn may or must call (the requests carrying results go
            with auto)
        e.g. :choice get_weather

        :mock [FILE | off]
            canned tool results (tool name → result or list of results; {{args.NAME}} fills in an
            argument), used without asking
        e.g. :mock tools/mock.yaml

        :schema [FILE | off]
            structured output: the reply is JSON checked against the schema in FILE and shown
            pretty-printed
        e.g. :schema person.schema.json

        :var [NAME [VALUE | @file] | rm NAME]
            set a template variable ({{NAME}} in prompts and the system prompt; {{{{ is a literal {{),
            show one, or drop one
        e.g. :var city Paris

        :vars
            list the template variables
        e.g. :vars

        :undo
            drop the last exchange (prompt, reply, tool round) from the conversation; again for the one before
        e.g. :undo

        :edit
            the last prompt in the line editor: the edited one replaces it and is sent
        e.g. :edit

        :fork [name]
            go on as a new branch of the conversation; the branch left stays as it was
        e.g. :fork shorter

        :branches
            list the branches (messages, last prompt); * marks the current one
        e.g. :branches

        :switch name
            go to another branch of the conversation
        e.g. :switch main

        :assert TYPE VALUE [weight=W] [threshold=T] | rm N | rm all | threshold X
            check every turn's output (promptfoo's types: equals, contains, icontains, contains-all,
            contains-any, starts-with, regex, is-json, contains-json, levenshtein, cost, latency,
            finish-reason, tool-call, schema-valid; not-TYPE negates); {{NAME}} uses a variable
        e.g. :assert icontains paris

        :asserts
            list the assertions, numbered, and the threshold
        e.g. :asserts

        :grader [MODEL [provider=P] | off]
            the model that grades llm-rubric, factuality and answer-relevance assertions (a forced call of
            grade(pass, score, reason)); default, and off: the session's own model
        e.g. :grader gpt-4o provider=openai

        :func-via [auto | tools | named | json-schema]
            how :func forces the call: auto (json-schema on llama.cpp, tools elsewhere), one tool +
            tool_choice, the named tool_choice, or the schema as response_format
        e.g. :func-via json-schema

        :mode [chat | single]
            chat keeps the conversation; single sends system + this prompt only
        e.g. :mode single

        :reset
            forget the conversation so far (settings stay)
        e.g. :reset

        :stats
            tokens, latency and retries for the session and the last turn
        e.g. :stats

        :provider [openai | openai-responses | anthropic]
            show or switch the wire format (Chat Completions, Responses, Anthropic Messages)
        e.g. :provider anthropic

        :save [path]  (:save! path overwrites)
            write the transcript (it is also autosaved after every turn)
        e.g. :save experiment.jsonl

        :load path
            restore a saved session: settings, conversation, stats
        e.g. :load experiment.jsonl

        :export path.md  (:export! path overwrites any file)
            write the session as readable Markdown
        e.g. :export notes.md

        :sessions
            list recent autosaved sessions
        e.g. :sessions

        :retry
            send the last prompt again with the current settings, replacing the last exchange
        e.g. :retry

        :request [curl | json | swift]
            the last request as a runnable curl command (key as $OPENAI_API_KEY), as JSON, or as a QueryCore
            call
        e.g. :request curl

        :compare key=v1,v2[,…] [key2=…] [-- prompt]
            run the last (or the given) prompt once per combination, side by side
        e.g. :compare temperature=0,0.7,1.2

        :batch FILE [concurrency=N] [out=PATH] [repeat=N] [key=v1,v2 …] [-- template]
            run the template (default: the last prompt as typed) over every row of FILE (JSONL or CSV;
            a row's fields are its variables); results are appended to out as they finish, and a
            rerun skips the rows already there; repeat=N sends each row N times (pass@N, stability)
        e.g. :batch countries.csv concurrency=8 model=gpt-4o-mini,gpt-4o

        :batch FILE remote [out=PATH] [poll=SECONDS] [key=v1,v2 …] [-- template]
            the same through OpenAI's Batch API (half price, within 24 hours): upload, create, poll,
            then the output and error files into the same results; Ctrl-C stops waiting, not the batch
        e.g. :batch countries.csv remote poll=60

        :batch resume ID  (:batch cancel ID stops it)
            wait for a remote batch sent earlier (also from a closed promptline) and collect its results
        e.g. :batch resume batch_abc123

        :eval FILE [report=OUT.html]
            run an eval file (prompts, providers, tests with assertions: a subset of promptfoo's
            config) as --eval does: the matrix, the failing rows, the changes since its last run
        e.g. :eval capitals.yaml report=capitals.html

        :eval diff OLD NEW
            compare two results files: the rows that went pass→fail and fail→pass per variant, and each
            assertion's passes before and after
        e.g. :eval diff old.jsonl new.jsonl

        :report OUT.html [RESULTS] [against=OLD]
            write one self-contained HTML page of a run (default: the last batch): the matrix, every
            output with its verdicts, filters, and the changes since the previous run (or OLD)
        e.g. :report report.html

        :batches
            the remote batches: those promptline sent (run, rows, results file) and the account's recent ones
        e.g. :batches

        :copy
            put the last reply on the clipboard (an OSC 52 sequence: where the terminal allows it)
        e.g. :copy

        :set-view reasoning on | off
            show the model's reasoning (dimmed, before the answer) or only count it; it is kept in the
            transcript either way
        e.g. :set-view reasoning off

        :set-view markdown on | off
            render replies as Markdown on a terminal (headings, lists, tables, highlighted code) or
            print them as sent; piped output is always as sent
        e.g. :set-view markdown off

        :set-editor emacs | vi
            line-editing keys
        e.g. :set-editor vi

        :quit  (or :exit, Ctrl-D)
            leave
        e.g. :quit
        """)

    /// Every command word, for completion.
    public static var commandWords: [String] {
        var seen: Set<String> = []
        return (help.map { ":" + $0.name } + [":exit"]).filter { seen.insert($0).inserted }
    }

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
        default: return try toolCommand(name, rest, noArgs: noArgs)
        }
    }

    static func toolCommand(_ name: String, _ rest: String, noArgs: () throws -> Void) throws -> Command? {
        switch name {
        case "tools":
            try noArgs()
            return .showTools
        case "tool":
            if rest.isEmpty { return .showTools }
            if rest == "off" { return .toolsOff }
            if rest == "rm" || rest.hasPrefix("rm ") {
                let tool = rest.dropFirst(2).trimmingCharacters(in: .whitespaces)
                guard !tool.isEmpty, !tool.contains(" ") else { throw SessionError(":tool rm takes one tool name") }
                return .removeTool(tool)
            }
            return .loadTools(path: rest)
        case "choice":
            guard !rest.contains(" ") else { throw SessionError(":choice takes auto, none, required or a tool's name") }
            return .choice(rest.isEmpty ? nil : rest)
        case "mock": return rest.isEmpty ? .showMock : rest == "off" ? .mockOff : .loadMock(path: rest)
        case "schema": return rest.isEmpty ? .showSchema : rest == "off" ? .schemaOff : .loadSchema(path: rest)
        default: return try varCommand(name, rest, noArgs: noArgs)
        }
    }

    static func varCommand(_ name: String, _ rest: String, noArgs: () throws -> Void) throws -> Command? {
        switch name {
        case "undo", "branches":
            try noArgs()
            return name == "undo" ? .undo : .branches
        case "fork":
            guard rest.isEmpty || Template.isValidName(rest) else {
                throw SessionError(":fork takes a branch name (letters, digits, _ - and .)")
            }
            return .fork(rest.isEmpty ? nil : rest)
        case "switch":
            guard !rest.isEmpty, !rest.contains(" ") else {
                throw SessionError(":switch takes a branch name; :branches lists them")
            }
            return .switchBranch(rest)
        case "vars":
            try noArgs()
            return .vars(nil)
        case "var":
            let words = rest.split(separator: " ", maxSplits: 1).map(String.init)
            guard let first = words.first else { return .vars(nil) }
            if first == "rm" {
                guard words.count == 2, !words[1].contains(" ") else { throw SessionError(":var rm takes one name") }
                return .removeVar(words[1])
            }
            guard Template.isValidName(first) else {
                throw SessionError(
                    "\(first) cannot be a variable name (letters, digits, _ - and ., not starting with a digit)")
            }
            return words.count == 1 ? .vars(first) : .setVar(name: first, value: words[1])
        case "asserts":
            try noArgs()
            return .asserts
        case "assert": return try assertCommand(rest)
        case "grader", "set-grader": return .grader(rest.isEmpty ? nil : rest)
        default: return nil
        }
    }

    /// `:assert …`: add one, remove one or all, or set the row threshold.
    static func assertCommand(_ rest: String) throws -> Command {
        if rest.isEmpty { return .asserts }
        let words = rest.split(separator: " ").map(String.init)
        switch words[0] {
        case "rm":
            guard words.count == 2 else { throw SessionError(":assert rm takes a number or all (e.g. :assert rm 2)") }
            if words[1] == "all" { return .removeAssertion(nil) }
            guard let n = Int(words[1]), n >= 1 else {
                throw SessionError(":assert rm takes a number from :asserts, or all (e.g. :assert rm 2)")
            }
            return .removeAssertion(n)
        case "threshold":
            guard words.count == 2 else {
                throw SessionError(":assert threshold takes a score from 0 to 1, or off (e.g. :assert threshold 0.75)")
            }
            if words[1] == "off" { return .assertThreshold(nil) }
            guard let t = Double(words[1]), (0...1).contains(t) else {
                throw SessionError(":assert threshold takes a score from 0 to 1, or off (e.g. :assert threshold 0.75)")
            }
            return .assertThreshold(t)
        default: return .addAssertion(try Assertion.parse(rest))
        }
    }

    static func appCommand(_ name: String, _ rest: String, noArgs: () throws -> Void) throws -> AppCommand? {
        switch name {
        case "set-editor":
            guard rest == "vi" || rest == "emacs" else { throw SessionError(":set-editor takes emacs or vi") }
            return .editor(rest)
        case "set-view":
            let words = rest.split(separator: " ")
            guard words.count == 2, words[0] == "reasoning" || words[0] == "markdown",
                words[1] == "on" || words[1] == "off"
            else {
                throw SessionError(":set-view takes reasoning on|off or markdown on|off")
            }
            return words[0] == "markdown" ? .viewMarkdown(words[1] == "on") : .view(reasoning: words[1] == "on")
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
        case "batch": return try batch(rest)
        case "batches":
            try noArgs()
            return .batches
        case "eval": return try evalCommand(rest)
        case "report": return try reportCommand(rest)
        case "edit", "copy":
            try noArgs()
            return name == "edit" ? .edit : .copy
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

    static func evalCommand(_ rest: String) throws -> AppCommand {
        var words = rest.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if words.first == "diff" {
            guard words.count == 3 else {
                throw SessionError(":eval diff takes OLD NEW (two results files), e.g. :eval diff old.jsonl new.jsonl")
            }
            return .evalDiff(old: words[1], new: words[2])
        }
        var report: String?
        if let i = words.firstIndex(where: { $0.hasPrefix("report=") }) {
            report = String(words.remove(at: i).dropFirst("report=".count))
            guard report?.isEmpty == false else { throw SessionError("report= needs a file name (report=out.html)") }
        }
        guard words.count == 1 else {
            throw SessionError(
                ":eval takes an eval file (:eval capitals.yaml [report=out.html]) or diff OLD NEW (:eval diff a.jsonl b.jsonl)"
            )
        }
        return .evalRun(path: words[0], report: report)
    }

    static func reportCommand(_ rest: String) throws -> AppCommand {
        var words = rest.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        var against: String?
        if let i = words.firstIndex(where: { $0.hasPrefix("against=") }) {
            against = String(words.remove(at: i).dropFirst("against=".count))
            guard against?.isEmpty == false else { throw SessionError("against= needs a results file") }
        }
        guard (1...2).contains(words.count) else {
            throw SessionError(":report takes OUT.html [RESULTS] [against=OLD], e.g. :report report.html")
        }
        return .report(path: words[0], results: words.count == 2 ? words[1] : nil, against: against)
    }

    static func batch(_ rest: String) throws -> AppCommand {
        let (words, axes, template) = try keysAndPrompt(rest, command: "batch")
        if let verb = words.first, verb == "resume" || verb == "cancel" {
            guard words.count == 2, axes.isEmpty, template == nil else {
                throw SessionError(":batch \(verb) takes one batch id (:batches lists them)")
            }
            return verb == "resume" ? .batchResume(words[1]) : .batchCancel(words[1])
        }
        let remote = words.count == 2 && words[1] == "remote"
        guard words.count == 1 || remote else {
            throw SessionError(
                ":batch takes one file: :batch rows.jsonl [remote] [concurrency=N] [out=PATH] [repeat=N] [key=v1,v2] [-- template]"
            )
        }
        var b = BatchCommand(path: words[0], template: template, remote: remote)
        for axis in axes {
            switch axis.key {
            case "concurrency":
                guard axis.values.count == 1, let n = Int(axis.values[0]), (1...64).contains(n) else {
                    throw SessionError("concurrency takes a number from 1 to 64")
                }
                b.concurrency = n
            case "poll":
                guard axis.values.count == 1, let s = Double(axis.values[0]), s >= 0.05, s <= 3600 else {
                    throw SessionError("poll takes the seconds between checks of a remote batch, from 0.05 to 3600")
                }
                b.poll = s
            case "out": b.out = axis.values.joined(separator: ",")
            case "repeat":
                guard axis.values.count == 1, let n = Int(axis.values[0]), (1...BatchCommand.maxRepeats).contains(n)
                else {
                    throw SessionError(
                        "repeat takes how many times each row is sent, from 1 to \(BatchCommand.maxRepeats)")
                }
                b.repeats = n
            default: b.axes.append(axis)
            }
        }
        if b.remote && b.concurrency != nil {
            throw SessionError("concurrency is for a batch sent from here; a remote batch runs at the provider's pace")
        }
        if !b.remote && b.poll != nil { throw SessionError("poll goes with remote: :batch FILE remote poll=30") }
        if b.remote && b.repeats > 1 {
            throw SessionError("repeat is for a batch sent from here; a remote batch sends each row once")
        }
        return .batch(b)
    }

    static func compare(_ rest: String) throws -> AppCommand {
        let (words, axes, prompt) = try keysAndPrompt(rest, command: "compare")
        if let word = words.first {
            throw SessionError(":compare takes key=v1,v2 pairs, e.g. :compare temperature=0,0.7 (got \(word))")
        }
        guard !axes.isEmpty else {
            throw SessionError(":compare needs at least one key=v1,v2, e.g. :compare temperature=0,0.7")
        }
        return .compare(axes: axes, prompt: prompt)
    }

    /// `words… key=v1,v2 … [-- text]`: the plain words, the keys with their values, the text.
    static func keysAndPrompt(_ rest: String, command: String) throws -> ([String], [CompareAxis], String?) {
        var spec = rest
        var prompt: String?
        if let r = rest.range(of: " -- ") ?? (rest.hasPrefix("-- ") ? rest.range(of: "-- ") : nil) {
            spec = String(rest[..<r.lowerBound])
            prompt = String(rest[r.upperBound...])
        }
        var words: [String] = []
        var axes: [CompareAxis] = []
        for word in spec.split(separator: " ") {
            guard let eq = word.firstIndex(of: "="), eq != word.startIndex else {
                words.append(String(word))
                continue
            }
            let values = word[word.index(after: eq)...].split(separator: ",", omittingEmptySubsequences: false).map(
                String.init)
            guard values.count >= 1, !values.contains("") else {
                throw SessionError(":\(command) \(word): give values separated by commas")
            }
            axes.append(CompareAxis(key: String(word[..<eq]), values: values))
        }
        return (words, axes, prompt.flatMap { $0.isEmpty ? nil : $0 })
    }
}
