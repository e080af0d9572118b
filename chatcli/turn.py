"""Drives one turn: pulls the session's events into a view, and owns Ctrl-C while a reply streams.

Ctrl-C can land anywhere: inside the provider's network read (the exception then travels up
through the session generator, which records the partial reply as interrupted) or inside the
view while it paints (the generator is suspended at a `yield`; closing it records the reply).
Either way the generator is closed here, the view is told, and the turn ends as `interrupted`.
"""

from __future__ import annotations

from collections.abc import Generator

from chatcli.events import Finish, SessionEvent
from chatcli.render.base import ReplyView


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
