"""May this tool run without asking? The policy, not the question (the REPL asks).

A call runs unasked when one of these says so, checked in this order:

    config  `allow = ["tool", ...]` in the server's table
    flag    `--allow-tool SERVER:TOOL` (repeatable), for scripts
    saved   "always allow": a grant in `tool-grants.json` in the data directory (0600 in 0700),
            bound to the server's identity (its command and args, or its URL): change those and the
            grant no longer applies, so a grant for `mcp-server-time` never lets a different program
            registered under the same name run
    chat    "allow for this chat": in memory only

Everything else is asked, or declined where nobody can be asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from chatcli.errors import UsageError
from chatcli.fsperm import Warn, ensure_private_dir, stderr_warn, write_private
from chatcli.tools.servers import ServerConfig

GRANTS_FILE = "tool-grants.json"

Reason = Literal["config", "flag", "saved", "chat"]


def parse_allow_flag(value: str) -> tuple[str, str]:
    """`SERVER:TOOL` -> (server, tool). MCP tool names cannot contain `:`, so the last one splits."""
    server, sep, tool = value.rpartition(":")
    if not sep or not server or not tool:
        raise UsageError(f"--allow-tool {value!r}: expected SERVER:TOOL, e.g. --allow-tool time:get_current_time")
    return server, tool


class SavedGrants:
    """The "always allow" grants on disk: (server name, server identity, tool) triples."""

    def __init__(self, data_dir: Path, *, warn: Warn | None = stderr_warn) -> None:
        self.path = Path(data_dir) / GRANTS_FILE
        self._warn = warn
        self._grants: set[tuple[str, str, str]] | None = None  # read on first use

    def _load(self) -> set[tuple[str, str, str]]:
        if self._grants is not None:
            return self._grants
        grants: set[tuple[str, str, str]] = set()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            for entry in data.get("grants", []):
                server, identity, tool = entry["server"], entry["identity"], entry["tool"]
                if isinstance(server, str) and isinstance(identity, str) and isinstance(tool, str):
                    grants.add((server, identity, tool))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # Unreadable grants mean "ask again", never "allow": the safe side of a broken file.
            if self._warn is not None:
                self._warn(f"{self.path}: ignoring saved tool grants ({exc.__class__.__name__}); "
                           "tools will be asked about again")
        self._grants = grants
        return grants

    def allows(self, server: ServerConfig, tool: str) -> bool:
        return (server.name, server.identity, tool) in self._load()

    def add(self, server: ServerConfig, tool: str) -> None:
        """Save a grant (atomic rewrite of the 0600 file). OSError if the data directory is unusable."""
        grants = self._load()
        grants.add((server.name, server.identity, tool))
        ensure_private_dir(self.path.parent, warn=self._warn)
        rows = [{"server": s, "identity": i, "tool": t} for s, i, t in sorted(grants)]
        write_private(self.path, json.dumps({"version": 1, "grants": rows}, indent=2, ensure_ascii=False) + "\n")

    def remove(self, server: ServerConfig, tool: str) -> None:
        grants = self._load()
        if (server.name, server.identity, tool) in grants:
            grants.discard((server.name, server.identity, tool))
            rows = [{"server": s, "identity": i, "tool": t} for s, i, t in sorted(grants)]
            write_private(self.path, json.dumps({"version": 1, "grants": rows}, indent=2, ensure_ascii=False) + "\n")


class ToolPolicy:
    """`allowed(server, tool)` for one chat (or one `ask`): config, flags, saved and chat grants."""

    def __init__(self, servers: Mapping[str, ServerConfig], *, saved: SavedGrants | None = None,
                 flags: Iterable[tuple[str, str]] = ()) -> None:
        self._servers = servers
        self._saved = saved
        self._flags = frozenset(flags)
        self._chat: set[tuple[str, str]] = set()

    def reason(self, server: str, tool: str) -> Reason | None:
        """Why the call may run unasked, or None when it must be asked (or declined)."""
        config = self._servers.get(server)
        if config is None:
            return None
        if tool in config.allow:
            return "config"
        if (server, tool) in self._flags:
            return "flag"
        if self._saved is not None and self._saved.allows(config, tool):
            return "saved"
        if (server, tool) in self._chat:
            return "chat"
        return None

    def is_allowed(self, server: str, tool: str) -> bool:
        return self.reason(server, tool) is not None

    def allow_for_chat(self, server: str, tool: str) -> None:
        self._chat.add((server, tool))

    def allow_always(self, server: str, tool: str) -> None:
        """Save a grant bound to the server's identity (and allow it for this chat, should saving fail)."""
        self._chat.add((server, tool))
        config = self._servers.get(server)
        if config is None or self._saved is None:
            return
        self._saved.add(config, tool)
