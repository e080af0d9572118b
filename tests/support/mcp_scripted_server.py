"""A scripted MCP server (the official `mcp` SDK, stdio) for the runtime's failure tests.

    python tests/support/mcp_scripted_server.py [MODE ...]

Modes (several may be given):
    slow-start=S    sleep S seconds before serving
    hang            never answer anything (initialize times out)
    exit-at-start   write a reason to stderr and exit 3 before serving
    junk            print a banner line (not JSON) on stdout before serving
    stubborn        ignore SIGTERM and keep running after stdin closes (needs the kill)
    grandchild      start a `sleep` child first (tool child_pid), to check nothing is left behind
    http=PORT       serve streamable HTTP on 127.0.0.1:PORT instead of stdio

Tools: echo(text), env_report(), pid(), child_pid(), huge(size), fail(message), slow(seconds), crash(),
picture(), structured().

(A print() inside a tool cannot reach the protocol stream: the SDK's stdio server moves fd 1 to
stderr while it serves, so `junk` writes its banner before serving.)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image

modes = dict(arg.partition("=")[::2] for arg in sys.argv[1:])
print(f"scripted server starting, pid {os.getpid()}, modes {sorted(modes)}", file=sys.stderr, flush=True)

if "exit-at-start" in modes:
    print("scripted server: cannot open the database, giving up", file=sys.stderr, flush=True)
    sys.exit(3)
if "slow-start" in modes:
    time.sleep(float(modes["slow-start"]))
if "hang" in modes:
    while True:
        time.sleep(3600)
if "stubborn" in modes:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = None
if "grandchild" in modes:
    import subprocess

    child = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
if "junk" in modes:
    sys.stdout.write("Welcome to the scripted server! (this line is not JSON-RPC)\n")
    sys.stdout.flush()

server = MCPServer("scripted")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def env_report() -> str:
    """The environment this server was started with, as JSON."""
    return json.dumps(dict(os.environ), sort_keys=True)


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
def child_pid() -> int:
    """The pid of the `sleep` started in grandchild mode (0 without it)."""
    return child.pid if child is not None else 0


@server.tool()
def huge(size: int) -> str:
    """`size` characters of output: a head marker, filler, a tail marker."""
    body = "x" * max(0, size - 10)
    return "HEAD:" + body + ":TAIL"


@server.tool()
def fail(message: str) -> str:
    """Always fails with `message` (an is_error result)."""
    raise ToolError(message)


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer; a cancellation (notifications/cancelled) is written to stderr."""
    print(f"scripted server: slow({seconds}) started", file=sys.stderr, flush=True)
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        print(f"scripted server: slow({seconds}) cancelled", file=sys.stderr, flush=True)
        raise
    return f"slept {seconds}"


@server.tool()
def crash() -> str:
    """Die in the middle of the call."""
    print("scripted server: crashing on purpose", file=sys.stderr, flush=True)
    os._exit(7)


@server.tool()
def picture() -> Image:
    """A tiny PNG (an image content block)."""
    return Image(data=b"\x89PNG\r\n\x1a\n" + b"\0" * 24, format="png")


@server.tool()
def structured() -> dict[str, int]:
    """Structured content."""
    return {"answer": 42}


if "http" in modes:
    server.run("streamable-http", host="127.0.0.1", port=int(modes["http"]))
else:
    server.run()
if "stubborn" in modes:  # stdin closed and the SDK returned: a badly behaved server stays anyway
    while True:
        time.sleep(3600)
