"""The panel's engine over long replies (issue 16, item 16): per-frame cost that does not grow
with what was already shown, and the same rows as a one-shot render.

`TailBlocks` used to keep the whole reply and extend it with `self.text += text`, a copy of
everything at every frame (an attribute is a second reference, so CPython cannot grow the str in
place); it now drops text that is committed. The panel feeds the engine at most `FRAME_SLICE`
characters at a time, so a frame that finds a megabyte pending does not render it as one block.
"""

from __future__ import annotations

import io

from chatcli.events import Finish, TextDelta
from chatcli.render.blocks import RowRenderer, TailBlocks, render_rows
from chatcli.render.panel import FRAME_SLICE, PanelView
from tests.support.fakes import TTY


def long_reply(paragraphs: int) -> str:
    blocks = []
    for i in range(paragraphs):
        if i % 9 == 0:
            blocks.append(f"## Part {i // 9}\n")
        elif i % 4 == 0:
            blocks.append("".join(f"- item {i}.{j} with *some* `code`\n" for j in range(3)))
        else:
            blocks.append(f"Paragraph {i}: the quick brown fox jumps over the lazy dog.\nA second line "
                          f"of paragraph {i}, kept as its own line.\n")
    return "\n".join(blocks)


def stream_rows(text: str, step: int, width: int = 60) -> tuple[list[str], TailBlocks, int]:
    engine = TailBlocks(RowRenderer(width, color_system=None))
    rows: list[str] = []
    longest = 0
    for i in range(0, len(text), step):
        engine.append(text[i:i + step])
        (_, plain), _ = engine.frame(live_rows=8)
        rows += plain
        longest = max(longest, len(engine.text))
    (_, plain), _ = engine.frame(live_rows=8, final=True)
    return rows + plain, engine, longest


def test_a_long_reply_streams_to_the_one_shot_rows_while_the_engine_keeps_only_its_tail() -> None:
    text = long_reply(1500)  # ~110 KB: the committed text is dropped several times over
    assert len(text) > 100_000
    rows, _, longest = stream_rows(text, step=997)
    assert rows == render_rows(text, RowRenderer(60, color_system=None))[1]
    # The engine held a bounded tail, not the reply: before, `text` grew to all 110 KB.
    assert longest < 40_000, longest


def test_a_frame_with_megabytes_pending_renders_in_slices_and_loses_nothing() -> None:
    text = long_reply(400)
    assert len(text) > FRAME_SLICE // 4
    out, err = TTY(), io.StringIO()
    view = PanelView(out, err, size=lambda: (64, 24), label="p:m", color_system=None, threaded=False)
    # One delta bigger than a slice, and the final frame finding it all pending.
    big = text * 3
    assert len(big) > FRAME_SLICE
    view.feed(TextDelta(big))
    view.feed(Finish("stop"))
    view.close()
    shown = out.getvalue()
    regular = [i for i in range(400) if i % 9 and i % 4]
    missing = [i for i in regular if shown.count(f"of paragraph {i}, kept as its own line.") < 3]
    assert not missing, missing[:10]  # every copy of every paragraph reached the terminal
    assert "stop" in shown.splitlines()[-1] or "stop" in shown[-400:]  # and the footer closed the panel
