"""A history database as chatcli wrote it before schema 2 (the unicode61 word index), for the
migration tests: the DDL is schema 1 exactly as released."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# Schema 1 exactly as released (chatcli/history/store.py before the trigram index).
OLD_SCHEMA = (
    """CREATE TABLE conversations (
        id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
        updated REAL NOT NULL, model TEXT, provider TEXT)""",
    "CREATE INDEX conversations_updated ON conversations (updated DESC)",
    """CREATE TABLE turns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL, reasoning TEXT NOT NULL DEFAULT '', finish_reason TEXT, finish_raw TEXT,
        finish_detail TEXT, provider TEXT, model TEXT, system TEXT, input_tokens INTEGER,
        output_tokens INTEGER, ttft REAL, duration REAL, created REAL NOT NULL,
        UNIQUE (conversation_id, seq))""",
    "CREATE VIRTUAL TABLE turns_fts USING fts5("
    "content, content='turns', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    """CREATE TRIGGER turns_ai AFTER INSERT ON turns BEGIN
        INSERT INTO turns_fts (rowid, content) VALUES (new.id, new.content);
    END""",
    """CREATE TRIGGER turns_ad AFTER DELETE ON turns BEGIN
        INSERT INTO turns_fts (turns_fts, rowid, content) VALUES ('delete', old.id, old.content);
    END""",
    """CREATE TRIGGER turns_au AFTER UPDATE OF content ON turns BEGIN
        INSERT INTO turns_fts (turns_fts, rowid, content) VALUES ('delete', old.id, old.content);
        INSERT INTO turns_fts (rowid, content) VALUES (new.id, new.content);
    END""",
    "PRAGMA user_version = 1",
)


def make_old_database(data: Path, sentences: list[str]) -> None:
    data.mkdir(mode=0o700)
    (data / "history.db").touch(mode=0o600)
    conn = sqlite3.connect(data / "history.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in OLD_SCHEMA:
        conn.execute(statement)
    conn.execute("INSERT INTO conversations VALUES ('0badc0de', 'old one', 1.0, 2.0, 'gpt-4o', 'openai')")
    for seq, text in enumerate(sentences, 1):
        conn.execute("INSERT INTO turns (conversation_id, seq, role, content, created) VALUES (?, ?, 'user', ?, ?)",
                     ("0badc0de", seq, text, float(seq)))
    conn.close()
