"""The prompt-toolkit objects of the chat: the PromptSession, its key bindings, Tab completion,
the private input-history file and the terminal it runs on (/dev/tty when stdin is piped)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.enums import DEFAULT_BUFFER
from prompt_toolkit.filters import Condition, has_focus
from prompt_toolkit.history import FileHistory, History, InMemoryHistory, ThreadedHistory
from prompt_toolkit.input import Input, create_input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output import Output, create_output

from chatcli.errors import ChatCLIError
from chatcli.redact import redact
from chatcli.render.sanitize import sanitize

if TYPE_CHECKING:
    from chatcli.env import Environment
    from chatcli.repl.commands import ReplState
    from chatcli.repl.loop import Repl

PROMPT = "> "
HISTORY_FILE = "input_history"
# Inputs longer than this are not written to the history file: FileHistory re-reads the whole
# file at every start, and a pasted 2 MB log would slow every start-up after it.
_HISTORY_MAX_CHARS = 100_000


def prompt_session(repl: Repl, *, input: Input | None, output: Output | None,
                    history: History | None) -> PromptSession[str]:
    multiline = Condition(lambda: repl.multiline)

    @Condition
    def typing_command() -> bool:
        return get_app().current_buffer.text.startswith("/")

    def continuation(width: int, line_number: int, is_soft_wrap: int) -> str:
        return "." * (width - 1) + " " if not is_soft_wrap else " " * width

    session: PromptSession[str] = PromptSession(
        PROMPT,
        input=input,
        output=output,
        history=history,
        multiline=multiline,
        key_bindings=_key_bindings(repl, multiline),
        completer=SlashCompleter(lambda: repl.state),
        complete_while_typing=typing_command,  # a menu for /commands only, not for every message
        auto_suggest=AutoSuggestFromHistory(),
        enable_history_search=False,  # Up/Down walk history; Ctrl-R is the search
        enable_open_in_editor=True,  # Ctrl-X Ctrl-E
        bottom_toolbar=repl.toolbar,
        prompt_continuation=continuation,
        mouse_support=False,  # keep the terminal's own selection and scroll-back working
        erase_when_done=False,
        tempfile_suffix=".md",
    )
    # prompt-toolkit's own accept handler exits with style "class:accepted", which the final frame
    # appends to every cell: style strings no frame had before, each resolved against the whole
    # style sheet (~0.2 ms apiece, three on a prompt line; profiled) when the first message is
    # sent. chatcli gives "accepted" no style, so it exits without one and the final frame reuses
    # the styles the prompt already resolved. Same result and history otherwise.
    session.default_buffer.accept_handler = _accept
    return session


def _accept(buffer: Buffer) -> bool:
    get_app().exit(result=buffer.document.text)
    return True  # keep the text on screen: the next prompt resets the buffer (as prompt-toolkit's)


def _key_bindings(repl: Repl, multiline: Condition) -> KeyBindings:
    kb = KeyBindings()
    in_prompt = has_focus(DEFAULT_BUFFER)  # not in the Ctrl-R search field

    # These bindings are the PromptSession's own, so they take priority over the default emacs
    # bindings (where Esc-Enter always accepts and Ctrl-J acts as Enter).

    @kb.add("escape", "enter", filter=in_prompt & ~multiline)
    @kb.add("c-j", filter=in_prompt)
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.newline(copy_margin=False)

    @kb.add("escape", "enter", filter=in_prompt & multiline)
    def _send(event: KeyPressEvent) -> None:
        event.current_buffer.validate_and_handle()

    @Condition
    def typing_command() -> bool:
        # "/cmd" (not "//text", a message starting with "/"): chatcli.repl.commands.is_command, inlined
        # because this runs on every Enter and the commands module loads after the first prompt.
        text = get_app().current_buffer.text.lstrip()
        return text.startswith("/") and not text.startswith("//")

    # A slash command runs on Enter in either mode (issue 16 item 14): in /multiline mode Enter
    # otherwise inserts a newline, and "/multiline" + Enter could not even switch it back off.
    @kb.add("enter", filter=in_prompt & multiline & typing_command)
    def _run_command(event: KeyPressEvent) -> None:
        event.current_buffer.validate_and_handle()

    @kb.add("c-c", filter=in_prompt)
    def _ctrl_c(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.text:
            buffer.reset()  # clear the line, stay at the prompt
            repl.disarm_exit()
        else:
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    return kb


class SlashCompleter(Completer):
    """Tab completion: /command names (with their help), model specs after /model, saved
    conversation ids after /resume, paths after /export. Plain messages get no completion.
    `state` gives the REPL's current state (it changes with /new, /model, /resume)."""

    def __init__(self, state: Callable[[], ReplState]) -> None:
        self._state = state
        self._paths = PathCompleter(expanduser=True)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or text.startswith("//") or "\n" in text:
            return
        from chatcli.repl.commands import COMMANDS, model_names

        state = self._state()
        if " " not in text:
            typed = text.lower()
            for command in COMMANDS:
                for name in (command.name, *command.aliases):
                    if ("/" + name).startswith(typed):
                        yield Completion("/" + name, start_position=-len(text), display_meta=command.help)
            return
        head, _, arg = text.partition(" ")
        arg = arg.lstrip()
        head = head.lower()
        if head == "/model":
            for name in model_names(state.settings):
                if name.startswith(arg):
                    yield Completion(name, start_position=-len(arg))
        elif head == "/resume" and state.store is not None:
            try:
                rows = state.store.list_conversations(limit=30)
            except ChatCLIError:
                return
            for row in rows:
                ident = str(row.id)
                if ident.startswith(arg):
                    title = " ".join(str(getattr(row, "title", "") or "").split())[:50]
                    yield Completion(ident, start_position=-len(arg), display_meta=sanitize(title))
        elif head in ("/export", "/attach"):
            yield from self._paths.get_completions(Document(arg, len(arg)), complete_event)
        elif head == "/keep":
            from chatcli.compare import keep_choices

            for value, meta in keep_choices(state):
                if value.startswith(arg):
                    yield Completion(value, start_position=-len(arg), display_meta=sanitize(meta))
        elif head == "/role":
            for name in sorted(state.settings.roles):
                if name.startswith(arg):
                    yield Completion(name, start_position=-len(arg))


