"""`Repl`, the chat's loop: prompt, dispatch a command or send a message, show the reply.

See chatcli/repl/__init__.py for the behaviour; `run_repl` (chatcli/repl/start.py) builds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

# prompt-toolkit is imported here, not lazily: this module is only imported to run the REPL.
from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application, get_app, run_in_terminal
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import History
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from chatcli import warmup
from chatcli.errors import ChatCLIError
from chatcli.redact import redact
from chatcli.render.sanitize import sanitize
from chatcli.repl.prompt import prompt_session
from chatcli.warmup import Warmer

# The chat's own modules (commands, session, events, the turn loop and, through the session
# factory, the provider) are imported when the REPL's state is built, right after the first
# prompt is drawn (`Repl.boot`): ~20 ms of dataclass and Protocol building on Python 3.11 that
# would otherwise sit between launching chatcli and seeing its prompt (repl_bench).
if TYPE_CHECKING:
    from chatcli.events import Part, SessionEvent
    from chatcli.providers.base import Provider
    from chatcli.render.base import ReplyView
    from chatcli.repl.commands import ConversationStore, ModelResolver, ReplState
    from chatcli.repl.inflight import InFlightRecorder
    from chatcli.session import Session
    from chatcli.settings import Settings

    ViewFactory = Callable[[Session], ReplyView]
    #: Opens the history store, passing any warning to the callable it is given (None: no store).
    StoreOpener = Callable[[Callable[[str], None]], ConversationStore | None]
    #: Builds the conversation's session (and its provider) when the REPL is ready for it.
    SessionFactory = Callable[[], Session]

EXIT_HINT = "(press Ctrl-C again, Ctrl-D or type /exit to quit)"


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
        self.prompt_session = prompt_session(self, input=input, output=output, history=history)

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
            from chatcli.repl.commands import EXIT, is_command  # loaded by boot(): a dictionary lookup

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
        from chatcli.repl.commands import Reply, dispatch

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
        from chatcli.repl.attach import take_pending

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
        # first event is shown (chatcli/repl/inflight.py): its fsync is off Enter's way to the server.
        from chatcli.repl.inflight import InFlightRecorder

        inflight = session.recorder = InFlightRecorder(recorder)
        try:
            self.stream(session.send(text, parts=parts), inflight=inflight)
        finally:
            if session.recorder is inflight:
                session.recorder = recorder
            inflight.settle()

    def _compared(self, text: str, parts: tuple[Part, ...]) -> bool:
        """After /compare: the message goes to every model named (chatcli/compare/chat.py)."""
        from chatcli.compare import chat_send

        try:
            self.open_store()
            self.warmer.settle()
            warmup.resume_gc()
            return chat_send(self.state, text, parts)
        except ChatCLIError as exc:
            self.state.say("error: " + sanitize(redact(exc.message)))
            return True

    def stream(self, events: Generator[SessionEvent, None, None], *, inflight: InFlightRecorder | None = None) -> None:
        """Show one reply. Every failure ends here as one line on stderr; the loop goes on."""
        from chatcli.turn import run_turn

        if inflight is not None:
            from chatcli.repl.inflight import settled_first

            events = settled_first(events, inflight.settle)
        try:
            self.open_store()  # normally done when the prompt was first drawn
            self.warmer.settle()  # the SDK import started after the first prompt: finish it first
            warmup.resume_gc()  # start-up is over (chatcli/warmup.py); usually the warm-up did this
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
        from chatcli.repl.commands import conversation_id

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
            warmup.warm_enter(app)
            from chatcli.repl.inflight import start_writer

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
        from chatcli.repl.toolbar import toolbar

        return toolbar(self._state, self._label)


def _size(text: str) -> str:
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return f"{lines:,} line{'s' if lines != 1 else ''}, {len(text):,} characters"


def default_resolver(settings: Settings) -> ModelResolver:
    """`/model SPEC` the way `-m SPEC` is resolved (`chatcli.config.resolve`): provider:model, a bare
    provider, an alias or a listed model name; an unusable provider (no key) is a one-line error."""

    def resolve(spec: str) -> tuple[Provider, str]:
        from chatcli.config import resolve as resolve_spec
        from chatcli.providers import build_provider

        resolved = resolve_spec(settings, spec)
        return build_provider(resolved.provider), resolved.model

    return resolve
