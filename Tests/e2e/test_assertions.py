"""Assertions end to end, piped against the test server (which replies "echo: PROMPT"): the
verdicts print under the status line, are kept with the turn in the transcript, and a bad
assertion is one line that leaves the session going."""
import json

from conftest import read_transcript, run_piped, session_files, start_plain


def test_verdicts_after_a_turn_and_in_the_transcript(bin_dir, server, home):
    stdin = "\n".join([
        ":assert contains Paris",
        ":assert not-icontains LONDON weight=2",
        ":assert regex ([a-z",
        ":assert starts-with {{expected}}",
        ":var expected echo:",
        ":assert regex ^echo: \\d+$",
        ":asserts",
        "Capital of France? Paris",
        ":assert rm 4",
        ":assert threshold 0.5",
        "Capital of Peru?",
        ":quit",
    ]) + "\n"
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], dict(home, NO_COLOR="1"), stdin)
    out = r.stdout
    assert "is not a valid regular expression (e.g. :assert regex ^[0-9]+$)" in r.stderr
    assert "  1. contains \"Paris\"\n  2. not-icontains \"LONDON\" weight=2\n  3. starts-with \"{{expected}}\"\n" in out
    assert "✓ contains \"Paris\"\n✓ not-icontains \"LONDON\"\n✓ starts-with \"echo:\"\n" in out
    assert "✗ regex \"^echo: \\d+$\" — the output does not match" in out
    assert "assertions: 3/4 passed · score 0.80 · FAIL" in out
    # Second turn: no Paris (weight 1 of 4 fails), threshold 0.5 lets the row pass.
    assert "✗ contains \"Paris\" — the output does not contain \"Paris\"" in out
    assert "assertions: 2/3 passed · score 0.75 · PASS" in out
    turns = [e for e in read_transcript(session_files(home)[0])["events"] if e["type"] == "turn"]
    first = turns[0]["assertions"]
    assert [v["pass"] for v in first["verdicts"]] == [True, True, True, False]
    assert first["pass"] is False and abs(first["score"] - 0.8) < 1e-9
    assert turns[1]["assertions"]["pass"] is True
    assert json.dumps(turns).count("\"assertions\"") == 2


def test_batch_lines_carry_verdicts_and_the_summary_a_pass_rate(bin_dir, server, home, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"country": c}) + "\n" for c in ["France", "Peru", "Chad", "Fiji"]))
    out = tmp_path / "out.jsonl"
    stdin = "\n".join([
        ":assert contains {{country}}",
        ":assert regex ^echo: Capital of [A-F]",
        f":batch {data} out={out} model=a,b -- Capital of {{{{country}}}}?",
        ":quit",
    ]) + "\n"
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], dict(home, NO_COLOR="1"), stdin)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 8
    for x in lines:
        assert [v["type"] for v in x["assertions"]] == ["contains", "regex"]
        assert x["assertions"][0]["value"] == x["vars"]["country"]
        assert x["pass"] is (x["vars"]["country"][0] in "ABCDEF")
    assert "pass rate" in r.stdout
    assert r.stdout.count("75% (3/4)") == 2, r.stdout  # France, Chad, Fiji; not Peru


def test_tab_completes_assertion_types_and_rm(bin_dir, server, home):
    child = start_plain(bin_dir, server, home)
    child.send(":assert icont\tParis\r")
    child.expect_exact('assertion 1: icontains "Paris"')
    child.send(":assert not-sta\tSorry\r")
    child.expect_exact('assertion 2: not-starts-with "Sorry"')
    child.send(":assert rm a\t\r")
    child.expect_exact("2 assertions removed")
    child.sendline(":quit")


def test_a_key_in_an_assertion_never_reaches_the_transcript_or_results(bin_dir, server, home, tmp_path):
    key = "sk-assertkey0123456789abcdef"
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"country": "France"}) + "\n")
    out = tmp_path / "out.jsonl"
    stdin = f":assert not-contains {key}\nhello\n:batch {data} out={out} -- {{{{country}}}}\n:quit\n"
    env = dict(home, NO_COLOR="1", OPENAI_API_KEY=key)
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], env, stdin)
    assert r.returncode == 0, r.stdout + r.stderr
    transcript = open(session_files(home)[0]).read()
    assert "\"assertions\"" in transcript and key not in transcript
    results = out.read_text()
    assert "not-contains" in results and key not in results
