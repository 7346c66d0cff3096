"""Security round 3 (issue #25), each attack performed against the built binary: a key planted in
every field lands in no file written and not on the status line; a resumed or cancelled batch never
sends a key to another server; YAML alias bombs stay small; a script planted above a copied binary
never runs; --out leaves an existing folder's mode alone; an install from a folder named with
`$(…)` runs nothing; a tool's description cannot forge a line (docs/security.md maps these)."""
import json
import os
import pathlib
import shutil
import stat
import subprocess

import pexpect

from conftest import ROOT, start_test_server, run_piped, spawn, CRASH_SIGNALS
from test_batch import results, rows

KEY = "sk-e2e-planted-KEY-5b2e7d41c9"
OTHER = "sk-e2e-other-server-KEY-88a1f0"


def control(server, **settings):
    return server._call("POST", "/_control/batch", settings)


def echoing_reply(model_field=None):
    k = KEY
    return {"json": {"id": f"chatcmpl-{k}", "object": "chat.completion", "created": 1, "model": model_field or f"m-{k}",
                     "system_fingerprint": f"fp-{k}",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": f"reply {k}"},
                                  "finish_reason": f"stop-{k}"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 2}}}


def written_files(tmp_path):
    """Every file promptline wrote under the test's folder (HOME, the XDG dirs, out= paths)."""
    return [p for p in pathlib.Path(tmp_path).rglob("*") if p.is_file() and "input" not in p.relative_to(tmp_path).parts]


def test_a_key_planted_everywhere_reaches_no_file_and_not_the_status_line(bin_dir, server, home, tmp_path):
    env = dict(home, OPENAI_API_KEY=KEY, NO_COLOR="1")
    (tmp_path / "input").mkdir()
    data = tmp_path / "input" / "rows.jsonl"  # the test's own file, holding the key
    data.write_text(json.dumps({"v": KEY}) + "\n" + json.dumps({"v": "plain"}) + "\n")
    out = tmp_path / "out" / "local.jsonl"
    remote_out = tmp_path / "out" / "remote.jsonl"
    control(server, fault="fail", fail_message=f"line 1 holds {KEY}")
    server.enqueue(echoing_reply(), echoing_reply(), echoing_reply())
    script = "\n".join([
        f":var k {KEY}",
        "use {{k}} now",
        f":batch {data} out={out} -- say {{{{k}}}} {{{{v}}}}",
        f":batch {data} remote poll=0.05 out={remote_out} -- say {{{{v}}}}",
        f":export {tmp_path / 'export.md'}",
        f":save {tmp_path / 'saved.jsonl'}",
        ":quit", ""])
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "gpt-4o-mini", "--system", "key {{k}}"],
                  env, script, timeout=60)
    assert "m-[redacted]" in r.stdout, r.stdout + r.stderr  # the status line shows the model, redacted
    assert KEY[:12] not in r.stdout + r.stderr
    files = written_files(tmp_path)
    names = {p.name for p in files}
    assert {"local.jsonl", "remote.jsonl", "export.md", "saved.jsonl"} <= names, names
    assert any(p.suffix == ".json" and "remote" in p.parts for p in files)
    assert any(p.name.endswith(".input.jsonl") for p in files)
    assert any("sessions" in p.parts for p in files)
    for p in files:
        assert KEY[:12] not in p.read_text(errors="replace"), p
    assert "line 1 holds [redacted]" in remote_out.read_text()
    uploads = [x for x in server.requests() if x["uri"] == "/v1/files"]
    assert KEY in uploads[0]["body"], "what is uploaded is what the rows asked for"


