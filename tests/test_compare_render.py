"""Several live panels in one terminal (chatcli/render/columns.py), checked in a terminal emulator.

The byte stream goes into a `pyte.HistoryScreen`; the scrollback plus screen at the end must be
each reply's one-shot render in its column (side by side at 160 columns, stacked at 100), and a
resize from 160 to 90 columns mid-stream must lose and duplicate nothing. The replies come from the
real openai and anthropic SDKs over the loopback server (chatcli/compare/runner.py's `Runner`), or, for the
chunking-heavy cases, are fed straight into the view on a virtual clock.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import pyte

from chatcli.events import Finish, TextDelta
from chatcli.redact import Secret
from chatcli.render.blocks import RowRenderer, render_rows
from chatcli.render.columns import ColumnsView, layout
from chatcli.render.sanitize import sanitize
from chatcli.settings import ProviderConfig
from tests.support.sse_server import Reply, SSEServer, anthropic_events, openai_chunks

REPLY_A = ("# Alpha\n\nThe first model says **this** and a list:\n\n- one\n- two\n\n```python\ndef a(x):\n"
           "    return x + 1\n```\n\n" + " ".join(f"alpha{i}" for i in range(60)) + "\n")
REPLY_B = ("Beta answers with a table:\n\n| k | v |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n"
           + " ".join(f"beta{i}" for i in range(90)) + "\n")
REPLY_C = "Gamma is short.\n"


def transcript(data: str, cols: int, rows: int = 40) -> list[str]:
    screen = pyte.HistoryScreen(cols, rows, history=100_000)
    pyte.Stream(screen).feed(data.replace("\n", "\r\n"))
    lines = ["".join(row[x].data for x in range(cols)).rstrip() for row in screen.history.top]
    lines += [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def one_shot_body(text: str, width: int) -> list[str]:
    """The reply's rows rendered at once inside a panel `width` cells wide (borders included)."""
    r = RowRenderer(width - 4, color_system=None)
    return [row.rstrip() for row in render_rows(sanitize(text), r)[1]]


