"""Branching end to end: :edit puts the last prompt in the line editor and the edited one
replaces it; :undo, :fork, :switch and :branches change the conversation and the transcript
records them."""
import pexpect

from conftest import read_transcript, session_files, spawn

PROMPT = "› "


def test_edit_undo_fork_and_switch(bin_dir, server, home):
    child = spawn(bin_dir, ["--base-url", server.url + "/v1", "--model", "echo-model"], dict(home, NO_COLOR="1"))
    child.expect_exact(PROMPT)
    child.sendline("hello there")
    child.expect_exact("echo: hello there")
    child.expect_exact(PROMPT)
    child.sendline(":edit")
    child.expect_exact("edit › hello there")
    child.send("\x7f" * 5 + "world\r")
    child.expect_exact("echo: hello world")
    child.expect_exact(PROMPT)
    child.sendline("second")
    child.expect_exact("echo: second")
    child.expect_exact(PROMPT)
    child.sendline(":undo")
    child.expect_exact("removed the last exchange (2 messages); 2 left")
    child.sendline(":fork alt")
    child.expect_exact("branch alt (from main at 2 messages); :switch main goes back")
    child.sendline("on alt")
    child.expect_exact("echo: on alt")
    child.expect_exact(PROMPT)
    child.sendline(":switch main")
    child.expect_exact("on main: 2 messages")
    child.sendline(":branches")
    child.expect_exact("* main  2 messages  hello world")
    child.expect_exact("  alt  4 messages  on alt")
    child.sendline("back on main")
    child.expect_exact("echo: back on main")
    child.expect_exact(PROMPT)
    child.sendline(":quit")
    child.expect(pexpect.EOF)
    bodies = server.bodies()
    assert [m["content"] for m in bodies[1]["messages"]] == ["hello world"], ":edit replaced the exchange"
    assert [m["content"] for m in bodies[3]["messages"]] == ["hello world", "echo: hello world", "on alt"]
    assert [m["content"] for m in bodies[4]["messages"]] == ["hello world", "echo: hello world", "back on main"]
    events = read_transcript(session_files(home)[-1])["events"]
    assert [e["type"] for e in events if e["type"] in ("undo", "fork", "switch")] == ["undo", "fork", "switch"]
    assert [e.get("retry", False) for e in events if e["type"] == "turn"][:2] == [False, True]