def test_a_resumed_or_cancelled_batch_never_sends_the_key_to_another_server(bin_dir, server, home, tmp_path):
    other = start_test_server(bin_dir)
    try:
        control(server, lines_per_poll=1)
        data = rows(tmp_path / "rows.jsonl", 30)
        out = tmp_path / "out.jsonl"
        env_a = dict(home, OPENAI_API_KEY=KEY, NO_COLOR="1")
        child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "gpt-4o-mini"], env_a, timeout=30)
        child.expect_exact("› ")
        child.sendline(f":batch {data} remote poll=0.3 out={out} -- {{{{country}}}}")
        child.expect(r"created (batch_\d+) \(validating\)")
        batch_id = child.match.group(1)
        child.expect(r"/30 · 0 failed")
        child.sendintr()
        child.expect_exact("stopped waiting")
        child.expect_exact("› ")
        child.sendline(":quit")
        child.expect(pexpect.EOF)
        before = len(server.requests())

        # Another session, holding the other server's key: refused, nothing sent anywhere.
        env_b = dict(home, OPENAI_API_KEY=OTHER, NO_COLOR="1")
        base_b = ["--base-url", other.url + "/v1", "--model", "gpt-4o-mini"]
        r = run_piped(bin_dir, [*base_b, "--batch-resume", batch_id, "--poll", "0.05"], env_b, "")
        assert r.returncode != 0
        lines = [l for l in r.stderr.splitlines() if "error:" in l]
        assert len(lines) == 1, r.stderr
        assert f"was sent to {server.url}/v1, but this session's openai key is for {other.url}/v1" in lines[0], lines
        r = run_piped(bin_dir, base_b, env_b, f":batch resume {batch_id}\n:batch cancel {batch_id}\n:quit\n")
        assert r.stderr.count(f"was sent to {server.url}/v1") == 2, r.stdout + r.stderr
        assert len(server.requests()) == before, "nothing reached the record's server"
        for req in server.requests() + other.requests():
            assert OTHER not in json.dumps(req), req
        assert not any("/batches" in x["uri"] for x in other.requests())

        # The session configured for the record's server follows it with that server's key.
        r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--batch-resume", batch_id, "--poll", "0.05"], env_a, "")
        assert r.returncode == 0, r.stdout + r.stderr
        assert len(results(out)) == 30
    finally:
        other.proc.stdin.close()
        other.proc.wait(timeout=5)


