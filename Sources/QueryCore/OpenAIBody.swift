/// One OpenAI Chat Completions body: a whole `chat.completion` or one `chat.completion.chunk`.
/// The two share every field but the choice's payload (`message` or `delta`), so one decoder
/// reads both, for the whole-body and the streamed path alike.
///
/// It walks the bytes and builds a tree only for the values kept as JSON (usage, error, tool
/// calls): on a stream of small deltas the tree was most of the decoding cost. What it reads is
/// what a tree would give: the last of duplicate keys wins, a field of the wrong type is absent.
struct OpenAIBody: Equatable {
    var id: String?
    var model: String?
    var created: Int64?
    var systemFingerprint: String?
    var usage: JSONValue?
    var error: JSONValue?
    /// nil when the body has no `choices` array; elements that are not objects are left out.
    var choices: [Choice]?

    struct Choice: Equatable {
        var index = 0
        var finishReason: String?
        var content: String?
        /// `reasoning_content` (llama.cpp, vLLM, DeepSeek) or `reasoning` (OpenRouter).
        var reasoning: String?
        var toolCalls: [JSONValue]?
    }

    /// Which member of a choice carries its content.
    enum Payload {
        case message, delta

        var key: StaticString { self == .message ? "message" : "delta" }
    }

    /// - Parameters:
    ///   - payload: `.message` for a whole body, `.delta` for a stream chunk.
    ///   - wantInfo: false skips id / model / created / fingerprint (a stream knows them already).
    /// - Throws: ``JSONParseError`` when the bytes are not JSON or not an object.
    static func decode(_ bytes: [UInt8], payload: Payload, wantInfo: Bool = true) throws -> OpenAIBody {
        try bytes.withUnsafeBufferPointer { buf in
            var p = JSONParser(buf: buf)
            var b = OpenAIBody()
            try p.forEachMember(depth: 1) { p, key in
                if wantInfo && key.is("id") {
                    b.id = try p.parseValue(depth: 1).stringValue
                } else if wantInfo && key.is("model") {
                    b.model = try p.parseValue(depth: 1).stringValue
                } else if wantInfo && key.is("system_fingerprint") {
                    b.systemFingerprint = try p.parseValue(depth: 1).stringValue
                } else if wantInfo && key.is("created") {
                    b.created = try p.parseValue(depth: 1).int64Value
                } else if key.is("usage") {
                    b.usage = try p.parseValue(depth: 1)
                } else if key.is("error") {
                    b.error = try p.parseValue(depth: 1)
                } else if key.is("choices") {
                    b.choices = try decodeChoices(&p, payload: payload)
                } else {
                    try p.skipValue(depth: 1)
                }
            }
            try p.finish()
            return b
        }
    }

    private static func decodeChoices(_ p: inout JSONParser, payload: Payload) throws -> [Choice]? {
        guard p.at(UInt8(ascii: "[")) else {
            try p.skipValue(depth: 1)
            return nil
        }
        var choices: [Choice] = []
        try p.forEachElement { p in
            guard p.at(UInt8(ascii: "{")) else { return try p.skipValue(depth: 2) }
            var c = Choice()
            try p.forEachMember(depth: 2) { p, key in
                if key.is("index") {
                    c.index = try p.parseValue(depth: 2).intValue ?? 0
                } else if key.is("finish_reason") {
                    c.finishReason = try p.parseValue(depth: 2).stringValue
                } else if key.is(payload.key) {
                    (c.content, c.reasoning, c.toolCalls) = try decodePayload(&p)
                } else {
                    try p.skipValue(depth: 2)
                }
            }
            choices.append(c)
        }
        return choices
    }

    private static func decodePayload(_ p: inout JSONParser) throws -> (String?, String?, [JSONValue]?) {
        guard p.at(UInt8(ascii: "{")) else {
            try p.skipValue(depth: 2)
            return (nil, nil, nil)
        }
        var content: String?
        var reasoning: String?
        var tools: [JSONValue]?
        try p.forEachMember(depth: 3) { p, key in
            if key.is("content") {
                content = try p.parseValue(depth: 3).stringValue
            } else if key.is("reasoning_content") || key.is("reasoning") {
                reasoning = try p.parseValue(depth: 3).stringValue ?? reasoning
            } else if key.is("tool_calls") {
                tools = try p.parseValue(depth: 3).arrayValue
            } else {
                try p.skipValue(depth: 3)
            }
        }
        return (content, reasoning, tools)
    }

    /// Fills what `info` does not know yet; the first body of a stream that says wins.
    func fill(_ info: inout QueryInfo) {
        if info.id == nil { info.id = id }
        if info.model == nil { info.model = model }
        if info.created == nil { info.created = created }
        if info.systemFingerprint == nil { info.systemFingerprint = systemFingerprint }
    }

    /// Whether `info` still lacks something ``fill(_:)`` would set.
    static func wantsInfo(_ info: QueryInfo) -> Bool {
        info.id == nil || info.model == nil || info.created == nil || info.systemFingerprint == nil
    }
}

extension JSONParser {
    /// Whether the next value (after white space) starts with `byte`.
    mutating func at(_ byte: UInt8) -> Bool {
        skipWhitespace()
        return i < buf.count && buf[i] == byte
    }
}
