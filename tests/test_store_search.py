"""`history search` in every script: the trigram index (schema 2), the bounded scan for short
queries, and the migration that reindexes a database written with the schema-1 word index."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcli.history import commands as history
from chatcli.history import store as store_module
from chatcli.history.store import SCHEMA_VERSION, Store
from chatcli.turn import Turn
from tests.support.store_schema1 import make_old_database

SENTENCES = [
    "我们的数据库很快,但是索引需要重建",
    "コーヒー☕を飲みながら書いた",
    "リリースしました🎉 おめでとう",
    "I store everything in sqlite these days",
    "漢字を書く練習",
    "La Première fois que j'ai vu Paris",
    "plain english about nothing in particular",
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "data") as opened:
        rec = opened.recorder()
        for text in SENTENCES:
            rec.record(Turn("user", text))
        yield opened


@pytest.mark.parametrize("query, expected", [
    ("数据库", SENTENCES[0]),   # CJK inside a sentence: no spaces around the word
    ("☕", SENTENCES[1]),       # one symbol: shorter than a trigram, the scan finds it
    ("🎉", SENTENCES[2]),
    ("sql", SENTENCES[3]),     # a fragment of a word
    ("SQLite", SENTENCES[3]),  # case folded
    ("漢", SENTENCES[4]),       # one character of a two-character word
    ("漢字", SENTENCES[4]),
    ("mière", SENTENCES[5]),   # the end of a word with an accent
    ("PREMIÈRE", SENTENCES[5]),
    ("数据库 索引", SENTENCES[0]),  # every piece must be there, in any order
    ("☕ コーヒー", SENTENCES[1]),    # a short piece filters the index's matches
])
def test_search_finds_substrings_in_any_script(store: Store, query: str, expected: str) -> None:
    hits = store.search(query)
    assert [hit.snippet("", "") for hit in hits] == [expected]


def test_search_misses_what_is_not_there(store: Store) -> None:
    assert store.search("数据仓库") == []
    assert store.search("☕ 🎉") == []  # both pieces required, in no one turn
    assert store.search("qlx") == []


def test_search_marks_the_matched_substring(store: Store) -> None:
    [hit] = store.search("数据库")
    assert ("数据库", True) in hit.parts
    [hit] = store.search("漢")
    assert ("漢", True) in hit.parts
    out = io.StringIO()
    assert history.search_cmd(store, "sql", out) == 1
    assert "[sql]ite" in out.getvalue()


def test_a_short_query_scans_only_the_newest_turns_and_says_so(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "SHORT_SCAN_TURNS", 5)
    with Store.open(tmp_path / "d") as opened:
        rec = opened.recorder()
        rec.record(Turn("user", "old ☕ message"))
        for i in range(10):
            rec.record(Turn("user", f"filler {i}"))
        assert opened.search("☕") == []  # beyond the bound
        assert opened.short_scan_bounded("☕")
        assert [h.snippet("", "") for h in opened.search("old ☕")] == ["old ☕ message"]  # the index has no bound
        assert not opened.short_scan_bounded("old ☕")
        out = io.StringIO()
        history.search_cmd(opened, "☕", out)
        assert "newest 5 turns only" in out.getvalue()


def test_a_schema_1_database_is_migrated_and_reindexed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_old_database(data, SENTENCES)
    with Store.open(data) as opened:
        conn = opened._conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'turns_fts'").fetchone()[0]
        assert "trigram" in sql
        assert conn.execute("SELECT count(*) FROM turns_fts").fetchone()[0] == len(SENTENCES)
        for query, expected in (("数据库", 0), ("sql", 3), ("mière", 5), ("☕", 1), ("漢", 4)):
            assert [h.snippet("", "") for h in opened.search(query)] == [SENTENCES[expected]], query
        # The triggers were recreated for the new index: new, changed and deleted turns stay in step.
        rec = opened.recorder("0badc0de")
        turn = Turn("user", "新しいデータベース")
        rec.record(turn)
        assert len(opened.search("データベース")) == 1
        turn.content = "changed to something else"
        rec.record(turn)
        assert opened.search("データベース") == [] and len(opened.search("something")) == 1
        rec.forget(turn)
        assert opened.search("something") == []
        assert conn.execute("INSERT INTO turns_fts (turns_fts) VALUES ('integrity-check')") is not None
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Store.open(data) as again:  # already migrated: opens as it is
        assert len(again.search("数据库")) == 1
