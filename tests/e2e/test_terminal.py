"""What the terminal shows, read back from a terminal emulator (pyte) fed every byte chatcli wrote
to a real pseudo-terminal: Ctrl-C with the tty echoing `^C` (ECHOCTL), `TERM=dumb`, a Ctrl-C before
the first token, and the wording of `chatcli ask` warnings on a terminal.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import shutil
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pyte
import pytest

from tests.e2e.helpers import CHATCLI, OPENAI_MODEL, Pty, assert_terminal_sane, chat_env
from tests.support.sse_server import Reply, Sleep, SSEServer, openai_chunks

PROMPT = b"\x1b[?2004h"
CTRL_C = b"\x03"
CTRL_D = b"\x04"
COLS, ROWS = 100, 30
#: Three paragraphs: the panel's rows are COLS-1 wide, so after a frame the cursor used to sit at
#: the right margin of the last live row, where an echoed `^C` wraps.
REPLY = ["First paragraph of the reply.\n\n", "Second paragraph, ", "still streaming\n\n", "Third one is partial"]


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as srv:
        yield srv


def _echoctl_on(pty: Pty) -> None:
    """Make sure the tty echoes control characters as `^C` (the default of most terminals)."""
    attrs = termios.tcgetattr(pty.child.child_fd)
    attrs[3] |= termios.ECHO | termios.ECHOCTL
    termios.tcsetattr(pty.child.child_fd, termios.TCSANOW, attrs)


def _drain(pty: Pty, quiet: float = 0.6) -> None:
    """Read everything chatcli writes until it has been quiet for `quiet` seconds."""
    pty.transcript += pty.child.buffer  # what pexpect read past the last match
    pty.child.buffer = b""
    while True:
        try:
            pty.transcript += pty.child.read_nonblocking(65536, timeout=quiet)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            return


def screen(data: bytes, cols: int = COLS, rows: int = ROWS) -> list[str]:
    """Scrollback + screen as text, trailing blank lines dropped."""
    scr = pyte.HistoryScreen(cols, rows, history=10_000)
    pyte.ByteStream(scr).feed(data)
    lines = ["".join(row[x].data for x in range(cols)).rstrip() for row in scr.history.top]
    lines += [line.rstrip() for line in scr.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _interrupted_transcript(pty: Pty, *, chat: bool) -> tuple[list[str], list[str]]:
    """Wait for the partial reply to be on screen, snapshot it, press Ctrl-C; return both screens."""
    pty.expect(b"partial")
    _drain(pty)
    before = screen(pty.transcript)
    pty.send(CTRL_C)
    if chat:
        pty.expect(PROMPT)
        _drain(pty, 0.3)
    else:
        pty.finish()
    assert b"^C" in pty.transcript, "the tty did not echo ^C: the test would prove nothing"
    return before, screen(pty.transcript)


def _assert_frame_plus_footer(before: list[str], after: list[str]) -> None:
    assert any(line.startswith("╭─ openai:gpt-test") for line in before), before
    assert after[:len(before)] == before, "the transcript changed above the footer:\n" + "\n".join(after)
    footer, warning = after[len(before)], after[len(before) + 1]
    assert footer.startswith("╰─ interrupted") and footer.endswith("╯"), after
    assert warning == "⚠ interrupted — partial reply kept", after
    assert sum("Third one is partial" in line for line in after) == 1


def test_ctrl_c_mid_reply_in_ask_leaves_the_frame_plus_the_footer(server: SSEServer, tmp_path: Path) -> None:
    server.add(Reply.sse(openai_chunks(REPLY, finish=None, done=False), stall=9))
    pty = Pty(["ask", "-m", OPENAI_MODEL, "hi"], chat_env(tmp_path, server=server), rows=ROWS, cols=COLS)
    try:
        _echoctl_on(pty)
        before, after = _interrupted_transcript(pty, chat=False)
    finally:
        pty.kill()
    _assert_frame_plus_footer(before, after)
    assert after[len(before) + 2:] == ["^C"] or after[len(before) + 2:] == [], after
    assert_terminal_sane(pty.transcript)


def test_ctrl_c_mid_reply_in_the_chat_leaves_the_frame_plus_the_footer(server: SSEServer,
                                                                        tmp_path: Path) -> None:
    server.add(Reply.sse(openai_chunks(REPLY, finish=None, done=False), stall=9))
    pty = Pty(["-m", OPENAI_MODEL], chat_env(tmp_path, server=server), rows=ROWS, cols=COLS)
    try:
        _echoctl_on(pty)
        pty.expect(PROMPT)
        pty.send(b"question\r")
        before, after = _interrupted_transcript(pty, chat=True)
        pty.send(CTRL_D)
        pty.finish()
    finally:
        pty.kill()
    _assert_frame_plus_footer(before, after)


def test_ctrl_c_before_the_first_token_says_cancelled_and_draws_no_panel(server: SSEServer,
                                                                         tmp_path: Path) -> None:
    server.add(Reply.sse([Sleep(9.0)]))
    pty = Pty(["ask", "-m", OPENAI_MODEL, "hi"], chat_env(tmp_path, server=server), rows=ROWS, cols=COLS)
    try:
        _echoctl_on(pty)
        deadline = time.monotonic() + 20
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.requests, "the request never arrived"
        pty.expect("openai:gpt-test …")  # the spinner is up: nothing arrived yet
        pty.send(CTRL_C)
        pty.finish()
    finally:
        pty.kill()
    lines = [line for line in screen(pty.transcript) if line.strip() not in ("", "^C")]
    assert lines == ["⚠ cancelled before any reply arrived"], lines
    assert "╭" not in pty.transcript.decode("utf-8", "replace")
    assert_terminal_sane(pty.transcript)


def test_ctrl_c_before_the_first_token_in_the_chat_says_cancelled_and_draws_no_panel(server: SSEServer,
                                                                                     tmp_path: Path) -> None:
    # Item 17 in the chat too: no empty panel, "cancelled", and back at the prompt.
    server.add(Reply.sse([Sleep(9.0)]))
    pty = Pty(["-m", OPENAI_MODEL], chat_env(tmp_path, server=server), rows=ROWS, cols=COLS)
    try:
        _echoctl_on(pty)
        pty.expect(PROMPT)
        pty.send(b"question\r")
        deadline = time.monotonic() + 20
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.requests, "the request never arrived"
        pty.expect("openai:gpt-test …")  # the spinner is up: nothing arrived yet
        pty.send(CTRL_C)
        pty.expect(PROMPT)
        _drain(pty, 0.3)
        pty.send(CTRL_D)
        pty.finish()
    finally:
        pty.kill()
    text = "\n".join(screen(pty.transcript))
    assert "⚠ cancelled before any reply arrived" in text, text
    assert "partial reply kept" not in text, text
    assert "╭" not in pty.transcript.decode("utf-8", "replace")


def test_ask_warnings_name_what_works_from_the_shell(server: SSEServer, tmp_path: Path) -> None:
    server.add(Reply.sse(openai_chunks(["cut here"], finish="length")))
    pty = Pty(["ask", "-m", OPENAI_MODEL, "hi"], chat_env(tmp_path, server=server), rows=ROWS, cols=COLS)
    try:
        pty.finish()
    finally:
        pty.kill()
    text = "\n".join(screen(pty.transcript))
    assert "reply cut at the token limit — `chatcli -c`, then /continue, resumes it" in text, text


def test_term_dumb_ask_gets_no_escape_sequences(server: SSEServer, tmp_path: Path) -> None:
    server.add(Reply.sse(openai_chunks(["plain ", "answer"], finish="length")))
    env = chat_env(tmp_path, server=server, extra={"TERM": "dumb"})
    pty = Pty(["ask", "-m", OPENAI_MODEL, "hi"], env, rows=ROWS, cols=COLS)
    try:
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 3 or code == 0, pty.transcript
    assert b"plain answer" in pty.transcript
    assert b"\x1b" not in pty.transcript, pty.transcript


def test_term_dumb_chat_reads_plain_lines_without_escapes(server: SSEServer, tmp_path: Path) -> None:
    server.add(Reply.sse(openai_chunks(["dumb ", "answer"])))
    env = chat_env(tmp_path, server=server, extra={"TERM": "dumb"})
    pty = Pty(["-m", OPENAI_MODEL], env, rows=ROWS, cols=COLS)
    try:
        pty.expect(b"> ")
        assert b"\x1b" not in pty.transcript, pty.transcript  # fail fast: escapes around the prompt
        pty.send(b"question\r")
        pty.expect(b"dumb answer")
        pty.expect(b"> ")
        pty.send(CTRL_D)
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 0, pty.transcript
    assert b"\x1b" not in pty.transcript, pty.transcript
    assert re.search(rb"\[stop", pty.transcript), pty.transcript


def _tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", sock, "-f", "/dev/null", *args], capture_output=True, text=True,
                          check=False).stdout


# (seconds after the request, (cols, rows)): the schedule, and the same shrink and grow
# twice, a second apart -- which left 21 table rows twice in the scrollback while the live region
# was a third of the screen (the second shrink found the region partly pushed into scrollback).
RESIZES = {
    "once": ((2.0, ("80", "30")), (5.0, ("120", "40"))),
    "twice": ((1.0, ("80", "30")), (2.0, ("120", "40")), (3.0, ("80", "30")), (4.0, ("120", "40"))),
}


@pytest.mark.parametrize("schedule", sorted(RESIZES))
def test_resize_narrower_then_wider_while_a_table_streams_leaves_one_copy(server: SSEServer,
                                                                          tmp_path: Path, schedule: str) -> None:
    """Issue 16 item 5, in tmux (a terminal that re-wraps lines on resize, as most do): 120x40 ->
    80x30 at 2 s, back at 5 s (and that twice over), while an 80-row table streams, on a screen
    already full of earlier output. The scrollback must hold every table row exactly once."""
    assert shutil.which("tmux"), "tmux is needed for the reflow test"
    rows = ["Here is the table:\n\n", "| n | square | description |\n", "|---|---|---|\n"]
    rows += [f"| {i} | {i * i} | row number {i} of the long table with some words |\n" for i in range(80)]
    server.add(Reply.sse(openai_chunks([*rows, "\nDone.\n"]), delay=0.08))
    env = chat_env(tmp_path, server=server)
    script = tmp_path / "run.sh"
    script.write_text("seq 100\n" + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
                      + f" {shlex.quote(CHATCLI)} ask -m {OPENAI_MODEL} hi\necho EXITED\nsleep 60\n")
    sock = f"chatcli-test-{os.getpid()}"
    _tmux(sock, "new-session", "-d", "-x", "120", "-y", "40", f"env -i sh {shlex.quote(str(script))}")
    try:
        deadline = time.monotonic() + 30
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.requests, "the request never arrived"
        t0 = time.monotonic()
        for at, size in RESIZES[schedule]:
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            _tmux(sock, "resize-window", "-x", size[0], "-y", size[1])
        out = ""
        for _ in range(150):
            out = _tmux(sock, "capture-pane", "-p", "-J", "-S", "-")
            if "EXITED" in out:
                break
            time.sleep(0.2)
    finally:
        _tmux(sock, "kill-server")
    assert "EXITED" in out, out[-2000:]
    seen = collections.Counter(m.group(1) for line in out.splitlines()
                               for m in [re.search(r"│\s+(\d+)\s+\d+\s+row number", line)] if m)
    assert sorted(seen, key=int) == [str(i) for i in range(80)], out
    assert {k: v for k, v in seen.items() if v > 1} == {}, out
