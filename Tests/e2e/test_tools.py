"""The tool workbench end to end: the release binary in a pseudo-terminal (or piped) against the
scriptable test server — tools, calls shown with their checks, results typed, read from a file
or mocked, Ctrl-C at a result prompt, the round limit, resume mid-round, structured output.

Every Chat Completions body these tests make promptline send is recorded for the schema check."""
import json
import re

import pexpect

from conftest import plain, read_transcript, record_bodies, run_piped, session_files, spawn, start_plain

PROMPT = "› "

TOOLS = """\
- name: get_weather
  description: Weather for a city
  json_schema: {type: object, properties: {city: {type: string}}, required: [city]}
- type: function
  function:
    name: get_time
    description: Local time
    parameters: {type: object, properties: {tz: {type: string}}, required: [tz]}
"""


def chunk(delta, finish=None):
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def calls_stream(*calls):
    """An SSE reply whose one message makes `calls` ((id, name, arguments text), …) in parallel."""
    lines = [chunk({"role": "assistant", "content": None})]
    for i, (cid, name, args) in enumerate(calls):
        lines.append(chunk({"tool_calls": [{"index": i, "id": cid, "type": "function",
                                            "function": {"name": name, "arguments": ""}}]}))
        lines.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": args}}]}))
    lines += [chunk({}, "tool_calls"), "[DONE]"]
    return {"sse": lines}


def expect_call(child, at, args):
    """A call as shown: `→ name#id` in bold, then `(arguments)`."""
    child.expect(re.escape(f"→ {at}") + r"(\x1b\[0m)?" + re.escape(f"({args})"))


def setup_files(tmp_path):
    (tmp_path / "tools.yaml").write_text(TOOLS)
    return str(tmp_path / "tools.yaml")




def test_parallel_calls_typed_and_file_results_then_ctrl_c_ends_the_round(bin_dir, server, home, tmp_path):
    tools = setup_files(tmp_path)
    (tmp_path / "weather.json").write_text('{"sky": "clear"}\n')
    child = start_plain(bin_dir, server, home, "--tool", tools)
    child.sendline(":tools")
    child.expect_exact("get_weather — Weather for a city  requires city")
    child.expect_exact("choice auto")
    server.enqueue(calls_stream(("call_w", "get_weather", '{"city":"Oslo"}'), ("call_t", "get_time", '{"tz":"CET"}')),
                   calls_stream(("call_w2", "get_weather", '{"city":"Rome"}'), ("call_t2", "get_time", '{"tz":"UTC"}')))
    child.sendline("Weather and time in Oslo?")
    expect_call(child, "get_weather#call_w", '{"city":"Oslo"}')
    child.expect_exact("✓ arguments match get_weather's schema")
    expect_call(child, "get_time#call_t", '{"tz":"CET"}')
    child.expect_exact("result get_weather#call_w")
    child.sendline(f"@{tmp_path / 'weather.json'}")
    child.expect_exact("result get_time#call_t")
    child.sendline("")  # an empty line asks again, with a hint
    child.expect_exact("Ctrl-C to end the round")
    child.sendline('{"time": "10:00"}')
    # The results go back; the model calls again; Ctrl-C at the second call's prompt ends the round.
    expect_call(child, "get_weather#call_w2", '{"city":"Rome"}')
    child.expect_exact("result get_weather#call_w2")
    child.sendline("rain")
    child.expect_exact("result get_time#call_t2")
    child.sendintr()
    child.expect_exact("tool round ended: 1 call unanswered; the next prompt answers it with an error result")
    child.expect_exact(PROMPT)
    child.sendline(":stats")
    child.expect_exact("turns 1   requests 2")
    child.expect_exact("last turn (2 requests: a tool round)")
    child.sendline(":choice none")
    child.expect_exact("choice none")
    child.sendline("Never mind.")
    child.expect_exact("echo: Never mind.")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    bodies = server.bodies()
    second = bodies[1]["messages"]
    assert [m.get("tool_call_id") for m in second[-2:]] == ["call_w", "call_t"]
    assert second[-2]["content"] == '{"sky": "clear"}' and second[-1]["content"] == '{"time": "10:00"}'
    assert bodies[1]["tool_choice"] == "auto"
    third = bodies[2]["messages"]
    # The typed result is sent; the unanswered call gets an error result; then the prompt.
    assert [m["role"] for m in third[-3:]] == ["tool", "tool", "user"]
    assert bodies[2]["tool_choice"] == "none"
    assert third[-3] == {"role": "tool", "tool_call_id": "call_w2", "content": "rain"}
    assert third[-2]["tool_call_id"] == "call_t2" and third[-2]["content"].startswith("error: no result")
    record_bodies(server, "tools-parallel")
    t = read_transcript(session_files(home)[-1])
    turns = [e for e in t["events"] if e["type"] == "turn"]
    assert [r["source"] for r in turns[1]["tool_results"]] == ["file", "typed"]
    assert [r["source"] for r in turns[2]["tool_results"]] == ["typed", "ended"]


