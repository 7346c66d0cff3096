"""`promptline --eval FILE` end to end on the release binary: a promptfoo-shaped eval file run
against the echo server, the matrix printed, exit 1 under the file's threshold and 0 over it, a
note for what was ignored, a garbled file as one line with status 2, and `--report`."""
from conftest import run_piped

EVAL = """description: capitals
prompts:
  - "Capital of {{{{country}}}}?"
  - label: terse
    raw: "{{{{country}}}}? One word."
providers:
  - openai:echo-a
  - id: openai:chat:echo-b
    label: b
    config: {{temperature: 0}}
defaultTest:
  assert:
    - type: contains
      value: "7"
tests:
{tests}
threshold: {threshold}
repeat: 2
sharing: false
"""


def write_eval(tmp_path, threshold):
    tests = "".join(f"  - vars: {{country: C{c}}}\n" for c in ("7", "17", "3", "4"))
    p = tmp_path / "capitals.yaml"
    p.write_text(EVAL.format(tests=tests, threshold=threshold))
    return p


def test_eval_exits_by_its_threshold_and_prints_the_matrix(bin_dir, server, home, tmp_path):
    args = ["--base-url", server.url + "/v1"]
    report = tmp_path / "r.html"
    over = run_piped(bin_dir, args + ["--eval", str(write_eval(tmp_path, 0.5)), "--report", str(report)], home, "", timeout=120)
    assert over.returncode == 0, over.stdout + over.stderr
    out = over.stdout
    assert "eval: capitals" in out
    # Variants are prompt × provider, named by what varies; each row sent twice.
    for label in ("prompt 1 · openai:echo-a", "prompt 1 · b", "terse · openai:echo-a", "terse · b"):
        assert label in out, out
    assert "batch: 4 rows × 4 variants × 2 sends" in out
    for figure in ("pass rate", "mean score", "pass@2", "stability"):
        assert figure in out, out
    assert "50% (4/8)" in out and "50% (2/4)" in out  # pass rate over sends; pass@2 over rows
    assert "failing rows (16):" in out and '✗ contains "7"' in out
    assert "✓ pass rate ≥ 50% under every variant" in out
    assert "note: " in over.stderr and "sharing" in over.stderr
    assert report.exists() and "<table" in report.read_text()
    under = run_piped(bin_dir, args + ["--eval", str(write_eval(tmp_path, 0.6))], home, "", timeout=120)
    assert under.returncode == 1, under.stdout + under.stderr
    assert "✗ pass rate under 60%" in under.stdout
    # The second run is compared with the first: nothing flipped.
    assert "0 pass→fail · 0 fail→pass" in under.stdout, under.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompts: [a]\nproviders: [ollama:llama3]\ntests: [{}]\n")
    r = run_piped(bin_dir, args + ["--eval", str(bad)], home, "", timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "ollama:llama3 is not a provider" in r.stderr, r.stderr
