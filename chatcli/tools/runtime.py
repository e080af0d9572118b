"""The MCP runtime's synchronous side: `ToolRuntime`, every configured server driven from chatcli's
synchronous code, and the per-call code (`submit`, `call`, `PendingCall`). The `mcp` SDK is async
(anyio); one daemon thread runs one asyncio loop for all servers, each server owned by one task
(chatcli/tools/lifecycle.py), and the caller's thread submits `call_tool` coroutines to that loop and
waits on a future. `start()` returns at once (the first prompt never waits); `wait_ready()` waits only
for the servers a reply needs. Nothing raises out of a server's failure: the reason is its state
(`status()`), and its log is read back by chatcli/tools/serverlog.py. Nothing of `mcp` is imported
until `start()`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Literal

from chatcli.errors import UsageError
from chatcli.fsperm import ensure_private_dir
from chatcli.tools.lifecycle import (
    CLOSE_BUDGET,
    Server,
    ServerLifecycle,
    ServerStatus,
    State,
    ToolInfo,
    describe_exc,
    innermost,
    run_loop,
)
from chatcli.tools.names import sanitize
from chatcli.tools.results import ToolOutcome, flatten
from chatcli.tools.serverlog import CLIENT_LOG, close_fd, hashed_file, route_sdk_logs
from chatcli.tools.servers import ServerConfig

__all__ = ["CLOSE_BUDGET", "PendingCall", "ServerStatus", "State", "ToolInfo", "ToolRuntime"]


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


class ToolRuntime(ServerLifecycle):
    """All MCP servers of one chatcli process. Thread-safe; every method returns within its timeout."""

    def __init__(self, servers: Mapping[str, ServerConfig] | Iterable[ServerConfig], *, log_dir: Path) -> None:
        configs = servers.values() if isinstance(servers, Mapping) else servers
        self._configs: dict[str, ServerConfig] = {config.name: config for config in configs}
        self._log_dir = Path(log_dir)
        self._lock = threading.Lock()
        self._servers: dict[str, Server] = {}
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
                server = Server(config=self._configs[name], log_path=self._log_path(name))
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
                close_fd(server)

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
        return self._log_dir / f"{safe if safe == name else hashed_file(name)}.log"

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
            route_sdk_logs(self._log_dir / CLIENT_LOG)
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=run_loop, args=(loop,), name="chatcli-mcp", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
            # A safety net for a caller that forgets close(): at exit, no server is left running.
            atexit.register(_close_at_exit, weakref.ref(self))
            return loop

    # -- on the loop: one call --------------------------------------------------------------

    async def _call(self, server: Server, pending: PendingCall, tool: str, arguments: dict[str, Any],
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

            leaf = innermost(exc)
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
            return self._outcome(name, tool, "error", f"MCP server {name}: {tool}: {describe_exc(leaf)}", started)
        text, is_error = flatten(result)
        return self._outcome(name, tool, "error" if is_error else "ok", text, started, is_error=is_error)


# -- small helpers ---------------------------------------------------------------------------------


def _chain(inner: Future[ToolOutcome], pending: PendingCall, runtime: ToolRuntime) -> None:
    if pending.future.done():
        return
    if inner.cancelled():
        outcome = runtime._outcome(pending.server, pending.tool, "interrupted",
                                   "the call was interrupted by the user", pending.started)
    elif (exc := inner.exception()) is not None:
        outcome = runtime._outcome(pending.server, pending.tool, "error",
                                   f"MCP server {pending.server}: {pending.tool}: {describe_exc(exc)}",
                                   pending.started)
    else:
        outcome = inner.result()
    pending.future.set_result(outcome)


def _close_at_exit(ref: weakref.ref[ToolRuntime]) -> None:
    runtime = ref()
    if runtime is not None:
        runtime.close()
