"""Proxies as real ones see them: the binary through tinyproxy (from Debian, installed by
scripts/setup), started here on 127.0.0.1 with a config of the test's own — BasicAuth on, and
CONNECT allowed to port 443 and the TLS test server's port only, as real proxies default to.

The upstream is named by this machine's host name (which promptline does not treat as this
machine, so it goes through the proxy; tinyproxy resolves it to where the servers listen).
An http:// upstream must be sent in absolute form (`POST http://host:port/… HTTP/1.1`, never
`CONNECT host:port`, which this proxy refuses); an https:// one through a CONNECT tunnel.
Streamed replies must still arrive piece by piece, and the proxy password appears nowhere."""
import base64
import glob
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time

import pexpect
import pytest

import conftest
from conftest import run_piped, spawn

PROMPT = "› "
USER, PASSWORD = "alice", "s3cret-pw"
# The password percent-encoded in part ("%63" is "c"): promptline must decode it.
PROXY_USERINFO = "alice:s3%63ret-pw"


def upstream_name():
    """This machine's host name and the address it resolves to, where the upstreams listen."""
    name = socket.gethostname()
    addr = socket.gethostbyname(name)
    assert name not in ("localhost", "") and not re.fullmatch(r"[\d.]+", name), name
    return name, addr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tinyproxy:
    def __init__(self, tmp_path, connect_ports, basic_auth=True):
        self.port = free_port()
        self.log = tmp_path / "tinyproxy.log"
        conf = tmp_path / "tinyproxy.conf"
        lines = [f"Port {self.port}", "Listen 127.0.0.1", "Timeout 30", f'LogFile "{self.log}"', "LogLevel Connect",
                 "MaxClients 20"] + [f"ConnectPort {p}" for p in connect_ports]
        if basic_auth:
            lines.append(f"BasicAuth {USER} {PASSWORD}")
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, f"tinyproxy exited: {self.log.read_text() if self.log.exists() else ''}"
                assert time.monotonic() < deadline, "tinyproxy did not start listening"
                time.sleep(0.05)

    def requests(self):
        """The request lines tinyproxy logged, in order."""
        text = self.log.read_text() if self.log.exists() else ""
        return re.findall(r"Request \(file descriptor \d+\): (.*)", text)

    def url(self, userinfo=PROXY_USERINFO):
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


