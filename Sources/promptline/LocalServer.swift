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
        if let model, model.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            // The script records the path as a line of its state file: a newline would add a line.
            throw Failure(
                description: "--local-model: the path holds a newline or a control character; rename the file")
        }
        if let model, let s = running(), s.file == model { return s }
        guard let script = findScript() else {
            throw Failure(
                description:
                    "cannot find the local server's script: set PROMPTLINE_LOCAL_LLM to the path of a checkout's scripts/local-llm (scripts/run and scripts/install set it)"
            )
        }
        var env = scriptEnvironment()
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

    /// The script to run: `PROMPTLINE_LOCAL_LLM` (scripts/run and the wrapper scripts/install
    /// writes set it), else `local-llm` in the binary's own folder. Never a folder above: a
    /// script planted in a parent of wherever the binary was copied (`/tmp/scripts/local-llm`
    /// for `/tmp/x/promptline`) would run as whoever runs promptline.
    static func findScript(
        environment: [String: String] = ProcessInfo.processInfo.environment, binary: String = CommandLine.arguments[0]
    ) -> String? {
        if let p = environment["PROMPTLINE_LOCAL_LLM"], !p.isEmpty {
            return FileManager.default.isExecutableFile(atPath: p) ? p : nil
        }
        let dir = URL(fileURLWithPath: binary).resolvingSymlinksInPath().deletingLastPathComponent()
        let beside = dir.appendingPathComponent("local-llm").path
        return FileManager.default.isExecutableFile(atPath: beside) ? beside : nil
    }

    /// The script's environment: ours without any `*_API_KEY` (the script and the server it
    /// starts need no provider's key), except `LOCAL_LLM_API_KEY`, the local server's own.
    static func scriptEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> [String:
        String]
    {
        environment.filter { !$0.key.hasSuffix("_API_KEY") || $0.key == "LOCAL_LLM_API_KEY" }
    }
}
