import Foundation
import QueryCore
import TestHTTPServer
import XCTest

/// HTTP_PROXY / HTTPS_PROXY / NO_PROXY: requests go through the proxy for their scheme, hosts in
/// NO_PROXY and this machine directly. The proxy here is the test server, which records the
/// absolute-form request a proxy receives and answers it itself.
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
        XCTAssertThrowsError(try ProxySettings(environment: ["HTTPS_PROXY": "socks5://x:1"]))
    }
}
