"""Slash commands: a registry of `Command`s and their handlers.

A handler gets the REPL's `ReplState` and the text after the command name, prints what it has to
say on `state.err` (stdout carries replies only, docs/architecture.md "Output"), and returns what the loop must
do next: nothing, `EXIT`, or a `Reply` whose events the loop streams through a view exactly like
a typed message (/retry and /continue). Handlers never draw while the prompt is active: the loop
calls them between prompts.

Errors a handler can expect (bad arguments, a store that fails, an unknown model) are raised as
`ChatCLIError`; the loop prints them as one line and keeps going.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

from chatcli.errors import UsageError
from chatcli.events import SessionEvent
from chatcli.render.sanitize import sanitize
from chatcli.repl.attach import attach_cmd, detach_cmd, role_cmd
from chatcli.repl.clipboard import copy_to_clipboard
from chatcli.repl.conversations import (
    conversation_id,
    export_cmd,
    export_force_cmd,
    fork_session,
    history_cmd,
    resume_cmd,
    to_markdown,
)
from chatcli.repl.spend import SpendLog
from chatcli.session import Session
from chatcli.settings import Settings
from chatcli.turn import Turn

if TYPE_CHECKING:
    from chatcli.attachments import Attachment
    from chatcli.providers.base import Provider


#: `/model SPEC` -> (a built provider, the model name). Raises ChatCLIError for an unknown spec.
ModelResolver = Callable[[str], "tuple[Provider, str]"]


class ConversationStore(Protocol):
    """What the commands use of `chatcli.history.store.Store` (a Protocol so tests can pass a fake)."""

    def list_conversations(self, limit: int = ...) -> Sequence[Any]: ...

    def get(self, conv_id: str) -> Any: ...

    def load_turns(self, conv_id: str) -> list[Turn]: ...

    def recorder(self, conversation_id: str | None = None) -> Any: ...

    def prepare_writes(self) -> None: ...


@dataclass(frozen=True)
class Reply:
    """Stream these events through a reply view (what /retry and /continue return)."""

    events: Generator[SessionEvent, None, None]


class _Exit:
    def __repr__(self) -> str:
        return "EXIT"


EXIT = _Exit()
Outcome = Reply | _Exit | None


@dataclass
class ReplState:
    """Everything a command may read or change. The REPL owns it; commands mutate it in place."""

    session: Session
    settings: Settings
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    #: Where the terminal is, for /copy's OSC 52 (the REPL's output streams, first TTY wins).
    terminals: tuple[IO[str], ...] = ()
    resolve_model: ModelResolver | None = None
    #: None with --no-save (or when the database could not be opened): /history and /resume say so.
    store: ConversationStore | None = None
    multiline: bool = False
    #: Called with the new provider after /model, so its SDK import happens in the background.
    on_model_change: Callable[[Provider], None] | None = None
    #: /attach: what goes with the next message (chatcli/repl/attach.py).
    pending: list[Attachment] = field(default_factory=list)
    #: /compare and /keep (chatcli/compare/chat.py `ChatCompare`), created by the first /compare.
    compare: Any = None
    #: Every reply paid for in this chat, for /usage (the REPL feeds it around each reply).
    spend: SpendLog = field(default_factory=lambda: SpendLog())

    def say(self, text: str = "") -> None:
        print(text, file=self.err, flush=True)


Handler = Callable[[ReplState, str], Outcome]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: str
    args: str = ""
    aliases: tuple[str, ...] = ()


# -- display helpers ------------------------------------------------------------------------------


def model_label(session: Session) -> str:
    return f"{session.provider.name}:{session.model}"


def model_names(settings: Settings) -> list[str]:
    """Every spec `/model` accepts that the settings know of: provider, provider:model, aliases."""
    names: list[str] = []
    for name, config in settings.providers.items():
        names.append(name)
        models = list(config.models)
        if config.default_model and config.default_model not in models:
            models.insert(0, config.default_model)
        names.extend(f"{name}:{model}" for model in models)
    names.extend(settings.aliases)
    return list(dict.fromkeys(names))


def usage_totals(turns: Iterable[Turn]) -> tuple[int, int]:
    tokens_in = tokens_out = 0
    for turn in turns:
        if turn.role == "assistant":
            tokens_in += turn.input_tokens or 0
            tokens_out += turn.output_tokens or 0
    return tokens_in, tokens_out


def _price(settings: Settings, turn: Turn) -> tuple[float, float] | None:
    for key in (f"{turn.provider}:{turn.model}", turn.model or ""):
        if key in settings.prices:
            return settings.prices[key]
    return None


def conversation_cost(settings: Settings, turns: Iterable[Turn]) -> tuple[float, bool]:
    """(dollars, complete): complete is False when some reply's model has no price configured."""
    total = 0.0
    complete = True
    for turn in turns:
        if turn.role != "assistant" or (turn.input_tokens is None and turn.output_tokens is None):
            continue
        price = _price(settings, turn)
        if price is None:
            complete = False
            continue
        total += ((turn.input_tokens or 0) * price[0] + (turn.output_tokens or 0) * price[1]) / 1_000_000
    return total, complete


