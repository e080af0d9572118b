"""History store at scale: 10,000 conversations / 200,000 turns, then open+list and search timings.

    python benchmarks/store_bench.py [--conversations 10000] [--turns-per 20] [--keep DIR]

Targets: open + list (newest 50) <= 100 ms, search <= 300 ms. The database is built directly with
executemany inside one transaction, in a temp dir, with the schema-1 tables and word (unicode61)
index chatcli used before the trigram index; then `Store.open` migrates it (schema 2: the index is
rebuilt as trigram) and the file is vacuumed, so the run reports the migration's time and the
database size before and after. About 1 turn in 50 holds Chinese, Japanese or emoji text, so the
CJK, emoji and word-fragment queries have something to find.
Each figure is the median of several runs, each run with a freshly opened Store (so it includes
the open, the schema check and a cold statement cache, but not a cold OS page cache).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatcli.history.commands import list_cmd, search_cmd
from chatcli.history.store import Store

LIST_TARGET_MS = 100.0
SEARCH_TARGET_MS = 300.0

_VOCABULARY = (
    "python rust async await function class module import error exception stream token model reply "
    "database index query table column schema migration terminal render markdown panel cursor escape "
    "sequence unicode emoji string bytes buffer socket request response header status retry timeout "
    "context window budget trim history session provider anthropic openai local llama server client "
    "the a of to and in is it that for on with as this be are was by at or from an not but can will "
    "you your we our they their what how why when where which who explain write fix test build run"
)
_WORDS = _VOCABULARY.split()
_RARE = ["zanzibar", "quokka", "xylophone", "kumquat", "fjord"]
#: Sentences as they come, without spaces between words (what the word tokenizer could not split).
_CJK = ["我们的数据库很快", "请解释这个错误信息", "漢字を書く練習をします", "データベースの索引を作る",
        "コーヒー☕を飲みながら", "完成しました🎉", "모델의 응답이 느립니다", "La Première fois avec sqlite"]


def _text(rng: random.Random, words: int) -> str:
    out = rng.choices(_WORDS, k=words)
    if rng.random() < 0.01:
        out[rng.randrange(words)] = rng.choice(_RARE)
    if rng.random() < 0.02:
        out[rng.randrange(words)] = rng.choice(_CJK)
    return " ".join(out)


# Schema 1 as released (the unicode61 word index); `Store.open` migrates it.
_V1 = (
    """CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
        updated REAL NOT NULL, model TEXT, provider TEXT)""",
    "CREATE INDEX conversations_updated ON conversations (updated DESC)",
    """CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, role TEXT NOT NULL CHECK (role IN ('user', 'assistant')), content TEXT NOT NULL,
        reasoning TEXT NOT NULL DEFAULT '', finish_reason TEXT, finish_raw TEXT, finish_detail TEXT,
        provider TEXT, model TEXT, system TEXT, input_tokens INTEGER, output_tokens INTEGER, ttft REAL,
        duration REAL, created REAL NOT NULL, UNIQUE (conversation_id, seq))""",
    "CREATE VIRTUAL TABLE turns_fts USING fts5(content, content='turns', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    """CREATE TRIGGER turns_ai AFTER INSERT ON turns BEGIN
        INSERT INTO turns_fts (rowid, content) VALUES (new.id, new.content); END""",
    """CREATE TRIGGER turns_ad AFTER DELETE ON turns BEGIN
        INSERT INTO turns_fts (turns_fts, rowid, content) VALUES ('delete', old.id, old.content); END""",
    """CREATE TRIGGER turns_au AFTER UPDATE OF content ON turns BEGIN
        INSERT INTO turns_fts (turns_fts, rowid, content) VALUES ('delete', old.id, old.content);
        INSERT INTO turns_fts (rowid, content) VALUES (new.id, new.content); END""",
    "PRAGMA user_version = 1",
)


def build(data: Path, conversations: int, turns_per: int, seed: int = 7) -> float:
    """Build a schema-1 database (the word index filled by its triggers)."""
    rng = random.Random(seed)
    started = time.perf_counter()
    data.mkdir(parents=True, mode=0o700)
    (data / "history.db").touch(mode=0o600)
    conn = sqlite3.connect(data / "history.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in _V1:
        conn.execute(statement)
    now = time.time() - conversations * 60
    conn.execute("BEGIN IMMEDIATE")
    conv_rows = []
    turn_rows = []
    for c in range(conversations):
        conv_id = f"{c:08x}"
        created = now + c * 60
        conv_rows.append((conv_id, _text(rng, 8)[:80], created, created + turns_per * 5, "gpt-4o", "openai"))
        for s in range(turns_per):
            role = "user" if s % 2 == 0 else "assistant"
            words = rng.randint(5, 40) if role == "user" else rng.randint(40, 160)
            turn_rows.append((conv_id, s + 1, role, _text(rng, words), "", None if role == "user" else "stop",
                              None if role == "user" else "stop", None, "openai", "gpt-4o", None,
                              None if role == "user" else 1000, None if role == "user" else 300,
                              None if role == "user" else 0.4, None if role == "user" else 3.1,
                              created + s * 5))
    conn.executemany("INSERT INTO conversations (id, title, created, updated, model, provider) "
                     "VALUES (?, ?, ?, ?, ?, ?)", conv_rows)
    conn.executemany(
        "INSERT INTO turns (conversation_id, seq, role, content, reasoning, finish_reason, finish_raw, "
        "finish_detail, provider, model, system, input_tokens, output_tokens, ttft, duration, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", turn_rows)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def migrate(data: Path) -> float:
    """Open with this chatcli (schema 1 -> 2: the trigram index is rebuilt), then vacuum."""
    started = time.perf_counter()
    Store.open(data).close()
    took = time.perf_counter() - started
    conn = sqlite3.connect(data / "history.db", isolation_level=None)
    conn.execute("VACUUM")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return took


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def _median_ms(action: object, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--turns-per", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="build here and keep the database")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="chatcli-bench-"))
    data = args.keep or tmp / "data"
    try:
        built = build(data, args.conversations, args.turns_per)
        before_mb = (data / "history.db").stat().st_size / 1e6
        print(f"built {args.conversations:,} conversations / {args.conversations * args.turns_per:,} turns "
              f"with the schema-1 word index in {built:.1f} s ({before_mb:.0f} MB)")
        migrated = migrate(data)
        after_mb = (data / "history.db").stat().st_size / 1e6
        print(f"migrated to schema 2 (trigram index) in {migrated:.1f} s; database {before_mb:.0f} MB -> "
              f"{after_mb:.0f} MB after VACUUM ({after_mb / before_mb:.2f}x)")

        def open_list() -> None:
            with Store.open(data) as store:
                assert len(store.list_conversations(limit=50)) == 50

        def open_list_cmd() -> None:
            with Store.open(data) as store:
                list_cmd(store, _Null(), limit=50)  # type: ignore[arg-type]

        results = [("open + list newest 50", _median_ms(open_list), LIST_TARGET_MS),
                   ("open + `history list` output", _median_ms(open_list_cmd), LIST_TARGET_MS)]
        # CJK inside a sentence, emoji, word fragments, a fragment found nowhere (every trigram of
        # it common: the index's worst case), and pieces shorter than 3 characters (no trigram:
        # the bounded scan; "=>" is found nowhere, so the scan reads all of its bound).
        queries = ("quokka", "database index", "the", "explain python error", '"-x" AND *',
                   "数据库", "漢字", "漢", "☕", "🎉", "sql", "mière", "ase ind", "thetokenmodel",
                   "データ python", "=>")
        for query in queries:
            def search(query: str = query) -> None:
                with Store.open(data) as store:
                    store.search(query, limit=20)
            results.append((f"open + search {query!r}", _median_ms(search), SEARCH_TARGET_MS))
        with Store.open(data) as store:
            for query in ("数据库", "漢", "☕", "🎉", "sql", "mière"):
                assert store.search(query, limit=20), f"{query!r} found nothing"

        def search_cmd_run() -> None:
            with Store.open(data) as store:
                search_cmd(store, "database index", _Null(), limit=20)  # type: ignore[arg-type]
        results.append(("open + `history search` output", _median_ms(search_cmd_run), SEARCH_TARGET_MS))

        failed = False
        for name, ms, target in results:
            ok = ms <= target
            failed |= not ok
            print(f"{name:<40} {ms:8.1f} ms   target <= {target:.0f} ms   {'ok' if ok else 'OVER'}")
        return 1 if failed else 0
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
