"""The ecosystem's conventions end to end: scripts/install (a wrapper, the binary, completions
for bash, zsh and fish), bash completing promptline's flags, and :copy's OSC 52 sequence."""
import base64
import json
import os
import re
import subprocess

import pexpect

from conftest import ROOT, run_piped, spawn

PROMPT = "› "


def test_install_and_completion(tmp_path):
    prefix = tmp_path / "prefix"
    r = subprocess.run([str(ROOT / "scripts/install")], env=dict(os.environ, PREFIX=str(prefix)), capture_output=True,
                       text=True, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"installed {prefix}/bin/promptline" in r.stdout
    out = subprocess.run([str(prefix / "bin/promptline"), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip()
    assert (prefix / "share/man/man1/promptline.1").read_text() == (ROOT / "docs/promptline.1").read_text()
    bash = prefix / "share/bash-completion/completions/promptline"
    assert "--tool" in (prefix / "share/zsh/site-functions/_promptline").read_text()
    assert "-l 'tool'" in (prefix / "share/fish/vendor_completions.d/promptline.fish").read_text()
    script = f"""
source {bash}
COMP_WORDS=(promptline --to); COMP_CWORD=1; COMP_LINE="promptline --to"; COMP_POINT=${{#COMP_LINE}}
_promptline promptline --to promptline
echo "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", script], env=dict(os.environ, PATH=f"{prefix}/bin:" + os.environ["PATH"]),
                          capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["--tool"], done.stdout + done.stderr


def test_copy_sends_the_last_reply_as_osc_52(bin_dir, server, home):
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], dict(home, NO_COLOR="1"))
    child.expect_exact(PROMPT)
    child.sendline(":copy")
    child.expect_exact("nothing to copy yet: no reply")
    child.sendline("copy this")
    child.expect_exact("echo: copy this")
    child.expect_exact(PROMPT)
    child.sendline(":copy")
    encoded = base64.b64encode("echo: copy this".encode()).decode()
    child.expect_exact(f"\x1b]52;c;{encoded}\x07")
    child.expect_exact("copied 15 characters")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_the_man_page_has_every_flag(bin_dir):
    """docs/promptline.1 is generated (scripts/man); a flag added since is missing from it."""
    help_text = subprocess.run([str(bin_dir / "promptline"), "--help"], capture_output=True, text=True).stdout
    flags = sorted(set(re.findall(r"(?m)^\s+(?:-\w, )?--([a-z][a-z0-9-]*)", help_text)))
    assert len(flags) > 20, help_text
    page = (ROOT / "docs/promptline.1").read_text()
    missing = [f for f in flags if f"Fl -{f}" not in page]
    assert not missing, f"run scripts/man: docs/promptline.1 lacks --{', --'.join(missing)}"


def test_files_from_process_substitution(bin_dir, server, home, tmp_path):
    """`--func <(…)`, `--system @<(…)`, `--config <(…)`: a pipe's /dev/fd/N is read like a file
    (Foundation's own readers refuse it on Linux)."""
    spec = json.dumps({"name": "pick", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}},
                                                      "required": ["n"]}})
    pipes = []
    for text in (spec, "From a pipe.", "mode: single\n"):
        r, w = os.pipe()
        os.write(w, text.encode())
        os.close(w)
        pipes.append(r)
    fn, system, config = (f"/dev/fd/{fd}" for fd in pipes)
    proc = subprocess.run(
        [str(bin_dir / "promptline"), "--base-url", server.url + "/v1", "--model", "echo-model", "--func", fn,
         "--system", "@" + system, "--config", config],
        input=":func\n:system\n:mode\n", env=home, capture_output=True, text=True, timeout=30, pass_fds=pipes)
    for fd in pipes:
        os.close(fd)
    assert proc.returncode == 0, proc.stderr
    assert "pick" in proc.stdout and "From a pipe." in proc.stdout and "single" in proc.stdout, proc.stdout
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m", "--func", "/dev/fd/77"], home, "")
    assert "error: function spec /dev/fd/77: cannot be read (no such file)" in r.stderr, r.stderr
