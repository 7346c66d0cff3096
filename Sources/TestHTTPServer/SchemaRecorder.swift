import Foundation

/// Writes every Chat Completions and Responses request body a test sent to
/// `$PROMPTLINE_SCHEMA_DIR` (when set), where scripts/test validates them against the official
/// OpenAI schemas.
public enum SchemaRecorder {
    public static func record(_ requests: [TestHTTPServer.RecordedRequest], name: String) {
        guard let dir = ProcessInfo.processInfo.environment["PROMPTLINE_SCHEMA_DIR"] else { return }
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (i, r) in requests.enumerated() {
            // Chat Completions bodies as .json, Responses bodies as .responses.json: each is
            // checked against its own request schema.
            let kind = r.uri.hasSuffix("/chat/completions") ? "" : r.uri.hasSuffix("/responses") ? ".responses" : nil
            guard let kind else { continue }
            _ = FileManager.default.createFile(atPath: "\(dir)/\(name)-\(i)\(kind).json", contents: Data(r.body))
        }
    }
}
