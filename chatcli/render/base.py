"""The contract between a turn and whatever shows it."""

from __future__ import annotations

from typing import Protocol

from chatcli.events import SessionEvent


class ReplyView(Protocol):
    """Shows one reply. Fed every event of the turn in order, then closed exactly once.

    `feed(Finish(...))` draws the end of the reply (footer, warnings). `close()` must leave the
    terminal sane (cursor shown, no live region, no leftover styles) and is called on every
    exit path, including Ctrl-C and errors; it must be idempotent.
    """

    def feed(self, event: SessionEvent) -> None: ...

    def close(self) -> None: ...