def test_mock_answers_and_the_model_goes_on(bin_dir, server, home, tmp_path):
    tools = setup_files(tmp_path)
    (tmp_path / "mock.yaml").write_text('get_weather: \'{"city": "{{args.city}}", "sky": "clear"}\'\n')
    child = start_plain(bin_dir, server, home, "--tool", tools, "--mock", str(tmp_path / "mock.yaml"))
    child.sendline("Weather?")
    # The echo server calls the first tool with sample arguments, then echoes the result it gets.
    expect_call(child, "get_weather#call_1", '{"city":"sample"}')
    child.expect_exact('result get_weather#call_1 (mock) › {"city": "sample", "sky": "clear"}')
    child.expect_exact('echo: result {"city": "sample", "sky": "clear"}')
    child.expect_exact(PROMPT)
    child.sendline(":export " + str(tmp_path / "round.md"))
    child.expect_exact("exported")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    bodies = server.bodies()
    assert bodies[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_1",
                                         "content": '{"city": "sample", "sky": "clear"}'}
    assert bodies[1]["messages"][-2]["tool_calls"][0]["id"] == "call_1"
    record_bodies(server, "tools-mock")
    md = (tmp_path / "round.md").read_text()
    assert "**Tool call** `get_weather` (`call_1`)" in md
    assert "**Tool result** `get_weather` (`call_1`) (mock)" in md


def test_unknown_tool_and_bad_arguments_are_shown_and_the_round_goes_on(bin_dir, server, home, tmp_path):
    tools = setup_files(tmp_path)
    child = start_plain(bin_dir, server, home, "--tool", tools)
    server.enqueue(calls_stream(("call_x", "get_forecast", '{"city":"Oslo"}'), ("call_y", "get_time", '{"tz": CET')))
    child.sendline("Forecast?")
    expect_call(child, "get_forecast#call_x", '{"city":"Oslo"}')
    child.expect_exact("schema: get_forecast#call_x: no tool of that name is loaded")
    expect_call(child, "get_time#call_y", '{"tz": CET')
    child.expect_exact("schema: get_time#call_y: the arguments are not JSON")
    child.expect_exact("result get_forecast#call_x")
    child.sendline("no such tool")
    child.expect_exact("result get_time#call_y")
    child.sendline("bad arguments")
    child.expect_exact("echo: result bad arguments")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    record_bodies(server, "tools-bad-calls")


