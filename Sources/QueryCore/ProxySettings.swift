import Foundation

/// Which proxy a request goes through: one for http URLs, one for https URLs, and the hosts
/// reached directly — what `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` say, by the usual rules
/// (``init(environment:)``; the core reads no environment itself).
public struct ProxySettings: Sendable, Equatable {
    public struct Server: Sendable, Hashable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) { (self.host, self.port) = (host, port) }
    }

    public var http: Server?
    public var https: Server?
    /// Host names (a leading `.` or none: the domain and its subdomains), IP addresses, or `*`.
    public var noProxy: [String]

    public init(http: Server? = nil, https: Server? = nil, noProxy: [String] = []) {
        (self.http, self.https, self.noProxy) = (http, https, noProxy)
    }

    /// From `HTTP_PROXY`/`http_proxy`, `HTTPS_PROXY`/`https_proxy` and `NO_PROXY`/`no_proxy`
    /// (`http://host:port`, or `host:port`); nil when neither proxy is set.
    /// - Throws: ``QueryError/invalidRequest(_:)`` naming a variable that is not a proxy URL.
    public init?(environment env: [String: String]) throws(QueryError) {
        func value(_ name: String) -> String? {
            (env[name] ?? env[name.lowercased()]).flatMap { $0.isEmpty ? nil : $0 }
        }
        func server(_ name: String) throws(QueryError) -> Server? {
            guard let v = value(name) else { return nil }
            let text = v.contains("://") ? v : "http://" + v
            guard let u = URLComponents(string: text), let host = u.host, !host.isEmpty, u.scheme == "http" else {
                throw QueryError.invalidRequest("\(name) must be a proxy URL like http://host:port, not \(v)")
            }
            return Server(host: host, port: u.port ?? 80)
        }
        let http = try server("HTTP_PROXY")
        let https = try server("HTTPS_PROXY")
        guard http != nil || https != nil else { return nil }
        let noProxy = (value("NO_PROXY") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        self.init(http: http, https: https, noProxy: noProxy.filter { !$0.isEmpty })
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
