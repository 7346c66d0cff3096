"""Where promptline's files go when only HOME is set, which session `--resume last` continues,
and `:sessions` reading summaries: the built binary through a pseudo-terminal and pipes."""
import glob
import json
import os
import pathlib
import pwd
import re
import time

import pexpect

from conftest import KEY, run_piped, spawn

PROMPT = "› "


def home_only(home):
    """The test environment with HOME and no XDG_* variable: every default path comes from HOME."""
    env = {k: v for k, v in home.items() if not k.startswith("XDG_") and k != "PROMPTLINE_CACHE"}
    env["NO_COLOR"] = "1"
    return env


def test_with_only_home_set_every_file_lands_under_it(bin_dir, server, home, tmp_path):
    env = home_only(home)
    h = pathlib.Path(env["HOME"])
    marker = f"marker-{os.getpid()}-{time.time_ns()}"
    (h / ".config/promptline").mkdir(parents=True)
    (h / ".config/promptline/config.yaml").write_text(f"system: From the home config {marker}.\n")
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"country": f"C{i}"}) + "\n" for i in range(2)))
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "gpt-4o-mini"], dict(env, OPENAI_API_KEY=KEY), timeout=30)
    child.expect_exact(PROMPT)
    child.sendline(":system")
    child.expect_exact(f"From the home config {marker}.")
    child.sendline(f"hello {marker}")
    child.expect_exact(f"echo: hello {marker}")
    child.expect_exact(PROMPT)
    child.sendline(f":batch {data} -- {marker} {{{{country}}}}")
    child.expect_exact("2 ok, 0 failed")
    child.expect_exact(PROMPT)
    remote = tmp_path / "remote-rows.jsonl"
    remote.write_text(data.read_text())
    child.sendline(f":batch {remote} remote poll=0.05 -- {marker} {{{{country}}}}")
    child.expect_exact("2 ok, 0 failed")
    child.expect_exact(PROMPT)
    child.sendline(":save ~/saved.jsonl")
    child.expect_exact(f"saved {h}/saved.jsonl")
    child.sendline(":export ~/session.md")
    child.expect_exact(f"exported {h}/session.md")
    # `~` in completion is the same home.
    child.send(":load ~/sav\t")
    child.expect_exact("ed.jsonl")
    child.send("\r")
    child.expect_exact("loaded ~/saved.jsonl: 1 turn")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)

    share = h / ".local/share/promptline"
    assert (h / ".local/state/promptline/history").is_file(), "history under $HOME/.local/state"
    assert marker in (h / ".local/state/promptline/history").read_text(errors="replace")
    assert glob.glob(str(share / "sessions/*.jsonl")), "transcripts under $HOME/.local/share"
    assert glob.glob(str(share / "batches/*.jsonl")), "batch results under $HOME/.local/share"
    assert glob.glob(str(share / "batches/remote/*.json")), "remote batch records under $HOME/.local/share"
    assert (h / "saved.jsonl").is_file() and (h / "session.md").is_file()
    # Nothing of this run in the account's own home.
    real = pathlib.Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert real != h
    for sub in (".local/share/promptline", ".local/state/promptline"):
        for p in (real / sub).rglob("*") if (real / sub).is_dir() else []:
            if p.is_file() and p.stat().st_size < 50_000_000:
                assert marker not in p.read_text(errors="replace"), p


def test_local_reads_the_server_state_under_home(bin_dir, server, home, tmp_path):
    """--local finds what scripts/local-llm recorded in $HOME/.cache/promptline (HOME is where the
    script writes it too); here the state names the test server, and the script only says it is up."""
    env = home_only(home)
    run = pathlib.Path(env["HOME"]) / ".cache/promptline/run"
    run.mkdir(parents=True)
    (run / "local-llm.env").write_text(
        f"URL={server.url}/v1\nPORT={server.port}\nPID={os.getpid()}\nMODEL=tiny-local\nMODEL_PATH=/models/tiny.gguf\nCTX_SIZE=512\n")
    script = tmp_path / "local-llm"
    script.write_text('#!/bin/sh\n[ "$1" = start ] && [ -f "$HOME/.cache/promptline/run/local-llm.env" ]\n')
    script.chmod(0o755)
    r = run_piped(bin_dir, ["--local"], dict(env, PROMPTLINE_LOCAL_LLM=str(script)), "hi there\n")
    assert r.returncode == 0, r.stderr
    assert "local model tiny-local (tiny.gguf, context 512 tokens)" in r.stderr, r.stderr
    assert "echo: hi there" in r.stdout
    assert server.bodies()[-1]["model"] == "tiny-local"


