"""Transcripts end to end: autosave, :save/:load/:export/:sessions, --resume last, crash safety,
permissions, and the key never written anywhere."""
import glob
import json
import os
import random
import signal
import stat
import subprocess
import time

import pexpect

from conftest import KEY, read_transcript, run_piped, session_files, spawn

PROMPT = "› "


def sessions_dir(home):
    return os.path.join(home["XDG_DATA_HOME"], "promptline", "sessions")


def transcripts(home):
    return session_files(home)


def test_autosave_resume_last_and_exit_message(bin_dir, server, home, tmp_path):
    env = dict(home, OPENAI_API_KEY=KEY)
    args = ["--base-url", server.url + "/v1", "--model", "echo-model"]
    child = spawn(bin_dir, args, env)
    child.expect_exact(PROMPT)
    child.sendline(":system Be a parrot.")
    child.sendline(":set temperature 0.4")
    child.sendline("first question")
    child.expect_exact("echo: first question")
    child.expect_exact(PROMPT)
    files = transcripts(home)
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sessions_dir(home)).st_mode) == 0o700
    child.sendline(":quit")
    child.expect_exact("transcript: " + files[0])
    child.expect(pexpect.EOF)

    # Yesterday's session, continued.
    child = spawn(bin_dir, args + ["--resume", "last"], env)
    child.expect_exact("resumed")
    child.expect_exact(PROMPT)
    child.sendline(":system")
    child.expect_exact("Be a parrot.")
    child.sendline("second question")
    child.expect_exact("echo: second question")
    child.expect_exact(PROMPT)
    body = server.bodies()[-1]
    assert body["temperature"] == 0.4
    assert [m["content"] for m in body["messages"]] == ["Be a parrot.", "first question", "echo: first question", "second question"]
    child.sendline(":stats")
    child.expect_exact("turns 2")
    child.sendline(":sessions")
    child.expect_exact("2 turns  first question")
    md = tmp_path / "out.md"
    child.sendline(f":export {md}")
    child.expect_exact("exported")
    saved = tmp_path / "copy.json"
    child.sendline(f":save {saved}")
    child.expect_exact("saved")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert len(transcripts(home)) == 1, "resuming continues the same file"
    t = read_transcript(transcripts(home)[0])
    assert t["format"] == "promptline-transcript" and t["version"] == 2
    assert [e["prompt"] for e in t["events"] if e["type"] == "turn"] == ["first question", "second question"]
    assert "## Turn 2" in md.read_text()
    # The key is in no file promptline wrote, and not in its output.
    for root, _, names in os.walk(str(tmp_path)):
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                assert KEY.encode() not in f.read(), n


def test_load_bad_files_keeps_the_session(bin_dir, server, home, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "promptline-transcript", "version": 1, "id": "x"')
    other = tmp_path / "notes.txt"
    other.write_text("my notes")
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], home)
    child.expect_exact(PROMPT)
    child.sendline(":set temperature 0.7")
    child.sendline("hello")
    child.expect_exact("echo: hello")
    child.sendline(f":load {bad}")
    child.expect_exact(f"{bad}: not JSON")
    child.sendline(f":save {other}")
    child.expect(r"is not a promptline\s+transcript;\s+:save!\s")  # folded on a narrow terminal
    assert other.read_text() == "my notes"
    child.sendline("again")
    child.expect_exact("echo: again")
    child.expect_exact(PROMPT)
    assert server.bodies()[-1]["temperature"] == 0.7
    assert len(server.bodies()[-1]["messages"]) == 3
    child.sendline(":quit")
    r = run_piped(bin_dir, ["--resume", str(bad), "--base-url", server.url + "/v1"], home, "")
    assert r.returncode == 2 and "not JSON" in r.stderr


