"""The MCP runtime: every configured server's session, driven from chatcli's synchronous code.

The `mcp` SDK is async (anyio) and its sessions are context managers whose cancel scopes must be
entered and exited by the same task, or exit raises "Attempted to exit cancel scope in a
different task" (python-sdk #79). So:

* one daemon thread runs one asyncio loop for all servers;
* each server has one **owner task** that opens the transport and the `ClientSession`,
  initializes, lists the tools, then waits for its stop signal and closes both -- in that task;
* the caller's thread submits `call_tool` coroutines to the loop and waits on a future.

`start()` returns at once (the first prompt never waits); `wait_ready()` waits only for the servers
a reply needs. Each server is `starting`, then `ready` (with its tools) or `failed` (a one-line
reason naming the server, plus the last lines of its log), or `stopped`. Nothing raises out of
a server's failure: the reason is the state.

A server's stderr, and any non-JSON line it prints on stdout, go to its own log file in
`log_dir` (0600 in 0700); the SDK's loggers go to `mcp-client.log` there and never propagate to
the terminal. A stdio server's environment is the SDK's minimal set (`HOME LOGNAME PATH SHELL
TERM USER`) plus its configured `env`: never chatcli's API keys.

Nothing of `mcp` is imported until `start()`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chatcli.errors import UsageError
from chatcli.fsperm import create_private_file, ensure_private_dir
from chatcli.tools.names import sanitize
from chatcli.tools.results import ToolOutcome, flatten
from chatcli.tools.servers import ServerConfig

if TYPE_CHECKING:
    from mcp.client.session import ClientSession

    from chatcli.tools._stdio import StdioProcess

State = Literal["starting", "ready", "failed", "stopped"]

CLOSE_BUDGET = 3.0  # seconds for close(): every server, stdin -> SIGTERM -> kill
LOG_TAIL_LINES = 5
LOG_MAX_BYTES = 1 << 20  # a log larger than this is emptied when its server starts again
CLIENT_LOG = "mcp-client.log"
_SDK_LOGGERS = ("mcp", "httpx2", "httpcore")


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
class _Server:
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


class PendingCall:
    """A tool call running on the loop. `wait()` for its outcome; `cancel()` to interrupt it."""

    def __init__(self, runtime: ToolRuntime, server: str, tool: str) -> None:
        self._runtime = runtime
        self.server = server
        self.tool = tool
        self.started = time.monotonic()
        self.future: Future[ToolOutcome] = Future()
        self._task: asyncio.Task[ToolOutcome] | None = None
        self._cancel_requested = False

    def done(self) -> bool:
        return self.future.done()

    def wait(self, timeout: float | None = None) -> ToolOutcome | None:
        """The outcome, or None if it is not there within `timeout` (then the call runs on)."""
        try:
            return self.future.result(timeout)
        except FutureTimeout:
            return None

    def cancel(self, timeout: float = 1.0) -> ToolOutcome:
        """Interrupt the call: the SDK sends MCP `notifications/cancelled`; the outcome is `interrupted`."""
        loop = self._runtime._loop
        if loop is not None and not self.future.done():
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._cancel_on_loop)
        outcome = self.wait(timeout)
        if outcome is None:
            return self._runtime._outcome(self.server, self.tool, "interrupted",
                                          "the call was interrupted by the user", self.started)
        return outcome

    def _cancel_on_loop(self) -> None:
        self._cancel_requested = True
        if self._task is not None:
            self._task.cancel()


class ToolRuntime:
    """All MCP servers of one chatcli process. Thread-safe; every method returns within its timeout."""

    def __init__(self, servers: Mapping[str, ServerConfig] | Iterable[ServerConfig], *, log_dir: Path) -> None:
        configs = servers.values() if isinstance(servers, Mapping) else servers
        self._configs: dict[str, ServerConfig] = {config.name: config for config in configs}
        self._log_dir = Path(log_dir)
        self._lock = threading.Lock()
        self._servers: dict[str, _Server] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- the synchronous API ------------------------------------------------------------------

    @property
    def configs(self) -> Mapping[str, ServerConfig]:
        return self._configs

    def start(self, names: Iterable[str] | None = None) -> None:
        """Start these servers (default: every enabled one) in the background; returns at once.

        A server that is starting or ready is left alone; a failed or stopped one starts again.
        UsageError for a name that is not configured.
        """
        if self._closed:
            raise RuntimeError("ToolRuntime is closed")
        wanted = self._names(names)
        if not wanted:
            return
        loop = self._ensure_loop()
        for name in wanted:
            with self._lock:
                old = self._servers.get(name)
                if old is not None and old.state in ("starting", "ready"):
                    continue
                server = _Server(config=self._configs[name], log_path=self._log_path(name))
                self._servers[name] = server
            loop.call_soon_threadsafe(self._spawn_owner, server)

    def status(self, names: Iterable[str] | None = None) -> list[ServerStatus]:
        """Every configured server's state (`stopped` for one never started), in config order."""
        selected = self._configs if names is None else self._names(names, only_enabled=False)
        with self._lock:
            return [self._snapshot(name) for name in selected]

    def wait_ready(self, names: Iterable[str] | None = None, timeout: float | None = None) -> list[ServerStatus]:
        """Wait until each of these started servers is ready or failed, at most `timeout` seconds in all.

        Default `timeout`: the largest `startup_timeout` among them (plus a little). Returns their
        status (a server still `starting` after the timeout is reported as it is). Ctrl-C
        (KeyboardInterrupt) propagates: nothing is left in a bad state by leaving early.
        """
        wanted = self._names(names)
        if timeout is None:
            timeout = max((self._configs[n].startup_timeout for n in wanted), default=0.0) + 1.0
        deadline = time.monotonic() + timeout
        for name in wanted:
            with self._lock:
                server = self._servers.get(name)
            if server is not None:
                server.settled.wait(max(0.0, deadline - time.monotonic()))
        return self.status(wanted)

    def list_tools(self, names: Iterable[str] | None = None) -> list[ToolInfo]:
        """The tools of the ready servers among `names` (default: all), in server then server order."""
        selected = self._configs if names is None else self._names(names, only_enabled=False)
        with self._lock:
            return [tool for name in selected if (s := self._servers.get(name)) and s.state == "ready"
                    for tool in s.tools]

    def submit(self, server: str, tool: str, arguments: Mapping[str, Any] | None = None, *,
               timeout: float | None = None) -> PendingCall:
        """Start a tool call and return at once (for a spinner); `timeout` defaults to the server's."""
        pending = PendingCall(self, server, tool)
        with self._lock:
            state = self._servers.get(server)
        loop = self._loop
        if state is None or loop is None or self._closed:
            known = server in self._configs
            reason = f"MCP server {server} is not started" if known else f"no MCP server named {server!r}"
            pending.future.set_result(self._outcome(server, tool, "error", reason, pending.started))
            return pending
        limit = timeout if timeout is not None else state.config.timeout
        coro = self._call(state, pending, tool, dict(arguments or {}), limit)
        try:
            inner = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop stopped under us
            coro.close()
            pending.future.set_result(self._outcome(server, tool, "error", f"MCP server {server} is closed",
                                                    pending.started))
            return pending
        inner.add_done_callback(lambda f: _chain(f, pending, self))
        return pending

    def call(self, server: str, tool: str, arguments: Mapping[str, Any] | None = None, *,
             timeout: float | None = None) -> ToolOutcome:
        """Run one tool call and wait for it. Never raises for the server's failures (see ToolOutcome).

        Ctrl-C while waiting cancels the call (MCP `notifications/cancelled`) and returns an
        `interrupted` outcome instead of raising: the caller records it and goes back to the prompt.
        """
        pending = self.submit(server, tool, arguments, timeout=timeout)
        try:
            outcome = pending.wait(None)
        except KeyboardInterrupt:
            return pending.cancel()
        assert outcome is not None
        return outcome

    def stop(self, names: Iterable[str], timeout: float = CLOSE_BUDGET) -> None:
        """Close these servers (for `/tools off NAME`); they may be started again."""
        wanted = self._names(names, only_enabled=False)
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(FutureTimeout, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._stop_all(wanted, timeout), loop).result(timeout + 0.5)

    def close(self, timeout: float = CLOSE_BUDGET) -> None:
        """Close every server within `timeout` seconds (stdin closed, SIGTERM, kill) and end the thread."""
        if self._closed:
            return
        self._closed = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(FutureTimeout, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._stop_all(list(self._servers), timeout - 0.2), loop).result(timeout)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join(0.5)
        with self._lock:
            for server in self._servers.values():
                _close_fd(server)

    def __enter__(self) -> ToolRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers on the caller's side ---------------------------------------------------------

    def _names(self, names: Iterable[str] | None, *, only_enabled: bool = True) -> list[str]:
        if names is None:
            return [n for n, c in self._configs.items() if c.enabled or not only_enabled]
        result = []
        for name in names:
            if name not in self._configs:
                known = ", ".join(self._configs) or "none"
                raise UsageError(f"no MCP server named {name!r} (configured: {known})")
            result.append(name)
        return list(dict.fromkeys(result))

    def _log_path(self, name: str) -> Path:
        safe = sanitize(name)
        return self._log_dir / f"{safe if safe == name else _hashed_file(name)}.log"

    def _snapshot(self, name: str) -> ServerStatus:
        server = self._servers.get(name)
        if server is None:
            return ServerStatus(name=name, state="stopped")
        pid = server.process.pid if server.process is not None else None
        return ServerStatus(name=name, state=server.state, tools=server.tools, reason=server.reason,
                            log_tail=server.log_tail, log_path=server.log_path, pid=pid)

    def _outcome(self, server: str, tool: str, status: Literal["ok", "error", "timeout", "interrupted"],
                 text: str, started: float, is_error: bool | None = None) -> ToolOutcome:
        return ToolOutcome(server=server, tool=tool, status=status, text=text,
                           is_error=status != "ok" if is_error is None else is_error,
                           seconds=round(time.monotonic() - started, 3))

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is not None:
                return self._loop
            ensure_private_dir(self._log_dir)
            _route_sdk_logs(self._log_dir / CLIENT_LOG)
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_run_loop, args=(loop,), name="chatcli-mcp", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
            # A safety net for a caller that forgets close(): at exit, no server is left running.
            atexit.register(_close_at_exit, weakref.ref(self))
            return loop

    # -- on the loop --------------------------------------------------------------------------

    def _spawn_owner(self, server: _Server) -> None:
        server.stop = asyncio.Event()
        server.owner = asyncio.get_running_loop().create_task(self._own(server), name=f"mcp:{server.config.name}")

    def _set(self, server: _Server, state: State, *, reason: str | None = None,
             tools: tuple[ToolInfo, ...] | None = None) -> None:
        with self._lock:
            if server.state == "failed" and state in ("stopped", "failed"):
                return  # the first failure's reason is the one to keep
            server.state = state
            if reason is not None:
                server.reason = reason
                server.log_tail = _tail(server)
            if tools is not None:
                server.tools = tools
        if state != "starting":
            server.settled.set()

    async def _own(self, server: _Server) -> None:
        """The owner task: open, initialize, list, wait for stop, close -- all in this task."""
        config = server.config
        name = config.name
        try:
            _open_log(server)
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

    async def _session(self, server: _Server) -> None:
        import anyio
        from mcp.client.session import ClientSession

        config = server.config
        read: Any
        write: Any
        _log_line(server, f"starting {config.name}: {_describe_launch(config)}")
        async with contextlib.AsyncExitStack() as stack:
            if config.transport == "stdio":
                from mcp.client.stdio import get_default_environment

                from chatcli.tools._stdio import open_stdio

                assert config.command is not None and server.log_fd is not None
                # The SDK's minimal environment plus the configured one: chatcli's keys stay here.
                env = get_default_environment() | dict(config.env)
                errlog = stack.enter_context(os.fdopen(os.dup(server.log_fd), "ab", buffering=0))
                streams, process = await stack.enter_async_context(open_stdio(
                    config.command, list(config.args), env=env, cwd=_cwd(config.cwd), errlog=errlog,
                    on_junk=lambda line: _log_line(server, f"ignored a non-JSON line on stdout: {line!r}")))
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
                tools = await _list_all_tools(session, config.name)
            with self._lock:
                server.session = session
            self._set(server, "ready", tools=tools)
            _log_line(server, f"ready: {len(tools)} tools")
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

    async def _returncode(self, server: _Server, wait: float = 0.5) -> int | None:
        process = server.process
        if process is None:
            return None
        deadline = time.monotonic() + wait
        while process.returncode is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return process.returncode

    async def _exit_reason(self, server: _Server) -> str:
        code = await self._returncode(server)
        return ("exited during a call" if server.calls else "exited") + (
            f" (exit code {code})" if code is not None else "")

    async def _reason(self, server: _Server, exc: BaseException) -> str:
        config = server.config
        leaf = _leaf(exc)
        if isinstance(leaf, FileNotFoundError) and config.transport == "stdio":
            if config.cwd and not Path(_cwd(config.cwd) or "").is_dir():
                return f"working directory not found: {config.cwd}"
            return f"command not found: {config.command}"
        if isinstance(leaf, PermissionError) and config.transport == "stdio":
            return f"cannot run {config.command}: permission denied"
        if config.transport == "http":
            import httpx2

            where = _describe_launch(config).removeprefix("streamable HTTP ")  # scheme://host:port, no token
            if isinstance(leaf, httpx2.HTTPStatusError):
                return f"HTTP {leaf.response.status_code} from {where}"
            if isinstance(leaf, httpx2.TransportError) and not isinstance(leaf, httpx2.TimeoutException):
                return f"cannot connect to {where}: {_describe_exc(leaf)}"
        if isinstance(leaf, TimeoutError):
            return f"no answer to initialize within {config.startup_timeout:g} s (startup_timeout)"
        if server.process is not None and server.process.exited.is_set():
            verb = "exited at start" if server.state == "starting" else "exited"
            code = await self._returncode(server)
            return verb + (f" (exit code {code})" if code is not None else "")
        return _describe_exc(leaf)

    async def _call(self, server: _Server, pending: PendingCall, tool: str, arguments: dict[str, Any],
                    limit: float) -> ToolOutcome:
        name = server.config.name
        pending._task = asyncio.current_task()
        started = pending.started
        try:
            if pending._cancel_requested:
                raise asyncio.CancelledError
            if server.state == "starting":
                await asyncio.get_running_loop().run_in_executor(None, server.settled.wait,
                                                                 server.config.startup_timeout + 1.0)
            session = server.session
            if server.state != "ready" or session is None:
                why = server.reason or f"MCP server {name} is {server.state}"
                return self._outcome(name, tool, "error", why, started)
            server.calls += 1
            try:
                result = await session.call_tool(tool, arguments, read_timeout_seconds=limit)
            finally:
                server.calls -= 1
        except asyncio.CancelledError:
            # The SDK has sent notifications/cancelled for the request it was waiting on.
            return self._outcome(name, tool, "interrupted", "the call was interrupted by the user", started)
        except Exception as exc:
            from mcp.shared.exceptions import MCPError
            from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

            leaf = _leaf(exc)
            if server.stopping:  # close() or /tools off ended the session under the call
                return self._outcome(name, tool, "interrupted", f"MCP server {name} was stopped during the call",
                                     started)
            if isinstance(leaf, MCPError) and leaf.code == REQUEST_TIMEOUT:
                return self._outcome(name, tool, "timeout",
                                     f"MCP server {name}: {tool} timed out after {limit:g} s", started)
            if (isinstance(leaf, MCPError) and leaf.code == CONNECTION_CLOSED) or (
                    server.process is not None and server.process.exited.is_set()):
                server.calls += 1  # (still "during a call" for the owner task, which may look now)
                try:
                    code = await self._returncode(server)
                    reason = "exited during a call" + (f" (exit code {code})" if code is not None else "")
                    self._set(server, "failed", reason=f"MCP server {name}: {reason}")
                finally:
                    server.calls -= 1
                return self._outcome(name, tool, "error", f"MCP server {name}: {reason} to {tool}", started)
            return self._outcome(name, tool, "error", f"MCP server {name}: {tool}: {_describe_exc(leaf)}", started)
        text, is_error = flatten(result)
        return self._outcome(name, tool, "error" if is_error else "ok", text, started, is_error=is_error)

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


