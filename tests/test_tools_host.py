"""The session's tool loop over a real MCP server (`mcp-server-time`, dev extra) through the
`McpHost`: an allowed call runs and its result goes into the next request; a call nobody allowed
is declined with no terminal and the model is told; a name the model was never given, and
arguments that are not JSON, are answered with an error the model can act on. The model is
scripted (the provider wire is tested in tests/test_provider_tools_*.py)."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcli.events import Finish, Notice, TextDelta, ToolCall, ToolCallPart, ToolFinished, ToolRunning, ToolStarted
from chatcli.session import Session
from chatcli.tools.approval import NoTerminal
from chatcli.tools.grants import ToolPolicy
from chatcli.tools.host import DECLINED, McpHost
from chatcli.tools.runtime import ToolRuntime
from chatcli.tools.servers import parse_servers
from tests.support.fakes import FakeProvider
from tests.support.mcp_time import time_runtime

NAME = "time__get_current_time"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolRuntime]:
    with time_runtime(tmp_path_factory.mktemp("logs")) as rt:
        yield rt


def asks(*calls: ToolCallPart) -> list[object]:
    return [*(ToolCall(c) for c in calls), Finish("tool_calls", raw="tool_calls")]


def host(runtime: ToolRuntime, err: io.StringIO, *, allowed: bool) -> McpHost:
    policy = ToolPolicy(runtime.configs, flags=[("time", "get_current_time")] if allowed else [])
    return McpHost(runtime, policy, NoTerminal(err), servers=["time"])


def test_an_allowed_call_runs_for_real_and_its_result_is_sent(runtime: ToolRuntime) -> None:
    err = io.StringIO()
    h = host(runtime, err, allowed=True)
    provider = FakeProvider([asks(ToolCallPart("c1", NAME, '{"timezone": "Asia/Tokyo"}')),
                             [TextDelta("It is evening in Tokyo."), Finish("stop", raw="stop")]])
    events = list(Session(provider, model="m", tools=h).send("What time is it in Tokyo?"))

    offered = provider.calls[0].tools or []
    assert NAME in [t.name for t in offered]
    result = provider.calls[1].messages[-1].tool_results[0]
    assert result.call_id == "c1" and result.status == "ok" and not result.is_error
    assert '"timezone": "Asia/Tokyo"' in result.content or "Asia/Tokyo" in result.content
    assert [type(e) for e in events if isinstance(e, (ToolStarted, ToolFinished))] == [ToolStarted, ToolFinished]
    assert [r.status for r in h.records] == ["ok"] and err.getvalue() == ""


def test_without_a_terminal_a_call_not_allowed_is_declined_and_named(runtime: ToolRuntime) -> None:
    err = io.StringIO()
    h = host(runtime, err, allowed=False)
    provider = FakeProvider([asks(ToolCallPart("c1", NAME, '{"timezone": "UTC"}')),
                             [TextDelta("ok, I won't."), Finish("stop", raw="stop")]])
    list(Session(provider, model="m", tools=h).send("time?"))
    result = provider.calls[1].messages[-1].tool_results[0]
    assert (result.content, result.status, result.is_error) == (DECLINED, "declined", True)
    assert "tool time.get_current_time not run: no terminal to ask" in err.getvalue()
    assert "--allow-tool time:get_current_time" in err.getvalue()


def test_unknown_names_and_bad_json_are_answered_with_errors(runtime: ToolRuntime) -> None:
    err = io.StringIO()
    h = host(runtime, err, allowed=True)
    provider = FakeProvider([asks(ToolCallPart("u", "nope__tool", "{}"), ToolCallPart("j", NAME, '{"timez')),
                             [TextDelta("sorry"), Finish("stop", raw="stop")]])
    list(Session(provider, model="m", tools=h).send("q"))
    unknown, bad = provider.calls[1].messages[-1].tool_results
    assert unknown.is_error and "no tool named 'nope__tool'" in unknown.content
    assert bad.is_error and "not valid JSON" in bad.content


def test_a_bad_timezone_is_an_error_result_not_a_crash(runtime: ToolRuntime) -> None:
    err = io.StringIO()
    h = host(runtime, err, allowed=True)
    provider = FakeProvider([asks(ToolCallPart("c", NAME, '{"timezone": "Mars/Olympus"}')),
                             [TextDelta("no such zone"), Finish("stop", raw="stop")]])
    list(Session(provider, model="m", tools=h).send("q"))
    result = provider.calls[1].messages[-1].tool_results[0]
    assert result.is_error and result.status == "error"


def test_a_server_that_fails_to_start_is_announced_once(tmp_path: Path) -> None:
    servers = parse_servers({"gone": {"command": "chatcli-no-such-server-binary"}}, source="test")
    with ToolRuntime(servers, log_dir=tmp_path) as rt:
        rt.start()
        h = McpHost(rt, ToolPolicy(rt.configs), NoTerminal(io.StringIO()), servers=["gone"])
        provider = FakeProvider([[TextDelta("hi"), Finish("stop", raw="stop")]] * 2)
        session = Session(provider, model="m", tools=h)
        first = [e for e in session.send("a") if isinstance(e, Notice)]
        second = [e for e in session.send("b") if isinstance(e, Notice)]
    assert len([n for n in first if "gone" in n.text and "not offered" in n.text]) == 1
    assert not [n for n in second if "not offered" in n.text]
    assert provider.calls[0].tools is None  # no tools to offer: nothing sent


SCRIPTED = str(Path(__file__).parent / "support" / "mcp_scripted_server.py")


def scripted_host(rt: ToolRuntime) -> McpHost:
    rt.start()
    policy = ToolPolicy(rt.configs, flags=[("lab", "slow")])
    return McpHost(rt, policy, NoTerminal(io.StringIO()), servers=["lab"])


def test_a_running_call_reports_its_elapsed_time_until_it_ends(tmp_path: Path) -> None:
    servers = parse_servers({"lab": {"command": sys.executable, "args": [SCRIPTED]}}, source="test")
    with ToolRuntime(servers, log_dir=tmp_path) as rt:
        h = scripted_host(rt)
        provider = FakeProvider([asks(ToolCallPart("c1", "lab__slow", '{"seconds": 0.6}')),
                                 [TextDelta("done"), Finish("stop", raw="stop")]])
        events = list(Session(provider, model="m", tools=h).send("slow"))
    kinds = [type(e) for e in events if isinstance(e, (ToolStarted, ToolRunning, ToolFinished))]
    assert kinds[0] is ToolStarted and kinds[-1] is ToolFinished and ToolRunning in kinds
    assert set(kinds[1:-1]) == {ToolRunning}  # the ticks sit between the start and the end
    ticks = [e.seconds for e in events if isinstance(e, ToolRunning)]
    assert ticks == sorted(ticks) and ticks[-1] <= next(e for e in events if isinstance(e, ToolFinished)).seconds


def test_stopping_at_a_tick_cancels_the_call_and_records_it_interrupted(tmp_path: Path) -> None:
    # Ctrl-C while the view draws a tick: the turn closes the session's generator at that yield.
    servers = parse_servers({"lab": {"command": sys.executable, "args": [SCRIPTED]}}, source="test")
    with ToolRuntime(servers, log_dir=tmp_path) as rt:
        h = scripted_host(rt)
        provider = FakeProvider([asks(ToolCallPart("c1", "lab__slow", '{"seconds": 33}'))])
        session = Session(provider, model="m", tools=h)
        stream = session.send("slow")
        for event in stream:
            if isinstance(event, ToolRunning):
                break
        stream.close()
        log = rt.status(["lab"])[0].log_path
        assert log is not None
        deadline = time.monotonic() + 20
        while "slow(33.0) cancelled" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "slow(33.0) cancelled" in log.read_text()  # MCP cancellation reached the server
    (result,) = session.turns[-1].tool_results
    assert result.status == "interrupted" and result.call_id == "c1"
