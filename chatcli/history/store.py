"""SQLite persistence of conversations and turns (`<data dir>/history.db`).

Why SQLite and how it is used (docs/architecture.md, "File integrity"; cases P1-P5 of tests/e2e/README.md):

* WAL journal, one IMMEDIATE transaction per recorded turn, committed at once with
  `synchronous=FULL`: a SIGKILL (or a power cut) loses at most the reply still streaming, never a
  turn that had ended. IMMEDIATE takes the write lock up front, so two chatcli processes writing
  at once wait for each other through `busy_timeout` instead of failing with SQLITE_BUSY.
* The directory is 0700 and the database 0600 from creation on: the file is created with
  `os.open(..., 0o600)` before SQLite opens it, and SQLite is opened under umask 077 so its
  `-wal`/`-shm` files cannot come out wider (SQLite also copies the database's mode onto them).
* Recording never raises: a full disk, a read-only directory or a database that went bad while
  chatting gives ONE warning, saving stops for the rest of the process, and the chat goes on.
* A file that is not a usable database at open time (garbage, a truncated header, a failed
  schema read) is moved aside to `history.db.corrupt-YYYYmmdd-HHMMSS` (with its -wal/-shm) and a
  fresh database is started, with a warning naming both paths. Start-up never crashes on it, and
  the corrupt file is never overwritten. `Store.open` raises `StoreError` only when there is no
  way to keep a history at all (the directory cannot be created, a database written by a newer
  chatcli): the chat then goes on unsaved after printing it — see `open_for_chat`.
* Stored text is raw (model output may hold escape sequences): sanitizing is the display's job.
* Search uses an FTS5 `trigram` index kept in step with `turns` by triggers (external content, so
  the text is stored once): any substring of 3+ characters, in any script, is found through it
  (schema 2; schema 1's word index is rebuilt by the migration). Each whitespace-separated piece
  of the query is quoted, so `"`, `*`, `-`, `AND`, `NEAR(` ... are searched for, never
  interpreted. Pieces shorter than 3 characters have no trigram: they filter the index's matches,
  or, alone, are looked for by a LIKE scan of the newest `SHORT_SCAN_TURNS` turns. Without FTS5
  in the SQLite build, every search is a LIKE scan.
* A database this process cannot write (a 0400 file, a 0500 directory, a read-only mount) is
  opened read-only (`mode=ro`, else `immutable=1`): listing, showing, exporting and searching
  work, nothing is migrated (schema 1 is then searched by a scan), and writes say why they
  cannot happen (`Store.read_only`) instead of SQLite's "attempt to write a readonly database".
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from chatcli.errors import StoreError, UsageError
from chatcli.events import FINISH_REASONS, FinishReason, Part
from chatcli.fsperm import Warn, check_private, create_private_file, ensure_private_dir, private_umask, stderr_warn
from chatcli.turn import Turn

DB_NAME = "history.db"
BUSY_TIMEOUT_MS = 5000
TITLE_LENGTH = 80
#: How many of the newest turns a query with no piece of 3+ characters scans (it has no trigram
#: to look up). 50,000 turns of chat text scan in well under the 300 ms search target.
SHORT_SCAN_TURNS = 50_000
#: Marks a search match in `SearchHit.parts`' source text; private-use characters nobody types.
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"

Connect = Callable[[str], sqlite3.Connection]


class ConversationNotFound(UsageError):
    """`history show/export/delete ID` or `--resume ID` named no conversation (exit 2: usage)."""

    def __init__(self, conv_id: str) -> None:
        super().__init__(f"no conversation {conv_id!r} (see chatcli history list)")
        self.conv_id = conv_id


class AmbiguousConversation(UsageError):
    def __init__(self, prefix: str, matches: Sequence[str]) -> None:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        super().__init__(f"{prefix!r} matches several conversations ({shown}); type more of the id")
        self.prefix = prefix
        self.matches = tuple(matches)


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created: float
    updated: float
    model: str | None
    provider: str | None
    turns: int


@dataclass(frozen=True)
class SearchHit:
    conversation_id: str
    title: str
    turn_id: int
    role: str
    created: float
    #: The snippet as (text, is_match) pieces; the text is raw (sanitize before display).
    parts: tuple[tuple[str, bool], ...]

    def snippet(self, open_mark: str = "[", close_mark: str = "]") -> str:
        return "".join(f"{open_mark}{text}{close_mark}" if hit else text for text, hit in self.parts)


# -- schema -------------------------------------------------------------------------------------

# Each entry upgrades the schema by one version (PRAGMA user_version = its index + 1). Never edit
# a released entry: append a new one.
_TABLES = (
    """CREATE TABLE conversations (
        id        TEXT PRIMARY KEY,
        title     TEXT NOT NULL DEFAULT '',
        created   REAL NOT NULL,
        updated   REAL NOT NULL,
        model     TEXT,
        provider  TEXT
    )""",
    "CREATE INDEX conversations_updated ON conversations (updated DESC)",
    """CREATE TABLE turns (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a Turn in memory
                                                            -- keeps its id while rows are deleted
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq             INTEGER NOT NULL,
        role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content         TEXT NOT NULL,
        reasoning       TEXT NOT NULL DEFAULT '',
        finish_reason   TEXT,
        finish_raw      TEXT,
        finish_detail   TEXT,
        provider        TEXT,
        model           TEXT,
        system          TEXT,
        input_tokens    INTEGER,
        output_tokens   INTEGER,
        ttft            REAL,
        duration        REAL,
        created         REAL NOT NULL,
        UNIQUE (conversation_id, seq)
    )""",
)

# The search index (created when the SQLite build has FTS5: checked, not assumed). The trigram
# tokenizer indexes every 3-character window, so any substring of 3 or more characters is found
# in any script: CJK has no spaces between words, emoji and symbols are not "word" characters
# for unicode61, and "sql" must find "sqlite". Case is folded; accents are not (the tokenizer's
# remove_diacritics needs SQLite 3.45).
_FTS = (
    "CREATE VIRTUAL TABLE turns_fts USING fts5("
    "content, content='turns', content_rowid='id', tokenize='trigram')",
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
)


def _v1_tables(conn: sqlite3.Connection) -> None:
    for statement in _TABLES:
        conn.execute(statement)


def _v2_trigram_index(conn: sqlite3.Connection) -> None:
    """Schema 2: the search index becomes trigram. Version 1 indexed unicode61 words (no CJK inside
    a sentence, no emoji, no fragments); its index and triggers are dropped and the new index is
    rebuilt from `turns` (one pass over the text, inside the migration's transaction)."""
    for trigger in ("turns_ai", "turns_ad", "turns_au"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.execute("DROP TABLE IF EXISTS turns_fts")
    if not _fts5_available(conn):
        return
    for statement in _FTS:
        conn.execute(statement)
    conn.execute("INSERT INTO turns_fts (turns_fts) VALUES ('rebuild')")


_V3_TURNS = """CREATE TABLE turns_v3 (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq             INTEGER NOT NULL,
        role            TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
        content         TEXT NOT NULL,
        reasoning       TEXT NOT NULL DEFAULT '',
        finish_reason   TEXT,
        finish_raw      TEXT,
        finish_detail   TEXT,
        provider        TEXT,
        model           TEXT,
        system          TEXT,
        input_tokens    INTEGER,
        output_tokens   INTEGER,
        ttft            REAL,
        duration        REAL,
        created         REAL NOT NULL,
        parts           TEXT,  -- JSON (chatcli/history/partcodec.py): tool calls, tool results, attachments
        UNIQUE (conversation_id, seq)
    )"""
_V1_COLUMNS = ("id, conversation_id, seq, role, content, reasoning, finish_reason, finish_raw, finish_detail, "
               "provider, model, system, input_tokens, output_tokens, ttft, duration, created")


def _v3_parts(conn: sqlite3.Connection) -> None:
    """Schema 3: messages made of parts. A "tool" role (tool results), a `parts` column, and the
    attachments' bytes once per content hash (`blobs`, referenced by `turn_blobs`, whose rows go
    with their turn). SQLite cannot change a CHECK constraint in place, so `turns` is rebuilt:
    same ids (the search index keys on them, and stays valid), same AUTOINCREMENT high-water mark."""
    top = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'turns'").fetchone()
    conn.execute(_V3_TURNS)
    conn.execute(f"INSERT INTO turns_v3 ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM turns")
    conn.execute("DROP TABLE turns")  # its triggers go with it
    conn.execute("ALTER TABLE turns_v3 RENAME TO turns")
    if top is not None:
        conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'turns'", (top[0],))
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'turns_fts'").fetchone() is not None:
        for statement in _FTS[1:]:  # the triggers; the index itself is unchanged
            conn.execute(statement)
    conn.execute("""CREATE TABLE blobs (
        hash        TEXT PRIMARY KEY,  -- sha256 of data
        media_type  TEXT NOT NULL,
        size        INTEGER NOT NULL,
        data        BLOB NOT NULL
    )""")
    conn.execute("""CREATE TABLE turn_blobs (
        turn_id INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        hash    TEXT NOT NULL REFERENCES blobs (hash),
        PRIMARY KEY (turn_id, hash)
    )""")
    conn.execute("CREATE INDEX turn_blobs_hash ON turn_blobs (hash)")


def _v4_alternatives(conn: sqlite3.Connection) -> None:
    """The replies of a `/compare` (chatcli/compare/alternatives.py): every model's reply to one user message,
    and which one the conversation continues with (that one is also the usual assistant turn)."""
    conn.execute("""CREATE TABLE alternatives (
        turn_id       INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,  -- the user message
        position      INTEGER NOT NULL,  -- 1, 2, ... in the order the models were named
        provider      TEXT,
        model         TEXT,
        content       TEXT NOT NULL,
        finish_reason TEXT,
        finish_detail TEXT,
        input_tokens  INTEGER,
        output_tokens INTEGER,
        created       REAL NOT NULL,
        kept          INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (turn_id, position)
    )""")


_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_tables, _v2_trigram_index, _v3_parts,
                                                           _v4_alternatives]
_SLOW_REINDEX_TURNS = 20_000  # about 3 s of reindexing: worth a line on stderr first

SCHEMA_VERSION = len(_MIGRATIONS)

_TURN_COLUMNS = (
    "role", "content", "reasoning", "finish_reason", "finish_raw", "finish_detail", "provider", "model",
    "system", "input_tokens", "output_tokens", "ttft", "duration", "created", "parts",
)


def _fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp.fts5_probe")
        return True
    except sqlite3.OperationalError:
        return False


class _Corrupt(Exception):
    """The file is not a database we can use; `Store.open` moves it aside."""


class _ReadOnly(Exception):
    """SQLite refused to write the file; `Store.open` opens it for reading instead."""


def _why_unwritable(path: Path) -> str | None:
    """Why this process could not write an existing database (None when it can, or there is none).

    SQLite writes the file, and creates `-wal`/`-shm` beside it (unless both already exist, writable).
    `os.access` asks the kernel with the real uid: permission bits, read-only mounts, and root.
    """
    if not path.is_file():
        return None
    if not os.access(path, os.R_OK):
        return None  # not readable either: the normal open reports the real error
    if not os.access(path, os.W_OK):
        return f"{path.name} is not writable"
    sidecars = [_sidecar(path, "-wal"), _sidecar(path, "-shm")]
    if not os.access(path.parent, os.W_OK | os.X_OK) and not all(os.access(p, os.W_OK) for p in sidecars):
        return f"its directory {path.parent} is not writable"
    return None


# -- the store ----------------------------------------------------------------------------------


class Store:
    """One connection to `history.db`. Safe to share between threads (calls are serialized)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, warn: Warn, *, read_only: str | None = None) -> None:
        self._conn = conn
        self.path = path
        self._warn = warn
        self._lock = threading.RLock()
        #: Why the file was opened read-only (None when it is writable): reading works, saving does not.
        self.read_only = read_only
        self._disabled: str | None = read_only  # why saving stopped, once it has
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'turns_fts'").fetchone()
        self._has_fts = row is not None
        #: The index finds substrings (schema 2); a read-only schema-1 file has a word index instead.
        self._trigram = row is not None and "trigram" in str(row[0])

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, data_dir: Path, *, warn: Warn = stderr_warn, connect: Connect | None = None) -> Store:
        """Open (creating it 0700/0600 if needed) `<data_dir>/history.db`.

        A corrupt file is moved aside and replaced (warning). Raises `StoreError` only when no
        history can be kept: the directory cannot be made, the file cannot be created or opened,
        or its schema is newer than this chatcli.
        `connect` opens a path as a connection (tests inject failures through it).
        """
        data_dir = Path(data_dir)
        path = data_dir / DB_NAME
        unwritable = _why_unwritable(path)
        if unwritable is not None:
            for name in (path, _sidecar(path, "-wal"), _sidecar(path, "-shm")):
                check_private(name, warn=warn)
            return cls._open_read_only(path, warn, unwritable)
        try:
            ensure_private_dir(data_dir, warn=warn)
            create_private_file(path)  # before SQLite, so it never exists with umask permissions
        except OSError as exc:
            raise StoreError(f"cannot create the history database {path}: {_os_reason(exc)}") from exc
        for name in (path, _sidecar(path, "-wal"), _sidecar(path, "-shm")):
            check_private(name, warn=warn)
        try:
            return cls._open_file(path, warn, connect)
        except _ReadOnly as exc:  # e.g. a read-only mount os.access did not see through
            return cls._open_read_only(path, warn, str(exc))
        except _Corrupt as exc:
            try:
                backup = _move_aside(path)
                create_private_file(path)
            except OSError as move_error:
                raise StoreError(f"the history database {path} is unreadable ({exc}) and could not be moved "
                                 f"aside: {_os_reason(move_error)}") from move_error
            warn(f"the history database {path} is unreadable ({exc}); it was moved to {backup} "
                 "and a new one was started")
            try:
                return cls._open_file(path, warn, connect)
            except _Corrupt as again:  # a fresh file failing means the disk is the problem
                raise StoreError(f"cannot use the history database {path}: {again}") from again

    @classmethod
    def _open_file(cls, path: Path, warn: Warn, connect: Connect | None) -> Store:
        try:
            with private_umask():  # -wal and -shm are created by SQLite on the first statements
                conn = (connect or _connect)(str(path))
                try:
                    _configure(conn)
                    _migrate(conn, path, warn)
                except BaseException:
                    conn.close()
                    raise
        except StoreError:
            raise
        except sqlite3.DatabaseError as exc:
            # OperationalError covers both "disk I/O error"/"unable to open" (the disk: not a
            # reason to move the file) and a few corruption symptoms; tell them apart by code.
            if _is_corruption(exc):
                raise _Corrupt(str(exc)) from exc
            if _error_code(exc) == _SQLITE_READONLY:
                raise _ReadOnly(str(exc)) from exc
            raise StoreError(f"cannot open the history database {path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot open the history database {path}: {_os_reason(exc)}") from exc
        return cls(conn, path, warn)

    @classmethod
    def _open_read_only(cls, path: Path, warn: Warn, reason: str) -> Store:
        """Open a database this process cannot write, for reading: `mode=ro` first (sees a live
        writer's -wal, but needs the -shm to exist or be creatable), then `immutable=1` (no -shm
        needed; it ignores a -wal, so turns still in one are not seen: said in a warning).
        No migration runs; a schema-1 file is searched by a scan instead of the trigram index."""
        uri = path.absolute().as_uri()
        failure: sqlite3.Error | None = None
        for extra in ("", "&immutable=1"):
            try:
                conn = sqlite3.connect(f"{uri}?mode=ro{extra}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                failure = exc
                continue
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA query_only = ON")
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as exc:
                conn.close()
                failure = exc
                continue
            if version > SCHEMA_VERSION or version == 0:
                conn.close()
                why = (f"was written by a newer chatcli (schema {version}, this one knows {SCHEMA_VERSION})"
                       if version else "holds no history yet")
                raise StoreError(f"the history database {path} is read-only ({reason}) and {why}")
            wal = _sidecar(path, "-wal")
            if extra and wal.exists() and wal.stat().st_size > 0:
                warn(f"the history database {path} is read-only ({reason}); the turns still in {wal} "
                     "cannot be read without write access")
            return cls(conn, path, warn, read_only=reason)
        raise StoreError(f"cannot read the history database {path} ({reason}): {failure}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

    @property
    def saving(self) -> bool:
        """False once a write failed: nothing more is saved in this process."""
        return self._disabled is None

    def recorder(self, conversation_id: str | None = None) -> StoreRecorder:
        """A `Recorder` for a new conversation (created at its first turn) or an existing one (resume)."""
        return StoreRecorder(self, conversation_id)

    def prepare_writes(self) -> None:
        """Do the first write's one-time work now, while nothing waits for it (the REPL calls this
        once its prompt is up and the user is typing).

        The first message's record would otherwise compile the insert statements (with their
        full-text triggers), read the tables' pages, and make the first commit, which creates the
        write-ahead log: with `synchronous = FULL` two more fsyncs (the log's header, its
        directory) than any later commit. Measured on a store with some history (25 opens): the first
        record took 2.2-2.8 ms against 0.7-0.9 ms for later ones; 1.1-1.25 ms after this. A new conversation's first
        turn is written and rolled back (the statements stay in the connection's cache), then the
        schema version is rewritten to the value it has: the smallest real commit. A failure
        warns and stops saving, as the first message's would have.
        """
        def rehearse(conn: sqlite3.Connection) -> None:
            turn = Turn(role="user", content="")
            conv = _new_conversation(conn, turn, 0.0, None)
            _insert_turn(conn, conv, turn)
            _touch(conn, conv, turn, 0.0)

        def commit(conn: sqlite3.Connection) -> None:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        if self._write(rehearse, commit=False):
            self._write(commit)

    def _write(self, action: Callable[[sqlite3.Connection], None], *, commit: bool = True) -> bool:
        """Run `action` in one IMMEDIATE transaction (rolled back instead of committed with
        `commit=False`). On an I/O failure: warn once, stop saving."""
        if self._disabled is not None:
            return False
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    action(self._conn)
                    self._conn.execute("COMMIT" if commit else "ROLLBACK")
                except BaseException:
                    # A KeyboardInterrupt/Terminated landing here must not leave the transaction
                    # (and the write lock) open.
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as exc:
                self._disable(exc)
                return False
        return True

    def _disable(self, exc: BaseException) -> None:
        reason = _os_reason(exc) if isinstance(exc, OSError) else str(exc)
        self._disabled = reason
        self._warn(f"could not save to the history database {self.path} ({reason}); "
                   "this conversation is no longer being saved, the chat goes on")

    # -- reading ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the history database {self.path}: {exc}") from exc

    def list_conversations(self, limit: int = 50, offset: int = 0) -> list[Conversation]:
        """Conversations, most recently used first."""
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_CONV_SELECT} FROM conversations c ORDER BY c.updated DESC, c.rowid DESC "
                "LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        return [_conversation(row) for row in rows]

    def count_conversations(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("SELECT count(*) FROM conversations").fetchone()[0])

    def latest_conversation(self) -> Conversation | None:
        """The most recently used conversation (for `--continue`)."""
        found = self.list_conversations(limit=1)
        return found[0] if found else None

    def get(self, conv_id: str) -> Conversation:
        """The conversation with this id or unique id prefix.

        Raises `ConversationNotFound` or `AmbiguousConversation` (both UsageError, exit 2).
        """
        wanted = conv_id.strip().lower()
        if not re.fullmatch(r"[0-9a-z]+", wanted):  # ids are lowercase hex: anything else is no id
            raise ConversationNotFound(conv_id)
        with self._reading() as conn:
            row = conn.execute(f"SELECT {_CONV_SELECT} FROM conversations c WHERE c.id = ?",
                               (wanted,)).fetchone()
            if row is not None:
                return _conversation(row)
            # A prefix: the range [wanted, wanted + U+10FFFF) uses the primary key index.
            rows = conn.execute(
                f"SELECT {_CONV_SELECT} FROM conversations c WHERE c.id >= ? AND c.id < ? "
                "ORDER BY c.updated DESC LIMIT 6", (wanted, wanted + "\U0010ffff")).fetchall()
        if not rows:
            raise ConversationNotFound(conv_id)
        if len(rows) > 1:
            raise AmbiguousConversation(conv_id, [r[0] for r in rows])
        return _conversation(rows[0])

    def load_turns(self, conv_id: str) -> list[Turn]:
        """The conversation's turns in order, with their ids (for `--resume` and `history show`)."""
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT id, {', '.join(_TURN_COLUMNS)} FROM turns WHERE conversation_id = ? ORDER BY seq",
                (conv_id,)).fetchall()
            return [_turn(row, conn) for row in rows]

    def forgotten_usage(self, conv_id: str) -> list[tuple[str | None, str | None, int, int]]:
        """(provider, model, input tokens, output tokens) of the conversation's replies that /retry
        replaced or /undo removed: gone from its turns, but paid for (`/usage`, chatcli/repl/spend.py)."""
        with self._reading() as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'spent'").fetchone() is None:
                return []  # nothing was ever forgotten in this database
            rows = conn.execute("SELECT provider, model, input_tokens, output_tokens FROM spent "
                                "WHERE conversation_id = ? ORDER BY rowid", (conv_id,)).fetchall()
        return [(r[0], r[1], int(r[2] or 0), int(r[3] or 0)) for r in rows]

    def delete(self, conv_id: str) -> bool:
        """Delete a conversation (exact id) and its turns. True if it existed. Raises StoreError."""
        if self.read_only is not None:
            raise StoreError(f"cannot delete from the history database {self.path}: it is opened read-only "
                             f"({self.read_only})")
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    cur = self._conn.execute("DELETE FROM conversations WHERE id = ?", (conv_id,))
                    _drop_unused_blobs(self._conn)
                    self._conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"cannot delete from the history database {self.path}: {exc}") from exc
        return cur.rowcount > 0

    def search(self, text: str, limit: int = 20) -> list[SearchHit]:
        """Turns containing every whitespace-separated piece of `text` as a substring, newest first,
        each with a snippet around the match. Case is folded (for ASCII only in pieces shorter
        than 3 characters).

        `text` is taken literally: FTS operators and punctuation in it are not interpreted.
        Newest first rather than bm25 relevance: in a chat history the recent mention is usually
        the one wanted (as with Ctrl-R), and FTS5 walks its index backwards by rowid and stops at
        `limit`, so a common word costs the same as a rare one (bm25 must score every match).

        Pieces of 3+ characters go through the trigram index; shorter ones (`漢`, `☕`, `->`) have
        no trigram, so they filter the index's matches, or, when the query has nothing longer,
        are looked for by a plain scan of the newest `SHORT_SCAN_TURNS` turns (`short_scan_bounded`
        says whether older turns were left out).
        """
        pieces = list(dict.fromkeys(text.split()))
        if not pieces:
            return []
        long = [p for p in pieces if len(p) >= 3]
        short = [p for p in pieces if len(p) < 3]
        with self._reading() as conn:
            if self._trigram and long:
                query = " ".join('"' + p.replace('"', '""') + '"' for p in long)
                rows = conn.execute(
                    "SELECT t.conversation_id, c.title, t.id, t.role, t.created, "
                    f"snippet(turns_fts, 0, '{_MARK_OPEN}', '{_MARK_CLOSE}', '…', 64) "
                    "FROM turns_fts JOIN turns t ON t.id = turns_fts.rowid "
                    "JOIN conversations c ON c.id = t.conversation_id "
                    "WHERE turns_fts MATCH ?" + " AND t.content LIKE ? ESCAPE '\\'" * len(short) +
                    " ORDER BY turns_fts.rowid DESC LIMIT ?",
                    (query, *(_like(p) for p in short), limit)).fetchall()
                return [_hit(row) for row in rows]
            # No trigram index (no FTS5, or a read-only database still on schema 1), or only short
            # pieces: a substring scan, newest first; bounded when the index could not help.
            floor = -1
            if not long or self._trigram:
                top = conn.execute("SELECT coalesce(max(id), 0) FROM turns").fetchone()[0]
                floor = int(top) - SHORT_SCAN_TURNS
            rows = conn.execute(
                "SELECT t.conversation_id, c.title, t.id, t.role, t.created, t.content "
                "FROM turns t JOIN conversations c ON c.id = t.conversation_id WHERE t.id > ?"
                + " AND t.content LIKE ? ESCAPE '\\'" * len(pieces) + " ORDER BY t.id DESC LIMIT ?",
                (floor, *(_like(p) for p in pieces), limit)).fetchall()
        return [_hit((*row[:5], _like_snippet(row[5], pieces))) for row in rows]

    def short_scan_bounded(self, text: str) -> bool:
        """Whether `search(text)` scanned only the newest `SHORT_SCAN_TURNS` turns (a query with no
        piece of 3+ characters, in a history with more turns than that)."""
        if any(len(p) >= 3 for p in text.split()):
            return False
        with self._reading() as conn:
            top = conn.execute("SELECT coalesce(max(id), 0) FROM turns").fetchone()[0]
        return int(top) > SHORT_SCAN_TURNS


