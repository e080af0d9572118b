"""The MCP servers' lifecycle on the background loop. The `mcp` SDK's sessions are context managers
whose cancel scopes must be entered and exited by the same task, or exit raises "Attempted to exit
cancel scope in a different task" (python-sdk #79); so each server has one **owner task** that opens
the transport and the `ClientSession`, initializes, lists the tools, then waits for its stop signal and
closes both -- in that task. Each server is `starting`, then `ready` (with its tools) or `failed` (a
one-line reason naming the server, plus the last lines of its log), or `stopped`. A stdio server's
environment is the SDK's minimal set (`HOME LOGNAME PATH SHELL TERM USER`) plus its configured `env`:
never chatcli's API keys. `ServerLifecycle` is mixed into chatcli/tools/runtime.py's `ToolRuntime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chatcli.tools.serverlog import log_line, open_log, tail
from chatcli.tools.servers import ServerConfig

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

    from chatcli.tools._stdio import StdioProcess

State = Literal["starting", "ready", "failed", "stopped"]

CLOSE_BUDGET = 3.0  # seconds for close(): every server, stdin -> SIGTERM -> kill


@dataclass(frozen=True)
class ToolInfo:
    server: str
    name: str
    description: str
    input_schema: Mapping[str, Any]
    read_only: bool | None = None  # the server's `readOnlyHint` annotation, when it gives one


@dataclass(frozen=True)
class ServerStatus:
    name: str
    state: State
    tools: tuple[ToolInfo, ...] = ()
    reason: str | None = None  # one line naming the server, for `failed`
    log_tail: tuple[str, ...] = ()  # last lines of its log, for `failed` (untrusted: sanitize to show)
    log_path: Path | None = None
    pid: int | None = None


@dataclass
class Server:
    config: ServerConfig
    log_path: Path
    state: State = "starting"
    tools: tuple[ToolInfo, ...] = ()
    reason: str | None = None
    log_tail: tuple[str, ...] = ()
    log_fd: int | None = None
    log_offset: int = 0
    session: ClientSession | None = None
    process: StdioProcess | None = None
    stop: asyncio.Event | None = None
    owner: asyncio.Task[None] | None = None
    settled: threading.Event = field(default_factory=threading.Event)  # ready or failed or stopped
    stopping: bool = False
    calls: int = 0  # calls in flight, so that an exit can be told apart from an exit during a call


class ServerLifecycle:
    """The owner tasks, run on the loop (`ToolRuntime` holds the state they share)."""

    _lock: threading.Lock
    _servers: dict[str, Server]

    # -- on the loop --------------------------------------------------------------------------

    def _spawn_owner(self, server: Server) -> None:
        server.stop = asyncio.Event()
        server.owner = asyncio.get_running_loop().create_task(self._own(server), name=f"mcp:{server.config.name}")

    def _set(self, server: Server, state: State, *, reason: str | None = None,
             tools: tuple[ToolInfo, ...] | None = None) -> None:
        with self._lock:
            if server.state == "failed" and state in ("stopped", "failed"):
                return  # the first failure's reason is the one to keep
            server.state = state
            if reason is not None:
                server.reason = reason
                server.log_tail = tail(server)
            if tools is not None:
                server.tools = tools
        if state != "starting":
            server.settled.set()

    async def _own(self, server: Server) -> None:
        """The owner task: open, initialize, list, wait for stop, close -- all in this task."""
        config = server.config
        name = config.name
        try:
            open_log(server)
            if config.missing_env:
                missing = ", ".join(config.missing_env)
                self._set(server, "failed", reason=f"MCP server {name}: environment variable not set: {missing}")
                return
            await self._session(server)
        except asyncio.CancelledError:
            self._set(server, "stopped")
            raise
        except BaseException as exc:  # every failure becomes this server's state, nothing escapes
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            if server.stopping:
                self._set(server, "stopped")
            else:
                self._set(server, "failed", reason=f"MCP server {name}: {await self._reason(server, exc)}")
        else:
            self._set(server, "stopped" if server.stopping else "failed",
                      reason=None if server.stopping else f"MCP server {name}: {await self._exit_reason(server)}")
        finally:
            with self._lock:
                server.session = None

    async def _session(self, server: Server) -> None:
        import anyio
        from mcp.client.session import ClientSession

        config = server.config
        read: Any
        write: Any
        log_line(server, f"starting {config.name}: {describe_launch(config)}")
        async with contextlib.AsyncExitStack() as stack:
            if config.transport == "stdio":
                from mcp.client.stdio import get_default_environment

                from chatcli.tools._stdio import open_stdio

                assert config.command is not None and server.log_fd is not None
                # The SDK's minimal environment plus the configured one: chatcli's keys stay here.
                env = get_default_environment() | dict(config.env)
                errlog = stack.enter_context(os.fdopen(os.dup(server.log_fd), "ab", buffering=0))
                streams, process = await stack.enter_async_context(open_stdio(
                    config.command, list(config.args), env=env, cwd=expand_cwd(config.cwd), errlog=errlog,
                    on_junk=lambda line: log_line(server, f"ignored a non-JSON line on stdout: {line!r}")))
                server.process = process
                read, write = streams
            else:
                import httpx2
                from mcp.client.streamable_http import streamable_http_client

                assert config.url is not None
                http = await stack.enter_async_context(httpx2.AsyncClient(
                    headers=dict(config.headers), timeout=httpx2.Timeout(30.0, read=config.timeout + 5.0)))
                read, write = await stack.enter_async_context(streamable_http_client(config.url, http_client=http))
                # (the same anyio memory streams as stdio's, typed by the SDK's private protocols)
            session = await stack.enter_async_context(ClientSession(read, write))
            with anyio.fail_after(config.startup_timeout):
                await session.initialize()
                tools = await list_all_tools(session, config.name)
            with self._lock:
                server.session = session
            self._set(server, "ready", tools=tools)
            log_line(server, f"ready: {len(tools)} tools")
            assert server.stop is not None
            waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(server.stop.wait())]
            if server.process is not None:
                waits.append(asyncio.ensure_future(server.process.exited.wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            with self._lock:
                server.session = None

    async def _returncode(self, server: Server, wait: float = 0.5) -> int | None:
        process = server.process
        if process is None:
            return None
        deadline = time.monotonic() + wait
        while process.returncode is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return process.returncode

    async def _exit_reason(self, server: Server) -> str:
        code = await self._returncode(server)
        return ("exited during a call" if server.calls else "exited") + (
            f" (exit code {code})" if code is not None else "")

    async def _reason(self, server: Server, exc: BaseException) -> str:
        config = server.config
        leaf = innermost(exc)
        if isinstance(leaf, FileNotFoundError) and config.transport == "stdio":
            if config.cwd and not Path(expand_cwd(config.cwd) or "").is_dir():
                return f"working directory not found: {config.cwd}"
            return f"command not found: {config.command}"
        if isinstance(leaf, PermissionError) and config.transport == "stdio":
            return f"cannot run {config.command}: permission denied"
        if config.transport == "http":
            import httpx2

            where = describe_launch(config).removeprefix("streamable HTTP ")  # scheme://host:port, no token
            if isinstance(leaf, httpx2.HTTPStatusError):
                return f"HTTP {leaf.response.status_code} from {where}"
            if isinstance(leaf, httpx2.TransportError) and not isinstance(leaf, httpx2.TimeoutException):
                return f"cannot connect to {where}: {describe_exc(leaf)}"
        if isinstance(leaf, TimeoutError):
            return f"no answer to initialize within {config.startup_timeout:g} s (startup_timeout)"
        if server.process is not None and server.process.exited.is_set():
            verb = "exited at start" if server.state == "starting" else "exited"
            code = await self._returncode(server)
            return verb + (f" (exit code {code})" if code is not None else "")
        return describe_exc(leaf)

    async def _stop_all(self, names: list[str], timeout: float) -> None:
        owners = []
        for name in names:
            server = self._servers.get(name)
            if server is None or server.owner is None or server.owner.done():
                continue
            server.stopping = True
            assert server.stop is not None
            server.stop.set()
            owners.append(server.owner)
        if not owners:
            return
        _done, late = await asyncio.wait(owners, timeout=max(0.1, timeout))
        for task in late:  # an owner stuck past the budget: cancel it (its transport still kills)
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=0.2)


def run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        with contextlib.suppress(Exception):
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
        loop.close()


async def list_all_tools(session: ClientSession, server: str) -> tuple[ToolInfo, ...]:
    from mcp_types import PaginatedRequestParams

    tools: list[ToolInfo] = []
    cursor: str | None = None
    for _page in range(100):  # a server that pages forever is not worth waiting for
        result = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        for tool in result.tools:
            hints = tool.annotations
            tools.append(ToolInfo(server=server, name=tool.name, description=tool.description or "",
                                  input_schema=dict(tool.input_schema),
                                  read_only=hints.read_only_hint if hints is not None else None))
        cursor = result.next_cursor
        if not cursor:
            break
    return tuple(tools)


def innermost(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups: what actually went wrong."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_exc(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if not text:
        return exc.__class__.__name__
    return text[:300]


def describe_launch(config: ServerConfig) -> str:
    if config.url is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(config.url)
        return f"streamable HTTP {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    return " ".join([config.command or "", *config.args])


def expand_cwd(cwd: str | None) -> str | None:
    return os.path.expanduser(cwd) if cwd else None
