"""REPL details a new user trips over, end to end: vi keys through a pseudo-terminal, :copy on
a branch, :model back from Claude, a refused forced call said once, :save/:export to a folder
that does not exist, the export's settings, tool-file errors and counts in the singular."""
import base64
import json
import pathlib
import time

import pexpect

from conftest import plain, read_transcript, run_piped, session_files, spawn

PROMPT = "› "


def chunk(delta, finish=None):
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def args(server):
    return ["--base-url", server.url + "/v1", "--model", "echo-model"]


def keys(child, *presses):
    """Each key press on its own, as a person types (an Esc alone is a key, not a sequence's start)."""
    for k in presses:
        child.send(k)
        time.sleep(0.15)


def vi_edit(child):
    child.send("hello world foo")
    time.sleep(0.15)
    # Esc to command mode, 0 to the start, x deletes "h", dw deletes "ello ", A appends at the end.
    keys(child, "\x1b", "0", "x", "d", "w", "A", "!")
    child.send("\r")


def test_vi_keys_edit_the_line(bin_dir, server, home):
    child = spawn(bin_dir, [*args(server), "--vi"], dict(home, NO_COLOR="1"))
    child.expect_exact(PROMPT)
    vi_edit(child)
    child.expect_exact("echo: world foo!")
    child.expect_exact(PROMPT)
    assert server.bodies()[-1]["messages"][-1]["content"] == "world foo!"
    # Arrow keys (Esc sequences) still work in vi insert mode: Up brings the last line back.
    child.send("\x1b[A")
    time.sleep(0.15)
    child.send("\r")
    child.expect_exact("echo: world foo!")
    child.expect_exact(PROMPT)
    assert [b["messages"][-1]["content"] for b in server.bodies()[-2:]] == ["world foo!", "world foo!"]
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_set_editor_vi_in_a_session(bin_dir, server, home):
    child = spawn(bin_dir, args(server), dict(home, NO_COLOR="1"))
    child.expect_exact(PROMPT)
    child.sendline(":set-editor vi")
    child.expect_exact(PROMPT)
    vi_edit(child)
    child.expect_exact("echo: world foo!")
    child.expect_exact(PROMPT)
    assert server.bodies()[-1]["messages"][-1]["content"] == "world foo!"
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_copy_on_main_after_switching_back_copies_mains_reply(bin_dir, server, home):
    child = spawn(bin_dir, args(server), dict(home, NO_COLOR="1"))
    child.expect_exact(PROMPT)
    child.sendline("on main")
    child.expect_exact("echo: on main")
    child.expect_exact(PROMPT)
    child.sendline(":fork alt")
    child.expect_exact(PROMPT)
    child.sendline("on the branch")
    child.expect_exact("echo: on the branch")
    child.expect_exact(PROMPT)
    child.sendline(":switch main")
    child.expect_exact(PROMPT)
    child.sendline(":copy")
    child.expect_exact("\x1b]52;c;" + base64.b64encode(b"echo: on main").decode() + "\x07")
    child.expect_exact("copied 13 characters")
    child.expect_exact(PROMPT)
    child.sendline(":switch alt")
    child.expect_exact(PROMPT)
    child.sendline(":copy")
    child.expect_exact("\x1b]52;c;" + base64.b64encode(b"echo: on the branch").decode() + "\x07")
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_a_model_after_claude_goes_back_to_the_provider_left(bin_dir, server, home):
    r = run_piped(bin_dir, args(server), dict(home, NO_COLOR="1"),
                  ":model claude-sonnet-4-5\n:provider\n:model echo-model\n:provider\nhello\n")
    assert r.returncode == 0, r.stderr
    assert "model claude-sonnet-4-5; switching to the anthropic provider" in r.stdout
    assert "provider anthropic (model claude-sonnet-4-5)" in r.stdout
    assert "model echo-model; switching back to the openai provider" in r.stdout
    assert "provider openai (model echo-model)" in r.stdout
    assert "echo: hello" in r.stdout
    assert server.requests()[-1]["uri"].endswith("/chat/completions")


