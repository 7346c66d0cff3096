"""What a user types, in a pseudo-terminal: keys typed during a turn are not drawn over its
spinner (they wait for the next prompt), and Tab completion of `:batch` files, `:var x @file`,
`max_tool_rounds`, and a second Tab after a completed word."""
import json
import subprocess
import time

import pexpect

from conftest import _spawned, plain

PROMPT = "› "


def chunk(delta, finish=None):
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def start(bin_dir, server, home, cwd):
    child = pexpect.spawn(str(bin_dir / "promptline"), ["--base-url", server.url + "/v1", "--model", "m"],
                          env=plain(home), encoding="utf-8", dimensions=(40, 120), timeout=20, cwd=str(cwd))
    _spawned.append(child)
    child.expect_exact(PROMPT)
    return child


def test_keys_typed_during_a_turn_wait_for_the_next_prompt(bin_dir, server, home, tmp_path):
    # The reply's text comes 1.5 s after its head: the spinner runs meanwhile.
    server.enqueue({"sse": [chunk({"role": "assistant"}), chunk({"content": "slow reply"}), chunk({}, "stop"),
                            "[DONE]"], "delay_ms": 1500})
    child = start(bin_dir, server, home, tmp_path)
    child.sendline("wait for it")
    child.expect_exact("waiting for the first token")
    child.send("typed ahead")
    child.expect_exact("slow reply")
    assert "typed ahead" not in child.before, "the keys were echoed over the spinner"
    child.expect_exact(PROMPT)
    # The next prompt shows them, ready to edit or send.
    child.expect_exact("typed ahead")
    child.sendline("")
    child.expect_exact("echo: typed ahead")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_tab_completes_batch_files_eval_files_var_files_and_max_tool_rounds(bin_dir, server, home, tmp_path):
    (tmp_path / "rows.jsonl").write_text(json.dumps({"country": "France"}) + "\n")
    (tmp_path / "notes.txt").write_text("from the file\n")
    child = start(bin_dir, server, home, tmp_path)
    # libedit redraws only what changed: what the completion inserted shows in what the line did.
    child.send(":batch ro\t")
    time.sleep(0.3)
    child.sendline("out=./r.jsonl -- Capital of {{country}}?")
    child.expect_exact("batch: 1 row × 1 variant → ./r.jsonl")
    child.expect_exact("batch done")
    child.expect_exact("1 ok, 0 failed")
    child.expect_exact(PROMPT)
    child.send(":var note @no\t")
    time.sleep(0.3)
    child.sendline("")
    child.expect_exact("note = from the file")
    child.expect_exact(PROMPT)
    (tmp_path / "evals.yaml").write_text(
        "prompts: ['Say {{w}}']\nproviders: [openai:echo]\ntests: [{vars: {w: hi}, assert: [{type: contains, value: hi}]}]\n")
    child.send(":eval ev\t")
    time.sleep(0.3)
    child.sendline("report=./e.html")
    child.expect_exact("batch: 1 row × 1 variant")
    child.expect_exact("report: ./e.html")
    child.expect_exact(PROMPT)
    assert (tmp_path / "e.html").exists()
    child.send(":set max_too\t")
    time.sleep(0.3)
    child.sendline("3")
    child.expect_exact("max_tool_rounds = 3")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_a_second_tab_after_a_completed_model_adds_nothing(bin_dir, server, home, tmp_path):
    child = start(bin_dir, server, home, tmp_path)
    child.send(":model \t")
    time.sleep(0.3)
    child.send("\t")
    time.sleep(0.3)
    child.sendline("")
    child.expect_exact("model m\r\n")
    assert "m m" not in child.before and "\x07" in child.before, "the second Tab only beeps"
    child.expect_exact(PROMPT)
    child.send(":mode s\t\t")
    time.sleep(0.3)
    child.sendline("")
    child.expect_exact("mode single")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_help_flag_names_the_proxy_and_ca_variables_and_breaks_only_between_words(bin_dir, home):
    for cols in (60, 80, 120):
        r = subprocess.run([str(bin_dir / "promptline"), "--help"], env=dict(home, COLUMNS=str(cols)),
                           capture_output=True, text=True, timeout=10)
        lines = r.stdout.splitlines()
        assert r.returncode == 0 and max(len(line) for line in lines) <= cols, (cols, r.stdout)
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "SSL_CERT_FILE", "OPENAI_API_KEY", "NO_COLOR"):
            assert name in r.stdout
        assert "  NO_PROXY: the hosts reached directly" in lines, "a list item keeps its line"
    # Wide enough, a sentence is one line: it is wrapped by the width, not broken where the source was.
    assert ("With stdin not a terminal, lines (prompts and :commands) are read from it, and the exit status is 1 "
            "if any turn failed:") in lines
