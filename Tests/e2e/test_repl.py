"""The promptline REPL end to end: the built binary in a pseudo-terminal against the scriptable
test server."""
import glob
import json
import os
import re
import stat
import time

import pexpect

from conftest import KEY, read_transcript, run_piped, session_files, spawn

PROMPT = "› "


def start(bin_dir, server, home, *extra, key=None):
    env = dict(home)
    if key:
        env["OPENAI_API_KEY"] = key
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model", *extra], env)
    child.expect_exact(PROMPT)
    return child


def chunk(delta, finish=None):
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def usage(p, c):
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                       "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}})


def test_prompt_streams_text_and_status_line(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.sendline("hello there")
    child.expect_exact("echo: hello there")
    child.expect(r"echo-model · [0-9.]+ s · ttft [0-9.]+ s · tokens \d+ in / 3 out · 0 retries")
    child.expect_exact(PROMPT)
    body = server.bodies()[-1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "hello there"}]
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_set_changes_the_request_and_bad_values_keep_the_old_one(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.sendline(":set temperature 0.3")
    child.expect_exact("temperature = 0.3")
    child.sendline(":set temperature 5")
    child.expect_exact("temperature must be a number from 0 to 2")
    child.sendline(":set top_k 40")
    child.expect_exact("top_k = 40")
    child.sendline(":set mirostat 2")
    child.expect_exact("mirostat is not a key promptline knows; it is sent unchecked")
    child.sendline(":set stop [\"END\"]")
    child.sendline(":set max_tokens null")
    child.expect_exact("not sent")
    child.sendline("hi")
    child.expect_exact("echo: hi")
    child.expect_exact(PROMPT)
    body = server.bodies()[-1]
    assert body["temperature"] == 0.3
    assert body["top_k"] == 40
    assert body["mirostat"] == 2
    assert body["stop"] == ["END"]
    assert "max_tokens" not in body
    child.sendline(":set")
    child.expect(r"temperature\s+0\.3")
    child.sendline(":quit")


def test_func_forces_a_call_and_shows_parsed_arguments(bin_dir, server, home, tmp_path):
    spec = tmp_path / "review.yaml"
    spec.write_text("name: submit_review\ndescription: Submit\nparameters:\n  type: object\n  properties:\n"
                    "    score: {type: integer}\n    summary: {type: string}\n  required: [score, summary]\n")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "parameters": {"type": "object", "required": ["nope"]}}')
    child = start(bin_dir, server, home)
    child.sendline(f":func {spec}")
    child.expect_exact("function submit_review loaded")
    child.sendline(f":func {bad}")
    child.expect_exact("parameters.required[0]")
    child.expect_exact("(submit_review) stays")
    child.sendline("review this")
    child.expect_exact("→ submit_review")
    child.expect_exact('"score": 42')
    child.expect_exact('"summary": "sample"')
    child.expect_exact(PROMPT)
    body = server.bodies()[-1]
    assert body["tool_choice"] == "required"
    assert body["tools"][0]["function"]["name"] == "submit_review"
    # The model answers with text instead: shown as it streamed, then one clear line (the text
    # is not repeated in it).
    server.enqueue({"sse": [chunk({"content": "I refuse"}), chunk({}, "stop"), "[DONE]"]})
    child.sendline("again")
    child.expect_exact("I refuse")
    child.expect_exact("did not call submit_review; it answered with the text above")
    assert "I refuse" not in child.before
    child.expect_exact(PROMPT)
    child.sendline(":quit")


def test_stats_equal_the_sum_of_the_usage_the_server_sent(bin_dir, server, home):
    server.enqueue(
        {"sse": [chunk({"content": "one"}), chunk({}, "stop"), usage(11, 3), "[DONE]"]},
        {"sse": [chunk({"content": "two"}), chunk({}, "stop"), usage(7, 2), "[DONE]"]},
        {"status": 429, "headers": {"retry-after": "0.1"}, "json": {"error": {"message": "slow"}}},
        {"sse": [chunk({"content": "three"}), chunk({}, "stop"), usage(5, 1), "[DONE]"]},
    )
    child = start(bin_dir, server, home)
    for word in ["one", "two", "three"]:
        child.sendline(f"say {word}")
        child.expect_exact(word)
        child.expect_exact(PROMPT)
    child.sendline(":stats")
    child.expect_exact("turns 3   requests 4   retries 1   errors 0")
    child.expect_exact("tokens in 23   out 6   total 29")
    child.expect(r"latency total [0-9.]+ s   mean [0-9.]+ s   p50 [0-9.]+ s   p95 [0-9.]+ s   max")
    child.expect_exact("last turn")
    child.expect_exact("tokens in 5   out 1")
    child.sendline(":quit")


