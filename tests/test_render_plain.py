"""The plain writer, the shared finish wording, and the `chatcli.render` entry points."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Generator

import pytest

from chatcli.events import (
    FINISH_REASONS,
    Finish,
    Notice,
    ReasoningDelta,
    Retrying,
    SessionEvent,
    TextDelta,
    Usage,
)
from chatcli.render import choose_mode, open_view, render_markdown_once
from chatcli.render.footer import describe_finish, format_stats
from chatcli.render.panel import PanelView
from chatcli.render.plain import PlainView
from chatcli.turn import run_turn
from tests.support.fakes import TTY


def plain(events: list[object], **kw: object) -> tuple[str, str]:
    out, err = io.StringIO(), kw.pop("err", None) or io.StringIO()
    view = PlainView(out, err, clock=lambda: 0.0, **kw)  # type: ignore[arg-type]
    for ev in events:
        view.feed(ev)  # type: ignore[arg-type]
    view.close()
    return out.getvalue(), err.getvalue()  # type: ignore[attr-defined]


def test_text_is_written_raw_as_it_arrives_with_a_final_newline() -> None:
    md = "# Title\n\n**bold** and a very long line " + "word " * 60
    out, err = plain([TextDelta(md[:10]), TextDelta(md[10:]), Finish("stop")])
    assert out == md + "\n"  # no re-wrapping, no markdown rendering, one newline added
    assert "\x1b" not in out and "stop" in err and "warning" not in err


def test_each_delta_is_flushed_immediately() -> None:
    seen: list[str] = []

    class Out(io.StringIO):
        def flush(self) -> None:
            seen.append(self.getvalue())

    view = PlainView(Out(), io.StringIO())
    view.feed(TextDelta("a"))
    view.feed(TextDelta("b"))
    assert seen[:2] == ["a", "ab"]
    view.close()


def test_no_extra_newline_when_the_reply_ends_with_one() -> None:
    out, _ = plain([TextDelta("done\n"), Finish("stop")])
    assert out == "done\n"


def test_reasoning_goes_to_stderr_or_is_hidden() -> None:
    out, err = plain([ReasoningDelta("thinking..."), TextDelta("answer"), Finish("stop")])
    assert out == "answer\n" and "thinking..." in err
    out, err = plain([ReasoningDelta("thinking..."), TextDelta("answer"), Finish("stop")],
                     show_reasoning=False)
    assert "thinking" not in err + out


@pytest.mark.parametrize("reason", FINISH_REASONS)
def test_every_finish_reason_is_reported_on_stderr(reason: str) -> None:
    finish = Finish(reason, raw="raw_" + reason, detail="the cause")  # type: ignore[arg-type]
    out, err = plain([TextDelta("partial"), Usage(3, 4), finish])
    assert out == "partial\n"
    assert reason in err and "3 in / 4 out" in err
    _, warning = describe_finish(finish)
    if reason == "stop":
        assert warning is None and "warning" not in err
    else:
        assert warning and warning in err


def test_warning_texts_say_what_to_do() -> None:
    assert "/continue" in (describe_finish(Finish("length"))[1] or "")
    assert "--max-tokens" in (describe_finish(Finish("length"))[1] or "")
    assert "policy" in (describe_finish(Finish("content_filter", detail="policy")).__getitem__(1) or "")
    assert "partial reply kept" in (describe_finish(Finish("interrupted"))[1] or "")
    assert "timeout" in (describe_finish(Finish("error", detail="timeout"))[1] or "")
    assert "truncated" in (describe_finish(Finish("incomplete"))[1] or "")
    assert "/continue" in (describe_finish(Finish("pause_turn"))[1] or "")
    assert "tool" in (describe_finish(Finish("tool_calls"))[1] or "")
    assert describe_finish(Finish("stop", raw="end_turn")) == ("stop (end_turn)", None)
    assert describe_finish(Finish("error", detail="\x1b]52;c;x\x07"))[1] == (
        "the stream failed: ␛]52;c;x␇ — partial reply kept")


def test_format_stats() -> None:
    assert format_stats(Usage(1200, 300), 0.5, 3.0) == "1,200 in / 300 out · first token 0.50 s · 100.0 tok/s"
    assert format_stats(None, None, None) == ""
    assert format_stats(Usage(None, 7), None, None) == "? in / 7 out"


def test_notices_and_retry_countdown_go_to_stderr() -> None:
    out, err = plain([Notice("2 oldest turns left out"), Retrying(2, 3.0, "rate limited"),
                      Retrying(2, 2.0, "rate limited"), TextDelta("hi"), Finish("stop")])
    assert out == "hi\n"
    assert "2 oldest turns left out" in err
    assert err.count("retrying in") == 1  # not a TTY: one line per attempt, not per second


def test_retry_countdown_overwrites_one_line_on_a_tty_and_no_color() -> None:
    err = TTY()
    plain([Retrying(1, 3.0, "overloaded"), Retrying(1, 2.0, "overloaded"), TextDelta("x"),
                    Finish("length")], err=err, no_color=True)
    text = err.getvalue()
    assert "retrying in 3 s" in text and "retrying in 2 s" in text and "\r\x1b[K" in text
    assert "\x1b[2m" not in text and "\x1b[33m" not in text  # NO_COLOR: no styling
    err = TTY()
    plain([TextDelta("x"), Finish("length")], err=err)
    assert "\x1b[33m" in err.getvalue()  # styled when allowed


def test_broken_pipe_propagates_once_and_close_is_quiet() -> None:
    class Closed(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError

    view = PlainView(Closed(), io.StringIO())
    with pytest.raises(BrokenPipeError):
        view.feed(TextDelta("hello"))
    view.close()  # must not raise
    view.close()


def test_run_turn_with_plain_view_records_interrupt() -> None:
    def events() -> Generator[SessionEvent, None, None]:
        yield TextDelta("part")
        raise KeyboardInterrupt

    out, err = io.StringIO(), io.StringIO()
    finish = run_turn(events(), PlainView(out, err))
    assert finish.reason == "interrupted"
    assert out.getvalue() == "part\n" and "partial reply kept" in err.getvalue()


def test_run_turn_with_panel_interrupt_restores_terminal() -> None:
    def events() -> Generator[SessionEvent, None, None]:
        yield TextDelta("**bold part")
        raise KeyboardInterrupt

    out, err = TTY(), io.StringIO()
    view = open_view(out=out, err=err, mode="markdown", size=lambda: (80, 24), label="p:m")
    finish = run_turn(events(), view)
    assert finish.reason == "interrupted"
    assert out.getvalue().endswith("\x1b[?25h") and "interrupted" in out.getvalue()
    assert "partial reply kept" in err.getvalue()


def test_choose_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    assert choose_mode("auto", TTY()) == "markdown"
    assert choose_mode("auto", io.StringIO()) == "plain"
    assert choose_mode("plain", TTY()) == "plain"
    assert choose_mode("markdown", io.StringIO()) == "markdown"
    monkeypatch.setenv("TERM", "dumb")
    assert choose_mode("auto", TTY()) == "plain"


def test_open_view_kinds_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_view(out=io.StringIO(), err=io.StringIO(), mode="plain"), PlainView)
    monkeypatch.setenv("NO_COLOR", "1")
    out = TTY()
    view = open_view(out=out, err=io.StringIO(), mode="markdown", size=lambda: (60, 20))
    assert isinstance(view, PanelView)
    view.feed(TextDelta("```python\nprint('x')\n```\n"))
    view.feed(Finish("stop"))
    view.close()
    assert not any(code in out.getvalue() for code in ("\x1b[38;", "\x1b[48;", "\x1b[3", "\x1b[4"))


def test_render_markdown_once_panel_and_plain() -> None:
    out = io.StringIO()
    render_markdown_once("# Hi\n\n[a](https://x.example)\n", out, mode="markdown", width=60, label="p:m")
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    assert lines[0].startswith("╭─ p:m") and lines[-1].startswith("╰")
    assert "https://x.example" in out.getvalue()
    assert {len(line) for line in lines} == {59}
    out = io.StringIO()
    render_markdown_once("raw *text*", out, mode="plain")
    assert out.getvalue() == "raw *text*\n"


def test_importing_chatcli_render_does_not_load_rich() -> None:
    code = ("import sys, chatcli.render; "
            "bad = [m for m in ('rich', 'markdown_it', 'pygments') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_plain_interrupted_before_any_text_says_cancelled_and_ask_names_the_shell_form() -> None:
    _, err = plain([Finish("interrupted")])
    assert "cancelled before any reply arrived" in err and "partial reply kept" not in err
    _, err = plain([TextDelta("half"), Finish("interrupted")])
    assert "partial reply kept" in err
    _, err = plain([TextDelta("cut"), Finish("length")], where="ask")
    assert "`chatcli -c`, then /continue, resumes it" in err


def test_open_view_on_a_dumb_terminal_writes_no_escape_even_to_a_tty_stderr() -> None:
    out, err = io.StringIO(), TTY()
    view = open_view(out=out, err=err, mode="plain", dumb=True, no_color=False)
    view.feed(Retrying(1, 2.0, "rate limited"))
    view.feed(TextDelta("text"))
    view.feed(Finish("length"))
    view.close()
    assert "\x1b" not in out.getvalue() + err.getvalue(), err.getvalue()
    assert "rate limited" in err.getvalue() and "token limit" in err.getvalue()
