/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable, CaseIterable {
        case system, user, assistant, tool
    }

    public var role: Role
    /// The text of the message (empty for an assistant message that only calls tools).
    public var content: String
    /// For an assistant message: the tool calls it made, in order (several when parallel).
    public var toolCalls: [FunctionCall]
    /// For a tool message: the id of the call it answers.
    public var toolCallID: String?
    /// For a tool message: the result is an error (Anthropic's `is_error`; OpenAI has no such
    /// field, and the content says so).
    public var isError: Bool
    /// For an assistant message from Anthropic with extended thinking: its thinking blocks as
    /// they came (signatures included), sent back first in the message — the API wants them in
    /// a tool loop. Other formats do not send them.
    public var thinking: [JSONValue]

    public init(
        role: Role, content: String, toolCalls: [FunctionCall] = [], toolCallID: String? = nil, isError: Bool = false,
        thinking: [JSONValue] = []
    ) {
        (self.role, self.content, self.toolCalls) = (role, content, toolCalls)
        (self.toolCallID, self.isError, self.thinking) = (toolCallID, isError, thinking)
    }

    /// An assistant message that made one call.
    public init(role: Role, content: String, functionCall: FunctionCall?, toolCallID: String? = nil) {
        self.init(role: role, content: content, toolCalls: functionCall.map { [$0] } ?? [], toolCallID: toolCallID)
    }

    /// The first call of an assistant message.
    public var functionCall: FunctionCall? { toolCalls.first }

    /// The answer to a tool call: `content` is what the tool returned (text, or JSON as text).
    public static func toolResult(_ content: String, callID: String, isError: Bool = false) -> ChatMessage {
        ChatMessage(role: .tool, content: content, toolCallID: callID, isError: isError)
    }

    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: .system, content: text) }
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: .user, content: text) }
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: .assistant, content: text) }
}

/// A function call the model made: its name and its arguments, parsed and as sent.
public struct FunctionCall: Sendable, Equatable {
    public var id: String?
    public var name: String
    /// The parsed arguments (a JSON object when the model honoured the schema's type).
    public var arguments: JSONValue
    /// The argument text exactly as the model sent it.
    public var rawArguments: String

    public init(id: String? = nil, name: String, arguments: JSONValue, rawArguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
        self.rawArguments = rawArguments
    }
}

/// The sampling options (AIDE's `**model_kwargs`): an ordered map of name → JSON value.
///
/// Null values are dropped before sending (AIDE's `select_values(notnone, …)`); unknown keys pass
/// through untouched, so local servers' `top_k`, `min_p`, … work.
public struct QueryOptions: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var values = JSONObject()

    public init() {}
    public init(_ object: JSONObject) { values = object }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        for (k, v) in elements { values[k] = v }
    }

    public subscript(key: String) -> JSONValue? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// What is sent: every key whose value is not null, in insertion order.
    public var sendable: JSONObject { JSONObject(values.filter { $0.value != .null }.map { ($0.key, $0.value) }) }

    public var keys: [String] { values.keys }
    public func makeIterator() -> AnyIterator<(key: String, value: JSONValue)> { AnyIterator(values.makeIterator()) }
}

/// What the model produced: text, a call of the forced function (``QueryRequest/functionSpec``),
/// or calls of the request's tools (``QueryRequest/tools``).
public enum QueryOutput: Sendable, Equatable {
    case text(String)
    case functionCall(FunctionCall)
    /// The model called one or more of the offered tools (in the order it made the calls), with
    /// any text it wrote besides. Arguments are not checked here: a call of a tool that was not
    /// offered, or whose arguments are not JSON (then `arguments` is null), comes back as made.
    case toolCalls([FunctionCall], text: String)

    public var text: String? { if case .text(let t) = self { return t } else { return nil } }
    public var functionCall: FunctionCall? { if case .functionCall(let f) = self { return f } else { return nil } }
    /// The tool calls made (empty for text or a forced function's call).
    public var calls: [FunctionCall] { if case .toolCalls(let c, _) = self { return c } else { return [] } }
}

