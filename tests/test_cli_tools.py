"""`chatcli ask` with tools, end to end: the real CLI in-process (tests/support/runner.py), a
scripted model on the loopback server (both dialects) that calls `mcp-server-time` (a real MCP
server from PyPI, dev extra).

With no terminal (the runner's streams are none), a call runs only if allowed (`--allow-tool`, or
`allow` in the config); any other call is declined, stderr names it and says how to allow it.
The next request carries each call's result under its own id; `--json` reports the calls; the
exit code is 3 when the reply ends with calls that did not run; no API key reaches the server."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.support.binary import KEY, assert_clean, cli_env
from tests.support.runner import run
from tests.support.sse_server import (
    Reply,
    SSEServer,
    ToolUse,
    anthropic_events,
    anthropic_tool_events,
    openai_chunks,
    openai_tool_call,
    openai_tool_chunks,
)

NAME = "time__get_current_time"
TOKYO = '{"timezone": "Asia/Tokyo"}'


def config(tmp_path: Path, allow: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[mcp.servers.time]\ncommand = "mcp-server-time"\nargs = ["--local-timezone", "UTC"]\n{allow}')
    path.chmod(0o600)
    return path


def calls_time(cid: str = "call_1") -> Reply:
    return Reply.sse(openai_tool_chunks([openai_tool_call(0, id=cid, type="function", name=NAME, arguments=TOKYO)]))


def final(text: str = "It is 18:00 in Tokyo.") -> Reply:
    return Reply.sse(openai_chunks([text], finish="stop", usage=(20, 8)))


def tool_messages(server: SSEServer, index: int) -> list[dict[str, object]]:
    body = server.requests[index].json
    assert body is not None
    return [m for m in body["messages"] if m.get("role") == "tool"]


@pytest.fixture
def server() -> object:
    with SSEServer() as s:
        yield s


def test_an_allowed_call_runs_and_the_answer_follows(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls_time())
    server.add(final())
    result = run(["ask", "--config", str(config(tmp_path)), "--allow-tool", "time:get_current_time",
                  "What time is it in Tokyo?"], cli_env(server))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "It is 18:00 in Tokyo.\n"
    offered = [t["function"]["name"] for t in server.requests[0].json["tools"]]  # type: ignore[index]
    assert NAME in offered
    (answer,) = tool_messages(server, 1)
    assert answer["tool_call_id"] == "call_1" and "Asia/Tokyo" in str(answer["content"])
    assert '⚙ time.get_current_time {"timezone":"Asia/Tokyo"}' in result.stderr
    assert "↳ ok · " in result.stderr
    assert_clean(result)


def test_allow_in_the_config_runs_without_a_flag(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls_time())
    server.add(final())
    result = run(["ask", "--config", str(config(tmp_path, 'allow = ["get_current_time"]\n')), "time?"],
                 cli_env(server))
    assert result.returncode == 0, result.stderr
    assert "Asia/Tokyo" in str(tool_messages(server, 1)[0]["content"])


def test_no_terminal_declines_names_the_call_and_says_how_to_allow(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls_time())
    server.add(final("I could not check the time."))
    result = run(["ask", "--config", str(config(tmp_path)), "time?"], cli_env(server))
    assert result.returncode == 0, result.stderr
    assert "chatcli: tool time.get_current_time not run: no terminal to ask — allow it with " \
           "--allow-tool time:get_current_time" in result.stderr
    (answer,) = tool_messages(server, 1)
    assert answer["content"] == "The user declined to run this tool call."


def test_json_reports_the_calls(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls_time())
    server.add(final())
    result = run(["ask", "--json", "--config", str(config(tmp_path)), "--allow-tool", "time:get_current_time",
                  "time?"], cli_env(server))
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    (call,) = payload["tool_calls"]
    assert (call["server"], call["tool"], call["arguments"], call["status"]) == ("time", "get_current_time", TOKYO,
                                                                                 "ok")
    assert "Asia/Tokyo" in call["result"] and call["seconds"] >= 0
    assert payload["text"] == "It is 18:00 in Tokyo." and payload["finish_reason"] == "stop"


def test_calls_left_by_the_round_cap_exit_3_and_are_stored_with_results(server: SSEServer, tmp_path: Path) -> None:
    cfg = config(tmp_path, 'allow = ["get_current_time"]\n')
    cfg.write_text("max_tool_rounds = 1\n" + cfg.read_text())
    server.add(calls_time("call_1"))
    server.add(calls_time("call_2"))
    result = run(["ask", "--config", str(cfg), "loop"], cli_env(server))
    assert result.returncode == 3, result.stderr
    assert "tool_calls" in result.stderr and "max_tool_rounds" in result.stderr
    db = sqlite3.connect(f"file:{Path(cli_env()['CHATCLI_HOME']) / 'history.db'}?mode=ro", uri=True)
    roles = [r[0] for r in db.execute("SELECT role FROM turns ORDER BY id")]
    assert roles == ["user", "assistant", "tool", "assistant"]


def test_no_tools_offers_nothing(server: SSEServer, tmp_path: Path) -> None:
    server.add(final("plain"))
    result = run(["ask", "--no-tools", "--config", str(config(tmp_path)), "hi"], cli_env(server))
    assert result.returncode == 0, result.stderr
    assert "tools" not in (server.requests[0].json or {})


def test_an_unknown_server_for_t_is_a_usage_error(server: SSEServer, tmp_path: Path) -> None:
    result = run(["ask", "-T", "nope", "--config", str(config(tmp_path)), "hi"], cli_env(server))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "chatcli: -T/--tools: no MCP server named 'nope' (servers: time)"]
    assert server.requests == []


def test_anthropic_dialect_end_to_end(server: SSEServer, tmp_path: Path) -> None:
    server.add(Reply.sse(anthropic_tool_events(["Checking.", ToolUse("toolu_1", NAME, (TOKYO,))])))
    server.add(Reply.sse(anthropic_events(["Evening in Tokyo."])))
    env = cli_env(None, ANTHROPIC_BASE_URL=server.anthropic_url, ANTHROPIC_API_KEY="sk-ant-canary-77aa88bb")
    result = run(["ask", "-m", "anthropic", "--config", str(config(tmp_path)), "--allow-tool",
                  "time:get_current_time", "time in Tokyo?"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Checking.\nEvening in Tokyo.\n"
    body = server.requests[1].json
    assert body is not None
    results = [b for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], list)
               for b in m["content"] if b.get("type") == "tool_result"]
    assert results[0]["tool_use_id"] == "toolu_1" and "Asia/Tokyo" in json.dumps(results[0]["content"])


def test_the_server_never_gets_the_api_key(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls_time())
    server.add(final())
    run(["ask", "--config", str(config(tmp_path)), "--allow-tool", "time:get_current_time", "q"], cli_env(server))
    logs = Path(cli_env()["CHATCLI_HOME"]) / "mcp"
    for path in logs.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace")
            assert path.stat().st_mode & 0o077 == 0


def test_ask_help_says_what_tool_calls_means() -> None:
    # SPEC: `tool_calls` is a reply that stopped with calls that did not run -- the footer, the
    # README and --help say so.
    result = run(["ask", "--help"], cli_env(None, COLUMNS="200"))
    assert result.returncode == 0
    assert "tool_calls: the reply stopped with tool calls that did not run" in " ".join(result.stdout.split())