def test_retry_line_is_shown(bin_dir, server, home):
    server.enqueue({"status": 503, "headers": {"retry-after": "1"}, "json": {"error": {"message": "busy"}}})
    child = start(bin_dir, server, home)
    child.sendline("hi")
    child.expect(r"retrying in 1\.0 s \(503 service unavailable, attempt 2/6\)")
    child.expect_exact("echo: hi")
    child.sendline(":quit")


def test_ctrl_c_mid_stream_cancels_fast_and_the_next_turn_works(bin_dir, server, home):
    pieces = [chunk({"content": f"tok{i} "}) for i in range(100)]
    server.enqueue({"sse": pieces + [chunk({}, "stop"), "[DONE]"], "delay_ms": 200})
    child = start(bin_dir, server, home)
    child.sendline("stream slowly")
    child.expect_exact("tok1 ")
    t0 = time.monotonic()
    child.sendintr()
    child.expect_exact("cancelled")
    assert time.monotonic() - t0 < 1.0
    child.expect_exact(PROMPT)
    child.sendline("next")
    child.expect_exact("echo: next")
    child.expect_exact(PROMPT)
    # The cancelled exchange is not in the conversation.
    assert server.bodies()[-1]["messages"] == [{"role": "user", "content": "next"}]
    child.sendline(":stats")
    child.expect_exact("cancelled 1")
    child.sendline(":quit")


