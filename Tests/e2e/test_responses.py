"""The three wire formats and reasoning, end to end: the release binary in a pseudo-terminal
against the scriptable test server — `--provider openai-responses` turns, a tool round and a
:compare across formats; reasoning shown apart from the answer, hidden on request, counted and
kept. Every Responses body is recorded for the check against CreateResponse."""
import json

import pexpect

from conftest import read_transcript, record_bodies, session_files, start_plain

PROMPT = "› "




def event(v):
    return f"event: {v['type']}\ndata: {json.dumps(v)}\n\n"


def responses_stream(reasoning, text, reasoning_tokens=5):
    s = event({"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "model": "o-test"}})
    for r in reasoning:
        s += event({"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": r})
    for t in text:
        s += event({"type": "response.output_text.delta", "output_index": 1, "delta": t})
    s += event({"type": "response.completed", "response": {
        "id": "resp_1", "status": "completed", "model": "o-test", "output": [],
        "usage": {"input_tokens": 20, "output_tokens": 12, "input_tokens_details": {"cached_tokens": 8},
                  "output_tokens_details": {"reasoning_tokens": reasoning_tokens}}}})
    return {"raw_sse": s}


def test_two_turns_over_the_responses_api(bin_dir, server, home):
    child = start_plain(bin_dir, server, home, "--provider", "openai-responses", "--system", "Be terse.")
    child.sendline("hello there")
    child.expect_exact("echo: hello there")
    child.expect(r"echo-model · [0-9.]+ s · ttft [0-9.]+ s · tokens \d+ in / 3 out")
    child.expect_exact(PROMPT)
    child.sendline(":set max_tokens 64")
    child.sendline(":set stop [\"x\"]")
    child.expect_exact("option stop is a Chat Completions parameter; the Responses API has no such parameter")
    child.sendline("again")
    child.expect_exact("echo: again")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    reqs = server.requests()
    assert [r["uri"] for r in reqs] == ["/v1/responses", "/v1/responses"]
    second = json.loads(reqs[1]["body"])
    assert second["instructions"] == "Be terse."
    assert second["input"] == [{"role": "user", "content": "hello there"},
                               {"type": "message", "role": "assistant", "content": "echo: hello there"},
                               {"role": "user", "content": "again"}]
    assert second["max_output_tokens"] == 64 and "max_tokens" not in second
    record_bodies(server, "responses-turns")


def test_a_tool_round_over_the_responses_api(bin_dir, server, home, tmp_path):
    (tmp_path / "tools.json").write_text(json.dumps([{"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]))
    (tmp_path / "mock.json").write_text('{"get_weather": "sunny in {{args.city}}"}')
    child = start_plain(bin_dir, server, home, "--provider", "openai-responses", "--tool", str(tmp_path / "tools.json"),
                  "--mock", str(tmp_path / "mock.json"))
    child.sendline("Weather?")
    child.expect_exact("result get_weather#call_1 (mock) › sunny in sample")
    child.expect_exact("echo: result sunny in sample")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    second = server.bodies()[1]
    assert second["input"][-2:] == [
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"sample"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny in sample"}]
    assert second["tools"][0] == {"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": False}
    record_bodies(server, "responses-tools")


def test_reasoning_is_shown_apart_hidden_on_request_counted_and_kept(bin_dir, server, home):
    child = start_plain(bin_dir, server, home, "--provider", "openai-responses")
    server.enqueue(responses_stream(["Weigh ", "options."], ["Answer", " one."]))
    child.sendline("Question one")
    child.expect_exact("Weigh options.\r\nAnswer one.")
    child.expect_exact("5 reasoning · 8 cached")
    child.expect_exact(PROMPT)
    child.sendline(":set-view reasoning off")
    child.expect_exact("reasoning hidden")
    server.enqueue(responses_stream(["Secret ", "plan."], ["Answer two."], reasoning_tokens=7))
    child.sendline("Question two")
    child.expect_exact("Answer two.")
    child.expect_exact("7 reasoning")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert "Secret plan." not in child.before
    turns = [e for e in read_transcript(session_files(home)[-1])["events"] if e["type"] == "turn"]
    assert [t["info"]["reasoning"] for t in turns] == ["Weigh options.", "Secret plan."]
    assert [t["output"]["text"] for t in turns] == ["Answer one.", "Answer two."]
    second = server.bodies()[1]
    assert "Weigh options." not in json.dumps(second), "reasoning is not sent back"


def test_chat_reasoning_content_deltas_are_reasoning(bin_dir, server, home):
    def chunk(delta, finish=None):
        return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    child = start_plain(bin_dir, server, home)
    server.enqueue({"sse": [chunk({"role": "assistant", "reasoning_content": "Think"}),
                            chunk({"reasoning_content": "ing."}), chunk({"content": "Done."}), chunk({}, "stop"),
                            json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                        "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9,
                                                                 "completion_tokens_details": {"reasoning_tokens": 6}}}),
                            "[DONE]"]})
    child.sendline("Hi")
    child.expect_exact("Thinking.\r\nDone.")
    child.expect_exact("6 reasoning")
    child.expect_exact(PROMPT)
    child.sendline("Next")
    child.expect_exact("echo: Next")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert server.bodies()[1]["messages"][1] == {"role": "assistant", "content": "Done."}


def test_compare_across_wire_formats(bin_dir, server, home):
    child = start_plain(bin_dir, server, home)
    child.sendline(":compare provider=openai,openai-responses,anthropic -- hi all")
    child.expect_exact("provider=openai-responses")
    for _ in range(3):
        child.expect_exact("echo: hi all")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    uris = sorted(r["uri"] for r in server.requests())
    assert uris == ["/v1/chat/completions", "/v1/messages", "/v1/responses"], uris
    record_bodies(server, "compare-formats")
