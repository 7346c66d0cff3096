"""Markdown replies rendered as they stream, through the built binary in a pseudo-terminal: the same
screen whether the reply comes whole or one character per SSE event cut into 1-byte chunks, nothing
repainted, the structure kept under NO_COLOR, and the bytes as sent when piped or switched off."""
import json
import os
import re

import pexpect

from conftest import plain, run_piped, spawn

PROMPT = "› "

REPLY = """# Title

Some **bold**, *italic*, ~~struck~~ and `code`, a [link](https://example.com/a) and <https://example.org>.

## Lists
- one
- two **strong**
  - nested
    1. deep one
    2. deep two

> a quote with *emphasis*
> > nested

---

| Name | Age |
|:-----|----:|
| Alice | 30 |
| Bob | 4 |

```python
def f(x):  # comment
    return "s" + 42
```

```json
{"a": 1, "b": [true, null]}
```
Unicode 日本語 🙂.
```sh
echo "never closed"
"""


def chunk(delta, finish=None):
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def per_character(text):
    """The reply as one SSE event per character, the body cut into 1-byte chunks."""
    return {"sse": [chunk({"content": c}) for c in text] + [chunk({}, "stop"), "[DONE]"], "chunk_size": 1}


def whole(text):
    return {"sse": [chunk({"content": text}), chunk({}, "stop"), "[DONE]"]}


def turn(child, prompt="x"):
    """What one turn printed, from its first styled or structured byte to the status line."""
    child.sendline(prompt)
    child.expect(r"m · [0-9.]+ s")
    out = child.before
    child.expect_exact(PROMPT)
    return out


def reply_part(out, start):
    i = out.index(start)
    j = out.rindex("╰")
    return out[i:out.index("\n", j) + 1]


def assert_not_repainted(seen):
    assert "\r" not in seen.replace("\r\n", "\n")
    for m in re.finditer(r"\x1b\[[0-9;?]*([A-Za-z])", seen):
        assert m.group(1) == "m", f"a cursor or erase sequence: {m.group(0)!r}"


def test_a_reply_cut_into_1_byte_chunks_renders_as_when_sent_whole(bin_dir, server, home):
    server.enqueue(whole(REPLY), per_character(REPLY))
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], home, timeout=120)
    child.expect_exact(PROMPT)
    first = reply_part(turn(child), "\x1b[1;35mTitle")
    second = reply_part(turn(child), "\x1b[1;35mTitle")
    assert second == first
    assert_not_repainted(first)
    for styled in ["\x1b[1mbold", "\x1b[3mitalic", "\x1b[9mstruck", "\x1b[36mcode", "\x1b]8;;https://example.com/a\x1b\\",
                   "\x1b[35mdef\x1b[0m", "\x1b[32m\"s\"", "\x1b[90m# comment", "\x1b[34m\"a\"", "\x1b[35mecho"]:
        assert styled in first, styled
    for structure in ["• one", "◦ nested", "1. deep one", "╭─ python", "│ def f(x):", "┌───────┬─────┐",
                      "│ Alice │  30 │", "╭─ sh", "日本語 🙂"]:
        assert structure in re.sub(r"\x1b\[[0-9;]*m", "", first), structure
    # The fence left open at the end of the reply is closed: its frame's last line comes last.
    assert re.sub(r"\x1b\[[0-9;]*m", "", first).rstrip().splitlines()[-1].startswith("╰")
    child.sendline(":quit")
    child.expect(pexpect.EOF)


def test_no_color_keeps_the_structure_without_escapes(bin_dir, server, home):
    server.enqueue(per_character(REPLY))
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], plain(home), timeout=120)
    child.expect_exact(PROMPT)
    seen = reply_part(turn(child), "# Title")
    assert "\x1b" not in seen
    for structure in ["• one", "  ◦ nested", "    1. deep one", "│ a quote with emphasis", "│ │ nested", "╭─ python",
                      "│ Name  │ Age │", "link (https://example.com/a)", "`code`"]:
        assert structure in seen, structure
    assert "**" not in seen
    child.sendline(":quit")


def test_piped_output_is_exactly_what_the_server_sent(bin_dir, server, home):
    server.enqueue(per_character(REPLY))
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], home, "x\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.encode().startswith(REPLY.encode())


def test_set_view_markdown_off_prints_the_reply_as_sent_and_the_config_sets_it(bin_dir, server, home):
    server.enqueue(*[whole("**raw** `text`\n")] * 3)
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], plain(home))
    child.expect_exact(PROMPT)
    out = turn(child)
    assert "raw `text`" in out and "**raw**" not in out
    child.sendline(":set-view markdown off")
    child.expect_exact("markdown off")
    child.expect_exact(PROMPT)
    assert "**raw** `text`" in turn(child)
    child.sendline(":set-view markdown maybe")
    child.expect_exact("markdown on|off")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    cfg = os.path.join(home["XDG_CONFIG_HOME"], "promptline")
    os.makedirs(cfg, exist_ok=True)
    with open(os.path.join(cfg, "config.yaml"), "w") as f:
        f.write("markdown: false\n")
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], plain(home))
    child.expect_exact(PROMPT)
    assert "**raw** `text`" in turn(child)
    child.sendline(":quit")