# -- small helpers ---------------------------------------------------------------------------------


def _chain(inner: Future[ToolOutcome], pending: PendingCall, runtime: ToolRuntime) -> None:
    if pending.future.done():
        return
    if inner.cancelled():
        outcome = runtime._outcome(pending.server, pending.tool, "interrupted",
                                   "the call was interrupted by the user", pending.started)
    elif (exc := inner.exception()) is not None:
        outcome = runtime._outcome(pending.server, pending.tool, "error",
                                   f"MCP server {pending.server}: {pending.tool}: {_describe_exc(exc)}",
                                   pending.started)
    else:
        outcome = inner.result()
    pending.future.set_result(outcome)


def _close_at_exit(ref: weakref.ref[ToolRuntime]) -> None:
    runtime = ref()
    if runtime is not None:
        runtime.close()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        with contextlib.suppress(Exception):
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
        loop.close()


async def _list_all_tools(session: ClientSession, server: str) -> tuple[ToolInfo, ...]:
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


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups: what actually went wrong."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe_exc(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if not text:
        return exc.__class__.__name__
    return text[:300]


def _describe_launch(config: ServerConfig) -> str:
    if config.url is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(config.url)
        return f"streamable HTTP {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    return " ".join([config.command or "", *config.args])


def _cwd(cwd: str | None) -> str | None:
    return os.path.expanduser(cwd) if cwd else None


def _hashed_file(name: str) -> str:
    import hashlib

    return sanitize(name)[:40] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def _open_log(server: _Server) -> None:
    path = server.log_path
    ensure_private_dir(path.parent)
    create_private_file(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
    with contextlib.suppress(OSError):
        if os.fstat(fd).st_size > LOG_MAX_BYTES:
            os.ftruncate(fd, 0)
    server.log_fd = fd
    server.log_offset = os.fstat(fd).st_size


def _log_line(server: _Server, text: str) -> None:
    if server.log_fd is None:
        return
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with contextlib.suppress(OSError):
        os.write(server.log_fd, f"[chatcli {stamp}] {text}\n".encode("utf-8", "replace"))


def _tail(server: _Server) -> tuple[str, ...]:
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


def _close_fd(server: _Server) -> None:
    if server.log_fd is not None:
        with contextlib.suppress(OSError):
            os.close(server.log_fd)
        server.log_fd = None


_handler: logging.FileHandler | None = None


def _route_sdk_logs(path: Path) -> None:
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
