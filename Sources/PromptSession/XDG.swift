import Foundation

/// XDG base directories: the one place promptline resolves `$XDG_*_HOME` (an unset or relative
/// value falls back to the default under the home folder, as the specification says).
public enum XDG {
    public static func directory(
        _ variable: String, default fallback: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if let v = environment[variable], v.hasPrefix("/") { return v }
        return NSHomeDirectory() + "/" + fallback
    }
}
