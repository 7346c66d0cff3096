import Foundation
import Logging
import QueryCore
import TestHTTPServer
import XCTest

/// HTTP_PROXY / HTTPS_PROXY / NO_PROXY: requests go through the proxy for their scheme, hosts in
/// NO_PROXY and this machine directly. The proxy here is the test server, which records what a
/// proxy receives (the absolute-form request, or the CONNECT) and answers it itself.
final class ProxyTests: XCTestCase {
    func testSettingsFromTheEnvironment() throws {
        XCTAssertNil(try ProxySettings(environment: [:]))
        let p = try XCTUnwrap(
            try ProxySettings(environment: [
                "HTTPS_PROXY": "http://proxy.corp:3128", "http_proxy": "proxy.corp:8080",
                "NO_PROXY": "internal.corp, .example.com,10.0.0.1:443",
            ]))
        XCTAssertEqual(p.https, .init(host: "proxy.corp", port: 3128))
        XCTAssertEqual(p.http, .init(host: "proxy.corp", port: 8080))
        XCTAssertEqual(p.server(for: "https://api.openai.com/v1/chat/completions"), p.https)
        XCTAssertEqual(p.server(for: "http://api.example.org/v1"), p.http)
        XCTAssertNil(p.server(for: "https://internal.corp/v1"))
        XCTAssertNil(p.server(for: "https://a.internal.corp/v1"))
        XCTAssertNil(p.server(for: "https://example.com/v1"))
        XCTAssertNil(p.server(for: "https://10.0.0.1/v1"))
        XCTAssertNil(p.server(for: "http://127.0.0.1:8080/v1"), "this machine is reached directly")
        XCTAssertNil(p.server(for: "http://localhost:8080/v1"))
        XCTAssertThrowsError(try ProxySettings(environment: ["HTTPS_PROXY": "socks5://bob:hunter2@x:1"])) { e in
            XCTAssertTrue("\(e)".contains("HTTPS_PROXY must be a proxy URL like http://host:port"), "\(e)")
            XCTAssertFalse("\(e)".contains("hunter2"), "\(e)")
        }
    }

    func testCredentialsAreDecodedAndNeverShown() throws {
        let p = try XCTUnwrap(
            try ProxySettings(environment: ["HTTP_PROXY": "http://alice:p%40ss%3Aw0rd@proxy.corp:3128"]))
        let c = try XCTUnwrap(p.http?.credentials)
        XCTAssertEqual(c, .init(user: "alice", password: "p@ss:w0rd"))
        XCTAssertEqual(c.authorization, "Basic " + Data("alice:p@ss:w0rd".utf8).base64EncodedString())
        var dumped = ""
        dump(p, to: &dumped)
        for shown in [String(describing: p), String(reflecting: p), "\(p.http!)", dumped] {
            XCTAssertFalse(shown.contains("p@ss"), shown)
            XCTAssertFalse(shown.contains(c.authorization.dropFirst(6)), shown)
        }
        XCTAssertEqual(p.http?.description, "proxy.corp:3128")
        XCTAssertTrue(p.secrets.contains("p@ss:w0rd"))
        XCTAssertTrue(p.secrets.contains(String(c.authorization.dropFirst(6))))
        // A proxy URL that is refused names the variable, and not the password.
        XCTAssertThrowsError(try ProxySettings(environment: ["HTTPS_PROXY": "https://alice:zz-hunter2@proxy:8443"])) {
            e in
            let message = "\(e)"
            XCTAssertTrue(message.contains("HTTPS_PROXY: a proxy reached over https is not supported"), message)
            XCTAssertFalse(message.contains("hunter2"), message)
        }
    }

    /// A transport whose http:// requests go through `proxy` (the test server acting as one).
    func transport(_ proxy: TestHTTPServer, credentials: ProxySettings.Credentials? = nil, readTimeout: Double = 5)
        -> AsyncHTTPClientTransport
    {
        let server = ProxySettings.Server(host: "127.0.0.1", port: proxy.port, credentials: credentials)
        return AsyncHTTPClientTransport(
            connectTimeout: 2, readTimeout: readTimeout, proxy: ProxySettings(http: server, https: server))
    }

    func testHTTPUpstreamsAreSentInAbsoluteFormAndStreamed() async throws {
        let proxy = try await startServer()
        let credentials = ProxySettings.Credentials(user: "alice", password: "s3cret")
        let pieces = ["one ", "two ", "three ", "four"]
        proxy.enqueue(.sse(dataLines: OpenAIFixture.textStream(pieces), delayMs: 150))
        let c = QueryClient(
            baseURL: "http://api.upstream.invalid:8080/v1", defaultModel: "m",
            transport: transport(proxy, credentials: credentials), clock: TestClock())
        let start = Date()
        var firstText: TimeInterval?
        var text = ""
        for try await e in c.stream(messages: [.user("hi")]) {
            if case .text(let t) = e {
                firstText = firstText ?? Date().timeIntervalSince(start)
                text += t
            }
        }
        XCTAssertEqual(text, pieces.joined())
        let total = Date().timeIntervalSince(start)
        XCTAssertLessThan(try XCTUnwrap(firstText), total - 0.3, "the first piece is shown before the last arrives")
        let r = try XCTUnwrap(proxy.requests.first)
        XCTAssertEqual(r.method, "POST")
        XCTAssertEqual(r.uri, "http://api.upstream.invalid:8080/v1/chat/completions")
        XCTAssertEqual(r.header("host"), "api.upstream.invalid:8080")
        XCTAssertEqual(r.header("proxy-authorization"), credentials.authorization)
        XCTAssertEqual(r.json?["messages"]?.arrayValue?.first?["content"], "hi")
        XCTAssertEqual(proxy.requests.count, 1)
    }

