"""A scripted provider for session, renderer, REPL and store tests (provider tests use the real SDKs),
and a terminal stand-in."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, Message, TextDelta, ToolSpec


class TTY(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@dataclass
class Call:
    messages: list[Message]
    model: str
    system: str | None
    max_tokens: int | None
    temperature: float | None
    tools: list[ToolSpec] | None = None


Script = Sequence[Event | ProviderError | BaseException]


@dataclass
class FakeProvider:
    """Plays one script per call. A script item that is an exception is raised at that point.

    `closed` counts generators closed before they finished (what Ctrl-C does to a real stream).
    """

    scripts: list[Script] = field(default_factory=list)
    name: str = "fake"
    supports_prefill: bool = False
    calls: list[Call] = field(default_factory=list)
    closed: int = 0
    warmed: bool = False
    rehearsed: bool = False

    def warm(self, *, rehearse: bool = False) -> None:
        self.warmed = True
        self.rehearsed = rehearse

    def reply(self, text: str, reason: str = "stop") -> FakeProvider:
        self.scripts.append([TextDelta(text), Finish(reason, raw=reason)])  # type: ignore[arg-type]
        return self

    def stream(self, messages: Sequence[Message], *, model: str, system: str | None = None,
               max_tokens: int | None = None, temperature: float | None = None,
               tools: Sequence[ToolSpec] | None = None) -> Iterator[Event]:
        self.calls.append(Call(list(messages), model, system, max_tokens, temperature,
                               list(tools) if tools is not None else None))
        script = self.scripts.pop(0) if self.scripts else [TextDelta("ok"), Finish("stop", raw="stop")]
        finished = False
        try:
            for item in script:
                if isinstance(item, BaseException):
                    raise item
                yield item
            finished = True
        finally:
            if not finished:
                self.closed += 1
