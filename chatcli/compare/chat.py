"""The chat's `/compare` and `/keep`. `/compare A B` arms the next message: it is recorded once in the
conversation, and every model answers it in a session of its own built on the conversation so far
(`Session.retry()` replies to the last user message). Each reply is recorded, in that session's
`finally`, as an alternative of the message (chatcli/compare/alternatives.py); the first reply with
text also becomes the conversation's assistant turn, so the conversation goes on with it until `/keep`
picks another one (which then replaces it, and its model becomes the chat's model).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO, cast

from chatcli.compare.alternatives import Alternative, AltRecorder, mark_kept
from chatcli.compare.plain import PlainCompare
from chatcli.compare.runner import CompareView, Lane, Runner
from chatcli.errors import UsageError

if TYPE_CHECKING:
    from chatcli.events import Part
    from chatcli.history.store import Store
    from chatcli.repl.commands import Outcome, ReplState
    from chatcli.turn import Turn


@dataclass
class ChatCompare:
    """The chat's compare state (`ReplState.compare`)."""

    armed: tuple[str, ...] = ()  # the next message goes to these models
    last: tuple[str, ...] = ()  # the models named last time (`/compare` alone)
    replies: list[Alternative] = field(default_factory=list)  # of the last comparison
    user: Turn | None = None  # the message they answer
    kept_turn: Turn | None = None  # the conversation's assistant turn for it
    noted: bool = True  # "continuing with ..." said already


def _state_of(state: ReplState) -> ChatCompare:
    cc = getattr(state, "compare", None)
    if not isinstance(cc, ChatCompare):
        cc = ChatCompare()
        state.compare = cc
    return cc


def compare_cmd(state: ReplState, args: str) -> Outcome:
    """`/compare A B ...`: the next message goes to those models side by side; alone: the last
    message again, to the models named last time."""
    specs = tuple(args.split())
    cc = _state_of(state)
    if specs:
        if len(specs) < 2:
            raise UsageError("/compare needs two models or more: /compare MODEL MODEL ...")
        if state.resolve_model is None:
            raise UsageError("comparing models is not available here")
        for spec in specs:
            state.resolve_model(spec)  # an unknown name is said now, not after the message is typed
        cc.armed = cc.last = specs
        state.say(f"the next message goes to {', '.join(specs)}, side by side")
        return None
    if not cc.last:
        raise UsageError("no models named yet: /compare MODEL MODEL ...")
    if not any(t.role == "user" for t in state.session.turns):
        raise UsageError("nothing to compare yet: /compare MODEL MODEL ..., then type the message")
    run_in_chat(state, cc.last, repeat=True)
    return None


def chat_send(state: ReplState, text: str, parts: tuple[Part, ...] = ()) -> bool:
    """Called by the chat before it sends a message: True when a comparison took it."""
    cc = _state_of(state)
    if cc.armed:
        specs, cc.armed = cc.armed, ()
        run_in_chat(state, specs, text=text, parts=parts)
        return True
    if not cc.noted and cc.kept_turn is not None:
        cc.noted = True
        kept = next((a for a in cc.replies if a.kept), None)
        if kept is not None:
            state.say(f"continuing with [{kept.position}] {kept.label}'s reply (/keep N picks another first)")
        cc.replies, cc.user, cc.kept_turn = [], None, None
    return False


