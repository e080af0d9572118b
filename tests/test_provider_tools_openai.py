"""OpenAI tool calls on the wire: the request's `tools`, and streamed tool-call fragments put
together by chatcli's own accumulator, through the real `openai` SDK over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, Message, TextDelta, ToolCall, ToolCallDelta, ToolCallPart, ToolSpec
from chatcli.providers.openai import OpenAIProvider
from chatcli.redact import Secret
from chatcli.settings import ProviderConfig
from tests.support.provider_checks import expect_error, finish_of, text_of
from tests.support.sse_server import (
    Reply,
    Sleep,
    SSEServer,
    openai_chunk,
    openai_error,
    openai_tool_call,
    openai_tool_chunks,
    sse,
)
from tests.support.tool_wire import calls_of, check_closed_during_arguments, provider_fixtures

pytestmark = pytest.mark.timeout(20)

CANARY = "sk-canary-tools-0123456789"
ASK = [Message("user", "weather in Paris and Tokyo?")]
WEATHER = ToolSpec("get_weather", "The weather in a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = ToolSpec("time__get_current_time", "The time in a time zone.",
                {"type": "object", "properties": {"timezone": {"type": "string"}}})


def make_provider(srv: SSEServer) -> OpenAIProvider:
    return OpenAIProvider(ProviderConfig(name="openai", type="openai", base_url=srv.openai_url,
                                         api_key=Secret(CANARY), timeout=2.0, connect_timeout=1.0))


shared_server, shared_provider, server, provider = provider_fixtures(make_provider)


def run(provider: OpenAIProvider, tools: list[ToolSpec] | None = None) -> list[Event]:
    return list(provider.stream(ASK, model="m", tools=[WEATHER, TIME] if tools is None else tools))


def deltas_by_call(events: list[Event]) -> dict[int, tuple[str | None, str]]:
    """Per display index: the name the first delta carried, and the argument fragments joined."""
    out: dict[int, tuple[str | None, str]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            name, args = out.get(e.index, (None, ""))
            if e.name is not None:
                assert name is None, f"name announced twice for call {e.index}"
                assert args == "", "arguments before the name"
                name = e.name
            out[e.index] = (name, args + e.arguments)
    return out


# -- the request --------------------------------------------------------------------------------


def test_tools_are_sent_as_function_specs(provider: OpenAIProvider, server: SSEServer) -> None:
    server.add(Reply.sse(openai_tool_chunks([], text=["hi"], finish="stop")))
    run(provider)
    body = server.requests[0].json
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                          "parameters": WEATHER.parameters}},
        {"type": "function", "function": {"name": "time__get_current_time", "description": "The time in a time zone.",
                                          "parameters": TIME.parameters}},
    ]
    assert "tool_choice" not in body  # `auto` is the default; vLLM refuses an explicit one unless enabled


@pytest.mark.parametrize("tools", [None, []])
def test_no_tools_means_no_tools_key(provider: OpenAIProvider, server: SSEServer, tools: Any) -> None:
    server.add(Reply.sse(openai_tool_chunks([], text=["hi"], finish="stop")))
    list(provider.stream(ASK, model="m", tools=tools))
    assert "tools" not in server.requests[0].json


# -- the accumulator, case by case --------------------------------------------------------------

PARIS = '{"city": "Paris"}'
TOKYO = '{"city": "Tokyo"}'

CASES: dict[str, tuple[list[Any], list[ToolCallPart]]] = {
    # OpenAI: id/name first, then argument fragments; two calls interleaved by index.
    "parallel_interleaved_by_index": ([
        [openai_tool_call(0, id="call_a", type="function", name="get_weather", arguments="")],
        [openai_tool_call(1, id="call_b", type="function", name="get_weather", arguments="")],
        openai_tool_call(0, arguments='{"city": '),
        openai_tool_call(1, arguments='{"city": "To'),
        openai_tool_call(0, arguments='"Paris"}'),
        openai_tool_call(1, arguments='kyo"}'),
    ], [ToolCallPart("call_a", "get_weather", PARIS), ToolCallPart("call_b", "get_weather", TOKYO)]),
    # llama-cpp-python, forced tool_choice: id and name repeated in every chunk.
    "id_and_name_repeated_in_every_chunk": ([
        openai_tool_call(0, id="call__0_get_weather_cmpl-1", type="function", name="get_weather", arguments=frag)
        for frag in ('{"ci', 'ty": "Pa', 'ris"}')
    ], [ToolCallPart("call__0_get_weather_cmpl-1", "get_weather", PARIS)]),
    # Ollama before 0.4.7: no index at all.
    "missing_index": ([
        openai_tool_call(None, id="call_a", name="get_weather", arguments='{"city": '),
        openai_tool_call(None, arguments='"Paris"}'),
        openai_tool_call(None, id="call_b", name="time__get_current_time", arguments='{"timezone": "Asia/Tokyo"}'),
    ], [ToolCallPart("call_a", "get_weather", PARIS),
        ToolCallPart("call_b", "time__get_current_time", '{"timezone": "Asia/Tokyo"}')]),
    # Ollama: index always 0, a new id per call, each call whole in one chunk.
    "index_always_zero_new_id_per_call": ([
        openai_tool_call(0, id="call_a", type="function", name="get_weather", arguments=PARIS),
        openai_tool_call(0, id="call_b", type="function", name="get_weather", arguments=TOKYO),
    ], [ToolCallPart("call_a", "get_weather", PARIS), ToolCallPart("call_b", "get_weather", TOKYO)]),
    "whole_call_in_one_chunk": ([
        openai_tool_call(0, id="call_a", type="function", name="get_weather", arguments=PARIS),
    ], [ToolCallPart("call_a", "get_weather", PARIS)]),
    # litellm/Ollama routes: the arguments as an object.
    "arguments_as_an_object": ([
        openai_tool_call(0, id="call_a", type="function", name="get_weather", arguments={"city": "Paris"}),
    ], [ToolCallPart("call_a", "get_weather", PARIS)]),
    # vLLM, a parameterless tool: no arguments fragment at all.
    "empty_arguments": ([
        openai_tool_call(0, id="call_a", type="function", name="time__get_current_time"),
    ], [ToolCallPart("call_a", "time__get_current_time", "{}")]),
    # vLLM under MTP dropping the final brace: kept exactly as sent.
    "invalid_json_kept_as_is": ([
        openai_tool_call(0, id="call_a", type="function", name="get_weather", arguments='{"city": '),
        openai_tool_call(0, arguments='"Paris"'),
    ], [ToolCallPart("call_a", "get_weather", '{"city": "Paris"')]),
    # A server that sends no id at all: one is made up, so the result can name it.
    "no_id": ([
        openai_tool_call(0, name="get_weather", arguments=PARIS),
    ], [ToolCallPart("call_0", "get_weather", PARIS)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tool_call_fragments_become_whole_calls(provider: OpenAIProvider, server: SSEServer, case: str) -> None:
    fragments, expected = CASES[case]
    server.add(Reply.sse(openai_tool_chunks(fragments, usage=(7, 3))))
    events = run(provider)
    assert calls_of(events) == expected
    assert finish_of(events) == Finish("tool_calls", raw="tool_calls")
    # The display deltas tell the same story: each call's name once, then its argument text.
    shown = deltas_by_call(events)
    assert [shown[i][0] for i in sorted(shown)] == [c.name for c in expected]
    if case not in ("empty_arguments",):
        assert [shown[i][1] for i in sorted(shown)] == [c.arguments for c in expected]
    # One ToolCall per call, all of them after every delta and just before the Finish.
    tail = events[-1 - len(expected):-1]
    assert all(isinstance(e, ToolCall) for e in tail)
    assert not any(isinstance(e, ToolCallDelta) for e in events[events.index(tail[0]):])


def test_finish_stop_with_calls_is_tool_calls(provider: OpenAIProvider, server: SSEServer) -> None:
    # gpt-4o and litellm's Ollama route say `stop` after a call: the calls collected decide.
    server.add(Reply.sse(openai_tool_chunks(
        [openai_tool_call(0, id="call_a", name="get_weather", arguments=PARIS)], finish="stop")))
    events = run(provider)
    assert calls_of(events) == [ToolCallPart("call_a", "get_weather", PARIS)]
    assert finish_of(events) == Finish("tool_calls", raw="stop")


def test_text_then_a_call(provider: OpenAIProvider, server: SSEServer) -> None:
    server.add(Reply.sse(openai_tool_chunks(
        [openai_tool_call(0, id="call_a", name="get_weather", arguments=PARIS)], text=["Let me ", "check."])))
    events = run(provider)
    assert text_of(events) == "Let me check."
    first_delta = next(i for i, e in enumerate(events) if isinstance(e, ToolCallDelta))
    assert all(not isinstance(e, TextDelta) for e in events[first_delta:])
    assert calls_of(events) == [ToolCallPart("call_a", "get_weather", PARIS)]


def test_argument_fragments_are_yielded_as_they_arrive(provider: OpenAIProvider, server: SSEServer) -> None:
    chunks = openai_tool_chunks([openai_tool_call(0, id="call_a", name="get_weather", arguments='{"city": '),
                                 openai_tool_call(0, arguments='"Paris"}')])
    # The server stalls after the first fragment: the name and that fragment must be out already.
    server.add(Reply.sse([*chunks[:2], Sleep(1.0), *chunks[2:]]))
    stream = provider.stream(ASK, model="m", tools=[WEATHER])
    got = [next(stream), next(stream)]
    assert got == [ToolCallDelta(0, name="get_weather"), ToolCallDelta(0, arguments='{"city": ')]
    assert server.finished == []  # the reply is still being written
    rest = list(stream)
    assert calls_of(rest) == [ToolCallPart("call_a", "get_weather", PARIS)]


# -- failures in the middle of a call -----------------------------------------------------------

def _half_call() -> list[bytes]:
    return openai_tool_chunks([openai_tool_call(0, id="call_a", name="get_weather", arguments='{"city": ')],
                              finish=None, done=False)


def test_error_event_in_the_middle_of_a_call(provider: OpenAIProvider, server: SSEServer) -> None:
    server.add(Reply.sse([*_half_call(), openai_error("upstream failed", type="server_error"), sse("[DONE]")]))
    events = run(provider)
    finish = finish_of(events)
    assert finish.reason == "error" and "upstream failed" in (finish.detail or "")
    assert calls_of(events) == []  # a half-streamed call is never handed over to run
    assert ToolCallDelta(0, name="get_weather") in events


def test_connection_cut_in_the_middle_of_a_call(provider: OpenAIProvider, server: SSEServer) -> None:
    server.add(Reply.sse(_half_call(), cut=True))
    events = run(provider)
    assert finish_of(events).reason == "error"
    assert calls_of(events) == []


def test_stream_that_ends_in_the_middle_of_a_call_is_incomplete(provider: OpenAIProvider,
                                                                 server: SSEServer) -> None:
    server.add(Reply.sse(_half_call()))
    events = run(provider)
    assert finish_of(events).reason == "incomplete"
    assert calls_of(events) == []


def test_closing_the_stream_during_the_arguments_closes_the_response(provider: OpenAIProvider,
                                                                     server: SSEServer) -> None:
    server.add(Reply.sse([*_half_call(), Sleep(5.0), openai_chunk({}, finish="tool_calls")]))
    check_closed_during_arguments(provider.stream(ASK, model="m", tools=[WEATHER]), server)


# -- a streamed request answered with something that is not a stream ----------------------------

def _expect_bad_response(provider: OpenAIProvider, server: SSEServer) -> ProviderError:
    err = expect_error(lambda: run(provider), "bad_response", canary=CANARY, provider="openai")
    assert server.openai_url in str(err)  # names the server
    return err


def test_a_plain_json_completion_with_tool_calls_is_a_bad_response(provider: OpenAIProvider,
                                                                   server: SSEServer) -> None:
    # A server that ignores `stream: true` and answers with the whole completion.
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": PARIS}}]}
    server.add(Reply.json({"id": "x", "object": "chat.completion",
                           "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}]}))
    err = _expect_bad_response(provider, server)
    assert "not an event stream" in err.message


@pytest.mark.parametrize("events", [[], [sse("[DONE]")]], ids=["zero_chunks", "done_only"])
def test_zero_chunks_is_a_bad_response(provider: OpenAIProvider, server: SSEServer, events: list[bytes]) -> None:
    # llama-cpp-python's server with `tool_choice: auto` and streaming: the SSE body just ends.
    server.add(Reply.sse(events))
    err = _expect_bad_response(provider, server)
    assert "empty response" in err.message
