"""Context trimming and tool exchanges: a call is never kept without its result, nor a result
without its call (both APIs reject such a request), and the current question's exchange -- with
its calls, results and attachments -- is never dropped."""

from __future__ import annotations

from chatcli.context import trim_messages
from chatcli.events import ImagePart, Message, ToolCallPart, ToolResultPart
from tests.support import media


def exchange(n: int, calls: int) -> list[Message]:
    ids = [f"c{n}_{i}" for i in range(calls)]
    return [
        Message("user", f"question {n} " + "words " * 200),
        Message("assistant", "", tuple(ToolCallPart(i, "time__get_current_time", "{}") for i in ids)),
        Message("tool", "", tuple(ToolResultPart(i, "result " * 150) for i in ids)),
        Message("assistant", f"answer {n} " + "words " * 100),
    ]


def valid(messages: list[Message]) -> bool:
    called = [c.id for m in messages for c in m.tool_calls]
    answered = [r.call_id for m in messages for r in m.tool_results]
    return sorted(called) == sorted(answered) and (not messages or messages[0].role == "user")


def test_trimming_drops_whole_tool_exchanges_at_every_budget() -> None:
    messages = [m for n in range(6) for m in exchange(n, calls=1 + n % 3)]
    messages.append(Message("user", "now?", (ImagePart("image/png", media.png(), name="shot.png"),)))
    for budget in range(200, 6000, 97):
        kept, dropped = trim_messages(messages, "be brief", budget)
        assert valid(kept), budget
        assert kept[-1] is messages[-1] and dropped == len(messages) - len(kept)


def test_the_current_exchange_with_its_calls_is_kept_whatever_the_budget() -> None:
    # The reply to the last question is mid-way through its tool rounds: all of it is the current unit.
    messages = [*exchange(0, calls=2), *exchange(1, calls=2)[:3]]
    kept, dropped = trim_messages(messages, None, 1)
    assert kept == messages[4:] and dropped == 4 and valid(kept)
