"""The benchmark driver: each figure is a median over repeated runs, with min and max; compared
sides run in the same invocation, interleaved where it matters."""
import json
import os
import pathlib
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time

BIN = pathlib.Path(sys.argv[1])
ROOT = pathlib.Path(__file__).resolve().parents[1]
results = []


def record(name, unit, samples, budget=None, **extra):
    s = sorted(samples)
    r = {"name": name, "unit": unit, "runs": len(s), "median": statistics.median(s), "min": s[0], "max": s[-1], **extra}
    if budget is not None:
        r["budget"] = budget
    results.append(r)


def env():
    e = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    tmp = tempfile.mkdtemp(prefix="pl-bench-")
    e.update(XDG_STATE_HOME=tmp + "/state", XDG_DATA_HOME=tmp + "/data", TERM="xterm-256color", LANG="C.UTF-8")
    return e


def time_to_prompt(args):
    """exec → the prompt on a pseudo-terminal, in ms; and the peak RSS there (kB)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(str(BIN / "promptline"), ["promptline", *args], env())
    t0 = time.perf_counter()
    buf = b""
    while b"\xe2\x80\xba " not in buf:
        r, _, _ = select.select([fd], [], [], 10)
        if not r:
            break
        buf += os.read(fd, 4096)
    ms = (time.perf_counter() - t0) * 1000
    rss = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1])
    # A ^D typed ahead of libedit's switch to raw mode is eaten by the line discipline; a person
    # is never that fast, so wait a moment as pexpect does.
    time.sleep(0.05)
    os.write(fd, b"\x04")
    os.waitpid(pid, 0)
    os.close(fd)
    return ms, rss


def run_bench(*args):
    out = subprocess.run([str(BIN / "promptline-bench"), *args], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        results.append(json.loads(line))


def peak_rss_when(cmd, stdin_text, e, ready):
    """Peak RSS (kB, VmHWM) of a promptline process once `ready(output so far)` holds; its stdin
    stays open until then, so the figure is read from the live process."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e)
    p.stdin.write(stdin_text.encode())
    p.stdin.flush()
    out = b""
    deadline = time.time() + 300
    while not ready(out) and time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    with open(f"/proc/{p.pid}/status") as f:
        hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    p.stdin.close()
    p.stdout.read()
    p.wait()
    return hwm, p.returncode


