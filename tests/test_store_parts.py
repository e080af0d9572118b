"""Schema 3: turns made of parts. Tool calls, tool results ("tool" turns) and attachments are
stored and read back exactly; an attachment's bytes are stored once per content hash and go when
no turn uses them any more; a conversation resumed from the store gives a request in which every
call has its result."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chatcli.events import DocumentPart, ImagePart, ToolCallPart, ToolResultPart
from chatcli.history.store import SCHEMA_VERSION, Store
from chatcli.session import Session
from chatcli.turn import Turn
from tests.support.fakes import FakeProvider

PNG = b"\x89PNG\r\n\x1a\n" + b"fake-but-stored-as-is" * 10
PDF = b"%PDF-1.4\n%tiny\n"


def test_parts_round_trip_and_tool_turns(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    rec = store.recorder()
    turns = [
        Turn("user", "what is in this?", parts=(ImagePart("image/png", PNG, name="shot.png"),
                                               DocumentPart("application/pdf", PDF, name="a.pdf"),
                                               ImagePart("", url="https://example.test/cat.jpg"))),
        Turn("assistant", "", parts=(ToolCallPart("c1", "time__get_current_time", '{"timezone":"UTC"}'),),
             finish_reason="tool_calls"),
        Turn("tool", "", parts=(ToolResultPart("c1", "cut", full="the whole result", status="ok"),
                                ToolResultPart("c2", "no", is_error=True, status="declined"))),
        Turn("assistant", "done", finish_reason="stop"),
    ]
    for turn in turns:
        rec.record(turn)
    assert rec.conversation_id is not None
    loaded = store.load_turns(rec.conversation_id)
    assert [(t.role, t.content, t.parts) for t in loaded] == [(t.role, t.content, t.parts) for t in turns]
    store.close()


def test_the_same_attachment_is_stored_once_and_dropped_when_unused(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    store = Store.open(tmp_path)
    first, second = store.recorder(), store.recorder()
    for rec in (first, second):
        rec.record(Turn("user", "look", parts=(ImagePart("image/png", PNG, name="shot.png"),)))
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert db.execute("SELECT count(*), sum(size) FROM blobs").fetchone() == (1, len(PNG))
    assert first.conversation_id and second.conversation_id
    store.delete(first.conversation_id)
    assert db.execute("SELECT count(*) FROM blobs").fetchone() == (1,)  # still used by the second
    store.delete(second.conversation_id)
    assert db.execute("SELECT count(*) FROM blobs").fetchone() == (0,)
    db.close()
    store.close()


def test_a_resumed_conversation_is_a_valid_request(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    rec = store.recorder()
    call = ToolCallPart("c1", "time__get_current_time", "{}")
    for turn in [Turn("user", "q"), Turn("assistant", "", parts=(call,), finish_reason="tool_calls")]:
        rec.record(turn)  # killed before the tool turn: the call has no result in the store
    assert rec.conversation_id
    provider = FakeProvider([[]])
    provider.reply("fine")
    provider.scripts.pop(0)
    session = Session(provider, model="m", turns=store.load_turns(rec.conversation_id))
    list(session.send("next"))
    sent = provider.calls[0].messages
    assert [m.role for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[1].tool_calls == (call,) and [r.call_id for r in sent[2].tool_results] == ["c1"]
    store.close()


def test_schema_is_current() -> None:
    assert SCHEMA_VERSION == 4  # v4: the alternatives of a /compare (chatcli/compare/alternatives.py)


def test_an_old_database_migrates_keeps_its_ids_and_search_still_indexes_new_turns(tmp_path: Path) -> None:
    from tests.support.store_schema1 import make_old_database

    data = tmp_path / "data"
    make_old_database(data, ["the old sqlite notes", "数据库 in an old sentence"])
    before = sqlite3.connect(data / "history.db")
    old_ids = [r[0] for r in before.execute("SELECT id FROM turns ORDER BY id")]
    top = before.execute("SELECT seq FROM sqlite_sequence WHERE name = 'turns'").fetchone()[0]
    before.close()
    store = Store.open(data)
    assert [h.turn_id for h in store.search("sqlite")] and [h.turn_id for h in store.search("数据库")]
    conv = store.search("sqlite")[0].conversation_id
    assert [t.id for t in store.load_turns(conv)][:1] == old_ids[:1]
    rec = store.recorder()
    fresh = Turn("tool", "", parts=(ToolResultPart("c", "zebra-unicorn result"),))
    rec.record(Turn("user", "a brand new xylophone question"))
    rec.record(fresh)
    assert fresh.id is not None and fresh.id > top  # ids are never reused
    assert [h.role for h in store.search("xylophone")] == ["user"]
    store.close()


def _tool_conversation(tmp_path: Path) -> tuple[Store, str]:
    store = Store.open(tmp_path)
    rec = store.recorder()
    for turn in [
        Turn("user", "what time is it? see the screenshot", parts=(ImagePart("image/png", PNG, name="shot.png"),)),
        Turn("assistant", "Let me check.", parts=(ToolCallPart("c1", "time__get_current_time", '{"timezone": "UTC"}'),),
             finish_reason="tool_calls", provider="openai", model="gpt-4o"),
        Turn("tool", "", parts=(ToolResultPart("c1", "12:00 UTC\x1b[2J\nline two"),)),
        Turn("assistant", "It is noon.", finish_reason="stop", provider="openai", model="gpt-4o"),
    ]:
        rec.record(turn)
    assert rec.conversation_id
    return store, rec.conversation_id


def test_history_show_names_attachments_calls_and_results_inert(tmp_path: Path) -> None:
    import io

    from chatcli.history import commands as history

    store, conv = _tool_conversation(tmp_path)
    out = io.StringIO()
    history.show_cmd(store, conv, out)
    text = out.getvalue()
    assert f"  ⚙ image image/png {len(PNG)} B shot.png" in text
    assert '  ⚙ tool call time__get_current_time {"timezone": "UTC"}' in text
    assert "  ⚙ tool result (ok) 2 lines, 22 chars: 12:00 UTC␛[2J" in text
    assert "\x1b" not in text and "partial reply" not in text  # the calls ran: not a partial reply
    store.close()


def test_exports_carry_the_parts(tmp_path: Path) -> None:
    import base64
    import io
    import json

    from chatcli.history import commands as history

    store, conv = _tool_conversation(tmp_path)
    md, js = io.StringIO(), io.StringIO()
    history.export_cmd(store, conv, stdout=md)
    history.export_cmd(store, conv, fmt="json", stdout=js)
    text = md.getvalue()
    assert f"- attached: image image/png {len(PNG)} B shot.png" in text
    assert '**Tool call** `time__get_current_time` (`c1`)\n\n```json\n{"timezone": "UTC"}\n```' in text
    assert "**Tool result** (`c1`, ok, 22 characters)\n\n```\n12:00 UTC\x1b[2J\nline two\n```" in text
    turns = json.loads(js.getvalue())["turns"]
    assert base64.b64decode(turns[0]["parts"][0]["data"]) == PNG
    assert turns[1]["parts"] == [{"type": "tool_call", "id": "c1", "name": "time__get_current_time",
                                  "arguments": '{"timezone": "UTC"}'}]
    assert turns[2]["role"] == "tool" and turns[2]["parts"][0]["content"].startswith("12:00 UTC")
    store.close()
