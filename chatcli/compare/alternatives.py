"""The replies of a chat `/compare` as stored: an `Alternative` per model's reply to one user message,
the `alternatives` table (schema v4 in chatcli/history/store.py) written through the store's own
transaction (`save_alternative`, `mark_kept`, and `AltRecorder`, a lane's `Recorder`), read back by
`load_alternatives` and printed under the kept reply by `history show` (`print_alternatives`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from chatcli.history.store import Store
    from chatcli.turn import Turn


@dataclass
class Alternative:
    position: int
    provider: str | None
    model: str | None
    turn: Turn
    kept: bool = False

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}"


class AltRecorder:
    """A compare lane's `Recorder` in the chat: its reply goes to the alternatives table."""

    def __init__(self, store: Store | None, user: Turn, position: int) -> None:
        self._store = store
        self._user = user
        self._position = position

    def record(self, turn: Turn) -> None:
        if self._store is not None and self._user.id is not None:
            save_alternative(self._store, self._user.id, self._position, turn)

    def forget(self, turn: Turn) -> None:
        pass  # a comparison's replies are all kept


def save_alternative(store: Store, user_turn_id: int, position: int, turn: Turn, kept: bool | None = None) -> None:
    def action(conn: Any) -> None:
        conn.execute(
            "INSERT INTO alternatives (turn_id, position, provider, model, content, finish_reason, finish_detail,"
            " input_tokens, output_tokens, created, kept) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (turn_id, position) DO UPDATE SET provider = excluded.provider, model = excluded.model,"
            " content = excluded.content, finish_reason = excluded.finish_reason,"
            " finish_detail = excluded.finish_detail, input_tokens = excluded.input_tokens,"
            " output_tokens = excluded.output_tokens",
            (user_turn_id, position, turn.provider, turn.model, turn.content, turn.finish_reason,
             turn.finish_detail, turn.input_tokens, turn.output_tokens, turn.created, 1 if kept else 0))

    store._write(action)  # the store's own transaction and failure handling (warn once, go on)


def mark_kept(store: Store, user_turn_id: int, position: int) -> None:
    def action(conn: Any) -> None:
        conn.execute("UPDATE alternatives SET kept = (position = ?) WHERE turn_id = ?", (position, user_turn_id))

    store._write(action)


def load_alternatives(store: Store, conv_id: str) -> dict[int, list[Alternative]]:
    """A conversation's alternatives, by the id of the user message they answer."""
    from chatcli.turn import Turn

    with store._reading() as conn:
        rows = conn.execute(
            "SELECT a.turn_id, a.position, a.provider, a.model, a.content, a.finish_reason, a.finish_detail,"
            " a.input_tokens, a.output_tokens, a.created, a.kept FROM alternatives a"
            " JOIN turns t ON t.id = a.turn_id WHERE t.conversation_id = ? ORDER BY a.turn_id, a.position",
            (conv_id,)).fetchall()
    out: dict[int, list[Alternative]] = {}
    for (turn_id, position, provider, model, content, reason, detail, tin, tout, created, kept) in rows:
        turn = Turn("assistant", content, provider=provider, model=model, finish_reason=reason,
                    finish_detail=detail, input_tokens=tin, output_tokens=tout, created=created)
        out.setdefault(int(turn_id), []).append(Alternative(int(position), provider, model, turn, bool(kept)))
    return out


def print_alternatives(alternatives: Sequence[Alternative], out: TextIO) -> None:
    """`history show`: a message's alternatives, under the reply the conversation went on with."""
    from chatcli.history.commands import partial_mark
    from chatcli.render.sanitize import sanitize as safe

    print(f"  ⇄ {len(alternatives)} models answered this message (/compare):", file=out)
    for alt in alternatives:
        mark = " · kept" if alt.kept else ""
        print(f"  ── [{alt.position}] {safe(alt.label)}{mark} ──", file=out)
        text = safe(alt.turn.content) if alt.turn.content else "(no reply text)"
        for line in text.splitlines() or [""]:
            print(f"  {line}", file=out)
        partial = partial_mark(alt.turn)
        if partial:
            print(f"  {partial}", file=out)