def test_round_limit_and_choice(bin_dir, server, home, tmp_path):
    tools = setup_files(tmp_path)
    (tmp_path / "mock.json").write_text('["one", "two", "three"]')
    child = start_plain(bin_dir, server, home, "--tool", tools, "--mock", str(tmp_path / "mock.json"))
    child.sendline(":set max_tool_rounds 1")
    child.expect_exact("max_tool_rounds = 1")
    child.sendline(":choice get_time")
    child.expect_exact("choice get_time")
    child.sendline(":choice nope")
    child.expect_exact(":choice takes auto, none, required or a loaded tool's name (get_weather, get_time)")
    server.enqueue(calls_stream(("call_a", "get_time", '{"tz":"CET"}')), calls_stream(("call_b", "get_time", '{"tz":"UTC"}')))
    child.sendline("Time?")
    child.expect_exact("result get_time#call_a (mock) › one")
    child.expect_exact("max_tool_rounds (1) reached: 1 call left unanswered")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    bodies = server.bodies()
    assert bodies[0]["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert bodies[1]["tool_choice"] == "auto", "results go back with auto"
    assert len(bodies) == 2
    record_bodies(server, "tools-limit")


def test_resume_in_the_middle_of_a_round(bin_dir, server, home, tmp_path):
    tools = setup_files(tmp_path)
    args = ["--base-url", server.url + "/v1", "--model", "echo-model", "--tool", tools]
    # Piped: input ends at the result prompt, so the round is left open in the transcript.
    r = run_piped(bin_dir, args, home, "Weather?\n")
    assert "get_weather#call_1" in r.stdout
    assert "tool round ended: 1 call unanswered" in r.stdout
    r = run_piped(bin_dir, args + ["--resume", "last"], home, "sunny\n")
    assert "the session stopped in a tool round: 1 call await a result" in r.stdout
    assert "echo: result sunny" in r.stdout
    assert r.returncode == 0, r.stderr
    last = server.bodies()[-1]["messages"]
    assert last[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    record_bodies(server, "tools-resume")


def test_structured_output_is_pretty_printed_and_checked(bin_dir, server, home, tmp_path):
    (tmp_path / "person.schema.json").write_text(json.dumps({
        "type": "object", "additionalProperties": False, "required": ["name", "age"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}))
    child = start_plain(bin_dir, server, home, "--schema", str(tmp_path / "person.schema.json"))
    child.sendline("Ada, 36")
    child.expect_exact('"age": 42')
    child.expect_exact("✓ matches schema person")
    child.expect_exact(PROMPT)
    server.enqueue({"sse": [chunk({"content": '{"name": 7}'}), chunk({}, "stop"), "[DONE]"]})
    child.sendline("again")
    child.expect_exact('schema: $: required property "age" is missing')
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    body = server.bodies()[0]
    assert body["response_format"]["json_schema"]["name"] == "person"
    assert body["response_format"]["json_schema"]["strict"] is True
    record_bodies(server, "structured")


def test_anthropic_round_with_a_mock(bin_dir, server, home, tmp_path):
    tools = setup_files(tmp_path)
    (tmp_path / "mock.json").write_text('{"get_weather": "sunny in {{args.city}}"}')
    child = spawn(bin_dir, ["--base-url", server.url, "--provider", "anthropic", "--model", "claude-test",
                            "--tool", tools, "--mock", str(tmp_path / "mock.json")], plain(home))
    child.expect_exact(PROMPT)
    child.sendline("Weather?")
    child.expect_exact("result get_weather#toolu_1 (mock) › sunny in sample")
    child.expect_exact("echo: result sunny in sample")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    last = server.bodies()[-1]["messages"][-1]
    assert last == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny in sample"}]}


def test_retry_reruns_the_whole_round_and_request_shows_its_last_request(bin_dir, server, home, tmp_path):
    tools = setup_files(tmp_path)
    (tmp_path / "mock.json").write_text('{"get_weather": ["first", "second"]}')
    child = start_plain(bin_dir, server, home, "--tool", tools, "--mock", str(tmp_path / "mock.json"))
    child.sendline("Weather?")
    child.expect_exact("echo: result first")
    child.expect_exact(PROMPT)
    child.sendline(":request json")
    child.expect_exact('"tool_call_id": "call_1"')
    child.expect_exact(PROMPT)
    child.sendline(":retry")
    child.expect_exact("retrying: Weather?")
    child.expect_exact("result get_weather#call_1 (mock) › second")
    child.expect_exact("echo: result second")
    child.expect_exact(PROMPT)
    child.sendline(":stats")
    child.expect_exact("turns 2   requests 4")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    bodies = server.bodies()
    assert [m["role"] for m in bodies[2]["messages"]] == ["user"], "the retried round replaces the first"
    assert [m["role"] for m in bodies[3]["messages"]] == ["user", "assistant", "tool"]
    record_bodies(server, "tools-retry")


def test_results_of_a_failed_request_go_with_the_next_prompt(bin_dir, server, home, tmp_path):
    tools = setup_files(tmp_path)
    child = start_plain(bin_dir, server, home, "--tool", tools, "--max-attempts", "1")
    child.sendline("Weather?")
    child.expect_exact("result get_weather#call_1")
    server.enqueue({"status": 500, "json": {"error": {"message": "boom"}}})
    child.sendline("sunny")
    child.expect_exact("boom")
    child.expect_exact(PROMPT)
    child.sendline(":choice none")
    child.sendline("And tomorrow?")
    child.expect_exact("echo: And tomorrow?")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    last = server.bodies()[-1]["messages"]
    assert last[-2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert last[-1] == {"role": "user", "content": "And tomorrow?"}
    record_bodies(server, "tools-failed")
