"""Streamed OpenAI tool-call fragments put together into whole calls.

Not the SDK's `ChatCompletionStreamState`/`accumulate_delta`: it concatenates every string field,
`id` and `name` included, and raises when `index` is missing. OpenAI-compatible servers break
both assumptions. The rules here cover what they send:

* OpenAI and llama.cpp: the first fragment of a call carries `id`, `type` and `name`, later ones
  only `index` and pieces of `arguments`; parallel calls interleave by `index`.
* llama-cpp-python (forced `tool_choice`): `id` and `name` repeated in EVERY fragment — a repeat
  equal to (or a prefix of) what is stored is ignored, never appended.
* Ollama: `index` missing (before 0.4.7); `index` always 0 with a new `id` per call and the whole
  call in one fragment — an index that comes back with a different non-empty `id` (or, with no id,
  a different name) starts a new call.
* litellm/Ollama routes: `arguments` as a JSON object instead of a string — dumped to JSON text.
* vLLM: no arguments fragment at all for a tool without parameters — `""` becomes `{}`.
* Invalid JSON (vLLM dropping the final brace) is kept exactly as sent: the tool loop answers it
  with an error result; guessing a repair could run a tool with arguments nobody wrote.

`ToolCallDelta.index` is the call's position in this reply (0, 1, ...), not the wire index: with
Ollama's constant 0 the wire index tells nothing apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from chatcli.events import ToolCallDelta, ToolCallPart


@dataclass
class _Call:
    position: int
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    announced: bool = False  # the name's ToolCallDelta was yielded


def _get(obj: Any, name: str) -> Any:
    """A field of an SDK model built without validation, or of a plain dict (both occur)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class ToolCallAccumulator:
    """Feed each `delta.tool_calls[]` item to `add` (it yields the display deltas); `calls()` at
    the end gives the complete calls in the order they started."""

    def __init__(self) -> None:
        self._calls: list[_Call] = []
        self._by_index: dict[int, _Call] = {}

    def __bool__(self) -> bool:
        return any(call.name for call in self._calls)

    def add(self, fragment: Any) -> Iterator[ToolCallDelta]:
        function = _get(fragment, "function")
        call_id = _text(_get(fragment, "id"))
        name = _text(_get(function, "name"))
        arguments = _get(function, "arguments")
        call = self._target(_get(fragment, "index"), call_id, name)
        if call_id and not call.id:
            call.id = call_id
        # First sight, or a longer spelling of the stored prefix; a repeat equal to or a prefix of
        # the stored name changes nothing (`_target` already split off a different name).
        if name and (not call.name or name.startswith(call.name)):
            call.name = name
        if call.name and not call.announced:
            call.announced = True
            yield ToolCallDelta(call.position, name=call.name)
        if isinstance(arguments, dict):
            import json

            # A whole object (litellm, Ollama routes): it replaces anything sent before.
            call.arguments = [json.dumps(arguments, ensure_ascii=False)]
            yield ToolCallDelta(call.position, arguments=call.arguments[0])
        elif isinstance(arguments, str) and arguments:
            call.arguments.append(arguments)
            yield ToolCallDelta(call.position, arguments=arguments)

    def add_function_call(self, function_call: Any) -> Iterator[ToolCallDelta]:
        """The deprecated single `delta.function_call{name, arguments}`: one call, no id."""
        yield from self.add({"index": 0, "function": function_call})

    def _target(self, index: Any, call_id: str, name: str) -> _Call:
        if isinstance(index, bool) or not isinstance(index, int):
            return self._unindexed(call_id, name)
        call = self._by_index.get(index)
        if call is None or self._starts_another(call, call_id, name):
            call = self._new()
            self._by_index[index] = call
        return call

    def _unindexed(self, call_id: str, name: str) -> _Call:
        """No `index`: the call with this id, else the latest call unless this starts another."""
        if call_id:
            for call in self._calls:
                if call.id == call_id:
                    return call
        if self._calls and not self._starts_another(self._calls[-1], call_id, name):
            return self._calls[-1]
        return self._new()

    @staticmethod
    def _starts_another(call: _Call, call_id: str, name: str) -> bool:
        if call_id and call.id and call_id != call.id:
            return True
        # No id to go by: a different name (neither a repeat nor a longer spelling) is another call.
        return bool(not call_id and name and call.name and not call.name.startswith(name)
                    and not name.startswith(call.name))

    def _new(self) -> _Call:
        call = _Call(position=len(self._calls))
        self._calls.append(call)
        return call

    def calls(self) -> list[ToolCallPart]:
        """The complete calls. A call that never got a name is dropped (nothing could run it, and
        sending a nameless call back is rejected); one without an id gets a made-up one, unique
        in the reply, so its result can refer to it."""
        out: list[ToolCallPart] = []
        for call in self._calls:
            if not call.name:
                continue
            arguments = "".join(call.arguments)
            out.append(ToolCallPart(
                id=call.id or f"call_{call.position}",
                name=call.name,
                arguments=arguments if arguments.strip() else "{}",
            ))
        return out
