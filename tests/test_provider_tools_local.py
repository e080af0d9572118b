"""Tools on the embedded model: llama-cpp-python's `chatml-function-calling` handler, non-streamed
with `tool_choice: "auto"`, against the real bundled SmolLM2-135M GGUF (the `local` extra)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chatcli.errors import ProviderError
from chatcli.events import (
    Event,
    Finish,
    ImagePart,
    Message,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from chatcli.providers import local
from chatcli.providers.local import LocalProvider
from chatcli.settings import ProviderConfig

WEATHER = ToolSpec("get_weather", "Get the current weather in a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalProvider]:
    p = LocalProvider(ProviderConfig(name="local", type="local"), seed=0)
    p.warm()
    yield p


def one_finish(events: list[Event]) -> Finish:
    finishes = [e for e in events if isinstance(e, Finish)]
    assert len(finishes) == 1 and events[-1] is finishes[0], events
    return finishes[0]


def test_the_model_makes_a_real_call(provider: LocalProvider) -> None:
    events = list(provider.stream([Message("user", "What is the weather in Paris?")], model="smollm2",
                                  temperature=0, tools=[WEATHER]))
    calls = [e.call for e in events if isinstance(e, ToolCall)]
    assert [c.name for c in calls] == ["get_weather"], events
    assert isinstance(json.loads(calls[0].arguments), dict)  # the handler's grammar keeps it JSON
    assert calls[0].id
    assert ToolCallDelta(0, name="get_weather") in events
    assert one_finish(events) == Finish("tool_calls", raw="tool_calls")
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.input_tokens and usage.input_tokens > 20  # the tool list is in the prompt


def test_a_reply_without_a_call_is_text(provider: LocalProvider) -> None:
    # The handler's "message" branch returns empty text (its grammar admits only a function name or
    # the end token); the provider then streams an ordinary reply instead of an empty success.
    events = list(provider.stream([Message("user", "Say hello to me, nothing else.")], model="smollm2",
                                  temperature=0, max_tokens=40, tools=[WEATHER]))
    assert not any(isinstance(e, (ToolCall, ToolCallDelta)) for e in events)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip()
    assert one_finish(events).reason in ("stop", "length")


def test_a_conversation_with_a_tool_result_goes_on(provider: LocalProvider) -> None:
    # Whatever the tiny model does next (it often calls again), it ends with one Finish, no crash;
    # the result reaches the prompt as a user message (the handler's template has no tool role).
    call = ToolCallPart("call_1", "get_weather", '{"city": "Paris"}')
    history = [Message("user", "What is the weather in Paris?"), Message("assistant", "", (call,)),
               Message("tool", "", (ToolResultPart("call_1", "sunny, 21 C"),))]
    events = list(provider.stream(history, model="smollm2", temperature=0, max_tokens=40, tools=[WEATHER]))
    assert one_finish(events).reason in ("stop", "length", "tool_calls")
    assert list(local._chat_messages(history))[2] == {
        "role": "user", "content": "Result of functions.get_weather:\nsunny, 21 C"}


def test_an_image_is_refused_with_a_clear_error() -> None:
    p = LocalProvider(ProviderConfig(name="local", type="local"))  # refused before any model load
    with pytest.raises(ProviderError) as info:
        list(p.stream([Message("user", "what is this?", (ImagePart("image/png", b"\x89PNG"),))], model="m"))
    assert "does not take images" in str(info.value) and str(info.value).startswith("local")


@pytest.mark.parametrize(("response", "expected"), [
    # a call to a tool nobody offered: passed on, the tool loop answers it with an error result
    ({"choices": [{"message": {"content": None, "tool_calls": [
        {"id": "c1", "function": {"name": "nope", "arguments": "{oops"}}]}}]},
     ("", [ToolCallPart("c1", "nope", "{oops")])),
    # arguments as an object, no id, empty arguments, a nameless call (dropped)
    ({"choices": [{"message": {"content": "x", "tool_calls": [
        {"function": {"name": "a", "arguments": {"k": 1}}}, {"function": {"name": "b", "arguments": ""}},
        {"function": {"arguments": "{}"}}, "garbage"]}}]},
     ("x", [ToolCallPart("call_0", "a", '{"k": 1}'), ToolCallPart("call_1", "b", "{}")])),
    ({"choices": []}, ("", [])),
    (None, ("", [])),
])
def test_odd_handler_results_never_crash(response: Any, expected: tuple[str, list[ToolCallPart]]) -> None:
    text, calls, _usage = local._tool_reply(response)
    assert (text, calls) == expected
