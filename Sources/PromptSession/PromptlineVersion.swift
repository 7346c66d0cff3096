/// promptline's version: in `--version`, the `User-Agent` and every transcript.
public enum PromptlineVersion {
    public static let current = "0.1.0"
}