def run_in_chat(state: ReplState, specs: Sequence[str], *, text: str = "", parts: tuple[Part, ...] = (),
                repeat: bool = False) -> None:
    from chatcli.render import choose_mode
    from chatcli.session import Session
    from chatcli.turn import Turn

    main = state.session
    if repeat:
        index = max(i for i, t in enumerate(main.turns) if t.role == "user")
        for turn in main.turns[index + 1:]:
            if main.recorder is not None:
                main.recorder.forget(turn)
        del main.turns[index + 1:]
        user = main.turns[index]
    else:
        user = Turn("user", text, parts=parts, provider=main.provider.name, model=main.model, system=main.system)
        main.turns.append(user)
        if main.recorder is not None:
            main.recorder.record(user)
    assert state.resolve_model is not None
    store: Store | None = state.store  # type: ignore[assignment]
    lanes = []
    for i, spec in enumerate(specs):
        provider, model = state.resolve_model(spec)
        cfg = state.settings.providers.get(provider.name)
        if cfg is None:
            from chatcli.settings import ProviderConfig

            cfg = ProviderConfig(name=provider.name, type="openai")
        from chatcli.config import Resolved

        session = Session(provider, model=model, system=main.system, max_tokens=main.max_tokens,
                          temperature=main.temperature, retry=main.retry_policy,
                          recorder=AltRecorder(store, user, i + 1), trimmer=main.trimmer, turns=list(main.turns))
        lane = Lane(i, Resolved(cfg, model), provider)
        lane.session = session
        lanes.append(lane)
    out = cast("TextIO", state.terminals[0] if state.terminals else sys.stdout)
    err = cast("TextIO", state.err)
    labels = [lane.label for lane in lanes]
    view: CompareView
    if choose_mode(state.settings.render, out) == "markdown":
        from chatcli.render.columns import ColumnsView

        view = ColumnsView(out, err, labels=labels, show_reasoning=state.settings.show_reasoning)
    else:
        view = PlainCompare(labels, out, err, show_reasoning=state.settings.show_reasoning)
    Runner(lanes, "", answer_last=True).run(view)
    cc = _state_of(state)
    cc.replies = []
    for lane in lanes:
        reply = lane.session.last_reply if lane.session is not None else None
        if reply is not None and lane.session is not None and reply in lane.session.turns[len(main.turns):]:
            cc.replies.append(Alternative(lane.index + 1, reply.provider, reply.model, reply))
    cc.user = user
    first = next((a for a in cc.replies if a.turn.content), None)
    cc.kept_turn = None
    if first is None:
        state.say("no model replied with text; the message stays unanswered (/compare tries again)")
        return
    kept = _copy_reply(first.turn)
    state.spend.compared(main, kept, [a.turn for a in cc.replies])  # every model's reply was paid for
    main.turns.append(kept)
    if main.recorder is not None:
        main.recorder.record(kept)
    first.kept = True
    if store is not None and user.id is not None:
        mark_kept(store, user.id, first.position)
    cc.kept_turn = kept
    cc.noted = False
    state.say(f"{len(cc.replies)} replies; the conversation continues with [{first.position}] {first.label} "
              "— /keep N (or a model name) picks another")


def _copy_reply(turn: Turn) -> Turn:
    from dataclasses import replace

    return replace(turn, id=None)


def keep_cmd(state: ReplState, args: str) -> Outcome:
    """`/keep N` or `/keep MODEL`: the reply of the last comparison the conversation goes on with."""
    cc = _state_of(state)
    if not cc.replies or cc.kept_turn is None:
        raise UsageError("nothing to keep: /compare MODEL MODEL ... first")
    main = state.session
    if not main.turns or main.turns[-1] is not cc.kept_turn:
        raise UsageError("the conversation has moved on since the comparison; /keep picks before the next message")
    pick = args.strip()
    if not pick:
        raise UsageError("/keep N or /keep MODEL: " + ", ".join(f"[{a.position}] {a.label}" for a in cc.replies))
    found = [a for a in cc.replies if pick in (str(a.position), a.label, a.model)]
    if len(found) != 1:
        raise UsageError(f"/keep: no single reply matches {pick!r} (" +
                         ", ".join(f"[{a.position}] {a.label}" for a in cc.replies) + ")")
    alt = found[0]
    if not alt.turn.content:
        raise UsageError(f"[{alt.position}] {alt.label} has no reply text to keep")
    kept = cc.kept_turn
    for name in ("content", "provider", "model", "finish_reason", "finish_raw", "finish_detail", "reasoning",
                 "input_tokens", "output_tokens", "ttft", "duration", "parts"):
        setattr(kept, name, getattr(alt.turn, name))
    if main.recorder is not None:
        main.recorder.record(kept)  # the same stored turn, now with the kept reply
    for a in cc.replies:
        a.kept = a is alt
    store: Store | None = state.store  # type: ignore[assignment]
    if store is not None and cc.user is not None and cc.user.id is not None:
        mark_kept(store, cc.user.id, alt.position)
    if state.resolve_model is not None and alt.provider and alt.model:
        provider, model = state.resolve_model(alt.label)
        main.set_model(provider, model)
    cc.noted = True
    state.say(f"keeping [{alt.position}] {alt.label}: the conversation continues with it (model: {alt.label})")
    return None


def keep_choices(state: ReplState) -> list[tuple[str, str]]:
    """Tab completion for /keep: (what to insert, what it is)."""
    cc = getattr(state, "compare", None)
    if not isinstance(cc, ChatCompare):
        return []
    out = []
    for a in cc.replies:
        out.append((str(a.position), a.label))
        out.append((a.label, f"reply {a.position}"))
    return out