def test_ctrl_c_at_the_prompt_hints_then_twice_leaves(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.sendintr()
    child.expect_exact("Ctrl-C again or Ctrl-D to quit")
    child.expect_exact(PROMPT)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_d_leaves(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.sendeof()
    child.expect(pexpect.EOF)


def test_history_persists_across_runs_with_mode_0600(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.sendline("remember this line")
    child.expect_exact("echo: remember this line")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    hist = os.path.join(home["XDG_STATE_HOME"], "promptline", "history")
    assert stat.S_IMODE(os.stat(hist).st_mode) == 0o600
    child = start(bin_dir, server, home)
    child.send("\x1b[A")  # up arrow
    child.send("\r")
    child.expect_exact(":quit")  # the last entry first
    child.expect(pexpect.EOF)
    child = start(bin_dir, server, home)
    child.send("\x1b[A\x1b[A\r")
    child.expect_exact("echo: remember this line")
    child.sendline(":quit")


def test_tab_completes_commands(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.send(":st\t")
    child.send("\r")
    child.expect_exact("turns 0")
    child.send(":set temp\t0.5\r")
    child.expect_exact("temperature = 0.5")
    child.sendline(":quit")


def test_utf8_prompt_arrives_intact(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.sendline("héllo 🌍 wörld")
    child.expect_exact("echo: héllo 🌍 wörld")
    child.expect_exact(PROMPT)
    assert server.bodies()[-1]["messages"][-1]["content"] == "héllo 🌍 wörld"
    child.sendline(":quit")


def test_multiline_block_and_bracketed_paste_are_one_prompt(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.sendline('"""')
    child.sendline("line one")
    child.sendline("line two")
    child.sendline('"""')
    child.expect_exact("echo: line one\r\nline two")
    child.expect_exact(PROMPT)
    assert server.bodies()[-1]["messages"][-1]["content"] == "line one\nline two"
    child.send("\x1b[200~pasted a\npasted b\x1b[201~")
    child.send("\r")
    child.expect_exact("pasted b")
    child.expect_exact(PROMPT)
    assert server.bodies()[-1]["messages"][-1]["content"] == "pasted a\npasted b"
    child.sendline(":quit")


def test_errors_are_one_clear_line_and_the_repl_goes_on(bin_dir, server, home):
    server.enqueue({"status": 401, "json": {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error", "code": "invalid_api_key"}}})
    server.enqueue({"status": 502, "body": "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "content_type": "text/html"})
    child = start(bin_dir, server, home, "--max-attempts", "1", key=KEY)
    child.sendline("hi")
    child.expect(r"HTTP 401 Unauthorized: Incorrect API key provided: \[redacted\].*check the API key")
    child.expect_exact(PROMPT)
    child.sendline("hi")
    child.expect_exact("HTTP 502 Bad Gateway: non-JSON body: 502 Bad Gateway")
    child.expect_exact(PROMPT)
    child.sendline("hi")
    child.expect_exact("echo: hi")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert KEY not in child.before


def test_unknown_command_and_help(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.sendline(":sytem hi")
    child.expect_exact("unknown command :sytem")
    child.sendline(":help")
    for c in [":system", ":set", ":func", ":mode", ":stats", ":quit"]:
        child.expect_exact(c)
    child.sendline(":help func")
    child.expect_exact("e.g. :func tools/review.yaml")
    child.expect_exact("arguments:")
    child.sendline("::literal colon")
    child.expect_exact("echo: :literal colon")
    child.sendline(":quit")


def test_no_color_and_piped_output_are_plain(bin_dir, server, home):
    env = dict(home, NO_COLOR="1")
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], env)
    child.expect_exact(PROMPT)
    child.sendline("hi")
    child.expect_exact(PROMPT)
    assert "\x1b[2m" not in child.before
    child.sendline(":quit")
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], home, "hi\n")
    assert "\x1b" not in r.stdout


def test_piped_stdin_is_scriptable_and_exit_status_reports_failures(bin_dir, server, home):
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], home, ":set temperature 0\nhello\n:stats\n")
    assert r.returncode == 0, r.stderr
    assert "temperature = 0" in r.stdout
    assert "echo: hello" in r.stdout
    assert "turns 1" in r.stdout
    server.enqueue({"status": 400, "json": {"error": {"message": "bad request here"}}})
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], home, "hello\nagain\n")
    assert r.returncode == 1
    assert "bad request here" in r.stderr
    assert "echo: again" in r.stdout


def test_hostile_escape_sequences_are_neutralised_on_a_tty(bin_dir, server, home):
    evil = "A\x1b]52;c;ZXZpbA==\x07B\x1b[2J\x1b]0;pwned\x07C\x07D"
    text = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": {"content": evil}, "finish_reason": None}]})
    server.enqueue({"sse": [text, chunk({}, "stop"), "[DONE]"], "chunk_size": 3})
    child = start(bin_dir, server, home)
    child.sendline("x")
    child.expect_exact("AB")
    child.expect_exact(PROMPT)
    seen = child.before
    assert "\x1b]52" not in seen and "\x1b[2J" not in seen and "pwned" not in seen
    assert "C^GD" in seen
    child.sendline(":quit")


def test_flags_system_set_func_mode(bin_dir, server, home, tmp_path):
    sysfile = tmp_path / "sys.txt"
    sysfile.write_text("You are a test.\n")
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m", "--system", f"@{sysfile}", "--set", "temperature=0.1",
                            "--mode", "single"], home, "first\nsecond\n")
    assert r.returncode == 0, r.stderr
    b = server.bodies()[-1]
    assert b["messages"] == [{"role": "system", "content": "You are a test."}, {"role": "user", "content": "second"}]
    assert b["temperature"] == 0.1
    r = run_piped(bin_dir, ["--set", "temperature=9", "--base-url", server.url + "/v1"], home, "")
    assert r.returncode != 0 and "temperature must be" in r.stderr
    r = run_piped(bin_dir, ["--version"], home, "")
    assert re.match(r"\d+\.\d+\.\d+", r.stdout.strip())


def test_anthropic_provider_end_to_end(bin_dir, server, home, tmp_path):
    spec = tmp_path / "tool.json"
    spec.write_text(json.dumps({"name": "grade", "description": "Grade", "input_schema": {"type": "object", "properties": {"grade": {"type": "string"}}, "required": ["grade"]}}))
    env = dict(home, ANTHROPIC_API_KEY="ant-e2e-key")
    child = spawn(bin_dir, ["--provider", "anthropic", "--base-url", server.url, "--model", "claude-test"], env)
    child.expect_exact("anthropic:claude-test")
    child.expect_exact(PROMPT)
    child.sendline(":system Be brief.")
    child.sendline("hello anthropic")
    child.expect_exact("echo: hello anthropic")
    child.expect_exact(PROMPT)
    req = server.requests()[-1]
    assert req["uri"] == "/v1/messages"
    assert req["headers"]["x-api-key"] == "ant-e2e-key"
    assert req["headers"]["anthropic-version"] == "2023-06-01"
    body = json.loads(req["body"])
    assert body["system"] == "Be brief." and body["max_tokens"] == 4096 and body["stream"] is True
    child.sendline(f":func {spec}")
    child.expect_exact("function grade loaded")
    child.sendline("grade it")
    child.expect_exact("→ grade")
    child.expect_exact('"grade": "sample"')
    child.expect_exact(PROMPT)
    body = server.bodies()[-1]
    assert body["tool_choice"] == {"type": "tool", "name": "grade"}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    child.sendline(":set seed 3")
    child.expect_exact("seed is OpenAI-only")
    child.sendline(":stats")
    child.expect_exact("turns 2   requests 2")
    child.sendline(":provider openai")
    child.expect_exact("provider openai")
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_claude_model_selects_anthropic(bin_dir, server, home):
    r = run_piped(bin_dir, ["--base-url", server.url, "--model", "claude-3-test"], home, "hi\n")
    assert r.returncode == 0, r.stderr
    assert server.requests()[-1]["uri"] == "/v1/messages"


def test_tab_completes_paths_and_models(bin_dir, server, home, tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "review.yaml").write_text("name: review\nparameters: {type: object}\n")
    child = start(bin_dir, server, home)
    child.send(f":func {tmp_path}/sp\t")
    child.send("rev\t\r")
    child.expect_exact("function review loaded")
    child.sendline(":model other-model")
    child.send(":model ech\t\r")
    child.expect_exact("model echo-model")
    child.sendline(":quit")


def test_retry_request_and_schema_check(bin_dir, server, home, tmp_path):
    spec = tmp_path / "w.json"
    spec.write_text(json.dumps({"name": "w", "parameters": {"type": "object", "properties": {"days": {"type": "integer", "maximum": 14}}, "required": ["days"]}}))
    env = dict(home, OPENAI_API_KEY=KEY)
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], env)
    child.expect_exact(PROMPT)
    child.sendline(":retry")
    child.expect_exact("nothing to retry yet")
    child.sendline("first")
    child.expect_exact("echo: first")
    child.sendline(":set temperature 0.9")
    child.sendline(":retry")
    child.expect_exact("echo: first")
    child.expect_exact(PROMPT)
    body = server.bodies()[-1]
    assert body["temperature"] == 0.9
    assert body["messages"] == [{"role": "user", "content": "first"}], "the retried exchange replaced, not repeated"
    child.sendline("second")
    child.expect_exact("echo: second")
    child.expect_exact(PROMPT)
    assert [m["content"] for m in server.bodies()[-1]["messages"]] == ["first", "echo: first", "second"]
    child.sendline(":request curl")
    child.expect_exact("curl -sS '" + server.url + "/v1/chat/completions'")
    child.expect_exact('-H "Authorization: Bearer $OPENAI_API_KEY"')
    child.expect_exact(PROMPT)
    assert KEY not in child.before
    child.sendline(":request swift")
    child.expect_exact("let client = QueryClient(provider: .openAI")
    child.expect_exact(PROMPT)
    # A call whose arguments break the schema: each violation shown with its path, and counted.
    server.enqueue({"json": {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "w", "arguments": "{\"days\": 40}"}}]}}]}})
    child.sendline(f":func {spec}")
    child.sendline("call it")
    child.expect_exact("$.days: 40 is above the maximum 14")
    child.expect_exact(PROMPT)
    child.sendline(":stats")
    child.expect_exact("schema violations 1 (in 1 turn)")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    # The transcript keeps both attempts of the retried prompt; a resumed session has one.
    t = read_transcript(session_files(home)[0])
    prompts = [e["prompt"] for e in t["events"] if e["type"] == "turn"]
    assert prompts[:3] == ["first", "first", "second"]


