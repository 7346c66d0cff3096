import Foundation
import QueryCore

/// The tool workbench's commands: `:tool`, `:tools`, `:choice`, `:mock`, `:schema`, and the
/// `max_tool_rounds` session setting.
extension Session {
    func applyTools(_ command: Command) throws -> String {
        switch command {
        case .loadTools(let path):
            let specs: [FunctionSpec]
            do {
                specs = try FunctionSpec.specs(contentsOf: Self.expand(path))
            } catch let e as FunctionSpecError {
                throw SessionError("tool file \(path): \(e.reasonText); the tools stay as they were")
            }
            var lines: [String] = []
            for spec in specs {
                if let i = toolbox.tools.firstIndex(where: { $0.name == spec.name }) {
                    toolbox.tools[i] = spec
                    lines.append("tool \(spec.name.oneLine) replaced (from \(path.oneLine))")
                } else {
                    toolbox.tools.append(spec)
                    lines.append("tool \(spec.name.oneLine) added (from \(path.oneLine))")
                }
            }
            if functionSpec != nil { lines.append("note: :func is loaded, so the tools are not sent until :func off") }
            return lines.joined(separator: "\n") + "\n" + toolbox.listing
        case .removeTool(let name):
            guard toolbox.tool(named: name) != nil else {
                throw SessionError("no tool \(name); :tools lists them")
            }
            toolbox.tools.removeAll { $0.name == name }
            var msg = "tool \(name) removed"
            if toolbox.choice == .named(name) {
                toolbox.choice = .auto
                msg += "; choice back to auto"
            }
            return msg
        case .toolsOff:
            let n = toolbox.tools.count
            toolbox.tools = []
            toolbox.choice = .auto
            return n == 0 ? "no tools were loaded" : "\(n) tool\(n == 1 ? "" : "s") dropped; choice back to auto"
        case .choice(let c):
            guard let c else { return "choice \(toolbox.choice)" }
            let choice = ToolChoice(c)
            if case .named(let n) = choice, toolbox.tool(named: n) == nil {
                let names = toolbox.tools.map(\.name)
                throw SessionError(
                    ":choice takes auto, none, required or a loaded tool's name"
                        + (names.isEmpty ? " (no tools loaded: :tool FILE)" : " (\(names.joined(separator: ", ")))"))
            }
            toolbox.choice = choice
            return "choice \(choice)"
                + (choice == .auto ? "" : " (the first request of each turn; results go back with auto)")
        default:
            return toolbox.listing + (functionSpec.map { "\n:func \($0.name) is loaded: it is sent instead" } ?? "")
        }
    }

    func applyMockOrSchema(_ command: Command) throws -> String {
        switch command {
        case .loadMock(let path):
            let value: JSONValue
            do {
                value = try FunctionSpec.document(contentsOf: Self.expand(path))
            } catch let e as FunctionSpecError {
                throw SessionError("mock \(path): \(e.reasonText)")
            }
            let mock = try ToolMock(value, source: path)
            toolbox.mock = mock
            mockUses = [:]
            let unknown = mock.names.filter { toolbox.tool(named: $0) == nil }
            return "mock loaded from \(path)"
                + (mock.names.isEmpty
                    ? " (a list: answers calls in order)" : " for \(mock.names.joined(separator: ", "))")
                + (unknown.isEmpty || toolbox.tools.isEmpty
                    ? "" : " — note: no tool \(unknown.joined(separator: ", ")) is loaded")
        case .mockOff:
            guard toolbox.mock != nil else { return "no mock was loaded" }
            toolbox.mock = nil
            return "mock dropped; results are asked for again"
        case .showMock:
            guard let m = toolbox.mock else { return "no mock loaded (:mock FILE loads one)" }
            return "mock from \(m.source)\n\(m.value.serialized(pretty: true))"
        case .loadSchema(let path):
            toolbox.schema = try Self.loadSchema(path)
            return "output schema \(toolbox.schema!.name) loaded from \(path); replies are JSON checked against it"
                + (provider == .anthropic ? " (sent as a forced tool: Anthropic has no response_format)" : "")
        case .schemaOff:
            guard toolbox.schema != nil else { return "no output schema was loaded" }
            toolbox.schema = nil
            return "output schema dropped; replies are text again"
        default:
            guard let s = toolbox.schema else { return "no output schema (:schema FILE loads one)" }
            return "output schema \(s.name)\n\(s.parameters.serialized(pretty: true))"
        }
    }

