/// Which wire protocol a ``QueryClient`` speaks.
public enum Provider: String, Sendable, Equatable, CaseIterable {
    case openAI = "openai"
    case anthropic = "anthropic"
    /// OpenAI's Responses API (`POST /responses`), with OpenAI's keys and base URL.
    case openAIResponses = "openai-responses"

    /// AIDE's rule, kept: a `claude-*` model is Anthropic's; anything else goes to an
    /// OpenAI-compatible endpoint.
    public static func forModel(_ model: String) -> Provider {
        model.lowercased().hasPrefix("claude-") ? .anthropic : .openAI
    }

    public var defaultBaseURL: String {
        switch self {
        case .openAI, .openAIResponses: return "https://api.openai.com/v1"
        case .anthropic: return "https://api.anthropic.com"
        }
    }

    /// OpenAI's wire formats (Chat Completions and Responses): one key, one base URL, one server.
    public var isOpenAI: Bool { self != .anthropic }
}

// MARK: - What each provider accepts

extension Provider {
    /// Options this provider's API has no parameter for. They are refused by name, before anything
    /// is sent, rather than sent and rejected by the server or silently dropped.
    public var refusedOptions: Set<String> {
        switch self {
        case .openAI: return []
        case .anthropic: return Self.openAIOnlyOptions
        case .openAIResponses: return Self.chatOnlyOptions
        }
    }

    /// Why `option` cannot be sent to this provider (one line naming the option), or nil when it can.
    public func refusalReason(option: String) -> String? {
        guard refusedOptions.contains(option) else { return nil }
        if self == .openAIResponses {
            let instead = option == "response_format" ? " (:schema sets text.format)" : ""
            return "option \(option) is a Chat Completions parameter; the Responses API has no such parameter\(instead)"
        }
        return "option \(option) is OpenAI-only; the \(rawValue) provider has no such parameter"
    }

    /// Chat Completions parameters the Responses API does not take (`max_tokens` and
    /// `reasoning_effort` are translated: `max_output_tokens`, `reasoning.effort`).
    private static let chatOnlyOptions: Set<String> = [
        "stop", "n", "logprobs", "logit_bias", "presence_penalty", "frequency_penalty", "seed", "response_format",
        "stream_options",
    ]

    /// OpenAI Chat Completions parameters with no Anthropic Messages counterpart.
    private static let openAIOnlyOptions: Set<String> = [
        "presence_penalty", "frequency_penalty", "seed", "response_format", "logprobs", "top_logprobs",
        "n", "logit_bias", "reasoning_effort", "parallel_tool_calls", "stream_options",
    ]
}

/// OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 but its chat variants): they take
/// `max_completion_tokens`, not `max_tokens`, and refuse the sampling options below — said
/// before sending rather than after a 400.
public enum ReasoningModels {
    public static func matches(_ model: String) -> Bool {
        let m = model.lowercased()
        let oSeries = m.count >= 2 && m.first == "o" && m.dropFirst().first?.isNumber == true
        return oSeries || (m.hasPrefix("gpt-5") && !m.contains("chat"))
    }

    /// Options these models refuse (temperature and top_p are accepted at their default, 1).
    static let refused = [
        "temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias",
    ]

    static func check(_ body: JSONObject, model: String) throws(QueryError) {
        for k in refused {
            guard let v = body[k], !((k == "temperature" || k == "top_p") && v.doubleValue == 1) else { continue }
            throw QueryError.invalidRequest(
                "\(model) is a reasoning model: it takes no \(k) (reasoning_effort and max_completion_tokens instead)")
        }
    }
}
