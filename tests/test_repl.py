"""The REPL loop through prompt-toolkit's pipe input: keys in, FakeProvider calls and stderr out."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from chatcli.env import Environment
from chatcli.errors import ProviderError, UsageError
from chatcli.events import Finish, Message, SessionEvent, TextDelta, Usage
from chatcli.providers.base import Provider
from chatcli.repl.commands import ReplState
from chatcli.repl.loop import EXIT_HINT
from chatcli.repl.prompt import SlashCompleter
from chatcli.repl.start import Chat, run_repl
from chatcli.repl.toolbar import context_tokens
from chatcli.session import CONTINUE_PROMPT, Session
from chatcli.settings import ProviderConfig, Settings
from tests.support.fakes import FakeProvider
from tests.support.repl import CTRL_C, CTRL_D, ENTER, ESC_ENTER, FakeView, Harness, paste, sent

# -- sending and history ----------------------------------------------------------------------------


def test_multi_turn_history_is_sent_every_time() -> None:
    h = Harness()
    h.provider.reply("Hi there").reply("Paris")
    run = h.run("hello" + ENTER + "capital of France?" + ENTER + CTRL_D)
    assert run.code == 0
    assert [c.messages for c in h.provider.calls] == [
        [Message("user", "hello")],
        [Message("user", "hello"), Message("assistant", "Hi there"), Message("user", "capital of France?")],
    ]
    assert [v.text for v in run.views] == ["Hi there", "Paris"]
    assert all(v.closed == 1 for v in run.views)


def test_ctrl_d_on_empty_line_exits_zero() -> None:
    h = Harness()
    run = h.run(CTRL_D)
    assert run.code == 0
    assert h.provider.calls == []


def test_ctrl_c_twice_on_empty_line_exits_with_one_hint() -> None:
    h = Harness()
    run = h.run(CTRL_C + CTRL_C)
    assert run.code == 0
    assert run.err.count(EXIT_HINT) == 1


def test_ctrl_c_clears_a_non_empty_line() -> None:
    h = Harness()
    run = h.run("draft to discard" + CTRL_C + "kept" + ENTER + CTRL_D)
    assert sent(h.provider) == ["kept"]
    assert EXIT_HINT not in run.err


def test_ctrl_c_count_restarts_after_a_message() -> None:
    h = Harness()
    run = h.run(CTRL_C + "hi" + ENTER + CTRL_C + CTRL_D)
    assert run.code == 0
    assert sent(h.provider) == ["hi"]
    assert run.err.count(EXIT_HINT) == 2  # the Ctrl-C after the message was a "first" one again


def test_esc_enter_and_ctrl_j_insert_newlines() -> None:
    h = Harness()
    h.run("one" + ESC_ENTER + "two" + "\n" + "three" + ENTER + CTRL_D)
    assert sent(h.provider) == ["one\ntwo\nthree"]


def test_bracketed_paste_of_many_lines_is_one_message() -> None:
    h = Harness()
    text = "def f():\n    return 1\n\nprint(f())"
    h.run(paste(text) + ENTER + CTRL_D)
    assert sent(h.provider) == [text]
    assert len(h.provider.calls) == 1


def test_paste_then_more_typing_before_enter() -> None:
    h = Harness()
    h.run("Review this:" + ESC_ENTER + paste("a = 1\nb = 2\n") + "thanks" + ENTER + CTRL_D)
    assert sent(h.provider) == ["Review this:\na = 1\nb = 2\nthanks"]


def test_multiline_mode_swaps_enter_and_esc_enter() -> None:
    h = Harness()
    run = h.run("/multiline" + ENTER + "a" + ENTER + "b" + ESC_ENTER + "/multiline" + ESC_ENTER
                + "c" + ENTER + CTRL_D)
    assert sent(h.provider) == ["a\nb", "c"]
    assert "multiline on" in run.err and "multiline off" in run.err


def test_double_slash_sends_a_leading_slash() -> None:
    h = Harness()
    h.run("//etc/hosts is a file" + ENTER + CTRL_D)
    assert sent(h.provider) == ["/etc/hosts is a file"]


def test_first_message_is_sent_before_the_prompt() -> None:
    h = Harness()
    h.provider.reply("summary").reply("more")
    run = h.run("and then?" + ENTER + CTRL_D, first_message="line 1\nline 2\n")
    assert [c.messages for c in h.provider.calls][1] == [
        Message("user", "line 1\nline 2\n"), Message("assistant", "summary"), Message("user", "and then?")]
    assert "piped text" in run.err


def test_empty_input_sends_nothing() -> None:
    h = Harness()
    h.run(ENTER + "   " + ENTER + CTRL_D)
    assert h.provider.calls == []


# -- interrupts and errors --------------------------------------------------------------------------


def test_ctrl_c_mid_reply_keeps_partial_and_next_request_is_valid() -> None:
    h = Harness()
    h.provider.scripts.append([TextDelta("The answer is"), KeyboardInterrupt()])
    h.provider.reply("42.")
    run = h.run("question" + ENTER + "go on" + ENTER + CTRL_D)
    assert run.code == 0
    first = run.views[0]
    assert first.text == "The answer is"
    assert isinstance(first.events[-1], Finish) and first.events[-1].reason == "interrupted"
    assert first.closed == 1
    assert h.session is not None
    assert h.session.turns[1].finish_reason == "interrupted"
    assert h.session.turns[1].content == "The answer is"
    assert h.provider.calls[1].messages == [
        Message("user", "question"), Message("assistant", "The answer is"), Message("user", "go on")]


def test_ctrl_c_during_retry_countdown_cancels_the_wait() -> None:
    provider = FakeProvider()
    provider.scripts.append([ProviderError("rate_limited", "slow down", provider="fake", retry_after=30)])
    provider.reply("fine now")

    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    h = Harness(provider=provider, session=Session(provider, model="m1", sleep=sleep))
    run = h.run("hi" + ENTER + "again" + ENTER + CTRL_D)
    assert run.code == 0
    assert len(provider.calls) == 2  # no stray retry after the cancel
    assert isinstance(run.views[0].events[-1], Finish) and run.views[0].events[-1].reason == "interrupted"
    # The cancelled exchange had no reply text, so it is left out of the next request.
    assert provider.calls[1].messages == [Message("user", "again")]


def test_provider_error_prints_one_line_and_the_loop_goes_on() -> None:
    provider = FakeProvider()
    provider.scripts.append([ProviderError("auth", "invalid key sk-abcdefghijkl", provider="fake")])
    provider.reply("ok")
    h = Harness(provider=provider)
    run = h.run("hi" + ENTER + "again" + ENTER + CTRL_D)
    assert run.code == 0
    assert "error: fake: invalid key" in run.err
    assert "sk-abcdefghijkl" not in run.err
    assert sent(provider) == ["hi", "again"]
    assert provider.calls[1].messages == [Message("user", "again")]


def test_internal_error_in_view_does_not_end_the_chat() -> None:
    h = Harness()

    def broken_view(session: Session) -> FakeView:
        raise RuntimeError("boom")

    err = io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text("hi" + ENTER + CTRL_D)
        code = run_repl(
            Chat(session=h.session or Session(h.provider, model="m"), settings=Settings(), open_view=broken_view,
                 env=Environment(stderr=err, stdout=io.StringIO())),
            input=pipe, output=DummyOutput(),
        )
    assert code == 0
    assert "internal error: RuntimeError: boom" in err.getvalue()


# -- slash commands through the loop ----------------------------------------------------------------


def test_retry_regenerates_the_last_reply() -> None:
    h = Harness()
    h.provider.reply("first try").reply("second try")
    h.run("hi" + ENTER + "/retry" + ENTER + CTRL_D)
    assert h.provider.calls[1].messages == [Message("user", "hi")]
    assert h.session is not None
    assert [t.content for t in h.session.turns] == ["hi", "second try"]


def test_continue_joins_text_onto_the_partial_reply() -> None:
    h = Harness()
    h.provider.reply("The quick brown", reason="length")
    h.provider.reply(" fox jumps.")
    run = h.run("story" + ENTER + "/continue" + ENTER + CTRL_D)
    assert h.session is not None
    assert [t.content for t in h.session.turns] == ["story", "The quick brown fox jumps."]
    assert h.session.turns[1].finish_reason == "stop"
    assert h.provider.calls[1].messages[-1] == Message("user", CONTINUE_PROMPT)
    assert run.views[1].text == " fox jumps."


def test_undo_drops_the_last_exchange() -> None:
    h = Harness()
    h.provider.reply("A").reply("B").reply("C")
    run = h.run("one" + ENTER + "two" + ENTER + "/undo" + ENTER + "three" + ENTER + CTRL_D)
    assert "dropped the last exchange" in run.err
    assert h.provider.calls[2].messages == [
        Message("user", "one"), Message("assistant", "A"), Message("user", "three")]


def test_model_switch_keeps_the_history() -> None:
    other = FakeProvider(name="other")
    other.reply("from other")

    def resolve(spec: str) -> tuple[Provider, str]:
        if spec != "other:big":
            raise UsageError(f"unknown model {spec!r}")
        return other, "big"

    h = Harness(resolve_model=resolve)
    h.provider.reply("from first")
    run = h.run("hi" + ENTER + "/model nope" + ENTER + "/model other:big" + ENTER + "still there?" + ENTER
                + CTRL_D)
    assert "unknown model 'nope'" in run.err
    assert "model: other:big" in run.err
    assert other.calls[0].model == "big"
    assert other.calls[0].messages == [
        Message("user", "hi"), Message("assistant", "from first"), Message("user", "still there?")]
    assert run.views[1].label == "other:big"
    assert other.warmed and other.rehearsed  # the new provider's SDK import was started in the background


def test_unknown_command_suggests_the_closest() -> None:
    h = Harness()
    run = h.run("/hisotry" + ENTER + "/exitt" + ENTER + CTRL_D)
    assert "did you mean /history?" in run.err
    assert "did you mean /exit?" in run.err
    assert h.provider.calls == []


def test_exit_and_quit_commands() -> None:
    for word in ("/exit", "/quit"):
        h = Harness()
        run = h.run(word + ENTER + "never sent" + ENTER)
        assert run.code == 0
        assert h.provider.calls == []


def test_system_command_sets_the_next_requests_system() -> None:
    h = Harness()
    run = h.run("/system" + ENTER + "/system Be terse." + ENTER + "hi" + ENTER + "/system" + ENTER + CTRL_D)
    assert "no system prompt" in run.err
    assert h.provider.calls[0].system == "Be terse."
    assert "Be terse." in run.err


# -- warm-up, toolbar, completion, history file -------------------------------------------------------


def test_warm_up_starts_after_the_first_prompt_is_drawn() -> None:
    h = Harness()
    h.run(CTRL_D)
    assert h.provider.warmed and h.provider.rehearsed  # the user is typing: time for a rehearsal


def test_warm_up_is_not_started_before_the_prompt() -> None:
    order: list[str] = []

    class Recording(FakeProvider):
        def warm(self, *, rehearse: bool = False) -> None:
            order.append("warm")

    provider = Recording()
    h = Harness(provider=provider, session=Session(provider, model="m"))

    def view(session: Session) -> FakeView:
        order.append("view")
        return FakeView()

    class Screen(DummyOutput):
        def flush(self) -> None:  # the renderer flushes once per drawn frame
            if "drawn" not in order:
                order.append("drawn")

    err = io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text("hi" + ENTER + CTRL_D)
        run_repl(
            Chat(session=h.session or Session(provider, model="m"), settings=Settings(), open_view=view,
                 env=Environment(stderr=err, stdout=io.StringIO())),
            input=pipe, output=Screen(),
        )
    # Drawn first, then the SDK import, joined before the first reply is shown.
    assert order == ["drawn", "warm", "view"]


def chat_with(start: Callable[[], Session], keys: str, *, output: DummyOutput | None = None,
              err: io.StringIO | None = None, open_view: Callable[[Session], Any] | None = None,
              first_message: str | None = None) -> int:
    """`run_repl` as the CLI calls it -- a session factory and the label shown until it is built --
    typing `keys` into a pipe input."""
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        return run_repl(
            Chat(session=start, label="fake:m", settings=Settings(),
                 open_view=(lambda s: FakeView()) if open_view is None else open_view,
                 env=Environment(stderr=io.StringIO() if err is None else err, stdout=io.StringIO()),
                 first_message=first_message),
            input=pipe, output=DummyOutput() if output is None else output,
        )


def test_the_session_is_built_once_the_prompt_is_drawn() -> None:
    """The prompt needs only the model's label: the session, its provider and the chat's modules are
    built after the first draw (and before the SDK warm-up, which needs the provider)."""
    order: list[str] = []

    class Recording(FakeProvider):
        def warm(self, *, rehearse: bool = False) -> None:
            order.append("warm")

    provider = Recording()

    def start() -> Session:
        order.append("built")
        return Session(provider, model="m")

    class Screen(DummyOutput):
        def flush(self) -> None:
            if "drawn" not in order:
                order.append("drawn")

    assert chat_with(start, "hi" + ENTER + CTRL_D, output=Screen()) == 0
    assert order == ["drawn", "built", "warm"]
    assert sent(provider) == ["hi"]


def test_the_toolbar_shows_the_label_until_the_session_is_built() -> None:
    from chatcli.repl.loop import Repl

    built: list[ReplState] = []

    def make_state() -> ReplState:
        built.append(ReplState(session=Session(FakeProvider(), model="m1"), settings=Settings(), err=io.StringIO()))
        return built[-1]

    with create_pipe_input() as pipe:
        repl = Repl(make_state, lambda s: FakeView(), label="openai:gpt-4o\x1b[2J", input=pipe, output=DummyOutput())
        before = repl.toolbar()[0][1]
        assert built == []  # drawing the toolbar does not build anything
        assert "openai:gpt-4o" in before and "\x1b" not in before  # the label is untrusted text too
        assert repl.state is built[0] and repl.boot() is built[0]  # built on first use, once
        assert "fake:m1" in repl.toolbar()[0][1]


def test_what_building_the_session_prints_is_shown_above_the_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    """A provider warns from its constructor (a plain-http URL); built while the prompt is on the
    screen, the warning must go above the prompt, not through the middle of it."""
    import sys

    def start() -> Session:
        print("chatcli: warning: base_url is not HTTPS", file=sys.stderr, flush=True)
        return Session(FakeProvider().reply("ok"), model="m")

    err = io.StringIO()
    chat_with(start, "hi" + ENTER + CTRL_D, err=err)
    assert err.getvalue().count("base_url is not HTTPS") == 1
    assert "not HTTPS" not in capsys.readouterr().err  # not written while the prompt was drawn


def test_a_resumed_conversations_toolbar_is_redrawn_with_its_tokens() -> None:
    """The first frame shows the label; once the session is built the toolbar can say more (a
    resumed conversation's tokens), and the prompt is redrawn without waiting for a key."""
    import threading
    import time

    from chatcli.turn import Turn

    turns = [Turn("user", "hi"), Turn("assistant", "hello", input_tokens=1200, output_tokens=34)]
    written: list[str] = []

    class Screen(DummyOutput):
        def write(self, data: str) -> None:
            written.append(data)

    def start() -> Session:
        return Session(FakeProvider(), model="m1", turns=list(turns))

    def shown() -> str:
        return "".join(list(written))

    with create_pipe_input() as pipe:
        def leave_once_redrawn() -> None:
            deadline = time.monotonic() + 5
            while "1,234 tokens" not in shown() and time.monotonic() < deadline:
                time.sleep(0.01)
            pipe.send_text(CTRL_D)

        keys = threading.Thread(target=leave_once_redrawn)
        keys.start()
        run_repl(
            Chat(session=start, label="fake:m1", settings=Settings(), open_view=lambda s: FakeView(),
                 env=Environment(stderr=io.StringIO(), stdout=io.StringIO())),
            input=pipe, output=Screen(),
        )
        keys.join()
    frames = shown()
    # The second frame is drawn as a difference from the first: only the changed cells.
    assert frames.index("fake:m1") < frames.index("1,234 tokens")


def test_a_piped_first_message_builds_the_session_before_it_is_sent() -> None:
    order: list[str] = []
    provider = FakeProvider().reply("piped answer")

    def start() -> Session:
        order.append("built")
        return Session(provider, model="m")

    def view(session: Session) -> FakeView:
        order.append("view")
        return FakeView()

    chat_with(start, CTRL_D, open_view=view, first_message="from the pipe")
    assert order == ["built", "view"]  # once, for the piped message (sent before any prompt)
    assert sent(provider) == ["from the pipe"]


def test_a_session_that_cannot_be_built_ends_the_chat_with_its_error() -> None:
    """Raised from the first draw's hook: prompt-toolkit restores the terminal and the CLI reports
    the one line and its exit code, as it did when this ran before the prompt."""

    def start() -> Session:
        raise UsageError("unknown provider 'nope'")

    with pytest.raises(UsageError, match="nope"):
        chat_with(start, "hi" + ENTER + CTRL_D)


def test_toolbar_shows_model_tokens_and_share_of_window() -> None:
    provider = FakeProvider()
    provider.scripts.append([TextDelta("ok"), Usage(1500, 500), Finish("stop")])
    settings = Settings(context_windows={"m1": 8000})
    h = Harness(provider=provider, settings=settings)
    from chatcli.repl.loop import Repl

    assert h.session is not None
    state = ReplState(session=h.session, settings=settings, err=io.StringIO())
    with create_pipe_input() as pipe:
        repl = Repl(state, h.view, input=pipe, output=DummyOutput())
        assert "fake:m1" in repl.toolbar()[0][1]
        assert "tokens" not in repl.toolbar()[0][1]
        repl.send("hi")
        bar = repl.toolbar()[0][1]
    assert "fake:m1" in bar and "2,000 tokens" in bar and "25% of 8k" in bar
    assert context_tokens(h.session) == (2000, True)


def test_a_sent_message_leaves_the_prompt_without_restyling_it() -> None:
    """prompt-toolkit's accept handler exits with style "class:accepted", which the final frame
    appends to every cell (new style strings to resolve when the first message is sent); chatcli's
    exits with none, keeps the text on screen and in the history."""
    from chatcli.repl.loop import Repl

    h = Harness()
    assert h.session is not None
    state = ReplState(session=h.session, settings=Settings(), err=io.StringIO())
    with create_pipe_input() as pipe:
        repl = Repl(state, h.view, input=pipe, output=DummyOutput())
        pipe.send_text("hello there" + ENTER)
        assert repl.prompt_session.prompt() == "hello there"
        app = repl.prompt_session.app
        assert app.exit_style == ""
        assert repl.prompt_session.default_buffer.text == "hello there"  # still shown in the final frame
        assert list(repl.prompt_session.history.get_strings()) == ["hello there"]


def complete(state: ReplState, text: str) -> list[str]:
    completer = SlashCompleter(lambda: state)
    return [c.text for c in completer.get_completions(Document(text, len(text)), CompleteEvent(True))]


def test_tab_completes_commands_models_and_aliases() -> None:
    settings = Settings(
        providers={"openai": ProviderConfig("openai", "openai", default_model="gpt-4o",
                                            models=("gpt-4o", "gpt-4o-mini")),
                   "ollama": ProviderConfig("ollama", "openai", models=("llama3",))},
        aliases={"fast": "openai:gpt-4o-mini"},
    )
    state = ReplState(session=Session(FakeProvider(), model="m"), settings=settings)
    assert complete(state, "/mo") == ["/model"]
    assert complete(state, "/e") == ["/exit", "/export"]
    assert complete(state, "/model openai:gpt-4o") == ["openai:gpt-4o", "openai:gpt-4o-mini"]
    assert "ollama:llama3" in complete(state, "/model ")
    assert complete(state, "/model fa") == ["fast"]
    assert complete(state, "hello /mo") == []
    assert complete(state, "//mo") == []


def test_input_history_is_private_and_never_stores_keys(tmp_path: Path) -> None:
    path = tmp_path / "data" / "input_history"
    h = Harness(history_path=path)
    h.run("normal question" + ENTER + "my key is sk-proj-abcdefghijklmnop" + ENTER + CTRL_D)
    content = path.read_text()
    assert "normal question" in content
    assert "sk-proj" not in content
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    # And a later run reads it back (what Up arrow and Ctrl-R walk through).
    from prompt_toolkit.history import FileHistory

    assert list(FileHistory(str(path)).load_history_strings()) == ["normal question"]


def test_history_defaults_to_the_data_dir(tmp_path: Path) -> None:
    h = Harness(settings=Settings(data_dir=tmp_path / "d"))
    h.run("remember me" + ENTER + CTRL_D)
    assert "remember me" in (tmp_path / "d" / "input_history").read_text()


def test_exit_names_the_saved_conversation(tmp_path: Path) -> None:
    from chatcli.history.store import Store

    store = Store.open(tmp_path / "data")
    provider = FakeProvider()
    session = Session(provider, model="m1", recorder=store.recorder())
    h = Harness(provider=provider, session=session, store=store)
    run = h.run("hi" + ENTER + CTRL_D)
    ident = store.list_conversations()[0].id
    assert f"chatcli -r {ident}" in run.err


def test_resume_and_new_through_the_loop(tmp_path: Path) -> None:
    from chatcli.history.store import Store

    store = Store.open(tmp_path / "data")
    provider = FakeProvider()
    provider.reply("first answer").reply("second answer").reply("resumed answer")
    session = Session(provider, model="m1", recorder=store.recorder())
    h = Harness(provider=provider, session=session, store=store)
    run = h.run("first question" + ENTER + "/new" + ENTER + "second question" + ENTER + CTRL_D)
    assert provider.calls[1].messages == [Message("user", "second question")]
    assert "new conversation" in run.err
    conversations = store.list_conversations()
    assert len(conversations) == 2
    first_id = next(c.id for c in conversations if c.title.startswith("first"))

    h2 = Harness(provider=provider, session=Session(provider, model="m1", recorder=store.recorder()),
                 store=store)
    run2 = h2.run("/history" + ENTER + f"/resume {first_id[:6]}" + ENTER + "follow up" + ENTER + CTRL_D)
    assert first_id in run2.err
    assert f"resumed conversation {first_id}" in run2.err
    assert provider.calls[2].messages == [
        Message("user", "first question"), Message("assistant", "first answer"), Message("user", "follow up")]
    assert [t.content for t in store.load_turns(first_id)][-2:] == ["follow up", "resumed answer"]


def run_with_opener(session: Session, keys: str, opener: Any, output: Any = None) -> str:
    err = io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        run_repl(
            Chat(session=session, settings=Settings(), open_view=lambda s: FakeView(), open_store=opener,
                 env=Environment(stderr=err, stdout=io.StringIO())),
            input=pipe, output=output or DummyOutput(),
        )
    return err.getvalue()


def test_a_new_conversations_store_is_opened_once_the_prompt_is_drawn(tmp_path: Path) -> None:
    from chatcli.history.store import Store

    order: list[str] = []
    provider = FakeProvider().reply("answer")
    session = Session(provider, model="m1")

    class Spy(Store):
        def prepare_writes(self) -> None:
            order.append("prepared")
            super().prepare_writes()

    def opener(warn: Callable[[str], None]) -> Store:
        order.append("store")
        return Spy.open(tmp_path / "data")

    class Screen(DummyOutput):
        def flush(self) -> None:
            if "drawn" not in order:
                order.append("drawn")

    err = run_with_opener(session, "question" + ENTER + "/history" + ENTER + CTRL_D, opener, Screen())
    # After the first draw, once, and its first write prepared there (not on the message's way).
    assert order == ["drawn", "store", "prepared"]
    store = Store.open(tmp_path / "data")
    [saved] = store.list_conversations()
    assert [t.content for t in store.load_turns(saved.id)] == ["question", "answer"]
    assert saved.id in err  # /history lists it: the REPL's commands got the store too
    assert f"chatcli -r {saved.id}" in err


def test_a_store_that_cannot_be_opened_warns_and_the_chat_goes_on() -> None:
    provider = FakeProvider().reply("still answering")
    session = Session(provider, model="m1")

    def opener(warn: Callable[[str], None]) -> None:
        warn("cannot open the history database (disk full); this conversation will not be saved")

    err = run_with_opener(session, "hi" + ENTER + CTRL_D, opener)
    assert "will not be saved" in err
    assert provider.calls[0].messages == [Message("user", "hi")]
    assert session.recorder is None


def test_a_store_failing_later_in_the_chat_says_so(tmp_path: Path) -> None:
    """The store keeps the warning callable it was opened with: a full disk at the second message
    must reach the terminal, not the list that collected the opening's warnings."""
    from chatcli.history.store import Store
    from tests.support.store_faults import FailingConnection
    from tests.support.store_faults import failing_connect as _failing_connect

    stores: list[Store] = []
    provider = FakeProvider().reply("one").reply("two")
    session = Session(provider, model="m1")

    def opener(warn: Callable[[str], None]) -> Store:
        stores.append(Store.open(tmp_path / "data", warn=warn, connect=_failing_connect))
        return stores[0]

    views: list[FakeView] = []

    def open_view(session: Session) -> FakeView:
        if len(views) == 1:  # the second reply: the disk fills up
            conn = stores[0]._conn
            assert isinstance(conn, FailingConnection)
            conn.fail = OSError(28, "No space left on device")
        views.append(FakeView())
        return views[-1]

    err = io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text("first" + ENTER + "second" + ENTER + CTRL_D)
        run_repl(
            Chat(session=session, settings=Settings(), open_view=open_view, open_store=opener,
                 env=Environment(stderr=err, stdout=io.StringIO())),
            input=pipe, output=DummyOutput(),
        )
    assert "No space left on device" in err.getvalue()
    assert "no longer being saved" in err.getvalue()
    assert [v.text for v in views] == ["one", "two"]  # the chat went on


def test_enter_is_looked_up_once_the_prompt_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """`warmup.warm_enter` fills prompt-toolkit's lookup for Enter before it is pressed. It reaches the
    bindings through the key processor's private `_bindings`: this fails if a release renames it."""
    from prompt_toolkit.key_binding import KeyBindingsBase
    from prompt_toolkit.keys import Keys

    from chatcli import warmup

    looked_up: list[tuple[str, object]] = []
    real = warmup.warm_enter

    def spy(app: Any) -> None:
        bindings = app.key_processor._bindings
        assert isinstance(bindings, KeyBindingsBase)
        for name in ("get_bindings_for_keys", "get_bindings_starting_with_keys"):
            method = getattr(bindings, name)

            def record(keys: Any, _name: str = name, _method: Any = method) -> Any:
                looked_up.append((_name, keys))
                return _method(keys)

            setattr(bindings, name, record)
        real(app)
        looked_up.append(("done", None))

    monkeypatch.setattr(warmup, "warm_enter", spy)
    h = Harness(provider=FakeProvider().reply("answer"))
    run = h.run("hi" + ENTER + CTRL_D)
    assert run.views[0].text == "answer"
    warm = looked_up[:looked_up.index(("done", None))]
    assert warm == [("get_bindings_for_keys", (Keys.ControlM,)),
                    ("get_bindings_starting_with_keys", (Keys.ControlM,))]


def test_a_piped_first_message_is_recorded_too(tmp_path: Path) -> None:
    from chatcli.history.store import Store

    provider = FakeProvider().reply("to the pipe")
    session = Session(provider, model="m1")
    err = io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(CTRL_D)
        run_repl(
            Chat(session=session, settings=Settings(), open_view=lambda s: FakeView(),
                 open_store=lambda warn: Store.open(tmp_path / "data"),
                 env=Environment(stderr=err, stdout=io.StringIO()), first_message="from the pipe"),
            input=pipe, output=DummyOutput(),
        )
    store = Store.open(tmp_path / "data")
    [saved] = store.list_conversations()
    assert [t.content for t in store.load_turns(saved.id)] == ["from the pipe", "to the pipe"]


@pytest.mark.parametrize("keys", ["/history", "/resume abc"])
def test_history_commands_without_a_store(keys: str) -> None:
    h = Harness(settings=Settings(save=False))  # no store because of --no-save (see test_commands for a failed open)
    run = h.run(keys + ENTER + CTRL_D)
    assert "--no-save" in run.err


def test_ctrl_r_searches_the_input_history() -> None:
    from prompt_toolkit.history import InMemoryHistory

    from chatcli.repl.loop import Repl

    provider = FakeProvider()
    state = ReplState(session=Session(provider, model="m"), settings=Settings(), err=io.StringIO())
    history = InMemoryHistory(["what is the capital of France?", "tell me a joke"])
    with create_pipe_input() as pipe:
        # Ctrl-R, type part of an old line, Enter accepts the match, Enter sends it.
        pipe.send_text("\x12capital" + ENTER + ENTER + CTRL_D)
        Repl(state, lambda s: FakeView(), input=pipe, output=DummyOutput(), history=history).run()
    assert sent(provider) == ["what is the capital of France?"]


def test_no_terminal_answers_the_piped_text_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    import chatcli.repl.start as repl_module

    monkeypatch.setattr(repl_module, "terminal_io", lambda env: None)
    provider = FakeProvider()
    views: list[FakeView] = []

    def view(session: Session) -> FakeView:
        views.append(FakeView())
        return views[-1]

    err = io.StringIO()
    env = Environment(stdin=None, stdout=io.StringIO(), stderr=err)
    code = run_repl(
        Chat(session=Session(provider, model="m"), settings=Settings(), open_view=view, env=env,
             first_message="piped question"),
    )
    assert code == 0 and sent(provider) == ["piped question"] and views[0].text == "ok"
    assert "no terminal" in err.getvalue()
    code = run_repl(
        Chat(session=Session(provider, model="m"), settings=Settings(), open_view=view, env=env),
    )
    assert code == 2


def test_intro_lines_come_before_the_first_prompt_and_match_resume(tmp_path: Path) -> None:
    # Issue 16 item 7: `chatcli -c` / `-r ID` pass the resumed conversation's summary as `intro`;
    # /resume prints the same lines from the same function (chatcli/repl/resume.py).
    from chatcli.history.store import Store
    from chatcli.repl.resume import stored_summary

    store = Store.open(tmp_path / "data")
    provider = FakeProvider()
    provider.reply("a \x1b[31mred\x1b[0m answer")
    Harness(provider=provider, session=Session(provider, model="m1", recorder=store.recorder()),
            store=store).run("first question" + ENTER + CTRL_D)
    ident = store.list_conversations()[0].id
    lines = stored_summary(store, ident, store.load_turns(ident))
    assert lines[0] == f'resumed conversation {ident}: "first question" · 1 reply'
    assert lines[1].startswith("last reply: a ") and "\x1b" not in lines[1]  # sanitized

    err = io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(CTRL_D)
        run_repl(
            Chat(session=Session(provider, model="m1"), settings=Settings(), open_view=lambda s: FakeView(),
                 env=Environment(stdin=None, stdout=io.StringIO(), stderr=err), intro=lines),
            input=pipe, output=DummyOutput(),
        )
    assert err.getvalue().startswith("\n".join(lines) + "\n")

    h = Harness(provider=provider, session=Session(provider, model="m1"), store=store)
    run = h.run(f"/resume {ident}" + ENTER + CTRL_D)
    assert "\n".join(lines) in run.err


def test_enter_runs_a_slash_command_in_multiline_mode() -> None:
    # Issue 16 item 14: in /multiline mode Enter inserted a newline after "/multiline" too, so
    # the command never ran. A line starting with "/" runs on Enter in either mode; "//text" is a
    # message and keeps multiline's Enter.
    h = Harness()
    run = h.run("/multiline" + ENTER + "/usage" + ENTER + "//x" + ENTER + "y" + ESC_ENTER
                + "/multiline" + ENTER + "c" + ENTER + CTRL_D)
    assert sent(h.provider) == ["/x\ny", "c"]
    assert "multiline on" in run.err and "multiline off" in run.err
    assert "this session: 0 replies" in run.err  # /usage ran, on Enter


def _paid(provider: FakeProvider, text: str, tin: int, tout: int) -> None:
    provider.scripts.append([TextDelta(text), Usage(input_tokens=tin, output_tokens=tout), Finish("stop", raw="stop")])


def test_usage_counts_replies_replaced_by_retry_and_removed_by_undo(tmp_path: Path) -> None:
    # Issue 16 item 6: /usage summed the conversation's current replies only, so a reply /retry
    # replaced or /undo removed dropped out though it was paid for. Now: this session's spend
    # and the conversation's (the store keeps a forgotten reply's tokens), each labelled.
    from chatcli.history.store import Store

    store = Store.open(tmp_path / "data")
    provider = FakeProvider()
    _paid(provider, "one", 100, 10)
    _paid(provider, "two", 100, 20)
    _paid(provider, "three", 300, 30)
    session = Session(provider, model="m1", recorder=store.recorder())
    h = Harness(provider=provider, session=session, store=store,
                settings=Settings(prices={"m1": (1.0, 10.0)}))
    run = h.run("q" + ENTER + "/retry" + ENTER + "q2" + ENTER + "/undo" + ENTER + "/usage" + ENTER + CTRL_D)
    # All three were paid: 500 in, 60 out, (500 * 1 + 60 * 10) / 1e6 dollars.
    assert "this session: 3 replies · 500 tokens in · 60 out · $0.0011" in run.err
    assert "this conversation: 3 replies (2 replaced or undone) · 500 tokens in · 60 out · $0.0011" in run.err

    # A later chat that resumes it: nothing spent in this session yet, the conversation's all.
    ident = store.list_conversations()[0].id
    h2 = Harness(provider=provider, session=Session(provider, model="m1", recorder=store.recorder()),
                 store=store, settings=Settings(prices={"m1": (1.0, 10.0)}))
    run2 = h2.run(f"/resume {ident}" + ENTER + "/usage" + ENTER + CTRL_D)
    assert "this session: 0 replies · 0 tokens in · 0 out" in run2.err
    assert "this conversation: 3 replies (2 replaced or undone) · 500 tokens in · 60 out" in run2.err


def test_usage_without_a_store_counts_what_this_chat_dropped() -> None:
    provider = FakeProvider()
    _paid(provider, "one", 100, 10)
    _paid(provider, "two", 100, 20)
    h = Harness(provider=provider)
    run = h.run("q" + ENTER + "/retry" + ENTER + "/usage" + ENTER + "/new" + ENTER + "/usage" + ENTER + CTRL_D)
    assert "this conversation: 2 replies (1 replaced or undone) · 200 tokens in · 30 out" in run.err
    assert run.err.count("this session: 2 replies · 200 tokens in · 30 out") == 2
    assert "this conversation: 0 replies · 0 tokens in · 0 out" in run.err  # /new: a new one


class _SlowCommit:
    """A recorder whose user-turn commit waits (bounded) for the request to start: it tells
    whether the request left while the message was being committed."""

    def __init__(self, provider: FakeProvider) -> None:
        import threading

        self.provider = provider
        self.request_started = threading.Event()
        self.log: list[str] = []
        self.conversation_id = "c1"

    def record(self, turn: Any) -> None:
        if turn.role == "user":
            overlapped = self.request_started.wait(timeout=3)
            self.log.append(f"user committed (request already sent: {overlapped})")
        else:
            self.log.append("reply committed")

    def forget(self, turn: Any) -> None:
        self.log.append("forget")


def test_the_message_is_committed_while_its_request_is_in_flight() -> None:
    # Issue 16 item 18: the user turn's fsynced commit sat between Enter and the request. It now
    # overlaps the request (chatcli/repl/inflight.py), and is still done before the view is given the
    # reply's first event and before the reply is recorded.
    provider = FakeProvider()
    recorder = _SlowCommit(provider)
    stream = provider.stream

    def stream_and_flag(*args: Any, **kwargs: Any) -> Any:
        recorder.request_started.set()
        return stream(*args, **kwargs)

    provider.stream = stream_and_flag  # type: ignore[method-assign]
    provider.reply("one").reply("two")
    session = Session(provider, model="m1", recorder=recorder)
    h = Harness(provider=provider, session=session)
    make_view = h.view

    def view(s: Session) -> FakeView:
        v = make_view(s)
        original = v.feed

        def feed(event: SessionEvent) -> None:
            recorder.log.append("shown")
            original(event)

        v.feed = feed  # type: ignore[method-assign]
        return v

    h.view = view  # type: ignore[method-assign]
    for _ in range(2):
        recorder.request_started.clear()
        h.run("hi" + ENTER + CTRL_D)
    firsts = [i for i, line in enumerate(recorder.log) if line.startswith("user committed")]
    assert [recorder.log[i] for i in firsts] == ["user committed (request already sent: True)"] * 2
    for i in firsts:  # committed before anything was shown or the reply recorded
        assert recorder.log[i + 1] == "shown"
    assert recorder.log.count("reply committed") == 2
    assert session.recorder is recorder  # the wrapper is gone after the send


def test_a_failed_request_still_leaves_the_message_committed(tmp_path: Path) -> None:
    from chatcli.history.store import Store

    store = Store.open(tmp_path / "data")
    provider = FakeProvider()
    provider.scripts.append([ProviderError("auth", "server said no", provider="fake")])
    session = Session(provider, model="m1", recorder=store.recorder())
    run = Harness(provider=provider, session=session, store=store).run("keep me" + ENTER + CTRL_D)
    assert "server said no" in run.err
    ident = store.list_conversations()[0].id
    assert [t.content for t in store.load_turns(ident)] == ["keep me"]


def test_a_ctrl_c_outside_prompt_toolkits_handler_leaves_the_next_prompt_usable() -> None:
    # The prompts share one event loop (Repl._prompt, issue 16 item 18). A KeyboardInterrupt that
    # escapes the loop itself (raised in a loop callback, not through the prompt's task) leaves
    # the prompt's task pending; it is finished there, so the next prompt can start.
    from chatcli.repl.loop import Repl

    h = Harness()
    h.provider.reply("still here")
    pre_run = Repl._pre_run
    fired: list[bool] = []

    def boom() -> None:
        raise KeyboardInterrupt

    def first_pre_run(self: Repl) -> None:
        if not fired:
            fired.append(True)
            import asyncio

            asyncio.get_running_loop().call_soon(boom)
        pre_run(self)

    Repl._pre_run = first_pre_run  # type: ignore[method-assign]
    try:
        run = h.run("hello" + ENTER + CTRL_D)
    finally:
        Repl._pre_run = pre_run  # type: ignore[method-assign]
    assert fired and EXIT_HINT in run.err
    assert run.code == 0 and sent(h.provider) == ["hello"], run.err


def test_every_prompt_runs_on_the_same_event_loop() -> None:
    # Issue 16 item 18: `PromptSession.prompt()` made (and, after Enter, closed) a new event loop
    # per prompt, on the way from Enter to the request. The chat keeps one loop for its prompts.
    import asyncio

    from chatcli.repl.loop import Repl

    h = Harness()
    loops: list[asyncio.AbstractEventLoop] = []  # kept alive: a freed loop's id could be reused
    pre_run = Repl._pre_run

    def recording_pre_run(self: Repl) -> None:
        loops.append(asyncio.get_running_loop())
        pre_run(self)

    Repl._pre_run = recording_pre_run  # type: ignore[method-assign]
    try:
        h.run("one" + ENTER + "two" + ENTER + CTRL_D)
    finally:
        Repl._pre_run = pre_run  # type: ignore[method-assign]
    assert len(loops) == 3 and all(loop is loops[0] for loop in loops)
    assert sent(h.provider) == ["one", "two"]
