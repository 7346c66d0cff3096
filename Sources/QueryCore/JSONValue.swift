import Foundation

/// Any JSON value, with integers kept exact and object key order preserved.
///
/// promptline reads and writes JSON with its own parser and serializer (``JSONValue/parse(_:)``,
/// ``JSONValue/serialized(pretty:)``): Foundation's coders lose key order and turn large integers
/// into doubles, and a request body or a function's arguments should come back exactly as sent.
public enum JSONValue: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    /// An integer that fits in 64 bits, kept exact.
    case integer(Int64)
    /// Any other number.
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object that remembers the order its keys were inserted in.
///
/// Stored as an array of pairs, searched linearly: the objects the core decodes per stream chunk
/// have a handful of keys, where a scan beats hashing and saves a dictionary allocation per
/// object (the profile of the streaming path showed those allocations first). Large objects get
/// a key index, built on demand.
public struct JSONObject: Sendable, Equatable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    private var pairs: [(key: String, value: JSONValue)] = []
    private var index: [String: Int]?
    private static let indexThreshold = 16

    public init() {}

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        for (k, v) in elements { self[k] = v }
    }

    public init<S: Sequence>(_ pairs: S) where S.Element == (String, JSONValue) {
        for (k, v) in pairs { self[k] = v }
    }

    public var keys: [String] { pairs.map(\.key) }
    public var count: Int { pairs.count }
    public var isEmpty: Bool { pairs.isEmpty }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        for i in pairs.indices where pairs[i].key == key { return i }
        return nil
    }

    private mutating func rebuildIndex() {
        if pairs.count > Self.indexThreshold {
            var d = [String: Int](minimumCapacity: pairs.count)
            for (i, p) in pairs.enumerated() { d[p.key] = i }
            index = d
        } else {
            index = nil
        }
    }

    /// Reading gives the value or nil; writing nil removes the key; writing a new key appends it.
    public subscript(key: String) -> JSONValue? {
        get { position(of: key).map { pairs[$0].value } }
        set {
            if let i = position(of: key) {
                if let newValue {
                    pairs[i].value = newValue
                } else {
                    pairs.remove(at: i)
                    rebuildIndex()
                }
            } else if let newValue {
                pairs.append((key, newValue))
                if index != nil {
                    index![key] = pairs.count - 1
                } else if pairs.count > Self.indexThreshold {
                    rebuildIndex()
                }
            }
        }
    }

    /// Appends a pair whose key the caller knows is new (the parser checks duplicates itself).
    mutating func appendParsed(_ key: String, _ value: JSONValue) {
        if pairs.count < 8, index == nil {
            // RFC 8259 leaves duplicate keys open; like most parsers, the last one wins.
            for i in pairs.indices where pairs[i].key == key {
                pairs[i].value = value
                return
            }
            pairs.append((key, value))
        } else {
            self[key] = value
        }
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        pairs.makeIterator()
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.pairs.count == b.pairs.count else { return false }
        // One storage, one value: a request rebuilt from the session's history shares each
        // message's storage with the previous request's, so a conversation compares in O(n) loads.
        let shared = a.pairs.withUnsafeBufferPointer { pa in
            b.pairs.withUnsafeBufferPointer { pa.baseAddress == $0.baseAddress }
        }
        if shared { return true }
        // Objects built the same way have their keys in the same order: compared pair by pair
        // without a lookup (a transcript compares a whole conversation's messages per turn).
        var i = 0
        while i < a.pairs.count && a.pairs[i].key == b.pairs[i].key && a.pairs[i].value == b.pairs[i].value { i += 1 }
        if i == a.pairs.count { return true }
        // Key order does not change what an object means.
        for p in a.pairs[i...] where b[p.key] != p.value { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, to agree with ==.
        var combined = 0
        for p in pairs {
            var h = Hasher()
            h.combine(p.key)
            h.combine(p.value)
            combined ^= h.finalize()
        }
        hasher.combine(pairs.count)
        hasher.combine(combined)
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }

    /// An integer, also from a double with no fractional part (servers write `5.0` sometimes).
    public var intValue: Int? {
        switch self {
        case .integer(let i): return Int(exactly: i)
        case .double(let d): return Int(exactly: d)
        default: return nil
        }
    }

    /// A whole number that fits in Int64 (an integral double included); nil otherwise — never a
    /// trap, whatever the server sent (`1e300`, `1.5`, `-0.0`…). The one reader of integer fields.
    public var int64Value: Int64? {
        switch self {
        case .integer(let i): return i
        case .double(let d): return Int64(exactly: d)
        default: return nil
        }
    }

    /// A token count: a whole number from 0 to Int.max; nil for anything else (negative, fractional,
    /// too large, not a number). Counts from a server are never trusted to be sane.
    public var countValue: Int? {
        guard let i = intValue, i >= 0 else { return nil }
        return i
    }

    public var doubleValue: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// `value["key"]` on an object; nil for anything else.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// The value with `text` replaced in every string and key, however deep.
    public func replacingText(_ text: String, with replacement: String) -> JSONValue {
        switch self {
        case .string(let s):
            return s.contains(text) ? .string(s.replacingOccurrences(of: text, with: replacement)) : self
        case .array(let a): return .array(a.map { $0.replacingText(text, with: replacement) })
        case .object(let o):
            return .object(
                JSONObject(
                    o.map {
                        (
                            $0.key.replacingOccurrences(of: text, with: replacement),
                            $0.value.replacingText(text, with: replacement)
                        )
                    }))
        default: return self
        }
    }

    /// The same value with `f` applied to every string in it, keys included.
    public func mapStrings(_ f: (String) -> String) -> JSONValue {
        switch self {
        case .string(let s): return .string(f(s))
        case .array(let a): return .array(a.map { $0.mapStrings(f) })
        case .object(let o): return .object(JSONObject(o.map { (f($0.key), $0.value.mapStrings(f)) }))
        default: return self
        }
    }

    /// A short name of the JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .integer: return "integer"
        case .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}
