"""The session's tool loop: rounds, the round cap, parallel calls, Ctrl-C during a call, and a
history in which every tool call id has a result, whatever happened (both APIs reject one that
has not). The provider is scripted; the MCP side is chatcli/tools/ (tested against real servers
in tests/test_tools_*.py), stood in for here by a scripted `ToolHost`."""

from __future__ import annotations

from collections.abc import Generator, Sequence

import pytest

from chatcli.events import (
    Finish,
    Message,
    Notice,
    SessionEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallPart,
    ToolFinished,
    ToolResultPart,
    ToolSpec,
    ToolStarted,
)
from chatcli.session import INTERRUPTED, NOT_RUN, Session
from chatcli.turn import Turn
from tests.support.fakes import FakeProvider

SPEC = ToolSpec("time__get_current_time", "Current time in a timezone", {"type": "object"})


class ScriptedHost:
    """Runs calls by a table of answers; `interrupt_on` raises KeyboardInterrupt at that call."""

    def __init__(self, answers: dict[str, str] | None = None, interrupt_on: str | None = None) -> None:
        self.answers = answers or {}
        self.interrupt_on = interrupt_on
        self.ran: list[str] = []

    def specs(self) -> Generator[SessionEvent, None, Sequence[ToolSpec]]:
        yield Notice("starting time…")
        return [SPEC]

    def run(self, call: ToolCallPart) -> Generator[SessionEvent, None, ToolResultPart]:
        yield ToolStarted(call, "time", "get_current_time")
        if call.id == self.interrupt_on:
            raise KeyboardInterrupt
        self.ran.append(call.id)
        result = ToolResultPart(call.id, self.answers.get(call.id, "12:00"))
        yield ToolFinished(call, "time", "get_current_time", result, 0.01)
        return result


class Rows:
    """A recorder that keeps the last recorded copy of each turn, by id."""

    def __init__(self) -> None:
        self.rows: dict[int, Turn] = {}

    def record(self, turn: Turn) -> None:
        if turn.id is None:
            turn.id = len(self.rows) + 1
        self.rows[turn.id] = Turn(**{**turn.__dict__})

    def forget(self, turn: Turn) -> None:
        if turn.id is not None:
            self.rows.pop(turn.id, None)


def call(cid: str, args: str = '{"timezone": "Asia/Tokyo"}') -> ToolCallPart:
    return ToolCallPart(cid, "time__get_current_time", args)


def calling(*calls: ToolCallPart, text: str = "", reason: str = "tool_calls") -> list[object]:
    script: list[object] = [TextDelta(text)] if text else []
    for i, c in enumerate(calls):
        script += [ToolCallDelta(i, c.name, c.arguments), ToolCall(c)]
    return [*script, Finish(reason, raw=reason)]  # type: ignore[arg-type]


def answer(text: str) -> list[object]:
    return [TextDelta(text), Finish("stop", raw="stop")]


def unanswered(messages: Sequence[Message]) -> set[str]:
    """Ids of calls in a request with no result right after them (what the APIs reject)."""
    missing: set[str] = set()
    for i, m in enumerate(messages):
        if m.tool_calls:
            after = messages[i + 1] if i + 1 < len(messages) else None
            answered = {r.call_id for r in after.tool_results} if after is not None and after.role == "tool" else set()
            missing |= {c.id for c in m.tool_calls} - answered
    return missing


def test_a_call_runs_and_the_next_request_carries_its_result() -> None:
    provider = FakeProvider([calling(call("c1"), text="Let me look."), answer("It is noon in Tokyo.")])
    host = ScriptedHost({"c1": "2026-12-02T12:00+09:00"})
    rows = Rows()
    session = Session(provider, model="m", tools=host, recorder=rows)
    events = list(session.send("What time is it in Tokyo?"))

    assert host.ran == ["c1"]
    finishes = [e for e in events if isinstance(e, Finish)]
    assert finishes == [Finish("stop", raw="stop")]  # the held-back tool_calls finish is never shown
    assert [type(e).__name__ for e in events if isinstance(e, (ToolStarted, ToolFinished))] == [
        "ToolStarted", "ToolFinished"]
    assert provider.calls[0].tools == [SPEC] and provider.calls[1].tools == [SPEC]
    second = provider.calls[1].messages
    assert [m.role for m in second] == ["user", "assistant", "tool"]
    assert second[1].content == "Let me look." and second[1].tool_calls == (call("c1"),)
    assert second[2].tool_results == (ToolResultPart("c1", "2026-12-02T12:00+09:00"),)
    stored = [(t.role, t.content, t.finish_reason, t.parts) for t in rows.rows.values()]
    assert stored == [
        ("user", "What time is it in Tokyo?", None, ()),
        ("assistant", "Let me look.", "tool_calls", (call("c1"),)),
        ("tool", "", None, (ToolResultPart("c1", "2026-12-02T12:00+09:00"),)),
        ("assistant", "It is noon in Tokyo.", "stop", ()),
    ]


def test_parallel_calls_each_get_their_own_result_in_order() -> None:
    provider = FakeProvider([calling(call("a"), call("b", '{"timezone": "UTC"}')), answer("done")])
    host = ScriptedHost({"a": "tokyo", "b": "utc"})
    session = Session(provider, model="m", tools=host)
    list(session.send("both"))
    assert host.ran == ["a", "b"]
    results = provider.calls[1].messages[-1].tool_results
    assert [(r.call_id, r.content) for r in results] == [("a", "tokyo"), ("b", "utc")]