def column(lines: Sequence[str], k: int, width: int) -> list[str]:
    out = [line[k * (width + 1): k * (width + 1) + width].rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


def check_panel(rows: list[str], label: str, text: str, width: int, reason: str = "stop") -> None:
    assert rows[0].startswith(f"╭─ {label} "), rows[:2]
    assert rows[-1].startswith(f"╰─ {reason}"), rows[-2:]
    assert rows[1:-1] == one_shot_body(text, width)


def ticking_clock(step: float = 1.0) -> Callable[[], float]:
    counter = itertools.count()
    return lambda: next(counter) * step


def feed_interleaved(view: ColumnsView, texts: Sequence[str], sizes: Sequence[int],
                     finishes: Sequence[Finish]) -> None:
    """Feed each reply in chunks of its own size (different speeds), round-robin, each ending on its own."""
    offs = [0] * len(texts)
    done = [False] * len(texts)
    while not all(done):
        for i, text in enumerate(texts):
            if done[i]:
                continue
            if offs[i] >= len(text):
                view.feed(i, finishes[i])
                view.end(i)
                done[i] = True
                continue
            view.feed(i, TextDelta(text[offs[i]:offs[i] + sizes[i]]))
            offs[i] += sizes[i]
    view.close()


def view_for(out: io.StringIO, labels: Sequence[str], size: Callable[[], tuple[int, int]],
             step: float = 1.0) -> ColumnsView:
    return ColumnsView(out, io.StringIO(), labels=labels, size=size, color_system="truecolor",
                       clock=ticking_clock(step), reflow=False)


def test_layout_side_by_side_only_with_60_cells_a_column() -> None:
    assert layout(160, 2) == (True, 79)
    assert layout(122, 2) == (True, 60)
    assert layout(121, 2)[0] is False
    assert layout(160, 3)[0] is False and layout(200, 3) == (True, 65)
    assert layout(100, 2) == (False, 99)


def test_side_by_side_final_screen_is_each_one_shot_render_in_its_column() -> None:
    out = io.StringIO()
    view = view_for(out, ["openai:a", "anthropic:b"], lambda: (160, 40))
    feed_interleaved(view, [REPLY_A, REPLY_B], [3, 11], [Finish("stop"), Finish("length")])
    lines = transcript(out.getvalue(), 160)
    check_panel(column(lines, 0, 79), "openai:a", REPLY_A, 79)
    check_panel(column(lines, 1, 79), "anthropic:b", REPLY_B, 79, "length")


def test_three_side_by_side_one_ends_early() -> None:
    out = io.StringIO()
    view = view_for(out, ["a:1", "b:2", "c:3"], lambda: (200, 40))
    feed_interleaved(view, [REPLY_A, REPLY_B, REPLY_C], [1, 7, 2], [Finish("stop")] * 3)
    lines = transcript(out.getvalue(), 200)
    for k, (label, text) in enumerate(zip(["a:1", "b:2", "c:3"], [REPLY_A, REPLY_B, REPLY_C], strict=True)):
        check_panel(column(lines, k, 65), label, text, 65)


def test_stacked_at_100_columns_is_one_panel_after_the_other() -> None:
    out = io.StringIO()
    view = view_for(out, ["openai:a", "anthropic:b"], lambda: (100, 30))
    feed_interleaved(view, [REPLY_A, REPLY_B], [5, 2], [Finish("stop"), Finish("stop")])
    lines = transcript(out.getvalue(), 100, rows=30)
    n_a = len(one_shot_body(REPLY_A, 99)) + 2
    check_panel(lines[:n_a], "openai:a", REPLY_A, 99)
    check_panel(lines[n_a:], "anthropic:b", REPLY_B, 99)


def _words(lines: Sequence[str], prefix: str) -> list[str]:
    return re.findall(rf"\b{prefix}\d+\b", "\n".join(lines))


def test_resize_160_to_90_mid_stream_loses_and_duplicates_nothing() -> None:
    text_a = "".join(f"Para {i}: " + " ".join(f"a{i * 40 + j}" for j in range(40)) + "\n\n" for i in range(8))
    text_b = "".join(f"Part {i}: " + " ".join(f"b{i * 30 + j}" for j in range(30)) + "\n\n" for i in range(9))
    width = [160]
    calls = itertools.count()

    def size() -> tuple[int, int]:
        if next(calls) == 400:
            width[0] = 90
        return width[0], 40

    out = io.StringIO()
    view = view_for(out, ["openai:a", "anthropic:b"], size)
    feed_interleaved(view, [text_a, text_b], [4, 3], [Finish("stop"), Finish("stop")])
    assert width[0] == 90, "the resize happened mid-stream"
    lines = transcript(out.getvalue(), 170)  # wider than both: the emulator never re-wraps
    assert _words(lines, "a") == [f"a{n}" for n in range(320)]
    assert _words(lines, "b") == [f"b{n}" for n in range(270)]
    assert any("anthropic:b (continued)" in line for line in lines)  # whose rows these are, after the switch


def test_growing_from_stacked_to_side_by_side_loses_and_duplicates_nothing() -> None:
    """90 -> 160 columns mid-stream: from stacked panels to columns; every word once, in order."""
    text_a = "".join(f"Para {i}: " + " ".join(f"a{i * 40 + j}" for j in range(40)) + "\n\n" for i in range(8))
    text_b = "".join(f"Part {i}: " + " ".join(f"b{i * 30 + j}" for j in range(30)) + "\n\n" for i in range(9))
    width = [90]
    calls = itertools.count()

    def size() -> tuple[int, int]:
        if next(calls) == 400:
            width[0] = 160
        return width[0], 40

    out = io.StringIO()
    view = view_for(out, ["openai:a", "anthropic:b"], size)
    feed_interleaved(view, [text_a, text_b], [4, 3], [Finish("stop"), Finish("stop")])
    assert width[0] == 160, "the resize happened mid-stream"
    lines = transcript(out.getvalue(), 170)
    assert _words(lines, "a") == [f"a{n}" for n in range(320)]
    assert _words(lines, "b") == [f"b{n}" for n in range(270)]
    assert layout(160, 2)[0] and not layout(90, 2)[0]  # the two layouts this test crosses


def test_frames_are_single_synchronized_writes() -> None:
    writes: list[str] = []

    class Out(io.StringIO):
        def write(self, s: str) -> int:
            writes.append(s)
            return len(s)

    view = view_for(Out(), ["a:1", "b:2"], lambda: (160, 40))
    feed_interleaved(view, [REPLY_A, REPLY_B], [9, 9], [Finish("stop")] * 2)
    frames = writes[:-1]  # the last write restores the terminal
    assert len(frames) > 10
    assert all(w.startswith("\x1b[?2026h") and w.endswith("\x1b[?2026l") for w in frames)
    assert not any("\x1b[2J" in w for w in writes)


# -- through the real SDKs ---------------------------------------------------------------------------


def _lanes(specs: Sequence[tuple[str, str, str]]) -> list[Any]:
    from chatcli import compare
    from chatcli.config import Resolved
    from chatcli.providers import build_provider
    from chatcli.session import RetryPolicy, Session

    lanes = []
    for i, (kind, url, model) in enumerate(specs):
        cfg = ProviderConfig(name=kind, type=kind, base_url=url, api_key=Secret("sk-test-key-123456"),  # type: ignore[arg-type]
                             timeout=10.0, connect_timeout=2.0, max_retries=0)
        provider = build_provider(cfg)
        lane = compare.Lane(i, Resolved(cfg, model), provider)
        lane.session = Session(provider, model=model, retry=RetryPolicy(max_retries=0))
        lanes.append(lane)
    return lanes


def _chunks(text: str, n: int) -> list[str]:
    return [text[i:i + n] for i in range(0, len(text), n)]


def test_both_sdks_side_by_side_complete_and_cut_at_the_limit() -> None:
    from chatcli import compare

    with SSEServer() as a, SSEServer() as b:
        a.add(Reply.sse(openai_chunks(_chunks(REPLY_A, 7), usage=(3, 40)), delay=0.002))
        b.add(Reply.sse(anthropic_events(_chunks(REPLY_B, 23), stop_reason="max_tokens")))
        lanes = _lanes([("openai", a.openai_url, "ma"), ("anthropic", b.anthropic_url, "mb")])
        out = io.StringIO()
        view = ColumnsView(out, io.StringIO(), labels=[lane.label for lane in lanes], size=lambda: (160, 40),
                           color_system="256", reflow=False)
        code = compare.Runner(lanes, "q").run(view)
    assert code == 3
    lines = transcript(out.getvalue(), 160)
    check_panel(column(lines, 0, 79), "openai:ma", REPLY_A, 79)
    check_panel(column(lines, 1, 79), "anthropic:mb", REPLY_B, 79, "length")


def test_three_models_error_after_text_and_401_show_in_their_own_panels() -> None:
    from chatcli import compare

    with SSEServer() as a, SSEServer() as b, SSEServer() as c:
        a.add(Reply.sse(openai_chunks(_chunks(REPLY_C, 3), usage=(3, 4)), delay=0.01))
        b.add(Reply.error(401, "invalid x-api-key", type="authentication_error", dialect="anthropic"))
        c.add(Reply.sse([*openai_chunks(["Half ", "a reply"], finish=None, done=False)], cut=True))
        lanes = _lanes([("openai", a.openai_url, "ma"), ("anthropic", b.anthropic_url, "mb"),
                        ("openai", c.openai_url, "mc")])
        out = io.StringIO()
        err = io.StringIO()
        view = ColumnsView(out, err, labels=[lane.label for lane in lanes], size=lambda: (200, 40),
                           color_system=None, reflow=False)
        code = compare.Runner(lanes, "q").run(view)
    assert code == 3
    lines = transcript(out.getvalue(), 200)
    check_panel(column(lines, 0, 65), "openai:ma", REPLY_C, 65)
    failed = column(lines, 1, 65)
    assert failed[0].startswith("╭─ anthropic:mb") and failed[-1].startswith("╰─ error")
    assert "⚠" in failed[1] and "key" in " ".join(failed).lower()
    cut = column(lines, 2, 65)
    assert cut[1:-1] == one_shot_body("Half a reply", 65) and cut[-1].startswith("╰─ error")
    assert "openai:mc" in err.getvalue()  # the partial's warning, below the panels


def test_hostile_text_labels_and_errors_are_neutralised() -> None:
    out = io.StringIO()
    view = view_for(out, ["evil\x1b]52;c;aGk=\x07:m", "b:2"], lambda: (160, 40))
    view.feed(0, TextDelta("clear \x1b[2J title \x1b]0;pwned\x07 bell \x07 done\n"))
    view.fail(1, "server says \x1b[31mred\x1b[0m and \x9b2J")
    view.feed(0, Finish("stop"))
    view.end(0)
    view.end(1)
    view.close()
    data = out.getvalue()
    assert "\x1b]52" not in data and "\x1b]0;" not in data and "\x1b[2J" not in data and "\x9b" not in data
    assert "\x07" not in data and "\x1b[31m" not in data
    lines = transcript(data, 160)
    assert "clear" in lines[1] and "done" in lines[1]
