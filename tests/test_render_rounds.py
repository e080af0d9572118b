"""A tool-using reply on a terminal: a panel per round of text, tool lines between them on
stderr (never inside a live panel), the finish on the last panel only."""

from __future__ import annotations

import io

from chatcli.events import (
    Finish,
    Notice,
    SessionEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallPart,
    ToolFinished,
    ToolResultPart,
    ToolRunning,
    ToolStarted,
)
from chatcli.render.panel import PanelView
from chatcli.render.plain import PlainView
from chatcli.render.rounds import RoundsView
from tests.support.fakes import TTY

CALL = ToolCallPart("c1", "time__get_current_time", '{"timezone": "Asia/Tokyo"}')
EVENTS: list[SessionEvent] = [
    TextDelta("Let me look."),
    ToolCallDelta(0, "time__get_current_time", ""),
    ToolCallDelta(0, None, '{"timezone":'),
    ToolCallDelta(0, None, ' "Asia/Tokyo"}'),
    ToolCall(CALL),
    ToolStarted(CALL, "time", "get_current_time"),
    ToolFinished(CALL, "time", "get_current_time", ToolResultPart("c1", "15:00"), 0.2),
    Notice("starting other…"),
    TextDelta("It is **15:00** in Tokyo."),
    Finish("stop", raw="stop"),
]


class Recording:
    def __init__(self, log: list[tuple[int, str]], index: int) -> None:
        self.log, self.index = log, index

    def feed(self, event: SessionEvent) -> None:
        self.log.append((self.index, type(event).__name__))

    def close(self) -> None:
        self.log.append((self.index, "close"))


def test_a_view_per_round_and_tool_lines_between_them() -> None:
    log: list[tuple[int, str]] = []
    made: list[Recording] = []

    def make() -> Recording:
        made.append(Recording(log, len(made)))
        return made[-1]

    err = io.StringIO()
    view = RoundsView(make, err, color=False)
    for event in EVENTS:
        view.feed(event)
    view.close()
    assert log == [(0, "TextDelta"), (0, "close"), (1, "TextDelta"), (1, "Finish"), (1, "close")]
    assert err.getvalue().splitlines() == [
        '… time__get_current_time {"timezone":"Asia/Tokyo"}',
        '⚙ time.get_current_time {"timezone":"Asia/Tokyo"}', "↳ ok · 0.20 s · 1 line, 5 chars", "  15:00",
        "starting other…"]


def test_real_panels_each_closed_before_the_tool_line() -> None:
    out, err = TTY(), TTY()
    order: list[str] = []

    class Spy(io.StringIO):
        def write(self, s: str) -> int:
            order.append("err")
            return err.write(s)

    spy = Spy()

    def make() -> PanelView:
        order.append("panel")
        return PanelView(out, err, size=lambda: (80, 24), label="openai:gpt-4o", threaded=False)

    view = RoundsView(make, spy, color=False)
    for event in EVENTS:
        view.feed(event)
    view.close()
    screen = out.getvalue()
    assert screen.count("╭─ openai:gpt-4o") == 2 and screen.count("╰") == 2
    assert "Let me look." in screen and "15:00" in screen
    assert order[:2] == ["panel", "err"]  # the first panel exists, then the call line after it closed
    assert screen.rindex("╰") > screen.index("It is")  # the footer is on the last panel
    assert "stop" in screen[screen.rindex("╰"):]


def running(seconds: float, server: str = "time", tool: str = "get_current_time") -> ToolRunning:
    return ToolRunning(CALL, server, tool, seconds)


def test_a_running_call_spins_in_place_with_its_time_and_the_result_replaces_it() -> None:
    err = io.StringIO()
    view = RoundsView(lambda: Recording([], 0), err, color=False, animate=True)
    for event in [ToolStarted(CALL, "time", "get_current_time"), running(0.1), running(0.2), running(1.25),
                  ToolFinished(CALL, "time", "get_current_time", ToolResultPart("c1", "15:00"), 1.3)]:
        view.feed(event)
    view.close()
    text = err.getvalue()
    frames = text.split("\r\x1b[2K")
    # The call line, three frames redrawn in place on one row, a clear, then the result line.
    assert frames[0] == '⚙ time.get_current_time {"timezone":"Asia/Tokyo"}\n'
    assert frames[1:4] == ["⠋ time.get_current_time · 0.1 s  (Ctrl-C cancels)",
                           "⠙ time.get_current_time · 0.2 s  (Ctrl-C cancels)",
                           "⠹ time.get_current_time · 1.2 s  (Ctrl-C cancels)"]
    assert frames[4] == "↳ ok · 1.30 s · 1 line, 5 chars\n  15:00\n"
    assert "\n" not in "".join(frames[1:4])


def test_ctrl_c_while_spinning_leaves_an_interrupted_line() -> None:
    err = io.StringIO()
    view = RoundsView(lambda: Recording([], 0), err, color=False, animate=True)
    view.feed(running(2.0))
    view.feed(Finish("interrupted", detail="stopped by Ctrl-C"))
    view.close()
    assert err.getvalue().endswith("\r\x1b[2K↳ interrupted · 2.0 s\n")


def test_the_spinner_shows_untrusted_names_inert_on_one_row() -> None:
    err = io.StringIO()
    view = RoundsView(lambda: Recording([], 0), err, color=True, animate=True)
    view.feed(running(0.5, server="evil\x1b[2J", tool="x\n" * 80))
    view.close()
    frame = err.getvalue().split("\r\x1b[2K")[1]
    assert "\x1b[2J" not in frame and "␛[2J" in frame and "\n" not in frame
    assert len(frame) < 100


def test_plain_output_draws_no_spinner() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = PlainView(out, err)
    for event in [ToolStarted(CALL, "time", "get_current_time"), running(0.1), running(0.2),
                  ToolFinished(CALL, "time", "get_current_time", ToolResultPart("c1", "15:00"), 0.3)]:
        view.feed(event)
    view.close()
    assert "⠋" not in err.getvalue() and "\r" not in err.getvalue() and out.getvalue() == ""
    assert "↳ ok" in err.getvalue()


def test_no_spinner_when_stderr_is_not_a_terminal() -> None:
    err = io.StringIO()  # `chatcli ask 2>log`: the panel on stdout, stderr a file
    view = RoundsView(lambda: Recording([], 0), err, color=False)
    for event in [ToolStarted(CALL, "time", "get_current_time"), running(0.1), running(0.2),
                  ToolFinished(CALL, "time", "get_current_time", ToolResultPart("c1", "15:00"), 0.3)]:
        view.feed(event)
    view.close()
    assert "\r" not in err.getvalue() and "⠋" not in err.getvalue() and "↳ ok" in err.getvalue()
