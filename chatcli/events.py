"""Messages and stream events: plain frozen values, stdlib only.

Events flow one way, provider -> session -> renderer. A provider's stream yields content
events (`TextDelta`, `ReasoningDelta`, `Usage`) and ends with exactly one `Finish`. The session
adds `Retrying` while it waits before a retry (re-yielded about once a second with the time
left, so any view can show a countdown without a timer of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# frozen, not slots: `slots=True` builds every class twice, ~0.5 ms each at import (measured), on
# the path to the first prompt; these objects live for one token, so the per-instance dict costs
# nothing that matters.

Role = Literal["user", "assistant"]

#: The normalized finish reasons of SPEC.md ("Finish reasons and partial replies").
FinishReason = Literal[
    "stop",  # the provider said the reply is complete
    "length",  # cut at the token limit (OpenAI `length`, Anthropic `max_tokens`/`model_context_window_exceeded`)
    "content_filter",  # filtered or refused (OpenAI `content_filter`/refusal delta, Anthropic `refusal`)
    "tool_calls",  # the model asked for a tool chatcli did not offer
    "pause_turn",  # Anthropic paused a long turn; /continue resumes
    "interrupted",  # the user pressed Ctrl-C
    "error",  # connection lost / error event / malformed stream after some text
    "incomplete",  # the stream ended with no finish signal at all
]
FINISH_REASONS: tuple[str, ...] = get_args(FinishReason)


@dataclass(frozen=True)
class Message:
    """One message of a request. `content` is the raw (unsanitized) text."""

    role: Role
    content: str


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
    """The session is waiting `delay` seconds (time left) before attempt number `attempt`."""

    attempt: int
    delay: float
    cause: str


Event = TextDelta | ReasoningDelta | Usage | Finish | Retrying


@dataclass(frozen=True)
class Notice:
    """A status line from chatcli itself (e.g. "3 oldest turns left out to fit the context window").

    Not from the provider: views print it on stderr, never on stdout.
    """

    text: str


#: What a session yields to a view: the provider's events plus chatcli's own notices.
SessionEvent = Event | Notice
