"""Each MCP server's log file, and where the SDK's own loggers write. A server's stderr, and any
non-JSON line it prints on stdout, go to its own log file in `log_dir` (0600 in 0700), with chatcli's
own lines marked `[chatcli ...]`; `tail` reads back the last lines it wrote this run, for a `failed`
status. The SDK's loggers go to `mcp-client.log` there and never propagate to the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from chatcli.fsperm import create_private_file, ensure_private_dir
from chatcli.tools.names import sanitize

if TYPE_CHECKING:
    from chatcli.tools.lifecycle import Server

LOG_TAIL_LINES = 5
LOG_MAX_BYTES = 1 << 20  # a log larger than this is emptied when its server starts again
CLIENT_LOG = "mcp-client.log"
_SDK_LOGGERS = ("mcp", "httpx2", "httpcore")


def hashed_file(name: str) -> str:
    import hashlib

    return sanitize(name)[:40] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def open_log(server: Server) -> None:
    path = server.log_path
    ensure_private_dir(path.parent)
    create_private_file(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
    with contextlib.suppress(OSError):
        if os.fstat(fd).st_size > LOG_MAX_BYTES:
            os.ftruncate(fd, 0)
    server.log_fd = fd
    server.log_offset = os.fstat(fd).st_size


def log_line(server: Server, text: str) -> None:
    if server.log_fd is None:
        return
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with contextlib.suppress(OSError):
        os.write(server.log_fd, f"[chatcli {stamp}] {text}\n".encode("utf-8", "replace"))


def tail(server: Server) -> tuple[str, ...]:
    """The last lines the server wrote this run (ours, marked `[chatcli ...]`, are left out)."""
    try:
        with open(server.log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            start = max(server.log_offset, size - 8192)
            handle.seek(start)
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return ()
    lines = [line[:200] for line in data.splitlines() if line.strip() and not line.startswith("[chatcli ")]
    return tuple(lines[-LOG_TAIL_LINES:])


def close_fd(server: Server) -> None:
    if server.log_fd is not None:
        with contextlib.suppress(OSError):
            os.close(server.log_fd)
        server.log_fd = None


_handler: logging.FileHandler | None = None


def route_sdk_logs(path: Path) -> None:
    """The SDK's loggers write to `path`, and never reach the terminal (not even via lastResort).

    One handler for the process, moved to the newest runtime's file: a second runtime (tests,
    a `chatcli tools` command after a chat) must not leave a handler on a file that is gone.
    """
    global _handler
    if _handler is not None and _handler.baseFilename == os.path.abspath(path):
        return
    create_private_file(path)
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if _handler is not None:
            logger.removeHandler(_handler)
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    if _handler is not None:
        _handler.close()
    _handler = handler