/// Which of the offered tools the model may or must call (OpenAI `tool_choice`; Anthropic
/// `tool_choice` `auto` / `none` / `any` / `{"type":"tool"}`).
public enum ToolChoice: Sendable, Equatable, CustomStringConvertible {
    /// The model decides (the APIs' default when tools are offered).
    case auto
    /// No tool may be called.
    case none
    /// Some tool must be called (Anthropic: `any`).
    case required
    /// This tool must be called: requested as ``ForcedCallStrategy`` says, as a forced function is.
    case named(String)

    /// `auto`, `none`, `required`, or a tool's name.
    public init(_ text: String) {
        switch text {
        case "auto": self = .auto
        case "none": self = .none
        case "required", "any": self = .required
        default: self = .named(text)
        }
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .none: return "none"
        case .required: return "required"
        case .named(let n): return n
        }
    }
}

/// Facts about a response other than its output.
public struct QueryInfo: Sendable, Equatable {
    public var model: String?
    /// Unix seconds (OpenAI `created`).
    public var created: Int64?
    public var systemFingerprint: String?
    /// OpenAI `finish_reason`, Anthropic `stop_reason`.
    public var finishReason: String?
    public var id: String?
    /// The usage object exactly as the server sent it (details, cache fields, …).
    public var usage: JSONValue?
    /// How the forced function was requested (nil when no FunctionSpec was sent).
    public var forcedCall: ForcedCallStrategy?
    /// The reasoning the server showed, whole (nil when it showed none).
    public var reasoning: String?
    /// Anthropic thinking blocks as they came, signatures included (for the conversation).
    public var thinkingBlocks: [JSONValue] = []
    /// Things the caller should know that are not errors, e.g. "the system prompt was sent as the
    /// user message (the API needs one)".
    public var notes: [String] = []

    public init() {}
}

extension QueryInfo {
    /// Reasoning tokens (within the output tokens), from whichever usage details the wire format
    /// sends: Chat Completions `completion_tokens_details`, Responses `output_tokens_details`.
    public var reasoningTokens: Int? { Self.reasoningTokens(in: usage) }

    /// Input tokens read from the provider's prompt cache: `prompt_tokens_details.cached_tokens`
    /// (chat), `input_tokens_details.cached_tokens` (Responses), `cache_read_input_tokens` (Anthropic).
    public var cachedInputTokens: Int? { Self.cachedInputTokens(in: usage) }

    public static func reasoningTokens(in usage: JSONValue?) -> Int? {
        usage?["completion_tokens_details"]?["reasoning_tokens"]?.countValue
            ?? usage?["output_tokens_details"]?["reasoning_tokens"]?.countValue
    }

    public static func cachedInputTokens(in usage: JSONValue?) -> Int? {
        usage?["prompt_tokens_details"]?["cached_tokens"]?.countValue
            ?? usage?["input_tokens_details"]?["cached_tokens"]?.countValue
            ?? usage?["cache_read_input_tokens"]?.countValue
    }
}

/// The result of one query (AIDE's `(output, req_time, in_tokens, out_tokens, info)`).
public struct QueryResult: Sendable, Equatable {
    public var output: QueryOutput
    /// Seconds from the first attempt's start to the end of the response, backoff waits included.
    public var requestTime: Double
    /// Input tokens, when the server reported usage. Never a made-up 0.
    public var inputTokens: Int?
    /// Output tokens, when the server reported usage.
    public var outputTokens: Int?
    /// Seconds from the start of the successful attempt to the first output byte (streamed only).
    public var timeToFirstToken: Double?
    /// How many times the request was retried (0 when the first attempt succeeded).
    public var retries: Int
    public var info: QueryInfo