def sessions(home):
    return sorted(glob.glob(os.path.join(home["XDG_DATA_HOME"], "promptline", "sessions", "*.jsonl")))


def test_resume_last_after_load_continues_the_session_just_left(bin_dir, server, home, tmp_path):
    args = ["--base-url", server.url + "/v1", "--model", "echo-model"]
    env = dict(home, NO_COLOR="1")
    saved = tmp_path / "saved.jsonl"
    r = run_piped(bin_dir, args, env, f"the first session\n:save {saved}\n")
    assert r.returncode == 0, r.stderr
    (first,) = sessions(home)
    time.sleep(1.1)  # the next journal starts in a later second than the loaded transcript
    child = spawn(bin_dir, args, env)
    child.expect_exact(PROMPT)
    child.sendline(f":load {saved}")
    child.expect_exact(f"loaded {saved}: 1 turn, model echo-model, 2 messages in the conversation")
    for p in ("after the load 1", "after the load 2"):
        child.sendline(p)
        child.expect_exact(f"echo: {p}")
        child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(r"transcript: (\S+\.jsonl)")
    left = child.match.group(1)
    child.expect(pexpect.EOF)
    assert left != first and sorted(sessions(home)) == sorted([first, left])
    stamp = lambda p: os.path.basename(p).split("-")[0]
    assert stamp(left) > stamp(first), "named for its own start, not the loaded transcript's"
    header = json.loads(pathlib.Path(left).read_text().splitlines()[0])
    assert header["created"] == json.loads(saved.read_text().splitlines()[0])["created"], "the header keeps the conversation's"

    child = spawn(bin_dir, args + ["--resume", "last"], env)
    child.expect_exact(f"resumed {left}: 3 turns, 6 messages in the conversation")
    child.expect_exact(PROMPT)
    child.sendline(":sessions")
    child.expect_exact("3 turns  the first session")
    child.expect_exact(left)
    child.expect_exact("1 turn  the first session")
    child.expect_exact(first)
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)

    # Resuming the first one and writing to it makes it the last.
    r = run_piped(bin_dir, args + ["--resume", first], env, "back to the first\n")
    assert r.returncode == 0, r.stderr
    r = run_piped(bin_dir, args + ["--resume", "last"], env, "")
    assert f"resumed {first}: 2 turns" in r.stderr, r.stderr


def test_sessions_are_listed_from_their_summaries(bin_dir, server, home):
    args = ["--base-url", server.url + "/v1", "--model", "echo-model"]
    env = dict(home, NO_COLOR="1")
    run_piped(bin_dir, args, env, "only one turn\n")
    (path,) = sessions(home)
    index = pathlib.Path(path).parent / ".index" / (os.path.basename(path) + ".json")
    summary = json.loads(index.read_text())
    assert summary["turns"] == 1 and summary["first_prompt"] == "only one turn"
    assert summary["size"] == os.path.getsize(path)
    assert oct(index.stat().st_mode & 0o777) == "0o600" and oct(index.parent.stat().st_mode & 0o777) == "0o700"
    r = run_piped(bin_dir, args, env, ":sessions\n")
    assert re.search(r"echo-model  1 turn  only one turn\n    " + re.escape(path), r.stdout), r.stdout
    # A journal copied in by hand (no summary) is read once and listed.
    copy = pathlib.Path(path).with_name("20300101T000000Z-copied.jsonl")
    lines = pathlib.Path(path).read_text().splitlines(keepends=True)
    head = json.loads(lines[0])
    head["id"] = "copied"
    copy.write_text(json.dumps(head) + "\n" + "".join(lines[1:]))
    r = run_piped(bin_dir, args, env, ":sessions\n")
    assert str(copy) in r.stdout and path in r.stdout, r.stdout
    assert (index.parent / (copy.name + ".json")).is_file()