class StoreRecorder:
    """The session's `Recorder` for one conversation. Never raises for I/O failures."""

    def __init__(self, store: Store, conversation_id: str | None) -> None:
        self._store = store
        self._conv_id = conversation_id
        self._created = conversation_id is not None

    @property
    def conversation_id(self) -> str | None:
        """None until the first turn is recorded (an empty session creates nothing)."""
        return self._conv_id

    def record(self, turn: Turn) -> None:
        def action(conn: sqlite3.Connection) -> None:
            now = time.time()
            if not self._created:
                self._conv_id = _new_conversation(conn, turn, now, None)
                self._created = True
            elif conn.execute("SELECT 1 FROM conversations WHERE id = ?", (self._conv_id,)).fetchone() is None:
                # Deleted (`history delete` in another terminal) while this session had it open:
                # bring it back under the same id rather than losing the rest of the chat.
                _new_conversation(conn, turn, now, self._conv_id)
            parts, blobs = encode_parts(turn.parts)
            values = _turn_values(turn, parts)
            conv = self._conv_id
            if turn.id is not None:
                cur = conn.execute(
                    f"UPDATE turns SET {', '.join(c + ' = ?' for c in _TURN_COLUMNS)} "
                    "WHERE id = ? AND conversation_id = ?", (*values, turn.id, conv))
                if cur.rowcount:
                    _store_blobs(conn, turn.id, blobs)
                    _touch(conn, conv, turn, now)
                    return
                # The row is gone (deleted by `history delete` in another process): insert it again.
            turn.id = _insert_turn(conn, conv, turn, values)
            _store_blobs(conn, turn.id, blobs)
            _touch(conn, conv, turn, now)

        conv_before, created_before, id_before = self._conv_id, self._created, turn.id
        if not self._store._write(action):
            # Rolled back: do not keep ids that point at nothing.
            self._conv_id, self._created, turn.id = conv_before, created_before, id_before

    def forget(self, turn: Turn) -> None:
        if turn.id is None:
            return
        turn_id = turn.id

        def action(conn: sqlite3.Connection) -> None:
            _keep_spend(conn, turn_id)
            conn.execute("DELETE FROM turns WHERE id = ?", (turn_id,))
            _drop_unused_blobs(conn)

        if self._store._write(action):
            turn.id = None


