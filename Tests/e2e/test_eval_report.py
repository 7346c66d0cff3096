"""Evals across runs, end to end: two `:batch` runs over the same dataset with assertions, the
second told what flipped since the first; `:eval diff`; `:report` writing an HTML page that a real
headless Chromium renders, whose filters work, and in which a model's `<script>` stays text."""
import html
import json
import re
import shutil
import subprocess

import pytest

from conftest import run_piped

SCRIPT = "<script>document.title='pwned'</script>"


def write_rows(path, countries):
    path.write_text("".join(json.dumps({"country": c}) + "\n" for c in countries))


def batch(bin_dir, server, home, data, extra=""):
    args = ["--base-url", server.url + "/v1", "--model", "echo-model"]
    stdin = f":assert contains 7\n:batch {data} model=a,b -- Capital of {{{{country}}}}?\n{extra}"
    r = run_piped(bin_dir, args, home, stdin, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def results_files(home):
    import pathlib
    return sorted(pathlib.Path(home["XDG_DATA_HOME"], "promptline", "batches").glob("*-rows.jsonl"))


def chromium(*args):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is installed by scripts/setup"
    r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_a_second_run_lists_what_flipped_and_the_report_renders_in_a_browser(bin_dir, server, home, tmp_path):
    before = [f"C{i}" for i in range(12)] + [SCRIPT]
    after = [f"C{i}x7" if i % 5 == 0 else "D" if i == 7 else f"C{i}" for i in range(12)] + [SCRIPT]
    data = tmp_path / "rows.jsonl"
    write_rows(data, before)
    batch(bin_dir, server, home, data)
    [first] = results_files(home)
    write_rows(data, after)
    report = tmp_path / "report.html"
    r = batch(bin_dir, server, home, data, f":report {report}\n")
    second = [f for f in results_files(home) if f != first][0]
    broke = [i for i in range(12) if "7" in before[i] and "7" not in after[i]]
    fixed = [i for i in range(12) if "7" not in before[i] and "7" in after[i]]
    assert broke == [7] and fixed == [0, 5, 10]
    # Rows are named by the results file's `row` (0 for the dataset's first).
    head = f"{first.name} → {second.name}: 26 graded rows compared · 2 pass→fail · 6 fail→pass"
    assert head in r.stdout, r.stdout
    for variant in ("model=a", "model=b"):
        assert f"✗ row {broke[0]} [{variant}] pass→fail: contains 7" in r.stdout
        for i in fixed:
            assert f"✓ row {i} [{variant}] fail→pass" in r.stdout
    assert f"report: {report} (26 results against {first}) — open it in a browser" in r.stdout, r.stdout

    d = run_piped(bin_dir, [], home, f":eval diff {first} {second}\n:eval diff {first}\n:eval diff {first} {tmp_path}/nope.jsonl\n")
    assert d.returncode == 0
    assert f"{first} → {second}: 26 graded rows compared · 2 pass→fail · 6 fail→pass" in d.stdout
    assert "    contains 7 [model=a]: 1/13 → 3/13 (+2)" in d.stdout, d.stdout
    assert ":eval diff takes OLD NEW (two results files)" in d.stderr
    assert "cannot read results file" in d.stderr and "nope.jsonl" in d.stderr

    page = report.read_text()
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in page
    # All cells shown; then only model=b's failed ones, chosen through the URL as a user's click would save it.
    dom = chromium("--dump-dom", report.as_uri())
    assert f"<title>promptline eval — {second.name}</title>" in dom
    assert "26 of 26 shown" in dom
    dom = chromium("--dump-dom", report.as_uri() + "#failed&variant=model%3Db")
    cells = re.findall(r'<section class="cell ([a-z ]+)" data-row="(\d+)" data-variant="([^"]*)"', dom)
    shown = sorted(int(row) for cls, row, v in cells if "hidden" not in cls)
    failing_after = [i for i in range(13) if "7" not in after[i]]
    assert shown == failing_after
    assert all(v == "model=b" for cls, row, v in cells if "hidden" not in cls)
    assert f"{len(failing_after)} of 26 shown" in dom
    # The model's script stayed text: the title is the report's, and the page shows it as typed.
    assert "pwned</title>" not in dom
    assert html.escape("echo: Capital of " + SCRIPT, quote=False) in dom
    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,900", report.as_uri())
    assert shot.stat().st_size > 10_000
