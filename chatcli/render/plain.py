"""The plain writer: for a non-TTY stdout, `--plain` and `TERM=dumb` (docs/architecture.md, "Output").

stdout gets the sanitized reply text exactly as it arrives (flushed per delta): no ANSI, no
re-wrapping, and a trailing newline at the end if the reply lacked one. Everything else -- reasoning
(unless hidden), notices, the retry countdown, the finish/usage line and the partial-reply warning --
goes to stderr, styled only when stderr is a TTY and `NO_COLOR` is not set.

Broken pipe (`chatcli ask ... | head`): `feed()` lets the `BrokenPipeError` propagate, which ends the
turn at once (no point streaming into a closed pipe); the view then never writes to stdout again, so
`close()` is quiet. The CLI maps `BrokenPipeError` to a quiet exit (and should point fd 1 at
/dev/null so the interpreter's final flush does not complain).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TextIO

from chatcli.events import (
    Finish,
    Notice,
    ReasoningDelta,
    Retrying,
    SessionEvent,
    TextDelta,
    ToolFinished,
    ToolStarted,
    Usage,
)
from chatcli.render.footer import Where, describe_finish, format_stats, retry_line
from chatcli.render.sanitize import StreamSanitizer, sanitize_line
from chatcli.render.toolcalls import call_line, result_summary

_DIM, _YELLOW, _RESET = "\x1b[2m", "\x1b[33m", "\x1b[0m"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class PlainView:
    """A `ReplyView` that writes raw text. See the module docstring."""

    def __init__(self, out: TextIO, err: TextIO, *, show_reasoning: bool = True, no_color: bool = False,
                 clock: Callable[[], float] = time.monotonic, err_tty: bool | None = None,
                 where: Where = "chat") -> None:
        self._out = out
        self._where: Where = where
        self._err = err
        self._show_reasoning = show_reasoning
        self._clock = clock
        self._err_tty = _isatty(err) if err_tty is None else err_tty
        self._color = self._err_tty and not no_color
        self._text = StreamSanitizer()
        self._reasoning = StreamSanitizer()
        self._out_last = ""  # last character written to out ("" = nothing yet)
        self._err_last = "\n"  # so a status line starts on a fresh line
        self._status_shown = False  # a transient retry line is on stderr (TTY only)
        self._broken = False
        self._closed = False
        self._start = clock()
        self._first: float | None = None
        self._end: float | None = None
        self._usage: Usage | None = None
        self._last_attempt = -1

    # -- ReplyView --------------------------------------------------------------------------------

    def feed(self, event: SessionEvent) -> None:
        if self._closed:
            return
        if isinstance(event, TextDelta):
            self._on_text(self._text.feed(event.text))
        elif isinstance(event, ReasoningDelta):
            if self._first is None:
                self._first = self._clock()
            if self._show_reasoning:
                self._write_err(self._reasoning.feed(event.text), style=_DIM)
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, Retrying):
            self._on_retry(event)
        elif isinstance(event, Notice):
            self._err_line(sanitize_line(event.text), style=_DIM)
        elif isinstance(event, Finish):
            self._on_finish(event)
        elif isinstance(event, ToolStarted):
            # The round's text ends its line on stdout; the call is status, on stderr.
            self._on_text(self._text.flush())
            self._end_out_line()
            self._err_line(call_line(event.server, event.tool, event.call.arguments), style=_DIM)
        elif isinstance(event, ToolFinished):
            self._err_line(result_summary(event.result, event.seconds), style=_DIM)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._clear_status()
        try:
            self._on_text(self._text.flush())
            self._end_out_line()
        except BrokenPipeError:
            self._broken = True
        self._safe_flush(self._err)

    # -- internals --------------------------------------------------------------------------------

    def _on_text(self, text: str) -> None:
        if not text or self._broken:
            return
        if self._first is None:
            self._first = self._clock()
        self._clear_status()
        if self._err_last != "\n" and self._show_reasoning:
            # Reasoning streamed to stderr without a final newline: end it before the answer.
            self._write_err(self._reasoning.flush() + "\n")
        try:
            self._out.write(text)
            self._out.flush()
        except BrokenPipeError:
            self._broken = True
            raise
        self._out_last = text[-1]

    def _end_out_line(self) -> None:
        if self._out_last not in ("", "\n") and not self._broken:
            self._out.write("\n")
            self._out.flush()
            self._out_last = "\n"

    def _on_finish(self, finish: Finish) -> None:
        self._end = self._clock()
        try:
            self._on_text(self._text.flush())
            self._end_out_line()
        except BrokenPipeError:
            self._broken = True
            raise
        summary, warning = describe_finish(finish, where=self._where, has_text=self._out_last != "")
        ttft = None if self._first is None else self._first - self._start
        gen = None if self._first is None else self._end - self._first
        stats = format_stats(self._usage, ttft, gen)
        self._err_line(f"[{summary}{' · ' + stats if stats else ''}]", style=_DIM)
        if warning:
            self._err_line(f"warning: {warning}", style=_YELLOW)

    def _on_retry(self, event: Retrying) -> None:
        line = retry_line(event.attempt, event.delay, event.cause, event.attempts)
        if self._err_tty:
            # A countdown re-sent every second: overwrite one transient line in place.
            self._write_err(("\r\x1b[K" if self._status_shown else "") + self._styled(line, _DIM))
            self._status_shown = True
            self._err_last = ""
        elif event.attempt != self._last_attempt:
            self._err_line(line)  # a log gets one line per attempt, not one per second
        self._last_attempt = event.attempt

    def _clear_status(self) -> None:
        if self._status_shown:
            self._status_shown = False
            self._write_err("\r\x1b[K")
            self._err_last = "\n"

    def _styled(self, text: str, style: str | None) -> str:
        return f"{style}{text}{_RESET}" if style and self._color and text else text

    def _err_line(self, text: str, style: str | None = None) -> None:
        self._clear_status()
        lead = "" if self._err_last == "\n" else "\n"
        self._write_err(lead + self._styled(text, style) + "\n")

    def _write_err(self, text: str, style: str | None = None) -> None:
        if not text:
            return
        try:
            self._err.write(self._styled(text, style))
            self._err.flush()
        except (BrokenPipeError, ValueError):
            return  # a closed stderr must not break the reply
        self._err_last = text[-1]

    @staticmethod
    def _safe_flush(stream: TextIO) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
