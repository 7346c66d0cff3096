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

from conftest import KEY, run_piped, spawn

PROMPT = "› "


def sessions_dir(home):
    return os.path.join(home["XDG_DATA_HOME"], "promptline", "sessions")


def transcripts(home):
    return sorted(glob.glob(os.path.join(sessions_dir(home), "*.json")))


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
    t = json.loads(open(transcripts(home)[0]).read())
    assert t["format"] == "promptline-transcript" and t["version"] == 1
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
    child.expect_exact("is not a promptline transcript; :save! ")
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
    """Kill the binary at random moments while it autosaves after every turn (with a pause
    between write and rename to widen the window): the file is always complete and loadable."""
    env = dict(home, PROMPTLINE_TEST_PAUSE_BEFORE_RENAME_MS="5")
    rnd = random.Random(7)
    args = ["--base-url", server.url + "/v1", "--model", "m"]
    kills = 0
    for i in range(12):
        proc = subprocess.Popen([str(bin_dir / "promptline"), *args], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        proc.stdin.write(("".join(f"turn {i}.{k} " + "x" * 200 + "\n" for k in range(40))).encode())
        proc.stdin.flush()
        time.sleep(rnd.uniform(0.05, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        for f in transcripts(home):
            with open(f) as fh:
                t = json.load(fh)  # never truncated
            assert t["format"] == "promptline-transcript"
            r = run_piped(bin_dir, args + ["--resume", f], home, ":quit\n")
            assert r.returncode == 0, r.stderr
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
