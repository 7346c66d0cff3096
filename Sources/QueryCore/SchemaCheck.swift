/// One way a value breaks its JSON Schema, with the JSON path where it happens (`$.items[2].name`).
public struct SchemaViolation: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }

    public init(path: String, message: String) { (self.path, self.message) = (path, message) }
}

/// Checks function-call arguments against the FunctionSpec's schema — the keywords models get
/// wrong: type, properties, required, enum, const, items, minimum/maximum (and exclusive ones),
/// minLength/maxLength, minItems/maxItems, additionalProperties. Other keywords are not checked.
public enum SchemaCheck {
    public static func violations(of value: JSONValue, against schema: JSONValue) -> [SchemaViolation] {
        var out: [SchemaViolation] = []
        check(value, schema, path: "$", into: &out)
        return out
    }

    /// Appends to `out` every way `v` breaks `schema`, `path` being where `v` sits.
    static func check(_ v: JSONValue, _ schema: JSONValue, path: String, into out: inout [SchemaViolation]) {
        if schema == .bool(false) {
            out.append(SchemaViolation(path: path, message: "no value is allowed here"))
            return
        }
        guard case .object(let s) = schema else { return }
        guard checkType(v, s, path: path, into: &out) else { return }
        checkEnumAndConst(v, s, path: path, into: &out)
        if let d = v.doubleValue, v.boolValue == nil { checkBounds(d, of: v, s, path: path, into: &out) }
        if case .string(let str) = v { checkLength(str, s, path: path, into: &out) }
        if case .array(let a) = v { checkArray(a, s, path: path, into: &out) }
        if case .object(let o) = v { checkObject(o, s, path: path, into: &out) }
    }

    /// The `type` keyword (a name or a list of names): records a violation and returns false
    /// when `v` is none of them, in which case no other keyword is checked.
    static func checkType(_ v: JSONValue, _ s: JSONObject, path: String, into out: inout [SchemaViolation]) -> Bool {
        guard let t = s["type"] else { return true }
        let allowed = t.arrayValue?.compactMap(\.stringValue) ?? t.stringValue.map { [$0] } ?? []
        if !allowed.isEmpty && !allowed.contains(where: { matches(v, type: $0) }) {
            out.append(
                SchemaViolation(
                    path: path, message: "expected \(allowed.joined(separator: " or ")), got \(v.typeName) \(short(v))")
            )
            return false
        }
        return true
    }

    /// The `enum` and `const` keywords: `v` must equal one of the listed values, or the constant.
    static func checkEnumAndConst(_ v: JSONValue, _ s: JSONObject, path: String, into out: inout [SchemaViolation]) {
        if let e = s["enum"]?.arrayValue, !e.contains(where: { equal($0, v) }) {
            out.append(
                SchemaViolation(
                    path: path, message: "\(short(v)) is not one of \(e.map(short).joined(separator: ", "))"))
        }
        if let c = s["const"], !equal(c, v) {
            out.append(SchemaViolation(path: path, message: "must be \(short(c)), got \(short(v))"))
        }
    }

    /// The numeric bounds of a number `v` (its value `d`): minimum, maximum and the exclusive ones.
    static func checkBounds(
        _ d: Double, of v: JSONValue, _ s: JSONObject, path: String, into out: inout [SchemaViolation]
    ) {
        if let m = s["minimum"]?.doubleValue, d < m {
            out.append(SchemaViolation(path: path, message: "\(short(v)) is below the minimum \(short(s["minimum"]!))"))
        }
        if let m = s["maximum"]?.doubleValue, d > m {
            out.append(SchemaViolation(path: path, message: "\(short(v)) is above the maximum \(short(s["maximum"]!))"))
        }
        if let m = s["exclusiveMinimum"]?.doubleValue, d <= m {
            out.append(
                SchemaViolation(path: path, message: "\(short(v)) must be above \(short(s["exclusiveMinimum"]!))"))
        }
        if let m = s["exclusiveMaximum"]?.doubleValue, d >= m {
            out.append(
                SchemaViolation(path: path, message: "\(short(v)) must be below \(short(s["exclusiveMaximum"]!))"))
        }
    }

    /// A string's `minLength` and `maxLength`, counted in characters.
    static func checkLength(_ str: String, _ s: JSONObject, path: String, into out: inout [SchemaViolation]) {
        let n = str.count
        if let m = s["minLength"]?.intValue, n < m {
            out.append(SchemaViolation(path: path, message: "\(counted(n, "character")), fewer than minLength \(m)"))
        }
        if let m = s["maxLength"]?.intValue, n > m {
            out.append(SchemaViolation(path: path, message: "\(counted(n, "character")), more than maxLength \(m)"))
        }
    }

    /// An array's `minItems` and `maxItems`, then each element against `items`.
    static func checkArray(_ a: [JSONValue], _ s: JSONObject, path: String, into out: inout [SchemaViolation]) {
        if let m = s["minItems"]?.intValue, a.count < m {
            out.append(SchemaViolation(path: path, message: "\(counted(a.count, "item")), fewer than minItems \(m)"))
        }
        if let m = s["maxItems"]?.intValue, a.count > m {
            out.append(SchemaViolation(path: path, message: "\(counted(a.count, "item")), more than maxItems \(m)"))
        }
        if let items = s["items"] {
            for (i, e) in a.enumerated() { check(e, items, path: "\(path)[\(i)]", into: &out) }
        }
    }

    /// An object's `required` properties, then each property against its schema in `properties`,
    /// or else against `additionalProperties` (`false`: not allowed at all).
    static func checkObject(_ o: JSONObject, _ s: JSONObject, path: String, into out: inout [SchemaViolation]) {
        let props = s["properties"]?.objectValue ?? JSONObject()
        for r in s["required"]?.arrayValue ?? [] {
            if let k = r.stringValue, o[k] == nil {
                out.append(SchemaViolation(path: path, message: "required property \"\(k)\" is missing"))
            }
        }
        for (k, pv) in o {
            let childPath = isIdentifier(k) ? "\(path).\(k)" : "\(path)[\(JSONValue.string(k).serialized())]"
            if let ps = props[k] {
                check(pv, ps, path: childPath, into: &out)
            } else if let extra = s["additionalProperties"] {
                if extra == .bool(false) {
                    out.append(
                        SchemaViolation(
                            path: childPath, message: "property \"\(k)\" is not allowed (additionalProperties is false)"
                        ))
                } else {
                    check(pv, extra, path: childPath, into: &out)
                }
            }
        }
    }

    static func matches(_ v: JSONValue, type: String) -> Bool {
        switch (type, v) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object):
            return true
        case ("integer", .integer): return true
        case ("integer", .double(let d)): return d == d.rounded() && d.isFinite
        case ("number", .integer), ("number", .double): return true
        default: return false
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue, a.boolValue == nil, b.boolValue == nil { return x == y }
        return a == b
    }

    static func isIdentifier(_ k: String) -> Bool {
        !k.isEmpty
            && k.unicodeScalars.allSatisfy {
                ($0.properties.isAlphabetic && $0.isASCII) || $0 == "_" || ("0"..."9").contains($0)
            }
    }

    static func short(_ v: JSONValue) -> String {
        let s = v.serialized()
        return s.count > 40 ? String(s.prefix(40)) + "…" : s
    }
}
