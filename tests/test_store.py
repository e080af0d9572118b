"""The SQLite store: what each turn outcome stores, lazy conversations, resume, reads, search."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcli.errors import ExitCode, ProviderError, StoreError
from chatcli.events import Finish, ReasoningDelta, TextDelta, Usage
from chatcli.history.store import (
    SCHEMA_VERSION,
    AmbiguousConversation,
    ConversationNotFound,
    Store,
    open_for_chat,
)
from chatcli.session import Session
from chatcli.turn import Turn
from tests.support.fakes import FakeProvider


@pytest.fixture
def warnings() -> list[str]:
    return []


@pytest.fixture
def store(tmp_path: Path, warnings: list[str]) -> Iterator[Store]:
    with Store.open(tmp_path / "data", warn=warnings.append) as opened:
        yield opened


def _drain(events: Iterator[object]) -> list[object]:
    return list(events)


def _session(store: Store, provider: FakeProvider, conv: str | None = None) -> tuple[Session, object]:
    recorder = store.recorder(conv)
    turns = store.load_turns(conv) if conv else None
    return Session(provider, model="m1", system="be brief", recorder=recorder, turns=turns,
                   clock=iter(float(i) for i in range(1000)).__next__), recorder


# -- each outcome is stored with its fields -------------------------------------------------------


def test_complete_turn_stores_every_field(store: Store) -> None:
    provider = FakeProvider([[ReasoningDelta("think"), TextDelta("Hello "), TextDelta("there"),
                              Usage(11, 7), Finish("stop", raw="end_turn")]])
    session, recorder = _session(store, provider)
    _drain(session.send("hi\nsecond line"))
    conv_id = recorder.conversation_id  # type: ignore[attr-defined]
    assert conv_id is not None and len(conv_id) == 8
    turns = store.load_turns(conv_id)
    assert [t.role for t in turns] == ["user", "assistant"]
    user, reply = turns
    assert user.content == "hi\nsecond line" and user.finish_reason is None
    assert user.provider == "fake" and user.model == "m1" and user.system == "be brief"
    assert reply.content == "Hello there"
    assert reply.reasoning == "think"
    assert (reply.finish_reason, reply.finish_raw) == ("stop", "end_turn")
    assert (reply.input_tokens, reply.output_tokens) == (11, 7)
    assert reply.ttft is not None and reply.duration is not None and reply.duration >= reply.ttft
    assert [t.id for t in turns] == [t.id for t in session.turns]  # ids come back for resume
    conv = store.get(conv_id)
    assert conv.title == "hi second line" and conv.turns == 2
    assert (conv.provider, conv.model) == ("fake", "m1")


@pytest.mark.parametrize("reason", ["length", "content_filter", "tool_calls", "pause_turn", "incomplete"])
def test_partial_finish_reasons_are_stored(store: Store, reason: str) -> None:
    provider = FakeProvider([[TextDelta("part"), Finish(reason, raw=f"raw-{reason}", detail="why")]])  # type: ignore[arg-type]
    session, recorder = _session(store, provider)
    _drain(session.send("q"))
    reply = store.load_turns(recorder.conversation_id)[-1]  # type: ignore[attr-defined]
    assert (reply.content, reply.finish_reason, reply.finish_raw, reply.finish_detail) == (
        "part", reason, f"raw-{reason}", "why")
    assert reply.partial


def test_interrupted_turn_is_stored_when_the_stream_is_closed(store: Store) -> None:
    provider = FakeProvider([[TextDelta("partial "), TextDelta("more"), Finish("stop")]])
    session, recorder = _session(store, provider)
    events = session.send("q")
    assert isinstance(next(events), TextDelta)
    events.close()  # what Ctrl-C in the view does
    reply = store.load_turns(recorder.conversation_id)[-1]  # type: ignore[attr-defined]
    assert (reply.content, reply.finish_reason) == ("partial ", "interrupted")


def test_keyboard_interrupt_inside_the_provider_is_stored(store: Store) -> None:
    provider = FakeProvider([[TextDelta("abc"), KeyboardInterrupt()]])
    session, recorder = _session(store, provider)
    with pytest.raises(KeyboardInterrupt):
        _drain(session.send("q"))
    reply = store.load_turns(recorder.conversation_id)[-1]  # type: ignore[attr-defined]
    assert (reply.content, reply.finish_reason) == ("abc", "interrupted")


def test_failed_request_keeps_the_user_turn_and_no_empty_reply(store: Store) -> None:
    error = ProviderError("auth", "bad key", provider="fake")
    session, recorder = _session(store, FakeProvider([[error]]))
    with pytest.raises(ProviderError):
        _drain(session.send("q"))
    turns = store.load_turns(recorder.conversation_id)  # type: ignore[attr-defined]
    # case O9 of tests/e2e/README.md: no empty assistant turn
    assert [(t.role, t.content) for t in turns] == [("user", "q")]


def test_error_after_content_is_stored_partial(store: Store) -> None:
    provider = FakeProvider([[TextDelta("so far"), Finish("error", detail="connection lost")]])
    session, recorder = _session(store, provider)
    _drain(session.send("q"))
    reply = store.load_turns(recorder.conversation_id)[-1]  # type: ignore[attr-defined]
    assert (reply.content, reply.finish_reason, reply.finish_detail) == ("so far", "error", "connection lost")


def test_continue_updates_the_same_row(store: Store) -> None:
    provider = FakeProvider([[TextDelta("The answer"), Usage(5, 3), Finish("length", raw="length")],
                             [TextDelta(" is 42."), Usage(9, 4), Finish("stop", raw="stop")]])
    session, recorder = _session(store, provider)
    _drain(session.send("q"))
    first_id = session.turns[-1].id
    _drain(session.continue_())
    turns = store.load_turns(recorder.conversation_id)  # type: ignore[attr-defined]
    assert len(turns) == 2
    assert turns[-1].id == first_id
    assert (turns[-1].content, turns[-1].finish_reason, turns[-1].output_tokens) == (
        "The answer is 42.", "stop", 7)
    assert store.search("42")  # the FTS index follows the update


def test_undo_and_retry_forget_rows(store: Store) -> None:
    provider = FakeProvider().reply("one").reply("two").reply("two again")
    session, recorder = _session(store, provider)
    _drain(session.send("first"))
    _drain(session.send("second"))
    _drain(session.retry())
    conv = recorder.conversation_id  # type: ignore[attr-defined]
    assert [t.content for t in store.load_turns(conv)] == ["first", "one", "second", "two again"]
    assert session.undo()
    assert [t.content for t in store.load_turns(conv)] == ["first", "one"]
    assert not store.search("second")


# -- lazily created conversation, resume ----------------------------------------------------------


def test_an_empty_session_creates_no_conversation(store: Store) -> None:
    recorder = store.recorder()
    Session(FakeProvider(), model="m", recorder=recorder)
    assert recorder.conversation_id is None
    assert store.list_conversations() == []
    assert store.latest_conversation() is None


def test_resume_loads_turns_in_order_and_appends(store: Store, tmp_path: Path) -> None:
    session, recorder = _session(store, FakeProvider().reply("a1").reply("a2"))
    _drain(session.send("q1"))
    _drain(session.send("q2"))
    conv = recorder.conversation_id  # type: ignore[attr-defined]
    store.close()

    with Store.open(tmp_path / "data") as again:
        loaded = again.load_turns(conv)
        assert [(t.role, t.content) for t in loaded] == [
            ("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2")]
        assert all(t.id is not None for t in loaded)
        provider = FakeProvider().reply("a3")
        resumed, rec2 = _session(again, provider, conv)
        assert rec2.conversation_id == conv  # type: ignore[attr-defined]
        _drain(resumed.send("q3"))
        # The whole history went to the provider, and the new turns were appended in order.
        assert [m.content for m in provider.calls[0].messages] == ["q1", "a1", "q2", "a2", "q3"]
        assert [t.content for t in again.load_turns(conv)][-2:] == ["q3", "a3"]
        assert again.latest_conversation().id == conv  # type: ignore[union-attr]
        assert again.count_conversations() == 1


def test_list_is_newest_first_with_limit_and_offset(store: Store) -> None:
    ids = []
    for i in range(5):
        rec = store.recorder()
        rec.record(Turn("user", f"conversation {i}"))
        ids.append(rec.conversation_id)
    listed = [c.id for c in store.list_conversations(limit=3)]
    assert listed == ids[::-1][:3]
    assert [c.id for c in store.list_conversations(limit=3, offset=3)] == ids[::-1][3:]
    # Using an old conversation moves it to the top.
    store.recorder(ids[0]).record(Turn("user", "again"))
    assert store.latest_conversation().id == ids[0]  # type: ignore[union-attr]


def test_title_comes_from_the_first_user_message(store: Store) -> None:
    rec = store.recorder()
    rec.record(Turn("user", "  Explain\n\tmonads   " + "x" * 200))
    rec.record(Turn("user", "later question"))
    conv = store.get(rec.conversation_id or "")
    assert conv.title.startswith("Explain monads x") and len(conv.title) <= 80 and conv.title.endswith("…")


def test_get_by_prefix_ambiguous_and_unknown(store: Store) -> None:
    recs = [store.recorder() for _ in range(2)]
    for rec in recs:
        rec.record(Turn("user", "hello"))
    a = recs[0].conversation_id or ""
    assert store.get(a).id == a
    assert store.get(a.upper()).id == a
    assert store.get(a[:6]).id == a
    with pytest.raises(ConversationNotFound) as missing:
        store.get("zzzz9999")
    assert missing.value.exit_code == ExitCode.USAGE
    assert "no conversation 'zzzz9999' (see chatcli history list)" in missing.value.message
    for bad in ("", "%", "a_b", "' OR 1=1 --"):
        with pytest.raises(ConversationNotFound):
            store.get(bad)
    # A prefix shared by both: make one by forcing ids.
    store._conn.execute("PRAGMA foreign_keys = OFF")
    store._conn.execute("UPDATE conversations SET id = 'abc11111' WHERE id = ?", (a,))
    store._conn.execute("UPDATE conversations SET id = 'abc22222' WHERE id = ?", (recs[1].conversation_id,))
    with pytest.raises(AmbiguousConversation) as ambiguous:
        store.get("abc")
    assert "abc11111" in ambiguous.value.message and "abc22222" in ambiguous.value.message
    assert store.get("abc2").id == "abc22222"


def test_delete_removes_turns_and_index(store: Store) -> None:
    rec = store.recorder()
    rec.record(Turn("user", "unique-word-zebra"))
    conv = rec.conversation_id or ""
    assert store.search("zebra")
    assert store.delete(conv)
    assert not store.delete(conv)
    assert store.load_turns(conv) == []
    assert store.search("zebra") == []
    assert store._conn.execute("SELECT count(*) FROM turns").fetchone()[0] == 0


def test_recording_into_a_conversation_deleted_elsewhere_recreates_it(store: Store) -> None:
    rec = store.recorder()
    first = Turn("user", "one")
    rec.record(first)
    conv = rec.conversation_id or ""
    store.delete(conv)
    reply = Turn("assistant", "two", finish_reason="stop")
    rec.record(reply)
    rec.record(first)  # an update of a row that is gone inserts it again
    assert store.saving
    assert {t.content for t in store.load_turns(conv)} == {"one", "two"}


# -- search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("query, expected", [
    ('say "hi"', True),
    ('"', True),  # nothing to tokenize: a literal substring search
    ("*", True),
    ("state*", False),  # taken literally: no prefix query
    ("AND", True),
    ("foo AND", True),
    ("-x", True),
    ("NOT", False),
    ("NEAR(foo", False),  # the phrase "near foo" is not in the text
    ("a:b", False),
    ("content: stateful", True),
    ("to foo", True),
    ("'; DROP TABLE turns; --", False),
    ("(", False),
    ("   ", False),
])
def test_search_takes_fts_syntax_literally(store: Store, query: str, expected: bool) -> None:
    rec = store.recorder()
    rec.record(Turn("user", 'we say "hi" to foo AND bar with * and -x flags; content: stateful'))
    hits = store.search(query)
    assert bool(hits) is expected
    assert store._conn.execute("SELECT count(*) FROM turns").fetchone()[0] == 1


def test_search_returns_snippet_parts_and_titles(store: Store) -> None:
    rec = store.recorder()
    rec.record(Turn("user", "How do I parse JSON in Python?"))
    rec.record(Turn("assistant", "Use the json module: json.loads(text) parses a string.", finish_reason="stop"))
    hits = store.search("json python")
    assert len(hits) == 1 and hits[0].role == "user"
    assert hits[0].title == "How do I parse JSON in Python?"
    assert ("JSON", True) in hits[0].parts and ("Python", True) in hits[0].parts
    assert hits[0].snippet("<", ">") == "How do I parse <JSON> in <Python>?"
    assert len(store.search("json")) == 2
    assert store.search("résumé") == [] and store.search("nothing-like-this") == []


def test_search_limit(store: Store) -> None:
    rec = store.recorder()
    for i in range(30):
        rec.record(Turn("user", f"common word {i}"))
    assert len(store.search("common", limit=7)) == 7


# -- odd text -------------------------------------------------------------------------------------


def test_raw_text_round_trips_and_lone_surrogates_do_not_break_saving(store: Store) -> None:
    rec = store.recorder()
    raw = "\x1b[2J\x1b]52;c;ZXZpbA==\x07 \x9b31m ünïcødé 🎉 \r\b\x00end"
    rec.record(Turn("user", raw))
    broken = Turn("assistant", "bad \ud800 half", finish_reason="stop", finish_detail="x\udfffy")
    rec.record(broken)
    assert store.saving
    user, reply = store.load_turns(rec.conversation_id or "")
    assert user.content == raw  # stored raw: sanitizing is for display
    assert reply.content == "bad \ufffd half" and reply.finish_detail == "x\ufffdy"


def test_unknown_finish_reason_in_the_file_reads_as_error(store: Store) -> None:
    rec = store.recorder()
    rec.record(Turn("assistant", "x", finish_reason="stop"))
    store._conn.execute("UPDATE turns SET finish_reason = 'weird'")
    assert store.load_turns(rec.conversation_id or "")[0].finish_reason == "error"


# -- schema ---------------------------------------------------------------------------------------


def test_schema_is_versioned_and_pragmas_are_set(store: Store) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_prepare_writes_leaves_nothing_of_its_own_and_saving_goes_on(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.open(data) as earlier:
        session, _ = _session(earlier, FakeProvider().reply("old answer"))
        _drain(session.send("old question"))
    wal = data / "history.db-wal"
    with Store.open(data) as store:
        assert not wal.exists() or wal.stat().st_size == 0  # the last close checkpointed it
        store.prepare_writes()
        assert wal.stat().st_size > 0  # the first commit is done: the log exists, with a frame
        conn = store._conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM turns").fetchone()[0] == 2
        if store._has_fts:
            assert conn.execute("SELECT count(*) FROM turns_fts").fetchone()[0] == 2
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.saving
        session, recorder = _session(store, FakeProvider().reply("new answer"))
        _drain(session.send("new question"))
        assert [t.content for t in store.load_turns(str(recorder.conversation_id))] == [  # type: ignore[attr-defined]
            "new question", "new answer"]
        assert sorted(c.title for c in store.list_conversations()) == ["new question", "old question"]


def test_a_newer_schema_is_refused_not_moved(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Store.open(data).close()
    conn = sqlite3.connect(data / "history.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as raised:
        Store.open(data)
    assert "newer chatcli" in raised.value.message and str(data / "history.db") in raised.value.message
    assert list(data.glob("*.corrupt-*")) == []
    said: list[str] = []
    assert open_for_chat(data, warn=said.append) is None
    assert len(said) == 1 and "will not be saved" in said[0]


def test_sessions_from_two_stores_share_the_file(tmp_path: Path) -> None:
    with Store.open(tmp_path / "d") as one, Store.open(tmp_path / "d") as two:
        rec = one.recorder()
        rec.record(Turn("user", "from one"))
        conv = rec.conversation_id or ""
        two.recorder(conv).record(Turn("assistant", "from two", finish_reason="stop"))
        assert [t.content for t in one.load_turns(conv)] == ["from one", "from two"]