    /// A structured-output schema from a file: a JSON Schema (named after the file), `{name,
    /// schema}`, or OpenAI's `response_format` / `json_schema` object. Its root must be an object.
    static func loadSchema(_ path: String) throws -> FunctionSpec {
        do {
            var v = try FunctionSpec.document(contentsOf: expand(path))
            if let inner = v["json_schema"], inner.objectValue != nil { v = inner }
            let stem = URL(fileURLWithPath: path).deletingPathExtension().deletingPathExtension().lastPathComponent
            var name = String(stem.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" }.prefix(64))
            if name.isEmpty { name = "response" }
            guard let schema = v["schema"], v["type"] == nil else {
                return try FunctionSpec(name: name, parameters: v)
            }
            return try FunctionSpec(
                name: v["name"]?.stringValue ?? name, description: v["description"]?.stringValue ?? "",
                parameters: schema)
        } catch let e as FunctionSpecError {
            throw SessionError("schema \(path): \(e.reasonText.replacingOccurrences(of: "parameters", with: "schema"))")
        }
    }

    /// `:set max_tool_rounds N`: a session setting, never sent.
    func setMaxRounds(_ raw: String) throws -> String {
        guard let n = Int(raw.trimmingCharacters(in: .whitespaces)), n >= 1, n <= 1000 else {
            throw SessionError("max_tool_rounds takes a whole number from 1 to 1000, not \(raw)")
        }
        toolbox.maxRounds = n
        return "max_tool_rounds = \(n) (a session setting: how many times a turn sends tool results back; not sent)"
    }

    /// The system prompt with its variables filled in.
    /// - Throws: ``SessionError`` naming a variable that is not set.
    public func filledSystem() throws -> String? {
        guard let system else { return nil }
        do {
            return try Template.fill(system, vars)
        } catch let e as SessionError {
            throw SessionError("system prompt: \(e.message)")
        }
    }

    /// A prompt with its variables filled in.
    /// - Throws: ``SessionError`` naming a variable that is not set (nothing is sent).
    public func fill(_ prompt: String) throws -> String { try Template.fill(prompt, vars) }

    /// A typed prompt that could not be sent (a variable not set) still becomes the template
    /// `:batch` runs, whose rows set the variables.
    /// - Throws: ``SessionError`` naming the variable, and saying so.
    public func fillOrKeep(_ typed: String) throws -> String {
        do {
            return try fill(typed)
        } catch let e as SessionError {
            lastTemplate = typed
            throw SessionError("\(e.message) — not sent; it is the template :batch FILE runs")
        }
    }

    func applyVars(_ command: Command) throws -> String {
        switch command {
        case .setVar(let name, let raw):
            var value = raw
            if raw.hasPrefix("@@") {
                value = String(raw.dropFirst())
            } else if raw.hasPrefix("@") {
                value = try Self.readText(
                    String(raw.dropFirst()).trimmingCharacters(in: .whitespaces), what: "variable")
            }
            vars[name] = value
            return
                "\(name) = \(value.count > 60 ? String(value.prefix(60)) + "… (\(counted(value.count, "character")))" : value)"
        case .removeVar(let name):
            guard vars.removeValue(forKey: name) != nil else {
                throw SessionError("no variable \(name); :vars lists them")
            }
            return "\(name) removed"
        case .vars(let name?):
            guard let v = vars[name] else { throw SessionError("no variable \(name); :var \(name) VALUE sets it") }
            return "\(name) = \(v)"
        default:
            guard !vars.isEmpty else { return "no variables (:var NAME VALUE sets one; {{NAME}} uses it)" }
            let w = vars.keys.map(\.count).max() ?? 0
            return vars.keys.sorted().map { k in
                let v = vars[k]!.replacingOccurrences(of: "\n", with: "⏎").oneLine
                return
                    "  \(k.oneLine.padding(toLength: w, withPad: " ", startingAt: 0))  \(v.count > 70 ? String(v.prefix(70)) + "…" : v)"
            }.joined(separator: "\n")
        }
    }
}
