"""The embedded model calls a real MCP server, offline: SmolLM2-135M through llama.cpp's
function-calling handler (the `local` extra), the session's tool loop, the real `McpHost` and
`mcp-server-time` (dev extra) over stdio. No network, no key, no scripted model.

What the tiny model writes is its own business (a good call, odd arguments, another call after the
result); what must hold is chatcli's side: the call the model made ran on the server, its result
(whatever it was) went back to the model in the next request, every round ends with one finish,
and nothing crashes."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from chatcli.events import Event, Finish, Message, ToolFinished, ToolStarted, Usage
from chatcli.session import Session
from chatcli.tools.approval import NoTerminal
from chatcli.tools.grants import ToolPolicy
from chatcli.tools.host import McpHost
from chatcli.tools.runtime import ToolRuntime
from tests.support.mcp_time import time_runtime

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.skipif(shutil.which("mcp-server-time") is None, reason="mcp-server-time (dev extra)")

from chatcli.providers.local import LocalProvider  # noqa: E402
from chatcli.settings import ProviderConfig  # noqa: E402


class Recorded(LocalProvider):
    """The real local provider; it only keeps each request's messages for the assertions."""

    requests: list[list[Message]]

    def stream(self, messages: Sequence[Message], **kwargs: Any) -> Iterator[Event]:  # type: ignore[override]
        self.requests.append(list(messages))
        yield from super().stream(messages, **kwargs)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolRuntime]:
    with time_runtime(tmp_path_factory.mktemp("logs")) as rt:
        yield rt


def test_the_embedded_model_calls_mcp_server_time_and_gets_the_result(runtime: ToolRuntime, tmp_path: Path) -> None:
    provider = Recorded(ProviderConfig(name="local", type="local"), seed=0)
    provider.requests = []
    err = io.StringIO()
    policy = ToolPolicy(runtime.configs, flags=[("time", "get_current_time"), ("time", "convert_time")])
    host = McpHost(runtime, policy, NoTerminal(err), servers=["time"])
    session = Session(provider, model="smollm2", temperature=0, max_tokens=60, tools=host, max_tool_rounds=2)

    events = list(session.send("What time is it now in Tokyo? Use the get_current_time tool."))

    finished = [e for e in events if isinstance(e, ToolFinished)]
    started = [e for e in events if isinstance(e, ToolStarted)]
    assert started and finished, events  # the model called a tool, and chatcli ran it
    first = finished[0]
    assert first.server == "time" and first.tool in ("get_current_time", "convert_time")
    # The server answered: a time as JSON, or its own error about the arguments the model chose.
    assert first.result.status in ("ok", "error"), first.result
    if first.result.status == "ok":
        assert "datetime" in json.loads(first.result.content)
    assert err.getvalue() == ""  # allowed: nobody was asked, nothing declined
    # The next request carried the call and its result, by the call's id.
    assert len(provider.requests) >= 2
    sent = provider.requests[1]
    assert sent[-2].role == "assistant" and sent[-2].tool_calls[0].id == first.call.id
    assert sent[-1].role == "tool" and sent[-1].tool_results[0].call_id == first.call.id
    assert sent[-1].tool_results[0].content == first.result.content
    # The exchange ended with one finish (a reply, or the round cap), and the session can go on.
    assert [type(e) for e in events if isinstance(e, Finish)] == [Finish] and isinstance(events[-1], Finish)
    # llama.cpp's handler asks for its message and arguments with no token limit; a round that ran
    # away under its grammar took minutes. Each completion is held to max_tokens.
    assert all((u.output_tokens or 0) <= 3 * 60 for u in events if isinstance(u, Usage))
    assert session.turns[-1].role in ("assistant", "tool")
    assert [t.status for t in host.records] == [f.result.status for f in finished]
