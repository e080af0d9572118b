"""What `/tools` and `chatcli tools list` print, and `chatcli tools call`: plain functions over a
`ToolRuntime`, the same lines in the chat and in the shell. Server names, tool descriptions and
log lines are untrusted text: sanitized here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from chatcli.errors import ExitCode, UsageError
from chatcli.render.sanitize import sanitize, sanitize_line

if TYPE_CHECKING:
    from chatcli.tools.runtime import ServerStatus, ToolRuntime

#: Characters of a tool's description shown in a listing.
DESCRIPTION_WIDTH = 100


def status_lines(statuses: Iterable[ServerStatus], *, active: Iterable[str] | None = None) -> list[str]:
    """A block per server: its state (and, failed, the reason and its log's last lines), then its
    tools with the first line of their descriptions. `active`: the servers on for this chat."""
    on = None if active is None else set(active)
    lines: list[str] = []
    for status in statuses:
        name = sanitize_line(status.name)
        flag = "" if on is None else (" (on)" if status.name in on else " (off)")
        if status.state == "ready":
            count = len(status.tools)
            lines.append(f"{name}{flag}: ready, {count} tool{'s' if count != 1 else ''}")
            for tool in status.tools:
                about = sanitize_line((tool.description or "").strip().split("\n", 1)[0])
                if len(about) > DESCRIPTION_WIDTH:
                    about = about[: DESCRIPTION_WIDTH - 1] + "…"
                lines.append(f"  {sanitize_line(tool.name)}" + (f" — {about}" if about else ""))
        elif status.state == "failed":
            lines.append(f"{name}{flag}: failed: {sanitize_line(status.reason or 'unknown reason')}")
            lines += [f"  | {sanitize_line(line)}" for line in status.log_tail]
            if status.log_path is not None:
                lines.append(f"  log: {status.log_path}")
        else:
            lines.append(f"{name}{flag}: {status.state}")
    return lines


def list_cmd(runtime: ToolRuntime, out: TextIO) -> int:
    """`chatcli tools list`: start every enabled server, wait for each, print what they offer."""
    if not runtime.configs:
        out.write("no MCP servers configured: add a [mcp.servers.NAME] table to the config "
                  "(see config.example.toml)\n")
        return int(ExitCode.OK)
    runtime.start()
    runtime.wait_ready()
    statuses = runtime.status()
    for line in status_lines(statuses):
        out.write(line + "\n")
    disabled = [n for n, c in runtime.configs.items() if not c.enabled]
    if disabled:
        out.write(f"disabled in the config: {', '.join(sanitize_line(n) for n in disabled)}\n")
    return int(ExitCode.FAILED) if any(s.state == "failed" for s in statuses) else int(ExitCode.OK)


def call_cmd(runtime: ToolRuntime, server: str, tool: str, arguments: str, out: TextIO, err: TextIO) -> int:
    """`chatcli tools call NAME TOOL JSON`: run one tool with no model; the result on stdout."""
    if server not in runtime.configs:
        known = ", ".join(sorted(runtime.configs)) or "none configured"
        raise UsageError(f"no MCP server named {server!r} (servers: {known})")
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError as exc:
        raise UsageError(f"the tool's arguments are not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise UsageError('the tool\'s arguments must be a JSON object, e.g. \'{"timezone": "UTC"}\'')
    runtime.start([server])
    status = runtime.wait_ready([server])[0]
    if status.state != "ready":
        err.write(f"chatcli: {sanitize_line(status.reason or f'MCP server {server} did not start')}\n")
        for line in status.log_tail:
            err.write(f"  | {sanitize_line(line)}\n")
        return int(ExitCode.FAILED)
    outcome = runtime.call(server, tool, parsed)
    text = sanitize(outcome.text)
    out.write(text + ("" if text.endswith("\n") else "\n"))
    if outcome.status != "ok" or outcome.is_error:
        err.write(f"chatcli: {sanitize_line(server)}.{sanitize_line(tool)}: {outcome.status}"
                  f"{' (the tool reported an error)' if outcome.is_error else ''}\n")
        return int(ExitCode.INTERRUPTED) if outcome.status == "interrupted" else int(ExitCode.FAILED)
    return int(ExitCode.OK)