# -- helpers ------------------------------------------------------------------------------------

_CONV_SELECT = ("c.id, c.title, c.created, c.updated, c.model, c.provider, "
                "(SELECT count(*) FROM turns t WHERE t.conversation_id = c.id)")


# The usage of replies that were deleted from `turns` (/retry, /undo) though they were paid for.
# Created by the first such delete rather than by a schema migration: older databases and
# read-only ones simply have none, and the schema version (and what an older chatcli accepts)
# stays as it is. Its rows go with their conversation (`history delete`).
_SPENT = """CREATE TABLE IF NOT EXISTS spent (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    provider        TEXT,
    model           TEXT,
    input_tokens    INTEGER,
    output_tokens   INTEGER,
    created         REAL NOT NULL
)"""


def _keep_spend(conn: sqlite3.Connection, turn_id: int) -> None:
    """Before a reply is deleted: keep what it cost (its token counts), if it reported any."""
    row = conn.execute("SELECT conversation_id, provider, model, input_tokens, output_tokens, created "
                       "FROM turns WHERE id = ? AND role = 'assistant' "
                       "AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)", (turn_id,)).fetchone()
    if row is not None:
        conn.execute(_SPENT)
        conn.execute("INSERT INTO spent VALUES (?, ?, ?, ?, ?, ?)", row)


