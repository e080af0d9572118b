"""Slash command handlers, called directly (the loop around them is in test_repl.py)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from chatcli.errors import UsageError
from chatcli.events import Finish, TextDelta, Usage
from chatcli.providers.base import Provider
from chatcli.repl.clipboard import copy_to_clipboard, osc52
from chatcli.repl.commands import (
    COMMANDS,
    EXIT,
    ReplState,
    Reply,
    command_names,
    dispatch,
    is_command,
    to_markdown,
)
from chatcli.session import Session
from chatcli.settings import ProviderConfig, Settings
from chatcli.turn import Turn
from tests.support.fakes import TTY, FakeProvider


def make_state(*, settings: Settings | None = None, turns: list[Turn] | None = None,
               provider: FakeProvider | None = None, **kw: object) -> ReplState:
    session = Session(provider or FakeProvider(), model="m1", turns=turns)
    return ReplState(session=session, settings=settings or Settings(), err=io.StringIO(), **kw)  # type: ignore[arg-type]


def out(state: ReplState) -> str:
    assert isinstance(state.err, io.StringIO)
    return state.err.getvalue()


def exchange(question: str, answer: str, *, reason: str = "stop", tin: int | None = None,
             tout: int | None = None, model: str = "m1") -> list[Turn]:
    return [Turn("user", question, provider="fake", model=model),
            Turn("assistant", answer, provider="fake", model=model, finish_reason=reason,  # type: ignore[arg-type]
                 input_tokens=tin, output_tokens=tout)]


def drain(reply: object) -> list[object]:
    assert isinstance(reply, Reply)
    return list(reply.events)


def test_help_lists_every_command_with_its_help() -> None:
    state = make_state()
    assert dispatch(state, "/help") is None
    text = out(state)
    for command in COMMANDS:
        assert "/" + command.name in text
        assert command.help in text
    assert "/quit" in text and "Ctrl-J" in text


def test_spec_commands_all_exist() -> None:
    wanted = {"/help", "/exit", "/quit", "/new", "/model", "/system", "/retry", "/continue", "/undo",
              "/history", "/resume", "/copy", "/export", "/usage", "/multiline"}
    assert wanted <= set(command_names())


def test_exit_and_quit() -> None:
    assert dispatch(make_state(), "/exit") is EXIT
    assert dispatch(make_state(), "/QUIT") is EXIT


def test_unknown_command_suggests_closest() -> None:
    with pytest.raises(UsageError, match="did you mean /model"):
        dispatch(make_state(), "/modle gpt")
    with pytest.raises(UsageError) as info:
        dispatch(make_state(), "/zzzzzz")
    assert "did you mean" not in info.value.message


def test_unknown_command_name_is_sanitized() -> None:
    with pytest.raises(UsageError) as info:
        dispatch(make_state(), "/\x1b]52;c;aGk=\x07")
    assert "\x1b" not in info.value.message and "\x07" not in info.value.message


def test_is_command() -> None:
    assert is_command("/help")
    assert is_command("  /help")
    assert not is_command("//not a command")
    assert not is_command("hello /help")


def test_new_keeps_model_and_system_but_not_turns() -> None:
    state = make_state(turns=exchange("q", "a"))
    state.session.system = "be nice"
    old = state.session
    dispatch(state, "/new")
    assert state.session is not old
    assert state.session.turns == []
    assert state.session.system == "be nice"
    assert state.session.model == "m1" and state.session.provider is old.provider


def test_model_without_args_shows_current_and_available() -> None:
    settings = Settings(providers={"openai": ProviderConfig("openai", "openai", default_model="gpt-4o",
                                                            models=("gpt-4o-mini",))},
                        aliases={"fast": "openai:gpt-4o-mini"})
    state = make_state(settings=settings)
    dispatch(state, "/model")
    assert "model: fake:m1" in out(state)
    assert "openai:gpt-4o" in out(state) and "openai:gpt-4o-mini" in out(state) and "fast" in out(state)


def test_model_switch_updates_the_trimmer_for_the_new_window() -> None:
    other = FakeProvider(name="other")
    settings = Settings(providers={"other": ProviderConfig("other", "openai", context_window=1000)})

    def resolve(spec: str) -> tuple[Provider, str]:
        return other, "small"

    state = make_state(settings=settings, resolve_model=resolve)
    state.session.trimmer = lambda messages, system: (list(messages), 0)
    long_history: list[Turn] = []
    for i in range(20):
        long_history += exchange(f"question {i} " + "x" * 400, f"answer {i} " + "y" * 400)
    state.session.turns = long_history
    dispatch(state, "/model other")
    assert state.session.provider is other and state.session.model == "small"
    assert state.session.trimmer is not None
    _kept, dropped = state.session.trimmer(state.session.request_messages(), None)
    assert dropped > 0


def test_model_without_resolver_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        dispatch(make_state(), "/model x:y")


def test_system_show_set_clear() -> None:
    state = make_state()
    dispatch(state, "/system You are a pirate.\nAlways say arr.")
    assert state.session.system == "You are a pirate.\nAlways say arr."
    dispatch(state, "/system")
    assert "Always say arr." in out(state)
    dispatch(state, "/system -")
    assert state.session.system is None


def test_system_text_on_the_next_line() -> None:
    state = make_state()
    dispatch(state, "/system\nline one\nline two")
    assert state.session.system == "line one\nline two"


def test_retry_and_continue_and_undo_without_history() -> None:
    state = make_state()
    with pytest.raises(UsageError, match="nothing to retry"):
        dispatch(state, "/retry")
    with pytest.raises(UsageError, match="no reply to continue"):
        dispatch(state, "/continue")
    dispatch(state, "/undo")
    assert "nothing to undo" in out(state)


def test_retry_returns_a_reply_stream() -> None:
    provider = FakeProvider().reply("new answer")
    state = make_state(turns=exchange("q", "old answer"), provider=provider)
    events = drain(dispatch(state, "/retry"))
    assert TextDelta("new answer") in events
    assert [t.content for t in state.session.turns] == ["q", "new answer"]


def test_continue_complete_reply_says_so() -> None:
    provider = FakeProvider().reply(" more")
    state = make_state(turns=exchange("q", "done."), provider=provider)
    drain(dispatch(state, "/continue"))
    assert "was complete" in out(state)
    assert state.session.turns[-1].content == "done. more"


def test_usage_totals_and_cost() -> None:
    turns = exchange("a", "b", tin=1000, tout=200) + exchange("c", "d", tin=1500, tout=300)
    state = make_state(turns=turns, settings=Settings(prices={"m1": (2.0, 8.0)}))
    dispatch(state, "/usage")
    text = out(state)
    assert "2 replies" in text and "2,500 tokens in" in text and "500 out" in text
    # (2500 * 2 + 500 * 8) / 1e6 = 0.009
    assert "$0.0090" in text


def test_usage_with_provider_model_price_key_and_unknown_price() -> None:
    turns = exchange("a", "b", tin=1000, tout=1000) + exchange("c", "d", tin=10, tout=10, model="other")
    state = make_state(turns=turns, settings=Settings(prices={"fake:m1": (1.0, 1.0)}))
    dispatch(state, "/usage")
    assert "$0.0020" in out(state) and "no price configured" in out(state)


def test_usage_without_reported_tokens() -> None:
    state = make_state(turns=exchange("a", "b"))
    dispatch(state, "/usage")
    assert "reported no token usage" in out(state)
    assert "$" not in out(state)


def test_copy_uses_osc52_on_a_terminal() -> None:
    tty = TTY()
    state = make_state(turns=exchange("q", "copy me ✓"), terminals=(io.StringIO(), tty))
    dispatch(state, "/copy")
    sequence = tty.getvalue()
    assert sequence.startswith("\x1b]52;c;") and sequence.endswith("\x07")
    assert base64.b64decode(sequence[7:-1]).decode() == "copy me ✓"
    assert "clipboard" in out(state)


def test_copy_falls_back_without_a_terminal() -> None:
    plain = io.StringIO()
    state = make_state(turns=exchange("q", "text"), terminals=(plain,))
    dispatch(state, "/copy")
    assert plain.getvalue() == ""
    assert "/export" in out(state)


def test_copy_with_nothing() -> None:
    state = make_state()
    dispatch(state, "/copy")
    assert "no reply" in out(state)


def test_osc52_payload_cannot_carry_escapes() -> None:
    sequence = osc52("evil \x1b]52;c;AAAA\x07 \x1b[2J")
    assert sequence.count("\x1b") == 1 and sequence.count("\x07") == 1
    sent, message = copy_to_clipboard("", TTY())
    assert not sent and "nothing" in message


def test_export_writes_markdown(tmp_path: Path) -> None:
    turns = exchange("What is 2+2?", "4") + exchange("and 3+3?", "Six is", reason="length")
    state = make_state(turns=turns)
    state.session.system = "be brief"
    target = tmp_path / "out.md"
    dispatch(state, f"/export {target}")
    text = target.read_text()
    assert text.startswith("# What is 2+2?")
    assert "## System\n\nbe brief" in text
    assert "## You\n\nand 3+3?" in text
    assert "## Assistant (fake:m1)\n\nSix is" in text
    # One exporter for /export and `history export` (chatcli/history/export.py): history's partial mark.
    assert "partial reply (length)" in text
    assert str(target) in out(state)


def test_export_default_name_never_clobbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    state = make_state(turns=exchange("q", "a"))
    dispatch(state, "/export")
    dispatch(state, "/export")
    files = sorted(p.name for p in tmp_path.glob("chatcli-*.md"))
    assert len(files) == 2


def test_export_redacts_keys(tmp_path: Path) -> None:
    state = make_state(turns=exchange("my key is sk-abcdefghijklmnopqrstu", "ok"))
    dispatch(state, f"/export {tmp_path / 'x.md'}")
    assert "sk-abcdefghijklmnopqrstu" not in (tmp_path / "x.md").read_text()


def test_export_nothing() -> None:
    state = make_state()
    dispatch(state, "/export")
    assert "nothing to export" in out(state)


def test_export_bad_path_is_one_line_error(tmp_path: Path) -> None:
    state = make_state(turns=exchange("q", "a"))
    with pytest.raises(UsageError, match="cannot write"):
        dispatch(state, f"/export {tmp_path / 'missing-dir' / 'x.md'}")


def test_multiline_toggles() -> None:
    state = make_state()
    dispatch(state, "/multiline")
    assert state.multiline
    dispatch(state, "/multiline")
    assert not state.multiline


def test_history_lists_and_resume_loads(tmp_path: Path) -> None:
    from chatcli.history.store import Store

    store = Store.open(tmp_path / "data")
    provider = FakeProvider()
    provider.scripts.append([TextDelta("stored answer"), Usage(3, 2), Finish("stop")])
    first = Session(provider, model="m1", recorder=store.recorder(), system="sys A")
    list(first.send("a \x1b[2J question"))
    conv = store.list_conversations()[0]

    state = make_state(store=store, provider=provider)
    dispatch(state, "/history")
    text = out(state)
    assert conv.id in text and "\x1b" not in text
    dispatch(state, f"/resume {conv.id[:5]}")
    assert [t.content for t in state.session.turns] == ["a \x1b[2J question", "stored answer"]
    assert state.session.system == "sys A"  # the conversation's own, none was set here
    assert "stored answer" in out(state)
    with pytest.raises(UsageError):
        dispatch(state, "/resume zzzz")
    with pytest.raises(UsageError, match="usage"):
        dispatch(state, "/resume")
    with pytest.raises(UsageError, match="usage"):
        dispatch(state, "/history many")


def test_to_markdown_without_title() -> None:
    session = Session(FakeProvider(), model="m")
    assert to_markdown(session).startswith("# chatcli conversation")


def test_history_names_the_model_as_history_list_does(tmp_path: Path) -> None:
    import chatcli.history.commands
    from chatcli.history.store import Store

    with Store.open(tmp_path / "data") as store:
        rec = store.recorder()
        rec.record(Turn("user", "q", provider="openai", model="gpt-4o-mini"))
        rec.record(Turn("assistant", "a", provider="openai", model="gpt-4o-mini", finish_reason="stop"))
        state = make_state(store=store)
        dispatch(state, "/history")
        listed = io.StringIO()
        chatcli.history.commands.list_cmd(store, listed)
    assert "openai:gpt-4o-mini" in out(state) and "openai:gpt-4o-mini" in listed.getvalue()


def test_history_needs_a_positive_count_and_resume_points_to_history(tmp_path: Path) -> None:
    from chatcli.history.store import Store

    with Store.open(tmp_path / "data") as store:
        for text in ("one", "two"):
            store.recorder().record(Turn("user", text))
        state = make_state(store=store)
        for bad in ("/history 0", "/history -3"):
            with pytest.raises(UsageError, match="at least 1"):
                dispatch(state, bad)
        assert out(state) == ""  # nothing listed
        with pytest.raises(UsageError) as raised:
            dispatch(state, "/resume zzz")
        assert "/history" in raised.value.message and "chatcli history list" not in raised.value.message


def test_without_a_store_the_reason_is_not_blamed_on_no_save() -> None:
    state = make_state(settings=Settings(save=True))  # saving was on, the database did not open
    dispatch(state, "/history")
    assert "--no-save" not in out(state) and "could not be opened" in out(state)
    with pytest.raises(UsageError) as raised:
        dispatch(state, "/resume abc")
    assert "--no-save" not in raised.value.message and "could not be opened" in raised.value.message
    state = make_state(settings=Settings(save=False))
    dispatch(state, "/history")
    assert "--no-save" in out(state)
