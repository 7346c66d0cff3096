import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// XDG base directories: the one place promptline resolves `$XDG_*_HOME` (an unset or relative
/// value falls back to the default under the home folder, as the specification says).
public enum XDG {
    public static func directory(
        _ variable: String, default fallback: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if let v = environment[variable], v.hasPrefix("/") { return v }
        return home(environment: environment) + "/" + fallback
    }

    /// The home folder: `$HOME` when set to an absolute path, else the passwd entry's, as a shell
    /// does (Foundation's `NSHomeDirectory()` on Linux ignores `$HOME`, so a sandboxed run or a
    /// test that sets only `HOME` would write into the real home).
    public static func home(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let h = environment["HOME"], h.hasPrefix("/") {
            return h.count > 1 && h.hasSuffix("/") ? String(h.dropLast()) : h
        }
        if let pw = getpwuid(getuid()), let dir = pw.pointee.pw_dir {
            let d = String(cString: dir)
            if !d.isEmpty { return d }
        }
        return NSHomeDirectory()
    }

    /// `path` with a leading `~` or `~/` replaced by the home folder; any other path unchanged.
    public static func expandTilde(
        _ path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if path == "~" || path.hasPrefix("~/") { return home(environment: environment) + path.dropFirst() }
        return path
    }
}
