"""Session bookkeeping: history validity, retries before the first token, recording, /continue."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chatcli.errors import ProviderError
from chatcli.events import Finish, Message, Notice, Retrying, TextDelta, Usage
from chatcli.session import CONTINUE_PROMPT, RetryPolicy, Session, overlap
from chatcli.turn import Turn, run_turn
from tests.support.fakes import FakeProvider


class ListRecorder:
    def __init__(self) -> None:
        self.rows: dict[int, Turn] = {}
        self.log: list[tuple[str, str, str | None]] = []
        self._next = 1

    def record(self, turn: Turn) -> None:
        if turn.id is None:
            turn.id = self._next
            self._next += 1
        self.rows[turn.id] = Turn(**{**turn.__dict__})
        self.log.append((turn.role, turn.content, turn.finish_reason))

    def forget(self, turn: Turn) -> None:
        if turn.id is not None:
            self.rows.pop(turn.id, None)


class RecordingView:
    def __init__(self) -> None:
        self.events: list[object] = []
        self.closed = 0

    def feed(self, event: object) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed += 1


def err(kind: str, retry_after: float | None = None) -> ProviderError:
    return ProviderError(kind, f"{kind} happened", provider="fake", base_url="http://127.0.0.1:1",  # type: ignore[arg-type]
                         retry_after=retry_after)


def drain(session: Session, text: str) -> list[object]:
    return list(session.send(text))


def roles(messages: Sequence[Message]) -> list[str]:
    return [m.role for m in messages]


def test_multi_turn_history_is_sent() -> None:
    fake = FakeProvider().reply("hi there").reply("second")
    session = Session(fake, model="m", system="be brief", max_tokens=50, temperature=0.2)
    drain(session, "hello")
    drain(session, "again")
    last = fake.calls[-1]
    assert [(m.role, m.content) for m in last.messages] == [
        ("user", "hello"), ("assistant", "hi there"), ("user", "again")]
    assert (last.model, last.system, last.max_tokens, last.temperature) == ("m", "be brief", 50, 0.2)


def test_turns_recorded_when_they_end_with_fields() -> None:
    fake = FakeProvider(scripts=[[TextDelta("ab"), TextDelta("c"), Usage(5, 7), Finish("length", raw="max_tokens")]])
    rec = ListRecorder()
    clock = iter([0.0, 0.25, 1.0, 2.0, 3.0])
    session = Session(fake, model="m", recorder=rec, clock=lambda: next(clock))
    events = drain(session, "q")
    assert events[-1] == Finish("length", raw="max_tokens")
    assert rec.log == [("user", "q", None), ("assistant", "abc", "length")]
    reply = session.last_reply
    assert reply is not None and reply.partial
    assert (reply.input_tokens, reply.output_tokens, reply.finish_raw) == (5, 7, "max_tokens")
    assert reply.ttft == 0.25 and reply.duration == 1.0


def test_stream_without_finish_is_incomplete_never_stop() -> None:
    fake = FakeProvider(scripts=[[TextDelta("cut")]])
    session = Session(fake, model="m")
    events = drain(session, "q")
    assert isinstance(events[-1], Finish) and events[-1].reason == "incomplete"
    assert session.last_reply is not None and session.last_reply.finish_reason == "incomplete"


def test_failed_request_leaves_history_valid() -> None:
    fake = FakeProvider(scripts=[[TextDelta("one"), Finish("stop")], [err("auth")], [TextDelta("two"), Finish("stop")]])
    rec = ListRecorder()
    session = Session(fake, model="m", recorder=rec)
    drain(session, "first")
    with pytest.raises(ProviderError):
        drain(session, "broken")
    drain(session, "third")
    # the failed exchange is stored but not sent: roles alternate, no empty assistant message
    assert [(m.role, m.content) for m in fake.calls[-1].messages] == [
        ("user", "first"), ("assistant", "one"), ("user", "third")]
    # no empty assistant turn anywhere: the unanswered user message is kept, then skipped
    assert [(r, c) for r, c, _ in rec.log] == [("user", "first"), ("assistant", "one"), ("user", "broken"),
                                             ("user", "third"), ("assistant", "two")]
    assert [t.role for t in session.turns] == ["user", "assistant", "user", "user", "assistant"]


def test_retry_before_first_token_with_visible_countdown() -> None:
    fake = FakeProvider(scripts=[[err("rate_limited", retry_after=2.5)], [err("overloaded")],
                                 [TextDelta("ok"), Finish("stop")]])
    sleeps: list[float] = []
    session = Session(fake, model="m", sleep=sleeps.append, retry=RetryPolicy(max_retries=3))
    events = drain(session, "q")
    waits = [e for e in events if isinstance(e, Retrying)]
    assert [(w.attempt, w.delay) for w in waits] == [(2, 2.5), (2, 1.5), (2, 0.5), (3, 1.0)]
    assert sleeps == [1.0, 1.0, 0.5, 1.0]
    assert len(fake.calls) == 3 and events[-1] == Finish("stop")


def test_retry_events_say_out_of_how_many_attempts() -> None:
    fake = FakeProvider(scripts=[[err("overloaded")], [err("overloaded")], [TextDelta("ok"), Finish("stop")]])
    session = Session(fake, model="m", sleep=lambda s: None, retry=RetryPolicy(max_retries=3))
    waits = [e for e in drain(session, "q") if isinstance(e, Retrying)]
    assert {(w.attempt, w.attempts) for w in waits} == {(2, 4), (3, 4)}  # the first try plus 3 retries


@pytest.mark.parametrize("kind", ["auth", "not_found", "bad_request", "context_length", "quota"])
def test_non_retryable_errors_are_not_retried(kind: str) -> None:
    fake = FakeProvider(scripts=[[err(kind)], [TextDelta("never")]])
    session = Session(fake, model="m", sleep=lambda s: pytest.fail("slept"))
    with pytest.raises(ProviderError) as info:
        drain(session, "q")
    assert info.value.kind == kind and len(fake.calls) == 1


def test_retry_after_beyond_cap_fails_at_once() -> None:
    fake = FakeProvider(scripts=[[err("rate_limited", retry_after=3600)]])
    session = Session(fake, model="m", sleep=lambda s: pytest.fail("slept"), retry=RetryPolicy(cap=60))
    with pytest.raises(ProviderError) as info:
        drain(session, "q")
    assert "3600s" in info.value.message and "60s retry cap" in info.value.message


def test_retries_are_bounded() -> None:
    fake = FakeProvider(scripts=[[err("server")]] * 5)
    session = Session(fake, model="m", sleep=lambda s: None, retry=RetryPolicy(max_retries=2))
    with pytest.raises(ProviderError):
        drain(session, "q")
    assert len(fake.calls) == 3


def test_error_after_content_is_not_retried() -> None:
    fake = FakeProvider(scripts=[[TextDelta("part"), err("connection")]])
    session = Session(fake, model="m", sleep=lambda s: pytest.fail("slept"))
    events = drain(session, "q")
    assert isinstance(events[-1], Finish) and events[-1].reason == "error"
    assert session.last_reply is not None and session.last_reply.content == "part"
    assert len(fake.calls) == 1


def test_interrupt_inside_provider_keeps_partial() -> None:
    fake = FakeProvider(scripts=[[TextDelta("partial "), KeyboardInterrupt()], [TextDelta("next"), Finish("stop")]])
    rec = ListRecorder()
    session = Session(fake, model="m", recorder=rec)
    view = RecordingView()
    finish = run_turn(session.send("q"), view)
    assert finish.reason == "interrupted" and view.events[-1] == finish and view.closed == 1
    assert rec.log[-1] == ("assistant", "partial ", "interrupted")
    drain(session, "go on")
    assert roles(fake.calls[-1].messages) == ["user", "assistant", "user"]


def test_interrupt_in_view_closes_provider_stream() -> None:
    fake = FakeProvider(scripts=[[TextDelta("a"), TextDelta("b"), TextDelta("c"), Finish("stop")]])
    rec = ListRecorder()
    session = Session(fake, model="m", recorder=rec)

    class InterruptingView(RecordingView):
        def feed(self, event: object) -> None:
            super().feed(event)
            if event == TextDelta("b"):
                raise KeyboardInterrupt

    finish = run_turn(session.send("q"), InterruptingView())
    assert finish.reason == "interrupted"
    assert fake.closed == 1  # the provider's generator (its HTTP response) was closed
    assert rec.log[-1] == ("assistant", "ab", "interrupted")


def test_interrupt_during_retry_wait() -> None:
    fake = FakeProvider(scripts=[[err("rate_limited", retry_after=5)]])

    def sleep(_: float) -> None:
        raise KeyboardInterrupt

    rec = ListRecorder()
    session = Session(fake, model="m", sleep=sleep, recorder=rec)
    finish = run_turn(session.send("q"), RecordingView())
    assert finish.reason == "interrupted" and len(fake.calls) == 1
    assert rec.log == [("user", "q", None)]  # no empty interrupted reply is stored
    assert [t.role for t in session.turns] == ["user"]


def test_continue_with_prefill_appends_to_same_turn() -> None:
    fake = FakeProvider(scripts=[[TextDelta("The answer is"), Usage(3, 4), Finish("length")],
                                 [TextDelta(" forty-two."), Usage(9, 2), Finish("stop")]], supports_prefill=True)
    rec = ListRecorder()
    session = Session(fake, model="m", recorder=rec)
    drain(session, "q")
    list(session.continue_())
    assert [(m.role, m.content) for m in fake.calls[-1].messages] == [("user", "q"), ("assistant", "The answer is")]
    reply = session.last_reply
    assert reply is not None
    assert (reply.content, reply.finish_reason, reply.output_tokens) == ("The answer is forty-two.", "stop", 6)
    assert len(session.turns) == 2 and len(rec.rows) == 2


def test_continue_without_prefill_asks_and_drops_repeated_text() -> None:
    first = "Here is a long explanation of the thing that goes on and"
    fake = FakeProvider(scripts=[[TextDelta(first), Finish("length")],
                                 [TextDelta("that goes "), TextDelta("on and on until the end."), Finish("stop")]])
    session = Session(fake, model="m")
    drain(session, "q")
    shown = "".join(e.text for e in session.continue_() if isinstance(e, TextDelta))
    assert fake.calls[-1].messages[-1] == Message("user", CONTINUE_PROMPT)
    assert shown == " on until the end."
    assert session.last_reply is not None and session.last_reply.content == first + " on until the end."


def test_overlap_needs_a_real_repeat() -> None:
    assert overlap("the quick brown fox", "brown fox jumps") == len("brown fox")
    assert overlap("abc", "xyz") == 0
    assert overlap("ends with a", "a new start") == 0  # one shared letter is not a repeat


def test_retry_replaces_the_last_reply() -> None:
    fake = FakeProvider().reply("bad").reply("good")
    rec = ListRecorder()
    session = Session(fake, model="m", recorder=rec)
    drain(session, "q")
    list(session.retry())
    assert [t.content for t in session.turns] == ["q", "good"]
    assert sorted(t.content for t in rec.rows.values()) == ["good", "q"]
    assert [(m.role, m.content) for m in fake.calls[-1].messages] == [("user", "q")]


def test_undo_drops_last_exchange() -> None:
    fake = FakeProvider().reply("one").reply("two")
    rec = ListRecorder()
    session = Session(fake, model="m", recorder=rec)
    drain(session, "a")
    drain(session, "b")
    assert session.undo()
    assert [t.content for t in session.turns] == ["a", "one"]
    assert len(rec.rows) == 2
    assert session.undo() and not session.undo()


def test_trimmer_notice_is_shown() -> None:
    fake = FakeProvider().reply("x").reply("y")

    def trim(messages: Sequence[Message], system: str | None) -> tuple[list[Message], int]:
        return list(messages[-1:]), len(messages) - 1

    session = Session(fake, model="m", trimmer=trim)
    drain(session, "a")
    events = drain(session, "b")
    assert Notice("2 oldest messages left out of this request to fit the model's context window "
                  "(they stay in the saved history)") in events
    assert [m.content for m in fake.calls[-1].messages] == ["b"]


def test_a_request_that_cannot_fit_is_warned_about_before_it_is_sent() -> None:
    from chatcli.context import make_trimmer

    seen: list[str] = []

    class Watching(FakeProvider):
        def stream(self, messages, **kw):  # type: ignore[no-untyped-def, override]
            seen.append("request")
            return super().stream(messages, **kw)

    fake = Watching().reply("ok")
    session = Session(fake, model="m", trimmer=make_trimmer(128_000, None))
    for event in session.send("z" * 5_000_000):
        if isinstance(event, Notice):
            seen.append(event.text)
    warnings = [s for s in seen if s.startswith("warning:")]
    assert len(warnings) == 1 and "context window" in warnings[0]
    assert seen.index(warnings[0]) < seen.index("request")  # before the request, not after
    assert session.turns[-1].content == "ok"  # and sent all the same


def test_model_switch_keeps_history() -> None:
    first = FakeProvider(name="one").reply("from one")
    second = FakeProvider(name="two").reply("from two")
    session = Session(first, model="a")
    drain(session, "q1")
    session.set_model(second, "b")
    drain(session, "q2")
    assert [m.content for m in second.calls[0].messages] == ["q1", "from one", "q2"]
    assert session.last_reply is not None and session.last_reply.provider == "two"


def test_termination_signal_records_partial_as_interrupted() -> None:
    class Terminated(SystemExit):
        def __str__(self) -> str:
            return "terminated by SIGTERM"

    fake = FakeProvider(scripts=[[TextDelta("half"), Terminated(143)]])
    rec = ListRecorder()
    session = Session(fake, model="m", recorder=rec)
    with pytest.raises(SystemExit):
        drain(session, "q")
    assert rec.log[-1] == ("assistant", "half", "interrupted")
    assert session.last_reply is not None and session.last_reply.finish_detail == "terminated by SIGTERM"


def test_continue_with_prefill_does_not_double_whitespace() -> None:
    fake = FakeProvider(scripts=[[TextDelta("Intro:\n\n"), Finish("length")],
                                 [TextDelta("\n\nBody."), Finish("stop")]], supports_prefill=True)
    session = Session(fake, model="m")
    drain(session, "q")
    list(session.continue_())
    assert fake.calls[-1].messages[-1] == Message("assistant", "Intro:")
    assert session.last_reply is not None and session.last_reply.content == "Intro:\n\nBody."


def test_retry_after_a_failure_resends_the_unanswered_message() -> None:
    fake = FakeProvider(scripts=[[err("auth")], [TextDelta("now it works"), Finish("stop")]])
    session = Session(fake, model="m")
    with pytest.raises(ProviderError):
        drain(session, "hello")
    list(session.retry())
    assert [(m.role, m.content) for m in fake.calls[-1].messages] == [("user", "hello")]
    assert [(t.role, t.content) for t in session.turns] == [("user", "hello"), ("assistant", "now it works")]


def test_provider_finished_reply_without_text_is_kept() -> None:
    fake = FakeProvider(scripts=[[Finish("content_filter", raw="refusal", detail="I can't help with that")]])
    rec = ListRecorder()
    session = Session(fake, model="m", recorder=rec)
    drain(session, "q")
    assert rec.log[-1] == ("assistant", "", "content_filter")
    assert session.last_reply is not None and session.last_reply.finish_detail == "I can't help with that"
