import Foundation

/// Which proxy a request goes through: one for http URLs, one for https URLs, and the hosts
/// reached directly — what `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` say, by the usual rules
/// (``init(environment:)``; the core reads no environment itself).
///
/// A request for an `http://` URL is sent to the proxy whole (`POST http://host/path HTTP/1.1`,
/// as curl, Python and Go do); one for an `https://` URL goes through a `CONNECT` tunnel. Either
/// way the proxy's credentials, if any, go in `Proxy-Authorization`, and never in what is printed.
public struct ProxySettings: Sendable, Equatable {
    public struct Server: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        /// The user and password from the proxy URL, percent-decoded; nil when it has none.
        public var credentials: Credentials?

        public init(host: String, port: Int, credentials: Credentials? = nil) {
            (self.host, self.port, self.credentials) = (host, port, credentials)
        }

        /// `host:port`, brackets around an IPv6 address: how the proxy is named in messages
        /// (never with its credentials).
        public var description: String {
            (host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host) + ":\(port)"
        }
    }

    /// A proxy's user and password. Its descriptions and mirror never show the password, so a
    /// settings value printed or dumped by mistake keeps it.
    public struct Credentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
        CustomReflectable
    {
        public var user: String
        public var password: String
        public init(user: String, password: String) { (self.user, self.password) = (user, password) }

        /// The `Proxy-Authorization` value: `Basic` and base64 of `user:password`.
        public var authorization: String { "Basic " + Data("\(user):\(password)".utf8).base64EncodedString() }

        public var description: String { "\(user):[redacted]" }
        public var debugDescription: String { description }
        public var customMirror: Mirror { Mirror(self, children: ["user": user, "password": Redactor.placeholder]) }
    }

    public var http: Server?
    public var https: Server?
    /// Host names (a leading `.` or none: the domain and its subdomains), IP addresses, or `*`.
    public var noProxy: [String]

    public init(http: Server? = nil, https: Server? = nil, noProxy: [String] = []) {
        (self.http, self.https, self.noProxy) = (http, https, noProxy)
    }

    /// From `HTTP_PROXY`/`http_proxy`, `HTTPS_PROXY`/`https_proxy` and `NO_PROXY`/`no_proxy`
    /// (`http://[user:password@]host:port`, or without `http://`); nil when neither proxy is set.
    /// - Throws: ``QueryError/invalidRequest(_:)`` naming a variable that is not a proxy URL (its
    ///   password left out).
    public init?(environment env: [String: String]) throws(QueryError) {
        func value(_ name: String) -> String? {
            (env[name] ?? env[name.lowercased()]).flatMap { $0.isEmpty ? nil : $0 }
        }
        func server(_ name: String) throws(QueryError) -> Server? {
            guard let v = value(name) else { return nil }
            let text = v.contains("://") ? v : "http://" + v
            guard let server = Self.parse(text) else {
                if URLComponents(string: text)?.scheme?.lowercased() == "https" {
                    throw QueryError.invalidRequest(
                        "\(name): a proxy reached over https is not supported, give it as http://host:port (what goes "
                            + "to an https server through it stays encrypted), not " + Redactor.url(text))
                }
                throw QueryError.invalidRequest(
                    "\(name) must be a proxy URL like http://host:port or http://user:password@host:port, not "
                        + Redactor.url(text))
            }
            return server
        }
        let http = try server("HTTP_PROXY")
        let https = try server("HTTPS_PROXY")
        guard http != nil || https != nil else { return nil }
        let noProxy = (value("NO_PROXY") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        self.init(http: http, https: https, noProxy: noProxy.filter { !$0.isEmpty })
    }

    /// An `http://` proxy URL, or nil. Only plain http: the connection to the proxy itself is
    /// not encrypted (what is sent to an https server through it is).
    static func parse(_ text: String) -> Server? {
        guard let u = URLComponents(string: text), let host = u.host, !host.isEmpty, u.scheme?.lowercased() == "http"
        else { return nil }
        var credentials: Credentials?
        if let user = u.user {
            credentials = Credentials(user: user, password: u.password ?? "")
        }
        return Server(host: host, port: u.port ?? 80, credentials: credentials)
    }

    /// What of the proxies' credentials must never be shown, for a ``Redactor``: each password,
    /// each `user:password`, and each `Proxy-Authorization` value.
    public var secrets: [String] {
        [http, https].compactMap { $0?.credentials }.flatMap { c in
            [c.password, "\(c.user):\(c.password)", String(c.authorization.dropFirst("Basic ".count))]
        }
    }

    /// The proxy for `url`, or nil when it is reached directly (NO_PROXY, and this machine: a
    /// local server is never reached through a proxy).
    public func server(for url: String) -> Server? {
        guard let u = URLComponents(string: url), let host = u.host?.lowercased(), !QueryClient.isLoopback(host: host)
        else { return nil }
        let proxy = u.scheme == "https" ? https : http
        guard let proxy, !bypasses(host) else { return nil }
        return proxy
    }

    func bypasses(_ host: String) -> Bool {
        noProxy.contains { entry in
            var e = entry.lowercased()
            if e == "*" { return true }
            if let colon = e.lastIndex(of: ":"), !e.contains("]"), e.filter({ $0 == ":" }).count == 1 {
                e = String(e[..<colon])  // a port in NO_PROXY: the host decides
            }
            if e.hasPrefix(".") { e.removeFirst() }
            return host == e || host.hasSuffix("." + e)
        }
    }
}
