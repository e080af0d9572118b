"""The plain writer of a comparison (piped output, `--plain`, `--json`): `PlainCompare` prints the
replies in `-m` order, each under `## provider:model`, streaming the first and holding each later one
behind a `_Gate` until the ones before it are done, so every reply's footer times its own stream.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import TextIO

from chatcli.events import SessionEvent


class _Gate(io.StringIO):
    """A stream that holds what is written until `open()`, then passes it (and the rest) on."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self._target = target
        self._held: list[str] | None = []

    def write(self, data: str) -> int:
        if self._held is not None:
            self._held.append(data)
        else:
            self._target.write(data)
        return len(data)

    def flush(self) -> None:
        if self._held is None:
            self._target.flush()

    def isatty(self) -> bool:
        return False

    def open(self) -> None:
        held, self._held = self._held, None
        if held:
            self._target.write("".join(held))
            self._target.flush()


class PlainCompare:
    """Piped / `--plain`: the replies in `-m` order, each under `## provider:model`. The first is
    streamed as it arrives; a later one is held until the ones before it are done, then printed
    (what it has so far at once, the rest as it arrives). Every reply's writer starts at once, so
    its footer's timings are its own; only its output waits (`_Gate`)."""

    def __init__(self, labels: Sequence[str], out: TextIO, err: TextIO, *, secrets: Sequence[str] = (),
                 no_color: bool = False, show_reasoning: bool = True, json_mode: bool = False) -> None:
        from chatcli.render.plain import PlainView
        from chatcli.render.sanitize import sanitize_line

        self._labels = [sanitize_line(label) for label in labels]
        self._err = err
        self._secrets = tuple(secrets)
        err_tty = _isatty(err)
        self._outs = [_Gate(io.StringIO() if json_mode else out) for _ in labels]
        self._errs = [_Gate(err) for _ in labels]
        self._views = [PlainView(o, e, show_reasoning=show_reasoning and not json_mode, no_color=no_color,
                                 err_tty=err_tty, where="ask") for o, e in zip(self._outs, self._errs, strict=True)]
        if not json_mode:
            for i, o in enumerate(self._outs):
                o.write(("\n" if i else "") + f"## {self._labels[i]}\n\n")
        self._ended = [False] * len(labels)
        self._current = 0
        self._closed = False
        self._outs[0].open()
        self._errs[0].open()

    def begin(self, index: int) -> None:
        # The footer's "first token" is counted from the request, not from the SDK's import
        # (which several threads share); PlainView keeps its start in `_start`.
        self._views[index]._start = time.monotonic()

    def feed(self, index: int, event: SessionEvent) -> None:
        self._views[index].feed(event)

    def fail(self, index: int, message: str) -> None:
        from chatcli.redact import redact
        from chatcli.render.sanitize import sanitize_line

        line = " ".join(sanitize_line(redact(message, self._secrets)).split("\n"))
        self._errs[index].write(f"chatcli: {self._labels[index]}: {line}\n")
        self._errs[index].flush()

    def end(self, index: int) -> None:
        self._views[index].close()
        self._ended[index] = True
        while self._current < len(self._labels) and self._ended[self._current]:
            self._current += 1
            if self._current < len(self._labels):
                self._outs[self._current].open()
                self._errs[self._current].open()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for i, view in enumerate(self._views):
            view.close()
            self._outs[i].open()
            self._errs[i].open()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
