"""`chatcli tools list` and `chatcli tools call`, in-process (tests/support/runner.py), against
real MCP servers: `mcp-server-time` and the scripted test server's failure modes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.runner import chatcli


def config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(body)
    path.chmod(0o600)
    return str(path)


TIME = '[mcp.servers.time]\ncommand = "mcp-server-time"\nargs = ["--local-timezone", "UTC"]\n'


def test_tools_list_shows_each_server_state_and_tools(tmp_path: Path) -> None:
    scripted = f'[mcp.servers.broken]\ncommand = "{sys.executable}"\nargs = ["-c", "import sys; ' \
               'print(\'boom at start\', file=sys.stderr); sys.exit(3)"]\n'
    off = '[mcp.servers.later]\ncommand = "mcp-server-time"\nenabled = false\n'
    result = chatcli("tools", "list", "--config", config(tmp_path, TIME + scripted + off))
    lines = result.stdout.splitlines()
    assert lines[:3] == ["time: ready, 2 tools", "  get_current_time — Get current time in a specific timezone",
                         "  convert_time — Convert time between timezones"]
    assert lines[3].startswith("broken: failed: ") and "broken" in lines[3]
    assert "  | boom at start" in lines
    assert lines[-1] == "disabled in the config: later"
    assert result.exit_code == 1  # a server failed


def test_tools_list_with_no_servers_says_how_to_add_one(tmp_path: Path) -> None:
    result = chatcli("tools", "list", "--config", config(tmp_path, ""))
    assert result.exit_code == 0
    assert "no MCP servers configured" in result.stdout


def test_tools_call_runs_one_tool(tmp_path: Path) -> None:
    result = chatcli("tools", "call", "time", "get_current_time", '{"timezone": "Asia/Tokyo"}',
                     "--config", config(tmp_path, TIME))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["timezone"] == "Asia/Tokyo"


def test_tools_call_errors_are_one_line_each(tmp_path: Path) -> None:
    cfg = config(tmp_path, TIME)
    bad_json = chatcli("tools", "call", "time", "get_current_time", '{"timezone":', "--config", cfg)
    assert (bad_json.exit_code, len(bad_json.stderr.strip().splitlines())) == (2, 1)
    assert "not valid JSON" in bad_json.stderr
    no_server = chatcli("tools", "call", "nope", "x", "{}", "--config", cfg)
    assert no_server.exit_code == 2
    assert no_server.stderr.strip() == "chatcli: no MCP server named 'nope' (servers: time)"
    tool_error = chatcli("tools", "call", "time", "get_current_time", '{"timezone": "Mars/Base"}', "--config", cfg)
    assert tool_error.exit_code == 1
    assert "time.get_current_time: error (the tool reported an error)" in tool_error.stderr
    assert "Traceback" not in bad_json.stderr + no_server.stderr + tool_error.stderr


def test_a_bad_server_table_names_the_file_line_and_key(tmp_path: Path) -> None:
    result = chatcli("tools", "list", "--config", config(tmp_path, '[mcp.servers.time]\ncomand = "x"\n'))
    assert result.exit_code == 2
    assert result.stderr.strip().endswith('config.toml:2: mcp.servers.time.comand: unknown key (did you mean '
                                          '"command"?)')
