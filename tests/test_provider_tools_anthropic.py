"""Anthropic tool calls on the wire: the request's `tools`, and streamed `tool_use` blocks with
`input_json_delta`, through the real `anthropic` SDK over real HTTP."""

from __future__ import annotations

import pytest

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, Message, TextDelta, ToolCall, ToolCallDelta, ToolCallPart, ToolSpec
from chatcli.providers.anthropic import AnthropicProvider
from chatcli.redact import Secret
from chatcli.settings import ProviderConfig
from tests.support.provider_checks import expect_error, finish_of, text_of
from tests.support.sse_server import (
    Reply,
    Sleep,
    SSEServer,
    ToolUse,
    anthropic_error,
    anthropic_events,
    anthropic_tool_events,
    sse,
)
from tests.support.tool_wire import calls_of, check_closed_during_arguments, provider_fixtures

pytestmark = pytest.mark.timeout(20)

CANARY = "sk-ant-canary-tools-0123456789"
ASK = [Message("user", "weather in Paris and Tokyo?")]
WEATHER = ToolSpec("get_weather", "The weather in a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
PARIS = '{"city": "Paris"}'


def make_provider(srv: SSEServer) -> AnthropicProvider:
    return AnthropicProvider(ProviderConfig(name="anthropic", type="anthropic", base_url=srv.anthropic_url,
                                            api_key=Secret(CANARY), timeout=2.0, connect_timeout=1.0))


shared_server, shared_provider, server, provider = provider_fixtures(make_provider)


def run(provider: AnthropicProvider) -> list[Event]:
    return list(provider.stream(ASK, model="m", tools=[WEATHER]))


def test_tools_are_sent_with_input_schema(provider: AnthropicProvider, server: SSEServer) -> None:
    server.add(Reply.sse(anthropic_events(["hi"])))
    run(provider)
    assert server.requests[0].json["tools"] == [
        {"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER.parameters}]


@pytest.mark.parametrize("tools", [None, []])
def test_no_tools_means_no_tools_key(provider: AnthropicProvider, server: SSEServer,
                                     tools: list[ToolSpec] | None) -> None:
    server.add(Reply.sse(anthropic_events(["hi"])))
    list(provider.stream(ASK, model="m", tools=tools))
    assert "tools" not in server.requests[0].json


def test_text_before_and_between_tool_blocks(provider: AnthropicProvider, server: SSEServer) -> None:
    server.add(Reply.sse(anthropic_tool_events([
        "Let me check.",
        ToolUse("toolu_a", "get_weather", ("", '{"city"', ': "Paris"}')),  # the first partial_json is ''
        " And Tokyo.",
        ToolUse("toolu_b", "get_weather", ('{"city": "Tokyo"}',)),
    ])))
    events = run(provider)
    assert text_of(events) == "Let me check. And Tokyo."
    shown = [e for e in events if isinstance(e, (TextDelta, ToolCallDelta))]
    assert shown == [
        TextDelta("Let me check."),
        ToolCallDelta(0, name="get_weather"),
        ToolCallDelta(0, arguments='{"city"'),  # no empty delta for the '' fragment
        ToolCallDelta(0, arguments=': "Paris"}'),
        TextDelta(" And Tokyo."),
        ToolCallDelta(1, name="get_weather"),
        ToolCallDelta(1, arguments='{"city": "Tokyo"}'),
    ]
    assert calls_of(events) == [ToolCallPart("toolu_a", "get_weather", PARIS),
                                ToolCallPart("toolu_b", "get_weather", '{"city": "Tokyo"}')]
    assert isinstance(events[-2], ToolCall) and isinstance(events[-3], ToolCall)
    assert finish_of(events) == Finish("tool_calls", raw="tool_use")


def test_a_tool_without_input_gets_empty_object(provider: AnthropicProvider, server: SSEServer) -> None:
    server.add(Reply.sse(anthropic_tool_events([ToolUse("toolu_a", "get_weather", ("",))])))
    assert calls_of(run(provider)) == [ToolCallPart("toolu_a", "get_weather", "{}")]


def test_input_given_whole_at_block_start(provider: AnthropicProvider, server: SSEServer) -> None:
    server.add(Reply.sse(anthropic_tool_events([ToolUse("toolu_a", "get_weather", (), input={"city": "Paris"})])))
    assert calls_of(run(provider)) == [ToolCallPart("toolu_a", "get_weather", PARIS)]


def test_invalid_input_json_is_kept_as_is(provider: AnthropicProvider, server: SSEServer) -> None:
    server.add(Reply.sse(anthropic_tool_events([ToolUse("toolu_a", "get_weather", ('{"city": "Par',))])))
    assert calls_of(run(provider)) == [ToolCallPart("toolu_a", "get_weather", '{"city": "Par')]


def test_end_turn_with_tool_blocks_is_tool_calls(provider: AnthropicProvider, server: SSEServer) -> None:
    server.add(Reply.sse(anthropic_tool_events([ToolUse("toolu_a", "get_weather", (PARIS,))],
                                               stop_reason="end_turn")))
    events = run(provider)
    assert calls_of(events) == [ToolCallPart("toolu_a", "get_weather", PARIS)]
    assert finish_of(events) == Finish("tool_calls", raw="end_turn")


def _half_call() -> list[bytes]:
    return anthropic_tool_events([ToolUse("toolu_a", "get_weather", ("", '{"city": '))], stop_reason=None)[:-1]


def test_error_event_in_the_middle_of_a_call(provider: AnthropicProvider, server: SSEServer) -> None:
    server.add(Reply.sse([*_half_call(), anthropic_error("overloaded_error", "Overloaded")]))
    events = run(provider)
    finish = finish_of(events)
    assert finish.reason == "error" and finish.raw == "overloaded_error"
    assert calls_of(events) == []  # a half-streamed call is never handed over to run
    assert ToolCallDelta(0, name="get_weather") in events


def test_connection_cut_in_the_middle_of_a_call(provider: AnthropicProvider, server: SSEServer) -> None:
    server.add(Reply.sse(_half_call(), cut=True))
    events = run(provider)
    assert finish_of(events).reason == "error"
    assert calls_of(events) == []


def test_stream_that_ends_in_the_middle_of_a_call_is_incomplete(provider: AnthropicProvider,
                                                                 server: SSEServer) -> None:
    server.add(Reply.sse(_half_call()))
    events = run(provider)
    assert finish_of(events).reason == "incomplete"
    assert calls_of(events) == []


def test_closing_the_stream_during_the_arguments_closes_the_response(provider: AnthropicProvider,
                                                                     server: SSEServer) -> None:
    server.add(Reply.sse([*_half_call(), Sleep(5.0)]))
    check_closed_during_arguments(provider.stream(ASK, model="m", tools=[WEATHER]), server)


def _expect_bad_response(provider: AnthropicProvider, server: SSEServer) -> ProviderError:
    err = expect_error(lambda: run(provider), "bad_response", canary=CANARY, provider="anthropic")
    assert server.anthropic_url in str(err)
    return err


def test_a_plain_json_message_with_tool_use_is_a_bad_response(provider: AnthropicProvider,
                                                              server: SSEServer) -> None:
    server.add(Reply.json({"id": "msg", "type": "message", "role": "assistant", "model": "m",
                           "stop_reason": "tool_use", "content": [
                               {"type": "tool_use", "id": "toolu_a", "name": "get_weather",
                                "input": {"city": "Paris"}}]}))
    assert "not an event stream" in _expect_bad_response(provider, server).message


def test_zero_events_is_a_bad_response(provider: AnthropicProvider, server: SSEServer) -> None:
    server.add(Reply.sse([]))
    assert "empty response" in _expect_bad_response(provider, server).message


def test_events_without_a_block_or_stop_are_a_bad_response(provider: AnthropicProvider, server: SSEServer) -> None:
    start = anthropic_tool_events([], stop_reason=None)
    server.add(Reply.sse([*start, sse({"type": "ping"}, event="ping")]))
    _expect_bad_response(provider, server)