def _connect(path: str) -> sqlite3.Connection:
    # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) so each is exactly
    # one turn. check_same_thread=False because the Store serializes access with its own lock.
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # The first statement that reads the file: garbage fails here with "file is not a database".
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode is None or str(mode[0]).lower() != "wal":
        # e.g. a filesystem without shared memory; rollback journal still gives atomic commits.
        pass
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def _migrate(conn: sqlite3.Connection, path: Path, warn: Warn) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(f"the history database {path} was written by a newer chatcli (schema {version}, "
                         f"this one knows {SCHEMA_VERSION}); upgrade chatcli or use --no-save")
    if version == SCHEMA_VERSION:
        # Reading the schema catches files whose header is fine but whose catalog is damaged.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version == 1:  # the reindex reads every turn: ~30 s for 200,000 (benchmarks/store_bench.py)
            turns = int(conn.execute("SELECT count(*) FROM turns").fetchone()[0])
            if turns >= _SLOW_REINDEX_TURNS:
                warn(f"rebuilding the search index of {path} ({turns:,} turns; once, this can take a while)")
        for index in range(version, SCHEMA_VERSION):
            _MIGRATIONS[index](conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


_CORRUPTION_CODES = {
    getattr(sqlite3, "SQLITE_CORRUPT", 11),
    getattr(sqlite3, "SQLITE_NOTADB", 26),
}


_SQLITE_READONLY = getattr(sqlite3, "SQLITE_READONLY", 8)


def _error_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _CORRUPTION_CODES
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _move_aside(path: Path) -> Path:
    """Rename the database (and its -wal/-shm, so the backup opens as it was) to a free backup name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, backup)
    for suffix in ("-wal", "-shm"):
        side = _sidecar(path, suffix)
        if side.exists():
            os.replace(side, _sidecar(backup, suffix))
    return backup


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


_SURROGATES = re.compile("[\ud800-\udfff]")


def _text(value: str | None) -> str | None:
    """SQLite stores UTF-8: a lone surrogate (JSON "\\ud800" from a server) would make the insert
    raise UnicodeEncodeError, so it becomes U+FFFD."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", value)
    return value


