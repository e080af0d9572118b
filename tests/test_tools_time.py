"""End to end against a server nobody on the team wrote: `mcp-server-time` (PyPI, dev extra)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcli.tools.names import ToolNames
from chatcli.tools.runtime import ToolRuntime
from chatcli.tools.servers import parse_servers


def _command() -> str:
    # The console script sits next to the interpreter in the venv; PATH may not include it.
    found = Path(sys.executable).with_name("mcp-server-time")
    return str(found) if found.exists() else (shutil.which("mcp-server-time") or "mcp-server-time")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolRuntime]:
    servers = parse_servers({"time": {"command": _command(), "args": ["--local-timezone", "UTC"]}}, source="t")
    runtime = ToolRuntime(servers, log_dir=tmp_path_factory.mktemp("time-logs"))
    runtime.start()
    runtime.wait_ready(timeout=60)
    yield runtime
    runtime.close()


def test_lists_its_two_tools(runtime: ToolRuntime) -> None:
    [time] = runtime.status()
    assert time.state == "ready", time.reason
    tools = {tool.name: tool for tool in runtime.list_tools()}
    assert set(tools) == {"get_current_time", "convert_time"}
    assert "timezone" in tools["get_current_time"].input_schema["properties"]
    assert tools["get_current_time"].description
    names = ToolNames((tool.server, tool.name) for tool in tools.values())
    assert names.lookup(names.api_name("time", "convert_time")) == ("time", "convert_time")


def test_current_time_in_tokyo(runtime: ToolRuntime) -> None:
    outcome = runtime.call("time", "get_current_time", {"timezone": "Asia/Tokyo"})
    assert (outcome.status, outcome.is_error) == ("ok", False)
    answer = json.loads(outcome.text)
    assert answer["timezone"] == "Asia/Tokyo"
    assert answer["datetime"].endswith("+09:00")


def test_convert_time(runtime: ToolRuntime) -> None:
    outcome = runtime.call("time", "convert_time", {"source_timezone": "Europe/Paris", "time": "12:00",
                                                    "target_timezone": "Asia/Tokyo"})
    assert outcome.status == "ok"
    assert json.loads(outcome.text)["target"]["timezone"] == "Asia/Tokyo"


def test_bad_timezone_is_an_error_result(runtime: ToolRuntime) -> None:
    outcome = runtime.call("time", "get_current_time", {"timezone": "Mars/Olympus_Mons"})
    assert (outcome.status, outcome.is_error) == ("error", True)
    assert "Mars/Olympus_Mons" in outcome.text
    assert runtime.call("time", "get_current_time", {"timezone": "UTC"}).status == "ok"  # still usable
