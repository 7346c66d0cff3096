"""Attacks on what a terminal shows and what lands on disk, performed against the built binary in
a pseudo-terminal (docs/security.md maps each threat to these tests)."""
import glob
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import time

import pexpect

from conftest import KEY, ROOT, journal_text, read_transcript, run_piped, session_files, spawn

PROMPT = "› "
# Everything a hostile server can use to drive a terminal: CSI, OSC (title, clipboard), DCS,
# 8-bit CSI/OSC, BEL, CR, bidi overrides, a newline to forge a second line.
EVIL = "A\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1bPdcs\x1b\\\u009b31m\u009d0;t2\u0007\u202eRTL\u2066\rB\nforged line"
RAW_BAD = ["\x1b", "\u009b", "\u009d", "\u202e", "\u2066", "\x07", "\r\r\n"]


def chunk(delta, finish=None, model="m"):
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def strip_own_colour(s):
    """The program's own SGR codes (colour, bold, dim, reset) and bracketed-paste toggles."""
    return re.sub(r"\x1b\[[0-9;]*m|\x1b\[\?2004[hl]|\x1b\[K", "", s)


def assert_clean(seen):
    rest = strip_own_colour(seen)
    for bad in RAW_BAD:
        assert bad not in rest, (bad, rest)


def start(bin_dir, server, home, *extra, env_extra=None):
    env = dict(home, OPENAI_API_KEY=KEY)
    env.update(env_extra or {})
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model", *extra], env)
    child.expect_exact(PROMPT)
    return child


def test_error_fields_cannot_drive_the_terminal_and_are_one_line(bin_dir, server, home):
    long_key = "sk-proj-" + "AbCdEfGhIj0123456789" * 8
    server.enqueue({"status": 400, "headers": {"x-request-id": f"req-{long_key}"},
                    "json": {"error": {"message": EVIL + " " + long_key, "type": "t\x1b[31m\u202e" + long_key,
                                       "code": "c\u009b2J" + long_key, "param": long_key}}})
    child = start(bin_dir, server, home, env_extra={"OPENAI_API_KEY": long_key})
    child.sendline("hi")
    child.expect_exact(PROMPT)
    seen = child.before
    assert_clean(seen)
    assert long_key[:12] not in seen
    error_lines = [l for l in strip_own_colour(seen).split("\r\n") if "error:" in l]
    assert len(error_lines) == 1, seen
    assert "forged line" in error_lines[0]  # the newline was folded into the one error line
    assert "[redacted]" in error_lines[0]
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    for f in session_files(home):
        text = pathlib.Path(f).read_text()
        assert long_key[:12] not in text


