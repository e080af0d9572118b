"""A real SQLite connection that fails on demand, as a full or read-only disk would."""

from __future__ import annotations

import sqlite3
from typing import Any


class FailingConnection(sqlite3.Connection):
    """A real connection that raises what the OS would once `fail` is set (the I/O boundary)."""

    fail: BaseException | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.fail is not None and not sql.startswith(("ROLLBACK", "PRAGMA", "SELECT")):
            raise self.fail
        return super().execute(sql, parameters)


def failing_connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=FailingConnection)
