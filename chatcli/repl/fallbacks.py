"""The chat without prompt-toolkit: no terminal at all (answer what was piped, stop) and a dumb
terminal (`TERM=dumb`: a plain line reader, no escape sequence)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from chatcli.repl.loop import Repl

if TYPE_CHECKING:
    from chatcli.attachments import Attachment
    from chatcli.env import Environment
    from chatcli.repl.commands import ReplState
    from chatcli.repl.loop import StoreOpener, ViewFactory
    from chatcli.session import Session
    from chatcli.settings import Settings


def no_terminal(session: Session, settings: Settings, env: Environment, open_view: ViewFactory,
                 first_message: str | None, open_store: StoreOpener | None,
                 pending: Sequence[Attachment] = ()) -> int:
    """No terminal to prompt on (cron, CI, `ssh host chatcli < file`): answer what was piped, stop."""
    if first_message is not None and first_message.strip():
        from chatcli.repl.commands import ReplState

        # `echo q | chatcli -a shot.png`: the attachments go with the piped message here too.
        repl_state = ReplState(session=session, settings=settings, err=env.stderr, pending=list(pending))
        repl = _HeadlessRepl(repl_state, open_view, open_store)
        repl.send(first_message)
        env.warn("no terminal for the interactive chat; `chatcli ask` is the one-shot form")
        return 0
    env.warn("the interactive chat needs a terminal; use `chatcli ask` with piped input")
    return 2


class _HeadlessRepl(Repl):
    """The loop's `send` without a prompt (used when no terminal is attached)."""

    def __init__(self, state: ReplState, open_view: ViewFactory, open_store: StoreOpener | None) -> None:
        self._setup(state, open_view, open_store, label="")


class _LineReader:
    """The prompt of a dumb terminal: `> ` and a line read from stdin, nothing else written."""

    def __init__(self, env: Environment) -> None:
        assert env.stdin is not None
        self._in = env.stdin
        self._err = env.stderr

    def prompt(self, pre_run: Callable[[], None] | None = None) -> str:
        self._err.write("> ")
        self._err.flush()
        line = self._in.readline()
        if not line:
            self._err.write("\n")
            raise EOFError
        return line.rstrip("\n")


class LineRepl(Repl):
    """The loop on a plain line reader (`TERM=dumb`): no toolbar, no completion, no escapes."""

    def __init__(self, state: ReplState | Callable[[], ReplState], open_view: ViewFactory, *,
                 env: Environment, open_store: StoreOpener | None, label: str) -> None:
        self._setup(state, open_view, open_store, label)
        self.prompt_session = _LineReader(env)  # type: ignore[assignment]
