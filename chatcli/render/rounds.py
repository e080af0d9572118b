"""A reply that runs tools, on a terminal: one panel per stretch of model text, the tool calls
and their results between the panels.

The panel owns a live region at the bottom of the screen; chatcli's approval question and the
tool lines must not be drawn inside it. So when a call comes up the current panel is closed (its
rows committed to the scrollback, its bottom border drawn), the call line is written on stderr,
the question (if any) is drawn below it, and the next round of text opens a new panel. The last
panel gets the reply's finish and footer.

While a call runs, one line of stderr is a spinner with the elapsed time (`ToolRunning` ticks),
redrawn in place and replaced by the result line -- or, after a Ctrl-C, by an "interrupted" one.
Plain views never get here: they ignore the ticks, so pipes see no animation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TextIO

from chatcli.events import (
    Finish,
    Notice,
    SessionEvent,
    ToolCall,
    ToolCallDelta,
    ToolFinished,
    ToolRunning,
    ToolStarted,
)
from chatcli.render.base import ReplyView
from chatcli.render.sanitize import sanitize_line
from chatcli.render.toolcalls import CALL_LINE_ARGS, call_line, result_summary

_DIM, _RESET = "\x1b[2m", "\x1b[0m"
_CLEAR_LINE = "\r\x1b[2K"
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: Characters of `server.tool` on the spinner line: it must stay on one row to be redrawn in place.
_SPIN_NAME = 48


class RoundsView:
    """A `ReplyView` over a view per round. `make()` builds a round's view (the first at once,
    so its spinner runs while the first request waits)."""

    def __init__(self, make: Callable[[], ReplyView], err: TextIO, *, color: bool = True,
                 animate: bool | None = None) -> None:
        self._make = make
        self._err = err
        self._color = color
        # The spinner redraws a row in place: only on a terminal (`chatcli ask 2>log` gets none).
        self._animate = _isatty(err) if animate is None else animate
        self._view: ReplyView | None = make()
        self._closed = False
        self._shown: int | None = None  # characters of a streaming call's arguments shown so far
        self._spinning: float | None = None  # the running call's elapsed seconds, while its spinner shows
        self._frame = 0

    def feed(self, event: SessionEvent) -> None:
        if self._closed:
            return
        if isinstance(event, ToolCallDelta):
            self._stream_call(event)
            return
        if isinstance(event, ToolRunning):
            if self._animate:
                self._spin(event)
            return
        self._end_spinner(interrupted=isinstance(event, Finish) and event.reason == "interrupted")
        self._end_call_line()
        if isinstance(event, ToolCall):
            return  # already on screen as it streamed
        if isinstance(event, ToolStarted):
            self._end_round()
            self._line(call_line(event.server, event.tool, event.call.arguments))
            return
        if isinstance(event, ToolFinished):
            self._line(result_summary(event.result, event.seconds))
            return
        if isinstance(event, Notice) and self._view is None:
            self._line(sanitize_line(event.text))  # e.g. "starting time…" between two rounds
            return
        if self._view is None:
            self._view = self._make()
        self._view.feed(event)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._end_spinner(interrupted=True)  # still spinning at the end: the call was cut short
        self._end_call_line()
        self._end_round()

    def _spin(self, event: ToolRunning) -> None:
        self._end_call_line()
        self._end_round()
        name = sanitize_line(f"{event.server}.{event.tool}")
        if len(name) > _SPIN_NAME:
            name = name[: _SPIN_NAME - 1] + "…"
        frame = _FRAMES[self._frame % len(_FRAMES)]
        self._frame += 1
        self._spinning = event.seconds
        dim, reset = (_DIM, _RESET) if self._color else ("", "")
        self._write(f"{_CLEAR_LINE}{dim}{frame} {name} · {event.seconds:.1f} s  (Ctrl-C cancels){reset}")

    def _end_spinner(self, *, interrupted: bool) -> None:
        if self._spinning is None:
            return
        seconds, self._spinning = self._spinning, None
        self._write(_CLEAR_LINE)
        if interrupted:
            self._line(f"↳ interrupted · {seconds:.1f} s")

    def _stream_call(self, event: ToolCallDelta) -> None:
        """The model's call as it arrives: its name at once, then its arguments, compact, on one
        line of stderr (cut at the call line's width)."""
        if event.name is not None:
            self._end_call_line()
            self._end_round()
            self._write(f"{_DIM if self._color else ''}… {sanitize_line(event.name)} ")
            self._shown = 0
        if self._shown is None or not event.arguments:
            return
        room = CALL_LINE_ARGS - self._shown
        if room <= 0:
            return
        text = " ".join(sanitize_line(event.arguments).split())
        self._write(text[:room] + ("…" if len(text) > room else ""))
        self._shown += len(text)

    def _end_call_line(self) -> None:
        if self._shown is not None:
            self._shown = None
            self._write(f"{_RESET if self._color else ''}\n")

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._err.write(text)
            self._err.flush()

    def _end_round(self) -> None:
        view, self._view = self._view, None
        if view is not None:
            view.close()

    def _line(self, text: str) -> None:
        styled = f"{_DIM}{text}{_RESET}" if self._color else text
        with contextlib.suppress(OSError, ValueError):
            self._err.write(styled + "\n")
            self._err.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False
