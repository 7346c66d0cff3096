"""Fixtures for the end-to-end suites: the built binaries, the scriptable test server (the same
Swift TestHTTPServer the XCTest suites use, run as a process), pseudo-terminal sessions, and the
real local llama-server."""
import glob
import json
import os
import pathlib
import signal
import subprocess
import urllib.request

import pexpect
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEY = "sk-e2e-DISTINCTIVE-key-7f3a9c"


@pytest.fixture(scope="session")
def bin_dir():
    """The RELEASE build: the binary scripts/run builds and users run (a debug build once hid a
    release-only crash). PROMPTLINE_BIN_DIR points elsewhere (e.g. a sanitizer build)."""
    if os.environ.get("PROMPTLINE_BIN_DIR"):
        d = pathlib.Path(os.environ["PROMPTLINE_BIN_DIR"])
    else:
        out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
        d = pathlib.Path(out.stdout.strip())
    for name in ("promptline", "promptline-test-server"):
        assert (d / name).exists(), f"build {name} first: swift build -c release --product {name} (scripts/test does)"
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


# A Swift trap (SIGILL on x86, SIGTRAP on arm) or any other crash of promptline fails the test
# that caused it, whatever the test itself asserted.
CRASH_SIGNALS = {signal.SIGILL, signal.SIGTRAP, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT}
_spawned = []


@pytest.fixture(autouse=True)
def no_crash():
    _spawned.clear()
    yield
    for child in _spawned:
        if child.isalive():
            continue
        child.close()
        assert child.signalstatus not in CRASH_SIGNALS, f"promptline died of signal {child.signalstatus}"


def spawn(bin_dir, args, env, timeout=10):
    child = pexpect.spawn(str(bin_dir / "promptline"), args, env=env, encoding="utf-8", dimensions=(40, 160), timeout=timeout)
    _spawned.append(child)
    return child


def run_piped(bin_dir, args, env, stdin, timeout=60):
    r = subprocess.run([str(bin_dir / "promptline"), *args], input=stdin, env=env, capture_output=True, text=True, timeout=timeout)
    assert -r.returncode not in CRASH_SIGNALS, f"promptline died of signal {-r.returncode}: {r.stderr[-2000:]}"
    return r


def local_llm_state():
    cache = pathlib.Path(os.environ.get("PROMPTLINE_CACHE", pathlib.Path.home() / ".cache/promptline"))
    f = cache / "run/local-llm.env"
    if not f.exists():
        return None
    vals = dict(line.split("=", 1) for line in f.read_text().splitlines() if "=" in line)
    return vals, cache


class RecordingProxy:
    """A loopback HTTP proxy in front of a real server that records every exchange byte for byte.

    Tests against a real model never assert on what the model chose to say: they assert that what
    promptline printed, counted and saved is what the server actually sent, read from here. Bodies
    are relayed as they arrive (SSE streams stay streams)."""

    def __init__(self, upstream):
        import http.client
        import http.server
        import threading
        import urllib.parse

        self.upstream = urllib.parse.urlsplit(upstream)
        self.exchanges = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def relay(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                record = {"method": self.command, "path": self.path, "request": body, "status": resp.status,
                          "headers": {k.lower(): v for k, v in resp.getheaders()}, "response": b""}
                proxy.exchanges.append(record)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "keep-alive"):
                        self.send_header(k, v)
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    while True:
                        piece = resp.read1(65536)
                        if not piece:
                            break
                        record["response"] += piece
                        self.wfile.write(piece)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    record["client_gone"] = True
                finally:
                    conn.close()
                    self.close_connection = True

            do_GET = relay
            do_POST = relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def posts(self):
        return [e for e in self.exchanges if e["method"] == "POST"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def sse_payloads(raw):
    """The `data:` payloads of an SSE body, in order."""
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith("data:"):
            out.append(line[5:].strip())
    return out


def session_files(home):
    """The autosaved transcripts (version 2 journals), oldest name first."""
    return sorted(glob.glob(os.path.join(home["XDG_DATA_HOME"], "promptline", "sessions", "*.jsonl")))


def read_transcript(path):
    """A journal as one dict: its header's fields and "events", one per line after it."""
    lines = pathlib.Path(path).read_text().splitlines()
    t = json.loads(lines[0])
    t["events"] = [json.loads(line) for line in lines[1:] if line]
    return t


def journal_text(t):
    """The journal text of a dict shaped as read_transcript returns it."""
    header = {k: v for k, v in t.items() if k != "events"}
    return "".join(json.dumps(x) + "\n" for x in [header] + t["events"])


def record_bodies(server, name):
    """Writes the Chat Completions bodies the test server received to $PROMPTLINE_SCHEMA_DIR (when
    set), where scripts/test validates them against the official OpenAI schema."""
    d = os.environ.get("PROMPTLINE_SCHEMA_DIR")
    if not d:
        return
    os.makedirs(d, exist_ok=True)
    for i, r in enumerate(server.requests()):
        if r["uri"].endswith("/chat/completions"):
            pathlib.Path(d, f"e2e-{name}-{i}.json").write_text(r["body"])
        elif r["uri"].endswith("/responses"):
            pathlib.Path(d, f"e2e-{name}-{i}.responses.json").write_text(r["body"])


def plain(home):
    """The environment without colour: what is asserted is the text, not its styling."""
    return dict(home, NO_COLOR="1")


def start_plain(bin_dir, server, home, *extra):
    """promptline in a pseudo-terminal against the test server, without colour, at its first prompt."""
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model", *extra], plain(home))
    child.expect_exact("› ")
    return child