def test_config_file_sets_defaults_and_prices_and_flags_win(bin_dir, server, home):
    cfg = os.path.join(home["XDG_CONFIG_HOME"], "promptline")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "config.yaml"), "w") as f:
        f.write(f"model: priced-model\nbase_urls: {{openai: '{server.url}/v1'}}\noptions: {{temperature: 0.3}}\nsystem: From config.\n"
                "prices:\n  priced-model: {input: 1000000, output: 2000000}\n")
    r = run_piped(bin_dir, [], home, "hi\n:stats\n")
    assert r.returncode == 0, r.stderr
    b = server.bodies()[-1]
    assert b["model"] == "priced-model" and b["temperature"] == 0.3
    assert b["messages"][0] == {"role": "system", "content": "From config."}
    assert "cost $" in r.stdout and "cost unknown" not in r.stdout
    r = run_piped(bin_dir, ["--model", "unpriced", "--set", "temperature=0.9"], home, "hi\n:stats\n")
    b = server.bodies()[-1]
    assert b["model"] == "unpriced" and b["temperature"] == 0.9
    assert "cost unknown" in r.stdout
    with open(os.path.join(cfg, "config.yaml"), "w") as f:
        f.write("model: m\noptions:\n  temperature: 9\n")
    r = run_piped(bin_dir, [], home, "hi\n")
    assert r.returncode == 2 and "config.yaml: line 3: options.temperature" in r.stderr, r.stderr


