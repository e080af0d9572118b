"""One turn of a conversation: `Turn` (what is stored), `Recorder` (where it goes when it ends),
and `run_turn`, which pulls the session's events into a view and owns Ctrl-C while a reply streams.

Ctrl-C can land anywhere: inside the provider's network read (the exception then travels up
through the session generator, which records the partial reply as interrupted) or inside the
view while it paints (the generator is suspended at a `yield`; closing it records the reply).
Either way the generator is closed here, the view is told, and the turn ends as `interrupted`.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from chatcli.events import Finish, FinishReason, Part, SessionEvent, ToolCallPart, ToolResultPart

if TYPE_CHECKING:
    from chatcli.render.base import ReplyView


@dataclass
class Turn:
    """One stored turn. `content` is raw model/user text: sanitizing is for display only."""

    role: str  # "user" | "assistant" | "tool"
    content: str
    # Non-text parts in order (tool calls on a reply, tool results on a "tool" turn, attachments on
    # a user turn): the types of chatcli/events.py.
    parts: tuple[Part, ...] = ()
    created: float = field(default_factory=time.time)
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    finish_reason: FinishReason | None = None  # assistant turns only
    finish_raw: str | None = None
    finish_detail: str | None = None
    reasoning: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft: float | None = None  # seconds from request to first content
    duration: float | None = None  # seconds from request to end
    id: int | None = None  # set by the store

    @property
    def partial(self) -> bool:
        return self.role == "assistant" and self.finish_reason not in (None, "stop")

    @property
    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ToolCallPart))

    @property
    def tool_results(self) -> tuple[ToolResultPart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ToolResultPart))


class Recorder(Protocol):
    """Where turns go when they end (the SQLite store, or nothing with --no-save)."""

    def record(self, turn: Turn) -> None:
        """Insert the turn, or update it if it has an id already. Must not raise for I/O failures."""
        ...

    def forget(self, turn: Turn) -> None:
        """Remove a stored turn (/undo, /retry)."""
        ...


def run_turn(events: Generator[SessionEvent, None, None], view: ReplyView) -> Finish:
    """Show a turn. Returns its `Finish`; a `ProviderError` before any text propagates."""
    finish: Finish | None = None
    try:
        try:
            for event in events:
                if isinstance(event, Finish):
                    finish = event
                view.feed(event)
        except KeyboardInterrupt:
            events.close()
            finish = Finish("interrupted", detail="stopped by Ctrl-C")
            view.feed(finish)
    finally:
        events.close()
        view.close()
    return finish if finish is not None else Finish("incomplete")