    func testAnUnstreamedReplyAndAQueryStringComeThroughWhole() async throws {
        let proxy = try await startServer()
        proxy.enqueue(.json(200, ["ok": true]))
        let request = HTTPRequest(
            method: "GET", url: "http://api.upstream.invalid/v1/models?limit=2",
            headers: ["Accept": "application/json"],
            body: [])
        let response = try await transport(proxy).send(request, logger: .init(label: "test"))
        XCTAssertEqual(response.status, 200)
        let body = try await response.body.collect()
        XCTAssertEqual(try JSONValue.parse(body), ["ok": true])
        let r = try XCTUnwrap(proxy.requests.first)
        XCTAssertEqual(r.uri, "http://api.upstream.invalid/v1/models?limit=2")
        XCTAssertEqual(r.header("host"), "api.upstream.invalid")
        XCTAssertNil(r.header("proxy-authorization"), "no credentials, no header")
    }

    func testAProxyAskingForCredentialsIsOneLineAndNotRetried() async throws {
        let proxy = try await startServer()
        proxy.enqueue(.body(407, "<html>who are you?</html>", contentType: "text/html"))
        let c = QueryClient(
            baseURL: "http://api.upstream.invalid/v1", defaultModel: "m", transport: transport(proxy),
            retryPolicy: RetryPolicy(maxAttempts: 3), clock: TestClock())
        await assertThrowsQueryError(try await c.query(system: nil, user: "x")) { e in
            guard case .transport(.proxyRefused, let m) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("the proxy 127.0.0.1:\(proxy.port) asks for credentials"), m)
            XCTAssertTrue(m.contains("http://user:password@"), m)
        }
        XCTAssertEqual(proxy.requests.count, 1)
    }

    func testAStalledProxyEndsAtTheReadTimeout() async throws {
        let proxy = try await startServer()
        proxy.enqueue(.sse(dataLines: ["{}"], endWith: [.stall]))
        let request = HTTPRequest(url: "http://api.upstream.invalid/v1/chat/completions", headers: [:], body: [1])
        let response = try await transport(proxy, readTimeout: 0.5).send(request, logger: .init(label: "test"))
        let start = Date()
        do {
            _ = try await response.body.collect()
            XCTFail("a stalled body must fail")
        } catch let e as TransportError {
            XCTAssertEqual(e.kind, .readTimeout)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
    }

    func testAnUnreachableProxyIsNamed() async throws {
        let gone = try await TestHTTPServer.start()
        gone.stop()
        let request = HTTPRequest(url: "http://api.upstream.invalid/v1/chat/completions", headers: [:], body: [1])
        do {
            _ = try await transport(gone).send(request, logger: .init(label: "test"))
            XCTFail("nothing listens there")
        } catch let e as TransportError {
            XCTAssertEqual(e.kind, .connectFailed)
            XCTAssertTrue(e.message.hasPrefix("cannot connect to the proxy 127.0.0.1:\(gone.port)"), e.message)
        }
    }

    func testHTTPSUpstreamsTunnelWithCredentials() async throws {
        let proxy = try await startServer()
        let credentials = ProxySettings.Credentials(user: "bob", password: "tunnel-pw")
        proxy.enqueue(.body(407, "no", contentType: "text/plain"))
        let request = HTTPRequest(url: "https://api.upstream.invalid/v1/chat/completions", headers: [:], body: [1])
        do {
            _ = try await transport(proxy, credentials: credentials).send(request, logger: .init(label: "test"))
            XCTFail("the proxy refused")
        } catch let e as TransportError {
            XCTAssertEqual(e.kind, .proxyRefused)
            XCTAssertTrue(e.message.contains("refused the user and password"), e.message)
            XCTAssertFalse(e.message.contains("tunnel-pw"), e.message)
        }
        let r = try XCTUnwrap(proxy.requests.first)
        XCTAssertEqual("\(r.method) \(r.uri)", "CONNECT api.upstream.invalid:443")
        XCTAssertEqual(r.header("proxy-authorization"), credentials.authorization)
        proxy.enqueue(.body(403, "not that port", contentType: "text/plain"))
        let other = HTTPRequest(url: "https://api.upstream.invalid:8443/v1/chat/completions", headers: [:], body: [1])
        do {
            _ = try await transport(proxy).send(other, logger: .init(label: "test"))
            XCTFail("the proxy refused")
        } catch let e as TransportError {
            XCTAssertEqual(e.kind, .proxyRefused)
            XCTAssertTrue(
                e.message.contains("refused to open a tunnel (CONNECT) to api.upstream.invalid:8443"), e.message)
        }
    }
}
