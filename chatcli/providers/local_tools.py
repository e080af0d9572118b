"""The embedded model's tool calling: one reply through llama-cpp-python's `chatml-function-calling`
handler (`generate_with_tools`), and that handler's hand-built completion read defensively as text,
calls and usage (`tool_reply`). chatcli/providers/local.py owns the model, its lock and the ordinary
streamed generation this falls back to; `llama_cpp` is imported here only when a reply has tools.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, TextDelta, ToolCall, ToolCallDelta, ToolCallPart, ToolSpec, Usage


def generate_with_tools(llama: Any, chat: list[dict[str, Any]], model: str, tools: Sequence[ToolSpec], *,
                        limit: int, temperature: float, fail: Callable[[Exception], ProviderError],
                        plain: Callable[[], Iterator[Event]]) -> Generator[Event, None, None]:
    """One reply through llama-cpp-python's `chatml-function-calling` handler, NOT streamed, with
    an explicit `tool_choice: "auto"`: that handler ignores tools without a `tool_choice`, and
    raises "Automatic streaming tool choice is not supported" when streaming with `auto`.

    Its "message" branch constrains the text with a grammar that admits only a function name or
    `<|im_end|>`, so when the model chooses to answer in text the reply comes back empty; then
    the reply is generated again the ordinary way (`plain`), streamed, with the GGUF's own template. The
    handler describes the tools only inside a system message, hence one when there is none.
    """
    import llama_cpp.llama_chat_format as chat_format

    handler: Any = chat_format.get_chat_completion_handler("chatml-function-calling")
    messages = chat if chat and chat[0]["role"] == "system" else [
        {"role": "system", "content": "You are a helpful assistant."}, *chat]
    counter = llama.chatcli_counter  # local.py's token counter: `budget` caps the sampled tokens
    counter.budget = limit
    try:
        response = handler(
            llama=llama, messages=messages, stream=False, tool_choice="auto",
            tools=[{"type": "function", "function": {"name": t.name, "description": t.description,
                                                     "parameters": t.parameters}} for t in tools],
            max_tokens=limit,
            temperature=temperature,
            model=model,
        )
        text, calls, usage = tool_reply(response)
    except (GeneratorExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # whatever the small model or the handler does: a clear error
        llama.reset()
        raise fail(exc) from exc
    finally:
        counter.budget = None
    if not calls and not text.strip():
        yield from plain()
        return
    if text:
        yield TextDelta(text)
    for position, call in enumerate(calls):
        yield ToolCallDelta(position, name=call.name)
        yield ToolCallDelta(position, arguments=call.arguments)
    yield from (ToolCall(call) for call in calls)
    yield usage
    yield Finish("tool_calls", raw="tool_calls") if calls else Finish("stop", raw="stop")


def tool_reply(response: Any) -> tuple[str, list[ToolCallPart], Usage]:
    """The handler's non-streamed completion as text, calls and usage, read defensively: the
    function-calling handler builds these dicts by hand."""
    response = _dict(response)
    choices = response.get("choices")
    message = _dict(_dict(choices[0]).get("message")) if isinstance(choices, list) and choices else {}
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    calls: list[ToolCallPart] = []
    for i, raw in enumerate(message.get("tool_calls") or ()):
        function = _dict(_dict(raw).get("function"))
        name, arguments, call_id = function.get("name"), function.get("arguments"), _dict(raw).get("id")
        if not isinstance(name, str) or not name:
            continue
        if isinstance(arguments, dict):
            import json

            arguments = json.dumps(arguments)
        if not isinstance(arguments, str) or not arguments.strip():
            arguments = "{}"
        calls.append(ToolCallPart(call_id if isinstance(call_id, str) and call_id else f"call_{i}", name,
                                  arguments))
    usage = _dict(response.get("usage"))
    return text, calls, Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