def test_compare_runs_every_combination_side_by_side(bin_dir, server, home, tmp_path):
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], dict(home, COLUMNS="160"))
    child.expect_exact(PROMPT)
    child.sendline(":compare temperature=0,0.7")
    child.expect_exact("nothing to compare yet")
    child.sendline("same prompt")
    child.expect_exact("echo: same prompt")
    child.expect_exact(PROMPT)
    child.sendline(":compare temperature=0,0.7 model=m1,m2")
    child.expect_exact("temperature=0 model=m1")
    child.expect_exact("temperature=0.7 model=m2")
    child.expect_exact(PROMPT)
    bodies = server.bodies()[-4:]
    assert sorted((b["temperature"], b["model"]) for b in bodies) == [(0, "m1"), (0, "m2"), (0.7, "m1"), (0.7, "m2")]
    assert all(b["messages"] == [{"role": "user", "content": "same prompt"}] for b in bodies), "the compared exchange is left out"
    spec = tmp_path / "f.json"
    spec.write_text(json.dumps({"name": "f", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}))
    child.sendline(f":func {spec}")
    child.sendline(":compare temperature=0,1 -- another prompt")
    child.expect_exact("arguments, field by field:")
    child.expect_exact("n: 42")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    t = read_transcript(session_files(home)[0])
    comps = [e for e in t["events"] if e["type"] == "comparison"]
    assert len(comps) == 2 and len(comps[0]["variants"]) == 4 and comps[1]["prompt"] == "another prompt"


def test_compare_ctrl_c_cancels_every_variant_and_request_json(bin_dir, server, home):
    child = start(bin_dir, server, home)
    child.sendline("base prompt")
    child.expect_exact("echo: base prompt")
    child.expect_exact(PROMPT)
    child.sendline(":request json")
    child.expect_exact('"url": "' + server.url + '/v1/chat/completions"')
    child.expect_exact(PROMPT)
    server.enqueue({"status": None, "then": "stall"}, {"status": None, "then": "stall"})
    child.sendline(":compare temperature=0,1")
    time.sleep(0.5)
    t0 = time.monotonic()
    child.sendintr()
    child.expect_exact("cancelled")
    assert time.monotonic() - t0 < 1.0
    child.expect_exact(PROMPT)
    child.sendline("next")
    child.expect_exact("echo: next")
    child.sendline(":quit")


def test_config_in_a_terminal_shows_cost_on_the_status_line(bin_dir, server, home):
    cfg = os.path.join(home["XDG_CONFIG_HOME"], "promptline")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "config.yaml"), "w") as f:
        f.write(f"model: priced\nbase_urls: {{openai: '{server.url}/v1'}}\nprices:\n  priced: {{input: 1000000, output: 0}}\n")
    child = spawn(bin_dir, [], home)
    child.expect_exact("openai:priced")
    child.expect_exact(PROMPT)
    child.sendline("abc")
    child.expect(r"cost \$[0-9.]+")
    child.expect_exact(PROMPT)
    child.sendline(":stats")
    child.expect(r"cost \$[0-9.]+")
    child.sendline(":quit")


