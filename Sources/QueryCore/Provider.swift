/// Which wire protocol a ``QueryClient`` speaks.
public enum Provider: String, Sendable, Equatable, CaseIterable {
    case openAI = "openai"
    case anthropic = "anthropic"

    /// AIDE's rule, kept: a `claude-*` model is Anthropic's; anything else goes to an
    /// OpenAI-compatible endpoint.
    public static func forModel(_ model: String) -> Provider {
        model.lowercased().hasPrefix("claude-") ? .anthropic : .openAI
    }

    public var defaultBaseURL: String {
        switch self {
        case .openAI: return "https://api.openai.com/v1"
        case .anthropic: return "https://api.anthropic.com"
        }
    }
}

// MARK: - What each provider accepts

extension Provider {
    /// Options this provider's API has no parameter for. They are refused by name, before anything
    /// is sent, rather than sent and rejected by the server or silently dropped.
    public var refusedOptions: Set<String> {
        switch self {
        case .openAI: return []
        case .anthropic: return Self.openAIOnlyOptions
        }
    }

    /// Why `option` cannot be sent to this provider (one line naming the option), or nil when it can.
    public func refusalReason(option: String) -> String? {
        guard refusedOptions.contains(option) else { return nil }
        return "option \(option) is OpenAI-only; the \(rawValue) provider has no such parameter"
    }

    /// OpenAI Chat Completions parameters with no Anthropic Messages counterpart.
    private static let openAIOnlyOptions: Set<String> = [
        "presence_penalty", "frequency_penalty", "seed", "response_format", "logprobs", "top_logprobs",
        "n", "logit_bias", "reasoning_effort", "parallel_tool_calls", "stream_options",
    ]
}
