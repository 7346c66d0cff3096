import Foundation
import PromptSession

/// The local llama.cpp server managed by scripts/local-llm.
enum LocalServer {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// What scripts/local-llm wrote about the server it started.
    struct State {
        var url: String
        var model: String
        var file: String
        var contextSize: Int?
    }

    static var stateFile: String {
        let env = ProcessInfo.processInfo.environment
        let cache = env["PROMPTLINE_CACHE"] ?? XDG.home(environment: env) + "/.cache/promptline"
        return cache + "/run/local-llm.env"
    }

    /// The running server, started (or restarted with another model) by scripts/local-llm.
    /// - Parameter model: a GGUF path to serve instead of the default model.
    static func start(model: String?) throws -> State {
        // Without a model the script decides (it knows the default, and restarts a server that
        // serves another one); it answers at once when the right server is already up.
        if let model, let s = running(), s.file == model { return s }
        guard let script = findScript() else {
            throw Failure(
                description:
                    "cannot find scripts/local-llm to start the local server; set PROMPTLINE_LOCAL_LLM to its path")
        }
        var env = ProcessInfo.processInfo.environment
        env["LOCAL_LLM_MODEL"] = model
        let status = try runScript(["/bin/bash", script, "start"], environment: env)
        guard status == 0, let s = running() else {
            throw Failure(description: "the local server did not start (exit \(status)); see the lines above")
        }
        return s
    }

    /// Runs `argv` with stdin and stdout on /dev/null (its stderr is ours: the script's progress
    /// lines) and waits for it. posix_spawn and waitpid rather than Foundation's Process, whose
    /// waitUntilExit never returned here once the script had left llama-server running in the
    /// background (the script exited, and stayed a zombie nobody reaped).
    static func runScript(_ argv: [String], environment: [String: String]) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let args = argv.map { strdup($0) } + [nil]
        let env = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in args + env { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, args, env)
        guard rc == 0 else { throw Failure(description: "cannot run \(argv[1]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else {
                throw Failure(description: "waiting for \(argv[1]): \(String(cString: strerror(errno)))")
            }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import: low 7 bits 0 means it exited.
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    static func running() -> State? {
        guard let text = try? String(contentsOfFile: stateFile, encoding: .utf8) else { return nil }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if let eq = line.firstIndex(of: "=") {
                values[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
        }
        guard let url = values["URL"], let pid = values["PID"].flatMap({ pid_t($0) }), kill(pid, 0) == 0 else {
            return nil
        }
        return State(
            url: url, model: values["MODEL"] ?? "local", file: values["MODEL_PATH"] ?? "?",
            contextSize: values["CTX_SIZE"].flatMap { Int($0) })
    }

    static func findScript() -> String? {
        if let p = ProcessInfo.processInfo.environment["PROMPTLINE_LOCAL_LLM"],
            FileManager.default.isExecutableFile(atPath: p)
        {
            return p
        }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("scripts/local-llm").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}
