"""Usage and start-up errors, piped: one style (`error: …` on stderr, exit status 2) whether the
flag parser or promptline refuses, each naming what was wrong."""
import pathlib
import subprocess

from conftest import ROOT, run_piped


def refused(bin_dir, home, args, stdin=""):
    r = run_piped(bin_dir, args, dict(home, NO_COLOR="1"), stdin)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Error:" not in r.stderr and "Usage:" not in r.stderr and "USAGE" not in r.stderr
    return lines[0]


def test_the_flag_parser_and_promptline_refuse_in_one_style(bin_dir, home):
    assert refused(bin_dir, home, ["--bogus"]).startswith("error: Unknown option '--bogus'")
    assert "(promptline --help lists the flags)" in refused(bin_dir, home, ["--model"])
    assert refused(bin_dir, home, ["--poll", "0", "--batch-resume", "x"]).startswith(
        "error: --poll must be from 0.05 to 3600 seconds")
    assert refused(bin_dir, home, ["--max-attempts", "many"]).startswith("error: ")
    # --help and --version are not errors.
    r = run_piped(bin_dir, ["--help"], home, "")
    assert r.returncode == 0 and "--base-url" in r.stdout and r.stderr == ""
    r = run_piped(bin_dir, ["--version"], home, "")
    assert r.returncode == 0 and r.stdout.strip()


def test_a_missing_config_file_is_named(bin_dir, home, tmp_path):
    assert refused(bin_dir, home, ["--config", "nope.yaml"]) == "error: --config nope.yaml: no such file"
    missing = tmp_path / "conf" / "typo.yaml"
    assert refused(bin_dir, home, ["--config", str(missing)]) == f"error: --config {missing}: no such file"
    # The default config may be absent: the run goes on.
    r = run_piped(bin_dir, ["--base-url", "http://127.0.0.1:9/v1", "--model", "m"], home, ":model\n")
    assert r.returncode == 0 and "model m (openai)" in r.stdout, r.stderr


def test_a_base_url_is_checked_at_start(bin_dir, home):
    line = refused(bin_dir, home, ["--base-url", "not-a-url"])
    assert line == "error: --base-url not-a-url is not an http(s) URL; give one like https://api.openai.com/v1"
    line = refused(bin_dir, dict(home, OPENAI_BASE_URL="127.0.0.1:8080/v1"), [])
    assert line.startswith("error: OPENAI_BASE_URL 127.0.0.1:8080/v1 is not an http(s) URL")
    line = refused(bin_dir, home, ["--base-url", "http://user:s3cret-pass@/v1"])
    assert "s3cret-pass" not in line


def test_a_model_name_has_one_rule(bin_dir, home):
    assert refused(bin_dir, home, ["--model", "a b"]) == "error: --model: a model name has no spaces: a b"
    r = run_piped(bin_dir, ["--base-url", "http://127.0.0.1:9/v1", "--model", "m"], dict(home, NO_COLOR="1"), ":model a b\n:model\n")
    assert "error: a model name has no spaces: a b" in r.stderr
    assert "model m (openai)" in r.stdout


def test_the_man_page_has_no_help_subcommand(bin_dir, home):
    page = (ROOT / "docs/promptline.1").read_text()
    assert ".It Em help" not in page and "subcommand" not in page.lower()
    assert "Fl h , -help" in page and ".Sh \"EXIT STATUS\"" in page
    # The page's filter, on a page with the entry, leaves the rest as it was.
    entry = ".It Em help\nShow subcommand help information.\n.Bl -tag -width 6n\n.It Ar subcommands...\n.It Fl -version\nShow the version.\n.El\n"
    with_entry = page.replace(".It Fl h , -help\nShow help information.\n", ".It Fl h , -help\nShow help information.\n" + entry)
    with_entry = with_entry.replace(".Sh SYNOPSIS\n.Nm\n", ".Sh SYNOPSIS\n.Nm\n.Ar subcommand\n")
    assert with_entry != page
    out = subprocess.run(["python3", str(ROOT / "scripts/man-strip-help")], input=with_entry, capture_output=True, text=True, check=True).stdout
    assert out == page
