import PromptSession
import Terminal

/// `:help` on a terminal, laid out to its width: each command's forms on lines of their own (in
/// bold), its description under them with a hanging indent, then its example; `:help CMD` adds
/// the command's arguments. Piped, `:help` prints ``Session/helpText(_:)`` as it is.
enum HelpView {
    enum Style { case form, text, example }

    /// The lines of `:help` (no name) or `:help name`, none wider than `width`; nil for a name
    /// that is no command.
    static func lines(_ name: String?, width: Int) -> [(text: String, style: Style)]? {
        guard let name else {
            var out = CommandParser.help.flatMap { entry($0, width: width) }
            out.append(("", .text))
            for note in Session.helpNotes { out += Layout.wrap(note, width: width, hanging: 2).map { ($0, .text) } }
            return out
        }
        let entries = CommandParser.help.filter { $0.name == name || (name == "exit" && $0.name == "quit") }
        guard let first = entries.first else { return nil }
        var out = entries.flatMap { entry($0, width: width) }
        let args = CommandParser.arguments(of: first.name)
        if !args.isEmpty {
            out.append(("arguments:", .text))
            let table = TextTable(header: ["", ""], rows: args.map { [$0.form, $0.about] }, wrappable: [1], indent: 4)
            out += table.render(width: width).map { ($0, .text) }
        }
        return out
    }

    /// One form of a command: its usage (broken between bracketed groups when too wide), what it
    /// does, and its example.
    static func entry(_ e: CommandHelp, width: Int) -> [(text: String, style: Style)] {
        // Spaces inside [ ] and ( ) are no places to break: held as no-break spaces while folding.
        var depth = 0
        let held = String(
            e.usage.map { ch -> Character in
                if ch == "[" || ch == "(" { depth += 1 }
                if ch == "]" || ch == ")" { depth -= 1 }
                return ch == " " && depth > 0 ? "\u{A0}" : ch
            })
        let usage = Layout.fold(held, width: width, hanging: 6).map {
            String($0.map { $0 == "\u{A0}" ? " " : $0 })
        }
        return usage.map { ($0, .form) }
            + Layout.wrap("    " + e.summary, width: width).map { ($0, .text) }
            + Layout.wrap("    e.g. " + e.example, width: width, hanging: 5).map { ($0, .example) }
    }
}