def _title(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= TITLE_LENGTH else words[: TITLE_LENGTH - 1].rstrip() + "…"


def _new_conversation(conn: sqlite3.Connection, turn: Turn, now: float, wanted: str | None) -> str:
    title = _text(_title(turn.content)) if turn.role == "user" else ""
    for _ in range(20):
        conv_id = wanted or secrets.token_hex(4)
        try:
            conn.execute(
                "INSERT INTO conversations (id, title, created, updated, model, provider) "
                "VALUES (?, ?, ?, ?, ?, ?)", (conv_id, title, now, now, _text(turn.model), _text(turn.provider)))
        except sqlite3.IntegrityError:  # 1 in 4 billion per existing conversation: try another id
            continue
        return conv_id
    raise sqlite3.IntegrityError("could not find a free conversation id")


def encode_parts(parts: Sequence[Part]) -> tuple[str | None, dict[str, tuple[str, bytes]]]:
    if not parts:
        return None, {}  # most turns: no import, no JSON
    from chatcli.history import partcodec

    return partcodec.encode(parts)


def _insert_turn(conn: sqlite3.Connection, conv_id: str | None, turn: Turn,
                 values: tuple[Any, ...] | None = None) -> int | None:
    """Append `turn` to the conversation; its row id. (One SQL text: the statement cache keys on it.)"""
    cur = conn.execute(
        f"INSERT INTO turns (conversation_id, seq, {', '.join(_TURN_COLUMNS)}) VALUES "
        f"(?, (SELECT coalesce(max(seq), 0) + 1 FROM turns WHERE conversation_id = ?), "
        f"{', '.join('?' for _ in _TURN_COLUMNS)})", (conv_id, conv_id, *(values or _turn_values(turn))))
    return cur.lastrowid


def _touch(conn: sqlite3.Connection, conv_id: str | None, turn: Turn, now: float) -> None:
    """Bump the conversation's last use and model; give it a title at its first user message."""
    title = _text(_title(turn.content)) if turn.role == "user" else None
    conn.execute(
        "UPDATE conversations SET updated = ?, model = coalesce(?, model), provider = coalesce(?, provider), "
        "title = CASE WHEN title = '' AND ? IS NOT NULL THEN ? ELSE title END WHERE id = ?",
        (now, _text(turn.model), _text(turn.provider), title, title, conv_id))


def _turn_values(turn: Turn, parts: str | None = None) -> tuple[Any, ...]:
    values = (
        turn.role, turn.content, turn.reasoning or "", turn.finish_reason, turn.finish_raw, turn.finish_detail,
        turn.provider, turn.model, turn.system, turn.input_tokens, turn.output_tokens, turn.ttft,
        turn.duration, turn.created, parts,
    )
    return tuple(_text(v) if isinstance(v, str) else v for v in values)


def _store_blobs(conn: sqlite3.Connection, turn_id: int | None, blobs: dict[str, tuple[str, bytes]]) -> None:
    """Each attachment once by hash, and the turn's references to it (same transaction as the turn)."""
    for key, (media_type, data) in blobs.items():
        conn.execute("INSERT OR IGNORE INTO blobs (hash, media_type, size, data) VALUES (?, ?, ?, ?)",
                     (key, media_type, len(data), data))
        conn.execute("INSERT OR IGNORE INTO turn_blobs (turn_id, hash) VALUES (?, ?)", (turn_id, key))


def _drop_unused_blobs(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM blobs WHERE hash NOT IN (SELECT hash FROM turn_blobs)")


def _turn(row: Sequence[Any], conn: sqlite3.Connection | None = None) -> Turn:
    (turn_id, role, content, reasoning, finish_reason, finish_raw, finish_detail, provider, model, system,
     input_tokens, output_tokens, ttft, duration, created, parts) = row
    reason = finish_reason if finish_reason in FINISH_REASONS else (None if finish_reason is None else "error")
    return Turn(
        role=role, content=content, created=created, provider=provider, model=model, system=system,
        finish_reason=cast("FinishReason | None", reason), finish_raw=finish_raw, finish_detail=finish_detail,
        reasoning=reasoning or "", input_tokens=input_tokens, output_tokens=output_tokens, ttft=ttft,
        duration=duration, id=turn_id, parts=_parts(parts, conn),
    )


def _parts(text: str | None, conn: sqlite3.Connection | None) -> tuple[Part, ...]:
    if not text:
        return ()
    from chatcli.history import partcodec

    def blob(key: str) -> bytes | None:
        row = conn.execute("SELECT data FROM blobs WHERE hash = ?", (key,)).fetchone() if conn else None
        return bytes(row[0]) if row is not None else None

    return partcodec.decode(text, blob)


def _conversation(row: Sequence[Any]) -> Conversation:
    return Conversation(id=row[0], title=row[1], created=row[2], updated=row[3], model=row[4],
                        provider=row[5], turns=int(row[6]))


def _hit(row: Sequence[Any]) -> SearchHit:
    return SearchHit(conversation_id=row[0], title=row[1], turn_id=row[2], role=row[3], created=row[4],
                     parts=_split_snippet(row[5] or ""))


def _split_snippet(snippet: str) -> tuple[tuple[str, bool], ...]:
    parts: list[tuple[str, bool]] = []
    for i, piece in enumerate(re.split(f"[{_MARK_OPEN}{_MARK_CLOSE}]", snippet)):
        if piece:
            parts.append((piece, i % 2 == 1))
    return tuple(parts)


def _like(piece: str) -> str:
    """A LIKE pattern finding `piece` literally anywhere."""
    return "%" + piece.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _like_snippet(content: str, pieces: Sequence[str], width: int = 60) -> str:
    """A snippet around the first piece found (the scan's stand-in for FTS5's snippet())."""
    lowered = content.lower()
    found = [(at, len(p)) for p in pieces if (at := lowered.find(p.lower())) >= 0]
    if not found:
        return content[:width]
    at, size = min(found)
    start = max(0, at - width // 2)
    end = min(len(content), at + size + width // 2)
    return ("…" if start else "") + content[start:at] + _MARK_OPEN + content[at:at + size] + \
        _MARK_CLOSE + content[at + size:end] + ("…" if end < len(content) else "")


def open_for_chat(data_dir: Path, *, warn: Warn = stderr_warn) -> Store | None:
    """The chat's way in: a Store, or None (after a warning) when no history can be kept.

    Start-up never fails because of the history: the chat then runs as with `--no-save`.
    """
    try:
        store = Store.open(data_dir, warn=warn)
    except StoreError as exc:
        warn(f"{exc.message}; this conversation will not be saved")
        return None
    if store.read_only is not None:
        warn(f"the history database {store.path} is read-only ({store.read_only}); saved conversations "
             "can be read, but this conversation will not be saved")
    return store
