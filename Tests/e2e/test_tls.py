"""A custom CA bundle end to end: the release binary against a loopback HTTPS server whose
certificate is self-signed — refused without the CA, accepted with --ca-file or SSL_CERT_FILE."""
import http.server
import json
import ssl
import subprocess
import threading

from conftest import run_piped


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "over TLS"},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_a_self_signed_server_needs_its_ca(bin_dir, home, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        args = ["--base-url", f"https://127.0.0.1:{httpd.server_address[1]}/v1", "--model", "m", "--no-stream",
                "--max-attempts", "1"]
        refused = run_piped(bin_dir, args, home, "hi\n")
        assert refused.returncode == 1 and "over TLS" not in refused.stdout
        assert "certificate" in refused.stderr.lower() or "tls" in refused.stderr.lower(), refused.stderr
        ok = run_piped(bin_dir, args + ["--ca-file", str(cert)], home, "hi\n")
        assert ok.returncode == 0, ok.stderr
        assert "over TLS" in ok.stdout
        env = dict(home, SSL_CERT_FILE=str(cert))
        assert "over TLS" in run_piped(bin_dir, args, env, "hi\n").stdout
        bad = run_piped(bin_dir, args + ["--ca-file", str(tmp_path / "missing.pem")], home, "")
        assert bad.returncode == 2 and "CA file" in bad.stderr
    finally:
        httpd.shutdown()