# -- input history ------------------------------------------------------------------------------


def open_history(path: Path | None, warn: Callable[[str], None]) -> History:
    if path is None:
        return InMemoryHistory()
    from chatcli.fsperm import check_private, create_private_file, ensure_private_dir

    try:
        ensure_private_dir(path.parent)
        create_private_file(path)  # 0600 from creation on; FileHistory then only appends
        check_private(path)
    except OSError as exc:
        warn(f"input history is not saved: cannot use {path}: {exc.strerror or exc}")
        return InMemoryHistory()
    # Threaded: the file is read in the background, so a long history never delays the prompt.
    return ThreadedHistory(PrivateFileHistory(str(path)))


class PrivateFileHistory(FileHistory):
    """A FileHistory that never writes key-shaped text (or huge pastes) to disk.

    Such a line stays in memory for Up-arrow in this run; it is only kept off the disk, because
    people paste keys into the wrong window and a history file is read by anyone who gets the disk.
    """

    def store_string(self, string: str) -> None:
        if redact(string) != string or len(string) > _HISTORY_MAX_CHARS:
            return
        with contextlib.suppress(OSError):  # a full disk must not break the chat
            super().store_string(string)


# -- terminal -----------------------------------------------------------------------------------


def terminal_io(env: Environment) -> tuple[list[IO[str]], Input, Output] | None:
    """prompt-toolkit input/output for this process, or None when there is no terminal at all.

    stdin not a TTY (the CLI read the piped text): read keys from /dev/tty. stdout not a TTY
    (`chatcli > log`): draw the prompt on stderr, or on /dev/tty when stderr is redirected too.
    Also returns the /dev/tty files it opened, for the caller to close.
    """
    opened: list[IO[str]] = []

    def open_tty(mode: str) -> IO[str] | None:
        # Two separate files: "r+" is refused in text mode because a tty cannot seek.
        try:
            handle = open("/dev/tty", mode, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by run_repl
        except OSError:  # no controlling terminal (cron, CI, setsid)
            return None
        opened.append(handle)
        return handle

    if env.stdin_isatty and env.stdin is not None:
        inp = create_input(stdin=env.stdin)
    else:
        tty_in = open_tty("r")
        if tty_in is None:
            return None
        inp = create_input(stdin=tty_in)  # type: ignore[arg-type]
    if env.stdout_isatty:
        out = create_output(stdout=env.stdout)
    elif env.stderr_isatty:
        out = create_output(stdout=env.stderr)
    else:
        tty_out = open_tty("w")
        if tty_out is None:
            for handle in opened:
                handle.close()
            return None
        out = create_output(stdout=tty_out)  # type: ignore[arg-type]
    return opened, inp, out
