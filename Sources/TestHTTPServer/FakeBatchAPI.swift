import Foundation
import QueryCore

/// The OpenAI Batch API as a ``TestHTTPServer`` serves it: `POST /v1/files` (multipart, purpose
/// `batch`), `GET /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches[/{id}]`,
/// `POST /v1/batches/{id}/cancel`. Each input line is answered by the server's default reply (the
/// echo, in the test-server binary), as if it had been sent on its own.
///
/// A batch moves one step each time it is retrieved: validating, in progress (``linesPerPoll``
/// lines at a time), finalizing, then completed with its output and error files. A ``Fault``
/// makes it misbehave on command. Replies scripted on the server's queue still come first
/// (a 429 or a 500 on any of these calls).
///
/// With `$PROMPTLINE_SCHEMA_DIR` set, what the client sent (the upload's form fields, each input
/// line, the create body) and what this fake answered (file and batch objects, output lines) are
/// written there for scripts/test to check against the official schemas.
public final class FakeBatchAPI: @unchecked Sendable {
    // @unchecked: every stored property is only touched under `lock`.
    public enum Fault: String, Sendable, CaseIterable {
        case none
        /// The batch fails validation: status `failed`, with errors and no files.
        case fail
        /// The 24-hour window passes halfway: status `expired`, half the lines in the output file.
        case expire
        /// Every third line is answered with a 500 (in the error file).
        case errorLines = "error_lines"
        /// `POST /batches` creates the batch, then drops the connection without answering (once).
        case dropCreate = "drop_create"
        /// `GET /batches/{id}` answers about another batch (its id with `-other` after it).
        case otherID = "other_id"
    }

    struct StoredFile {
        var name: String
        var purpose: String
        var bytes: [UInt8]
        var created: Int
    }

    struct Batch {
        var object: JSONObject
        var lines: [JSONValue]
        var done = 0
    }

    private let lock = NSLock()
    private var files: [String: StoredFile] = [:]
    private var batches: [String: Batch] = [:]
    private var order: [String] = []
    private var counter = 0
    private var _fault = Fault.none
    private var _linesPerPoll = 50
    private var _failMessage = "the batch failed validation (as asked)"
    private let answer: @Sendable (TestHTTPServer.RecordedRequest) -> TestHTTPServer.Reply

    init(answer: @escaping @Sendable (TestHTTPServer.RecordedRequest) -> TestHTTPServer.Reply) {
        self.answer = answer
    }

    public var fault: Fault {
        get { lock.withLock { _fault } }
        set { lock.withLock { _fault = newValue } }
    }

    /// How many lines a batch in progress finishes each time it is retrieved.
    public var linesPerPoll: Int {
        get { lock.withLock { _linesPerPoll } }
        set { lock.withLock { _linesPerPoll = max(1, newValue) } }
    }

    /// The message of the `fail` fault's validation error (a test echoes a key in it).
    public var failMessage: String {
        get { lock.withLock { _failMessage } }
        set { lock.withLock { _failMessage = newValue } }
    }

    /// How many batches were created (what a test asserts "sent once" with).
    public var batchCount: Int { lock.withLock { batches.count } }

    public func reset() {
        lock.withLock {
            (files, batches, order, _fault, _linesPerPoll) = ([:], [:], [], .none, 50)
            _failMessage = "the batch failed validation (as asked)"
        }
    }

