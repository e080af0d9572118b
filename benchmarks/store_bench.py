"""History store at scale: 10,000 conversations / 200,000 turns, then open+list and search timings.

    python benchmarks/store_bench.py [--conversations 10000] [--turns-per 20] [--keep DIR]

Targets: open + list (newest 50) <= 100 ms, search <= 300 ms. The database is built directly with
executemany inside one transaction (the FTS triggers still index every turn), in a temp dir.
Each figure is the median of several runs, each run with a freshly opened Store (so it includes
the open, the schema check and a cold statement cache, but not a cold OS page cache).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatcli.history import list_cmd, search_cmd
from chatcli.store import Store

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


def _text(rng: random.Random, words: int) -> str:
    out = rng.choices(_WORDS, k=words)
    if rng.random() < 0.01:
        out[rng.randrange(words)] = rng.choice(_RARE)
    return " ".join(out)


def build(data: Path, conversations: int, turns_per: int, seed: int = 7) -> float:
    rng = random.Random(seed)
    started = time.perf_counter()
    store = Store.open(data)
    conn = store._conn
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
    store.close()
    return time.perf_counter() - started


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
        size_mb = (data / "history.db").stat().st_size / 1e6
        print(f"built {args.conversations:,} conversations / {args.conversations * args.turns_per:,} turns "
              f"in {built:.1f} s ({size_mb:.0f} MB)")

        def open_list() -> None:
            with Store.open(data) as store:
                assert len(store.list_conversations(limit=50)) == 50

        def open_list_cmd() -> None:
            with Store.open(data) as store:
                list_cmd(store, _Null(), limit=50)  # type: ignore[arg-type]

        results = [("open + list newest 50", _median_ms(open_list), LIST_TARGET_MS),
                   ("open + `history list` output", _median_ms(open_list_cmd), LIST_TARGET_MS)]
        # The last one has nothing the FTS tokenizer indexes: the literal LIKE scan (worst case).
        for query in ("quokka", "database index", "the", "explain python error", '"-x" AND *', "=>"):
            def search(query: str = query) -> None:
                with Store.open(data) as store:
                    store.search(query, limit=20)
            results.append((f"open + search {query!r}", _median_ms(search), SEARCH_TARGET_MS))

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
