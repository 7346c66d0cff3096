"""Layout to the terminal's width, as a user sees it: promptline in a pseudo-terminal of 60, 80
and 120 columns, its output fed to pyte (a terminal emulator), and every line that ran past the
right edge — which the terminal would have wrapped at column 0 — caught as it is drawn. Widths
are display cells (CJK and emoji take two). A resize (SIGWINCH) changes the next layout; piped
output is not laid out at all."""
import json
import os
import re

import pexpect
import pyte
import pytest
from wcwidth import wcswidth

from conftest import _spawned, plain, run_piped

WIDTHS = [60, 80, 120]
PROMPT = "› "
SHOW = os.environ.get("LAYOUT_SHOW")  # set to print the screens (for looking at them)


class EdgeScreen(pyte.Screen):
    """A screen that remembers each row where text ran past the right edge (auto-wrapped)."""

    def __init__(self, columns, lines):
        super().__init__(columns, lines)
        self.overflows = []

    def draw(self, data):
        for ch in data:
            w = wcswidth(ch)
            if w > 0 and (self.cursor.x >= self.columns or self.cursor.x + w > self.columns):
                self.overflows.append("".join(self.buffer[self.cursor.y][x].data for x in range(self.columns)))
            super().draw(ch)


class Term:
    """promptline in a pseudo-terminal of `cols` columns, everything it prints drawn on a pyte screen."""

    def __init__(self, bin_dir, server, env, cols, cwd, *extra):
        self.screen = EdgeScreen(cols, 4000)
        self.stream = pyte.Stream(self.screen)
        args = ["--base-url", server.url + "/v1", "--model", "m", *extra]
        self.child = pexpect.spawn(str(bin_dir / "promptline"), args, env=env, encoding="utf-8",
                                   dimensions=(50, cols), timeout=30, cwd=str(cwd))
        _spawned.append(self.child)
        self.child.logfile_read = self
        self.child.expect_exact(PROMPT)
        self.banner_overflows = [r for r in self.screen.overflows if PROMPT not in r]
        self.mark()

    def write(self, data):  # pexpect's logfile_read
        self.stream.feed(data)

    def flush(self):
        pass

    def mark(self):
        """Where the next command's output starts (the row of its prompt); overflows before it
        (a streamed reply, which is the terminal's to wrap) are forgotten."""
        self.start = self.screen.cursor.y
        self.screen.overflows.clear()

    def run(self, line, until=PROMPT):
        """Types `line`, waits for the next prompt; returns the rows printed in between."""
        self.mark()
        self.child.sendline(line)
        self.child.expect_exact(until)
        if until != PROMPT:
            self.child.expect_exact(PROMPT)
        rows = [r.rstrip() for r in self.screen.display[self.start + 1:self.screen.cursor.y]]
        if SHOW:
            print(f"\n──── {line} at {self.screen.columns} columns " + "─" * 20)
            print("\n".join(rows))
        return rows

    def resize(self, cols):
        self.child.setwinsize(50, cols)
        self.screen.resize(4000, cols)

    def assert_fits(self):
        cols = self.screen.columns
        # The line being typed is libedit's to wrap; everything promptline printed must fit.
        printed = [r for r in self.screen.overflows if PROMPT not in r]
        assert not printed, f"lines wider than {cols} columns:\n" + "\n".join(printed)
        rows = self.screen.display[self.start + 1:self.screen.cursor.y]
        assert all(wcswidth(r.rstrip()) <= cols for r in rows), "measured in display cells"

    def quit(self):
        self.child.sendline(":quit")
        self.child.expect(pexpect.EOF)


def words(lines):
    return " ".join(lines).split()


