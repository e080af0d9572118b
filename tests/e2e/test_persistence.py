"""P1-P5 (the P table of tests/e2e/README.md): the history survives kills, full disks, unusable directories,
concurrent writers and corrupt files — and records partial turns with everything known.

Run against the installed `chatcli` with the loopback server; the database is opened read-only
by the tests (`PRAGMA integrity_check`, then every row).
"""

from __future__ import annotations

import itertools
import os
import resource
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    CHATCLI,
    OPENAI_MODEL,
    assert_no_secret,
    chat_env,
    db_path,
    run_chatcli,
    stored_turns,
)
from tests.support.sse_server import Reply, SSEServer, openai_chunks

ASK = ["ask", "-m", OPENAI_MODEL]


def _integrity(home: Path) -> None:
    conn = sqlite3.connect(f"file:{db_path(home)}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _pairs(home: Path) -> list[tuple[str, str, str | None]]:
    return [(t["role"], t["content"], t["finish_reason"]) for t in stored_turns(home)]


def test_P1_sigkill_at_random_offsets_loses_at_most_the_reply_in_flight(tmp_path: Path) -> None:
    """P1: `chatcli ask -c` killed with SIGKILL at offsets spread over the stream and the final
    write; after every kill the history opens, passes integrity_check, and holds every turn that had
    ended before (plus at most the user turn of the killed run)."""
    offsets = [0.15, 0.55, 0.75, 0.85, 0.95, 1.2]
    chunks = [f"w{i} " for i in range(8)]
    with SSEServer() as server:
        server.default = Reply.sse(openai_chunks(chunks), delay=0.1)  # ~0.8 s of streaming
        env = chat_env(tmp_path, server=server)
        first = run_chatcli([*ASK, "start"], env=env)
        assert first.returncode == 0, first.stderr
        completed = _pairs(tmp_path)
        for n, offset in enumerate(offsets):
            seen = len(server.requests)
            proc = subprocess.Popen([CHATCLI, *ASK, "-c", f"q{n}"], env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                deadline = time.monotonic() + 20
                while len(server.requests) == seen and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(offset)
                proc.send_signal(signal.SIGKILL)
                _, err = proc.communicate(timeout=10)
            finally:
                proc.kill()
            assert b"Traceback" not in err
            _integrity(tmp_path)
            now = _pairs(tmp_path)
            assert now[: len(completed)] == completed, f"an earlier turn was lost after a kill at +{offset}s"
            extra = now[len(completed):]
            # at most: the user turn, and the reply if it had ended (complete) before the kill
            assert extra in ([], [("user", f"q{n}", None)],
                             [("user", f"q{n}", None), ("assistant", "".join(chunks), "stop")]), extra
            completed = now
        # the conversation still resumes after all that
        last = run_chatcli([*ASK, "-c", "final"], env=env)
        assert last.returncode == 0, last.stderr
        messages = server.requests[-1].json["messages"]
        assert messages[0] == {"role": "user", "content": "start"}
        assert messages[-1] == {"role": "user", "content": "final"}
        roles = [m["role"] for m in messages]
        assert all(a != b for a, b in itertools.pairwise(roles)), roles  # alternating
    _integrity(tmp_path)


def _limit_file_size(limit: int):  # type: ignore[no-untyped-def]
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    return set_limit


#: SQLite's -shm index is 32 KB and must be writable for the database to open at all (`-c` reads
#: it); with every file capped there, the WAL has room for 7 pages, fewer than a turn's commit
#: writes (the turn, its FTS trigram rows). A cap at the database's own size no longer failed
#: once the schema grew (the WAL could hold a whole turn).
_SHM_BYTES = 32 * 1024


def test_P2_disk_full_chat_keeps_working_one_warning(tmp_path: Path) -> None:
    """P2 (disk full): file writes fail (RLIMIT_FSIZE at 32 KB, so the WAL cannot take a turn):
    the reply is still printed with exit 0, ONE warning on stderr, and the database still holds
    every earlier turn and passes integrity_check."""
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["first"])), Reply.sse(openai_chunks(["second ", "reply"])))
        env = chat_env(tmp_path, server=server)
        first = run_chatcli([*ASK, "one"], env=env)
        assert first.returncode == 0
        proc = subprocess.run([CHATCLI, *ASK, "-c", "two"], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60, preexec_fn=_limit_file_size(_SHM_BYTES))
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert proc.stdout == b"second reply\n"
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if "histor" in line.lower() or "sav" in line.lower()]
    assert len(warnings) == 1, err
    _integrity(tmp_path)
    assert _pairs(tmp_path)[:2] == [("user", "one", None), ("assistant", "first", "stop")]


