"""The conversation: its turns, `send()`, retries before the first token, and the bookkeeping
that keeps the history valid for the next request whatever happens to this one.

Rules that hold after every turn, complete or not:

* every user turn is recorded the moment it is sent, every reply the moment it ends —
  complete, partial, interrupted or failed — so a crash loses at most the reply in flight;
* a request that fails (or is stopped) before any content leaves no assistant turn at all, in
  memory or in the store; a request is built only from exchanges whose reply has text, so a
  user message left unanswered is skipped and roles always alternate user/assistant for both APIs;
* retries happen only before the first content event, each wait visible as `Retrying` events
  (one a second, with the time left) and cancellable by Ctrl-C, capped by `retry_cap`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from chatcli.errors import ProviderError
from chatcli.events import (
    Event,
    Finish,
    FinishReason,
    Message,
    Notice,
    Part,
    ReasoningDelta,
    Retrying,
    SessionEvent,
    TextDelta,
    Usage,
)
from chatcli.providers.base import Provider

#: Sent (never stored) to APIs without assistant prefill, to resume a partial reply.
CONTINUE_PROMPT = (
    "Your previous reply was cut off. Continue it exactly where it stopped: do not repeat any of "
    "it, do not add a preface, start with the very next character."
)

# How much of a continuation is held back to find and drop text the model repeated.
_OVERLAP_WINDOW = 160
_MIN_OVERLAP = 6


@dataclass
class Turn:
    """One stored turn. `content` is raw model/user text: sanitizing is for display only."""

    role: str  # "user" | "assistant" | "tool"
    content: str
    # Non-text parts in order (tool calls on a reply, tool results on a "tool" turn, attachments on
    # a user turn): the types of chatcli/events.py.
    parts: tuple[Part, ...] = ()
    created: float = field(default_factory=time.time)
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    finish_reason: FinishReason | None = None  # assistant turns only
    finish_raw: str | None = None
    finish_detail: str | None = None
    reasoning: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft: float | None = None  # seconds from request to first content
    duration: float | None = None  # seconds from request to end
    id: int | None = None  # set by the store

    @property
    def partial(self) -> bool:
        return self.role == "assistant" and self.finish_reason not in (None, "stop")


class Recorder(Protocol):
    """Where turns go when they end (the SQLite store, or nothing with --no-save)."""

    def record(self, turn: Turn) -> None:
        """Insert the turn, or update it if it has an id already. Must not raise for I/O failures."""
        ...

    def forget(self, turn: Turn) -> None:
        """Remove a stored turn (/undo, /retry)."""
        ...


#: Leaves out the oldest messages that do not fit: returns (kept messages, how many left out).
Trimmer = Callable[[Sequence[Message], str | None], tuple[list[Message], int]]


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    cap: float = 60.0  # the longest wait accepted; a longer retry-after fails at once
    base: float = 0.5
    max_backoff: float = 8.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before `attempt` (2 = the first retry)."""
        if retry_after is not None and retry_after >= 0:
            return retry_after
        return float(min(self.base * 2 ** (attempt - 2), self.max_backoff))