def test_a_refused_forced_call_shows_the_text_once(bin_dir, server, home, tmp_path):
    spec = tmp_path / "f.json"
    spec.write_text(json.dumps({"name": "pick", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}}}))
    server.enqueue({"sse": [chunk({"content": "I will not call it"}), chunk({}, "stop"), "[DONE]"]})
    r = run_piped(bin_dir, [*args(server), "--func", str(spec), "--func-via", "tools"], dict(home, NO_COLOR="1"), "go\n")
    assert r.returncode == 1
    assert (r.stdout + r.stderr).count("I will not call it") == 1, r.stdout + r.stderr
    assert "error: the model did not call pick; it answered with the text above" in r.stderr
    # The transcript keeps the whole message.
    turn = [e for e in read_transcript(session_files(home)[-1])["events"] if e["type"] == "turn"][-1]
    assert "I will not call it" in json.dumps(turn)


def test_save_and_export_refuse_a_folder_that_does_not_exist(bin_dir, server, home, tmp_path):
    r = run_piped(bin_dir, args(server), dict(home, NO_COLOR="1"),
                  f"hi\n:save {tmp_path}/nope/s.jsonl\n:export {tmp_path}/typo/s.md\n:save {tmp_path}/s.jsonl\n")
    assert f"error: {tmp_path}/nope/s.jsonl: the folder {tmp_path}/nope does not exist (nothing was written)" in r.stderr
    assert f"error: {tmp_path}/typo/s.md: the folder {tmp_path}/typo does not exist (nothing was written)" in r.stderr
    assert not (tmp_path / "nope").exists() and not (tmp_path / "typo").exists()
    assert f"saved {tmp_path}/s.jsonl (1 turn)" in r.stdout


def test_the_export_shows_what_each_set_changed(bin_dir, server, home, tmp_path):
    md = tmp_path / "s.md"
    r = run_piped(bin_dir, [*args(server), "--system", "Be brief."], dict(home, NO_COLOR="1"),
                  f":set temperature 0.5\n:set top_p 0.9\nhi\n:set temperature 0.7\n:export {md}\n")
    assert r.returncode == 0, r.stderr
    text = md.read_text()
    assert text.count("## Settings") == 1, text
    assert text.count("Be brief.") == 1, text
    assert "**Settings changed**\n\n- options: `top_p=0.9`\n" in text
    assert "**Settings changed**\n\n- options: `temperature=0.7`\n" in text


def test_a_tool_file_error_says_tool_file(bin_dir, server, home, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": 5, "parameters": {"type": "object"}}')
    r = run_piped(bin_dir, args(server), dict(home, NO_COLOR="1"), f":tool {bad}\n")
    assert f"error: tool file {bad}: name must be a string" in r.stderr, r.stderr
    assert "function spec" not in r.stderr


def test_counts_of_one_are_singular(bin_dir, server, home, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n3\n")
    r = run_piped(bin_dir, args(server), dict(home, NO_COLOR="1"), f"hi\n:sessions\n:batch {rows} -- {{{{a}}}}\n")
    assert "row 3 has 1 field, the header 2" in r.stderr, r.stderr
    assert "  1 turn  hi" in r.stdout, r.stdout
    assert "1 turns" not in r.stdout + r.stderr


def test_no_locale_in_the_environment_still_edits_lines(bin_dir, server, home):
    """With LANG and LC_* unset (the C locale) libedit could not convert the prompt's `›` and
    promptline crashed at its first prompt; it now takes UTF-8, as the terminal's text is."""
    env = {k: v for k, v in plain(home).items() if k != "LANG" and not k.startswith("LC_")}
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], env, timeout=30)
    child.expect_exact("› ")
    child.sendline("héllo")
    child.expect_exact("echo: héllo")
    child.expect_exact("› ")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
