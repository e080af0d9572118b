"""Messages and stream events: plain frozen values, stdlib only.

Events flow one way, provider -> session -> renderer. A provider's stream yields content
events (`TextDelta`, `ReasoningDelta`, `ToolCallDelta`, `ToolCall`, `Usage`) and ends with
exactly one `Finish`. The session adds `Retrying` while it waits before a retry (re-yielded about
once a second with the time left, so any view can show a countdown without a timer of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

# frozen, not slots: `slots=True` builds every class twice, ~0.5 ms each at import (measured), on
# the path to the first prompt; these objects live for one token, so the per-instance dict costs
# nothing that matters.

#: "tool" carries tool results (OpenAI: one `role: tool` message per result; Anthropic: a user
#: message of `tool_result` blocks). Providers map it; nothing else needs to know the difference.
Role = Literal["user", "assistant", "tool"]

#: The normalized finish reasons (docs/architecture.md, "Finish reasons").
FinishReason = Literal[
    "stop",  # the provider said the reply is complete
    "length",  # cut at the token limit (OpenAI `length`, Anthropic `max_tokens`/`model_context_window_exceeded`)
    "content_filter",  # filtered or refused (OpenAI `content_filter`/refusal delta, Anthropic `refusal`)
    "tool_calls",  # the reply stopped with tool calls that did not run (declined, not allowed, no tools, round cap)
    "pause_turn",  # Anthropic paused a long turn; /continue resumes
    "interrupted",  # the user pressed Ctrl-C
    "error",  # connection lost / error event / malformed stream after some text
    "incomplete",  # the stream ended with no finish signal at all
]
FINISH_REASONS: tuple[str, ...] = get_args(FinishReason)


# -- parts: what a message is made of besides its text ----------------------------------------
# One set of part types for tools, attachments and several models at once. A message keeps its
# text in `content` (most messages are text only, and every view and the store read it) and its
# other parts, in order, in `parts`. Providers map parts to their API's shape; nothing outside a
# provider module knows a wire shape.


@dataclass(frozen=True)
class ToolCallPart:
    """A call the model asked for. `name` is the API-safe name the model used (see chatcli/tools/);
    `arguments` is the JSON text exactly as the model sent it (it may be invalid: the tool loop
    answers invalid JSON with an error result rather than guessing)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolResultPart:
    """The answer to one `ToolCallPart`, by its id. Every call id gets one, whatever happened
    (ok, error, declined, timeout, interrupted): both APIs reject a history with an unanswered call."""

    call_id: str
    content: str  # what the model is sent (capped at tool_result_limit, the cut announced)
    is_error: bool = False
    status: str = "ok"  # ok | error | declined | interrupted | timeout | not_run
    full: str | None = None  # the whole result when `content` is a cut of it (kept in history)


@dataclass(frozen=True)
class ImagePart:
    """An image: bytes with their sniffed media type, or an http(s) URL passed on as is."""

    media_type: str  # image/png, image/jpeg, image/gif, image/webp ("" for a URL of unknown type)
    data: bytes | None = None
    url: str | None = None
    name: str | None = None  # the file name the user gave, for display and export


@dataclass(frozen=True)
class DocumentPart:
    """A document (PDF) as bytes."""

    media_type: str  # application/pdf
    data: bytes
    name: str | None = None


Part = ToolCallPart | ToolResultPart | ImagePart | DocumentPart


@dataclass(frozen=True)
class Message:
    """One message of a request. `content` is the raw (unsanitized) text; `parts` the rest, in order."""

    role: Role
    content: str
    parts: tuple[Part, ...] = ()

    @property
    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ToolCallPart))

    @property
    def tool_results(self) -> tuple[ToolResultPart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ToolResultPart))


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: the API-safe `name` (`[a-zA-Z0-9_-]`, at most 64 characters;
    the tools layer maps it back to its server's tool), a `description`, and `parameters`, the
    JSON schema of its arguments. Providers map it to their API's shape (OpenAI `function`,
    Anthropic `input_schema`, llama.cpp's function-calling format)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """Reasoning/thinking text (OpenAI-compatible `reasoning_content`/`reasoning`, Anthropic thinking)."""

    text: str


@dataclass(frozen=True)
class Usage:
    """Token usage as reported by the provider; `None` where it did not say."""

    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True)
class ToolCallDelta:
    """A tool call taking shape while the reply streams, for display: `name` on the call's first
    delta (None after), then fragments of its JSON `arguments`. `index` tells parallel calls apart."""

    index: int
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class ToolCall:
    """A complete tool call, yielded once per call before the stream's `Finish`. The provider's own
    accumulator builds it, never the SDK's helper: that one concatenates every string field, so
    servers that repeat the id and name in each chunk come out as `get_timeget_time…`."""

    call: ToolCallPart


@dataclass(frozen=True)
class Finish:
    """The end of a reply. `raw` is the provider's own value (e.g. `end_turn`), `detail` a human cause."""

    reason: FinishReason
    raw: str | None = None
    detail: str | None = None

    @property
    def complete(self) -> bool:
        return self.reason == "stop"


@dataclass(frozen=True)
class Retrying:
    """The session is waiting `delay` seconds (time left) before attempt number `attempt` of
    `attempts` (None: not known)."""

    attempt: int
    delay: float
    cause: str
    attempts: int | None = None


Event = TextDelta | ReasoningDelta | ToolCallDelta | ToolCall | Usage | Finish | Retrying


@dataclass(frozen=True)
class Notice:
    """A status line from chatcli itself (e.g. "3 oldest turns left out to fit the context window").

    Not from the provider: views print it on stderr, never on stdout.
    """

    text: str


@dataclass(frozen=True)
class ToolStarted:
    """chatcli runs a tool call now (it was allowed or approved): `server` and `tool` are the MCP
    names behind the API-safe `call.name`."""

    call: ToolCallPart
    server: str
    tool: str


@dataclass(frozen=True)
class ToolFinished:
    """A tool call ended, whatever the way (`result.status`); `seconds` is its run time."""

    call: ToolCallPart
    server: str
    tool: str
    result: ToolResultPart
    seconds: float = 0.0


@dataclass(frozen=True)
class ToolRunning:
    """A started call is still running after `seconds` (sent every few tenths of a second while
    it runs): a terminal view draws a spinner with the elapsed time; plain views ignore it."""

    call: ToolCallPart
    server: str
    tool: str
    seconds: float


#: What a session yields to a view: the provider's events plus chatcli's own notices and the
#: tool calls it runs between two rounds of a reply.
SessionEvent = Event | Notice | ToolStarted | ToolRunning | ToolFinished
