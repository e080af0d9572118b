"""The session's `ToolHost` over MCP: which tools a request offers, and one call from the model's
request to its result -- name lookup, argument check, permission, approval, the run, the cap.

Every call gets a result, and the model is told why when a call did not run: a name it was never
given, arguments that are not a JSON object, a decline. A permission comes only from the policy
(`allow` entries, `--allow-tool`, saved and chat grants) or from the approver, which is the user's
key press or, with no terminal, a decline; nothing the model or a tool says reaches either.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatcli.events import (
    Notice,
    SessionEvent,
    ToolCallPart,
    ToolFinished,
    ToolResultPart,
    ToolRunning,
    ToolSpec,
    ToolStarted,
)
from chatcli.render.sanitize import sanitize_line
from chatcli.tools.names import ToolNames
from chatcli.tools.results import DEFAULT_RESULT_LIMIT

if TYPE_CHECKING:
    from chatcli.tools.approval import Approver
    from chatcli.tools.grants import ToolPolicy
    from chatcli.tools.runtime import ToolRuntime

DECLINED = "The user declined to run this tool call."
#: How often a running call reports its elapsed time (the terminal's spinner frame rate).
TICK = 0.1


@dataclass(frozen=True)
class CallRecord:
    """One call as `ask --json` reports it."""

    server: str
    tool: str
    arguments: str
    status: str
    result: str
    seconds: float


class McpHost:
    def __init__(self, runtime: ToolRuntime, policy: ToolPolicy, approver: Approver, *,
                 servers: Iterable[str], result_limit: int = DEFAULT_RESULT_LIMIT) -> None:
        self._runtime = runtime
        self._policy = policy
        self._approver = approver
        self.servers = list(servers)
        self._limit = result_limit
        self._names = ToolNames(())
        self._reported: set[str] = set()
        self.records: list[CallRecord] = []

    @property
    def runtime(self) -> ToolRuntime:
        return self._runtime

    def enable(self, name: str, on: bool) -> None:
        """`/tools on|off NAME`: offer that server's tools from the next request on (or stop)."""
        from chatcli.errors import UsageError

        if name not in self._runtime.configs:
            known = ", ".join(sorted(self._runtime.configs)) or "none configured"
            raise UsageError(f"no MCP server named {name!r} (servers: {known})")
        if on and name not in self.servers:
            self.servers.append(name)
            self._reported.discard(name)
            self._runtime.start([name])
        elif not on and name in self.servers:
            self.servers.remove(name)

    # -- ToolHost ---------------------------------------------------------------------------------

    def specs(self) -> Generator[SessionEvent, None, Sequence[ToolSpec]]:
        if not self.servers:
            return []
        statuses = self._runtime.status(self.servers)
        starting = [s.name for s in statuses if s.state == "starting"]
        if starting:
            yield Notice(f"starting {', '.join(sanitize_line(n) for n in starting)}…")
            statuses = self._runtime.wait_ready(self.servers)
        for status in statuses:
            if status.state in ("failed", "starting") and status.name not in self._reported:
                self._reported.add(status.name)
                why = status.reason or f"MCP server {status.name} did not start in time"
                yield Notice(f"{sanitize_line(why)} — its tools are not offered (/tools shows its log)")
        tools = self._runtime.list_tools(self.servers)
        self._names = ToolNames((t.server, t.name) for t in tools)
        return [ToolSpec(self._names.api_name(t.server, t.name), t.description, dict(t.input_schema))
                for t in tools]

    def run(self, call: ToolCallPart) -> Generator[SessionEvent, None, ToolResultPart]:
        pair = self._names.lookup(call.name)
        if pair is None:
            return (yield from self._refuse(call, "?", call.name, f"Error: there is no tool named {call.name!r}."))
        server, tool = pair
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as exc:
            return (yield from self._refuse(call, server, tool, f"Error: the arguments are not valid JSON "
                                            f"({exc}); call the tool again with a JSON object."))
        if not isinstance(arguments, dict):
            return (yield from self._refuse(call, server, tool, "Error: the arguments must be a JSON object."))
        yield ToolStarted(call, server, tool)
        if not self._policy.is_allowed(server, tool):
            decision = self._approver.decide(server, tool, call.arguments)
            if decision == "decline":
                result = ToolResultPart(call.id, DECLINED, is_error=True, status="declined")
                yield self._finished(call, server, tool, result, 0.0)
                return result
            if decision == "chat":
                self._policy.allow_for_chat(server, tool)
            elif decision == "always":
                self._policy.allow_always(server, tool)
        pending = self._runtime.submit(server, tool, arguments)
        try:
            # Waited for in ticks so the view can show the elapsed time. Ctrl-C lands either in
            # the wait or in the view drawing a tick (the generator is then closed at the yield):
            # both cancel the call.
            while (outcome := pending.wait(TICK)) is None:
                yield ToolRunning(call, server, tool, time.monotonic() - pending.started)
        except BaseException:
            pending.cancel()  # MCP cancellation; the session records the call as interrupted
            raise
        content = outcome.for_model(self._limit)
        result = ToolResultPart(call.id, content, is_error=outcome.is_error or outcome.status != "ok",
                                status=outcome.status, full=outcome.text if content != outcome.text else None)
        yield self._finished(call, server, tool, result, outcome.seconds)
        return result

    # -- helpers ----------------------------------------------------------------------------------

    def _refuse(self, call: ToolCallPart, server: str, tool: str,
                text: str) -> Generator[SessionEvent, None, ToolResultPart]:
        result = ToolResultPart(call.id, text, is_error=True, status="error")
        yield self._finished(call, server, tool, result, 0.0)
        return result

    def _finished(self, call: ToolCallPart, server: str, tool: str, result: ToolResultPart,
                  seconds: float) -> ToolFinished:
        self.records.append(CallRecord(server, tool, call.arguments, result.status,
                                       result.full if result.full is not None else result.content, seconds))
        return ToolFinished(call, server, tool, result, seconds)
