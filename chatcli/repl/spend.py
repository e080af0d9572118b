"""What `/usage` counts (issue 16 item 6): every reply that was paid for, not only the ones the
conversation still shows. A reply that /retry replaced or /undo removed is gone from the
conversation's turns (and from the store's `turns`), but its tokens were billed.

Two totals, each labelled by `/usage`:

* this session: every reply received since this chat started, across /new and /resume
  (`SpendLog`, fed by the REPL around each streamed reply);
* this conversation: every reply ever stored for it (every model's reply to a /compare made in
  this process included), the current ones plus those replaced or
  undone (the store keeps their token counts when it deletes them: `Store.forgotten_usage`),
  in this process or an earlier one. Without a store (--no-save) the replies this process
  dropped stand in for the store's record.

A /continue adds to the reply it continues: its output tokens are counted as the growth of the
reply's output, and its input (the whole conversation re-sent) as a second input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatcli.session import Session
    from chatcli.settings import Settings
    from chatcli.turn import Turn


@dataclass(frozen=True)
class Entry:
    """One paid request's share: which model, how many tokens, and whether it was a new reply."""

    provider: str | None
    model: str | None
    tokens_in: int
    tokens_out: int
    replies: int = 1


@dataclass(frozen=True)
class Spend:
    replies: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    #: False when some reply's model has no price configured (`cost` leaves it out).
    priced: bool = True
    #: Replies no longer in the conversation (replaced by /retry, removed by /undo).
    dropped: int = 0
    #: Replies of a /compare that the conversation did not keep (each model's reply was paid for).
    compared: int = 0


def _price(settings: Settings, provider: str | None, model: str | None) -> tuple[float, float] | None:
    for key in (f"{provider}:{model}", model or ""):
        if key in settings.prices:
            return settings.prices[key]
    return None


def tally(settings: Settings, entries: Iterable[Entry], dropped: int = 0, compared: int = 0) -> Spend:
    replies = tokens_in = tokens_out = 0
    cost = 0.0
    priced = True
    for entry in entries:
        replies += entry.replies
        tokens_in += entry.tokens_in
        tokens_out += entry.tokens_out
        if not (entry.tokens_in or entry.tokens_out):
            continue
        price = _price(settings, entry.provider, entry.model)
        if price is None:
            priced = False
            continue
        cost += (entry.tokens_in * price[0] + entry.tokens_out * price[1]) / 1_000_000
    return Spend(replies, tokens_in, tokens_out, cost, priced, dropped, compared)


def _entry(turn: Turn) -> Entry:
    return Entry(turn.provider, turn.model, turn.input_tokens or 0, turn.output_tokens or 0)


def _usage(turn: Turn) -> tuple[int | None, int | None]:
    return turn.input_tokens, turn.output_tokens


class SpendLog:
    """The replies this chat process received. `before(session)` is taken when a reply starts
    streaming and `after(session, snapshot)` when it ends: the assistant turns that are new, or
    whose usage changed (a /continue), are what that stream cost."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        # Every reply turn paid for here, with its session: a turn that leaves its session's
        # turns later (/retry, /undo) is still counted for that conversation without a store.
        # Keeping the objects keeps their ids unique.
        self._paid: dict[int, tuple[Session, Turn]] = {}
        # /compare in this process: (session, the reply it kept -- a copy of one of them, in the
        # session's turns --, every model's reply).
        self._compared: list[tuple[Session, Turn, list[Turn]]] = []

    def before(self, session: Session) -> dict[int, tuple[int | None, int | None]]:
        return {id(t): _usage(t) for t in session.turns if t.role == "assistant"}

    def after(self, session: Session, snapshot: dict[int, tuple[int | None, int | None]]) -> None:
        for turn in session.turns:
            if turn.role != "assistant":
                continue
            was = snapshot.get(id(turn))
            if was is None:
                self.entries.append(_entry(turn))
            elif was != _usage(turn):  # continued: a second request, growing the same reply
                grew = (turn.output_tokens or 0) - (was[1] or 0)
                self.entries.append(Entry(turn.provider, turn.model, turn.input_tokens or 0, max(grew, 0),
                                          replies=0))
            else:
                continue
            self._paid[id(turn)] = (session, turn)

    def compared(self, session: Session, kept: Turn, replies: list[Turn]) -> None:
        """A /compare answered: every model's reply was paid for; `kept` is the copy of one of them
        that the conversation goes on with (`/keep` changes it in place)."""
        self.entries.extend(_entry(t) for t in replies)
        self._compared.append((session, kept, list(replies)))

    def compared_in(self, session: Session) -> list[tuple[Turn, list[Turn]]]:
        return [(kept, replies) for owner, kept, replies in self._compared if owner is session]

    def session_spend(self, settings: Settings) -> Spend:
        return tally(settings, self.entries)

    def dropped_from(self, session: Session) -> list[Turn]:
        """Replies paid for in this process that are no longer in `session`'s turns."""
        current = {id(t) for t in session.turns}
        return [turn for owner, turn in self._paid.values() if owner is session and id(turn) not in current]


def conversation_spend(settings: Settings, session: Session, store: Any, conv_id: str | None,
                       log: SpendLog | None) -> Spend:
    """Every reply stored for the conversation: the current ones, the ones replaced or undone, and
    every model's reply to a /compare of this process (the kept one counted once)."""
    comparisons = log.compared_in(session) if log is not None else []
    kept_ids = {id(kept) for kept, _ in comparisons}
    entries = [_entry(t) for t in session.turns if t.role == "assistant" and id(t) not in kept_ids]
    others = 0
    for kept, replies in comparisons:
        entries.extend(_entry(t) for t in replies)
        others += len(replies) - (1 if any(t is kept for t in session.turns) else 0)
    forgotten: list[Entry] = []
    reader = getattr(store, "forgotten_usage", None)
    if conv_id is not None and reader is not None:
        from chatcli.errors import ChatCLIError

        try:
            forgotten = [Entry(p, m, i, o) for p, m, i, o in reader(conv_id)]
        except ChatCLIError:
            forgotten = []
    elif log is not None:  # not saved: what this process dropped from it
        forgotten = [_entry(t) for t in log.dropped_from(session)]
    return tally(settings, [*entries, *forgotten], dropped=len(forgotten), compared=others)


def describe(label: str, spend: Spend) -> str:
    """`LABEL: N replies (K replaced or undone) · X tokens in · Y out · $C`."""
    line = f"{label}: {spend.replies} repl{'y' if spend.replies == 1 else 'ies'}"
    notes = [f"{spend.dropped} replaced or undone"] if spend.dropped else []
    if spend.compared:
        notes.append(f"{spend.compared} compared, not kept")
    if notes:
        line += f" ({', '.join(notes)})"
    line += f" · {spend.tokens_in:,} tokens in · {spend.tokens_out:,} out"
    if (spend.cost or spend.priced) and (spend.tokens_in or spend.tokens_out):
        line += f" · ${spend.cost:.4f}" + ("" if spend.priced else " (some models have no price configured)")
    return line


__all__ = ["Entry", "Spend", "SpendLog", "conversation_spend", "describe", "tally"]
