"""HTTP_PROXY / NO_PROXY end to end: the release binary's requests go through a loopback
proxy (which relays every request, absolute-form or CONNECT, to the test server and records the
request lines), and a host in NO_PROXY is reached directly. test_real_proxy does the same
through tinyproxy."""
import select
import socket
import socketserver
import threading

from conftest import run_piped


class TunnelProxy:
    """A proxy on 127.0.0.1 that records each request line and relays it to `upstream`: a CONNECT
    as a tunnel, an absolute-form request as it came."""

    def __init__(self, upstream_port):
        self.targets = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                line = head.split(b"\r\n", 1)[0].decode()
                method, target, _ = line.split(" ", 2)
                outer.targets.append(f"{method} {target}")
                up = socket.create_connection(("127.0.0.1", upstream_port))
                if method == "CONNECT":
                    self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                else:
                    # An absolute-form request: relayed as it came (the test server reads its path).
                    up.sendall(head)
                socks = [self.request, up]
                while True:
                    ready, _, _ = select.select(socks, [], [], 10)
                    if not ready:
                        break
                    for s in ready:
                        data = s.recv(65536)
                        if not data:
                            up.close()
                            return
                        (up if s is self.request else self.request).sendall(data)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


TARGET = "POST http://api.upstream.invalid/v1/chat/completions"


def test_requests_go_through_the_proxy_unless_no_proxy(bin_dir, server, home):
    proxy = TunnelProxy(server.port)
    try:
        env = dict(home, HTTP_PROXY=f"http://127.0.0.1:{proxy.port}", NO_PROXY="direct.invalid")
        # A name only the proxy can reach: the request must go through it, in absolute form (as
        # curl sends it), not as CONNECT api.upstream.invalid:80, which real proxies refuse.
        r = run_piped(bin_dir, ["--base-url", "http://api.upstream.invalid/v1", "--model", "m"], env, "hello proxy\n")
        assert r.returncode == 0, r.stderr
        assert "echo: hello proxy" in r.stdout
        assert proxy.targets == [TARGET]
        # In NO_PROXY: tried directly (and, the name not existing, it fails without the proxy seeing it).
        r = run_piped(bin_dir, ["--base-url", "http://direct.invalid/v1", "--model", "m", "--max-attempts", "1"], env,
                      "hi\n")
        assert r.returncode == 1
        assert proxy.targets == [TARGET]
        # This machine is always reached directly.
        r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], env, "local\n")
        assert "echo: local" in r.stdout and len(proxy.targets) == 1
        bad = run_piped(bin_dir, ["--model", "m"], dict(home, HTTPS_PROXY="socks5://x:1"), "")
        assert bad.returncode == 2 and "HTTPS_PROXY must be a proxy URL like http://host:port" in bad.stderr
    finally:
        proxy.close()
