"""Limits that hold (issue 25), end to end against the built binary: --turn-timeout ends a stream
that stalls after its head (a turn and a batch row) at its limit, not at the 120 s read timeout;
a closed port on this machine is one line in well under 2 s; two promptlines resuming one session
never write to one journal (either order), and a killed holder leaves it free."""
import json
import os
import signal
import socket
import time

import pexpect

from conftest import read_transcript, run_piped, session_files, spawn

PROMPT = "› "
FIRST = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": {"content": "partial "}, "finish_reason": None}]})


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_stream_that_stalls_after_its_head_ends_at_the_turn_timeout(bin_dir, server, home):
    server.enqueue({"sse": [FIRST], "then": "stall"})
    t0 = time.monotonic()
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m", "--turn-timeout", "3"], home, "hi\n",
                  timeout=30)
    took = time.monotonic() - t0
    assert "turn" in r.stderr and "3" in r.stderr, r.stderr
    assert 2.5 <= took <= 4.5, f"the turn took {took:.1f} s under --turn-timeout 3 (the read timeout is 120 s)"
    assert len(server.requests()) == 1, "a turn past its limit is not sent again"


def test_a_batch_row_that_stalls_ends_at_the_turn_timeout(bin_dir, server, home, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"x": "1"}) + "\n")
    out = tmp_path / "out.jsonl"
    server.enqueue({"sse": [], "then": "stall"})
    t0 = time.monotonic()
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m", "--turn-timeout", "2", "--batch", str(data),
                            "--template", "row {{x}}", "--out", str(out)], home, "", timeout=30)
    took = time.monotonic() - t0
    assert 1.5 <= took <= 3.5, f"the batch took {took:.1f} s with one row under --turn-timeout 2"
    (line,) = [json.loads(l) for l in out.read_text().splitlines()]
    assert "turn" in json.dumps(line["error"]), line


def test_a_closed_port_on_this_machine_is_one_line_in_under_two_seconds(bin_dir, home):
    port = closed_port()
    t0 = time.monotonic()
    r = run_piped(bin_dir, ["--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m"], home, "hi\n", timeout=60)
    took = time.monotonic() - t0
    assert took < 2, f"{took:.1f} s to say nothing listens on the port (was 74 s: 10 s an attempt, 6 attempts)"
    errors = [l for l in r.stderr.splitlines() if f"127.0.0.1:{port}" in l]
    assert len(errors) == 1, r.stderr
    assert "nothing listens there, the server is not running" in errors[0], errors[0]
    assert "retrying" not in r.stderr, r.stderr


def a_saved_session(bin_dir, server, home):
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], home, "first\n")
    assert r.returncode == 0, r.stderr
    (path,) = session_files(home)
    return path


def prompts(path):
    return [e["prompt"] for e in read_transcript(path)["events"] if e["type"] == "turn"]


def test_a_second_resume_of_an_open_session_goes_on_as_a_copy(bin_dir, server, home):
    path = a_saved_session(bin_dir, server, home)
    args = ["--base-url", server.url + "/v1", "--model", "m", "--resume", "last"]
    a = spawn(bin_dir, args, home)
    a.expect_exact("resumed")
    a.expect_exact(PROMPT)
    b = run_piped(bin_dir, args, home, "from B\n")
    assert b.returncode == 0, b.stderr
    notes = [l for l in b.stderr.splitlines() if "is open in another promptline" in l]
    assert len(notes) == 1 and f"(pid {a.pid})" in notes[0] and "goes on as a copy" in notes[0], b.stderr
    a.sendline("from A")
    a.expect_exact("echo: from A")
    a.expect_exact(PROMPT)
    a.sendline(":quit")
    a.expect(pexpect.EOF)
    assert prompts(path) == ["first", "from A"], "the open session's file has its own turns only"
    (copy,) = [f for f in session_files(home) if f != path]
    assert prompts(copy) == ["first", "from B"]
    assert not os.path.exists(os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".lock"))


def test_a_resume_while_the_holder_is_mid_turn_never_interleaves(bin_dir, server, home):
    path = a_saved_session(bin_dir, server, home)
    args = ["--base-url", server.url + "/v1", "--model", "m", "--resume", "last"]
    a = spawn(bin_dir, args, home, timeout=20)
    a.expect_exact(PROMPT)
    slow = [json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                        "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}) for w in ("A1 ", "A2")]
    server.enqueue({"sse": slow + ["[DONE]"], "delay_ms": 1500})
    sent = len(server.requests())
    a.sendline("from A")
    deadline = time.monotonic() + 10
    while len(server.requests()) == sent and time.monotonic() < deadline:
        time.sleep(0.05)
    b = run_piped(bin_dir, args, home, "from B\n")  # while A's answer is still streaming
    assert "is open in another promptline" in b.stderr, b.stderr
    a.expect_exact("A1 A2")
    a.expect_exact(PROMPT)
    a.sendline(":quit")
    a.expect(pexpect.EOF)
    assert prompts(path) == ["first", "from A"]
    (copy,) = [f for f in session_files(home) if f != path]
    assert prompts(copy) == ["first", "from B"]


def test_a_killed_holder_leaves_the_session_free(bin_dir, server, home):
    path = a_saved_session(bin_dir, server, home)
    args = ["--base-url", server.url + "/v1", "--model", "m", "--resume", "last"]
    a = spawn(bin_dir, args, home)
    a.expect_exact(PROMPT)
    os.kill(a.pid, signal.SIGKILL)
    a.expect(pexpect.EOF)
    b = run_piped(bin_dir, args, home, "after the crash\n")
    assert b.returncode == 0 and "open in another promptline" not in b.stderr, b.stderr
    assert session_files(home) == [path], "resumed in place: the kernel dropped the dead holder's lock"
    assert prompts(path) == ["first", "after the crash"]