@pytest.mark.parametrize("cols", WIDTHS)
def test_help_is_a_list_that_fits(bin_dir, server, home, tmp_path, cols):
    t = Term(bin_dir, server, plain(home), cols, tmp_path)
    assert not t.banner_overflows, "the start-up line fits too"
    rows = t.run(":help")
    t.assert_fits()
    # Every word of the piped help, in order: nothing cut off, nothing lost to the width.
    piped = run_piped(bin_dir, ["--base-url", server.url + "/v1"], plain(home), ":help\n").stdout.splitlines()
    assert words(rows) == words(piped)
    # Each form on a line of its own at column 0, its description and example indented under it.
    assert ":batch resume ID  (:batch cancel ID stops it)" in rows
    i = rows.index(":set [key value]")
    assert rows[i + 1].startswith("    show the sampling options") and "    e.g. :set temperature 0.2" in rows[i + 2:i + 4]
    forms = [r for r in rows if r.startswith(":")]
    assert len(forms) == len([r for r in piped if r.startswith("  :")])

    rows = t.run(":help batch")
    t.assert_fits()
    forms = [":batch FILE [concurrency=N] [out=PATH] [repeat=N] [key=v1,v2 …] [-- template]",
             ":batch FILE remote [out=PATH] [poll=SECONDS] [key=v1,v2 …] [-- template]",
             ":batch resume ID  (:batch cancel ID stops it)"]
    # Too wide for the line, a form is broken between its bracketed groups, never inside one.
    joined = []
    for r in rows:
        if r.startswith(":batch"):
            joined.append(r)
        elif r.startswith("      [") and joined:
            joined[-1] += " " + r.strip()
    assert joined == forms
    assert (cols >= 80) == (joined == [r for r in rows if r.startswith(":batch")]), "continued only when narrow"
    assert "arguments:" in rows
    for arg in ("FILE", "remote", "concurrency=N", "out=PATH", "repeat=N", "poll=SECONDS", "key=v1,v2", "-- template",
                "resume ID", "cancel ID"):
        assert any(r.startswith("    " + arg + " ") for r in rows), arg
    assert "e.g. :batch countries.csv remote poll=60" in " ".join(r.strip() for r in rows)
    t.quit()


def status_rows(rows):
    return [r for r in rows if "tokens" in r and " · " in r]


@pytest.mark.parametrize("cols", WIDTHS)
def test_status_line_never_wraps_and_keeps_the_useful_fields(bin_dir, server, home, tmp_path, cols):
    t = Term(bin_dir, server, plain(home), cols, tmp_path)
    rows = t.run("hi 日本語 🙂", until="echo:")
    t.assert_fits()
    [status] = status_rows(rows)
    fields = status.split(" · ")
    assert fields[0] == "m" and re.fullmatch(r"\d+\.\d\d s", fields[1]), status
    assert any(f.startswith("tokens ") for f in fields) and fields[-1].startswith("cost ")
    if cols == 120:
        assert any(f.startswith("ttft ") for f in fields) and "0 retries" in fields, "room for all of it"
    t.quit()


def test_a_resize_changes_the_next_layout(bin_dir, server, home, tmp_path):
    t = Term(bin_dir, server, plain(home), 120, tmp_path)
    rows = t.run("first prompt", until="echo:")
    [wide] = status_rows(rows)
    assert "0 retries" in wide and "ttft" in wide
    t.resize(50)
    rows = t.run("second prompt", until="echo:")
    [narrow] = status_rows(rows)
    assert "retries" not in narrow and wcswidth(narrow) <= 50 and narrow.endswith(narrow.split(" · ")[-1])
    rows = t.run(":help set")
    t.assert_fits()
    assert max(wcswidth(r) for r in rows) <= 50
    t.resize(120)
    rows = t.run(":help")
    assert max(wcswidth(r) for r in rows) > 60, "wide again"
    t.assert_fits()
    t.quit()


LONG = ("Here is a reply long enough to need wrapping in a column: supercalifragilisticexpialidocious, "
        "中文的句子也要按照显示宽度折行 and emoji 🙂🙂🙂 too, then /a/long/path/that/has/no/spaces/at/all.json")


@pytest.mark.parametrize("cols", WIDTHS)
def test_compare_fits_in_each_layout(bin_dir, server, home, tmp_path, cols):
    t = Term(bin_dir, server, plain(home), cols, tmp_path)
    t.child.sendline('"""')
    for piece in (LONG[:40], LONG[40:100], LONG[100:]):
        t.child.sendline(piece)
    t.child.sendline('"""')
    t.child.expect_exact("echo:")
    t.child.expect_exact(PROMPT)
    # 1. Two variants side by side (columns of 28 cells fit even at 60).
    rows = t.run(":compare temperature=0,1")
    t.assert_fits()
    assert any(" │ " in r for r in rows) and "supercalifragilisticexpialidocious" in "".join(rows).replace(" ", "")
    # 2. Four variants: stacked, each body wrapped to the width.
    rows = t.run(":compare temperature=0,0.5,1,1.5")
    t.assert_fits()
    assert "[temperature=1.5]" in " ".join(rows) and not any(" │ " in r for r in rows)
    # 3. A variant that fails with a long message beside one that does not.
    server.enqueue({"status": 400, "json": {"error": {"message": "the model refused this request because " * 4}}})
    rows = t.run(":compare model=m1,m2")
    t.assert_fits()
    assert "refused" in " ".join(rows)
    # 4. Function calls whose arguments differ, field by field.
    spec = tmp_path / "f.json"
    spec.write_text(json.dumps({"name": "f", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "note": {"type": "string"}}, "required": ["city", "note"]}}))
    call = lambda note: {"json": {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [{
        "index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c", "type": "function", "function": {"name": "f", "arguments": json.dumps(
                {"city": "Paris", "note": note})}}]}}]}}
    server.enqueue(call("a note of some length, with words " * 3), call("ノートは長いです " * 6))
    t.run(":func f.json")
    rows = t.run(":compare temperature=0,1")
    t.assert_fits()
    assert "arguments, field by field:" in rows and '    city: "Paris"' in rows
    assert any(r.lstrip().startswith("≠ note:") for r in rows)
    t.quit()