def test_P2_unusable_data_dir_chat_keeps_working(tmp_path: Path) -> None:
    """P2 (read-only / unusable history dir): CHATCLI_HOME under a regular file cannot be created
    (the tests run as root, so chmod alone would not stop writes): the reply is printed, exit 0,
    one line saying the conversation is not saved, no traceback."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["still ", "here"])))
        env = chat_env(tmp_path, server=server, extra={"CHATCLI_HOME": str(blocker / "data")})
        res = run_chatcli([*ASK, "hi"], env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "still here\n"
    assert "Traceback" not in res.stderr
    notes = [line for line in res.err_lines() if not line.startswith("[")]
    assert len(notes) == 1 and str(blocker) in notes[0], res.stderr


def test_P3_two_processes_append_to_one_conversation(tmp_path: Path) -> None:
    """P3: two `chatcli ask -r ID` at the same time on one conversation: both succeed, all four new
    turns are stored, seq numbers unique, integrity ok."""
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["base"])))
        env = chat_env(tmp_path, server=server)
        assert run_chatcli([*ASK, "base"], env=env).returncode == 0
        conv = stored_turns(tmp_path)[0]["conversation_id"]
        server.default = Reply.sse(openai_chunks(["par", "allel"]), delay=0.05)
        results: list[int] = []

        def one(n: int) -> None:
            results.append(run_chatcli([*ASK, "-r", conv, f"p{n}"], env=env).returncode)

        threads = [threading.Thread(target=one, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(70)
    assert results == [0, 0]
    _integrity(tmp_path)
    turns = [t for t in stored_turns(tmp_path) if t["conversation_id"] == conv]
    assert len(turns) == 6
    assert len({t["seq"] for t in turns}) == 6
    assert sorted(t["content"] for t in turns if t["role"] == "user") == ["base", "p0", "p1"]


def test_P4_corrupt_database_is_moved_aside_not_overwritten(tmp_path: Path) -> None:
    """P4: a corrupt history file: start-up does not crash, the file is kept byte for byte under a
    new name that the warning names, and a fresh history works."""
    data = tmp_path / "chatcli-data"
    data.mkdir(mode=0o700)
    garbage = b"SQLite format 3\x00" + os.urandom(3000)
    db_path(tmp_path).write_bytes(garbage)
    os.chmod(db_path(tmp_path), 0o600)
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["fresh"])))
        env = chat_env(tmp_path, server=server)
        listing = run_chatcli(["history", "list"], env=env)
        res = run_chatcli([*ASK, "hi"], env=env)
    assert "Traceback" not in listing.stderr + res.stderr
    assert res.returncode == 0, res.stderr
    assert res.stdout == "fresh\n"
    backups = [p for p in data.iterdir() if p.name.startswith("history.db.corrupt")]
    assert len(backups) == 1, list(data.iterdir())
    assert backups[0].read_bytes() == garbage
    assert str(backups[0].name) in listing.stderr + res.stderr
    _integrity(tmp_path)
    assert _pairs(tmp_path) == [("user", "hi", None), ("assistant", "fresh", "stop")]


@pytest.mark.parametrize("finish", ["length", "interrupted-by-error"])
def test_P5_partial_turns_are_stored_with_all_facts(tmp_path: Path, finish: str) -> None:
    """P5: partial turns carry finish_reason and raw value, provider, model, usage (when known),
    time to first token and duration."""
    with SSEServer() as server:
        if finish == "length":
            server.add(Reply.sse(openai_chunks(["Hel", "lo"], finish="length", usage=(9, 4))))
        else:
            server.add(Reply.sse(openai_chunks(["Hel", "lo"], finish=None, done=False), cut=True))
        res = run_chatcli([*ASK, "hi"], env=chat_env(tmp_path, server=server))
    assert res.returncode == 3
    assert_no_secret(res.out, res.err)
    reply = stored_turns(tmp_path)[-1]
    assert reply["role"] == "assistant" and reply["content"] == "Hello"
    assert reply["provider"] == "openai" and reply["model"] == "gpt-test"
    assert reply["ttft"] is not None and reply["duration"] is not None and reply["duration"] >= reply["ttft"]
    if finish == "length":
        assert (reply["finish_reason"], reply["finish_raw"]) == ("length", "length")
        assert (reply["input_tokens"], reply["output_tokens"]) == (9, 4)
    else:
        assert reply["finish_reason"] == "error"
        assert "connection lost" in (reply["finish_detail"] or "")


def test_failed_request_then_continue_sends_a_valid_history(tmp_path: Path) -> None:
    """A request that failed before any text (401), then a partial reply (connection lost), then
    `ask -c`: the store keeps all of it (the failed reply as an empty `error` turn, never `stop`),
    and the next request is still valid — roles alternate, no empty assistant message, the
    partial reply is included."""
    with SSEServer() as server:
        server.add(Reply.error(401, "bad key", code="invalid_api_key"),
                   Reply.sse(openai_chunks(["Part", "ial"], finish=None, done=False), cut=True),
                   Reply.sse(openai_chunks(["Done."])))
        env = chat_env(tmp_path, server=server)
        assert run_chatcli([*ASK, "one"], env=env).returncode == 1
        assert run_chatcli([*ASK, "-c", "two"], env=env).returncode == 3
        last = run_chatcli([*ASK, "-c", "three"], env=env)
        assert last.returncode == 0, last.stderr
        messages = server.requests[-1].json["messages"]
    pairs = _pairs(tmp_path)
    assert [p for p in pairs if p[0] == "user"] == [("user", m, None) for m in ("one", "two", "three")]
    assert ("assistant", "Partial", "error") in pairs and ("assistant", "Done.", "stop") in pairs
    assert not [p for p in pairs if p[0] == "assistant" and not p[1] and p[2] == "stop"]
    roles = [m["role"] for m in messages]
    assert roles[-1] == "user" and all(a != b for a, b in itertools.pairwise(roles)), messages
    assert all(m["content"].strip() for m in messages), messages
    assert {"role": "assistant", "content": "Partial"} in messages
