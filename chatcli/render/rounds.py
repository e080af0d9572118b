"""A reply that runs tools, on a terminal: one panel per stretch of model text, the tool calls
and their results between the panels.

The panel owns a live region at the bottom of the screen; chatcli's approval question and the
tool lines must not be drawn inside it. So when a call comes up the current panel is closed (its
rows committed to the scrollback, its bottom border drawn), the call line is written on stderr,
the question (if any) is drawn below it, and the next round of text opens a new panel. The last
panel gets the reply's finish and footer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TextIO

from chatcli.events import Notice, SessionEvent, ToolCall, ToolCallDelta, ToolFinished, ToolStarted
from chatcli.render.base import ReplyView
from chatcli.render.sanitize import sanitize_line
from chatcli.render.toolcalls import CALL_LINE_ARGS, call_line, result_summary

_DIM, _RESET = "\x1b[2m", "\x1b[0m"


class RoundsView:
    """A `ReplyView` over a view per round. `make()` builds a round's view (the first at once,
    so its spinner runs while the first request waits)."""

    def __init__(self, make: Callable[[], ReplyView], err: TextIO, *, color: bool = True) -> None:
        self._make = make
        self._err = err
        self._color = color
        self._view: ReplyView | None = make()
        self._closed = False
        self._shown: int | None = None  # characters of a streaming call's arguments shown so far

    def feed(self, event: SessionEvent) -> None:
        if self._closed:
            return
        if isinstance(event, ToolCallDelta):
            self._stream_call(event)
            return
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
        self._end_call_line()
        self._end_round()

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
