"""`/compare` and `/keep` in the chat, through prompt-toolkit's pipe input (chatcli/compare/chat.py).

Scripted providers stand in for the models (each answers in its own worker thread, as the real
SDK streams do); the history is a real SQLite store, so what `history show` prints and what a
resumed conversation sends are checked on the stored rows.
"""

from __future__ import annotations

import io
from pathlib import Path

from chatcli.errors import UsageError
from chatcli.history.store import Store
from chatcli.providers.base import Provider
from chatcli.session import Session
from tests.support.fakes import FakeProvider
from tests.support.repl import ENTER, Harness, sent


def _setup(tmp_path: Path) -> tuple[Harness, Store, dict[str, FakeProvider]]:
    store = Store.open(tmp_path / "data")
    main = FakeProvider(name="fm")
    models = {"fa": FakeProvider(name="fa"), "fb": FakeProvider(name="fb"), "fm": main}

    def resolve(spec: str) -> tuple[Provider, str]:
        name, _, model = spec.partition(":")
        if name not in models:
            raise UsageError(f"unknown model {spec!r}")
        return models[name], model or "default"

    session = Session(main, model="m1", recorder=store.recorder(None))
    h = Harness(provider=main, session=session, resolve_model=resolve, store=store)
    return h, store, models


def test_compare_then_keep_continues_with_the_kept_reply_and_everything_is_stored(tmp_path: Path) -> None:
    h, store, models = _setup(tmp_path)
    models["fa"].reply("answer from a")
    models["fb"].reply("answer from b", reason="length")
    models["fb"].reply("b goes on")  # the message after /keep 2 goes to fb:m3, the kept model
    run = h.run("/compare fa:m2 fb:m3" + ENTER + "which is better?" + ENTER + "/keep 2" + ENTER
                + "and then?" + ENTER + "/exit" + ENTER)
    assert run.code == 0, run.err
    assert "the next message goes to fa:m2, fb:m3" in run.err
    assert "continues with [1] fa:m2" in run.err  # until /keep, the first reply
    assert "keeping [2] fb:m3" in run.err
    # Both models got the same message; the follow-up carried the kept reply as history.
    assert sent(models["fa"]) == ["which is better?"] and models["fa"].calls[0].model == "m2"
    assert sent(models["fb"]) == ["which is better?", "and then?"]
    follow_up = models["fb"].calls[1]
    assert [(m.role, m.content) for m in follow_up.messages] == [
        ("user", "which is better?"), ("assistant", "answer from b"), ("user", "and then?")]
    assert not models["fm"].calls  # the chat's own model was not asked
    # Stored: one conversation, the message once, the kept reply as its answer, both alternatives.
    convs = store.list_conversations()
    assert len(convs) == 1
    turns = store.load_turns(convs[0].id)
    assert [(t.role, t.content) for t in turns] == [
        ("user", "which is better?"), ("assistant", "answer from b"), ("user", "and then?"),
        ("assistant", "b goes on")]
    assert (turns[1].provider, turns[1].model, turns[1].finish_reason) == ("fb", "m3", "length")
    from chatcli.history.commands import show_cmd

    out = io.StringIO()
    show_cmd(store, convs[0].id, out)
    shown = out.getvalue()
    assert "2 models answered this message" in shown
    assert "[1] fa:m2 ──" in shown and "[2] fb:m3 · kept ──" in shown
    assert shown.index("answer from a") > shown.index("which is better?")
    assert "partial reply (length)" in shown
    store.close()


def test_without_keep_the_next_message_continues_with_the_first_and_says_so(tmp_path: Path) -> None:
    h, store, models = _setup(tmp_path)
    models["fa"].reply("first")
    models["fb"].reply("second")
    models["fm"].reply("main goes on")
    run = h.run("/compare fa fb" + ENTER + "q" + ENTER + "more" + ENTER + "/exit" + ENTER)
    assert run.code == 0, run.err
    assert "continuing with [1] fa:default's reply" in run.err
    # The chat's model answers the next message, with the first reply as the history.
    assert [(m.role, m.content) for m in models["fm"].calls[0].messages] == [
        ("user", "q"), ("assistant", "first"), ("user", "more")]
    store.close()


