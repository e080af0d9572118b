"""The stdio transport: spawn a server, exchange JSON-RPC lines, stop it within the 3 s budget.

Why not the SDK's `stdio_client`: its shutdown waits 2 s after closing stdin and 2 s more after
SIGTERM (up to 4 s+ for a server that ignores SIGTERM; we promise 3 s for all servers together),
it logs a non-JSON stdout line with a traceback and feeds the error to the session, and it does
not tell anyone when the server exits while idle. This one yields the same stream pair to the
SDK's `ClientSession`, and:

* stderr goes to the server's log file (never the terminal);
* a line on stdout that is not JSON-RPC is written to that log and skipped: the session goes on;
* `exited` is set when stdout ends (the server died or closed it), so the runtime can mark the
  server failed at once instead of at the next call;
* shutdown: close stdin, wait `grace`, SIGTERM the process group, wait `grace`, SIGKILL the group.
  The server is started in its own session (group), so helpers it spawned (`uvx`, `npx`, a shell
  wrapper) go with it; the group is signalled even after a clean exit so none is left orphaned.

Imported only by lifecycle.py, inside the background loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from typing import IO, Any

import anyio
import mcp_types
from anyio.abc import Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

STOP_GRACE = 0.9  # x2 (after stdin closes, after SIGTERM) + the kill: well inside 3 s
MAX_JUNK_SHOWN = 300  # characters of a non-JSON line written to the log

Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


class StdioProcess:
    """What the runtime may know about the spawned server (its pid, its exit)."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.exited = anyio.Event()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


@contextlib.asynccontextmanager
async def open_stdio(command: str, args: list[str], *, env: Mapping[str, str], cwd: str | None,
                     errlog: IO[Any], on_junk: Callable[[str], None],
                     grace: float = STOP_GRACE) -> AsyncIterator[tuple[Streams, StdioProcess]]:
    process = await anyio.open_process([command, *args], env=dict(env), cwd=cwd, stderr=errlog,
                                       start_new_session=True)
    handle = StdioProcess(process)
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)

    async def reader() -> None:
        assert process.stdout is not None
        buffer = b""
        try:
            async with read_send:
                async for chunk in process.stdout:
                    lines = (buffer + chunk).split(b"\n")
                    buffer = lines.pop()
                    for line in lines:
                        if not line.strip():
                            continue
                        try:
                            message = mcp_types.jsonrpc_message_adapter.validate_json(line)
                        except ValueError:
                            on_junk(line.decode("utf-8", "replace")[:MAX_JUNK_SHOWN])
                            continue
                        await read_send.send(SessionMessage(message))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass
        finally:
            handle.exited.set()

    async def writer() -> None:
        assert process.stdin is not None
        try:
            async with write_recv:
                async for item in write_recv:
                    data = item.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(data.encode("utf-8"))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server stopped reading (it died): end the session's reads too, or a request hangs.
            await read_send.aclose()

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        group.start_soon(writer)
        try:
            yield (read_recv, write_send), handle
        finally:
            with anyio.CancelScope(shield=True):
                await stop_process(process, grace)
            group.cancel_scope.cancel()


async def _exited_within(process: Process, seconds: float) -> bool:
    # Polling returncode, not process.wait(): wait() also waits for the pipes to close, which a
    # grandchild holding them open would turn into a hang.
    with anyio.move_on_after(seconds):
        while process.returncode is None:
            await anyio.sleep(0.01)
    return process.returncode is not None


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


async def stop_process(process: Process, grace: float) -> None:
    """stdin closed -> `grace` -> SIGTERM to the group -> `grace` -> SIGKILL to the group."""
    if process.stdin is not None:
        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdin.aclose()
    if not await _exited_within(process, grace):
        _signal_group(process.pid, signal.SIGTERM)
        if not await _exited_within(process, grace):
            _signal_group(process.pid, signal.SIGKILL)
            await _exited_within(process, grace)
    # The leader is gone; helpers it started in its group are not ours to leave running.
    _signal_group(process.pid, signal.SIGTERM)
    if process.stdout is not None:
        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdout.aclose()
