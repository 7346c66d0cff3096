/// One argument of a command, for `:help CMD`: how it is written and what it does.
public struct CommandArgument: Sendable, Equatable {
    public var form: String
    public var about: String
}

extension CommandParser {
    /// The arguments of each command that takes any, by command name, for `:help CMD`.
    public static func arguments(of name: String) -> [CommandArgument] {
        argumentTable[name]?.map { CommandArgument(form: $0.0, about: $0.1) } ?? []
    }

    private static let argumentTable: [String: [(String, String)]] = [
        "help": [("command", "a command's name, with or without its colon")],
        "system": [
            ("text", "the system prompt itself ({{NAME}} fills in a :var)"), ("@file", "read it from a text file"),
            ("off", "send no system prompt"),
        ],
        "set": [
            ("key", "a sampling option: temperature, top_p, max_tokens, seed, stop, … or max_tool_rounds"),
            ("value", "a number, true/false, null (not sent), a JSON array or object, or text"),
        ],
        "unset": [("key", "an option set with :set")],
        "model": [("name", "the model asked for; claude-* also switches to the Anthropic provider")],
        "func": [("file", "a FunctionSpec (JSON or YAML) the reply must call"), ("off", "stop forcing it")],
        "tool": [
            ("FILE", "tools in JSON or YAML: one or a list, in AIDE, OpenAI or Anthropic shape"),
            ("rm NAME", "drop the tool NAME"), ("off", "drop every tool"),
        ],
        "choice": [
            ("auto", "the model decides"), ("none", "no tool may be called"), ("required", "some tool must be called"),
            ("NAME", "the tool NAME must be called"),
        ],
        "mock": [
            ("FILE", "tool name → result, or a list of results taken in turn ({{args.NAME}} fills in an argument)"),
            ("off", "ask for each result again"),
        ],
        "schema": [("FILE", "a JSON Schema the reply must match"), ("off", "plain replies again")],
        "var": [
            ("NAME", "letters, digits, _ - and ., not starting with a digit; alone, shows the value"),
            ("VALUE", "the text {{NAME}} stands for"), ("@file", "read the value from a file"),
            ("rm NAME", "drop it"),
        ],
        "fork": [("name", "the new branch's name (default b1, b2, …)")],
        "switch": [("name", "a branch :branches lists")],
        "func-via": [
            ("auto", "json-schema on llama.cpp, tools elsewhere"), ("tools", "one tool and tool_choice required"),
            ("named", "tool_choice naming the function"), ("json-schema", "the parameters as response_format"),
        ],
        "mode": [("chat", "each turn carries the conversation"), ("single", "each turn sends system + its prompt")],
        "provider": [
            ("openai", "Chat Completions"), ("openai-responses", "the Responses API"),
            ("anthropic", "Anthropic Messages"),
        ],
        "save": [("path", "where to write the transcript (JSONL); :save! overwrites a file there")],
        "load": [("path", "a transcript written by :save or autosaved (:sessions lists them)")],
        "export": [("path.md", "where to write the Markdown; :export! overwrites a file there")],
        "request": [
            ("curl", "a curl command, the key as $OPENAI_API_KEY (the default)"), ("json", "the request body"),
            ("swift", "the QueryCore call that sends it"),
        ],
        "compare": [
            ("key=v1,v2", "a setting and its values: model, provider, or any :set key; one run per combination"),
            ("-- prompt", "the prompt to run (default: the last one)"),
        ],
        "batch": [
            ("FILE", "JSONL or CSV rows; each row's fields are variables for the template"),
            ("remote", "send it through OpenAI's Batch API instead of from here"),
            ("concurrency=N", "requests at a time from here, 1 to 64 (default 4)"),
            ("out=PATH", "the results file (JSONL; default: beside the sessions)"),
            ("repeat=N", "send each row N times, 1 to 100: pass@N and stability in the summary"),
            ("poll=SECONDS", "with remote: time between checks (default 15)"),
            ("key=v1,v2", "run every row once per value (model, provider or a :set key)"),
            ("-- template", "the prompt template (default: the last prompt as typed)"),
            ("resume ID", "wait for a remote batch sent earlier and collect its results"),
            ("cancel ID", "stop a remote batch at the provider"),
        ],
        "eval": [
            ("FILE", "an eval file (YAML or JSON): prompts, providers, tests with assertions, threshold"),
            ("report=OUT.html", "also write the run as one HTML page"),
            ("diff OLD NEW", "compare two results files instead of running"),
        ],
        "set-view": [("reasoning on | off", "show the reasoning dimmed before the answer, or only count it")],
        "set-editor": [("emacs | vi", "the line-editing keys")],
    ]
}
