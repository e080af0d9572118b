"""The store when things go wrong: full or read-only disks, corrupt files, permissions, two writers."""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcli import fsperm
from chatcli.errors import StoreError
from chatcli.events import Finish, TextDelta
from chatcli.history.store import Store, open_for_chat
from chatcli.session import Session
from chatcli.turn import Turn
from tests.support.fakes import FakeProvider
from tests.support.store_faults import FailingConnection
from tests.support.store_faults import failing_connect as _failing_connect


@pytest.fixture(autouse=True)
def _reset_permission_warnings() -> Iterator[None]:
    fsperm._warned.clear()
    yield
    fsperm._warned.clear()


# -- a full or read-only disk while chatting ------------------------------------------------------


@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    sqlite3.OperationalError("database or disk is full"),
    sqlite3.OperationalError("attempt to write a readonly database"),
    sqlite3.DatabaseError("database disk image is malformed"),
])
def test_write_failure_warns_once_and_the_chat_goes_on(tmp_path: Path, failure: BaseException) -> None:
    said: list[str] = []
    store = Store.open(tmp_path / "d", warn=said.append, connect=_failing_connect)
    recorder = store.recorder()
    session = Session(FakeProvider().reply("one").reply("two").reply("three"), model="m", recorder=recorder)
    list(session.send("first"))
    conv = recorder.conversation_id or ""
    conn = store._conn
    assert isinstance(conn, FailingConnection)
    conn.fail = failure
    # Both replies still stream; the recorder never raises.
    assert [e for e in session.send("second") if isinstance(e, TextDelta)] == [TextDelta("two")]
    assert [e for e in session.send("third") if isinstance(e, TextDelta)] == [TextDelta("three")]
    session.undo()
    assert not store.saving
    assert len(said) == 1
    assert str(tmp_path / "d" / "history.db") in said[0] and "no longer being saved" in said[0]
    conn.fail = None
    # Nothing half-written: the first exchange is intact, nothing after it was saved.
    assert [t.content for t in store.load_turns(conv)] == ["first", "one"]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Saving stays off for the rest of the process, even for a new conversation.
    other = store.recorder()
    other.record(Turn("user", "x"))
    assert other.conversation_id is None and len(said) == 1


def _full_disk_store(tmp_path: Path) -> tuple[Store, FailingConnection, list[str]]:
    """A store whose writes now fail with ENOSPC, and the list its warnings go to."""
    said: list[str] = []
    store = Store.open(tmp_path / "d", warn=said.append, connect=_failing_connect)
    conn = store._conn
    assert isinstance(conn, FailingConnection)
    conn.fail = OSError(errno.ENOSPC, "No space left on device")
    return store, conn, said


def test_a_failed_first_record_leaves_no_conversation_behind(tmp_path: Path) -> None:
    store, conn, said = _full_disk_store(tmp_path)
    turn = Turn("user", "hello")
    recorder = store.recorder()
    recorder.record(turn)
    assert turn.id is None and recorder.conversation_id is None
    conn.fail = None
    assert store.list_conversations() == []
    assert len(said) == 1 and "No space left on device" in said[0]


def test_prepare_writes_on_a_failing_disk_warns_once_and_the_chat_goes_on(tmp_path: Path) -> None:
    store, conn, said = _full_disk_store(tmp_path)
    store.prepare_writes()
    assert not store.saving
    assert len(said) == 1 and "No space left on device" in said[0]
    session = Session(FakeProvider().reply("still answering"), model="m", recorder=store.recorder())
    assert [e for e in session.send("hi") if isinstance(e, TextDelta)] == [TextDelta("still answering")]
    assert len(said) == 1
    conn.fail = None
    assert store.list_conversations() == []


def _mount_tiny_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, check=False)
    return done.returncode == 0


