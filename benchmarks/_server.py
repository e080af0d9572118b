"""The loopback SSE server (tests/support/sse_server.py) in a process of its own, for the pty benchmarks.

In the bench's own process the server's thread shares the GIL with pexpect, which is busy reading
and searching the terminal output exactly while the request is in flight: the server then waits
for the GIL (up to the 5 ms switch interval) before it can answer. That is noise in the harness,
larger than the differences repl_bench is there to show (per-process TTFB deciles spread 14-26 ms
with the in-process server). Here the bench's process only sends the scripted replies over a pipe
before each run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from tests.support.sse_server import Reply, SSEServer


def _serve(conn: Connection) -> None:
    with SSEServer() as server:
        conn.send(server.openai_url)
        while True:
            message = conn.recv()
            if message is None:
                return
            server.add(*message)
            conn.send(True)


class ServerProcess:
    """`with ServerProcess() as server:` -- `server.openai_url`, `server.add(*replies)`, like SSEServer."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of the bench's threads or pty state
        self._conn, child = context.Pipe()
        self._process: Any = context.Process(target=_serve, args=(child,), name="bench-sse-server", daemon=True)
        self.openai_url = ""

    def __enter__(self) -> ServerProcess:
        self._process.start()
        self.openai_url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()

    def add(self, *replies: Reply) -> None:
        self._conn.send(replies)
        self._conn.recv()
