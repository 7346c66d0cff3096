import QueryCore

extension Provider {
    /// The variable promptline reads this provider's API key from (the official SDKs' name).
    public var apiKeyEnvironmentVariable: String {
        switch self {
        case .openAI: return "OPENAI_API_KEY"
        case .anthropic: return "ANTHROPIC_API_KEY"
        }
    }

    /// The variable promptline reads this provider's base URL from (the official SDKs' name).
    public var baseURLEnvironmentVariable: String {
        switch self {
        case .openAI: return "OPENAI_BASE_URL"
        case .anthropic: return "ANTHROPIC_BASE_URL"
        }
    }
}
