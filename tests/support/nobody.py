"""Checks that need a user the permission bits apply to: tests run as root, and root ignores them,
so the check runs as `nobody` in a forked child (directly, when not root)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

NOBODY = 65534
AS_ROOT = os.name == "posix" and os.geteuid() == 0


@contextlib.contextmanager
def traversable_dir() -> Iterator[Path]:
    """A fresh directory nobody can reach. Not pytest's tmp_path: its parents are 0700 root,
    which nobody cannot traverse."""
    where = Path(tempfile.mkdtemp(prefix="chatcli-ro-"))
    where.chmod(0o711)
    try:
        yield where
    finally:
        for path in (where, *where.rglob("*")):
            with contextlib.suppress(OSError):
                path.chmod(0o700)
        shutil.rmtree(where, ignore_errors=True)


def as_nobody(check: Callable[..., Any], *args: object) -> Any:
    """`check(*args)` without write permission (as nobody, in a forked child, when root); its
    JSON-able result comes back through a pipe, and so does the traceback of a failure."""
    if not AS_ROOT:
        return check(*args)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            payload = json.dumps({"value": check(*args)})
        except BaseException:
            payload = json.dumps({"error": traceback.format_exc()})
            code = 1
        try:
            with os.fdopen(write, "wb") as pipe:
                pipe.write(payload.encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        result = json.loads(pipe.read().decode() or '{"error": "no report from the child"}')
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and "error" not in result, result.get("error")
    return result["value"]