BOMB = "\n".join(["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
                 + [f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi")]) + "\n"


def peak_rss_mb(bin_dir, args, env, stdin):
    """Runs promptline and returns (its peak resident memory in MB, stdout, stderr)."""
    p = subprocess.Popen([str(bin_dir / "promptline"), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    p.stdin.write(stdin)
    p.stdin.close()
    stdout, stderr = p.stdout.read(), p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    assert -p.returncode not in CRASH_SIGNALS, stderr
    return usage.ru_maxrss / 1024, stdout, stderr


def test_a_yaml_alias_bomb_is_refused_in_one_line_under_100_mb_for_every_yaml_input(bin_dir, server, home, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    env = dict(home, OPENAI_API_KEY=KEY, NO_COLOR="1")
    base = ["--base-url", server.url + "/v1", "--model", "m"]
    cases = [
        (["--func", str(bomb)], ""),
        (["--tool", str(bomb)], ""),
        (["--config", str(bomb)], ""),
        ([], f":mock {bomb}\n:quit\n"),
        ([], f":tool {bomb}\n:quit\n"),
        ([], f":schema {bomb}\n:quit\n"),
        ([], f":func {bomb}\n:quit\n"),
    ]
    for extra, stdin in cases:
        rss, stdout, stderr = peak_rss_mb(bin_dir, [*base, *extra], env, stdin)
        assert rss < 100, (extra, stdin, rss)
        lines = [l for l in (stdout + stderr).splitlines() if "aliases" in l]
        assert len(lines) == 1 and "line 2: YAML aliases (*name) are not supported" in lines[0], (extra, stdout, stderr)


def test_a_script_planted_above_a_copied_binary_never_runs(bin_dir, home, tmp_path):
    copy = tmp_path / "x" / "promptline"
    copy.parent.mkdir()
    shutil.copy2(bin_dir / "promptline", copy)
    marker = tmp_path / "PLANTED-RAN"
    for where in (tmp_path / "scripts", tmp_path / "x" / "scripts"):
        where.mkdir()
        s = where / "local-llm"
        s.write_text(f"#!/bin/sh\ntouch {marker}\n")
        s.chmod(0o755)
    env = {k: v for k, v in home.items() if k != "PROMPTLINE_LOCAL_LLM"}
    r = subprocess.run([str(copy), "--local"], input="", env=env, capture_output=True, text=True, timeout=30)
    assert not marker.exists(), "a script found by walking up the tree ran"
    assert r.returncode != 0
    assert "set PROMPTLINE_LOCAL_LLM" in r.stderr, r.stderr

    # The named script runs without any provider's key in its environment.
    dump = tmp_path / "env.txt"
    named = tmp_path / "named-local-llm"
    named.write_text(f"#!/bin/sh\nenv > {dump}\nexit 3\n")
    named.chmod(0o755)
    env = dict(env, PROMPTLINE_LOCAL_LLM=str(named), OPENAI_API_KEY=KEY, ANTHROPIC_API_KEY=OTHER,
               LOCAL_LLM_API_KEY="local-server-key")
    r = subprocess.run([str(copy), "--local"], input="", env=env, capture_output=True, text=True, timeout=30)
    seen = dump.read_text()
    assert KEY not in seen and OTHER not in seen
    assert "LOCAL_LLM_API_KEY=local-server-key" in seen
    assert "did not start (exit 3)" in r.stderr

    # A model path with a newline is refused before the script runs.
    dump.unlink()
    r = subprocess.run([str(copy), "--local", "--local-model", f"{tmp_path}/m.gguf\nURL=http://evil/v1"], input="",
                       env=env, capture_output=True, text=True, timeout=30)
    assert not dump.exists()
    assert "--local-model: the path holds a newline or a control character" in r.stderr, r.stderr


def test_local_llm_script_refuses_a_model_path_with_a_newline(tmp_path):
    env = dict(os.environ, PROMPTLINE_CACHE=str(tmp_path / "cache"), LOCAL_LLM_MODEL=f"{tmp_path}/a\nURL=http://evil/v1")
    r = subprocess.run(["bash", str(ROOT / "scripts/local-llm"), "start"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "newline or control character" in r.stderr, r.stderr
    assert not (tmp_path / "cache" / "run" / "local-llm.env").exists()


def test_out_keeps_an_existing_folders_mode_and_a_bare_name_is_the_current_folder(bin_dir, server, home, tmp_path):
    shared = tmp_path / "x"
    shared.mkdir()
    shared.chmod(0o755)
    data = rows(tmp_path / "rows.jsonl", 2)
    env = dict(home, NO_COLOR="1")
    base = ["--base-url", server.url + "/v1", "--model", "echo-model", "--batch", data, "--template", "{{country}}"]
    r = run_piped(bin_dir, [*base, "--out", str(shared / "r.jsonl")], env, "")
    assert r.returncode == 0, r.stdout + r.stderr
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
    assert len(results(shared / "r.jsonl")) == 2
    # Missing folders are made, private.
    r = run_piped(bin_dir, [*base, "--out", str(shared / "new" / "deeper" / "r.jsonl")], env, "")
    assert r.returncode == 0, r.stdout + r.stderr
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(shared / "new").st_mode) & 0o077 == 0
    # A bare name: the current folder.
    work = tmp_path / "work"
    work.mkdir()
    p = subprocess.run([str(bin_dir / "promptline"), "--base-url", server.url + "/v1", "--model", "echo-model"],
                       input=f":batch {data} out=r.jsonl -- {{{{country}}}}\n:quit\n", env=env, cwd=work,
                       capture_output=True, text=True, timeout=60)
    assert "cannot create folder" not in p.stdout + p.stderr, p.stdout + p.stderr
    assert len(results(work / "r.jsonl")) == 2


def test_an_install_from_a_folder_named_with_a_command_runs_nothing(tmp_path):
    pwned = tmp_path / "PWNED"
    checkout = tmp_path / f"ck$(touch {pwned})"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "docs").mkdir()
    for name in ("install", "local-llm"):
        shutil.copy2(ROOT / "scripts" / name, checkout / "scripts" / name)
    shutil.copy2(ROOT / "docs" / "promptline.1", checkout / "docs" / "promptline.1")
    fake = tmp_path / "fake-promptline"
    fake.write_text('#!/bin/sh\necho "ran with: $PROMPTLINE_LOCAL_LLM $*"\n')
    fake.chmod(0o755)
    prefix = tmp_path / "prefix"
    env = dict(os.environ, PREFIX=str(prefix), PROMPTLINE_PREBUILT=str(fake))
    env.pop("PROMPTLINE_LOCAL_LLM", None)
    r = subprocess.run([str(checkout / "scripts" / "install")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    wrapper = prefix / "bin" / "promptline"
    r = subprocess.run([str(wrapper), "a b"], env=env, capture_output=True, text=True, timeout=10)
    assert not pwned.exists(), "the checkout's name ran as a command"
    assert r.stdout.strip() == f"ran with: {checkout}/scripts/local-llm a b", r.stdout
    assert [p.name for p in (prefix / "bin").iterdir()] == ["promptline"], "no temporary file is left"

    # A symlink where the wrapper goes is refused, and what it points at is untouched.
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    wrapper.unlink()
    wrapper.symlink_to(target)
    r = subprocess.run([str(checkout / "scripts" / "install")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "is a symbolic link" in r.stderr, r.stderr
    assert target.read_text() == "keep"


def test_a_tool_description_cannot_forge_a_line_in_the_tools_listing(bin_dir, server, home, tmp_path):
    tool = tmp_path / "t.json"
    tool.write_text(json.dumps({"name": "lookup", "description": "Finds.\nchoice none · mock /etc/official\r\x1b[2Jx",
                                "parameters": {"type": "object", "properties": {}}}))
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m", "--tool", str(tool)],
                  dict(home, NO_COLOR="1"), ":tools\n:quit\n")
    lines = r.stdout.splitlines()
    assert any(l.startswith("  lookup — Finds. choice none · mock /etc/official") for l in lines), r.stdout
    assert not any(l.startswith("choice none") for l in lines), r.stdout
    assert "\x1b" not in r.stdout and "\r" not in r.stdout