class Session:
    def __init__(
        self,
        provider: Provider,
        *,
        model: str,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        retry: RetryPolicy | None = None,
        recorder: Recorder | None = None,
        trimmer: Trimmer | None = None,
        turns: list[Turn] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        self.model = model
        self.system = system
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.retry_policy = retry or RetryPolicy()
        self.recorder = recorder
        self.trimmer = trimmer
        self.turns: list[Turn] = turns if turns is not None else []
        self._clock = clock
        self._sleep = sleep

    # -- the public verbs -------------------------------------------------------------------

    def send(self, text: str) -> Generator[SessionEvent, None, None]:
        """Send a user message and stream the reply. Records both turns."""
        user = Turn("user", text, provider=self.provider.name, model=self.model, system=self.system)
        self.turns.append(user)
        self._record(user)
        yield from self._reply(self.request_messages())

    def retry(self) -> Generator[SessionEvent, None, None]:
        """Regenerate the reply to the last user message (the old reply is forgotten)."""
        index = self._last_user_index()
        if index is None:
            raise ValueError("nothing to retry yet")
        for turn in self.turns[index + 1 :]:
            self._forget(turn)
        del self.turns[index + 1 :]
        yield from self._reply(self.request_messages())

    def continue_(self) -> Generator[SessionEvent, None, None]:
        """Resume the last reply where it stopped; the new text is joined onto the same turn."""
        last = self.turns[-1] if self.turns else None
        if last is None or last.role != "assistant" or not last.content:
            raise ValueError("there is no partial reply to continue")
        if self.provider.supports_prefill:
            # The API rejects a prefill ending in whitespace and the provider strips it from the
            # request; strip the stored text too, or the continuation's own leading whitespace
            # doubles it ("foo \n\n" + "\n\nbar").
            last.content = last.content.rstrip()
        messages = self.request_messages()
        if not self.provider.supports_prefill:
            messages.append(Message("user", CONTINUE_PROMPT))
        yield from self._reply(messages, continuing=last)

    def undo(self) -> bool:
        """Drop the last exchange (the last user message and everything after it)."""
        index = self._last_user_index()
        if index is None:
            return False
        for turn in self.turns[index:]:
            self._forget(turn)
        del self.turns[index:]
        return True

    def set_model(self, provider: Provider, model: str) -> None:
        """Switch provider/model mid-conversation; the history is kept and sent to the new one."""
        self.provider = provider
        self.model = model

    @property
    def last_reply(self) -> Turn | None:
        for turn in reversed(self.turns):
            if turn.role == "assistant":
                return turn
        return None

    # -- building requests ------------------------------------------------------------------

    def request_messages(self) -> list[Message]:
        """The history as a request: only exchanges whose reply has text, roles alternating."""
        messages: list[Message] = []
        turns = self.turns
        for i, turn in enumerate(turns):
            if turn.role == "user":
                nxt = turns[i + 1] if i + 1 < len(turns) else None
                if nxt is None:
                    messages.append(Message("user", turn.content))  # the question being asked now
                elif nxt.role == "assistant" and nxt.content:
                    messages.append(Message("user", turn.content))
            elif turn.content and messages and messages[-1].role == "user":
                messages.append(Message("assistant", turn.content))
        return messages

    # -- the reply loop ---------------------------------------------------------------------

    def _reply(
        self, messages: list[Message], continuing: Turn | None = None
    ) -> Generator[SessionEvent, None, None]:
        if self.trimmer is not None:
            messages, dropped = self.trimmer(messages, self.system)
            if dropped:
                yield Notice(
                    f"{dropped} oldest message{'s' if dropped != 1 else ''} left out of this request "
                    "to fit the model's context window (they stay in the saved history)"
                )
        if continuing is not None:
            reply = continuing
            joiner: _OverlapJoiner | None = _OverlapJoiner(reply.content) if (
                not self.provider.supports_prefill) else None
        else:
            reply = Turn("assistant", "", provider=self.provider.name, model=self.model, system=self.system)
            self.turns.append(reply)
            joiner = None
        base_out = reply.output_tokens or 0
        started = self._clock()
        finish: Finish | None = None
        failure: BaseException | None = None
        got_content = False
        try:
            attempt = 1
            while True:
                try:
                    with _closing(self.provider.stream(
                        messages,
                        model=self.model,
                        system=self.system,
                        max_tokens=self.max_tokens,
                        temperature=self.temperature,
                    )) as stream:  # closing: Ctrl-C at a yield below closes the HTTP response now
                        for event in stream:
                            if isinstance(event, TextDelta):
                                text = joiner.feed(event.text) if joiner else event.text
                                if not got_content:
                                    got_content = True
                                    if continuing is None:
                                        reply.ttft = self._clock() - started
                                if text:
                                    reply.content += text
                                    yield TextDelta(text)
                                continue
                            if isinstance(event, ReasoningDelta):
                                if not got_content and continuing is None:
                                    reply.ttft = self._clock() - started
                                got_content = True
                                reply.reasoning += event.text
                            elif isinstance(event, Usage):
                                if event.input_tokens is not None:
                                    reply.input_tokens = event.input_tokens
                                if event.output_tokens is not None:
                                    reply.output_tokens = base_out + event.output_tokens
                            elif isinstance(event, Finish):
                                if joiner:
                                    rest = joiner.flush()
                                    if rest:
                                        reply.content += rest
                                        yield TextDelta(rest)
                                finish = event
                            yield event
                    break
                except ProviderError as exc:
                    if got_content:
                        # Providers end with Finish("error") after content; this is the safety net.
                        finish = Finish("error", detail=exc.message)
                        yield finish
                        break
                    if not exc.retryable or attempt > self.retry_policy.max_retries:
                        raise
                    attempt += 1
                    delay = self.retry_policy.delay(attempt, exc.retry_after)
                    if delay > self.retry_policy.cap:
                        raise ProviderError(
                            exc.kind,
                            f"{exc.cause}; the server asks to wait {delay:.0f}s, longer than the "
                            f"{self.retry_policy.cap:.0f}s retry cap — try again later",
                            provider=exc.provider, base_url=exc.base_url, status=exc.status,
                        ) from exc
                    yield from self._wait(attempt, delay, exc.cause)
            if finish is None:
                finish = Finish("incomplete", detail="the stream ended without a finish signal")
                yield finish
        except BaseException as exc:  # KeyboardInterrupt, GeneratorExit, ProviderError, bugs
            failure = exc
            raise
        finally:
            self._settle(reply, finish, failure, started, continuing, got_content, joiner)

    def _settle(self, reply: Turn, finish: Finish | None, failure: BaseException | None, started: float,
                continuing: Turn | None, got_content: bool, joiner: _OverlapJoiner | None) -> None:
        if joiner is not None and finish is None:
            reply.content += joiner.flush()
        if finish is None and continuing is None and not got_content:
            # Failed or stopped before any content: no empty assistant turn is kept or stored.
            # The user turn stays (saved, and re-sent by /retry); requests skip it until answered.
            self.turns.remove(reply)
            return
        if finish is None:
            if isinstance(failure, (KeyboardInterrupt, GeneratorExit)):
                finish = Finish("interrupted", detail="stopped by the user")
            elif isinstance(failure, SystemExit):  # signals.Terminated: SIGTERM/SIGHUP mid-reply
                finish = Finish("interrupted", detail=str(failure) or "chatcli was stopped")
            elif isinstance(failure, ProviderError):
                finish = Finish("error", raw=failure.kind, detail=failure.message)
            else:
                finish = Finish("error", detail=f"internal error: {type(failure).__name__}")
        reply.finish_reason = finish.reason
        reply.finish_raw = finish.raw
        reply.finish_detail = finish.detail
        elapsed = self._clock() - started
        reply.duration = elapsed if reply.duration is None else reply.duration + elapsed
        self._record(reply)

    def _wait(self, attempt: int, delay: float, cause: str) -> Generator[SessionEvent, None, None]:
        """Sleep in steps of at most a second, yielding the time left (a countdown that Ctrl-C stops)."""
        left = delay
        while left > 0:
            yield Retrying(attempt=attempt, delay=left, cause=cause)
            step = min(1.0, left)
            self._sleep(step)
            left -= step

    # -- helpers ----------------------------------------------------------------------------

    def _last_user_index(self) -> int | None:
        for i in range(len(self.turns) - 1, -1, -1):
            if self.turns[i].role == "user":
                return i
        return None

    def _record(self, turn: Turn) -> None:
        if self.recorder is not None:
            self.recorder.record(turn)

    def _forget(self, turn: Turn) -> None:
        if self.recorder is not None:
            self.recorder.forget(turn)


@contextlib.contextmanager
def _closing(events: Iterator[Event]) -> Iterator[Iterator[Event]]:
    """Close the provider's generator on any exit, so its `with` block closes the connection now
    rather than whenever the generator is garbage-collected."""
    try:
        yield events
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


class _OverlapJoiner:
    """Joins a continuation onto a partial reply, dropping text the model repeated.

    APIs without prefill are asked to continue "exactly where it stopped", but models often
    restart a few words back. The first `_OVERLAP_WINDOW` characters are held back; then the
    longest suffix of the old text (at least `_MIN_OVERLAP` characters) that the new text starts
    with is dropped.
    """

    def __init__(self, previous: str) -> None:
        self._tail = previous[-400:]
        self._held = ""
        self._done = False

    def feed(self, text: str) -> str:
        if self._done:
            return text
        self._held += text
        if len(self._held) < _OVERLAP_WINDOW:
            return ""
        return self.flush()

    def flush(self) -> str:
        if self._done:
            return ""
        self._done = True
        held, self._held = self._held, ""
        return held[overlap(self._tail, held):]


def overlap(previous: str, new: str) -> int:
    """Length of the longest suffix of `previous` that `new` starts with (0 if under the minimum)."""
    stripped = new.lstrip()
    lead = len(new) - len(stripped)
    for size in range(min(len(previous), len(stripped)), _MIN_OVERLAP - 1, -1):
        if previous.endswith(stripped[:size]):
            return lead + size
    return 0