def test_compare_alone_repeats_the_last_message_to_the_same_models(tmp_path: Path) -> None:
    h, store, models = _setup(tmp_path)
    for text in ("a1", "a2"):
        models["fa"].reply(text)
    for text in ("b1", "b2"):
        models["fb"].reply(text)
    run = h.run("/compare fa fb" + ENTER + "same q" + ENTER + "/compare" + ENTER + "/exit" + ENTER)
    assert run.code == 0, run.err
    assert sent(models["fa"]) == ["same q", "same q"] and sent(models["fb"]) == ["same q", "same q"]
    turns = store.load_turns(store.list_conversations()[0].id)
    assert [(t.role, t.content) for t in turns] == [("user", "same q"), ("assistant", "a2")]
    store.close()


def test_keep_and_compare_mistakes_are_one_line_each(tmp_path: Path) -> None:
    h, store, models = _setup(tmp_path)
    run = h.run("/keep 1" + ENTER + "/compare fa" + ENTER + "/compare fa nope:x" + ENTER + "/compare" + ENTER
                + "/exit" + ENTER)
    assert run.code == 0
    assert "nothing to keep" in run.err
    assert "two models or more" in run.err
    assert "unknown model 'nope:x'" in run.err
    assert "no models named yet" in run.err
    assert not any(p.calls for p in models.values())
    store.close()


def test_a_failing_model_leaves_the_others_and_keep_refuses_it(tmp_path: Path) -> None:
    from chatcli.errors import ProviderError

    h, store, models = _setup(tmp_path)
    models["fa"].scripts.append([ProviderError("auth", "bad key", provider="fa")])
    models["fb"].reply("only b")
    run = h.run("/compare fa fb" + ENTER + "q" + ENTER + "/keep 1" + ENTER + "/exit" + ENTER)
    assert run.code == 0, run.err
    assert "continues with [2] fb:default" in run.err
    assert "nothing to keep" not in run.err and "no single reply matches '1'" in run.err
    turns = store.load_turns(store.list_conversations()[0].id)
    assert [(t.role, t.content) for t in turns] == [("user", "q"), ("assistant", "only b")]
    store.close()


def test_tab_completes_keep_with_positions_and_models(tmp_path: Path) -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from chatcli.compare import Alternative, ChatCompare
    from chatcli.repl.commands import ReplState
    from chatcli.repl.prompt import SlashCompleter
    from chatcli.settings import Settings
    from chatcli.turn import Turn

    state = ReplState(session=Session(FakeProvider(), model="m"), settings=Settings())
    state.compare = ChatCompare(replies=[Alternative(1, "fa", "m2", Turn("assistant", "x")),
                                         Alternative(2, "fb", "m3", Turn("assistant", "y"))])
    completer = SlashCompleter(lambda: state)

    def complete(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text, len(text)), CompleteEvent())]

    assert complete("/keep ") == ["1", "fa:m2", "2", "fb:m3"]
    assert complete("/keep fb") == ["fb:m3"]
    assert "/keep" in complete("/ke") and "/compare" in complete("/comp")



def test_usage_counts_every_model_s_reply_to_a_compare(tmp_path: Path) -> None:
    """Each model's reply to a /compare was paid for: /usage counts them all, the kept one once."""
    from chatcli.events import Finish, TextDelta, Usage

    h, store, models = _setup(tmp_path)
    models["fa"].scripts.append([TextDelta("from a"), Usage(10, 3), Finish("stop", raw="stop")])
    models["fb"].scripts.append([TextDelta("from b"), Usage(10, 5), Finish("stop", raw="stop")])
    run = h.run("/compare fa fb" + ENTER + "q" + ENTER + "/usage" + ENTER + "/keep 2" + ENTER + "/usage" + ENTER
                + "/exit" + ENTER)
    assert run.code == 0, run.err
    session_lines = [line for line in run.err.splitlines() if line.startswith("this session:")]
    conversation_lines = [line for line in run.err.splitlines() if line.startswith("this conversation:")]
    assert len(session_lines) == 2 and len(conversation_lines) == 2, run.err
    for line in session_lines:
        assert "2 replies" in line and "20 tokens in · 8 out" in line, line
    for line in conversation_lines:  # after /keep 2 as before it: both replies, the kept one once
        assert "2 replies (1 compared, not kept)" in line and "20 tokens in · 8 out" in line, line
    store.close()
