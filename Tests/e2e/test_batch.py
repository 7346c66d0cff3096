"""`:batch` and `--batch` end to end: the release binary against the test server — a progress
bar on a terminal, Ctrl-C stopping a run cleanly and a rerun finishing it without sending a row
twice, `--batch` without the REPL."""
import json

import pexpect

from conftest import record_bodies, run_piped, spawn

PROMPT = "› "


def rows(path, n):
    path.write_text("".join(json.dumps({"country": f"C{i}"}) + "\n" for i in range(n)))
    return str(path)


def results(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_progress_ctrl_c_and_a_resumed_run(bin_dir, server, home, tmp_path):
    data = rows(tmp_path / "rows.jsonl", 3000)
    out = tmp_path / "out.jsonl"
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], dict(home, NO_COLOR="1"), timeout=60)
    child.expect_exact(PROMPT)
    child.sendline(f":batch {data} concurrency=1 out={out} -- Capital of {{{{country}}}}?")
    child.expect_exact("batch: 3000 rows × 1 variant")
    # Stopped once a row is done (the first row's connection can outlast the stop on a loaded machine).
    child.expect(r"\[#*-*\] [1-9]\d*/3000 · 0 failed · concurrency 1")
    child.sendintr()
    child.expect_exact("batch stopped (Ctrl-C)")
    child.expect_exact(PROMPT)
    first = results(out)
    assert 0 < len(first) < 3000
    sent_before = len(server.requests())
    assert sent_before in (len(first), len(first) + 1), "at most the request in flight was dropped"
    child.sendline(f":batch {data} concurrency=8 out={out} -- Capital of {{{{country}}}}?")
    child.expect_exact(f"{len(first)} already in the results file, not sent again", timeout=120)
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    done = results(out)
    assert sorted(r["row"] for r in done) == list(range(3000))
    assert all(r["output"] == f"echo: Capital of C{r['row']}?" and r["error"] is None for r in done)
    prompts = [json.loads(r["body"])["messages"][-1]["content"] for r in server.requests()]
    # Every row was sent; a row is sent twice only if Ctrl-C cut its request off unrecorded.
    assert len(set(prompts)) == 3000
    assert len(prompts) - 3000 == sent_before - len(first)
    record_bodies(server, "batch")


def test_batch_flag_runs_without_the_repl(bin_dir, server, home, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text('country,lang\nFrance,fr\n"Korea, South",ko\n')
    out = tmp_path / "out.jsonl"
    args = ["--base-url", server.url + "/v1", "--model", "echo-model", "--batch", str(data), "--template",
            "Capital of {{country}} ({{lang}})?", "--out", str(out), "--var", "unused=1"]
    r = run_piped(bin_dir, args, home, "")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 ok, 0 failed" in r.stdout
    assert sorted(x["prompt"] for x in results(out)) == ["Capital of France (fr)?", "Capital of Korea, South (ko)?"]
    server.enqueue({"status": 400, "json": {"error": {"message": "bad"}}})
    (tmp_path / "more.jsonl").write_text('{"country": "Peru", "lang": "es"}\n')
    r = run_piped(bin_dir, args[:5] + [str(tmp_path / "more.jsonl")] + args[6:], home, "")
    assert r.returncode == 1, "a failed row fails the run"
    assert "0 ok, 1 failed" in r.stdout
