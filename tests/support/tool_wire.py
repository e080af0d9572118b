"""The harness both provider tool-call test modules share (tests/test_provider_tools_openai.py and
tests/test_provider_tools_anthropic.py): one loopback server and one real-SDK provider per module,
reset before each test, and the checks both wire formats answer alike."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

import pytest

from chatcli.events import Event, ToolCall, ToolCallDelta, ToolCallPart
from tests.support.sse_server import SSEServer

P = TypeVar("P")


def provider_fixtures(make: Callable[[SSEServer], P]) -> tuple[Any, Any, Any, Any]:
    """`shared_server, shared_provider, server, provider = provider_fixtures(make)` at module level.

    Building an SDK client costs ~0.1 s, so a module shares one provider (built by `make` against
    the module's server, closed at the end); `server` is that server reset for the test, and
    `provider` the shared provider once the server is reset."""

    @pytest.fixture(scope="module")
    def shared_server() -> Iterator[SSEServer]:
        with SSEServer() as srv:
            yield srv

    @pytest.fixture(scope="module")
    def shared_provider(shared_server: SSEServer) -> Iterator[P]:
        made = make(shared_server)
        yield made
        made.close()  # type: ignore[attr-defined]

    @pytest.fixture
    def server(shared_server: SSEServer) -> SSEServer:
        return shared_server.reset()

    @pytest.fixture
    def provider(shared_provider: P, server: SSEServer) -> P:
        return shared_provider

    return shared_server, shared_provider, server, provider


def calls_of(events: list[Event]) -> list[ToolCallPart]:
    return [e.call for e in events if isinstance(e, ToolCall)]


def check_closed_during_arguments(stream: Generator[Event, None, None], server: SSEServer) -> None:
    """Closing the stream once a call's arguments have started (what the session does on Ctrl-C)
    closes the HTTP response: the server sees the client hang up."""
    for event in stream:
        if isinstance(event, ToolCallDelta) and event.arguments:
            break
    stream.close()
    assert server.wait_disconnect(3.0), "the HTTP response stayed open after the stream was closed"
    assert server.disconnects == [0]
