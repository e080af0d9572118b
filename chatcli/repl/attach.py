"""The chat's /attach, /detach and /role: attachments pending for the next message, and roles.

The pending list lives on `ReplState.pending`; `take_pending` hands it to the next message
(`Session.send(text, parts=...)`) after the same checks `chatcli ask` makes (count, a model known
not to take images or PDFs). Loading happens at /attach time, so a bad path is said at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcli.errors import UsageError

if TYPE_CHECKING:
    from chatcli.app import App
    from chatcli.attachments import Attachment
    from chatcli.config import Resolved
    from chatcli.events import Part
    from chatcli.repl.commands import Outcome, ReplState


def piped_for_chat(app: App, resolved: Resolved, pending: list[Attachment]) -> str | None:
    """`cat notes.md | chatcli`: the piped text, the chat's first message. `cat shot.png | chatcli`:
    the image (or PDF) joins `pending` and goes with the first message the user types, as a file
    given with -a would -- checked now (count, a model known not to take it: exit 2), like `ask`."""
    from chatcli.cli import stdin

    text, piped = stdin.read_piped_input(app.env, app.settings.stdin_timeout, have_argument=True)
    if piped is None:
        return text
    from chatcli import attachments
    from chatcli.cli.ask import check_vision

    attachments.check_count([*pending, piped])
    check_vision([piped], resolved)
    pending.append(piped)
    app.env.warn(f"attached {attachments.describe(piped)} from stdin: it goes with your first message")
    return None


def attach_cmd(state: ReplState, args: str) -> Outcome:
    from chatcli import attachments

    spec = args.strip()
    if not spec:
        if not state.pending:
            state.say("nothing attached (/attach PATH|URL adds to the next message)")
        for i, att in enumerate(state.pending, 1):
            state.say(f"{i}. {attachments.describe(att)}")
        return None
    if spec == "-":
        raise UsageError("cannot attach - in the chat: stdin is the terminal; give a path")
    att = attachments.load(spec)
    attachments.check_count([*state.pending, att])
    state.pending.append(att)
    state.say(f"attached {attachments.describe(att)} (goes with the next message)")
    return None


def detach_cmd(state: ReplState, args: str) -> Outcome:
    from chatcli import attachments

    arg = args.strip()
    if not state.pending:
        state.say("nothing attached")
        return None
    if not arg:
        state.say(f"detached {len(state.pending)} attachment(s)")
        state.pending.clear()
        return None
    if not arg.isdigit() or not 1 <= int(arg) <= len(state.pending):
        raise UsageError(f"/detach N: N is 1 to {len(state.pending)} (/attach lists them)")
    att = state.pending.pop(int(arg) - 1)
    state.say(f"detached {attachments.describe(att)}")
    return None


def take_pending(state: ReplState, text: str) -> tuple[str, tuple[Part, ...]]:
    """The message text and parts with the pending attachments; they are cleared once taken.
    InputError (the list kept) when the current model is known not to take them."""
    if not state.pending:
        return text, ()
    from chatcli import attachments

    cfg = state.settings.providers.get(state.session.provider.name)
    vision = False if cfg is not None and cfg.type == "local" else (cfg.vision if cfg is not None else None)
    attachments.refuse_unsupported(state.pending, model_label=f"{state.session.provider.name}:{state.session.model}",
                                   vision=vision)
    atts: list[Attachment] = list(state.pending)
    state.pending.clear()
    return attachments.message_content(text, atts), attachments.message_parts(atts)


def pending_summary(state: ReplState) -> str | None:
    """The toolbar's piece: what goes with the next message."""
    if not state.pending:
        return None
    from chatcli.attachments import describe

    if len(state.pending) == 1:
        return "attached: " + describe(state.pending[0])
    return f"attached: {len(state.pending)} files"


def role_cmd(state: ReplState, args: str) -> Outcome:
    from chatcli.roles import describe_roles, find_role

    name = args.strip()
    roles = state.settings.roles
    if not name:
        state.say(describe_roles(roles).rstrip("\n"))
        return None
    role = find_role(roles, name)
    session = state.session
    if role.model:
        from chatcli.repl.commands import dispatch

        dispatch(state, f"/model {role.model}")  # the same switch /model makes (trimmer, warm-up)
    session = state.session
    session.system = role.system
    if role.temperature is not None:
        session.temperature = role.temperature
    if role.max_tokens is not None:
        session.max_tokens = role.max_tokens
    state.say(f"role {name}: its system prompt" + (", model" if role.model else "")
              + (", temperature" if role.temperature is not None else "")
              + (", max_tokens" if role.max_tokens is not None else "") + " apply to the next messages")
    return None
