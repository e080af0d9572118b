"""The conversation: its turns, `send()`, retries before the first token, and the bookkeeping
that keeps the history valid for the next request whatever happens to this one.

Rules that hold after every turn, complete or not:

* every user turn is recorded the moment it is sent, every reply the moment it ends —
  complete, partial, interrupted or failed — so a crash loses at most the reply in flight;
* a request that fails (or is stopped) before any content leaves no assistant turn at all, in
  memory or in the store; a request is built only from exchanges whose reply has text, so a
  user message left unanswered is skipped and roles always alternate user/assistant for both APIs;
* retries happen only before the first content event, each wait visible as `Retrying` events
  (one a second, with the time left) and cancellable by Ctrl-C, capped by `retry_cap`;
* every tool call id has a result before the next request: the results the tool host returned,
  "interrupted" for the calls a Ctrl-C cut short (recorded on the way out), and "not run" for
  calls that never ran (no tools enabled, the round cap, a resumed conversation) -- both APIs
  reject a history with an unanswered call.

The tool loop: when a reply ends with tool calls and a `ToolHost` is set, the provider's finish
is held back (the calls are about to run, so "the reply stopped with tool calls that did not
run" would be false), each call goes through the host (which asks for approval and runs it),
the results are recorded as one "tool" turn, and the next round streams on in the same turn of
the conversation -- until a reply has no calls, or `max_tool_rounds` rounds have run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from chatcli.errors import ProviderError
from chatcli.events import (
    Event,
    Finish,
    Message,
    Notice,
    Part,
    ReasoningDelta,
    Retrying,
    SessionEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
)
from chatcli.providers.base import Provider
from chatcli.turn import Recorder, Turn

#: Sent (never stored) to APIs without assistant prefill, to resume a partial reply.
CONTINUE_PROMPT = (
    "Your previous reply was cut off. Continue it exactly where it stopped: do not repeat any of "
    "it, do not add a preface, start with the very next character."
)

# How much of a continuation is held back to find and drop text the model repeated.
_OVERLAP_WINDOW = 160
_MIN_OVERLAP = 6


#: The result sent for a call that never ran (tools off, the round cap, a resumed conversation).
NOT_RUN = "This tool call was not run."
#: The result recorded for a call that Ctrl-C cut short.
INTERRUPTED = "The user interrupted this tool call before it finished."


class ToolHost(Protocol):
    """The tools a session offers and runs (chatcli/tools/host.py; tests script their own)."""

    def specs(self) -> Generator[SessionEvent, None, Sequence[ToolSpec]]:
        """The tools to offer in the next request. Servers still starting are waited for here,
        with a Notice the view shows ("starting NAME…")."""
        ...

    def run(self, call: ToolCallPart) -> Generator[SessionEvent, None, ToolResultPart]:
        """Approve (or decline) and run one call, yielding what the user should see while it
        runs, and return its result. Every call gets a result: declined, failed and timed-out
        calls return one too. Only KeyboardInterrupt/GeneratorExit escape."""
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
        tools: ToolHost | None = None,
        max_tool_rounds: int = 10,
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
        self.tools = tools
        self.max_tool_rounds = max_tool_rounds
        self._clock = clock
        self._sleep = sleep

    # -- the public verbs -------------------------------------------------------------------

    def send(self, text: str, parts: tuple[Part, ...] = ()) -> Generator[SessionEvent, None, None]:
        """Send a user message (its text and any attachment parts) and stream the reply, running
        the tool calls it asks for. Records every turn."""
        user = Turn("user", text, parts=parts, provider=self.provider.name, model=self.model, system=self.system)
        self.turns.append(user)
        self._record(user)
        yield from self._exchange(self.request_messages())

    def retry(self) -> Generator[SessionEvent, None, None]:
        """Regenerate the reply to the last user message (the old reply is forgotten)."""
        index = self._last_user_index()
        if index is None:
            raise ValueError("nothing to retry yet")
        for turn in self.turns[index + 1 :]:
            self._forget(turn)
        del self.turns[index + 1 :]
        yield from self._exchange(self.request_messages())

    def continue_(self) -> Generator[SessionEvent, None, None]:
        """Resume the last reply where it stopped; the new text is joined onto the same turn."""
        last = self.turns[-1] if self.turns else None
        if last is not None and last.role == "assistant" and last.tool_calls and self.tools is not None:
            # The round cap (or a resume) left calls that did not run: run them, then go on.
            yield from self._exchange(None, pending=last)
            return
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
        yield from self._exchange(messages, continuing=last)

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
        """The history as a request: only exchanges whose reply has text or tool calls, roles
        alternating, and every tool call followed by a result for each of its ids."""
        messages: list[Message] = []
        turns = self.turns
        for i, turn in enumerate(turns):
            nxt = turns[i + 1] if i + 1 < len(turns) else None
            if turn.role == "user":
                if nxt is None or (nxt.role == "assistant" and _has_reply(nxt)):
                    messages.append(Message("user", turn.content, turn.parts))
            elif turn.role == "assistant":
                if not _has_reply(turn) or not messages or messages[-1].role == "assistant":
                    continue
                calls = turn.tool_calls
                messages.append(Message("assistant", turn.content, calls))
                if calls:
                    given = nxt.tool_results if nxt is not None and nxt.role == "tool" else ()
                    messages.append(Message("tool", "", answer_every_call(calls, given)))
            # "tool" turns go out with the assistant turn whose calls they answer (above)
        return messages

    # -- the tool loop ----------------------------------------------------------------------

    def _exchange(
        self, messages: list[Message] | None, continuing: Turn | None = None, *, pending: Turn | None = None
    ) -> Generator[SessionEvent, None, None]:
        """One reply and as many tool rounds as it takes. `pending`: start by running the calls
        of that (already recorded) reply instead of sending `messages`."""
        rounds = 0
        reply = pending
        if messages is not None:
            reply = yield from self._reply(messages, continuing, run_tools=self._will_run(rounds))
        while reply is not None and reply.tool_calls and reply.finish_reason == "tool_calls" and self._will_run(rounds):
            rounds += 1
            yield from self._run_tools(reply)
            reply = yield from self._reply(self.request_messages(), run_tools=self._will_run(rounds))

    def _will_run(self, rounds: int) -> bool:
        return self.tools is not None and rounds < self.max_tool_rounds

    def _run_tools(self, reply: Turn) -> Generator[SessionEvent, None, None]:
        """Run the reply's calls one by one, committing the "tool" turn as each one ends; a call
        that Ctrl-C (or anything else) cut short is recorded as interrupted on the way out."""
        assert self.tools is not None
        calls = reply.tool_calls
        turn = Turn("tool", "", provider=self.provider.name, model=self.model, system=self.system)
        self.turns.append(turn)
        results: list[ToolResultPart] = []
        try:
            for call in calls:
                results.append((yield from self.tools.run(call)))
                turn.parts = tuple(results)
                self._record(turn)
        finally:
            if len(results) < len(calls):
                turn.parts = answer_every_call(calls, results, missing=INTERRUPTED, status="interrupted")
                self._record(turn)

    # -- the reply loop ---------------------------------------------------------------------

    def _reply(
        self, messages: list[Message], continuing: Turn | None = None, *, run_tools: bool = False
    ) -> Generator[SessionEvent, None, Turn | None]:
        """Stream one reply; return its turn (None when nothing came back). `run_tools`: the
        reply's tool calls will run next, so a finish for them is not shown to the user."""
        if self.trimmer is not None:
            messages, dropped = self.trimmer(messages, self.system)
            if dropped:
                yield Notice(
                    f"{dropped} oldest message{'s' if dropped != 1 else ''} left out of this request "
                    "to fit the model's context window (they stay in the saved history)"
                )
            overflow = getattr(self.trimmer, "overflow", None)  # context.WindowTrimmer's
            warning = overflow(messages, self.system) if callable(overflow) else None
            if warning:
                yield Notice(warning)
        if continuing is not None:
            reply = continuing
            joiner: _OverlapJoiner | None = _OverlapJoiner(reply.content) if (
                not self.provider.supports_prefill) else None
        else:
            reply = Turn("assistant", "", provider=self.provider.name, model=self.model, system=self.system)
            self.turns.append(reply)
            joiner = None
        base_out = reply.output_tokens or 0
        # The reply's text and reasoning grow in locals, put on the turn when the stream ends
        # (`finally` below, before it is recorded): `reply.content += text` on the attribute
        # copies the whole text at every delta (CPython extends a str in place only when a
        # local holds its one reference), which made a 10 MB reply quadratic. One str, not a
        # list of pieces: millions of small str objects cost ~50 bytes each in peak memory.
        content, reasoning = reply.content, reply.reasoning
        started = self._clock()
        finish: Finish | None = None
        failure: BaseException | None = None
        got_content = False
        try:
            # Inside the try: a Ctrl-C while servers start leaves no empty reply behind.
            specs = list((yield from self.tools.specs())) if self.tools is not None else []
            attempt = 1
            while True:
                try:
                    # `tools` only when there are some: providers built before tools need not know it.
                    extra = {"tools": specs} if specs else {}
                    with _closing(self.provider.stream(
                        messages,
                        model=self.model,
                        system=self.system,
                        max_tokens=self.max_tokens,
                        temperature=self.temperature,
                        **extra,
                    )) as stream:  # closing: Ctrl-C at a yield below closes the HTTP response now
                        for event in stream:
                            if isinstance(event, TextDelta):
                                text = joiner.feed(event.text) if joiner else event.text
                                if not got_content:
                                    got_content = True
                                    if continuing is None:
                                        reply.ttft = self._clock() - started
                                if text:
                                    content += text
                                    yield TextDelta(text)
                                continue
                            if isinstance(event, ReasoningDelta):
                                if not got_content and continuing is None:
                                    reply.ttft = self._clock() - started
                                got_content = True
                                reasoning += event.text
                            elif isinstance(event, Usage):
                                if event.input_tokens is not None:
                                    reply.input_tokens = event.input_tokens
                                if event.output_tokens is not None:
                                    reply.output_tokens = base_out + event.output_tokens
                            elif isinstance(event, ToolCallDelta):
                                if not got_content and continuing is None:
                                    reply.ttft = self._clock() - started
                                got_content = True
                            elif isinstance(event, ToolCall):
                                got_content = True
                                reply.parts = (*reply.parts, event.call)
                            elif isinstance(event, Finish):
                                if joiner:
                                    rest = joiner.flush()
                                    if rest:
                                        content += rest
                                        yield TextDelta(rest)
                                if reply.tool_calls and event.reason in ("stop", "tool_calls"):
                                    # Decided by the calls collected, not the reason: some servers
                                    # say `stop` with calls present. (After `length` or an error
                                    # the calls may be cut short: they do not run.)
                                    event = Finish("tool_calls", raw=event.raw, detail=event.detail)
                                    if run_tools:
                                        finish = event
                                        continue  # held back: the calls run next
                                    if self.tools is not None:
                                        event = Finish("tool_calls", raw=event.raw, detail=(
                                            f"stopped after {self.max_tool_rounds} tool rounds "
                                            "(max_tool_rounds)"))
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
            reply.content, reply.reasoning = content, reasoning
            kept = self._settle(reply, finish, failure, started, continuing, got_content, joiner)
        return reply if kept else None

    def _settle(self, reply: Turn, finish: Finish | None, failure: BaseException | None, started: float,
                continuing: Turn | None, got_content: bool, joiner: _OverlapJoiner | None) -> bool:
        """Record the reply however it ended; False when it was dropped (nothing came back)."""
        if joiner is not None and finish is None:
            reply.content += joiner.flush()
        if finish is None and continuing is None and not got_content:
            # Failed or stopped before any content: no empty assistant turn is kept or stored.
            # The user turn stays (saved, and re-sent by /retry); requests skip it until answered.
            self.turns.remove(reply)
            return False
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
        return True

    def _wait(self, attempt: int, delay: float, cause: str) -> Generator[SessionEvent, None, None]:
        """Sleep in steps of at most a second, yielding the time left (a countdown that Ctrl-C stops)."""
        left = delay
        while left > 0:
            yield Retrying(attempt=attempt, delay=left, cause=cause, attempts=self.retry_policy.max_retries + 1)
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


def _has_reply(turn: Turn) -> bool:
    return bool(turn.content or turn.tool_calls)


def answer_every_call(
    calls: Sequence[ToolCallPart], given: Sequence[ToolResultPart], *, missing: str = NOT_RUN,
    status: str = "not_run",
) -> tuple[ToolResultPart, ...]:
    """One result per call, in the calls' order: the given result for an id, else `missing`.
    Results for ids the calls do not have are dropped (Anthropic rejects an orphan result)."""
    by_id = {r.call_id: r for r in given}
    return tuple(
        by_id.get(c.id) or ToolResultPart(c.id, missing, is_error=True, status=status) for c in calls
    )


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