    /// The reply for a Batch API request, or nil when `r` is not one.
    func reply(_ r: TestHTTPServer.RecordedRequest) -> TestHTTPServer.Reply? {
        let path = String(r.uri.split(separator: "?").first ?? "")
        let parts = path.split(separator: "/").map(String.init)
        guard parts.first == "v1", parts.count >= 2, ["files", "batches"].contains(parts[1]) else { return nil }
        return lock.withLock {
            switch (r.method, Array(parts.dropFirst())) {
            case ("POST", ["files"]): return upload(r)
            case ("GET", let p) where p.count == 3 && p[0] == "files" && p[2] == "content":
                guard let f = files[p[1]] else { return Self.notFound("file", p[1]) }
                return .body(200, String(decoding: f.bytes, as: UTF8.self), contentType: "application/octet-stream")
            case ("POST", ["batches"]): return create(r)
            case ("GET", ["batches"]):
                let limit = Int(r.uri.split(separator: "limit=").last.map(String.init) ?? "") ?? 20
                let data = order.reversed().prefix(limit).compactMap { batches[$0].map { JSONValue.object($0.object) } }
                let list: JSONValue = [
                    "object": "list", "data": .array(data), "has_more": .bool(order.count > limit),
                    "first_id": data.first?["id"] ?? .null, "last_id": data.last?["id"] ?? .null,
                ]
                return Self.answered(list, kind: "batchlist")
            case ("GET", let p) where p.count == 2 && p[0] == "batches":
                guard batches[p[1]] != nil else { return Self.notFound("batch", p[1]) }
                advance(p[1])
                var o = batches[p[1]]!.object
                if _fault == .otherID { o["id"] = .string(p[1] + "-other") }
                return Self.answered(.object(o), kind: "batchobject")
            case ("POST", let p) where p.count == 3 && p[0] == "batches" && p[2] == "cancel":
                guard var b = batches[p[1]] else { return Self.notFound("batch", p[1]) }
                if !["completed", "failed", "expired", "cancelled"].contains(b.object["status"]?.stringValue ?? "") {
                    b.object["status"] = "cancelling"
                    b.object["cancelling_at"] = .integer(Self.now)
                    batches[p[1]] = b
                }
                return Self.answered(.object(b.object), kind: "batchobject")
            default:
                return .body(404, #"{"error":{"message":"no such Batch API route","type":"invalid_request_error"}}"#)
            }
        }
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    static func notFound(_ what: String, _ id: String) -> TestHTTPServer.Reply {
        .json(
            404,
            ["error": ["message": .string("No \(what) found with id '\(id)'."), "type": "invalid_request_error"]])
    }

    static func answered(_ v: JSONValue, kind: String) -> TestHTTPServer.Reply {
        SchemaRecorder.write(v.serialized(), kind: kind)
        return .json(200, v)
    }

    private func nextID(_ prefix: String) -> String {
        counter += 1
        return "\(prefix)\(counter)"
    }

    private func upload(_ r: TestHTTPServer.RecordedRequest) -> TestHTTPServer.Reply {
        guard let form = Self.multipart(r) else {
            return .json(
                400, ["error": ["message": "expected a multipart/form-data body", "type": "invalid_request_error"]])
        }
        SchemaRecorder.write(
            JSONValue.object(
                JSONObject(
                    form.filter { $0.key != "filename" }.sorted { $0.key < $1.key }.map {
                        ($0.key, JSONValue.string(String(decoding: $0.value, as: UTF8.self)))
                    })
            ).serialized(), kind: "file")
        guard let purpose = form["purpose"].map({ String(decoding: $0, as: UTF8.self) }), let bytes = form["file"]
        else {
            return .json(400, ["error": ["message": "file and purpose are required", "type": "invalid_request_error"]])
        }
        let id = nextID("file-")
        files[id] = StoredFile(
            name: form["filename"].map { String(decoding: $0, as: UTF8.self) } ?? "upload.jsonl", purpose: purpose,
            bytes: bytes, created: Int(Self.now))
        return Self.answered(fileObject(id), kind: "fileobject")
    }

    private func fileObject(_ id: String) -> JSONValue {
        let f = files[id]!
        return [
            "id": .string(id), "object": "file", "bytes": .integer(Int64(f.bytes.count)),
            "created_at": .integer(Int64(f.created)), "filename": .string(f.name), "purpose": .string(f.purpose),
            "status": "processed",
        ]
    }

    private func create(_ r: TestHTTPServer.RecordedRequest) -> TestHTTPServer.Reply {
        SchemaRecorder.write(r.bodyText, kind: "batchcreate")
        guard let body = r.json, let fileID = body["input_file_id"]?.stringValue,
            let endpoint = body["endpoint"]?.stringValue, let file = files[fileID]
        else {
            return .json(
                400,
                ["error": ["message": "input_file_id must name an uploaded file", "type": "invalid_request_error"]])
        }
        let id = nextID("batch_")
        let (lines, errors) = Self.lines(file, endpoint: endpoint)
        var o: JSONObject = [
            "id": .string(id), "object": "batch", "endpoint": .string(endpoint),
            "input_file_id": .string(fileID), "completion_window": "24h", "status": "validating",
            "created_at": .integer(Self.now),
            "expires_at": .integer(Self.now + 86_400),
            "request_counts": ["total": .integer(Int64(lines.count)), "completed": 0, "failed": 0],
            "metadata": body["metadata"] ?? .null,
        ]
        if let model = lines.first?["body"]?["model"] { o["model"] = model }
        if _fault == .fail || !errors.isEmpty {
            o["status"] = "failed"
            o["failed_at"] = .integer(Self.now)
            let list =
                errors.isEmpty ? [Self.error("invalid_file", _failMessage, nil)] : errors
            o["errors"] = ["object": "list", "data": .array(list)]
        }
        batches[id] = Batch(object: o, lines: lines)
        order.append(id)
        if _fault == .dropCreate {
            _fault = .none
            return .closeWithoutResponse
        }
        return Self.answered(.object(o), kind: "batchobject")
    }

    static func error(_ code: String, _ message: String, _ line: Int?) -> JSONValue {
        ["code": .string(code), "message": .string(message), "line": line.map { .integer(Int64($0)) } ?? .null]
    }

    /// The input file's lines, and what is wrong with them as the real API reports it: a line
    /// that is not JSON, a repeated custom_id, another endpoint, more than one model.
    static func lines(_ file: StoredFile, endpoint: String) -> ([JSONValue], [JSONValue]) {
        var lines: [JSONValue] = []
        var errors: [JSONValue] = []
        var ids: Set<String> = []
        var models: Set<String> = []
        if file.purpose != "batch" { errors.append(error("invalid_purpose", "the file's purpose is not batch", nil)) }
        for (n, text) in String(decoding: file.bytes, as: UTF8.self).split(separator: "\n").enumerated() {
            SchemaRecorder.write(String(text), kind: "batchinput")
            guard let v = try? JSONValue.parse(String(text)), let id = v["custom_id"]?.stringValue else {
                errors.append(error("invalid_json_line", "line is not a JSON object with a custom_id", n + 1))
                continue
            }
            if !ids.insert(id).inserted {
                errors.append(error("duplicate_custom_id", "custom_id \(id) repeats", n + 1))
            }
            if v["url"]?.stringValue != endpoint {
                errors.append(error("invalid_url", "the line's url is not the batch's endpoint", n + 1))
            }
            if let m = v["body"]?["model"]?.stringValue { models.insert(m) }
            lines.append(v)
        }
        if models.count > 1 { errors.append(error("mismatched_model", "a batch holds requests to one model", nil)) }
        if lines.isEmpty { errors.append(error("empty_file", "the input file has no requests", nil)) }
        return (lines, errors)
    }

    /// One step of the batch `id`'s life, taken as it is retrieved.
    private func advance(_ id: String) {
        guard var b = batches[id] else { return }
        switch b.object["status"]?.stringValue {
        case "validating":
            b.object["status"] = "in_progress"
            b.object["in_progress_at"] = .integer(Self.now)
        case "in_progress":
            let stop = _fault == .expire ? b.lines.count / 2 : b.lines.count
            b.done = min(stop, b.done + _linesPerPoll)
            if b.done >= stop {
                b.object["status"] = "finalizing"
                b.object["finalizing_at"] = .integer(Self.now)
            }
        case "finalizing", "cancelling":
            finish(
                &b,
                status: _fault == .expire ? "expired" : b.object["status"] == "cancelling" ? "cancelled" : "completed")
        default: break
        }
        let failed = b.lines.prefix(b.done).indices.filter { failsLine($0) }.count
        b.object["request_counts"] = [
            "total": .integer(Int64(b.lines.count)), "completed": .integer(Int64(b.done - failed)),
            "failed": .integer(Int64(failed)),
        ]
        batches[id] = b
    }

    private func failsLine(_ i: Int) -> Bool { _fault == .errorLines && i % 3 == 2 }

    /// Runs the lines done (each through the default reply) into the output and error files.
    private func finish(_ b: inout Batch, status: String) {
        var output: [String] = []
        var errors: [String] = []
        for (i, line) in b.lines.prefix(b.done).enumerated() {
            let request = TestHTTPServer.RecordedRequest(
                method: "POST", uri: line["url"]?.stringValue ?? "", headers: [],
                body: line["body"].map { $0.serializedBytes() } ?? [])
            let reply =
                failsLine(i)
                ? .body(500, #"{"error":{"message":"the server had an error","type":"server_error"}}"#)
                : answer(request)
            let bytes = reply.steps.flatMap { step -> [UInt8] in if case .send(let b) = step { b } else { [] } }
            let body =
                (try? JSONValue.parse(bytes)) ?? ["error": ["message": .string(String(decoding: bytes, as: UTF8.self))]]
            let status = reply.status ?? 502
            let out: JSONValue = [
                "id": .string("batch_req_\(i)"), "custom_id": line["custom_id"] ?? .null,
                "response": ["status_code": .integer(Int64(status)), "request_id": .string("req_\(i)"), "body": body],
                "error": .null,
            ]
            SchemaRecorder.write(out.serialized(), kind: "batchoutput")
            if (200..<300).contains(status) { output.append(out.serialized()) } else { errors.append(out.serialized()) }
        }
        b.object["status"] = .string(status)
        b.object["\(status == "completed" ? "completed" : status)_at"] = .integer(Self.now)
        for (key, lines) in [("output_file_id", output), ("error_file_id", errors)] where !lines.isEmpty {
            let id = nextID("file-")
            files[id] = StoredFile(
                name: "\(key).jsonl", purpose: "batch_output",
                bytes: Array((lines.joined(separator: "\n") + "\n").utf8), created: Int(Self.now))
            b.object[key] = .string(id)
        }
    }

    /// The fields of a `multipart/form-data` body (a file field's filename as `filename`).
    static func multipart(_ r: TestHTTPServer.RecordedRequest) -> [String: [UInt8]]? {
        guard let type = r.header("content-type"), type.hasPrefix("multipart/form-data"),
            let b = type.components(separatedBy: "boundary=").last, !b.isEmpty
        else { return nil }
        let delimiter = Array("--\(b)".utf8)
        var fields: [String: [UInt8]] = [:]
        var rest = r.body[...]
        while let start = rest.firstRange(of: delimiter) {
            rest = rest[start.upperBound...]
            if rest.starts(with: Array("--".utf8)) { break }
            guard let headEnd = rest.firstRange(of: Array("\r\n\r\n".utf8)), let next = rest.firstRange(of: delimiter)
            else { return nil }
            let head = String(decoding: rest[rest.startIndex..<headEnd.lowerBound], as: UTF8.self)
            var content = Array(rest[headEnd.upperBound..<next.lowerBound])
            if content.suffix(2) == Array("\r\n".utf8) { content.removeLast(2) }
            guard let name = attribute("name", in: head) else { return nil }
            fields[name] = content
            if let filename = attribute("filename", in: head) { fields["filename"] = Array(filename.utf8) }
            rest = rest[next.lowerBound...]
        }
        return fields
    }

    static func attribute(_ key: String, in head: String) -> String? {
        guard let r = head.range(of: " \(key)=\"") ?? head.range(of: ";\(key)=\"") else { return nil }
        return String(head[r.upperBound...].prefix { $0 != "\"" })
    }
}
