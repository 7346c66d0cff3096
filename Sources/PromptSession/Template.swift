import Foundation

/// Prompt templates: `{{name}}` is replaced by the variable's value; `{{{{` stands for a
/// literal `{{`. A placeholder whose variable is not set is an error naming it, before anything
/// is sent.
public enum Template {
    /// Whether `text` has placeholders (or escapes) to fill.
    public static func isTemplate(_ text: String) -> Bool { text.contains("{{") }

    /// `text` with every `{{name}}` replaced by `vars[name]`.
    /// - Throws: ``SessionError`` naming the first variable that is not set, or an unclosed `{{`.
    public static func fill(_ text: String, _ vars: [String: String]) throws -> String {
        guard isTemplate(text) else { return text }
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            let after = rest[open.upperBound...]
            if after.hasPrefix("{{") {
                out += "{{"
                rest = after.dropFirst(2)
                continue
            }
            guard let close = after.range(of: "}}") else {
                throw SessionError("a {{ is not closed (write {{{{ for a literal {{)")
            }
            let name = after[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            guard let value = vars[name] else {
                throw SessionError("{{\(name)}} is not set (:var \(name) VALUE sets it; {{{{ writes a literal {{)")
            }
            out += value
            rest = after[close.upperBound...]
        }
        return out + rest
    }

    /// The variable names `text` uses, in order of first use.
    public static func names(in text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            let after = rest[open.upperBound...]
            if after.hasPrefix("{{") {
                rest = after.dropFirst(2)
                continue
            }
            guard let close = after.range(of: "}}") else { break }
            let name = after[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            if !names.contains(name) { names.append(name) }
            rest = after[close.upperBound...]
        }
        return names
    }

    /// Whether `name` can be a variable: letters, digits, `_`, `-` and `.`, not starting with a digit.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, first.isLetter || first == "_" else { return false }
        return name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }
    }
}
