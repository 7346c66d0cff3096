import CYaml
import Foundation
package import Yams

/// A function the model is forced to call, described by a JSON Schema for its arguments.
///
/// Validated on creation, so a backend never sends a spec the API would reject:
/// the name matches `^[a-zA-Z0-9_-]{1,64}$`, `parameters` is an object schema, its `properties`
/// is an object of schemas and its `required` names only properties that exist.
public struct FunctionSpec: Sendable, Equatable {
    public let name: String
    public let description: String
    /// The JSON Schema of the arguments (`"type": "object"`).
    public let parameters: JSONValue

    /// - Throws: ``FunctionSpecError`` naming the field at fault.
    public init(name: String, description: String = "", parameters: JSONValue) throws {
        try FunctionSpec.validate(name: name, parameters: parameters)
        self.name = name
        self.description = description
        self.parameters = parameters
    }

    static func validate(name: String, parameters: JSONValue) throws {
        let validName =
            !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
                    || b == 0x2D
            }
        guard validName else {
            throw FunctionSpecError.invalid(
                field: "name", reason: "\"\(name)\" must be 1-64 characters of a-z, A-Z, 0-9, _ or -")
        }
        guard case .object(let schema) = parameters else {
            throw FunctionSpecError.invalid(
                field: "parameters", reason: "must be a JSON Schema object, got \(parameters.typeName)")
        }
        guard schema["type"] == .string("object") else {
            let got = schema["type"].map { $0.serialized() } ?? "nothing"
            throw FunctionSpecError.invalid(field: "parameters.type", reason: "must be \"object\", got \(got)")
        }
        var propertyNames: Set<String> = []
        if let props = schema["properties"] {
            guard case .object(let p) = props else {
                throw FunctionSpecError.invalid(
                    field: "parameters.properties", reason: "must be an object, got \(props.typeName)")
            }
            for (key, sub) in p {
                switch sub {
                case .object, .bool: break
                default:
                    throw FunctionSpecError.invalid(
                        field: "parameters.properties.\(key)", reason: "must be a schema object, got \(sub.typeName)")
                }
                propertyNames.insert(key)
            }
        }
        if let req = schema["required"] {
            guard case .array(let names) = req else {
                throw FunctionSpecError.invalid(
                    field: "parameters.required", reason: "must be an array of names, got \(req.typeName)")
            }
            for (k, n) in names.enumerated() {
                guard case .string(let s) = n else {
                    throw FunctionSpecError.invalid(
                        field: "parameters.required[\(k)]", reason: "must be a string, got \(n.typeName)")
                }
                guard propertyNames.contains(s) else {
                    throw FunctionSpecError.invalid(
                        field: "parameters.required[\(k)]", reason: "names \"\(s)\", which is not in properties")
                }
            }
        }
    }

    /// Builds a spec from any of the shapes users paste:
    /// AIDE's `{name, description, json_schema}`, plain `{name, description, parameters}`,
    /// an OpenAI tool `{"type": "function", "function": {…}}`, an Anthropic tool
    /// `{name, description, input_schema}`.
    /// - Throws: ``FunctionSpecError``.
    public init(json value: JSONValue) throws {
        guard case .object(var obj) = value else {
            throw FunctionSpecError.invalid(field: "(top level)", reason: "must be an object, got \(value.typeName)")
        }
        if obj["type"] == .string("function"), let inner = obj["function"] {
            guard case .object(let f) = inner else {
                throw FunctionSpecError.invalid(field: "function", reason: "must be an object, got \(inner.typeName)")
            }
            obj = f
        }
        guard let nameValue = obj["name"] else {
            throw FunctionSpecError.invalid(field: "name", reason: "is missing")
        }
        guard case .string(let name) = nameValue else {
            throw FunctionSpecError.invalid(field: "name", reason: "must be a string, got \(nameValue.typeName)")
        }
        var description = ""
        if let d = obj["description"], d != .null {
            guard case .string(let s) = d else {
                throw FunctionSpecError.invalid(field: "description", reason: "must be a string, got \(d.typeName)")
            }
            description = s
        }
        let schemaKeys = ["parameters", "json_schema", "input_schema"]
        let present = schemaKeys.filter { obj[$0] != nil }
        guard let key = present.first else {
            throw FunctionSpecError.invalid(
                field: "parameters", reason: "is missing (expected one of parameters, json_schema, input_schema)")
        }
        if present.count > 1 {
            throw FunctionSpecError.invalid(field: present[1], reason: "conflicts with \(key); give the schema once")
        }
        do {
            try self.init(name: name, description: description, parameters: obj[key]!)
        } catch FunctionSpecError.invalid(let field, let reason) where key != "parameters" {
            throw FunctionSpecError.invalid(
                field: field.replacingOccurrences(of: "parameters", with: key), reason: reason)
        }
    }

    /// Parses JSON, or YAML when the text is not JSON (YAML is a superset, but JSON's errors are clearer).
    /// - Parameter yaml: force YAML (a `.yaml` / `.yml` file).
    public init(text: String, yaml: Bool = false) throws {
        try self.init(json: try Self.document(text: text, yaml: yaml))
    }

    /// Loads a spec from a `.json`, `.yaml` or `.yml` file (other names: JSON first, then YAML).
    /// - Throws: ``FunctionSpecError`` with the file named.
    public init(contentsOf path: String) throws {
        let value = try Self.document(contentsOf: path)
        do {
            try self.init(json: value)
        } catch let e as FunctionSpecError {
            throw FunctionSpecError.file(path: path, reason: e.reasonText)
        }
    }

    /// The specs in a file: one spec, a list of them, or an object whose `tools` is a list (as an
    /// API request has), each in any shape ``init(json:)`` reads. Names must be unique.
    /// - Throws: ``FunctionSpecError`` with the file named and the item at fault.
    public static func specs(contentsOf path: String) throws -> [FunctionSpec] {
        let value = try document(contentsOf: path)
        let items = value.arrayValue ?? value["tools"]?.arrayValue ?? [value]
        guard !items.isEmpty else { throw FunctionSpecError.file(path: path, reason: "holds an empty list") }
        var specs: [FunctionSpec] = []
        for (i, item) in items.enumerated() {
            let at = items.count > 1 || value.arrayValue != nil ? "[\(i)] " : ""
            do {
                specs.append(try FunctionSpec(json: item))
            } catch let e as FunctionSpecError {
                throw FunctionSpecError.file(path: path, reason: at + e.reasonText)
            }
            if specs.dropLast().contains(where: { $0.name == specs[i].name }) {
                throw FunctionSpecError.file(path: path, reason: "\(at)names \(specs[i].name) a second time")
            }
        }
        return specs
    }

    /// A file's JSON (JSON or YAML, as ``init(contentsOf:)`` reads it).
    /// - Throws: ``FunctionSpecError/file(path:reason:)``.
    public static func document(contentsOf path: String) throws -> JSONValue {
        let text: String
        do {
            text = try FileReader.text(path)
        } catch {
            let reason = error.notText ? "is not UTF-8 text" : "cannot be read (\(error))"
            throw FunctionSpecError.file(path: path, reason: reason)
        }
        let lower = path.lowercased()
        let isYAML = lower.hasSuffix(".yaml") || lower.hasSuffix(".yml")
        do {
            if isYAML || lower.hasSuffix(".json") { return try document(text: text, yaml: isYAML) }
            return try (try? JSONValue.parse(text)) ?? document(text: text, yaml: true)
        } catch let e as FunctionSpecError {
            throw FunctionSpecError.file(path: path, reason: e.reasonText)
        }
    }

    static func document(text: String, yaml: Bool) throws -> JSONValue {
        guard !yaml else { return try YAMLToJSON.convert(text) }
        do {
            return try JSONValue.parse(text)
        } catch let e as JSONParseError {
            throw FunctionSpecError.unreadable("not valid JSON: \(e)")
        }
    }

    /// OpenAI's tool form: `{"type":"function","function":{name, description, parameters}}`.
    public var openAITool: JSONValue {
        var f: JSONObject = ["name": .string(name)]
        if !description.isEmpty { f["description"] = .string(description) }
        f["parameters"] = parameters
        return ["type": "function", "function": .object(f)]
    }

    /// Anthropic's tool form: `{name, description, input_schema}`.
    public var anthropicTool: JSONValue {
        var f: JSONObject = ["name": .string(name)]
        if !description.isEmpty { f["description"] = .string(description) }
        f["input_schema"] = parameters
        return .object(f)
    }

    /// OpenAI's structured-output form of the spec:
    /// `{"type":"json_schema","json_schema":{name, description, schema, strict}}`. `strict` is sent
    /// only when the schema meets strict mode's rules (every object closed, every property
    /// required); otherwise OpenAI would refuse the request.
    public var responseFormat: JSONValue {
        var f: JSONObject = ["name": .string(name)]
        if !description.isEmpty { f["description"] = .string(description) }
        f["schema"] = parameters
        if Self.isStrictCompatible(parameters) { f["strict"] = true }
        return ["type": "json_schema", "json_schema": .object(f)]
    }

    /// Whether OpenAI's strict mode accepts `schema`: each object schema has
    /// `additionalProperties: false` and lists every property in `required`, recursively.
    static func isStrictCompatible(_ schema: JSONValue) -> Bool {
        guard case .object(let o) = schema else { return true }
        if let props = o["properties"]?.objectValue {
            guard o["additionalProperties"] == .bool(false) else { return false }
            let required = Set((o["required"]?.arrayValue ?? []).compactMap(\.stringValue))
            guard Set(props.keys) == required else { return false }
            guard props.allSatisfy({ isStrictCompatible($0.value) }) else { return false }
        } else if o["type"] == .string("object") {
            guard o["additionalProperties"] == .bool(false) else { return false }
        }
        if let items = o["items"], !isStrictCompatible(items) { return false }
        for k in ["anyOf", "allOf", "oneOf"] {
            if let alts = o[k]?.arrayValue, !alts.allSatisfy(isStrictCompatible) { return false }
        }
        return true
    }

    /// The spec as the plain `{name, description, parameters}` JSON that ``init(json:)`` reads back.
    public var json: JSONValue {
        ["name": .string(name), "description": .string(description), "parameters": parameters]
    }
}