# -- handlers -------------------------------------------------------------------------------------


def _help(state: ReplState, args: str) -> Outcome:
    state.say("Commands:")
    for command in COMMANDS:
        names = ", ".join("/" + n for n in (command.name, *command.aliases))
        usage = f"{names} {command.args}".rstrip()
        state.say(f"  {usage:<24} {command.help}")
    state.say("")
    keys = [
        "Enter sends · Esc-Enter or Ctrl-J inserts a newline (/multiline swaps them)",
        "Ctrl-X Ctrl-E edits the message in $EDITOR and sends it when you save and quit",
        "Ctrl-R searches your input history · Up/Down walk it · Right accepts a grey suggestion",
        "Tab completes commands and model names · Ctrl-C stops a reply, or clears the line",
        "Ctrl-D (or Ctrl-C twice) on an empty line quits · start with // to send a leading /",
    ]
    state.say("Keys:")
    for line in keys:
        state.say("  " + line)
    return None


def _exit(state: ReplState, args: str) -> Outcome:
    return EXIT


def _new(state: ReplState, args: str) -> Outcome:
    state.session = fork_session(state.session, state.store)
    state.say("new conversation")
    return None


def _model(state: ReplState, args: str) -> Outcome:
    spec = args.strip()
    if not spec:
        state.say(f"model: {model_label(state.session)}")
        names = model_names(state.settings)
        if names:
            state.say("available: " + ", ".join(names))
        return None
    if state.resolve_model is None:
        raise UsageError("switching models is not available here")
    provider, model = state.resolve_model(spec)
    session = state.session
    session.set_model(provider, model)
    if session.trimmer is not None:
        # The history is trimmed to the NEW model's window from the next request on.
        from chatcli.context import context_window_for, make_trimmer

        config = state.settings.providers.get(provider.name)
        window = context_window_for(model, provider.name, overrides=state.settings.context_windows,
                                    configured=config.context_window if config else None)
        session.trimmer = make_trimmer(window, session.max_tokens)
    if state.on_model_change is not None:
        state.on_model_change(provider)
    state.say(f"model: {model_label(state.session)} (the conversation so far is kept)")
    return None


def _system(state: ReplState, args: str) -> Outcome:
    text = args.strip()
    if not text:
        if state.session.system:
            state.say("system prompt:")
            state.say(sanitize(state.session.system))
        else:
            state.say("no system prompt (set one with /system TEXT; /system - clears it)")
        return None
    state.session.system = None if text == "-" else text
    state.say("system prompt cleared" if text == "-" else "system prompt set for the next replies")
    return None


def _retry(state: ReplState, args: str) -> Outcome:
    # Checked here because Session.retry() is a generator: its own ValueError would only surface
    # mid-stream, inside the view.
    if not any(t.role == "user" for t in state.session.turns):
        raise UsageError("nothing to retry yet")
    return Reply(state.session.retry())


def _continue(state: ReplState, args: str) -> Outcome:
    last = state.session.turns[-1] if state.session.turns else None
    if last is None or last.role != "assistant" or not last.content:
        raise UsageError("there is no reply to continue")
    if not last.partial:
        state.say("the last reply was complete; asking the model to go on anyway")
    return Reply(state.session.continue_())


def _undo(state: ReplState, args: str) -> Outcome:
    if state.session.undo():
        state.say("dropped the last exchange")
    else:
        state.say("nothing to undo")
    return None


def _copy(state: ReplState, args: str) -> Outcome:
    last = state.session.last_reply
    if last is None or not last.content:
        state.say("no reply to copy yet")
        return None
    _sent, message = copy_to_clipboard(last.content, *state.terminals)
    state.say(message)
    return None


def _usage(state: ReplState, args: str) -> Outcome:
    """What was paid for (chatcli/repl/spend.py): this session's replies and all of this conversation's,
    counting the ones /retry replaced and /undo removed."""
    from chatcli.repl.spend import conversation_spend, describe

    session_total = state.spend.session_spend(state.settings)
    conversation = conversation_spend(state.settings, state.session, state.store,
                                      conversation_id(state.session), state.spend)
    state.say(describe("this session", session_total))
    state.say(describe("this conversation", conversation))
    replies = session_total.replies + conversation.replies
    if replies and not (session_total.tokens_in or session_total.tokens_out
                        or conversation.tokens_in or conversation.tokens_out):
        state.say("(the provider reported no token usage)")
    return None