def test_a_really_full_disk(tmp_path: Path) -> None:
    """A real ENOSPC from a tiny tmpfs (needs root and mount; skipped elsewhere)."""
    mnt = tmp_path / "tiny"
    if not _mount_tiny_tmpfs(mnt, "256k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        said: list[str] = []
        store = Store.open(mnt / "data", warn=said.append)
        recorder = store.recorder()
        recorder.record(Turn("user", "before the disk filled up"))
        conv = recorder.conversation_id or ""
        with open(mnt / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        session = Session(FakeProvider().reply("z" * 200_000), model="m", recorder=recorder,
                          turns=store.load_turns(conv))
        events = list(session.send("y" * 200_000))
        assert any(isinstance(e, Finish) and e.reason == "stop" for e in events)
        assert not store.saving and len(said) == 1 and "full" in said[0].lower()
        os.unlink(mnt / "filler")
        assert [t.content for t in store.load_turns(conv)] == ["before the disk filled up"]
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _read_only_scenario(data: str) -> None:
    """Open a history in a read-only directory: one warning, no crash, no store (or no saving)."""
    said: list[str] = []
    store = open_for_chat(Path(data), warn=said.append)
    if store is not None:  # some SQLite builds open it read-only: then the first write fails once
        store.recorder().record(Turn("user", "x"))
        store.recorder().record(Turn("user", "y"))
        assert not store.saving
    assert len(said) == 1, said
    assert str(Path(data) / "history.db") in said[0]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_read_only_directory() -> None:
    """Root ignores permissions, so as root the scenario runs in a forked child that drops to nobody."""
    base = Path(tempfile.mkdtemp(prefix="chatcli-ro-"))
    try:
        base.chmod(0o711)
        data = base / "d"
        Store.open(data).close()
        as_root = os.geteuid() == 0
        if as_root:
            for path in (data, *data.iterdir()):
                os.chown(path, 65534, 65534)
        (data / "history.db").chmod(0o400)
        data.chmod(0o500)
        if not as_root:
            _read_only_scenario(str(data))
            return
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=_drop_privileges_and_run, args=(str(data),))
        child.start()
        child.join(60)
        assert child.exitcode == 0
    finally:
        for path in (base, *base.rglob("*")):
            with contextlib.suppress(OSError):
                path.chmod(0o700)
        shutil.rmtree(base, ignore_errors=True)


def _drop_privileges_and_run(data: str) -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    _read_only_scenario(data)


def test_a_directory_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as raised:
        Store.open(blocker / "data")
    assert str(blocker / "data" / "history.db") in raised.value.message
    said: list[str] = []
    assert open_for_chat(blocker / "data", warn=said.append) is None and len(said) == 1


# -- a corrupt file at start-up ------------------------------------------------------------------


def _valid_db(data: Path) -> Path:
    with Store.open(data) as store:
        rec = store.recorder()
        for i in range(200):
            rec.record(Turn("user", f"turn {i} " + "lorem ipsum " * 50))
    return data / "history.db"


@pytest.mark.parametrize("damage", ["garbage", "empty-header", "truncated", "scribbled"])
def test_a_corrupt_file_is_moved_aside_and_a_fresh_one_started(tmp_path: Path, damage: str) -> None:
    data = tmp_path / "d"
    if damage == "garbage":
        data.mkdir(mode=0o700)
        path = data / "history.db"
        path.write_bytes(os.urandom(8192))
        path.chmod(0o600)
    else:
        path = _valid_db(data)
        blob = bytearray(path.read_bytes())
        if damage == "empty-header":
            blob[:100] = b"\0" * 100
        elif damage == "truncated":
            blob = blob[: 1024 + 100]
        else:  # the schema page overwritten: the header is fine, the catalog is not
            blob[100:4096] = os.urandom(4096 - 100)
        path.write_bytes(bytes(blob))
    original = path.read_bytes()
    said: list[str] = []
    store = Store.open(data, warn=said.append)
    backups = sorted(data.glob("history.db.corrupt-*"))
    assert [b for b in backups if not b.name.endswith(("-wal", "-shm"))], "a backup is kept"
    backup = next(b for b in backups if not b.name.endswith(("-wal", "-shm")))
    assert backup.read_bytes() == original  # never overwritten
    assert len(said) == 1 and str(path) in said[0] and str(backup) in said[0]
    assert re.fullmatch(r"history\.db\.corrupt-\d{8}-\d{6}", backup.name)
    # The fresh database works and is private.
    rec = store.recorder()
    rec.record(Turn("user", "after"))
    assert [c.title for c in store.list_conversations()] == ["after"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.close()


def test_two_corruptions_in_the_same_second_keep_both_backups(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir(mode=0o700)
    for _ in range(2):
        (data / "history.db").write_bytes(b"garbage" * 1000)
        Store.open(data, warn=lambda _m: None).close()
    assert len([b for b in data.glob("history.db.corrupt-*") if not b.name.endswith(("-wal", "-shm"))]) == 2


# -- permissions -----------------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_new_files_are_private_under_umask_022(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        data = tmp_path / "a" / "b" / "data"
        said: list[str] = []
        with Store.open(data, warn=said.append) as store:
            store.recorder().record(Turn("user", "secret"))
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
            assert modes == {"history.db": 0o600, "history.db-wal": 0o600, "history.db-shm": 0o600}
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
        assert said == []
        # The process umask is put back.
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_existing_open_files_are_warned_about_not_changed(tmp_path: Path) -> None:
    data = tmp_path / "d"
    Store.open(data).close()
    data.chmod(0o755)
    (data / "history.db").chmod(0o644)
    said: list[str] = []
    Store.open(data, warn=said.append).close()
    assert any(str(data) in m and "0755" in m and "chmod 700" in m for m in said)
    assert any(str(data / "history.db") in m and "0644" in m and "chmod 600" in m for m in said)
    assert stat.S_IMODE((data / "history.db").stat().st_mode) == 0o644  # the user's call
    Store.open(data, warn=said.append).close()
    assert len(said) == 2  # once per file per process


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_fsperm_helpers(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        target = tmp_path / "config.toml"
        assert fsperm.create_private_file(target)
        assert not fsperm.create_private_file(target)
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        fsperm.write_private(tmp_path / "other.toml", "key = 1\n")
        assert stat.S_IMODE((tmp_path / "other.toml").stat().st_mode) == 0o600
        assert (tmp_path / "other.toml").read_text() == "key = 1\n"
        (tmp_path / "other.toml").chmod(0o644)
        fsperm.write_private(tmp_path / "other.toml", b"key = 2\n")  # replaced, private again
        assert stat.S_IMODE((tmp_path / "other.toml").stat().st_mode) == 0o600
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
        with fsperm.private_umask():
            assert os.umask(0o077) == 0o077
        assert os.umask(0o000) == 0o000
        fsperm.ensure_private_dir(tmp_path / "x" / "y")
        assert stat.S_IMODE((tmp_path / "x" / "y").stat().st_mode) == 0o700
    finally:
        os.umask(old)


# -- two processes writing at once ----------------------------------------------------------------

N_RECORDS = 60


def _writer(data: str, shared: str, name: str) -> None:
    said: list[str] = []
    store = Store.open(Path(data), warn=said.append)
    own = store.recorder()
    common = store.recorder(shared)
    for i in range(N_RECORDS):
        own.record(Turn("user", f"{name} own {i}"))
        reply = Turn("assistant", f"{name} partial {i}", finish_reason="length")
        common.record(reply)
        reply.content += " done"
        reply.finish_reason = "stop"
        common.record(reply)  # an update racing the other process's inserts
    store.close()
    if said:
        raise SystemExit(f"warnings: {said}")


def test_two_processes_writing_at_once(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with Store.open(data) as store:
        rec = store.recorder()
        rec.record(Turn("user", "shared start"))
        shared = rec.conversation_id or ""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(data), shared, f"p{n}-{uuid.uuid4().hex[:4]}"))
             for n in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    with Store.open(data) as store:
        conn = store._conn
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("INSERT INTO turns_fts (turns_fts) VALUES ('integrity-check')") is not None
        assert store.count_conversations() == 3
        turns = store.load_turns(shared)
        assert len(turns) == 1 + 2 * N_RECORDS
        assert all(t.content.endswith("done") and t.finish_reason == "stop" for t in turns[1:])
        seqs = [r[0] for r in conn.execute("SELECT seq FROM turns WHERE conversation_id = ? ORDER BY seq",
                                           (shared,))]
        assert seqs == list(range(1, len(seqs) + 1))
        for proc_conv in store.list_conversations():
            if proc_conv.id != shared:
                assert proc_conv.turns == N_RECORDS
        assert len(store.search("partial done", limit=500)) == 2 * N_RECORDS