/// Why a FunctionSpec was refused.
public enum FunctionSpecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A field is missing or wrong; `field` is a dotted path such as `parameters.required[0]`.
    case invalid(field: String, reason: String)
    /// The text is neither JSON nor YAML.
    case unreadable(String)
    /// A file could not be used; `reason` says why.
    case file(path: String, reason: String)

    /// The reason without the "function spec" prefix.
    public var reasonText: String {
        switch self {
        case .invalid(let field, let reason): return "\(field) \(reason)"
        case .unreadable(let r): return r
        case .file(_, let r): return r
        }
    }

    public var description: String {
        switch self {
        case .invalid(let field, let reason): return "function spec: \(field) \(reason)"
        case .unreadable(let r): return "function spec: \(r)"
        case .file(let path, let r): return "function spec \(path): \(r)"
        }
    }
}

extension FunctionSpecError: LocalizedError {
    public var errorDescription: String? { description }
}

/// YAML as JSON: mapping order kept, scalars typed the YAML way (ints, floats, booleans, null;
/// quoted scalars stay strings). Shared by the FunctionSpec loader and promptline's config file:
/// `package`, so that Yams stays out of QueryCore's public API.
package enum YAMLToJSON {
    /// Why a YAML node has no JSON form.
    package struct ConversionError: Error, CustomStringConvertible {
        package var description: String
    }

    /// `text` composed into a node, aliases refused first: the parser's events are read once,
    /// without building anything, and a `*name` anywhere refuses the file — so an alias bomb (a
    /// few hundred bytes that expand to gigabytes) is refused before anything expands.
    /// - Throws: ``ConversionError`` naming the alias's line; Yams' `YamlError` for bad YAML.
    package static func compose(_ text: String) throws -> Node? {
        if let line = firstAliasLine(text) {
            throw ConversionError(
                description:
                    "line \(line): YAML aliases (*name) are not supported — write the value out in full")
        }
        return try Yams.compose(yaml: text)
    }

    /// The 1-based line of the first alias event in `text`, if any. A syntax error ends the
    /// scan (the composer then reports it).
    static func firstAliasLine(_ text: String) -> Int? {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        return bytes.withUnsafeMutableBufferPointer { buf -> Int? in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                let type = event.type
                let line = Int(event.start_mark.line) + 1
                yaml_event_delete(&event)
                if type == YAML_ALIAS_EVENT { return line }
                if type == YAML_STREAM_END_EVENT { return nil }
            }
        }
    }

    static func convert(_ text: String) throws -> JSONValue {
        let node: Node?
        do {
            node = try compose(text)
        } catch let e as ConversionError {
            throw FunctionSpecError.unreadable(e.description)
        } catch let e as YamlError {
            throw FunctionSpecError.unreadable("not valid YAML: \(describe(e))")
        } catch {
            throw FunctionSpecError.unreadable("not valid YAML: \(error)")
        }
        guard let node else { throw FunctionSpecError.unreadable("the file is empty") }
        do {
            return try value(node)
        } catch let e as ConversionError {
            throw FunctionSpecError.unreadable(e.description)
        }
    }

    static func describe(_ e: YamlError) -> String {
        let s = "\(e)".split(separator: "\n").map { String($0) }
        return s.first ?? "\(e)"
    }

    /// - Throws: ``ConversionError`` for aliases, non-scalar keys, or nesting past 256 levels.
    package static func value(_ node: Node, depth: Int = 0) throws -> JSONValue {
        if depth > 256 { throw ConversionError(description: "YAML nested too deeply") }
        switch node {
        case .scalar(let s):
            if s.style != .plain { return .string(s.string) }
            if let tag = s.tag.description as String?, tag.hasSuffix(":str") { return .string(s.string) }
            let t = s.string
            if ["null", "Null", "NULL", "~", ""].contains(t) { return .null }
            if ["true", "True", "TRUE"].contains(t) { return .bool(true) }
            if ["false", "False", "FALSE"].contains(t) { return .bool(false) }
            if let i = Int64(t) { return .integer(i) }
            if t.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true, let d = Double(t),
                d.isFinite
            {
                return .double(d)
            }
            return .string(t)
        case .sequence(let seq):
            return .array(try seq.map { try value($0, depth: depth + 1) })
        case .mapping(let map):
            var o = JSONObject()
            for (k, v) in map {
                guard case .scalar(let ks) = k else {
                    throw ConversionError(description: "YAML mapping keys must be plain strings")
                }
                o[ks.string] = try value(v, depth: depth + 1)
            }
            return .object(o)
        case .alias:
            throw ConversionError(description: "YAML aliases are not supported")
        }
    }
}
