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

    /// Writes one document of `kind` (the Batch API's: `file`, `batchinput`, `batchcreate`,
    /// `batchobject`, `fileobject`, `batchlist`, `batchoutput`) as `batchapi-<pid>-<n>.<kind>.json`.
    public static func write(_ text: String, kind: String) {
        guard let dir = ProcessInfo.processInfo.environment["PROMPTLINE_SCHEMA_DIR"] else { return }
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let n = lock.withLock {
            written += 1
            return written
        }
        let path = "\(dir)/batchapi-\(getpid())-\(n).\(kind).json"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    private static let lock = NSLock()
    // Only touched under `lock`.
    nonisolated(unsafe) private static var written = 0
}
