"""The third-party MCP server under test, `mcp-server-time` (the dev extra), running in a real
`ToolRuntime`, in UTC so its answers do not depend on the machine's zone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from chatcli.tools.runtime import ToolRuntime
from chatcli.tools.servers import parse_servers


@contextlib.contextmanager
def time_runtime(log_dir: Path) -> Iterator[ToolRuntime]:
    servers = parse_servers({"time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]}},
                            source="test")
    rt = ToolRuntime(servers, log_dir=log_dir)
    rt.start()
    try:
        yield rt
    finally:
        rt.close()
