"""The chat's saved conversations: `/history` lists them, `/resume ID` continues one, `/export [FILE]`
(and `/export! FILE`) writes this one as markdown through the same exporter as `chatcli history
export` (chatcli/history/export.py); `fork_session` gives `/new` and `/resume` a session with this
one's setup. The handlers follow chatcli/repl/commands.py's contract: they print on `state.err`
and raise `ChatCLIError` for what the user can fix.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from chatcli.errors import UsageError
from chatcli.render.sanitize import sanitize
from chatcli.session import Session

if TYPE_CHECKING:
    from chatcli.history.store import Conversation
    from chatcli.repl.commands import ConversationStore, Outcome, ReplState
    from chatcli.turn import Turn


def fork_session(old: Session, store: ConversationStore | None, conv_id: str | None = None,
                 turns: list[Turn] | None = None) -> Session:
    """A session for another conversation with this one's setup: the model and system prompt
    chosen in this REPL carry over (/new forgets the talk, not the setup), and so do the limits,
    the retry policy and the context trimmer."""
    recorder = store.recorder(conv_id) if store is not None else None
    return Session(old.provider, model=old.model, system=old.system, max_tokens=old.max_tokens,
                   temperature=old.temperature, retry=old.retry_policy, recorder=recorder,
                   trimmer=old.trimmer, turns=turns)


def conversation_id(session: Session) -> str | None:
    """The saved conversation's id (None until its first turn is saved, or when not saving)."""
    ident = getattr(session.recorder, "conversation_id", None)
    return None if ident is None else str(ident)


def to_markdown(session: Session) -> str:
    """The conversation as a markdown document (raw text: it goes to a file, not the terminal),
    made by the same exporter as `chatcli history export` (chatcli/history/export.py)."""
    from chatcli.history.export import to_markdown as export_markdown
    from chatcli.repl.commands import model_label  # here: commands.py imports this module

    return export_markdown(session.turns, conversation_id=conversation_id(session), model=model_label(session),
                           system_now=session.system)


def history_cmd(state: ReplState, args: str) -> Outcome:
    store = state.store
    if store is None:
        state.say(_no_store_reason(state))
        return None
    limit = 20
    if args.strip():
        try:
            limit = int(args.strip())
        except ValueError as exc:
            raise UsageError("usage: /history [N] (N: how many, at least 1)") from exc
        if limit < 1:
            raise UsageError("usage: /history [N] (N: how many, at least 1)")
    rows = list(store.list_conversations(limit=limit))
    if not rows:
        state.say("no saved conversations yet")
        return None
    for row in rows:
        state.say(sanitize(_describe(row)))
    state.say("resume one with /resume ID")
    return None


def _no_store_reason(state: ReplState) -> str:
    """Why there are no saved conversations here: --no-save, or a database that did not open."""
    if not state.settings.save:
        return "saved conversations are not available in this session (--no-save)"
    return ("saved conversations are not available: the history database could not be opened "
            "(the warning at start-up says why)")


def _describe(row: Conversation) -> str:
    """One line for a stored conversation: the model named `provider:model`, as `chatcli history
    list` names it."""
    from chatcli.history.export import model_spec

    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.updated))
    parts = [row.id, stamp]
    if row.provider or row.model:
        parts.append(model_spec(row.provider, row.model))
    parts.append(f"{row.turns} turns")
    title = row.title
    line = "  ".join(p for p in parts if p)
    title = " ".join(title.split())
    if len(title) > 60:
        title = title[:59] + "…"
    return f"{line}  {title}".rstrip()


def resume_cmd(state: ReplState, args: str) -> Outcome:
    ident = args.strip()
    if not ident:
        raise UsageError("usage: /resume ID (see /history)")
    if state.store is None:
        raise UsageError(_no_store_reason(state))
    try:
        found = state.store.get(ident)  # accepts a unique prefix; raises UsageError naming the problem
    except UsageError as exc:
        # The store's message points a shell user at `chatcli history list`; here it is /history.
        raise UsageError(exc.message.replace("chatcli history list", "/history")) from exc
    full_id = str(found.id)
    # The model picked for this REPL stays; the resumed history is sent to it.
    turns = state.store.load_turns(full_id)
    session = fork_session(state.session, state.store, full_id, turns)
    if session.system is None:  # no system prompt chosen here: the conversation's own applies
        session.system = next((t.system for t in reversed(turns) if t.system), None)
    state.session = session
    from chatcli.repl.resume import summary_lines  # the same lines as `chatcli -c` / `-r ID`

    for line in summary_lines(full_id, getattr(found, "title", None), session.turns):
        state.say(line)
    return None


def export_cmd(state: ReplState, args: str, *, force: bool = False) -> Outcome:
    """/export [FILE] writes the conversation as markdown, 0600. An existing FILE is kept: the
    command says so and that `/export! FILE` replaces it (a prompt cannot be asked from a handler,
    and a second, explicit command is as deliberate as a confirmation)."""
    from chatcli.history.export import write_export

    if not state.session.turns:
        state.say("nothing to export yet")
        return None
    name = args.strip()
    if name:
        path = Path(name).expanduser()
    else:
        stem = f"chatcli-{conversation_id(state.session) or time.strftime('%Y%m%d-%H%M%S')}"
        path = Path(f"{stem}.md")
        n = 1
        while path.exists():  # never clobber a file the user did not name
            n += 1
            path = Path(f"{stem}-{n}.md")
    write_export(path, to_markdown(state.session), force=force and bool(name),
                 hint=f"/export! {sanitize(name or str(path))} replaces it")
    state.say(f"exported {len(state.session.turns)} turns to {sanitize(str(path))}")
    return None


def export_force_cmd(state: ReplState, args: str) -> Outcome:
    if not args.strip():
        raise UsageError("usage: /export! FILE (replaces FILE if it exists)")
    return export_cmd(state, args, force=True)
