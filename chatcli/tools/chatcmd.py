"""`/tools` in the chat: each server's state and tools, `/tools on|off NAME`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcli.errors import UsageError

if TYPE_CHECKING:
    from chatcli.repl.commands import Outcome, ReplState


def tools_command(state: ReplState, args: str) -> Outcome:
    from chatcli.tools.host import McpHost
    from chatcli.tools.report import status_lines

    host = state.session.tools
    if not isinstance(host, McpHost):
        state.say("no MCP servers configured: add a [mcp.servers.NAME] table to the config "
                  "(chatcli config path shows where it is)")
        return None
    words = args.split()
    if not words:
        for line in status_lines(host.runtime.status(), active=host.servers):
            state.say(line)
        return None
    if len(words) == 2 and words[0] in ("on", "off"):
        host.enable(words[1], words[0] == "on")
        state.say(f"{words[1]}: {'on — its tools are offered from the next message' if words[0] == 'on' else 'off'}")
        return None
    raise UsageError("usage: /tools, /tools on NAME, /tools off NAME")
