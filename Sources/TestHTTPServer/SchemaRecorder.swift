import Foundation

/// Writes every Chat Completions request body a test sent to `$PROMPTLINE_SCHEMA_DIR` (when
/// set), where scripts/test validates them against the official OpenAI schema.
public enum SchemaRecorder {
    public static func record(_ requests: [TestHTTPServer.RecordedRequest], name: String) {
        guard let dir = ProcessInfo.processInfo.environment["PROMPTLINE_SCHEMA_DIR"] else { return }
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (i, r) in requests.enumerated() where r.uri.hasSuffix("/chat/completions") {
            let path = "\(dir)/\(name)-\(i).json"
            _ = FileManager.default.createFile(atPath: path, contents: Data(r.body))
        }
    }
}