def proxy_env(home, **proxies):
    env = {k: v for k, v in home.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")}
    env.update(proxies)
    return env


def assert_never_shown(*texts, tmp_path):
    """The password (plain or percent-encoded) and its Basic token appear in no output and no file written."""
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    secrets = [PASSWORD, PROXY_USERINFO.split(":")[1], token]
    for t in texts:
        for s in secrets:
            assert s not in t, f"{s!r} shown: {t[-500:]}"
    for path in glob.glob(str(tmp_path / "state" / "**" / "*"), recursive=True) + \
            glob.glob(str(tmp_path / "data" / "**" / "*"), recursive=True):
        if os.path.isfile(path):
            data = open(path, "rb").read().decode("utf-8", "replace")
            for s in secrets:
                assert s not in data, f"{s!r} written to {path}"


def streamed_turn(bin_dir, args, env, words):
    """A turn in a pseudo-terminal: the first word of the reply and the last arrive apart (the server
    waits between pieces), so the reply was streamed through the proxy, not delivered whole."""
    child = spawn(bin_dir, args, env, timeout=20)
    child.expect_exact(PROMPT)
    child.sendline(" ".join(words))
    child.expect_exact("echo: " + words[0])
    first = time.monotonic()
    child.expect_exact(words[-1])
    gap = time.monotonic() - first
    child.expect_exact(PROMPT)
    child.sendline(":request curl")
    child.expect_exact(PROMPT)
    screen = child.before
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    return gap, screen


@pytest.fixture
def named_server(bin_dir):
    """The test server listening on the host name's address."""
    name, addr = upstream_name()
    env = dict(os.environ, PROMPTLINE_TEST_SERVER_HOST=addr, ECHO_DELAY_MS="250")
    proc = subprocess.Popen([str(bin_dir / "promptline-test-server")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    s = conftest.TestServer(proc, int(line.split()[1]))
    s.url = f"http://{addr}:{s.port}"  # its control routes, reached directly
    s.name_url = f"http://{name}:{s.port}"
    yield s
    proc.stdin.close()
    proc.wait(timeout=5)


def test_http_upstream_is_sent_in_absolute_form_with_credentials(bin_dir, named_server, home, tmp_path):
    proxy = Tinyproxy(tmp_path, connect_ports=[443])
    try:
        env = proxy_env(home, HTTP_PROXY=proxy.url())
        args = ["--base-url", named_server.name_url + "/v1", "--model", "m"]
        words = ["one", "two", "three", "four"]
        gap, screen = streamed_turn(bin_dir, args, env, words)
        assert gap > 0.4, f"the reply came whole ({gap:.2f} s between first and last piece)"
        piped = run_piped(bin_dir, args + ["--no-stream"], env, "whole reply\n")
        assert piped.returncode == 0, piped.stderr
        assert "echo: whole reply" in piped.stdout
        host = named_server.name_url.split("//", 1)[1]
        target = f"POST http://{host}/v1/chat/completions HTTP/1.1"
        assert proxy.requests() == [target, target], proxy.requests()
        seen = named_server.requests()
        assert [r["uri"] for r in seen] == ["/v1/chat/completions"] * 2
        assert all(r["headers"]["host"] == host for r in seen)
        assert all("proxy-authorization" not in r["headers"] for r in seen), "credentials are the proxy's"
        streams = [json.loads(r["body"]).get("stream") for r in seen]
        assert streams[0] is True and not streams[1]
        assert_never_shown(screen, piped.stdout, piped.stderr, tmp_path=tmp_path)
    finally:
        proxy.close()


def test_wrong_or_missing_proxy_credentials_are_one_line(bin_dir, named_server, home, tmp_path):
    proxy = Tinyproxy(tmp_path, connect_ports=[443])
    try:
        args = ["--base-url", named_server.name_url + "/v1", "--model", "m", "--max-attempts", "3"]
        missing = run_piped(bin_dir, args, proxy_env(home, HTTP_PROXY=proxy.url(None)), "hi\n")
        assert missing.returncode == 1
        errors = [line for line in missing.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "proxy refused: the proxy 127.0.0.1:" in errors[0], missing.stderr
        assert "asks for credentials (407" in errors[0] and "http://user:password@" in errors[0]
        assert len(proxy.requests()) == 1, "a refusal is not retried"
        # tinyproxy answers a wrong password with 401 (not 407): an error, not retried, the password unshown.
        wrong = run_piped(bin_dir, args, proxy_env(home, HTTP_PROXY=proxy.url("alice:wrong-pw")), "hi\n")
        assert wrong.returncode == 1 and "401" in wrong.stderr, wrong.stderr
        assert "wrong-pw" not in wrong.stderr + wrong.stdout
        assert len(proxy.requests()) == 2
        assert named_server.requests() == []
        bad = run_piped(bin_dir, ["--model", "m"], proxy_env(home, HTTPS_PROXY="https://alice:pass-word@proxy:8443"), "")
        assert bad.returncode == 2 and "HTTPS_PROXY: a proxy reached over https is not supported" in bad.stderr
        assert "pass-word" not in bad.stderr
    finally:
        proxy.close()


class SSEHandler(http.server.BaseHTTPRequestHandler):
    """An OpenAI-shaped server over TLS: records each request; streams the echo word by word."""
    protocol_version = "HTTP/1.1"
    seen = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        SSEHandler.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": body})
        words = ("echo: " + body["messages"][-1]["content"]).split(" ")
        if not body.get("stream"):
            out = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                              "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(words)},
                                           "finish_reason": "stop"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for i, w in enumerate(words):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": (" " if i else "") + w}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.25)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *a):
        pass


def test_https_upstream_goes_through_a_connect_tunnel(bin_dir, home, tmp_path):
    name, addr = upstream_name()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True)
    SSEHandler.seen = []
    httpd = http.server.ThreadingHTTPServer((addr, 0), SSEHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    tls_port = httpd.server_address[1]
    proxy = Tinyproxy(tmp_path, connect_ports=[443, tls_port])
    try:
        env = proxy_env(home, HTTPS_PROXY=proxy.url(), OPENAI_API_KEY="sk-proxy-e2e-key-0123456789")
        args = ["--base-url", f"https://{name}:{tls_port}/v1", "--model", "m", "--ca-file", str(cert)]
        words = ["uno", "dos", "tres", "cuatro"]
        gap, screen = streamed_turn(bin_dir, args, env, words)
        assert gap > 0.4, f"the reply came whole ({gap:.2f} s between first and last piece)"
        piped = run_piped(bin_dir, args + ["--no-stream"], env, "whole reply\n")
        assert piped.returncode == 0, piped.stderr
        assert "echo: whole reply" in piped.stdout
        assert proxy.requests() == [f"CONNECT {name}:{tls_port} HTTP/1.1"] * 2, proxy.requests()
        assert [s["path"] for s in SSEHandler.seen] == ["/v1/chat/completions"] * 2
        assert all("proxy-authorization" not in s["headers"] for s in SSEHandler.seen), "credentials are the proxy's"
        assert SSEHandler.seen[0]["headers"]["authorization"] == "Bearer sk-proxy-e2e-key-0123456789"
        assert "sk-proxy-e2e-key" not in proxy.log.read_text()
        # A port the proxy does not allow CONNECT to: one line naming the cause, at once, not retried.
        closed = free_port()
        refused = run_piped(bin_dir, ["--base-url", f"https://{name}:{closed}/v1", "--model", "m", "--max-attempts", "3"],
                            env, "hi\n")
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert refused.returncode == 1 and len(errors) == 1, refused.stderr
        assert f"refused to open a tunnel (CONNECT) to {name}:{closed}" in errors[0], errors[0]
        assert proxy.requests()[2:] == [f"CONNECT {name}:{closed} HTTP/1.1"], proxy.requests()
        assert_never_shown(screen, piped.stdout, piped.stderr, refused.stderr, tmp_path=tmp_path)
    finally:
        proxy.close()
        httpd.shutdown()
