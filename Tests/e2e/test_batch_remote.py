"""`:batch FILE remote` end to end: the release binary against the test server's Batch API — a
progress bar while the batch runs, Ctrl-C stopping the wait (not the batch), another promptline
collecting it by its id with `--batch-resume`, `:batches` listing it; failed lines sent again by a
rerun; the key in no file promptline wrote."""
import json
import os
import pathlib
import re
import stat

import pexpect

from conftest import run_piped, spawn, start_plain
from test_batch import results, rows

KEY = "sk-e2e-remote-batch-key-0123456789"


def control(server, **settings):
    return server._call("POST", "/_control/batch", settings)


def keyed(home):
    return dict(home, OPENAI_API_KEY=KEY, NO_COLOR="1")


def test_progress_ctrl_c_then_collected_by_another_promptline(bin_dir, server, home, tmp_path):
    control(server, lines_per_poll=1)
    data = rows(tmp_path / "rows.jsonl", 40)
    out = tmp_path / "out.jsonl"
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "gpt-4o-mini"], keyed(home), timeout=30)
    child.expect_exact("› ")
    child.sendline(f":batch {data} remote poll=0.2 out={out} -- Capital of {{{{country}}}}?")
    child.expect_exact("remote batch: 40 rows × 1 variant")
    child.expect(r"uploading 40 requests to gpt-4o-mini \(\d+ KB\)")
    child.expect(r"created (batch_\d+) \(validating\)")
    batch_id = child.match.group(1)
    child.expect(r"\[##*-*\] ([1-9]\d*)/40 · 0 failed · in_progress")
    child.sendintr()
    child.expect_exact(f"stopped waiting; {batch_id} goes on at the provider — :batch resume {batch_id} collects")
    child.expect_exact("› ")
    child.sendline("Hello")  # the session goes on
    child.expect_exact("echo: Hello")
    child.expect_exact("› ")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert not out.exists(), "nothing collected before the batch finished"

    # Another promptline, the first one closed: collected by the batch id alone.
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--batch-resume", batch_id, "--poll", "0.05"], keyed(home), "")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "40 ok, 0 failed · tokens in" in r.stdout
    assert f"batches: {batch_id} (cost at the Batch API's half price)" in r.stdout
    done = results(out)
    assert sorted(x["row"] for x in done) == list(range(40))
    assert all(x["output"] == f"echo: Capital of C{x['row']}?" and x["error"] is None for x in done)

    # Listed as promptline's, collected.
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "gpt-4o-mini"], keyed(home), ":batches\n")
    assert re.search(rf"^  {batch_id}  completed  gpt-4o-mini  40/40 done, 0 failed  collected$", r.stdout, re.M), r.stdout
    # Collected again: nothing appended.
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--batch-resume", batch_id], keyed(home), "")
    assert r.returncode == 0 and len(results(out)) == 40
    assert f"{batch_id}: collected already, in {out}" in r.stdout

    # The key is a header only: in no file promptline wrote; the record and input file are private.
    written = [p for p in pathlib.Path(tmp_path).rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" and "remote" in p.parts for p in written)
    for p in written:
        assert KEY not in p.read_text(errors="replace"), p
        if "remote" in p.parts:
            assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p


def test_failed_lines_fail_the_run_and_a_rerun_sends_only_them(bin_dir, server, home, tmp_path):
    control(server, fault="error_lines")
    data = rows(tmp_path / "rows.jsonl", 6)
    out = tmp_path / "out.jsonl"
    args = ["--base-url", server.url + "/v1", "--model", "gpt-4o-mini", "--batch", data, "--remote", "--poll", "0.05",
            "--template", "Capital of {{country}}?", "--out", str(out)]
    r = run_piped(bin_dir, args, keyed(home), "")
    assert r.returncode == 1, "a failed row fails the run"
    assert "4 ok, 2 failed" in r.stdout, r.stdout
    assert "remote batch: 6/6 · 2 failed · completed" in r.stdout
    failed = [x for x in results(out) if x["error"]]
    assert [x["row"] for x in failed] == [2, 5]
    assert "500" in failed[0]["error"] and "the server had an error" in failed[0]["error"]

    control(server, fault="none")
    r = run_piped(bin_dir, args, keyed(home), "")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "uploading 2 requests to gpt-4o-mini" in r.stdout
    assert "2 ok, 0 failed" in r.stdout
    uploads = [x for x in server.requests() if x["uri"] == "/v1/files"]
    assert len(uploads) == 2
    assert uploads[1]["body"].count('"custom_id"') == 2
    # Everything done: a third run sends nothing.
    r = run_piped(bin_dir, args, keyed(home), "")
    assert r.returncode == 0 and "nothing sent" in r.stdout
    assert control(server)["batches"] == 2


def test_what_cannot_be_sent_remotely_is_one_clear_line(bin_dir, server, home, tmp_path):
    data = rows(tmp_path / "rows.jsonl", 2)
    child = start_plain(bin_dir, server, home)
    child.sendline(f":batch {data} remote concurrency=4 -- {{{{country}}}}")
    child.expect_exact("error: concurrency is for a batch sent from here; a remote batch runs at the provider's pace")
    child.expect_exact("› ")
    child.sendline(":provider anthropic")
    child.expect_exact("› ")
    child.sendline(f":batch {data} remote -- {{{{country}}}}")
    child.expect_exact("error: remote batches use OpenAI's Batch API: switch with :provider openai (or openai-responses)")
    child.expect_exact("› ")
    child.sendline(":batch resume batch_nope")
    child.expect_exact("error: no remote batch batch_nope in ")
    child.expect_exact("› ")
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    assert not [x for x in server.requests() if "/files" in x["uri"] or "/batches" in x["uri"]]


def test_the_responses_format_batches_to_its_own_endpoint(bin_dir, server, home, tmp_path):
    data = rows(tmp_path / "rows.jsonl", 3)
    out = tmp_path / "out.jsonl"
    args = ["--base-url", server.url + "/v1", "--model", "gpt-4o-mini", "--provider", "openai-responses",
            "--system", "Be brief.", "--batch", data, "--remote", "--poll", "0.05", "--template", "Capital of {{country}}?",
            "--out", str(out)]
    r = run_piped(bin_dir, args, keyed(home), "")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 ok, 0 failed" in r.stdout
    create = next(x for x in server.requests() if x["uri"] == "/v1/batches" and x["method"] == "POST")
    assert json.loads(create["body"])["endpoint"] == "/v1/responses"
    upload = next(x for x in server.requests() if x["uri"] == "/v1/files")
    line = json.loads(next(l for l in upload["body"].splitlines() if l.startswith("{")))
    assert line["url"] == "/v1/responses"
    assert line["body"]["instructions"] == "Be brief." and "stream" not in line["body"]
    assert sorted(x["output"] for x in results(out)) == [f"echo: Capital of C{i}?" for i in range(3)]
