import Foundation

/// Removes secrets from text that came from outside (a server's error body, headers, a transcript
/// file) before it is shown or recorded. The one place promptline redacts: ``QueryError``,
/// transcripts and URLs all go through it.
///
/// A secret is replaced wherever it occurs, and so is any run of at least
/// ``minimumPrefix`` characters that starts like it (a key cut short by a server or by
/// truncation still gives most of itself away). Redact first, then shorten: never the reverse.
public struct Redactor: Sendable, Equatable {
    public static let placeholder = "[redacted]"
    /// The shortest beginning of a secret that is treated as the secret.
    public static let minimumPrefix = 12

    /// Longest first, so a key that contains another is replaced whole.
    public let secrets: [String]

    /// Secrets shorter than 4 characters are ignored (they would match ordinary text).
    public init(_ secrets: [String?]) {
        self.secrets = Array(Set(secrets.compactMap { $0 }.filter { $0.count >= 4 })).sorted {
            $0.count != $1.count ? $0.count > $1.count : $0 < $1
        }
    }

    public static let none = Redactor([])

    public var isEmpty: Bool { secrets.isEmpty }

    /// `s` with every secret, and every ≥ 12-character beginning of one, replaced by `[redacted]`.
    public func redact(_ s: String) -> String {
        guard !secrets.isEmpty, !s.isEmpty else { return s }
        var bytes = Array(s.utf8)
        var changed = false
        for secret in secrets {
            let key = Array(secret.utf8)
            let needle = key.count < Self.minimumPrefix ? key.count : Self.minimumPrefix
            var out: [UInt8] = []
            var i = 0
            var hit = false
            while i < bytes.count {
                if bytes[i] == key[0], i + needle <= bytes.count, bytes[i..<(i + needle)].elementsEqual(key[0..<needle])
                {
                    var n = needle
                    while n < key.count, i + n < bytes.count, bytes[i + n] == key[n] { n += 1 }
                    out.append(contentsOf: Self.placeholder.utf8)
                    i += n
                    hit = true
                } else {
                    out.append(bytes[i])
                    i += 1
                }
            }
            if hit {
                bytes = out
                changed = true
            }
        }
        return changed ? String(decoding: bytes, as: UTF8.self) : s
    }

    /// `v` with every string in it, at any depth, keys included, redacted: the one rule for what
    /// promptline writes to a file (a journal line, a results line, a batch record).
    public func redact(_ v: JSONValue) -> JSONValue {
        isEmpty ? v : v.mapStrings(redact)
    }

    /// One line of a JSON Lines file: `v` redacted, serialized, and a newline.
    public func line(_ v: JSONValue) -> [UInt8] {
        Array((redact(v).serialized() + "\n").utf8)
    }

    /// The same rule with `more` secrets besides these.
    public func adding(_ more: [String]) -> Redactor {
        more.isEmpty ? self : Redactor(secrets + more)
    }

    /// The values of every `*_API_KEY` variable in `environment`: a key of another provider
    /// pasted into a `--var` or echoed by a server is as secret as the one in use; and the
    /// credentials in `HTTP_PROXY` / `HTTPS_PROXY`.
    public static func environmentKeys(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> [String]
    {
        let proxySecrets = ((try? ProxySettings(environment: environment)) ?? nil)?.secrets ?? []
        return environment.filter { $0.key.hasSuffix("_API_KEY") && $0.value.count >= 4 }.map(\.value) + proxySecrets
    }

    /// A URL with the `user:password@` part replaced: `https://[redacted]@host/v1`.
    public static func url(_ s: String) -> String {
        guard let userinfo = userinfoRange(s) else { return s }
        return s.replacingCharacters(in: userinfo, with: placeholder)
    }

    /// The credentials a URL carries (`user:password`, and the password alone), to add to a
    /// ``Redactor``'s secrets so an echo of them is caught too.
    public static func credentials(inURL s: String) -> [String] {
        guard let r = userinfoRange(s) else { return [] }
        let info = String(s[r])
        var out = [info]
        if let colon = info.firstIndex(of: ":") { out.append(String(info[info.index(after: colon)...])) }
        return Array(Set(out + out.map(\.removingPercentEncodingIfPossible)))
    }

    /// The range of `user:password` in `scheme://user:password@host…`, if any.
    static func userinfoRange(_ s: String) -> Range<String.Index>? {
        guard let scheme = s.range(of: "://") else { return nil }
        let rest = s[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return nil }
        return scheme.upperBound..<at
    }
}

extension String {
    fileprivate var removingPercentEncodingIfPossible: String {
        var bytes: [UInt8] = []
        var u = Array(utf8)[...]
        while let b = u.popFirst() {
            if b == UInt8(ascii: "%"), u.count >= 2,
                let v = UInt8(String(decoding: u.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(v)
                u = u.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
