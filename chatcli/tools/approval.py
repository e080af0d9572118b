"""Asking the user before a tool runs: the terminal question, and the answer for scripts.

Nothing but a key the user presses can approve a call. The question is drawn by chatcli itself,
outside the model's panel, on the controlling terminal, and the input queued before it was drawn
is discarded (`tcflush`): type-ahead, a paste, or a terminal's answer to a query smuggled into
model or tool text cannot answer it. With no terminal, calls that are not allowed are declined
and named on stderr with how to allow them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import BinaryIO, Literal, Protocol, TextIO

from chatcli.render.sanitize import sanitize_line

#: once: run this call; decline: tell the model the user declined; chat: allow the tool for the
#: rest of this chat; always: save a grant bound to the server's identity.
Decision = Literal["once", "decline", "chat", "always"]

_KEYS: dict[bytes, Decision] = {
    b"y": "once", b"Y": "once",
    b"n": "decline", b"N": "decline", b"\r": "decline", b"\n": "decline", b"\x1b": "decline",
    b"a": "chat",
    b"A": "always",
}
_SAID: dict[Decision, str] = {
    "once": "run once", "decline": "declined", "chat": "allowed for this chat",
    "always": "always allowed (saved)",
}


class Approver(Protocol):
    def decide(self, server: str, tool: str, arguments: str) -> Decision: ...


def how_to_allow(server: str, tool: str) -> str:
    s, t = sanitize_line(server), sanitize_line(tool)
    return f'allow it with --allow-tool {s}:{t}, or allow = ["{t}"] under [mcp.servers.{s}] in the config'


class NoTerminal:
    """Scripts, CI, pipes: nobody to ask. Declines, and says which call and how to allow it."""

    def __init__(self, err: TextIO) -> None:
        self._err = err
        self.declined: list[tuple[str, str]] = []

    def decide(self, server: str, tool: str, arguments: str) -> Decision:
        self.declined.append((server, tool))
        with contextlib.suppress(OSError, ValueError):
            self._err.write(
                f"chatcli: tool {sanitize_line(server)}.{sanitize_line(tool)} not run: no terminal to "
                f"ask — {how_to_allow(server, tool)}\n")
            self._err.flush()
        return "decline"


class TerminalQuestion:
    """Draws the question on the terminal and reads one key from it (cbreak, no echo).

    `render(server, tool, arguments)` gives the question's text (chatcli/render/toolcalls.py);
    `open_tty` a read/write binary file on the controlling terminal (tests pass a pty's end)."""

    def __init__(self, render: Callable[[str, str, str], str],
                 open_tty: Callable[[], BinaryIO] | None = None) -> None:
        self._render = render
        self._open_tty = open_tty or _open_dev_tty

    def decide(self, server: str, tool: str, arguments: str) -> Decision:
        import termios
        import tty

        handle = self._open_tty()
        fd = handle.fileno()
        old = termios.tcgetattr(fd)
        decision: Decision = "decline"
        try:
            tty.setcbreak(fd, termios.TCSANOW)
            attrs = termios.tcgetattr(fd)
            # No echo; ISIG off so Ctrl-C arrives as a byte and ends the question the same way
            # whether or not this terminal is the process's controlling one.
            attrs[3] &= ~(termios.ECHO | termios.ISIG)
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            # Discard what was queued, THEN draw: only keys pressed once the question shows count.
            termios.tcflush(fd, termios.TCIFLUSH)
            text = "\n" + self._render(server, tool, arguments)
            os.write(fd, text.replace("\n", "\r\n").encode(_encoding(), "replace"))
            while True:
                key = os.read(fd, 1)
                if not key:  # the terminal went away: nobody said yes
                    break
                if key in (b"\x03", b"\x04"):  # Ctrl-C, Ctrl-D
                    raise KeyboardInterrupt
                if key in _KEYS:
                    decision = _KEYS[key]
                    break
        finally:
            termios.tcsetattr(fd, termios.TCSANOW, old)
            with contextlib.suppress(OSError):
                os.write(fd, f"{_SAID[decision]}\r\n".encode(_encoding(), "replace"))
            handle.close()
        return decision


def _open_dev_tty() -> BinaryIO:
    return open("/dev/tty", "r+b", buffering=0)  # decide() closes it


def _encoding() -> str:
    import locale

    return locale.getpreferredencoding(False) or "utf-8"
