"""Tools benchmark: chatcli's own cost per tool round, and what configured MCP servers cost at start.

    python benchmarks/tools_bench.py [--rounds N] [--launches N]

* own cost per round   the model's tool-call stream has ended (the provider yielded its finish)
                       -> the next request has reached the loopback server, MINUS the tool's own
                       run time (the MCP call as the runtime timed it). Real parts: the openai SDK
                       over HTTP to tests/support/sse_server.py, `mcp-server-time` over stdio, the tool
                       allowed by a flag (no question). Targets: p50 <= 20 ms, p95 <= 50 ms.
                       Printed beside it: the server's own call time, p50/p95.
* launch -> prompt     `chatcli` in a pseudo-terminal, with three MCP servers configured against
                       none, interleaved, medians: the servers start in the background and the
                       prompt must not wait for them (its target: 250 ms, or within 30 ms of the
                       run without servers).
* no mcp import        `chatcli --help` and `chatcli ask --no-tools` (three servers configured)
                       import nothing of `mcp` (checked with -X importtime, printed yes/no).

Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.sse_server import Reply, SSEServer, openai_chunks, openai_tool_call, openai_tool_chunks  # noqa: E402

NAME = "time__get_current_time"
P50_TARGET, P95_TARGET = 0.020, 0.050
PROMPT_TARGET, PROMPT_MARGIN = 0.250, 0.030


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Timed:
    """The real provider, with the moment it yielded each reply's finish noted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.supports_prefill = inner.supports_prefill
        self.finished: list[float] = []

    def warm(self, *, rehearse: bool = False) -> None:
        self.inner.warm(rehearse=rehearse)

    def stream(self, messages: Any, **kwargs: Any) -> Any:
        from chatcli.events import Finish

        for event in self.inner.stream(messages, **kwargs):
            if isinstance(event, Finish):
                self.finished.append(time.monotonic())
            yield event


def own_cost(rounds: int, home: Path) -> tuple[list[float], list[float]]:
    from chatcli.providers.openai import OpenAIProvider
    from chatcli.redact import Secret
    from chatcli.render.plain import PlainView
    from chatcli.session import Session
    from chatcli.settings import ProviderConfig
    from chatcli.tools.approval import NoTerminal
    from chatcli.tools.grants import ToolPolicy
    from chatcli.tools.host import McpHost
    from chatcli.tools.runtime import ToolRuntime
    from chatcli.tools.servers import parse_servers
    from chatcli.turn import run_turn

    costs: list[float] = []
    server_times: list[float] = []
    servers = parse_servers({"time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]}},
                            source="bench")
    with SSEServer() as server, ToolRuntime(servers, log_dir=home / "mcp") as runtime:
        arrivals: list[float] = []
        record = server._record

        def stamped(recorded: Any) -> Any:
            arrivals.append(time.monotonic())
            return record(recorded)

        server._record = stamped  # type: ignore[method-assign]  # the bench's own server, not an SDK
        runtime.start()
        runtime.wait_ready()
        cfg = ProviderConfig(name="openai", type="openai", base_url=server.openai_url,
                             api_key=Secret("sk-bench-0000000000000000"))
        provider = Timed(OpenAIProvider(cfg))
        provider.warm()
        for i in range(rounds + 3):  # the first three warm the connection and the server
            policy = ToolPolicy(servers, flags=[("time", "get_current_time")])
            host = McpHost(runtime, policy, NoTerminal(io.StringIO()), servers=["time"])
            server.add(Reply.sse(openai_tool_chunks([openai_tool_call(0, id=f"c{i}", type="function", name=NAME,
                                                                      arguments='{"timezone": "Asia/Tokyo"}')])))
            server.add(Reply.sse(openai_chunks(["It is evening."], finish="stop")))
            session = Session(provider, model="gpt-4o-mini", tools=host)
            provider.finished.clear()
            arrivals.clear()
            run_turn(session.send("what time is it in Tokyo?"), PlainView(io.StringIO(), io.StringIO()))
            tool_seconds = host.records[0].seconds
            if i >= 3:
                costs.append(arrivals[1] - provider.finished[0] - tool_seconds)
                server_times.append(tool_seconds)
    return costs, server_times


def _config(home: Path, servers: int) -> Path:
    path = home / f"config-{servers}.toml"
    body = "".join(f'[mcp.servers.time{n}]\ncommand = "mcp-server-time"\n' for n in range(servers))
    path.write_text(body)
    path.chmod(0o600)
    return path


def launches(count: int, home: Path) -> dict[int, list[float]]:
    import pexpect

    chatcli = shutil.which("chatcli", path=str(Path(sys.executable).parent)) or "chatcli"
    env = dict(os.environ, CHATCLI_HOME=str(home / "data"), OPENAI_API_KEY="sk-bench-0000000000000000",
               OPENAI_BASE_URL="http://127.0.0.1:9/v1", TERM="xterm-256color")
    found: dict[int, list[float]] = {0: [], 3: []}
    for _ in range(count):
        for servers in (0, 3):
            start = time.monotonic()
            child = pexpect.spawn(chatcli, ["--config", str(_config(home, servers))], env=env,
                                  dimensions=(40, 120), encoding="utf-8")
            child.expect_exact("\x1b[?2004h", timeout=20)
            found[servers].append(time.monotonic() - start)
            child.sendcontrol("d")
            child.expect(pexpect.EOF, timeout=20)
            child.close()
    return found


def imports_mcp(args: list[str], home: Path) -> bool:
    env = dict(os.environ, CHATCLI_HOME=str(home / "data"), OPENAI_API_KEY="sk-bench-0000000000000000",
               OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    code = "import sys; from chatcli import cli; sys.argv=['chatcli', *sys.argv[1:]]; cli.run(sys.argv[1:])"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    return any(line.split("|")[-1].strip().split(".")[0] == "mcp" for line in proc.stderr.splitlines()
               if "|" in line)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--launches", type=int, default=8)
    opts = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        costs, server_times = own_cost(opts.rounds, home)
        p50, p95 = pct(costs, 0.5), pct(costs, 0.95)
        print(f"own cost per tool round ({opts.rounds} rounds): p50 {p50 * 1000:.1f} ms (target <= 20), "
              f"p95 {p95 * 1000:.1f} ms (target <= 50)")
        print(f"mcp-server-time's own call time: p50 {pct(server_times, 0.5) * 1000:.1f} ms, "
              f"p95 {pct(server_times, 0.95) * 1000:.1f} ms")
        failed |= p50 > P50_TARGET or p95 > P95_TARGET
        if opts.launches:
            found = launches(opts.launches, home)
            none, three = statistics.median(found[0]), statistics.median(found[3])
            print(f"launch -> prompt, median of {opts.launches}: no servers {none * 1000:.1f} ms, "
                  f"three servers {three * 1000:.1f} ms ({(three - none) * 1000:+.1f} ms)")
            failed |= three > PROMPT_TARGET and three - none > PROMPT_MARGIN
        cfg = str(_config(home, 3))
        help_mcp = imports_mcp(["--help"], home)
        ask_mcp = imports_mcp(["--config", cfg, "ask", "--no-tools", "hi"], home)
        print(f"imports mcp: --help {'yes' if help_mcp else 'no'}, ask --no-tools {'yes' if ask_mcp else 'no'}")
        failed |= help_mcp or ask_mcp
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