@pytest.mark.parametrize("cols", WIDTHS)
def test_batch_summary_fits(bin_dir, server, home, tmp_path, cols):
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"country": c}) + "\n" for c in ["France", "日本"]))
    t = Term(bin_dir, server, plain(home), cols, tmp_path)
    # One variant: one line of figures, broken between them when narrow.
    rows = t.run(":batch rows.jsonl out=./one.jsonl -- {{country}}", until="batch done")
    t.assert_fits()
    assert "2 ok, 0 failed" in " ".join(rows)
    # Three variants side by side.
    rows = t.run(":batch rows.jsonl out=./3.jsonl model=m1,m2,m3 -- {{country}}", until="batch done")
    t.assert_fits()
    header = [r for r in rows if "model=m1" in r]
    assert header and "model=m3" in header[0], "the variants are columns"
    # Ten variants with long names: a row each where they fit, a record each where they do not.
    rows = t.run(":batch rows.jsonl out=./10.jsonl temperature=0,0.5,1,1.5,2 model=m1,m2 -- {{country}}",
                 until="batch done")
    t.assert_fits()
    labels = [r for r in rows if "temperature=0.5 model=m2" in r]
    assert len(labels) == 1
    assert "results: " in " ".join(rows)
    t.quit()


@pytest.mark.parametrize("cols", WIDTHS)
def test_tools_sessions_stats_and_branches_fit(bin_dir, server, home, tmp_path, cols):
    (tmp_path / "tools.json").write_text(json.dumps([
        {"name": "get_weather", "description": "The weather for a city, and a forecast for the days ahead, in degrees",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                        "required": ["city", "days"]}},
        {"name": "clock", "description": "現在の時刻を返します。タイムゾーンを指定できます。",
         "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}},
    ]))
    t = Term(bin_dir, server, plain(home), cols, tmp_path)
    t.run(":tool tools.json")
    rows = t.run(":tools")
    t.assert_fits()
    assert "get_weather" in rows[0] and "requires city, days" in " ".join(rows)
    t.run(":tool off")
    t.run("a first prompt that is long enough to be cut in the list of sessions 日本語", until="echo:")
    rows = t.run(":sessions")
    t.assert_fits()
    path = "".join(r.strip() for r in rows[1:])
    assert path.endswith(".jsonl") and os.path.exists(path), "the path, broken over lines, is whole"
    t.run(":fork a-branch-with-a-name")
    t.run("another prompt on the branch, long enough to be cut when it is listed", until="echo:")
    rows = t.run(":branches")
    t.assert_fits()
    rows = t.run(":stats")
    t.assert_fits()
    assert rows[0] == "session"
    t.quit()


def test_piped_output_is_not_laid_out(bin_dir, server, home):
    r = run_piped(bin_dir, ["--base-url", server.url + "/v1", "--model", "m"], dict(home, COLUMNS="40"),
                  ":help\nhello\n:compare temperature=0,1\n")
    lines = r.stdout.splitlines()
    usage = [l for l in lines if l.startswith("  :batch FILE remote")]
    assert usage and "e.g. :batch countries.csv remote poll=60" in usage[0], "one line per command, as before"
    status = [l for l in lines if l.startswith("m · ")]
    assert status and "retries" in status[0] and "cost" in status[0], "every field, on one line"


@pytest.mark.parametrize("cols", WIDTHS)
def test_an_error_is_folded_to_the_width_after_it_is_redacted(bin_dir, server, home, tmp_path, cols):
    """A long error (a server's message echoing the key) folds between words on a terminal, and
    the key is redacted before the fold, so no part of it reaches the screen."""
    key = "sk-layout-FOLDED-key-0123456789abcdef"
    server.enqueue({"status": 400, "json": {"error": {"message": ("this request was refused for reasons that take a "
                                                                   f"long while to explain, key {key}, ") * 3}}})
    t = Term(bin_dir, server, dict(plain(home), OPENAI_API_KEY=key), cols, tmp_path)
    rows = t.run("hi")
    t.assert_fits()
    text = "\n".join(rows)
    assert rows[0].startswith("error: ") and "[redacted]" in text, text
    assert "FOLDED" not in text and "0123456789abcdef" not in text, text
    if cols < 120:
        assert len([r for r in rows if r.startswith("  ")]) >= 1, "continuation lines are indented"
    t.quit()
