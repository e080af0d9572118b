"""`run_repl`: the chat on this process's terminal -- which loop, on which input and output."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from chatcli.repl.fallbacks import LineRepl, no_terminal
from chatcli.repl.loop import Repl, default_resolver
from chatcli.repl.prompt import HISTORY_FILE, open_history, terminal_io

if TYPE_CHECKING:
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output

    from chatcli.attachments import Attachment
    from chatcli.env import Environment
    from chatcli.repl.commands import ConversationStore, ModelResolver, ReplState
    from chatcli.repl.loop import SessionFactory, StoreOpener, ViewFactory
    from chatcli.session import Session
    from chatcli.settings import Settings


@dataclass
class Chat:
    """What the chat needs, built by its caller: chatcli/cli/chat.py from the App, tests from fakes.

    `session`: the conversation's Session, or a callable that builds it; the REPL calls that once
    the first prompt is on screen (or before a piped first message is sent), and the toolbar shows
    `label` ("provider:model") until then. `open_view`: a NEW ReplyView for each reply (it gets
    the Session, so the label can say provider:model after /model). `resolve_model`: "/model SPEC"
    -> (Provider, model), raising ChatCLIError if bad; None: as `-m` is resolved.

    `store`: the history store, already open; or `open_store` to open it once the prompt is up
    (a new conversation: its recorder is attached to the session then, before any request).

    `first_message`: piped text sent before the first prompt; `pending`: attachments that go with
    the first message; `intro`: lines said before the first prompt (`chatcli -c` / `-r ID`: which
    conversation this is, from `chatcli.repl.resume`, the same lines `/resume` prints).
    """

    session: Session | SessionFactory
    settings: Settings
    open_view: ViewFactory
    label: str = ""
    resolve_model: ModelResolver | None = None
    store: ConversationStore | None = None
    open_store: StoreOpener | None = None
    env: Environment | None = None
    first_message: str | None = None
    pending: Sequence[Attachment] = ()
    intro: Sequence[str] = ()


def run_repl(chat: Chat, *, history_path: Path | None = None, input: Input | None = None,
             output: Output | None = None) -> int:
    """Run the interactive chat until the user leaves; returns the exit code. See the module doc.

    `history_path`: the input history file (None: <settings.data_dir>/input_history).
    `input`/`output` are for tests (prompt-toolkit pipe input and DummyOutput); when given, no
    terminal detection happens and `/dev/tty` is never opened.
    """
    session, settings, open_view, label = chat.session, chat.settings, chat.open_view, chat.label
    resolve_model, store, open_store, env = chat.resolve_model, chat.store, chat.open_store, chat.env
    first_message, pending, intro = chat.first_message, chat.pending, chat.intro
    if env is None:
        from chatcli.env import Environment

        env = Environment.from_process()
    opened: list[IO[str]] = []
    given_io = input is not None and output is not None
    try:
        if input is None or output is None:
            terminal = terminal_io(env)
            if terminal is None:
                return no_terminal(built(session), settings, env, open_view, first_message, open_store,
                                    pending)
            opened, default_input, default_output = terminal
            input = input or default_input
            output = output or default_output
        # /copy writes OSC 52 to the first of these that is a terminal.
        terminals = (env.stdout, env.stderr, *(h for h in opened if h.writable()))

        def make_state() -> ReplState:
            from chatcli.repl.commands import ReplState

            return ReplState(
                session=built(session),
                settings=settings,
                err=env.stderr,
                terminals=terminals,
                resolve_model=resolve_model or default_resolver(settings),
                store=store,
                pending=list(pending),  # `chatcli -a FILE`: goes with the first message
            )

        def say(line: str) -> None:
            print(line, file=env.stderr, flush=True)

        for line in intro:  # before anything else: the prompt must not come up first
            say(line)
        if history_path is None and settings.data_dir is not None:
            history_path = Path(settings.data_dir) / HISTORY_FILE
        if env.dumb_terminal and not given_io and env.stdin is not None and env.stdin_isatty:
            # TERM=dumb (Emacs shell and friends): no escape sequence at all, so no prompt-toolkit.
            repl: Repl = LineRepl(make_state if callable(session) else make_state(), open_view,
                                  env=env, open_store=open_store, label=label)
        else:
            repl = Repl(make_state if callable(session) else make_state(), open_view, label=label,
                        input=input, output=output, history=open_history(history_path, say),
                        open_store=open_store)
        return repl.run(first_message)
    finally:
        for handle in opened:
            with contextlib.suppress(OSError):
                handle.close()


def built(session: Session | SessionFactory) -> Session:
    return session() if callable(session) else session
