import Foundation
import PromptSession
import QueryCore
import Terminal

/// `:request`: the last request as a runnable curl command, as JSON, or as the QueryCore call
/// that reproduces it. The key is never printed: curl and Swift read it from the environment;
/// credentials in the base URL are shown as `[redacted]`.
enum RequestPrinter {
    static func render(_ request: QueryRequest, client: QueryClient, format: RequestFormat) throws -> String {
        var keyless = client
        keyless.apiKey = nil
        let (http, _) = try keyless.httpRequest(for: request)
        let keyVar = ResolvedSettings.environmentNames(client.provider).apiKey
        let hasKey = client.apiKey.map { !$0.isEmpty } ?? false
        var headers = http.headers.fields.filter { $0.name != "User-Agent" }
        if hasKey {
            headers.append(
                client.provider.isOpenAI ? ("Authorization", "Bearer $\(keyVar)") : ("x-api-key", "$\(keyVar)"))
        }
        let body = String(decoding: http.body, as: UTF8.self)
        let url = Redactor.url(http.url)
        switch format {
        case .curl:
            var lines = ["curl -sS \(shellQuote(url))"]
            for (n, v) in headers {
                // Double quotes where the value names the key variable, so the shell expands it.
                lines.append(v.contains("$\(keyVar)") ? "  -H \"\(n): \(v)\"" : "  -H \(shellQuote("\(n): \(v)"))")
            }
            if request.stream { lines.append("  -N") }
            lines.append("  -d \(shellQuote((try? JSONValue.parse(body).serialized(pretty: true)) ?? body))")
            return lines.joined(separator: " \\\n")
        case .json:
            var h = JSONObject()
            for (n, v) in headers { h[n] = .string(v) }
            let o: JSONValue = [
                "method": .string(http.method), "url": .string(url), "headers": .object(h),
                "body": (try? JSONValue.parse(body)) ?? .string(body),
            ]
            return o.serialized(pretty: true)
        case .swift:
            return swiftCall(request, client: client, keyVar: keyVar)
        }
    }

    /// The QueryCore code that sends `request` again.
    static func swiftCall(_ request: QueryRequest, client: QueryClient, keyVar: String) -> String {
        var s = "import QueryCore\n\n"
        s +=
            "let client = QueryClient(provider: .\(Self.swiftName(client.provider)), baseURL: \(swiftString(Redactor.url(client.baseURL))), apiKey: ProcessInfo.processInfo.environment[\(swiftString(keyVar))])\n"
        let messages = request.messages.map { m -> String in
            switch m.role {
            case .system: return ".system(\(swiftString(m.content)))"
            case .user: return ".user(\(swiftString(m.content)))"
            case .assistant where m.functionCall == nil: return ".assistant(\(swiftString(m.content)))"
            default:
                let call =
                    m.functionCall.map {
                        ", functionCall: FunctionCall(id: \($0.id.map(swiftString) ?? "nil"), name: \(swiftString($0.name)), arguments: try JSONValue.parse(\(swiftString($0.arguments.serialized()))), rawArguments: \(swiftString($0.rawArguments)))"
                    } ?? ""
                let tool = m.toolCallID.map { ", toolCallID: \(swiftString($0))" } ?? ""
                return "ChatMessage(role: .\(m.role.rawValue), content: \(swiftString(m.content))\(call)\(tool))"
            }
        }
        s += "let messages: [ChatMessage] = [\n" + messages.map { "    \($0)," }.joined(separator: "\n") + "\n]\n"
        if let spec = request.functionSpec {
            s += "let spec = try FunctionSpec(json: try JSONValue.parse(\(swiftString(spec.json.serialized()))))\n"
        }
        var opts = request.options
        opts["model"] = .string(request.model)
        s +=
            "let options = QueryOptions(try JSONValue.parse(\(swiftString(JSONValue.object(opts.values).serialized()))).objectValue!)\n"
        let call = request.stream ? "client.stream" : "try await client.query"
        s +=
            "let result = \(call)(messages: messages\(request.functionSpec == nil ? "" : ", functionSpec: spec"), options: options)\n"
        return s
    }

    static func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// A Swift raw string literal that holds `s` exactly and cannot interpolate: its `#`
    /// delimiter is longer than any `"#…` or `\#…` run in `s` (so neither ends the literal nor
    /// starts an escape or `\#(…)` interpolation), and characters a literal cannot hold as they
    /// are (controls, DEL, C1, bidi controls, line separators) are written as `\#u{…}` escapes.
    static func swiftString(_ s: String) -> String {
        var hashes = "#"
        while s.contains("\"" + hashes) || s.contains("\\" + hashes) { hashes += "#" }
        let multiline = s.contains("\n")
        var body = ""
        for u in s.unicodeScalars {
            let v = u.value
            let plain =
                v == 0x09 || (v == 0x0A && multiline)
                || (v >= 0x20 && v != 0x7F && !(0x80...0x9F).contains(v) && v != 0x2028 && v != 0x2029
                    && !TerminalSanitizer.isBidiControl(v))
            if plain { body.unicodeScalars.append(u) } else { body += "\\\(hashes)u{\(String(v, radix: 16))}" }
        }
        if multiline { return "\(hashes)\"\"\"\n\(body)\n\"\"\"\(hashes)" }
        return "\(hashes)\"\(body)\"\(hashes)"
    }

    /// The `Provider` case a Swift snippet names.
    static func swiftName(_ p: Provider) -> String {
        switch p {
        case .openAI: return "openAI"
        case .anthropic: return "anthropic"
        case .openAIResponses: return "openAIResponses"
        }
    }
}
