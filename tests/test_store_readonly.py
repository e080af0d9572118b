"""A history this user cannot write (directory 0500, database 0400) can still be read.

Tests run as root, and root ignores permission bits, so the checks run as `nobody`: in a forked
child that drops its uid (store, `history` functions, `/history`, and an in-process
run of the real CLI in such a child (its output and its message). As an ordinary user they run
directly: the permission bits then apply to the test process itself.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcli import fsperm
from chatcli.errors import StoreError
from chatcli.history import commands as history
from chatcli.history.store import Store, open_for_chat
from chatcli.repl.commands import ReplState, dispatch
from chatcli.session import Session
from chatcli.settings import Settings
from chatcli.turn import Turn
from tests.support.fakes import FakeProvider
from tests.support.nobody import AS_ROOT, NOBODY, as_nobody, traversable_dir
from tests.support.runner import run
from tests.support.store_schema1 import make_old_database

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")



@pytest.fixture
def base() -> Iterator[Path]:
    with traversable_dir() as where:
        yield where


@pytest.fixture(autouse=True)
def _reset_permission_warnings() -> Iterator[None]:
    fsperm._warned.clear()
    yield
    fsperm._warned.clear()


def _saved_history(data: Path) -> str:
    with Store.open(data) as store:
        rec = store.recorder()
        rec.record(Turn("user", "我们的数据库很快 ☕", provider="openai", model="gpt-4o-mini"))
        rec.record(Turn("assistant", "yes it is", provider="openai", model="gpt-4o-mini", finish_reason="stop"))
        assert rec.conversation_id
        return rec.conversation_id


def _make_read_only(data: Path) -> None:
    if AS_ROOT:
        for path in (data, *data.iterdir()):
            os.chown(path, NOBODY, NOBODY)
    (data / "history.db").chmod(0o400)
    data.chmod(0o500)


def _reads_everything(data: str, conv: str) -> None:
    before = sorted(os.listdir(data))
    assert not os.access(Path(data) / "history.db", os.W_OK)  # really not writable for this process
    store = Store.open(Path(data))
    assert store.read_only is not None and "not writable" in store.read_only
    [row] = store.list_conversations()
    assert row.id == conv and row.title == "我们的数据库很快 ☕"
    assert [t.content for t in store.load_turns(conv)] == ["我们的数据库很快 ☕", "yes it is"]
    assert len(store.search("数据库")) == 1 and len(store.search("☕")) == 1
    out = io.StringIO()
    history.list_cmd(store, out)
    assert conv in out.getvalue() and "openai:gpt-4o-mini" in out.getvalue()
    out = io.StringIO()
    history.show_cmd(store, conv[:4], out)
    assert "yes it is" in out.getvalue()
    with pytest.raises(StoreError, match="read-only"):
        store.delete(conv)
    store.recorder().record(Turn("user", "not saved"))  # never raises; nothing is written
    assert not store.saving
    store.close()
    assert sorted(os.listdir(data)) == before  # no -wal, -shm or journal left behind

    said: list[str] = []
    chat_store = open_for_chat(Path(data), warn=said.append)
    assert chat_store is not None
    assert len(said) == 1 and "read-only" in said[0] and "not writable" in said[0], said
    assert "readonly database" not in said[0]
    state = ReplState(session=Session(FakeProvider(), model="m"), settings=Settings(), err=io.StringIO(),
                      store=chat_store)
    dispatch(state, "/history")
    shown = state.err.getvalue()  # type: ignore[attr-defined]
    assert conv in shown and "--no-save" not in shown
    chat_store.close()


def test_a_read_only_history_is_read(base: Path) -> None:
    data = base / "d"
    conv = _saved_history(data)
    _make_read_only(data)
    as_nobody(_reads_everything, str(data), conv)


def _reads_schema_1(data: str) -> None:
    store = Store.open(Path(data))
    assert store._conn.execute("PRAGMA user_version").fetchone()[0] == 1  # no migration without write access
    assert [h.snippet("", "") for h in store.search("数据库")] == ["我们的数据库很快"]  # the scan stands in
    assert [h.snippet("", "") for h in store.search("sql")] == ["I use sqlite"]
    store.close()


def test_a_read_only_schema_1_history_is_read_without_migrating(base: Path) -> None:
    data = base / "d"
    make_old_database(data, ["我们的数据库很快", "I use sqlite"])
    _make_read_only(data)
    as_nobody(_reads_schema_1, str(data))


def _cli(environ: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`chatcli ARGS` in this process (tests/support/runner.py: the real CLI, Typer, the app, the
    error reporting), run from HOME: the .env lookup reads the working directory."""
    result = run(list(args), environ, cwd=environ["HOME"])
    return result.exit_code, result.stdout, result.stderr


def test_history_cli_reads_a_read_only_history_and_names_the_reason(base: Path) -> None:
    data = base / "d"
    conv = _saved_history(data)
    _make_read_only(data)
    home = base / "home"
    home.mkdir()
    if AS_ROOT:
        os.chown(home, NOBODY, NOBODY)
    environ = {"PATH": os.environ.get("PATH", ""), "CHATCLI_HOME": str(data), "HOME": str(home),
               "XDG_CONFIG_HOME": str(home / "config"), "TERM": "dumb"}

    # nobody cannot read the interpreter's own library when it is installed in root's home: import it all now
    if AS_ROOT:
        warm = {**environ, "CHATCLI_HOME": str(base / "warm")}
        _saved_history(base / "warm")
        for args in (["history", "list"], ["history", "search", "数据库"], ["history", "delete", "0", "--yes"]):
            _cli(warm, *args)
    code, out, err = as_nobody(_cli, environ, "history", "list")
    assert code == 0, err
    assert conv in out and "openai:gpt-4o-mini" in out and "readonly" not in err
    code, out, err = as_nobody(_cli, environ, "history", "search", "数据库")
    assert code == 0 and conv in out
    code, out, err = as_nobody(_cli, environ, "history", "delete", conv, "--yes")
    assert code == 1
    assert err.count("\n") == 1 and "read-only" in err and "not writable" in err, err
    assert "Traceback" not in err
