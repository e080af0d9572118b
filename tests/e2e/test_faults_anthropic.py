"""A1-A12 (the A table of tests/e2e/README.md): the installed `chatcli ask -m anthropic:claude-test` against
Anthropic-dialect stream faults. Same assertions as the OpenAI table (exit code, stdout, stderr
line, stored turns, no canary anywhere). Ctrl-C during a long run of pings (A12, "the user can
cancel") is in test_interrupts.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.e2e.helpers import ANTHROPIC_MODEL, Case, Expect, Played, batch_fixture, check, ids
from tests.support.sse_server import (
    Reply,
    Sleep,
    anthropic_error,
    anthropic_event,
    anthropic_events,
    sse,
)

URL = r"http://127\.0\.0\.1:\d+"
ASK = ("ask", "-m", ANTHROPIC_MODEL, "hi")
USER = ("user", "hi", None)
RETRY1 = "[providers.anthropic]\nmax_retries = 1\n"


def footer(reason: str) -> str:
    return r"\[" + reason + r"(?: \([^)]*\))?(?: · [^\]]*)?\]"


def _head(texts: list[str]) -> list[bytes]:
    """message_start + a text block with these deltas, nothing after (no stop, no message_stop)."""
    events = anthropic_events(texts, stop_reason=None)
    return events[:-1]  # drop content_block_stop: the stream is cut mid-block


def case(id: str, replies: tuple[Reply, ...], expect: Expect, **kw: object) -> Case:
    return Case(id, replies, expect, args=ASK, **kw)  # type: ignore[arg-type]


def _stop(reason: str, details: dict[str, str] | None = None) -> Reply:
    return Reply.sse(anthropic_events(["Hel", "lo"], stop_reason=reason, stop_details=details))


def _early_delta() -> list[bytes]:
    """A9: a content_block_delta before message_start (broken server), then a normal stream."""
    stray = anthropic_event("content_block_delta", index=0, delta={"type": "text_delta", "text": "STRAY "})
    return [stray, *anthropic_events(["Hel", "lo"])]


def _unknowns() -> list[bytes]:
    """A8: an unknown event, an unknown delta type and an unknown block type among a normal stream."""
    events = anthropic_events(["Hel", "lo"])
    extra = [
        sse({"type": "future_event", "x": 1}, event="future_event"),
        anthropic_event("content_block_start", index=5, content_block={"type": "hologram", "data": "?"}),
        anthropic_event("content_block_delta", index=5, delta={"type": "hologram_delta", "bits": "01"}),
        anthropic_event("content_block_stop", index=5),
    ]
    return [events[0], *extra, *events[1:]]


def _pings(seconds: float) -> list[bytes | Sleep]:
    events = anthropic_events(["Hel", "lo"], ping=False)
    ping = sse({"type": "ping"}, event="ping")
    waits: list[bytes | Sleep] = []
    for _ in range(int(seconds / 0.25)):
        waits += [Sleep(0.25), ping]
    return [events[0], *waits, *events[1:]]


def _only_pings(seconds: float, texts: Sequence[str] = ()) -> list[bytes | Sleep]:
    events: list[bytes | Sleep] = list(_head(list(texts))) if texts else [anthropic_events([])[0]]
    ping = sse({"type": "ping"}, event="ping")
    for _ in range(int(seconds / 0.25)):
        events += [Sleep(0.25), ping]
    return events


IDLE = "[providers.anthropic]\ntimeout = 1\nmax_retries = 0\n"

CASES = [
    case("A1-normal-with-ping", (Reply.sse(anthropic_events(["Hel", "lo"], usage=(11, 7))),),
         Expect(0, "Hello\n", (r"\[stop \(end_turn\) · 11 in / 7 out · first token T\]",), 1,
                (USER, ("assistant", "Hello", "stop")), 1)),
    case("A2-overloaded-error-after-deltas",
         (Reply.sse([*_head(["Hel"]), anthropic_error("overloaded_error", "Overloaded")]),),
         Expect(3, "Hel\n", (footer("error"), r"warning: the stream failed: .*[Oo]verloaded.* — partial reply kept"), 2,
                (USER, ("assistant", "Hel", "error")), 1)),
    case("A3-error-before-any-delta-retried",
         (Reply.sse([anthropic_events([])[0], anthropic_error("overloaded_error", "Overloaded")]),
          Reply.sse(anthropic_events(["Hel", "lo"]))),
         Expect(0, "Hello\n", (r".*[Oo]verloaded.* — retrying in T \(attempt 2 of [0-9]+\)", footer("stop")), 2,
                (USER, ("assistant", "Hello", "stop")), 2)),
    case("A3b-error-before-any-delta-gives-up",
         (Reply.sse([anthropic_events([])[0], anthropic_error("overloaded_error", "Overloaded")]),
          Reply.sse([anthropic_events([])[0], anthropic_error("overloaded_error", "Overloaded")])),
         Expect(1, "", (rf"chatcli: anthropic \({URL}\): .*[Oo]verloaded.*",), 2, None, 2), config=RETRY1),
    case("A4-fin-without-message-delta", (Reply.sse(_head(["Hel", "lo"])),),
         Expect(3, "Hello\n", (footer("incomplete"), r"warning: .*truncated.*"), 2,
                (USER, ("assistant", "Hello", "incomplete")))),
    case("A4b-message-delta-without-message-stop",
         (Reply.sse(anthropic_events(["Hel", "lo"], message_stop=False)),),
         # the provider said end_turn: that is the finish signal (message_stop only closes the stream)
         Expect(0, "Hello\n", (footer("stop"),), 1, (USER, ("assistant", "Hello", "stop")))),
    case("A5-max-tokens", (_stop("max_tokens"),),
         Expect(3, "Hello\n", (footer(r"length"), r"warning: .*token limit.*/continue.*"), 2,
                (USER, ("assistant", "Hello", "length")))),
    case("A5b-context-window-exceeded", (_stop("model_context_window_exceeded"),),
         Expect(3, "Hello\n", (footer("length"), r"warning: .*"), 2, (USER, ("assistant", "Hello", "length")))),
    case("A5c-refusal-with-details",
         (_stop("refusal", {"type": "refusal", "category": "cyber", "explanation": "Not going there."}),),
         Expect(3, "Hello\n", (footer("content_filter"), r"warning: .*(refus|filter).*Not going there\..*"), 2,
                (USER, ("assistant", "Hello", "content_filter")))),
    case("A5d-pause-turn", (_stop("pause_turn"),),
         Expect(3, "Hello\n", (footer("pause_turn"), r"warning: .*/continue.*"), 2,
                (USER, ("assistant", "Hello", "pause_turn")))),
    case("A5e-stop-sequence", (_stop("stop_sequence"),),
         Expect(0, "Hello\n", (footer("stop"),), 1, (USER, ("assistant", "Hello", "stop")))),
    case("A6-thinking-then-text",
         (Reply.sse(anthropic_events(["Hel", "lo"], thinking=["Let me ", "think."])),),
         Expect(0, "Hello\n", (footer("stop"),), None, (USER, ("assistant", "Hello", "stop")))),
    case("A7-tool-use-unoffered", (Reply.sse(anthropic_events(["Checking."], stop_reason="tool_use",
                                                               tool_use=True)),),
         Expect(3, "Checking.\n", (footer("tool_calls"), r"warning: .*tool.*"), 2,
                (USER, ("assistant", "Checking.", "tool_calls")))),
    case("A8-unknown-event-delta-block", (Reply.sse(_unknowns()),),
         Expect(0, "Hello\n", (footer("stop"),), 1, (USER, ("assistant", "Hello", "stop")))),
    case("A9-delta-before-message-start", (Reply.sse(_early_delta()),),
         Expect(0, None, (footer("stop"),), None, None)),
    case("A10-malformed-json-after-text",
         (Reply.sse([*_head(["Hel"]), b"event: content_block_delta\ndata: {not json\n\n"]),),
         Expect(3, "Hel\n", (footer("error"), r"warning: the stream failed: .*malformed.* — partial reply kept"), 2,
                (USER, ("assistant", "Hel", "error")))),
    case("A10b-invalid-utf8-after-text",
         (Reply.sse([*_head(["Hel"]), b'event: content_block_delta\ndata: {"type":"content_block_delta",'
                                      b'"index":0,"delta":{"type":"text_delta","text":"\xc3\x28"}}\n\n']),),
         Expect(3, "Hel\n", (footer("error"), r"warning: the stream failed: .* — partial reply kept"), 2,
                (USER, ("assistant", "Hel", "error")))),
    case("A11-non-sse-200", (Reply.html(),),
         Expect(1, "", (rf"chatcli: anthropic \({URL}\): not an event stream \(content-type text/html\).*",), 1,
                None, 1)),
    case("A12-pings-only-for-a-while", (Reply.sse(_pings(3.0)),),
         Expect(0, "Hello\n", (footer("stop"),), 1, (USER, ("assistant", "Hello", "stop")))),
    # the idle watchdog: pings alone for 5 x the read timeout (1 s here) end the wait
    case("A12b-pings-forever-before-text", (Reply.sse(_only_pings(9.0)),),
         Expect(1, "", (rf"chatcli: anthropic \({URL}\): the server timed out .*",), 1, None, 1),
         config=IDLE),
    case("A12c-pings-forever-after-text", (Reply.sse(_only_pings(9.0, texts=["Hel"])),),
         Expect(3, "Hel\n", (footer("error"), r"warning: the stream failed: .* — partial reply kept"), 2,
                (USER, ("assistant", "Hel", "error")), 1), config=IDLE),
]

played = batch_fixture(CASES)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_anthropic_stream_fault(case: Case, played: dict[str, Played]) -> None:
    run = played[case.id]
    check(run)
    if case.id.startswith("A1-"):
        reply = run.turns[-1]
        assert (reply["input_tokens"], reply["output_tokens"], reply["finish_raw"]) == (11, 7, "end_turn")
        headers = run.requests[0].headers
        assert run.requests[0].path == "/v1/messages"
        assert run.requests[0].json["messages"] == [{"role": "user", "content": "hi"}]
        assert "x-api-key" in headers or "authorization" in headers
    if case.id.startswith("A2"):
        assert run.turns[-1]["finish_raw"] in ("overloaded_error", None) or "verloaded" in (
            run.turns[-1]["finish_detail"] or "")
    if case.id.startswith("A5c"):
        assert "Not going there." in (run.turns[-1]["finish_detail"] or "")
    if case.id.startswith("A6"):
        # the thinking is kept with the turn (for replay), never printed on stdout
        assert run.turns[-1]["reasoning"] == "Let me think."
        assert "think." not in run.result.stdout
    if case.id.startswith("A7"):
        assert "Par" not in run.result.stdout and "get_weather" not in run.result.stdout
    if case.id.startswith("A9"):
        # displayed text equals saved text
        shown = run.result.stdout.rstrip("\n")
        assert shown == run.turns[-1]["content"], (shown, run.turns[-1]["content"])
    if case.id.startswith("A11"):
        assert "AssertionError" not in run.result.stderr
