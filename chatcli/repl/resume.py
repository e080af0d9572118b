"""What the chat says when it picks up a saved conversation: `/resume ID`, `chatcli -c` and
`chatcli -r ID` all print these same lines (issue 16 item 7), so a resumed chat never starts
silently and the user sees which conversation they are in before typing.

The lines are for the terminal: the title and the reply are model/user text, sanitized here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chatcli.errors import ChatCLIError
from chatcli.render.sanitize import sanitize

if TYPE_CHECKING:
    from chatcli.turn import Turn

#: How much of the last reply is shown (one line's worth; the rest is in `history show`).
PREVIEW_CHARS = 200
TITLE_CHARS = 60


def summary_lines(conv_id: str, title: str | None, turns: Sequence[Turn]) -> list[str]:
    """`resumed conversation ID: "TITLE" · N replies` and, when there is one, `last reply: ...`."""
    replies = sum(1 for t in turns if t.role == "assistant")
    head = f"resumed conversation {sanitize(conv_id)}"
    name = " ".join((title or "").split())
    if name:
        if len(name) > TITLE_CHARS:
            name = name[: TITLE_CHARS - 1] + "…"
        head += f': "{sanitize(name)}"'
    head += f" · {replies} repl{'y' if replies == 1 else 'ies'}"
    lines = [head]
    last = next((t for t in reversed(turns) if t.role == "assistant" and t.content), None)
    if last is not None:
        preview = " ".join(last.content.split())
        if len(preview) > PREVIEW_CHARS:
            preview = preview[:PREVIEW_CHARS] + "…"
        lines.append("last reply: " + sanitize(preview))
    return lines


def stored_summary(store: Any, conv_id: str, turns: Sequence[Turn]) -> list[str]:
    """`summary_lines` with the title read from the store (`chatcli.history.store.Store.get`); a store
    that cannot say leaves the title out rather than stopping the chat."""
    title: str | None = None
    if store is not None:
        try:
            title = getattr(store.get(conv_id), "title", None)
        except ChatCLIError:
            title = None
    return summary_lines(conv_id, title, turns)


__all__ = ["stored_summary", "summary_lines"]
