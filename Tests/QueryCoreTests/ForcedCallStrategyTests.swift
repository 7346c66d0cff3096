import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// How a FunctionSpec is forced, per server: `auto` probes once per base URL and picks
/// json-schema for llama.cpp, tools elsewhere; json-schema turns the reply's JSON into the call.
final class ForcedCallStrategyTests: XCTestCase {
    let spec = try! FunctionSpec(
        name: "get_weather", description: "Weather forecast",
        parameters: [
            "type": "object", "properties": ["city": ["type": "string"], "days": ["type": "integer"]],
            "required": ["city", "days"],
        ])

    func testAutoAgainstAGenericServerSendsOneToolAndRequired() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(200, OpenAIFixture.completion(text: nil, toolCall: ("get_weather", #"{"city":"Paris","days":3}"#))),
            .json(200, OpenAIFixture.completion(text: nil, toolCall: ("get_weather", #"{"city":"Rome","days":1}"#))))
        let c = client(server)
        XCTAssertEqual(c.forcedCall, .auto)
        let r1 = try await c.query(system: nil, user: "Paris?", functionSpec: spec)
        _ = try await c.query(system: nil, user: "Rome?", functionSpec: spec)
        XCTAssertEqual(r1.info.forcedCall, .tools)
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertEqual(body["tools"], [spec.openAITool])
        XCTAssertEqual(body["tool_choice"], "required")
        XCTAssertNil(body["response_format"])
        XCTAssertEqual(server.probes.map(\.uri), ["/v1/models"], "probed once per base URL, then cached")
        SchemaRecorder.record(server.requests, name: "auto-generic")
    }

    func testAutoAgainstLlamaCppSendsTheSchemaAsResponseFormatAndParsesTheReply() async throws {
        let server = try await startServer()
        server.identity = .llamaCpp
        server.enqueue(.json(200, OpenAIFixture.completion(text: #"{"city": "Paris", "days": 3}"#)))
        let r = try await client(server).query(system: "s", user: "Weather in Paris for 3 days?", functionSpec: spec)
        XCTAssertEqual(r.output.functionCall?.name, "get_weather")
        XCTAssertEqual(r.output.functionCall?.arguments, ["city": "Paris", "days": 3])
        XCTAssertEqual(r.output.functionCall?.rawArguments, #"{"city": "Paris", "days": 3}"#)
        XCTAssertEqual(r.info.forcedCall, .jsonSchema)
        let body = try XCTUnwrap(server.requests.first?.json)
        XCTAssertNil(body["tools"])
        XCTAssertNil(body["tool_choice"])
        XCTAssertEqual(
            body["response_format"],
            [
                "type": "json_schema",
                "json_schema": ["name": "get_weather", "description": "Weather forecast", "schema": spec.parameters],
            ])
        SchemaRecorder.record(server.requests, name: "auto-llamacpp")
    }

    func testJSONSchemaStreamReportsTheTextAsArguments() async throws {
        let server = try await startServer()
        server.enqueue(
            .sse(dataLines: OpenAIFixture.textStream([#"{"city":"#, #""Oslo","days""#, #":2}"#]), chunkSize: 1))
        var c = client(server)
        c.forcedCall = .jsonSchema
        let (events, r) = try await streamed(c, [.user("Oslo?")], spec: spec)
        XCTAssertEqual(events.first, .functionArguments(index: 0, name: "get_weather", fragment: #"{"city":"#))
        XCTAssertFalse(
            events.contains { if case .text = $0 { return true } else { return false } },
            "no text: the text is the call")
        XCTAssertEqual(r.output.functionCall?.arguments, ["city": "Oslo", "days": 2])
        XCTAssertTrue(server.probes.isEmpty, "an explicit strategy needs no probe")
        SchemaRecorder.record(server.requests, name: "jsonschema-stream")
    }

    func testJSONSchemaReplyThatIsNotJSONIsInvalidArgumentsAndEmptyIsNoCall() async throws {
        let server = try await startServer()
        server.enqueue(
            .json(200, OpenAIFixture.completion(text: "Sure! Paris, 3 days.")),
            .json(200, OpenAIFixture.completion(text: "  ")))
        var c = client(server)
        c.forcedCall = .jsonSchema
        await assertThrowsQueryError(try await c.query(system: nil, user: "x", functionSpec: spec)) { e in
            guard case .invalidArguments(let fn, let raw, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(fn, "get_weather")
            XCTAssertEqual(raw, "Sure! Paris, 3 days.")
        }
        await assertThrowsQueryError(try await c.query(system: nil, user: "x", functionSpec: spec)) { e in
            guard case .noFunctionCall(let name, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(name, "get_weather")
        }
    }

    func testStrictIsSentOnlyForSchemasStrictModeAccepts() throws {
        XCTAssertNil(spec.responseFormat["json_schema"]?["strict"], "open object: strict would be refused")
        let closed = try FunctionSpec(
            name: "f",
            parameters: [
                "type": "object", "additionalProperties": false, "required": ["a", "b"],
                "properties": [
                    "a": ["type": "string"],
                    "b": [
                        "type": "object", "additionalProperties": false, "required": ["c"],
                        "properties": ["c": ["type": "integer"]],
                    ],
                ],
            ])
        XCTAssertEqual(closed.responseFormat["json_schema"]?["strict"], true)
        let partlyRequired = try FunctionSpec(
            name: "f",
            parameters: [
                "type": "object", "additionalProperties": false, "required": ["a"], "properties": ["a": [:], "b": [:]],
            ])
        XCTAssertNil(partlyRequired.responseFormat["json_schema"]?["strict"])
    }

    func testNamedAndToolsNeverProbe() async throws {
        let server = try await startServer()
        server.identity = .llamaCpp
        server.enqueue(
            .json(200, OpenAIFixture.completion(text: nil, toolCall: ("get_weather", #"{"city":"a","days":1}"#))))
        var c = client(server)
        c.forcedCall = .tools
        let r = try await c.query(system: nil, user: "x", functionSpec: spec)
        XCTAssertEqual(r.info.forcedCall, .tools)
        XCTAssertEqual(server.requests.first?.json?["tool_choice"], "required")
        XCTAssertTrue(server.probes.isEmpty)
    }

    func testAFailedProbeFallsBackToToolsAndIsTriedAgainLater() async throws {
        // Nothing listens on the probe's port: the probe fails, the request still goes out as tools.
        let c = QueryClient(baseURL: "http://127.0.0.1:1/v1", defaultModel: "m", retryPolicy: .none)
        let resolved = await c.resolvingForcedCall()
        XCTAssertEqual(resolved.forcedCall, .tools)
        XCTAssertNil(c.serverKinds.kind(of: c.baseURL), "a failure is not cached")
    }

    func testAnthropicAutoIsTheToolChoice() async throws {
        let server = try await startServer()
        server.identity = .llamaCpp
        server.enqueue(
            .json(200, AnthropicFixture.message(text: nil, tool: ("get_weather", ["city": "x", "days": 1]))))
        let r = try await client(server, provider: .anthropic).query(system: nil, user: "x", functionSpec: spec)
        XCTAssertEqual(r.info.forcedCall, .tools)
        XCTAssertEqual(server.requests.first?.json?["tool_choice"], ["type": "tool", "name": "get_weather"])
    }

    // MARK: what a failed turn still reports

    func testUsageIsReportedBeforeTheCallIsCheckedSoAFailedTurnCountsIt() async throws {
        let server = try await startServer()
        server.enqueue(.json(200, OpenAIFixture.completion(text: "no call")))
        var events: [QueryEvent] = []
        var c = client(server)
        c.forcedCall = .tools
        do {
            _ = try await c.run(c.makeRequest(messages: [.user("x")], functionSpec: spec, options: [:], stream: false))
            { events.append($0) }
            XCTFail("expected noFunctionCall")
        } catch let e {
            guard case .noFunctionCall = e else { return XCTFail("\(e)") }
        }
        XCTAssertEqual(events, [.usage(inputTokens: 12, outputTokens: 5)])
    }

    func testACancelledStreamHasReportedTheInputTokensAnthropicSentFirst() async throws {
        let server = try await startServer()
        let start =
            #"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"usage":{"input_tokens":77,"output_tokens":1}}}"#
        server.enqueue(.sseRaw("event: message_start\ndata: \(start)\n\n", endWith: [.stall]))
        let c = client(server, provider: .anthropic)
        let got = Task { () -> [QueryEvent] in
            var events: [QueryEvent] = []
            _ = try? await c.run(c.makeRequest(messages: [.user("x")], functionSpec: nil, options: [:], stream: true)) {
                events.append($0)
            }
            return events
        }
        try await Task.sleep(nanoseconds: 500_000_000)
        got.cancel()
        let events = await got.value
        XCTAssertEqual(events, [.usage(inputTokens: 77, outputTokens: 1)])
    }

    // MARK: numbers from a server never trap

    func testHugeCreatedAndUsageAreDecodedWithoutTrapping() async throws {
        let server = try await startServer()
        let body =
            #"{"id":"x","object":"chat.completion","created":1e300,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":-5,"completion_tokens":9223372036854775807}}"#
        let stream = [
            #"{"id":"x","created":1e19,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}"#,
            #"{"choices":[],"usage":{"prompt_tokens":1.5,"completion_tokens":9223372036854775807}}"#, "[DONE]",
        ]
        server.enqueue(.body(200, body), .sse(dataLines: stream))
        let c = client(server)
        let r = try await c.query(system: nil, user: "x")
        XCTAssertNil(r.info.created, "1e300 is no Int64: unknown, not a trap")
        XCTAssertNil(r.inputTokens, "a negative count is not a count")
        XCTAssertEqual(r.outputTokens, Int.max)
        let (_, s) = try await streamed(c, [.user("x")])
        XCTAssertNil(s.info.created)
        XCTAssertNil(s.inputTokens)
        XCTAssertEqual(s.outputTokens, Int.max)
    }
}