def test_tool_name_status_line_and_schema_lines_are_sanitised(bin_dir, server, home, tmp_path):
    spec = tmp_path / "f.json"
    spec.write_text(json.dumps({"name": "f", "parameters": {"type": "object", "properties": {}, "additionalProperties": False}}))
    evil_key = "k\u202eyek\x1b]0;pwned\x07"
    server.enqueue({"sse": [
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "1", "type": "function", "function": {"name": "f", "arguments": ""}}]}, model="m\x1b]0;pwned\x07\u202e"),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": json.dumps({evil_key: 1})}}]}),
        chunk({}, "\x1b[2Jlength\u009b"), "[DONE]"]})
    child = start(bin_dir, server, home, "--func", str(spec))
    child.sendline("go")
    child.expect_exact(PROMPT)
    seen = child.before
    assert_clean(seen)
    assert "schema:" in seen and "finish: length" in seen
    # A wrong function name arrives through the streamed name and the error.
    server.enqueue({"sse": [
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "1", "type": "function", "function": {"name": "g\x1b]0;pwned\x07\nforged", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"), "[DONE]"]})
    child.sendline("again")
    child.expect_exact(PROMPT)
    seen = child.before
    assert_clean(seen)
    assert "instead of f" in seen
    assert not any(l.strip().startswith("forged") for l in strip_own_colour(seen).split("\r\n")), seen
    child.sendline(":quit")


def test_compare_cells_are_sanitised(bin_dir, server, home):
    for _ in range(2):
        server.enqueue({"json": {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": EVIL}, "finish_reason": "stop"}]}})
    child = start(bin_dir, server, home)
    child.sendline(":compare temperature=0,1 hi")
    child.expect_exact(PROMPT)
    assert_clean(child.before)
    child.sendline(":quit")


def hostile_transcript(bin_dir, server, home, tmp_path, **changes):
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], home, "hello\n")
    assert r.returncode == 0, r.stderr
    [saved] = session_files(home)
    t = read_transcript(saved)
    t.update(changes)
    for e in t["events"]:
        if e["type"] == "settings" and "model" in changes:
            e["model"] = changes["model"]
    out = tmp_path / "elsewhere" / "hostile.jsonl"
    out.parent.mkdir()
    out.write_text(journal_text(t))
    return out, saved


def test_load_sessions_and_prompt_show_a_hostile_model_name_safely(bin_dir, server, home, tmp_path):
    path, _ = hostile_transcript(bin_dir, server, home, tmp_path, model="m\x1b]0;pwned\x07\u202e\nforged")
    child = start(bin_dir, server, home)
    child.sendline(f":load {path}")
    child.expect_exact(PROMPT)  # the prompt now shows the loaded model
    child.sendline("hi")
    child.expect_exact(PROMPT)
    child.sendline(":sessions")
    child.expect_exact(PROMPT)
    seen = child.before
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert_clean(seen + child.before)


def test_a_transcript_id_cannot_aim_the_autosave_outside_the_sessions_folder(bin_dir, server, home, tmp_path):
    path, _ = hostile_transcript(bin_dir, server, home, tmp_path, id="x/../../../escaped")
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m", "--resume", str(path)], home, "again\n")
    assert r.returncode == 2 and '"id" must be' in r.stderr
    assert not list(tmp_path.rglob("*escaped*"))
    # A well-formed file from elsewhere continues under a fresh id in the sessions folder and is
    # left as it was, as is the session it was copied from.
    good = tmp_path / "good.jsonl"
    data = read_transcript(path)
    data["id"] = pathlib.Path(session_files(home)[0]).stem.split("-", 1)[1]
    good.write_text(journal_text(data))
    before = {p: pathlib.Path(p).read_text() for p in session_files(home)}
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m", "--resume", str(good)], home, "again\n")
    assert r.returncode == 0, r.stderr
    assert good.read_text() == journal_text(data)
    after = session_files(home)
    assert len(after) == len(before) + 1
    for p, text in before.items():
        assert pathlib.Path(p).read_text() == text


def test_request_swift_cannot_be_made_to_interpolate(bin_dir, server, home, tmp_path):
    nasty = 'x \\#(fatalError("pwned")) "# \\(1) ""# \\##(2) end'
    child = start(bin_dir, server, home)
    child.sendline(nasty)
    child.expect_exact(PROMPT)
    child.sendline(":request swift")
    child.expect_exact(PROMPT)
    code = strip_own_colour(child.before).replace("\r\n", "\n")
    line = next(l for l in code.split("\n") if l.strip().startswith(".user("))
    literal = line.strip()[len(".user("):-len("),")]
    assert "\\#(" in literal  # the attack is in there, as text
    if shutil.which("swift"):
        prog = tmp_path / "lit.swift"
        prog.write_text(f"print({literal}, terminator: \"\")\n")
        out = subprocess.run(["swift", str(prog)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout == nasty
    child.sendline(":quit")


def test_history_keeps_no_key_of_any_provider_and_is_replaced_atomically(bin_dir, server, home, tmp_path):
    state = pathlib.Path(home["XDG_STATE_HOME"]) / "promptline"
    state.mkdir(parents=True)
    os.chmod(state, 0o755)
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    os.symlink(victim, state / "history")  # planted: a non-atomic save would write through it
    other = "sk-ant-api03-OTHERPROVIDERKEY0123456789"
    child = start(bin_dir, server, home, env_extra={"ANTHROPIC_API_KEY": other})
    child.sendline(f"oops {other}")
    child.expect_exact(PROMPT)
    child.sendline("token sk-proj-abcdefghijklmnopqrstuvwx not in env")
    child.expect_exact(PROMPT)
    child.sendline("a normal line")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    hist = state / "history"
    assert victim.read_text() == "untouched\n"
    assert not hist.is_symlink()
    text = hist.read_text()
    assert "normal" in text and "OTHERPROVIDER" not in text and "abcdefghijklmnop" not in text
    assert stat.S_IMODE(hist.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_existing_sessions_folder_is_tightened_and_export_does_not_overwrite(bin_dir, server, home, tmp_path):
    sessions = pathlib.Path(home["XDG_DATA_HOME"]) / "promptline" / "sessions"
    sessions.mkdir(parents=True)
    os.chmod(sessions, 0o755)
    notes = tmp_path / "notes.md"
    notes.write_text("my own notes\n")
    child = start(bin_dir, server, home)
    child.sendline("hi")
    child.expect_exact(PROMPT)
    child.sendline(f":export {notes}")
    child.expect(r"is not a promptline\s+export;\s+:export!\s")  # folded on a narrow terminal
    child.expect_exact(PROMPT)
    assert notes.read_text() == "my own notes\n"
    child.sendline(f":export! {notes}")
    child.expect_exact(f"exported {notes}")
    child.sendline(f":export {notes}")  # an export may be replaced by the next one
    child.expect_exact(f"exported {notes}")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert notes.read_text().startswith("# promptline session ")
    assert stat.S_IMODE(sessions.stat().st_mode) == 0o700


def test_base_url_credentials_are_hidden_everywhere(bin_dir, server, home, tmp_path):
    url = server.url.replace("http://", "http://alice:pw-SECRET-42@") + "/v1"
    child = spawn(bin_dir, ["--base-url", url, "--model", "m"], dict(home))
    child.expect_exact(PROMPT)
    banner = child.before
    child.sendline("hi")
    child.expect_exact(PROMPT)
    shown = banner
    for fmt in ["curl", "json", "swift"]:
        child.sendline(f":request {fmt}")
        child.expect_exact(PROMPT)
        shown += child.before
    md = tmp_path / "out.md"
    child.sendline(f":export {md}")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert "pw-SECRET-42" not in shown and "[redacted]@" in shown
    files = [md.read_text()] + [pathlib.Path(p).read_text() for p in session_files(home)]
    for text in files:
        assert "pw-SECRET-42" not in text and "[redacted]@" in text


def test_a_stalled_server_cannot_hold_a_turn_past_turn_timeout(bin_dir, server, home):
    for _ in range(6):
        server.enqueue({"status": None, "then": "stall"})
    child = start(bin_dir, server, home, "--turn-timeout", "3")
    t0 = time.monotonic()
    child.sendline("hi")
    child.expect(r"\d s of 3 s")  # the wait is shown
    child.expect_exact("no complete answer within 3 s")
    assert time.monotonic() - t0 < 10
    child.expect_exact(PROMPT)
    server.reset()
    child.sendline("next")
    child.expect_exact("echo: next")
    child.sendline(":quit")


def test_local_llm_script_keeps_the_key_off_the_command_line():
    script = (ROOT / "scripts" / "local-llm").read_text()
    launch = [l for l in script.splitlines() if "--api-key" in l and not l.lstrip().startswith("#")]
    assert launch == [], launch
    assert 'LLAMA_API_KEY="$LOCAL_LLM_API_KEY"' in script
