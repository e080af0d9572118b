"""How tool calls show: the plain writer keeps stdout for the reply's text and puts each call and
its result summary on stderr; tool text is untrusted and arrives inert; a long result is
summarised (first lines, size), a capped one says what the model got."""

from __future__ import annotations

import io

from chatcli.events import Finish, TextDelta, ToolCallPart, ToolFinished, ToolResultPart, ToolStarted
from chatcli.render.plain import PlainView
from chatcli.render.toolcalls import call_line, compact_arguments, pretty_arguments, question, result_summary

CALL = ToolCallPart("c1", "time__get_current_time", '{"timezone": "Asia/Tokyo"}')


def test_plain_view_keeps_stdout_for_text_and_shows_calls_on_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = PlainView(out, err)
    result = ToolResultPart("c1", '{"datetime": "2026-12-02T15:00:00+09:00"}')
    for event in [TextDelta("Let me look."), ToolStarted(CALL, "time", "get_current_time"),
                  ToolFinished(CALL, "time", "get_current_time", result, 0.25),
                  TextDelta("It is 15:00 in Tokyo."), Finish("stop", raw="stop")]:
        view.feed(event)
    view.close()
    assert out.getvalue() == "Let me look.\nIt is 15:00 in Tokyo.\n"
    lines = err.getvalue().splitlines()
    assert lines[0] == '⚙ time.get_current_time {"timezone":"Asia/Tokyo"}'
    assert lines[1] == "↳ ok · 0.25 s · 1 line, 41 chars"
    assert lines[2] == '  {"datetime": "2026-12-02T15:00:00+09:00"}'


def test_tool_text_is_inert_everywhere() -> None:
    evil = "\x1b]52;c;aGk=\x07\x1b[2J"
    line = call_line("srv\x1b[31m", "t\x07", '{"a": "\\u001b[2J"}')
    summary = result_summary(ToolResultPart("c", f"ok{evil}\nsecond\rthird"), 0.1)
    for text in (line, summary, question("s\x1b", "t", "not json \x1b[2J")):
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "␛]52;c;aGk=␇␛[2J" in summary


def test_long_and_capped_results_are_summarised() -> None:
    full = "\n".join(f"line {i}" for i in range(100))
    capped = ToolResultPart("c", full[:50] + "\n[... cut ...]\n", full=full)
    summary = result_summary(capped, 1.5)
    head, *shown = summary.splitlines()
    assert head == f"↳ ok · 1.50 s · 100 lines, {len(full):,} chars (the model got {len(capped.content):,})"
    assert shown == ["  line 0", "  line 1", "  line 2", "  …"]
    err = result_summary(ToolResultPart("c", "boom", is_error=True), 0.0)
    assert err.startswith("↳ error · ")
    declined = result_summary(ToolResultPart("c", "no", is_error=True, status="declined"), 0.0)
    assert declined.startswith("↳ declined · ")


def test_arguments_compact_pretty_and_invalid() -> None:
    assert compact_arguments('{ "a" : 1,\n "b": [1, 2] }') == '{"a":1,"b":[1,2]}'
    assert compact_arguments("") == "{}"
    assert len(compact_arguments('{"x": "' + "y" * 500 + '"}')) == 160
    assert pretty_arguments('{"a": 1}') == '{\n  "a": 1\n}'
    assert "(not valid JSON" in pretty_arguments('{"a": ')
