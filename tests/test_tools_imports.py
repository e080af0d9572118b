"""Nothing of `mcp` (or the stack under it) is imported until a server is started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_HEAVY = {"mcp", "mcp_types", "anyio", "httpx2", "pydantic", "starlette", "uvicorn"}
_ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import sys
from pathlib import Path
import chatcli.tools, chatcli.tools.servers, chatcli.tools.names, chatcli.tools.results
import chatcli.tools.grants, chatcli.tools.runtime
from chatcli.tools.grants import SavedGrants, ToolPolicy
from chatcli.tools.runtime import ToolRuntime
from chatcli.tools.servers import parse_servers
servers = parse_servers({"time": {"command": "mcp-server-time"}}, source="t")
runtime = ToolRuntime(servers, log_dir=Path(sys.argv[1]))
ToolPolicy(servers, saved=SavedGrants(Path(sys.argv[1]))).is_allowed("time", "get_current_time")
runtime.status(); runtime.list_tools(); runtime.close()
print(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(","))))
"""


def test_importing_and_configuring_tools_loads_no_sdk(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(_ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path), ",".join(_HEAVY)], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