def test_calls_with_finish_stop_still_run() -> None:
    provider = FakeProvider([calling(call("c1"), reason="stop"), answer("ok")])
    host = ScriptedHost()
    list(Session(provider, model="m", tools=host).send("q"))
    assert host.ran == ["c1"] and len(provider.calls) == 2


def test_calls_cut_by_the_token_limit_do_not_run_and_are_answered_not_run() -> None:
    provider = FakeProvider([calling(call("c1", '{"timez'), reason="length"), answer("ok")])
    host = ScriptedHost()
    session = Session(provider, model="m", tools=host)
    events = list(session.send("q"))
    assert host.ran == [] and [e.reason for e in events if isinstance(e, Finish)] == ["length"]
    list(session.send("again"))
    sent = provider.calls[1].messages
    assert unanswered(sent) == set()
    assert sent[2].tool_results == (ToolResultPart("c1", NOT_RUN, is_error=True, status="not_run"),)


def test_the_round_cap_ends_with_tool_calls_and_continue_runs_more() -> None:
    provider = FakeProvider([calling(call("r1")), calling(call("r2")), calling(call("r3")), answer("finally")])
    host = ScriptedHost()
    session = Session(provider, model="m", tools=host, max_tool_rounds=2)
    events = list(session.send("loop"))
    assert host.ran == ["r1", "r2"] and len(provider.calls) == 3
    finishes = [e for e in events if isinstance(e, Finish)]
    assert len(finishes) == 1 and finishes[0].reason == "tool_calls"
    assert "stopped after 2 tool rounds" in (finishes[0].detail or "")
    # /continue runs the pending call, then the model answers.
    more = list(session.continue_())
    assert host.ran == ["r1", "r2", "r3"]
    assert [e.reason for e in more if isinstance(e, Finish)] == ["stop"]
    assert unanswered(provider.calls[-1].messages) == set()


def test_no_tools_enabled_shows_tool_calls_and_the_next_request_is_still_valid() -> None:
    provider = FakeProvider([calling(call("x1"), text="I would call a tool."), answer("fine")])
    session = Session(provider, model="m")
    events = list(session.send("q"))
    assert [e.reason for e in events if isinstance(e, Finish)] == ["tool_calls"]
    assert provider.calls[0].tools is None  # nothing offered, nothing new sent to old providers
    list(session.send("go on"))
    sent = provider.calls[1].messages
    assert [m.role for m in sent] == ["user", "assistant", "tool", "user"]
    assert unanswered(sent) == set()


def test_ctrl_c_during_a_call_records_it_interrupted_and_keeps_history_valid() -> None:
    provider = FakeProvider([calling(call("ok1"), call("cut")), answer("after")])
    host = ScriptedHost(interrupt_on="cut")
    rows = Rows()
    session = Session(provider, model="m", tools=host, recorder=rows)
    with pytest.raises(KeyboardInterrupt):
        list(session.send("q"))
    tool_turn = next(t for t in rows.rows.values() if t.role == "tool")
    assert tool_turn.parts == (
        ToolResultPart("ok1", "12:00"),
        ToolResultPart("cut", INTERRUPTED, is_error=True, status="interrupted"),
    )
    list(session.send("next"))
    assert unanswered(provider.calls[-1].messages) == set()


def test_closing_the_stream_while_a_call_runs_records_it_interrupted() -> None:
    """Ctrl-C while the view paints closes the generator at a yield inside the tool phase."""
    provider = FakeProvider([calling(call("c1")), answer("never")])
    rows = Rows()
    session = Session(provider, model="m", tools=ScriptedHost(), recorder=rows)
    events = session.send("q")
    for event in events:
        if isinstance(event, ToolStarted):
            break
    events.close()
    tool_turn = next(t for t in rows.rows.values() if t.role == "tool")
    assert [r.status for r in tool_turn.tool_results] == ["interrupted"]


def test_a_resumed_conversation_whose_last_call_has_no_result_is_answered() -> None:
    turns = [
        Turn("user", "q"),
        Turn("assistant", "", parts=(call("old"),), finish_reason="tool_calls"),
    ]
    provider = FakeProvider([answer("hi")])
    session = Session(provider, model="m", turns=turns)
    list(session.send("new question"))
    sent = provider.calls[0].messages
    assert [m.role for m in sent] == ["user", "assistant", "tool", "user"]
    assert unanswered(sent) == set()


def test_results_for_unknown_ids_are_not_sent() -> None:
    """An orphan result is rejected by Anthropic ("unexpected tool_use_id")."""
    turns = [
        Turn("user", "q"),
        Turn("assistant", "", parts=(call("a"),), finish_reason="tool_calls"),
        Turn("tool", "", parts=(ToolResultPart("a", "r"), ToolResultPart("zzz", "orphan"))),
        Turn("assistant", "done", finish_reason="stop"),
    ]
    provider = FakeProvider([answer("hi")])
    list(Session(provider, model="m", turns=turns).send("more"))
    assert provider.calls[0].messages[2].tool_results == (ToolResultPart("a", "r"),)
