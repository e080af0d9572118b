"""The provider contract.

`stream()` is a synchronous generator of events:

* content events (`TextDelta`, `ReasoningDelta`, `ToolCallDelta`, `Usage`), then one `ToolCall`
  per complete tool call when the reply finishes with `tool_calls`, then exactly one `Finish`;
* `tools` offers tools to the model (None or empty: no tools, the request is what it always was);
* a failure before any content raises a classified `ProviderError` (never an SDK exception);
* a failure after content (a `ToolCallDelta` counts) ends the stream with `Finish("error", detail=...)`,
  and a tool call that was still streaming is not yielded as a `ToolCall` (nothing may run it);
* a stream that stops with no finish signal ends with `Finish("incomplete")`, never `stop`;
* the SDK stream is opened in a `with` block, so closing the generator (Ctrl-C) closes the
  HTTP response and the server sees the disconnect.

SDK objects and exceptions never leave the provider module. SDK built-in retries are off:
retrying is the session's job (`session.py`), where the waits are visible and cancellable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from chatcli.events import Event, Message, ToolSpec


class Provider(Protocol):
    name: str
    #: True when the API continues a reply from a trailing assistant message (Anthropic prefill).
    supports_prefill: bool

    def warm(self, *, rehearse: bool = False) -> None:
        """Do the slow one-time work now (import the SDK, load a model). Safe to call from a thread.

        `rehearse`: also do what the first request would do for the first time, where that is
        cheap and offline (the SDK providers play one reply in memory). For the REPL, which
        warms up while the user types; not for `ask`, whose real request comes at once."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> Iterator[Event]: ...