def test_compare_with_2_4_and_9_variants_in_the_release_binary(bin_dir, server, home):
    """:compare once trapped in the release build (a miscompiled task-group result): every size,
    4 at a time, each variant's result in its own column or block."""
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], dict(home, COLUMNS="160"))
    child.expect_exact(PROMPT)
    child.sendline("same prompt")
    child.expect_exact("echo: same prompt")
    child.expect_exact(PROMPT)
    for spec, n in (("temperature=0,1", 2), ("temperature=0,1 seed=1,2", 4), ("temperature=0,0.5,1 top_p=0.1,0.5,1", 9)):
        before = len(server.bodies())
        child.sendline(":compare " + spec)
        child.expect_exact(PROMPT, timeout=30)
        assert len(server.bodies()) - before == n
        assert child.isalive()
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and child.signalstatus is None
    t = read_transcript(session_files(home)[0])
    comps = [e for e in t["events"] if e["type"] == "comparison"]
    assert [len(c["variants"]) for c in comps] == [2, 4, 9]
    assert all("echo: same prompt" == v["output"]["text"] for c in comps for v in c["variants"])


def test_compare_9_variants_piped_and_ctrl_c_mid_run(bin_dir, server, home):
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], home,
                  "hi\n:compare temperature=0,0.5,1 top_p=0.1,0.5,1\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("echo: hi") == 10
    child = start(bin_dir, server, home)
    child.sendline("base")
    child.expect_exact("echo: base")
    child.expect_exact(PROMPT)
    server.enqueue(*[{"status": None, "then": "stall"}] * 9)
    child.sendline(":compare temperature=0,0.5,1 top_p=0.1,0.5,1")
    time.sleep(0.5)
    child.sendintr()
    child.expect_exact("cancelled")
    child.expect_exact(PROMPT)
    server.reset()
    child.sendline("after")
    child.expect_exact("echo: after")
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_func_via_auto_probes_once_and_uses_json_schema_on_llama_cpp(bin_dir, home, tmp_path):
    from conftest import start_test_server
    s = start_test_server(bin_dir, env=dict(os.environ, PROMPTLINE_TEST_SERVER_IDENTITY="llama.cpp"))
    try:
        spec = tmp_path / "w.json"
        spec.write_text(json.dumps({"name": "get_weather", "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city", "days"]}}))
        child = spawn(bin_dir, ["--base-url", s.url + "/v1", "--model", "m", "--func", str(spec)], home)
        child.expect_exact(PROMPT)
        child.sendline("Paris for 3 days")
        child.expect_exact("→ get_weather")
        child.expect_exact('"days": 42')
        child.expect_exact("forced via json-schema")
        child.expect_exact(PROMPT)
        child.sendline("again")
        child.expect_exact("forced via json-schema")
        child.expect_exact(PROMPT)
        body = s.bodies()[-1]
        assert "tools" not in body and body["response_format"]["json_schema"]["name"] == "get_weather"
        assert len(s._call("GET", "/_control/probes")) == 1, "one probe per base URL"
        child.sendline(":func-via tools")
        child.expect_exact("func-via tools")
        child.sendline("third")
        child.expect_exact("forced via tools")
        child.expect_exact(PROMPT)
        assert s.bodies()[-1]["tool_choice"] == "required"
        child.sendline(":request json")
        child.expect_exact('"tool_choice": "required"')
        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        s.proc.stdin.close()
        s.proc.wait(timeout=5)


def test_a_failed_forced_call_still_counts_its_tokens(bin_dir, server, home, tmp_path):
    spec = tmp_path / "w.json"
    spec.write_text(json.dumps({"name": "f", "parameters": {"type": "object", "properties": {}}}))
    server.enqueue({"json": {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "I will not call it."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 8, "total_tokens": 29}}})
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m", "--func", str(spec), "--no-stream"], home, "x\n:stats\n")
    assert r.returncode == 1
    assert "did not call f" in r.stderr
    assert "tokens in 21   out 8   total 29" in r.stdout
    t = read_transcript(session_files(home)[0])
    turn = [e for e in t["events"] if e["type"] == "turn"][0]
    assert "error" in turn["output"] and turn["input_tokens"] == 21 and turn["output_tokens"] == 8


def test_context_overflow_says_how_to_go_on(bin_dir, server, home):
    server.enqueue({"status": 400, "json": {"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it",
                                                       "type": "exceed_context_size_error"}}})
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], home, "x\n")
    lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and ":reset" in lines[0] and ":mode single" in lines[0], r.stderr