    public init(
        output: QueryOutput, requestTime: Double, inputTokens: Int?, outputTokens: Int?,
        timeToFirstToken: Double?, retries: Int, info: QueryInfo
    ) {
        self.output = output
        self.requestTime = requestTime
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.timeToFirstToken = timeToFirstToken
        self.retries = retries
        self.info = info
    }
}

/// Why and when a request will be tried again.
public struct RetryNotice: Sendable, Equatable {
    /// The attempt that is about to start (2 for the first retry).
    public var attempt: Int
    public var maxAttempts: Int
    /// Seconds until it starts.
    public var delay: Double
    /// What failed, e.g. "429 rate limited" or "connection refused".
    public var reason: String
}

/// What a streamed query reports as it goes.
public enum QueryEvent: Sendable, Equatable {
    /// A piece of the text output.
    case text(String)
    /// A piece of the model's reasoning, shown apart from the answer (chat `reasoning_content`,
    /// Responses reasoning summaries, Anthropic thinking); never sent back where the API does not want it.
    case reasoning(String)
    /// A piece of a function call's arguments; `name` is set on the call's first piece.
    case functionArguments(index: Int, name: String?, fragment: String)
    /// The request failed in a way worth retrying and will be sent again after a wait.
    case retrying(RetryNotice)
    /// The server reported token usage (sent as soon as it is known, also for a response that
    /// then fails the FunctionSpec's checks or is cancelled: the server billed those tokens).
    case usage(inputTokens: Int?, outputTokens: Int?)
    /// The last event of a successful query.
    case completed(QueryResult)
}

/// The request the core was asked to send, before a backend turns it into HTTP.
public struct QueryRequest: Sendable, Equatable {
    public var model: String
    public var messages: [ChatMessage]
    /// AIDE's FunctionSpec: the one function every reply must call, its arguments parsed and
    /// checked (the output is ``QueryOutput/functionCall(_:)`` or an error). Takes the place of
    /// ``tools`` and ``outputSchema`` when set.
    public var functionSpec: FunctionSpec?
    /// Tools the model may call (the output is ``QueryOutput/toolCalls(_:text:)`` when it does).
    public var tools: [FunctionSpec]
    /// Which tool the model may or must call; nil sends the API's default (auto).
    public var toolChoice: ToolChoice?
    /// Structured output: the reply is JSON text meant to match this schema (OpenAI
    /// `response_format` json_schema; Anthropic, a forced tool whose input is the reply).
    public var outputSchema: FunctionSpec?
    public var options: QueryOptions
    public var stream: Bool

    public init(
        model: String, messages: [ChatMessage], functionSpec: FunctionSpec? = nil, tools: [FunctionSpec] = [],
        toolChoice: ToolChoice? = nil, outputSchema: FunctionSpec? = nil, options: QueryOptions = [:],
        stream: Bool = true
    ) {
        (self.model, self.messages, self.functionSpec) = (model, messages, functionSpec)
        (self.tools, self.toolChoice, self.outputSchema) = (tools, toolChoice, outputSchema)
        (self.options, self.stream) = (options, stream)
    }

    /// The function whose call is forced, and how it is read back: the FunctionSpec (strictly:
    /// no call, or another one, is an error), else the tool a ``ToolChoice/named(_:)`` choice
    /// names (read as a tool call). nil when nothing is forced by name.
    public var forcedFunction: (spec: FunctionSpec, strict: Bool)? {
        if let functionSpec { return (functionSpec, true) }
        guard case .named(let n)? = toolChoice, let t = tools.first(where: { $0.name == n }) else { return nil }
        return (t, false)
    }

    /// AIDE's `opt_messages_to_list`: a system and a user message, each only when non-empty.
    public static func messages(system: String?, user: String?) -> [ChatMessage] {
        var m: [ChatMessage] = []
        if let system, !system.isEmpty { m.append(.system(system)) }
        if let user, !user.isEmpty { m.append(.user(user)) }
        return m
    }
}