def start_server(e):
    proc = subprocess.Popen([str(BIN / "promptline-test-server")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=e)
    port = int(proc.stdout.readline().split()[1])
    return proc, f"http://127.0.0.1:{port}"


EXTRACTION_PROMPTS = [
    "Weather in Paris for 3 days?",
    "What will it be like in Tokyo over the next 5 days?",
    "Forecast for Berlin, one day please.",
    "I'm going to Lisbon for a week: weather?",
    "Rain in London for the next 2 days?",
    "Give me the 10-day outlook for Sydney.",
    "Madrid, 4 days, how warm?",
    "Is it sunny in Rome this weekend (2 days)?",
    "New York weather for the coming 6 days.",
    "Oslo: forecast, 3 days.",
]
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city", "days"]}
TEMPLATE_TOKENS = ("<|im_start|>", "<|im_end|>", "<|eot_id|>", "<|start_header_id|>", "<end_of_turn>", "<|endoftext|>")


def local_model_bench(e, quick):
    cache = pathlib.Path(os.environ.get("PROMPTLINE_CACHE", pathlib.Path.home() / ".cache/promptline"))
    f = cache / "run/local-llm.env"
    if not f.exists():
        results.append({"name": "local.*", "skipped": "scripts/local-llm is not running (scripts/local-llm start)"})
        return
    # --local: what scripts/run gives a user with no key (the local model's default options too).
    base = ["--local"]
    e = dict(e, PROMPTLINE_LOCAL_LLM=str(ROOT / "scripts/local-llm"))
    import re
    # A plain prompt: wall time of the whole turn, and whether chat-template tokens leak into the text.
    haiku, leaks, tps = [], 0, []
    for _ in range(3 if quick else 5):
        t0 = time.perf_counter()
        r = subprocess.run([str(BIN / "promptline"), *base], input="Write a haiku about the sea.\n",
                           capture_output=True, text=True, env=e, timeout=600)
        haiku.append(time.perf_counter() - t0)
        leaks += any(t in r.stdout for t in TEMPLATE_TOKENS)
        m = re.search(r"([0-9.]+) s · ttft ([0-9.]+) s · tokens \d+ in / (\d+) out", r.stdout)
        if m and float(m.group(1)) > float(m.group(2)):
            tps.append(int(m.group(3)) / (float(m.group(1)) - float(m.group(2))))
    record("local.plain_prompt_turn", "s", haiku, budget=10, template_token_leaks=leaks)
    if tps:
        record("local.output_tokens_per_s", "tok/s", tps)
    # Forced calls: 10 varied extraction prompts, chat and single mode; schema-valid count and latency.
    import jsonschema
    spec = tempfile.mktemp(suffix=".json")
    pathlib.Path(spec).write_text(json.dumps({"name": "get_weather", "description": "Weather forecast for a city", "parameters": WEATHER}))
    for mode, run in [(m, k) for k in range(1 if quick else 3) for m in ("chat", "single")]:
        r = subprocess.run([str(BIN / "promptline"), *base, "--func", spec, "--mode", mode], input="\n".join(EXTRACTION_PROMPTS) + "\n",
                           capture_output=True, text=True, env=e, timeout=900)
        valid = 0
        for block in re.findall(r"→ get_weather(?:\(…\))?\n(\{.*?\n\})", r.stdout, re.S):
            try:
                jsonschema.validate(json.loads(block), WEATHER)
                valid += 1
            except Exception:
                pass
        lat = [float(x) for x in re.findall(r"^\S+ · ([0-9.]+) s · .*forced via", r.stdout, re.M)]
        via = sorted(set(re.findall(r"forced via (\S+)", r.stdout)))
        record(f"local.forced_call_{mode}.run{run + 1}", "s", lat or [float("nan")], budget=3, schema_valid=f"{valid}/{len(EXTRACTION_PROMPTS)}", via=",".join(via))


ONLY = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--only=")), None)


def want(section):
    """--only=start,turns,stream,transcript,batch,sessions,markdown,repl,memory,local runs just those sections."""
    return ONLY is None or section in ONLY


def main():
    quick = "--quick" in sys.argv
    e = env()
    server, url = start_server(e)
    try:
        if want("start"):
            # 1. Cold start.
            version = []
            for _ in range(10 if quick else 30):
                t0 = time.perf_counter()
                subprocess.run([str(BIN / "promptline"), "--version"], capture_output=True, check=True)
                version.append((time.perf_counter() - t0) * 1000)
            record("start.version_exit", "ms", version)
            prompts, idle_rss = [], []
            for _ in range(5 if quick else 15):
                ms, rss = time_to_prompt(["--base-url", url + "/v1", "--model", "m"])
                prompts.append(ms)
                idle_rss.append(rss)
            record("start.to_prompt_tty", "ms", prompts, budget=30)
            python = os.environ.get("BENCH_PYTHON", sys.executable)
            try:
                subprocess.run([python, "-c", "import openai"], check=True, capture_output=True)
                py = []
                for _ in range(10 if quick else 30):
                    t0 = time.perf_counter()
                    subprocess.run([python, "-c", "import openai"], check=True)
                    py.append((time.perf_counter() - t0) * 1000)
                record("start.python_import_openai", "ms", py, ratio_to_promptline_version=statistics.median(py) / statistics.median(version))
            except (subprocess.CalledProcessError, FileNotFoundError):
                results.append({"name": "start.python_import_openai", "skipped": "the openai package is not installed"})

        # 2. Per-turn overhead, 3. streaming, transcript scale (in-process, release).
        if want("turns"):
            run_bench("turns", "300" if quick else "1000")
        if want("stream"):
            run_bench("stream", "20000" if quick else "100000")
        if want("transcript"):
            run_bench("transcript", "1000" if quick else "10000")
        if want("batch"):
            # 3c. A batch under faults on schedule (500s, 429s with retry-after: 0, dropped
            # connections) against the same batch clean: every row once, none cross-wired, and
            # the ratio of the times (the budget is 5).
            run_bench("batch-faults", "500" if quick else "5000")

        if want("sessions"):
            # 3a. Listing saved sessions (:sessions, --resume last): 500 of 2,000 turns each, in
            # process and through the binary (a piped `:sessions` minus a piped empty run).
            n = 100 if quick else 500
            data = tempfile.mkdtemp(prefix="pl-bench-data-")
            folder = os.path.join(data, "promptline", "sessions")
            run_bench("sessions", str(n), "2000", folder)
            se = dict(e, XDG_DATA_HOME=data)
            listing, empty = [], []
            for _ in range(5):
                for stdin, into in ((":sessions\n", listing), ("", empty)):
                    t0 = time.perf_counter()
                    subprocess.run([str(BIN / "promptline"), "--base-url", url + "/v1", "--model", "m"], input=stdin.encode(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=se, check=True)
                    into.append((time.perf_counter() - t0) * 1000)
            record("sessions.list_repl_added", "ms", [a - b for a, b in zip(listing, empty)], budget=100, sessions=n, turns=2000)
            subprocess.run(["rm", "-rf", data], check=False)

        if want("markdown"):
            # The Markdown renderer on a 1 MB reply: budget 50 us per 16-byte chunk, 50 MB/s.
            run_bench("markdown", "3" if quick else "7")

        if want("repl"):
            # 3b. The REPL renderer writing to /dev/null: one turn streaming N chunks.
            n = 20000 if quick else 100000
            chunk = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}]})
            raw = "".join(f"data: {chunk}\n\n" for _ in range(n)) + 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
            times = []
            for _ in range(3):
                req = json.dumps({"raw_sse": raw, "chunk_size": 4096}).encode()
                import urllib.request
                urllib.request.urlopen(urllib.request.Request(url + "/_control/enqueue", data=req, method="POST"), timeout=30).read()
                t0 = time.perf_counter()
                subprocess.run([str(BIN / "promptline"), "--base-url", url + "/v1", "--model", "m"], input=b"go\n", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=e, check=True)
                times.append(time.perf_counter() - t0)
            mb = len(raw) / 1e6
            record("stream.repl_to_devnull", "MB/s", [mb / t for t in times], chunks=n, chunks_per_s=n / statistics.median(times))

        if want("memory"):
            # 4. Memory.
            if want("start"):  # measured with the start-up runs
                record("memory.idle_at_prompt", "MB", [r / 1024 for r in idle_rss], budget=30)
            turns = 300 if quick else 1000
            last = f"echo: prompt {turns - 1}\n".encode()
            session_rss = []
            for _ in range(3):
                rss, rc = peak_rss_when([str(BIN / "promptline"), "--base-url", url + "/v1", "--model", "m", "--mode", "single"],
                                        "".join(f"prompt {i}\n" for i in range(turns)), e, lambda out: last in out)
                session_rss.append(rss / 1024)
            record("memory.after_session", "MB", session_rss, turns=turns)
            tpath = tempfile.mktemp(suffix=".json")
            big = 2000 if quick else 10000
            subprocess.run([str(BIN / "promptline-bench"), "write-transcript", str(big), tpath], check=True)
            load_rss = []
            for _ in range(3):
                rss, rc = peak_rss_when([str(BIN / "promptline"), "--resume", tpath, "--base-url", url + "/v1"], "", e, lambda out: b"resumed" in out)
                load_rss.append(rss / 1024)
            record("memory.load_transcript", "MB", load_rss, turns=big, bytes=os.path.getsize(tpath))
        # 5. The offline default: the real local model (skipped when scripts/local-llm is not running).
        if want("local"):
            local_model_bench(e, quick)
    finally:
        server.stdin.close()
        server.wait()

    out = ROOT / ".bench"
    out.mkdir(exist_ok=True)
    if ONLY is not None and (out / "results.json").exists():
        # A partial run replaces its own entries and keeps the others'.
        names = {r["name"] for r in results}
        results[:0] = [r for r in json.loads((out / "results.json").read_text()) if r["name"] not in names]
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"{'benchmark':32} {'median':>12} {'min':>12} {'max':>12}  unit   budget / notes")
    for r in results:
        if "skipped" in r:
            print(f"{r['name']:32} {'–':>12}  skipped: {r['skipped']}")
            continue
        notes = []
        if "budget" in r:
            notes.append(f"budget {r['budget']}")
        for k in ("p50_added", "sessions", "p99_added", "p50", "p99", "chunks_per_s", "ratio_to_promptline_version", "turns", "bytes",
                  "schema_valid", "via", "template_token_leaks", "ratio_to_clean", "ratio_budget", "rows_once",
                  "cross_wired", "gave_up", "lowest_concurrency"):
            if k in r:
                v = r[k]
                notes.append(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}")
        print(f"{r['name']:32} {r['median']:12.3f} {r['min']:12.3f} {r['max']:12.3f}  {r['unit']:6} {', '.join(notes)}")
    print(f"\nwritten: {out / 'results.json'}")


main()