def _multiline(state: ReplState, args: str) -> Outcome:
    state.multiline = not state.multiline
    if state.multiline:
        state.say("multiline on: Enter inserts a newline, Esc-Enter sends")
    else:
        state.say("multiline off: Enter sends, Esc-Enter or Ctrl-J inserts a newline")
    return None


def _tools(state: ReplState, args: str) -> Outcome:
    from chatcli.tools.chatcmd import tools_command  # tools code loads only when asked for

    return tools_command(state, args)


def _compare(state: ReplState, args: str) -> Outcome:
    from chatcli.compare import compare_cmd  # not at the top: threads and queues, for /compare only

    return compare_cmd(state, args)


def _keep(state: ReplState, args: str) -> Outcome:
    from chatcli.compare import keep_cmd

    return keep_cmd(state, args)


COMMANDS: tuple[Command, ...] = (
    Command("help", _help, "this list", aliases=("?",)),
    Command("exit", _exit, "leave chatcli", aliases=("quit",)),
    Command("new", _new, "start a new conversation (same model and system prompt)"),
    Command("model", _model, "show the model, or switch to SPEC keeping the conversation", "[SPEC]"),
    Command("system", _system, "show the system prompt, or set it (/system - clears it)", "[TEXT]"),
    Command("retry", _retry, "regenerate the last reply"),
    Command("continue", _continue, "resume a partial reply where it stopped"),
    Command("undo", _undo, "drop the last exchange (your message and its reply)"),
    Command("history", history_cmd, "list saved conversations", "[N]"),
    Command("resume", resume_cmd, "continue saved conversation ID", "ID"),
    Command("copy", _copy, "copy the last reply to the clipboard (OSC 52)"),
    Command("export", export_cmd, "write the conversation as markdown (0600); /export! FILE replaces a file",
            "[FILE]"),
    Command("usage", _usage, "tokens in/out and cost so far"),
    Command("multiline", _multiline, "toggle: Enter inserts a newline, Esc-Enter sends"),
    Command("tools", _tools, "MCP servers and their tools; /tools on|off NAME", "[on|off NAME]"),
    Command("attach", attach_cmd, "attach a file or image URL to the next message; alone: list", "[PATH|URL]"),
    Command("detach", detach_cmd, "remove attachment N (all without N)", "[N]"),
    Command("role", role_cmd, "list roles, or use role NAME for the next messages", "[NAME]"),
    Command("compare", _compare, "send the next message to these models side by side; alone: the last again",
            "[MODEL MODEL ...]"),
    Command("keep", _keep, "the compared reply the conversation continues with", "N|MODEL"),
)

_BY_NAME: dict[str, Command] = {n: c for c in COMMANDS for n in (c.name, *c.aliases)}
# `/export!` is /export's overwriting form, named in its help line rather than listed (and completed)
# as a command of its own.
_BY_NAME["export!"] = Command("export!", export_force_cmd, "write the conversation as markdown, replacing FILE",
                              "FILE")


def command_names() -> list[str]:
    return ["/" + c.name for c in COMMANDS] + ["/" + a for c in COMMANDS for a in c.aliases]


def is_command(text: str) -> bool:
    """A slash command, as opposed to a message ("//text" sends "/text")."""
    stripped = text.lstrip()
    return stripped.startswith("/") and not stripped.startswith("//")


def dispatch(state: ReplState, text: str) -> Outcome:
    """Run the command in `text` (which starts with "/"). Unknown names get the closest suggestion."""
    stripped = text.strip()
    head, _, args = stripped.partition(" ")
    if "\n" in head:  # "/system\nline two": the newline separates the arguments too
        head, _, rest = head.partition("\n")
        args = rest + (" " + args if args else "")
    name = head[1:].lower()
    command = _BY_NAME.get(name)
    if command is None:
        raise UsageError(unknown_message(head))
    return command.handler(state, args)


def unknown_message(head: str) -> str:
    shown = sanitize(head[:40])
    close = difflib.get_close_matches(head.lower(), command_names(), n=1, cutoff=0.5)
    hint = f" — did you mean {close[0]}?" if close else ""
    return f"unknown command {shown}{hint} (/help lists them; start with // to send a message beginning with /)"


__all__ = [
    "COMMANDS",
    "EXIT",
    "Command",
    "ConversationStore",
    "ModelResolver",
    "ReplState",
    "Reply",
    "command_names",
    "conversation_id",
    "dispatch",
    "fork_session",
    "is_command",
    "model_names",
    "to_markdown",
    "usage_totals",
]
