"""The interactive chat: a prompt-toolkit loop, its key bindings, toolbar and background warm-up.

Wiring (for `cli.py`)::

    from chatcli.repl import run_repl

    code = run_repl(
        start,                         # () -> chatcli.session.Session, with its provider, model,
                                       # system, limits, trimmer and recorder; called once the
                                       # first prompt is drawn (or a built Session: used as is)
        label="openai:gpt-4o",         # what the toolbar shows until then
        settings=settings,             # chatcli.settings.Settings (aliases, models, prices, windows)
        open_view=lambda s: ...,       # a NEW ReplyView for each reply; gets the Session so the
                                       # label can say provider:model after /model
        resolve_model=resolve,         # "/model SPEC" -> (Provider, model); raise ChatCLIError if bad.
                                       # None: chatcli.config.resolve + build_provider, like -m
        store=store,                   # chatcli.history.store.Store, or None with --no-save
        env=env,                       # chatcli.env.Environment (streams and their TTY flags)
        first_message=piped_text,      # `cat notes.md | chatcli`: sent before the first prompt
        history_path=None,             # input history file; None = <settings.data_dir>/input_history
    )
    raise SystemExit(code)

Returns the exit code: 0 when the user leaves (/exit, Ctrl-D, Ctrl-C twice on an empty line);
2 when there is no terminal to talk to and nothing was piped in.

Behaviour (docs/architecture.md, "The REPL"):

* The `PromptSession` is built inside `run_repl`, never at import, with injectable input/output
  (tests pass `create_pipe_input()` and `DummyOutput()`).
* Enter sends; Esc-Enter and Ctrl-J insert a newline; `/multiline` swaps the two (a slash
  command still runs on Enter). A bracketed
  paste arrives as ONE insert (prompt-toolkit's BracketedPaste key), so newlines inside a paste
  never submit. Ctrl-X Ctrl-E edits the message in $EDITOR, Ctrl-R searches the input history,
  suggestions come from history, Tab completes slash commands, model specs and /resume ids.
* Replies stream through the view BETWEEN prompts, never while a prompt is active
  ("Prompt and live output"): the prompt has returned and restored the terminal before a view opens.
* Ctrl-C while a reply streams is a KeyboardInterrupt in the main thread (the prompt is not
  running, so the terminal is in cooked mode with ISIG); `run_turn` closes the stream, the
  session records the partial reply as `interrupted`, the view warns and we are back at the
  prompt. Ctrl-C during a retry countdown interrupts the session's sleep the same way.
* Ctrl-C at the prompt clears the line. On an empty line the first Ctrl-C prints a hint and a
  second one exits (0); Ctrl-D on an empty line exits (0).
* Piped-then-interactive: when stdin is not a TTY the CLI has already read it (the first
  message); the prompt then reads from `/dev/tty`, like `sgpt` does, so `cat notes.md | chatcli`
  continues on the terminal. The prompt is drawn on stdout, or on stderr when stdout is
  redirected, so `chatcli > log` keeps replies alone on stdout.
* Start-up: nothing slow happens before the first prompt is drawn, and the prompt needs only the
  settings and the model's label. Right after it is drawn (the application's first
  `after_render`), in the main thread and before any key is read, the REPL builds its state
  (`Repl.boot`: the session and its provider, which loads the chat's own modules); then a
  daemon thread calls `provider.warm()` (the SDK import) and imports the renderer, hidden behind
  the user's typing ("Start-up time"); the first send joins it. A new conversation's history
  store (`open_store`) is opened then too, in the main thread, and makes its first commit; and
  Enter's key bindings are looked up once (`_warm_enter`), so the first message does not do it.
  Anything these print (a store warning, a provider's plain-http warning) is shown above the
  prompt. A piped first message builds the state before it is sent, with no prompt yet.
* The input history file is private (dir 0700, file 0600) and never receives a line that looks
  like it holds a key (`chatcli.redact`): people paste keys into the wrong window.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import traceback
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

# prompt-toolkit is imported here, not lazily: this module is only imported to run the REPL
# (cli.py imports it inside the command), and the PromptSession itself is built in run_repl.
from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application, get_app, run_in_terminal
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.enums import DEFAULT_BUFFER
from prompt_toolkit.filters import Condition, has_focus
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import FileHistory, History, InMemoryHistory, ThreadedHistory
from prompt_toolkit.input import Input, create_input
from prompt_toolkit.key_binding import KeyBindings, KeyBindingsBase, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.output import Output, create_output

from chatcli import gcpause
from chatcli.errors import ChatCLIError
from chatcli.redact import redact
from chatcli.render.sanitize import sanitize

# The chat's own modules (commands, session, events, the turn loop and, through the session
# factory, the provider) are imported when the REPL's state is built, right after the first
# prompt is drawn (`Repl.boot`): ~20 ms of dataclass and Protocol building on Python 3.11 that
# would otherwise sit between launching chatcli and seeing its prompt (repl_bench).
if TYPE_CHECKING:
    from chatcli.attachments import Attachment
    from chatcli.commands import ConversationStore, ModelResolver, ReplState
    from chatcli.env import Environment
    from chatcli.events import Part, SessionEvent
    from chatcli.inflight import InFlightRecorder
    from chatcli.providers.base import Provider
    from chatcli.render.base import ReplyView
    from chatcli.session import Session
    from chatcli.settings import Settings

    ViewFactory = Callable[[Session], ReplyView]
    #: Opens the history store, passing any warning to the callable it is given (None: no store).
    StoreOpener = Callable[[Callable[[str], None]], ConversationStore | None]
    #: Builds the conversation's session (and its provider) when the REPL is ready for it.
    SessionFactory = Callable[[], Session]

PROMPT = "> "
EXIT_HINT = "(press Ctrl-C again, Ctrl-D or type /exit to quit)"
HISTORY_FILE = "input_history"
# Inputs longer than this are not written to the history file: FileHistory re-reads the whole
# file at every start, and a pasted 2 MB log would slow every start-up after it.
_HISTORY_MAX_CHARS = 100_000


def run_repl(
    session: Session | SessionFactory,
    *,
    settings: Settings,
    open_view: ViewFactory,
    label: str = "",
    resolve_model: ModelResolver | None = None,
    store: ConversationStore | None = None,
    open_store: StoreOpener | None = None,
    env: Environment | None = None,
    first_message: str | None = None,
    history_path: Path | None = None,
    input: Input | None = None,
    output: Output | None = None,
    pending: Sequence[Attachment] = (),
    intro: Sequence[str] = (),
) -> int:
    """Run the interactive chat until the user leaves; returns the exit code. See the module doc.

    `session`: the conversation's Session, or a callable that builds it; the REPL calls that once
    the first prompt is on screen (or before a piped first message is sent), and the toolbar shows
    `label` ("provider:model") until then.

    `store`: the history store, already open; or `open_store` to open it once the prompt is up
    (a new conversation: its recorder is attached to the session then, before any request).

    `intro`: lines said before the first prompt (`chatcli -c` / `-r ID`: which conversation this is,
    from `chatcli.resume_summary`, the same lines `/resume` prints).

    `input`/`output` are for tests (prompt-toolkit pipe input and DummyOutput); when given, no
    terminal detection happens and `/dev/tty` is never opened.
    """
    if env is None:
        from chatcli.env import Environment

        env = Environment.from_process()
    opened: list[IO[str]] = []
    given_io = input is not None and output is not None
    try:
        if input is None or output is None:
            terminal = _terminal(env)
            if terminal is None:
                return _no_terminal(_built(session), settings, env, open_view, first_message, open_store,
                                    pending)
            opened, default_input, default_output = terminal
            input = input or default_input
            output = output or default_output
        # /copy writes OSC 52 to the first of these that is a terminal.
        terminals = (env.stdout, env.stderr, *(h for h in opened if h.writable()))

        def make_state() -> ReplState:
            from chatcli.commands import ReplState

            return ReplState(
                session=_built(session),
                settings=settings,
                err=env.stderr,
                terminals=terminals,
                resolve_model=resolve_model or _default_resolver(settings),
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
            repl: Repl = _LineRepl(make_state if callable(session) else make_state(), open_view,
                                   env=env, open_store=open_store, label=label)
        else:
            repl = Repl(make_state if callable(session) else make_state(), open_view, label=label,
                        input=input, output=output, history=_open_history(history_path, say),
                        open_store=open_store)
        return repl.run(first_message)
    finally:
        for handle in opened:
            with contextlib.suppress(OSError):
                handle.close()


def _built(session: Session | SessionFactory) -> Session:
    return session() if callable(session) else session


class Repl:
    """The loop. Separate from `run_repl` so tests can poke at its state between prompts.

    `state`: the REPL's state, or a callable that builds it. A callable is called by `boot()`: right
    after the first prompt is drawn (the toolbar shows `label` until then), or before a message is
    sent, whichever comes first; `state` builds it too if anything needs it earlier.
    """

    def __init__(self, state: ReplState | Callable[[], ReplState], open_view: ViewFactory, *,
                 input: Input | None, output: Output | None, history: History | None = None,
                 open_store: StoreOpener | None = None, label: str = "") -> None:
        self._setup(state, open_view, open_store, label)
        self.prompt_session = _prompt_session(self, input=input, output=output, history=history)

    def _setup(self, state: ReplState | Callable[[], ReplState], open_view: ViewFactory,
               open_store: StoreOpener | None, label: str) -> None:
        """Everything but the prompt (`_HeadlessRepl` has none)."""
        self._state: ReplState | None = None
        self._make_state = state if callable(state) else None
        self._label = label
        self.open_view = open_view
        self._open_store = open_store
        self.warmer = Warmer()
        self._exit_armed = False  # a Ctrl-C on an empty line was pressed; the next one exits
        self._loop: asyncio.Runner | None = None  # the prompts' event loop (`_prompt`)
        if not callable(state):
            self._adopt(state)

    @property
    def state(self) -> ReplState:
        return self._state if self._state is not None else self.boot()

    def boot(self) -> ReplState:
        """Build the state (the session, its provider and the chat's modules) if not done yet."""
        if self._state is not None:
            return self._state
        assert self._make_state is not None
        state = self._make_state()
        self._adopt(state)
        return state

    def _adopt(self, state: ReplState) -> None:
        self._state = state
        state.on_model_change = self.warmer.start_for

    @property
    def multiline(self) -> bool:
        return self._state is not None and self._state.multiline

    # -- the loop ---------------------------------------------------------------------------

    def run(self, first_message: str | None = None) -> int:
        try:
            return self._run(first_message)
        finally:
            if self._loop is not None:
                self._loop.close()

    def _run(self, first_message: str | None = None) -> int:
        if first_message is not None and first_message.strip():
            self.state.say(f"(sending the piped text, {_size(first_message)}, as the first message)")
            self.send(first_message)
        while True:
            try:
                text = self._prompt()
            except EOFError:  # Ctrl-D on an empty line
                return self._leave()
            except KeyboardInterrupt:  # Ctrl-C on an empty line (a non-empty one is just cleared)
                if self._exit_armed:
                    return self._leave()
                self._exit_armed = True
                self.state.say(EXIT_HINT)
                continue
            self._exit_armed = False
            if not text.strip():
                continue
            from chatcli.commands import EXIT, is_command  # loaded by boot(): a dictionary lookup

            if is_command(text):
                if self.command(text) is EXIT:
                    return self._leave()
                continue
            if text.lstrip().startswith("//"):  # "//etc" sends "/etc"
                text = text.lstrip()[1:]
            self.send(text)

    def _prompt(self) -> str:
        """One prompt, on an event loop kept for the whole chat.

        `PromptSession.prompt()` runs each prompt in `asyncio.run`: a new loop (selector, self-pipe)
        made when the prompt starts and closed after Enter, before the line is returned -- on the
        way from Enter to the request. The same prompt on one loop skips that (issue 16 item 18,
        benchmarks/repl_bench.py --request-only). The loop only runs while a prompt is up.
        """
        session = self.prompt_session
        if not isinstance(session, PromptSession):
            return session.prompt(pre_run=self._pre_run)  # the dumb terminal's line reader
        if self._loop is None:
            # asyncio.Runner, as asyncio.run uses, kept open: a Ctrl-C outside prompt-toolkit's
            # own SIGINT handler cancels the prompt's task (Runner's handler) instead of landing
            # in the loop as a KeyboardInterrupt that leaves the application "running".
            self._loop = asyncio.Runner()
        try:
            return self._loop.run(session.prompt_async(pre_run=self._pre_run))
        except BaseException:
            # Anything that escaped the loop itself (not through the prompt's task) leaves that task
            # pending and its application "running": finish every task as asyncio.run's clean-up
            # would, so the next prompt can start.
            loop = self._loop.get_loop()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            raise

    def command(self, text: str) -> object:
        from chatcli.commands import Reply, dispatch

        try:
            outcome = dispatch(self.state, text)
        except ChatCLIError as exc:
            self.state.say(sanitize(redact(exc.message)))
            return None
        except KeyboardInterrupt:  # a slow command (e.g. a store query) cancelled
            self.state.say("cancelled")
            return None
        if isinstance(outcome, Reply):
            self.stream(outcome.events)
        return outcome

    def send(self, text: str) -> None:
        from chatcli.chat_attach import take_pending

        try:
            text, parts = take_pending(self.state, text)  # /attach: the pending attachments go along
        except ChatCLIError as exc:
            self.state.say(sanitize(redact(exc.message)))
            return
        if self.state.compare is not None and self._compared(text, parts):
            return
        self.open_store()  # normally done when the prompt was first drawn
        session = self.state.session
        recorder = session.recorder
        if recorder is None:
            self.stream(session.send(text, parts=parts))
            return
        # The user turn is committed while the request is in flight, and before the reply's
        # first event is shown (chatcli/inflight.py): its fsync is off Enter's way to the server.
        from chatcli.inflight import InFlightRecorder

        inflight = session.recorder = InFlightRecorder(recorder)
        try:
            self.stream(session.send(text, parts=parts), inflight=inflight)
        finally:
            if session.recorder is inflight:
                session.recorder = recorder
            inflight.settle()

    def _compared(self, text: str, parts: tuple[Part, ...]) -> bool:
        """After /compare: the message goes to every model named (chatcli/compare.py)."""
        from chatcli.compare import chat_send

        try:
            self.open_store()
            self.warmer.settle()
            gcpause.resume()
            return chat_send(self.state, text, parts)
        except ChatCLIError as exc:
            self.state.say("error: " + sanitize(redact(exc.message)))
            return True

    def stream(self, events: Generator[SessionEvent, None, None], *, inflight: InFlightRecorder | None = None) -> None:
        """Show one reply. Every failure ends here as one line on stderr; the loop goes on."""
        from chatcli.turn import run_turn

        if inflight is not None:
            from chatcli.inflight import settled_first

            events = settled_first(events, inflight.settle)
        try:
            self.open_store()  # normally done when the prompt was first drawn
            self.warmer.settle()  # the SDK import started after the first prompt: finish it first
            gcpause.resume()  # start-up is over (chatcli/gcpause.py); usually the warm-up did this
            view = self.open_view(self.state.session)
            session = self.state.session
            before = self.state.spend.before(session)
            try:
                run_turn(events, view)
            finally:  # an interrupted or failed reply that got usage was paid for too
                self.state.spend.after(session, before)
        except KeyboardInterrupt:
            # Ctrl-C outside run_turn's own handler (while the view opened or closed, or a second
            # Ctrl-C while the first was being handled): the session's `finally` has recorded the
            # reply; make sure the generator is closed and go back to the prompt.
            events.close()
            self.state.say("interrupted")
        except ChatCLIError as exc:  # ProviderError before any text, a store problem...
            events.close()
            self.state.say("error: " + sanitize(redact(exc.message)))
        except Exception as exc:  # a bug: keep the conversation alive, say what happened
            events.close()
            if self.state.settings.debug:
                self.state.say(sanitize(redact(traceback.format_exc())))
            self.state.say(f"internal error: {type(exc).__name__}: {sanitize(redact(str(exc)))}")

    def _leave(self) -> int:
        from chatcli.commands import conversation_id

        ident = conversation_id(self.state.session)
        if ident is not None and self.state.session.turns:
            self.state.say(f"conversation saved; continue it with: chatcli -r {ident}")
        return 0

    # -- prompt hooks -----------------------------------------------------------------------

    def _pre_run(self) -> None:
        """Runs just before the prompt's first draw: hook the start-up work to the end of that draw."""
        if self.warmer.started:
            return
        app = get_app()

        def after_render(app: Application[Any]) -> None:
            app.after_render -= after_render
            drawn = self.toolbar()
            self._boot_above_prompt()
            self.open_store(above_prompt=True)
            self.warmer.start_for(self.state.session.provider)
            _warm_enter(app)
            from chatcli.inflight import start_writer

            start_writer()  # the thread that commits a message while its request is in flight
            if self.toolbar() != drawn:  # a resumed conversation: its token count
                app.invalidate()

        app.after_render += after_render

    def _boot_above_prompt(self) -> None:
        """`boot()` while the prompt is on screen: what building the session prints (a provider's
        warning about a plain-http URL) is said above the prompt instead of through it."""
        if self._state is not None:
            return
        import io

        # sys.stderr is process-wide, but nothing else prints now: this is the main thread before
        # any key is read, and the warm-up thread starts after it.
        printed = io.StringIO()
        with contextlib.redirect_stderr(printed):
            self.boot()
        if printed.getvalue():
            run_in_terminal(lambda: print(printed.getvalue(), end="", file=self.state.err, flush=True))

    def open_store(self, *, above_prompt: bool = False) -> None:
        """Open a new conversation's history store (once) and attach its recorder to the session.
        `above_prompt`: the prompt is on screen (the user is typing), so a warning is printed above
        it, and the store's first commit is made now rather than on the first message's way."""
        opener, self._open_store = self._open_store, None
        if opener is None:
            return
        early: list[str] | None = []

        def warn(line: str) -> None:
            # The store keeps this for later failures (a full disk mid-chat): said at once then.
            if early is None:
                self.state.say(line)
            else:
                early.append(line)

        store = opener(warn)
        self.state.store = store
        if store is not None:
            if self.state.session.recorder is None:
                self.state.session.recorder = store.recorder(None)
            if above_prompt:
                store.prepare_writes()
        warnings, early = early, None
        if warnings:
            def show() -> None:
                for line in warnings:
                    self.state.say(line)

            if above_prompt:
                run_in_terminal(show)
            else:
                show()

    def disarm_exit(self) -> None:
        """A Ctrl-C that cleared a non-empty line starts the two-Ctrl-C count afresh."""
        self._exit_armed = False

    # -- the toolbar ------------------------------------------------------------------------

    def toolbar(self) -> StyleAndTextTuples:
        if self._state is None:  # before the first prompt is drawn: no session yet
            return [("class:bottom-toolbar.text", f" {sanitize(self._label)} ")]
        from chatcli.commands import model_label

        session = self._state.session
        parts = [model_label(session)]
        counted = context_tokens(session)
        if counted is not None:
            used, exact = counted
            text = f"{'' if exact else '~'}{used:,} tokens"
            window = context_window(self._state.settings, session)
            if window:
                text += f" · {used / window:.0%} of {_k(window)}"
            parts.append(text)
        if self._state.multiline:
            parts.append("multiline: Esc-Enter sends")
        if self._state.pending:
            from chatcli.chat_attach import pending_summary

            parts.append(pending_summary(self._state) or "")
        return [("class:bottom-toolbar.text", " " + " · ".join(sanitize(p) for p in parts) + " ")]


# -- warm-up -----------------------------------------------------------------------------------------


class Warmer:
    """Runs the slow one-time work (SDK import, renderer import) in a daemon thread.

    Started after the prompt is drawn, so it never delays the prompt; joined before a request,
    so a request never races a half-done import. Failures are swallowed: the real request will
    raise the classified error where the user can see it.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._skipped = False

    @property
    def started(self) -> bool:
        return self._thread is not None or self._skipped

    def settle(self) -> None:
        """Before a request: wait for the warm-up, or, if it never started (Enter pressed before
        the first prompt finished drawing), make sure it does not start now -- the request itself
        is doing that work, and a rehearsal after it would only delay the next reply."""
        if self._thread is None:
            self._skipped = True
        self.join()

    def start_for(self, provider: Provider) -> None:
        self.join()  # one warm-up at a time: /model twice in a row must not import in parallel
        self._thread = threading.Thread(target=_warm, args=(provider,), name="chatcli-warm", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


def _warm_enter(app: Application[Any]) -> None:
    """Look up which key bindings Enter triggers, once, while the prompt waits for typing.

    prompt-toolkit caches, per set of key bindings, the bindings a key sequence matches, and the
    first lookup of a sequence scans all ~600 of them twice (exact match, then longer ones
    starting with it): 0.6 ms of the first message's way to the server (repl_bench, checkpoints
    in 10 processes). The typed letters fill their own entries; Enter's would be filled when it is
    pressed. The set is reachable only as the key processor's `_bindings`, so this is best effort:
    if a prompt-toolkit release renames it, Enter just pays the lookup (test_repl checks it).
    Main thread only: the lookup evaluates the application's focus.
    """
    bindings = getattr(app.key_processor, "_bindings", None)
    if isinstance(bindings, KeyBindingsBase):
        keys = (Keys.ControlM,)
        bindings.get_bindings_for_keys(keys)
        bindings.get_bindings_starting_with_keys(keys)


def _warm(provider: Provider) -> None:
    with contextlib.suppress(Exception):
        provider.warm(rehearse=True)
    # The view's markdown stack (markdown-it, Rich, Pygments) and its first-use costs are the other
    # big part of the first reply's path: draw a sample reply once, off screen. The turn loop that
    # feeds a view is the last module a send needs that the REPL's boot did not import.
    import chatcli.turn  # noqa: F401
    from chatcli.render import prime

    with contextlib.suppress(Exception):
        prime()
    gcpause.resume()  # the slow one-time work is done (chatcli/gcpause.py)


# -- context share for the toolbar ------------------------------------------------------------------


def context_tokens(session: Session) -> tuple[int, bool] | None:
    """(tokens the conversation fills, exact?) — None before the first message.

    Exact up to the last reply that reported usage (its input + output is what the next request
    re-sends); turns after it, or all of them when the provider reports no usage, are estimated.
    """
    if not session.turns:
        return None
    from chatcli.context import conversation_tokens

    exact = any(t.role == "assistant" and t.input_tokens is not None for t in session.turns)
    return conversation_tokens(session.turns, session.system), exact


def context_window(settings: Settings, session: Session) -> int | None:
    """The current model's window: provider config, then the config's table, then known models."""
    from chatcli.context import context_window_for

    config = settings.providers.get(session.provider.name)
    return context_window_for(session.model, session.provider.name, overrides=settings.context_windows,
                              configured=config.context_window if config else None)


def _k(tokens: int) -> str:
    """128000 -> "128k" (windows are round numbers of thousands, or close to them)."""
    return f"{round(tokens / 1000):,}k" if tokens >= 1000 else str(tokens)


def _size(text: str) -> str:
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return f"{lines:,} line{'s' if lines != 1 else ''}, {len(text):,} characters"


# -- model resolution -------------------------------------------------------------------------------


def _default_resolver(settings: Settings) -> ModelResolver:
    """`/model SPEC` the way `-m SPEC` is resolved (`chatcli.config.resolve`): provider:model, a bare
    provider, an alias or a listed model name; an unusable provider (no key) is a one-line error."""

    def resolve(spec: str) -> tuple[Provider, str]:
        from chatcli.config import resolve as resolve_spec
        from chatcli.providers import build_provider

        resolved = resolve_spec(settings, spec)
        return build_provider(resolved.provider), resolved.model

    return resolve


# -- input history ----------------------------------------------------------------------------------


def _open_history(path: Path | None, warn: Callable[[str], None]) -> History:
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


# -- terminal --------------------------------------------------------------------------------------


def _terminal(env: Environment) -> tuple[list[IO[str]], Input, Output] | None:
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


def _no_terminal(session: Session, settings: Settings, env: Environment, open_view: ViewFactory,
                 first_message: str | None, open_store: StoreOpener | None,
                 pending: Sequence[Attachment] = ()) -> int:
    """No terminal to prompt on (cron, CI, `ssh host chatcli < file`): answer what was piped, stop."""
    if first_message is not None and first_message.strip():
        from chatcli.commands import ReplState

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


class _LineRepl(Repl):
    """The loop on a plain line reader (`TERM=dumb`): no toolbar, no completion, no escapes."""

    def __init__(self, state: ReplState | Callable[[], ReplState], open_view: ViewFactory, *,
                 env: Environment, open_store: StoreOpener | None, label: str) -> None:
        self._setup(state, open_view, open_store, label)
        self.prompt_session = _LineReader(env)  # type: ignore[assignment]


# -- prompt-toolkit objects ------------------------------------------------------------------------


def _prompt_session(repl: Repl, *, input: Input | None, output: Output | None,
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
        # "/cmd" (not "//text", a message starting with "/"): chatcli.commands.is_command, inlined
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
        from chatcli.commands import COMMANDS, model_names

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


__all__ = ["EXIT_HINT", "PROMPT", "Repl", "SlashCompleter", "Warmer", "run_repl"]