def test_kill_9_never_leaves_a_broken_transcript(bin_dir, server, home):
    """Kill the binary at random moments while it appends a line per turn to its journal: every
    line but the last is always whole, and the file always resumes — a last line cut short is
    left out with a note, and the resumed file is whole again."""
    rnd = random.Random(7)
    args = ["--base-url", server.url + "/v1", "--model", "m"]
    kills = 0
    for i in range(12):
        proc = subprocess.Popen([str(bin_dir / "promptline"), *args], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=home)
        proc.stdin.write(("".join(f"turn {i}.{k} " + "x" * 200 + "\n" for k in range(40))).encode())
        proc.stdin.flush()
        time.sleep(rnd.uniform(0.05, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        for f in transcripts(home):
            text = open(f).read()
            lines = text.split("\n")
            head = json.loads(lines[0])
            assert head["format"] == "promptline-transcript" and head["version"] == 2
            for line in lines[1:-1]:
                json.loads(line)  # every line before the last is whole
            r = run_piped(bin_dir, args + ["--resume", f], home, ":quit\n")
            assert r.returncode == 0, r.stderr
            assert ("cut short" in r.stderr) == (not text.endswith("\n")), r.stderr
            healed = open(f).read()
            assert healed.endswith("\n") and all(json.loads(l) for l in healed.splitlines())
    assert kills >= 6
    assert transcripts(home), "some transcripts were written"


def test_the_key_never_leaves_through_any_error_path(bin_dir, server, home, tmp_path):
    """A distinctive key through every error path: servers that echo it in JSON errors, HTML
    pages and mid-stream errors, malformed bodies, a dead server, a plain-http remote URL. It
    must appear in no output and no file promptline writes."""
    env = dict(home, OPENAI_API_KEY=KEY)
    chunk = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]})
    server.enqueue(
        {"status": 401, "json": {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}},
        {"status": 400, "body": f"<html><title>Bad key {KEY}</title></html>", "content_type": "text/html"},
        {"status": 200, "body": f"not json {KEY}", "content_type": "application/json"},
        {"sse": [chunk, json.dumps({"error": {"message": f"key {KEY} revoked", "type": "invalid_request_error"}})]},
        {"status": 403, "json": {"error": {"message": "forbidden", "param": KEY}}},
    )
    lines = "".join(f"{KEY} pasted by mistake\n" if i == 2 else f"turn {i}\n" for i in range(5)) + ":stats\n:save " + str(tmp_path / "s.json") + "\n:export " + str(tmp_path / "s.md") + "\n"
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m", "--max-attempts", "1"], env, lines)
    dead = run_piped(bin_dir, ["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--max-attempts", "1"], env, "hi\n")
    remote = run_piped(bin_dir, ["--base-url", "http://example.invalid/v1", "--model", "m"], env, "hi\n")
    assert "refusing to send the API key over plain http" in remote.stderr
    assert r.stderr.count("error:") == 5, r.stderr
    for out in (r.stdout, r.stderr, dead.stdout, dead.stderr, remote.stdout, remote.stderr):
        assert KEY not in out
    written = 0
    for root, _, names in os.walk(str(tmp_path)):
        for n in names:
            written += 1
            with open(os.path.join(root, n), "rb") as f:
                assert KEY.encode() not in f.read(), os.path.join(root, n)
    assert written >= 3


def test_a_version_1_transcript_is_carried_on_as_a_journal_beside_it(bin_dir, server, home):
    """A file written by the previous release (8707854, version 1) resumes with its settings,
    conversation and stats; the session goes on in a version 2 journal next to it, and the old
    file is left as it was."""
    os.makedirs(sessions_dir(home), mode=0o700)
    fixture = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "transcript-v1-8707854.json")
    old = os.path.join(sessions_dir(home), "20261128T212514Z-bcfa1108.json")
    original = open(fixture).read()
    open(old, "w").write(original)
    args = ["--base-url", server.url + "/v1", "--resume", "last"]
    r = run_piped(bin_dir, args, home, ":stats\n:system\none more\n:sessions\n")
    assert r.returncode == 0, r.stderr
    assert "resumed" in r.stderr and "7 turns, 4 messages in the conversation" in r.stderr
    assert "turns 7" in r.stdout and "errors 1" in r.stdout and "Be terse." in r.stdout
    assert "echo: one more" in r.stdout
    body = server.bodies()[-1]
    assert [m["content"] for m in body["messages"]] == ["Be terse.", "after reset", "echo: after reset", "last one", "echo: last one", "one more"]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50
    assert open(old).read() == original
    [journal] = transcripts(home)
    assert os.path.basename(journal) == "20261128T212514Z-bcfa1108.jsonl"
    t = read_transcript(journal)
    assert t["version"] == 2 and sum(e["type"] == "turn" for e in t["events"]) == 8
    assert r.stdout.count("8 turns") == 1, "the session is listed once, as its journal"


def test_a_journal_cut_short_by_a_crash_resumes_with_a_note(bin_dir, server, home):
    args = ["--base-url", server.url + "/v1", "--model", "m"]
    r = run_piped(bin_dir, args, home, "first\nsecond\n")
    assert r.returncode == 0, r.stderr
    [journal] = transcripts(home)
    with open(journal, "a") as f:
        f.write('{"type":"turn","at":"2026-11-28T21:00:00.000Z","prompt":"thi')
    r = run_piped(bin_dir, args + ["--resume", journal], home, ":stats\nthird\n")
    assert r.returncode == 0, r.stderr
    assert "its last line" in r.stderr and "cut short" in r.stderr and "left out" in r.stderr
    assert "turns 2" in r.stdout and "echo: third" in r.stdout
    t = read_transcript(journal)
    assert [e["prompt"] for e in t["events"] if e["type"] == "turn"] == ["first", "second", "third"]
