"""The live panel streamed into a terminal emulator (pyte) must leave exactly a one-shot render.

Every reply is fed through `PanelView` with several chunkings (1 char, random sizes, whole lines);
the byte stream goes into a `pyte.HistoryScreen` (with ONLCR applied, as a tty would), and the
reconstructed scrollback + screen must equal the bordered one-shot render of the whole text.
"""

from __future__ import annotations

import io
import itertools
import random
import re
from collections.abc import Callable, Iterable

import pyte
import pytest

from chatcli.events import Finish, Notice, ReasoningDelta, Retrying, TextDelta, Usage
from chatcli.render.blocks import RowRenderer, render_rows
from chatcli.render.panel import PanelView, content_width
from chatcli.render.sanitize import sanitize
from tests.support.fakes import TTY

COLS, ROWS = 80, 24


def one_shot(text: str, cols: int = COLS) -> list[str]:
    """The whole reply rendered at once, as the same emulator shows it (auto-wrap off, like frames)."""
    r = RowRenderer(content_width(cols), color_system=None)
    rows = render_rows(sanitize(text), r)[0]
    return transcript("\x1b[?7l" + "".join(row + "\n" for row in rows), cols=cols)


def transcript(data: str, cols: int = COLS, rows: int = ROWS) -> list[str]:
    screen = pyte.HistoryScreen(cols, rows, history=100_000)
    stream = pyte.Stream(screen)
    stream.feed(data.replace("\n", "\r\n"))
    lines = ["".join(row[x].data for x in range(cols)).rstrip() for row in screen.history.top]
    lines += [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def ticking_clock(step: float = 1.0) -> Callable[[], float]:
    """Every reading is `step` seconds later; 1 s makes every feed paint a frame (most frames)."""
    counter = itertools.count()
    return lambda: next(counter) * step


def stream(chunks: Iterable[str], *, size: Callable[[], tuple[int, int]] = lambda: (COLS, ROWS),
           color: str | None = "truecolor", finish: Finish | None = None,
           events_before: Iterable[object] = (), reflow: bool = False,
           step: float = 1.0) -> tuple[str, PanelView]:
    out = io.StringIO()
    view = PanelView(out, io.StringIO(), size=size, label="fake:model", threaded=False,
                     clock=ticking_clock(step), color_system=color, reflow=reflow)
    for ev in events_before:
        view.feed(ev)  # type: ignore[arg-type]
    for c in chunks:
        view.feed(TextDelta(c))
    view.feed(finish or Finish("stop"))
    view.close()
    return out.getvalue(), view


def chunkings(text: str, seed: int = 0) -> dict[str, list[str]]:
    rnd = random.Random(seed)
    sizes: list[str] = []
    i = 0
    while i < len(text):
        n = rnd.choice([1, 2, 3, 4, 5, 8, 13, 40])
        sizes.append(text[i:i + n])
        i += n
    return {
        "1char": list(text),
        "random": sizes,
        "lines": text.splitlines(keepends=True),
    }


def body(lines: list[str]) -> list[str]:
    assert lines[0].startswith("╭─ fake:model"), lines[:2]
    assert lines[-1].startswith("╰─ stop"), lines[-2:]
    return lines[1:-1]


FENCE_60 = "```python\n" + "".join(f"x_{i} = {i} * 2  # row {i}\n" for i in range(60)) + "```\n"
TABLE_40 = "| n | square | text |\n|---|---|---|\n" + "".join(
    f"| {i} | {i * i} | {'word ' * (i % 5)}|\n" for i in range(40))
LONG_PARA = "Intro. **" + " ".join(f"word{i}" for i in range(400)) + " end of bold** tail.\n"

CASES = {
    "fence_opener_interrupts": "para\n```a\nstill para\n\nnext\n",  # a real fence (info "a")
    # backticks in a backtick fence's info string: not a fence, but inline code in the paragraph
    "fence_lookalike": "para\n```not a fence` since the info has a backtick\nmore\n\nnext\n",
    "setext": "Title\n=====\n\nSub\n---\ntext\n",
    "list_interrupts": "para\n- a\n- b\n\nafter\n",
    "nested_fence": "````md\n```python\nx = 1\n```\n````\n\ntext\n",
    "tilde_fence": "~~~\ncode ```\n~~~\nafter\n",
    "fence_in_list": "- item\n\n  ```sh\n  ls -la\n  ```\n- second\n\nend\n",
    "table": "before\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 333 | 4444 |\n\nafter\n",
    "bold_across_lines": "a **bold\nstill bold** done\n",
    "two_dot": "1999\\. was a year\n2. not a list start here\n",
    "hr_vs_setext": "text\n\n---\n\nmore\n***\nend\n",
    "fence_taller": "start\n\n" + FENCE_60 + "\nafter\n",
    "table_taller": "start\n\n" + TABLE_40 + "\nafter\n",
    "long_bold_para": LONG_PARA + "\nnext\n",
    "emoji_cjk": "# 標題 🎉\n\n中文字符和 emoji 👍 混合 **粗体** text 🎉🎉 end " + "宽字符" * 30 + "\n\n- 項目 ✅\n",
    "long_url": "see [docs](https://example.com/" + "a" * 150 + "?q=1) and https://x.example/"
                + "b" * 120 + "\n",
    "markup_literal": "[bold]x[/] and [link=https://evil]y[/link] and [/] and [/bold]\n",
    "image": "para\n\n![alt text](https://evil.example/p.png?d=SECRET)\n\nafter\n",
    "quote_hr": "> quoted\n> more\n\n---\n# Heading\ntext\n",
    "no_trailing_newline": "para one\n\npara **two",
    "line_breaks": "first\nsecond\nthird\n\n- item\n  next line\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nend\n",
    "tall_para_of_lines": "Lines\n" + "".join(f"line {j} " + "w " * (j % 30) + "\n" for j in range(120)) + "\nx\n",
    "fence_long_indented_lines": "```python\n" + "".join(
        f"def f{i}(x):\n    return call_{i}(" + ", ".join(f"argument_{j}" for j in range(12)) + ")\n"
        for i in range(12)) + "```\nafter\n",
    "para_then_tall_para": "short para\n\n" + "Long " + " ".join(f"L{j}" for j in range(300)) + "\n\nx\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_stream_equals_one_shot(name: str) -> None:
    text = CASES[name]
    expected = one_shot(text)
    # Long replies: a frame every ~5th reading instead of every one, to keep the suite fast.
    step = 1.0 if len(text) < 1000 else 0.01
    for kind, chunks in chunkings(text).items():
        data, _ = stream(chunks, step=step)
        assert body(transcript(data)) == expected, f"{name} / {kind}"


def test_fence_taller_than_screen_is_rebased_and_exact() -> None:
    text = "```python\n" + "".join(f"value_{i} = compute({i})\n" for i in range(150)) + "```\nafter\n"
    data, view = stream(chunkings(text)["random"], step=0.01)
    assert body(transcript(data)) == one_shot(text)
    # the fence was not re-rendered whole on every frame: it was rebased as it grew
    assert view._engine is not None and view._engine.rebases > 5


def test_huge_paragraph_is_rebased_and_exact() -> None:
    text = "Start " + " ".join(f"word{i} **b{i}** `c{i}`" for i in range(600)) + " end.\n\nafter\n"
    renders: list[int] = []
    data, view = stream(chunkings(text, seed=3)["random"], step=0.01)
    assert body(transcript(data)) == one_shot(text)
    assert view._engine is not None and view._engine.rebases > 5
    del renders


def test_live_region_stays_within_a_third_of_the_screen() -> None:
    text = CASES["fence_taller"] + CASES["table_taller"] + LONG_PARA
    out = io.StringIO()
    view = PanelView(out, io.StringIO(), size=lambda: (COLS, ROWS), threaded=False,
                     clock=ticking_clock(0.01), color_system=None)
    for c in chunkings(text)["random"]:
        view.feed(TextDelta(c))
        assert len(view._painter.prev) <= ROWS // 3
    view.close()


def test_frames_are_synchronized_single_writes_without_full_clears() -> None:
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, s: str) -> int:
            writes.append(s)
            return len(s)

    view = PanelView(Recorder(), io.StringIO(), size=lambda: (COLS, ROWS), threaded=False,
                     clock=ticking_clock(), color_system="truecolor")
    for c in chunkings(CASES["table"] + LONG_PARA)["random"]:
        view.feed(TextDelta(c))
    view.feed(Finish("stop"))
    view.close()
    frames = [w for w in writes if "\x1b[?2026h" in w]
    assert len(frames) > 20
    for w in frames:
        assert w.startswith("\x1b[?2026h") and w.endswith("\x1b[?2026l")
        assert "\x1b[2J" not in w and "\x1b[H" not in w
        assert not re.search(r"\x1b\[\d*B", w)  # never CUD: it cannot scroll
    assert writes[-1].endswith("\x1b[?25h")  # cursor shown again


def test_resize_mid_stream_loses_and_duplicates_nothing() -> None:
    text = "# Resize\n\n" + "".join(
        f"Paragraph {i}: " + " ".join(f"w{i}_{j}" for j in range(30)) + "\n\n" for i in range(12)
    ) + FENCE_60 + "end\n"
    width = [100]
    calls = itertools.count()

    def size() -> tuple[int, int]:
        if next(calls) == 300:
            width[0] = 70
        return width[0], ROWS

    # The emulator is wider than either width, so it never re-wraps: what we see is what was sent.
    data, _ = stream(chunkings(text)["random"], size=size)
    lines = transcript(data, cols=120)
    assert width[0] == 70, "the resize happened mid-stream"
    assert {len(line) for line in lines} == {99, 69}, "rows at both widths"
    words = [w for line in lines if line.startswith("│") for w in line.strip("│ ").split()]
    expected = [w for line in one_shot(text, 100) for w in line.strip("│ ").split()]
    assert words == expected


@pytest.mark.parametrize("at", [50, 160, 420, 700])
@pytest.mark.parametrize("new", [70, 130])
def test_resize_while_a_tall_block_streams(at: int, new: int) -> None:
    text = "# Resize\n\n" + "".join(
        f"Paragraph {i}: " + " ".join(f"w{i}_{j}" for j in range(30)) + "\n\n" for i in range(3)
    ) + "Long " + " ".join(f"L{j}" for j in range(400)) + "\n\n" + FENCE_60 + "end\n"
    width = [100]
    calls = itertools.count()

    def size() -> tuple[int, int]:
        if next(calls) == at:
            width[0] = new
        return width[0], ROWS

    data, _ = stream(chunkings(text)["random"], size=size, step=0.01)
    lines = transcript(data, cols=140)
    words = [w for line in lines if line.startswith("│") for w in line.strip("│ ").split()]
    assert words == [w for line in one_shot(text, 100) for w in line.strip("│ ").split()]


def test_reanchor_counts_reflowed_rows() -> None:
    from chatcli.render.painter import RowPainter

    out: list[str] = []
    p = RowPainter(out.append)
    p.paint([], ["a" * 79, "b" * 79, "c"], ["a" * 79, "b" * 79, "c"])
    p.reanchor(40, reflow=True)  # 2 + 2 + 1 physical rows now: up 4, erase below
    assert out[-1] == "\x1b[?2026h\x1b[?7l\r\x1b[4A\x1b[J\x1b[?7h\x1b[?2026l" and p.prev == []


def test_reasoning_shown_dimmed_above_answer_and_hidden_when_asked() -> None:
    events = [ReasoningDelta("thinking about\nthe answer"), ReasoningDelta(" more")]
    data, _ = stream(["The answer."], events_before=events)
    lines = transcript(data)
    assert any("thinking about" in line for line in lines)
    assert lines.index(next(line for line in lines if "the answer more" in line)) < lines.index(
        next(line for line in lines if "The answer." in line))
    out = io.StringIO()
    view = PanelView(out, io.StringIO(), size=lambda: (COLS, ROWS), threaded=False, clock=ticking_clock(),
                     show_reasoning=False)
    view.feed(ReasoningDelta("secret thoughts"))
    view.feed(TextDelta("hi"))
    view.feed(Finish("stop"))
    view.close()
    assert "secret thoughts" not in out.getvalue()


def test_footer_and_warning() -> None:
    out, err = io.StringIO(), io.StringIO()
    now = [0.0]
    view = PanelView(out, err, size=lambda: (COLS, ROWS), label="openai:gpt", threaded=False,
                     clock=lambda: now[0], color_system=None)
    now[0] = 0.5
    view.feed(TextDelta("partial"))
    view.feed(Usage(12, 40))
    now[0] = 2.5
    view.feed(Finish("length", raw="max_tokens"))
    view.close()
    lines = transcript(out.getvalue())
    assert lines[0].startswith("╭─ openai:gpt ")
    foot = lines[-1]
    assert "length (max_tokens)" in foot and "12 in / 40 out" in foot and "first token 0.50 s" in foot
    assert "20.0 tok/s" in foot
    assert "token limit" in err.getvalue() and "/continue" in err.getvalue()
    assert "token limit" not in out.getvalue()


def test_notice_goes_to_stderr_and_live_region_is_redrawn() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = PanelView(out, err, size=lambda: (COLS, ROWS), label="fake:model", threaded=False,
                     clock=ticking_clock(), color_system=None)
    view.feed(TextDelta("hello wor"))
    view.feed(Notice("3 oldest turns left out"))
    view.feed(TextDelta("ld\n"))
    view.feed(Finish("stop"))
    view.close()
    assert "3 oldest turns left out" in err.getvalue()
    assert "turns left out" not in out.getvalue()
    assert body(transcript(out.getvalue())) == one_shot("hello world\n")


def test_close_is_idempotent_and_restores_terminal_without_finish() -> None:
    out = io.StringIO()
    view = PanelView(out, io.StringIO(), size=lambda: (COLS, ROWS), threaded=True, color_system=None)
    view.feed(TextDelta("**partial reply with `code"))
    view.close()
    view.close()
    data = out.getvalue()
    assert data.endswith("\x1b[?7h\x1b[?2026l\x1b[0m\x1b[?25h")
    assert "partial reply with" in "\n".join(transcript(data))
    assert view._thread is not None and not view._thread.is_alive()


def test_threaded_ticker_paints_trailing_edge_without_more_input() -> None:
    import time

    out = io.StringIO()
    view = PanelView(out, io.StringIO(), size=lambda: (COLS, ROWS), threaded=True, color_system=None)
    try:
        view.feed(TextDelta("first"))
        time.sleep(0.005)
        view.feed(TextDelta(" second"))  # within the frame interval: coalesced, painted by the ticker
        deadline = time.monotonic() + 1.0
        while "second" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert "second" in out.getvalue()
        assert time.monotonic() < deadline
    finally:
        view.close()


def test_zwj_emoji_width_disagreement_does_not_break_rows() -> None:
    # Rich and the emulator disagree on the width of ZWJ sequences; with auto-wrap off during frames
    # a row can at worst be clipped at the right edge, never wrap onto an extra row.
    text = "family 👨‍👩‍👧 " * 12 + "\n\nnext paragraph\n"
    for chunks in chunkings(text).values():
        data, _ = stream(chunks)
        lines = body(transcript(data))
        assert len(lines) == len(one_shot(text))
        assert lines[-1].startswith("│ next paragraph")


def test_spinner_and_retry_countdown_on_a_tty_stderr_then_cleared() -> None:
    import time

    out, err = io.StringIO(), TTY()
    view = PanelView(out, err, size=lambda: (COLS, ROWS), label="p:m", color_system=None)
    try:
        time.sleep(0.2)
        view.feed(Retrying(2, 3.0, "rate limited (429)"))
        assert "retrying in 3 s (attempt 2)" in err.getvalue()
        view.feed(TextDelta("hello"))
        view.feed(Finish("stop"))
    finally:
        view.close()
    text = err.getvalue()
    assert any(ch in text for ch in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") and "p:m" in text
    assert text.endswith("\r\x1b[K")  # the status line was erased before the panel started
    assert "retrying" not in out.getvalue()


def test_the_spinner_waits_for_a_slow_reply_only() -> None:
    """No status line flashes up for a reply that starts within SPINNER_DELAY (virtual clock: the
    reply never gets slow); one shows once the delay has passed without a reply."""
    import time

    from chatcli.render.panel import SPINNER_DELAY

    now = [100.0]
    fast_err = TTY()
    view = PanelView(io.StringIO(), fast_err, size=lambda: (COLS, ROWS), label="p:m", color_system=None,
                     clock=lambda: now[0])
    try:
        time.sleep(SPINNER_DELAY * 2)  # real time passes; on the view's clock the reply is instant
        view.feed(TextDelta("hello"))
        view.feed(Finish("stop"))
    finally:
        view.close()
    assert not any(ch in fast_err.getvalue() for ch in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

    slow_err = TTY()
    view = PanelView(io.StringIO(), slow_err, size=lambda: (COLS, ROWS), label="p:m", color_system=None,
                     clock=lambda: now[0])
    try:
        now[0] += SPINNER_DELAY + 0.01
        deadline = time.monotonic() + 5
        while not any(ch in slow_err.getvalue() for ch in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"):
            assert time.monotonic() < deadline, "no spinner after the delay"
            time.sleep(0.01)
        view.feed(TextDelta("hello"))
        view.feed(Finish("stop"))
    finally:
        view.close()
    assert slow_err.getvalue().endswith("\r\x1b[K")


def test_empty_reply_draws_an_empty_panel() -> None:
    data, _ = stream([])
    lines = transcript(data)
    assert lines[0].startswith("╭") and lines[-1].startswith("╰─ stop")


def test_heal_closes_only_what_can_still_close() -> None:
    from chatcli.render.blocks import heal

    assert heal("a **b c") == "a **b c**"
    assert heal("a **b c  \n") == "a **b c**"  # a closer after a space would not close
    assert heal("x `code") == "x `code`"
    assert heal("x ``co") == "x ``co``"
    assert heal("2 ** 3") == "2 ** 3"
    assert heal("```py\n**x") == "```py\n**x"  # never inside a fence
    assert heal("para **x\n\n- item") == "para **x\n\n- item"  # markup never spans a blank line


def test_ctrl_c_while_waiting_for_a_frame_being_painted_leaves_the_view_usable() -> None:
    """CI caught `chatcli ask` hanging after Ctrl-C mid-stream (1 run in ~15): the main thread, waiting
    for the view's lock while the render thread painted, got the lock with SIGINT pending and ran the
    handler inside `Condition.__enter__`, a Python frame, before the `with` could release it.
    `feed(Finish)` then waited forever on a lock nobody would release.

    Reproduced every time: the render thread, holding the lock while the main thread waits for it,
    raises SIGINT at itself (a signal caught by a non-main thread only marks it pending; the main
    thread runs the handler at its next bytecode check, right after it gets the lock)."""
    import signal
    import threading
    import time

    main_waits = threading.Event()

    class SlowTerminal(io.StringIO):
        painting = threading.Event()
        signalled = False

        def write(self, s: str) -> int:
            if threading.current_thread() is not threading.main_thread() and not self.signalled:
                self.signalled = True
                self.painting.set()
                main_waits.wait(5)
                time.sleep(0.2)  # the main thread is now blocked on the lock in feed()
                signal.raise_signal(signal.SIGINT)  # pending; only the main thread runs the handler
            return super().write(s)

    out = SlowTerminal()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    view = PanelView(out, io.StringIO(), size=lambda: (COLS, ROWS), threaded=True, color_system=None)
    try:
        interrupted = False
        try:
            view.feed(TextDelta("first words"))
            assert out.painting.wait(5)
            main_waits.set()
            view.feed(TextDelta(" and more"))
            time.sleep(0.5)  # a handler that did not run inside feed() runs here
        except KeyboardInterrupt:
            interrupted = True
        assert interrupted and out.signalled

        # What run_turn does after Ctrl-C, watched from a thread: a leaked lock hangs it.
        def finish() -> None:
            view.feed(Finish("interrupted"))
            view.close()

        closer = threading.Thread(target=finish, daemon=True)
        closer.start()
        closer.join(5)
        assert not closer.is_alive(), "the view's lock was left held: feed(Finish) hangs"
        assert "first words" in "\n".join(transcript(out.getvalue()))
        assert out.getvalue().endswith("\x1b[0m\x1b[?25h")
    finally:
        signal.signal(signal.SIGINT, previous)


def test_single_line_breaks_in_a_reply_are_kept() -> None:
    data, _ = stream(chunkings("first\nsecond\nthird\n")["1char"])
    assert [line.strip("│ ") for line in body(transcript(data))] == ["first", "second", "third"]


def test_footer_too_wide_for_the_border_is_shortened_at_a_word_boundary() -> None:
    out = io.StringIO()
    view = PanelView(out, io.StringIO(), size=lambda: (40, ROWS), label="openai:gpt", threaded=False,
                     clock=ticking_clock(), color_system=None)
    view.feed(TextDelta("hi"))
    view.feed(Usage(1234, 5678))
    view.feed(Finish("content_filter", raw="SAFETY_BLOCK_REASON"))
    view.close()
    foot = transcript(out.getvalue(), cols=40)[-1]
    assert len(foot) == 39 and foot.endswith("╯"), foot
    label = foot[3:].rstrip("─╯ ")
    assert label.endswith(" …"), foot
    full = "content_filter (SAFETY_BLOCK_REASON) · 1,234 in / 5,678 out"
    kept = label[:-2]
    assert full.startswith(kept) and full[len(kept)] == " ", f"cut mid-word: {foot!r}"


def test_fit_words_never_cuts_a_word() -> None:
    from chatcli.render.panel import fit_words

    assert fit_words("stop · 12 in / 40 out · first token 0.50 s", 30) == "stop · 12 in / 40 out …"
    assert fit_words("interrupted · 12 in / 40 out", 11) == "interrupted"
    assert fit_words("reply cut at the limit", 12) == "reply cut …"
    assert fit_words("short", 10) == "short"


def test_cancelled_or_failed_before_any_text_draws_no_panel() -> None:
    for finish in (Finish("interrupted"), Finish("error", detail="boom")):
        out, err = io.StringIO(), io.StringIO()
        view = PanelView(out, err, size=lambda: (COLS, ROWS), label="fake:model", threaded=False,
                         clock=ticking_clock(), color_system=None)
        view.feed(finish)
        view.close()
        assert "╭" not in out.getvalue() and "╰" not in out.getvalue(), out.getvalue()
        assert "partial reply kept" not in err.getvalue(), err.getvalue()
    assert "cancelled before any reply arrived" in describe_warning(Finish("interrupted"), False)
    assert describe_warning(Finish("error", detail="boom"), False) == "the stream failed: boom"


def describe_warning(finish: Finish, has_text: bool) -> str:
    from chatcli.render.footer import describe_finish

    return describe_finish(finish, has_text=has_text)[1] or ""


def test_warnings_in_ask_name_what_works_from_the_shell() -> None:
    from chatcli.render.footer import describe_finish

    for reason in ("length", "pause_turn"):
        chat = describe_finish(Finish(reason), where="chat")[1] or ""
        ask = describe_finish(Finish(reason), where="ask")[1] or ""
        assert "/continue resumes" in chat and "chatcli -c" not in chat
        assert "`chatcli -c`, then /continue" in ask, ask
    err = io.StringIO()
    view = PanelView(io.StringIO(), err, size=lambda: (COLS, ROWS), threaded=False, clock=ticking_clock(),
                     color_system=None, where="ask")
    view.feed(TextDelta("cut"))
    view.feed(Finish("length"))
    view.close()
    assert "`chatcli -c`, then /continue" in err.getvalue()


def test_wrapped_code_lines_keep_their_indentation() -> None:
    code = "```python\ndef f(x):\n        return some_function_name(argument_one, argument_two, argument_three)\n```\n"
    r = RowRenderer(content_width(40), color_system=None)
    rows = [row[2:-2] for row in render_rows(code, r)[1]]
    start = next(i for i, row in enumerate(rows) if row.strip().startswith("return"))
    continuation = [row for row in rows[start + 1:] if row.strip()]
    assert len(continuation) >= 2, rows
    for row in continuation:
        assert row.startswith(" " * 9) and row[9] != " ", rows  # padding 1 + the line's 8-space indent


def test_a_request_that_fails_before_any_text_leaves_no_empty_panel() -> None:
    """A `ProviderError` before the first token propagates out of `run_turn`: the view is closed
    without a `Finish`, and the error line printed after it must not sit under an empty panel."""
    out = io.StringIO()
    view = PanelView(out, io.StringIO(), size=lambda: (COLS, ROWS), label="fake:model", threaded=True,
                     color_system=None)
    view.close()
    assert out.getvalue() == "", out.getvalue()
