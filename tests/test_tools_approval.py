"""The approval question on a real pseudo-terminal: only keys pressed after it is drawn answer
it, each key's meaning, Ctrl-C, untrusted names shown inert, and the terminal mode restored;
and the no-terminal policy that declines and says how to allow."""

from __future__ import annotations

import io
import os
import pty
import termios
import threading
from collections.abc import Iterator
from typing import BinaryIO

import pytest

from chatcli.render.toolcalls import question
from chatcli.tools.approval import NoTerminal, TerminalQuestion

pytestmark = pytest.mark.timeout(20)


class Terminal:
    """A pty: chatcli gets the slave end as its /dev/tty; the test types on the master end."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.screen = b""

    def open_tty(self) -> BinaryIO:
        return os.fdopen(os.dup(self.slave), "r+b", buffering=0)

    def read_until(self, marker: bytes, timeout: float = 5.0) -> None:
        import select

        while marker not in self.screen:
            ready, _, _ = select.select([self.master], [], [], timeout)
            assert ready, f"no {marker!r} on the terminal; got {self.screen!r}"
            self.screen += os.read(self.master, 4096)

    def type_after_question(self, keys: bytes) -> threading.Thread:
        def go() -> None:
            self.read_until(b"[A] always")
            os.write(self.master, keys)

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def term() -> Iterator[Terminal]:
    t = Terminal()
    yield t
    os.close(t.master)
    os.close(t.slave)


@pytest.mark.parametrize(("key", "decision"), [
    (b"y", "once"), (b"n", "decline"), (b"\r", "decline"), (b"a", "chat"), (b"A", "always")])
def test_each_key(term: Terminal, key: bytes, decision: str) -> None:
    asker = TerminalQuestion(question, open_tty=term.open_tty)
    typer = term.type_after_question(key)
    assert asker.decide("time", "get_current_time", '{"timezone": "Asia/Tokyo"}') == decision
    typer.join(5)


def test_keys_queued_before_the_question_do_not_answer_it(term: Terminal) -> None:
    os.write(term.master, b"yyyA")  # type-ahead, or a terminal's reply to a smuggled query
    asker = TerminalQuestion(question, open_tty=term.open_tty)
    typer = term.type_after_question(b"n")
    assert asker.decide("time", "get_current_time", "{}") == "decline"
    typer.join(5)


def test_ctrl_c_at_the_question_interrupts_and_restores_the_terminal(term: Terminal) -> None:
    before = termios.tcgetattr(term.slave)
    asker = TerminalQuestion(question, open_tty=term.open_tty)
    typer = term.type_after_question(b"\x03")
    with pytest.raises(KeyboardInterrupt):
        asker.decide("time", "get_current_time", "{}")
    typer.join(5)
    assert termios.tcgetattr(term.slave) == before


def test_the_question_shows_untrusted_text_inert(term: Terminal) -> None:
    asker = TerminalQuestion(question, open_tty=term.open_tty)
    typer = term.type_after_question(b"n")
    asker.decide("evil\x1b]52;c;aGk=\x07", "rm\x1b[2J", '{"path": "\\u001b[31mred"}')
    typer.join(5)
    term.read_until(b"declined")
    assert b"\x1b" not in term.screen and b"\x07" not in term.screen
    assert "␛]52;c;aGk=␇".encode() in term.screen and "rm␛[2J".encode() in term.screen
    assert b"\\u001b[31mred" in term.screen  # JSON's own escape: inert text


def test_no_terminal_declines_and_says_how_to_allow() -> None:
    err = io.StringIO()
    policy = NoTerminal(err)
    assert policy.decide("time", "get_current_time", "{}") == "decline"
    assert err.getvalue() == (
        "chatcli: tool time.get_current_time not run: no terminal to ask — allow it with "
        '--allow-tool time:get_current_time, or allow = ["get_current_time"] under [mcp.servers.time] '
        "in the config\n")
