"""Fixtures for the end-to-end suites: the built binaries, the scriptable test server (the same
Swift TestHTTPServer the XCTest suites use, run as a process), pseudo-terminal sessions, and the
real local llama-server."""
import json
import os
import pathlib
import subprocess
import urllib.request

import pexpect
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEY = "sk-e2e-DISTINCTIVE-key-7f3a9c"


@pytest.fixture(scope="session")
def bin_dir():
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
    d = pathlib.Path(out.stdout.strip())
    assert (d / "promptline").exists(), "build promptline first (scripts/test does)"
    return d


class TestServer:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def enqueue(self, *replies):
        self._call("POST", "/_control/enqueue", list(replies))

    def requests(self):
        return self._call("GET", "/_control/requests")

    def bodies(self):
        return [json.loads(r["body"]) for r in self.requests()]

    def reset(self):
        self._call("POST", "/_control/reset", {})


def start_test_server(bin_dir, env=None):
    proc = subprocess.Popen([str(bin_dir / "promptline-test-server")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    return TestServer(proc, int(line.split()[1]))


@pytest.fixture
def server(bin_dir):
    s = start_test_server(bin_dir)
    yield s
    s.proc.stdin.close()
    s.proc.wait(timeout=5)


@pytest.fixture
def home(tmp_path):
    """An isolated environment: XDG dirs in tmp, no API keys, no colour unless asked."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL") and not k.startswith("XDG_")}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        TERM="xterm-256color",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
    )
    env.pop("NO_COLOR", None)
    (tmp_path / "home").mkdir()
    return env


def spawn(bin_dir, args, env, timeout=10):
    child = pexpect.spawn(str(bin_dir / "promptline"), args, env=env, encoding="utf-8", dimensions=(40, 160), timeout=timeout)
    return child


def run_piped(bin_dir, args, env, stdin, timeout=60):
    return subprocess.run([str(bin_dir / "promptline"), *args], input=stdin, env=env, capture_output=True, text=True, timeout=timeout)


def local_llm_state():
    cache = pathlib.Path(os.environ.get("PROMPTLINE_CACHE", pathlib.Path.home() / ".cache/promptline"))
    f = cache / "run/local-llm.env"
    if not f.exists():
        return None
    vals = dict(line.split("=", 1) for line in f.read_text().splitlines() if "=" in line)
    return vals, cache
