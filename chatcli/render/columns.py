"""One painter for several live panels (chatcli/compare/): side by side, or stacked.

Each panel keeps the single panel's scheme (chatcli/render/panel.py; docs/architecture.md,
"Streaming markdown (fast3)"): a `TailBlocks` engine commits finished blocks and re-renders only
the live tail. What changes is where committed rows go. Scrollback is shared, so a screen row can
be committed only when every panel's part of it is final:

* side by side (each column at least `MIN_COLUMN` cells): screen row r is panel 0's row r, a
  space, panel 1's row r, ... Rows a panel committed wait in its `held` list until every
  unfinished panel has committed as many (a finished panel pads with blanks); those composite
  rows then go to scrollback, once. The live region shows each panel's held rows plus its live
  tail, bottom-aligned in a window of at most a third of the screen (a panel far ahead of another
  shows its newest rows; its held ones are committed as the other catches up).
* stacked (narrower terminals): panels in `-m` order; the first unfinished one streams exactly as
  a single panel does, and each later one shows its label and newest rows in a small window
  below it. When the head panel ends, the next one's held rows are committed and it streams on.

Either way every panel's rows reach scrollback exactly once and in order, so the final screen is
each reply's one-shot render in its column (tests/test_compare_render.py checks it in pyte).

One `RowPainter` paints the whole region: one write per frame, synchronized output, row diff.
The view is driven by the main thread alone (`feed` and `tick` from chatcli/compare/runner.py's queue
loop): no ticker thread and no lock. Resize: the old region is erased as the terminal reflowed
it (`RowPainter.reanchor`), the layout is recomputed, each engine continues at its new width
(`TailBlocks.set_renderer`), and held rows rendered at the old width are kept as they are (wider
ones are re-wrapped as plain text) -- nothing is lost or shown twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text

from chatcli.events import Finish, Notice, ReasoningDelta, Retrying, SessionEvent, TextDelta, Usage
from chatcli.render.blocks import _COLOR_SYSTEMS, RowRenderer, TailBlocks
from chatcli.render.footer import describe_finish, format_stats, retry_line
from chatcli.render.painter import BSU, ED, EL, ESU, HIDE_CURSOR, NL, RESET, SHOW_CURSOR, RowPainter, _up
from chatcli.render.panel import MIN_CONTENT_WIDTH, border_row
from chatcli.render.sanitize import StreamSanitizer, sanitize_line

if TYPE_CHECKING:
    from chatcli.render.panel import SizeGetter

#: The narrowest column (borders included) side by side; narrower terminals stack the panels.
MIN_COLUMN = 60
_DIM = Style(dim=True)


def layout(cols: int, n: int) -> tuple[bool, int]:
    """(side by side?, width of each panel in cells, borders included). One cell is kept free at
    the right edge (docs/architecture.md, "Width") and one between columns."""
    side = (cols - 1 - (n - 1)) // n if n > 1 else cols - 1
    if n > 1 and side >= MIN_COLUMN:
        return True, side
    return False, max(cols - 1, MIN_CONTENT_WIDTH + 4)


class _CellPainter(RowPainter):
    """`RowPainter` whose live rows are made of fixed-width cells (one per panel): a row where only
    one panel changed rewrites only that panel's cell (cursor to its column, the cell), not the
    whole screen row -- with two or three panels streaming, most frames change one cell of one row.
    Committing, erasing and re-anchoring are the row painter's (the same invariants hold)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__(write)
        self.prev_cells: list[list[str]] = []
        self.starts: list[int] = []  # 1-based column of each cell

    def paint_cells(self, commit: list[str], cells: list[list[str]], plain: list[str], prefix: str = "") -> None:
        live = [" ".join(row) for row in cells]
        n = len(self.prev)
        k = len(commit)
        shifted = bool(commit) and n > k and self.prev[:k] == commit
        if (commit and not shifted) or not n or not live:
            self.paint(commit, live, plain, prefix)
            self.prev_cells = [list(row) for row in cells]
            return
        prev_cells = self.prev_cells[k:] if shifted else self.prev_cells
        prev = self.prev[k:] if shifted else self.prev
        n = len(prev)
        first = 0
        m = min(n, len(live))
        while first < m and live[first] == prev[first]:
            first += 1
        if first == n == len(live):
            self.prev, self.prev_plain, self.prev_cells = list(live), list(plain), [list(r) for r in cells]
            return
        first = min(first, n - 1, len(live) - 1)
        buf = ["\r" + _up(n - 1 - first)]
        for i in range(first, len(live)):
            if i > first:
                buf.append(NL)
            old = prev_cells[i] if i < n and i < len(prev_cells) else None
            if old is not None and len(old) == len(cells[i]) == len(self.starts):
                for j, cell in enumerate(cells[i]):
                    if cell != old[j]:
                        buf.append(f"\x1b[{self.starts[j]}G" + cell)
            else:
                buf.append("\r" + live[i] + EL)
        if len(live) < n:
            buf.append(ED)
        buf.append("\r")
        self.prev, self.prev_plain, self.prev_cells = list(live), list(plain), [list(r) for r in cells]
        self._emit(BSU + prefix + "".join(buf) + ESU)

    def clear(self, extra: str = "") -> None:
        super().clear(extra)
        self.prev_cells = []

    def reanchor(self, new_cols: int, reflow: bool = True) -> None:
        super().reanchor(new_cols, reflow)
        self.prev_cells = []


class _Panel:
    def __init__(self, label: str, clock: Callable[[], float]) -> None:
        self.label = sanitize_line(label)
        self.san = StreamSanitizer()
        self.pending: list[str] = []
        self.engine: TailBlocks | None = None
        self.renderer: RowRenderer | None = None
        self.held: list[tuple[str, str]] = []  # committed rows not yet in scrollback (ansi, plain)
        self.top: tuple[str, str] | None = None  # its label row (the top border), while held
        self.live: tuple[list[str], list[str]] = ([], [])
        self.status: str | None = None
        self.notes: list[str] = []
        self.dirty = False
        self.started = False  # the top border is in `held` (or on screen)
        self.finished = False  # the bottom border is in `held`
        self.finish: Finish | None = None
        self.error: str | None = None
        self.had_text = False
        self.usage: Usage | None = None
        self.start = clock()
        self.first: float | None = None
        self.end: float | None = None
        self.warning: str | None = None


class ColumnsView:
    """A `CompareView` (chatcli/compare/runner.py) drawing one live panel per model."""

    def __init__(self, out: TextIO, err: TextIO, *, labels: Sequence[str], size: SizeGetter | None = None,
                 show_reasoning: bool = True, no_color: bool = False, code_theme: str = "monokai",
                 color_system: str | None = "auto", clock: Callable[[], float] = time.monotonic,
                 reflow: bool = True, secrets: Sequence[str] = ()) -> None:
        from chatcli.render import _color_system, terminal_size

        self._out = out
        self._err = err
        self._size = size or terminal_size(out)
        self._no_color = no_color
        self._code_theme = code_theme
        self._cs = _color_system(out) if color_system == "auto" else color_system
        self._clock = clock
        self._reflow = reflow
        self._secrets = tuple(secrets)
        del show_reasoning  # reasoning is not drawn in the columns: the answers are compared
        self._panels = [_Panel(label, clock) for label in labels]
        self._painter = _CellPainter(self._write)
        self._cols = -1
        self._side = True
        self._width = 0
        self._head = 0  # stacked: the panel streaming into scrollback
        self._started = False
        self._closed = False
        self._broken = False
        self._last_frame = -1e9
        self._cost = 0.0
        self.interval = 1 / 30
        #: (clock at start, wall seconds, CPU seconds) per painted frame (benchmark).
        self.frame_log: list[tuple[float, float, float]] = []

    # -- CompareView ------------------------------------------------------------------------------

    def feed(self, index: int, event: SessionEvent) -> None:
        p = self._panels[index]
        if p.finished:
            return
        if isinstance(event, TextDelta):
            text = p.san.feed(event.text)
            if text:
                if p.first is None:
                    p.first = self._clock()
                p.pending.append(text)
                p.had_text = True
                p.status = None
                p.dirty = True
        elif isinstance(event, ReasoningDelta):
            if p.first is None:
                p.first = self._clock()
            if not p.had_text:
                p.status = "thinking …"
                p.dirty = True
        elif isinstance(event, Usage):
            p.usage = event
        elif isinstance(event, Retrying):
            p.status = retry_line(event.attempt, event.delay, event.cause)
            p.dirty = True
        elif isinstance(event, Notice):
            p.status = sanitize_line(event.text)
            p.dirty = True
        elif isinstance(event, Finish):
            p.finish = event
            p.end = self._clock()
            p.dirty = True
        self.tick()

    def begin(self, index: int) -> None:
        """Lane `index` sends its request now: its "first token" time counts from here."""
        self._panels[index].start = self._clock()

    def fail(self, index: int, message: str) -> None:
        from chatcli.redact import redact

        p = self._panels[index]
        p.error = " ".join(sanitize_line(redact(message, self._secrets)).split("\n"))
        p.finish = Finish("error", detail=p.error)
        p.end = self._clock()
        p.dirty = True
        self.tick()

    def end(self, index: int) -> None:
        p = self._panels[index]
        if p.finish is None:
            p.finish = Finish("incomplete")
        p.dirty = True
        self._last_frame = -1e9  # a panel's end is drawn at once
        self.tick()

    def tick(self) -> bool:
        if self._closed or self._broken:
            return False
        if not any(p.dirty for p in self._panels):
            return False
        if self._clock() < self._last_frame + self.interval:
            return False
        self._frame()
        return True

    @property
    def next_due(self) -> float | None:
        return self._last_frame + self.interval if any(p.dirty for p in self._panels) else None

    @property
    def bytes_written(self) -> int:
        return self._painter.bytes

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            for p in self._panels:
                if p.finish is None:
                    p.finish = Finish("interrupted", detail="stopped by Ctrl-C")
                    p.end = self._clock()
                p.dirty = True
            if not self._broken:
                self._frame(final=True)
        finally:
            if self._started and not self._broken:
                self._write(ESU + RESET + SHOW_CURSOR)
            for p in self._panels:
                if p.warning:
                    self._err_line(f"⚠ {p.label}: {p.warning}")

    # -- layout -----------------------------------------------------------------------------------

    def _get_size(self) -> tuple[int, int]:
        try:
            cols, rows = self._size()
        except Exception:
            cols, rows = 80, 24
        return max(cols, MIN_CONTENT_WIDTH + 5), max(rows, 8)

    def _relayout(self, cols: int) -> None:
        again = self._cols != -1
        if again:
            self._painter.reanchor(cols, self._reflow)
        self._cols = cols
        side, width = layout(cols, len(self._panels))
        if again:
            for p in self._panels:
                labelled = bool(p.held) and p.held[0] is p.top
                right = p.renderer.right if p.renderer is not None else ""
                p.held = [r for a, pl in p.held for r in _fit(a, pl, width, right)]
                if labelled:
                    p.top = p.held[0]
                elif p.started and not p.finished:
                    # Its label is in scrollback at the old layout: say whose rows these are.
                    p.top = self._border_at(width, "╭", f"{p.label} (continued)", "╮")
                    p.held.insert(0, p.top)
        self._side, self._width = side, width
        n = len(self._panels) if side else 1
        self._painter.starts = [1 + j * (width + 1) for j in range(n)]
        for p in self._panels:
            p.renderer = RowRenderer(width - 4, color_system=self._cs, no_color=self._no_color,
                                     code_theme=self._code_theme)
            if p.engine is None:
                p.engine = TailBlocks(p.renderer)
            else:
                p.engine.set_renderer(p.renderer)
            p.dirty = True

    def _border(self, p: _Panel, left: str, label: str, right: str) -> tuple[str, str]:
        return self._border_at(self._width, left, label, right)

    def _border_at(self, width: int, left: str, label: str, right: str) -> tuple[str, str]:
        cs = _COLOR_SYSTEMS.get(self._cs or "")
        return border_row(left, label, right, width, _DIM, cs), border_row(left, label, right, width, _DIM, None)

    # -- one frame --------------------------------------------------------------------------------

    def _frame(self, final: bool = False) -> None:
        t0 = time.perf_counter()
        c0 = time.thread_time()
        now = self._clock()
        cols, rows = self._get_size()
        if cols != self._cols:
            self._relayout(cols)
        live_rows = max(2, rows // 3)
        work = 0.0
        for p in self._panels:
            if p.dirty:
                work += self._advance(p, live_rows, final)
        commit = self._compose_side(live_rows) if self._side else self._compose_stacked(live_rows)
        prefix = ""
        if not self._started:
            self._started = True
            prefix = HIDE_CURSOR
        self._painter.paint_cells(commit[0], commit[1], commit[2], prefix)
        cost = time.perf_counter() - t0
        self.frame_log.append((now, cost, time.thread_time() - c0))
        self._last_frame = now
        live_cost = work or cost
        self._cost = live_cost if self._cost == 0 else 0.7 * self._cost + 0.3 * live_cost
        c = self._cost
        # As the single panel (panel.py), but from 25 ms: the main thread also drains the queue
        # between frames, so a character can wait an interval plus a frame plus a queue poll.
        self.interval = min(max(1 / 40, 8 * c), max(1 / 30, 3 * c), 0.25)

    def _advance(self, p: _Panel, live_rows: int, final: bool) -> float:
        """Feed the panel's pending text to its engine: committed rows to `held`, the tail to `live`."""
        p.dirty = False
        engine = p.engine
        assert engine is not None and p.renderer is not None
        if not p.started:
            p.started = True
            p.top = self._border(p, "╭", p.label, "╮")
            p.held.append(p.top)
        text = "".join(p.pending)
        p.pending.clear()
        done = p.finish is not None or final
        if done and not p.finished:
            text += p.san.flush()
        if text:
            engine.append(text)
        if p.finished:
            return 0.0
        if done:
            (ca, cp), _ = engine.frame(live_rows, final=True)
            p.held += zip(ca, cp, strict=True)
            p.finished = True
            p.live = ([], [])
            self._finish_rows(p)
            return 0.0
        (ca, cp), live = engine.frame(live_rows)
        p.held += zip(ca, cp, strict=True)
        if not engine.text and p.status is not None:
            a, pl = p.renderer.render(Text(set_cell_size(p.status, p.renderer.width).rstrip(), style=_DIM))
            live = (a[:1], pl[:1])
        elif not engine.text:
            a, pl = p.renderer.render(Text("waiting for the reply …", style=_DIM))
            live = (a[:1], pl[:1])
        p.live = (list(live[0]), list(live[1]))
        return engine.live_cost

    def _finish_rows(self, p: _Panel) -> None:
        finish = p.finish or Finish("incomplete")
        assert p.renderer is not None
        if p.error is not None and not p.had_text:
            a, pl = p.renderer.render(Text(f"⚠ {p.error}", style=Style(color="yellow")))
            p.held += zip(a, pl, strict=True)
        summary, warning = describe_finish(finish, where="ask", has_text=p.had_text)
        if p.error is None:
            p.warning = warning
        end = p.end if p.end is not None else self._clock()
        ttft = None if p.first is None else p.first - p.start
        gen = None if p.first is None else end - p.first
        stats = format_stats(p.usage, ttft, gen)
        p.held.append(self._border(p, "╰", summary + (f" · {stats}" if stats else ""), "╯"))

    def _blank(self) -> str:
        return " " * self._width

    def _compose_side(self, live_rows: int) -> tuple[list[str], list[list[str]], list[str]]:
        panels = self._panels
        running = [p for p in panels if not p.finished]
        k = min(len(p.held) for p in running) if running else max(len(p.held) for p in panels)
        blank = self._blank()
        commit_a: list[str] = []
        for r in range(k):
            commit_a.append(" ".join(p.held[r][0] + RESET if r < len(p.held) else blank for p in panels))
        for p in panels:
            del p.held[:k]
        stacks = [([a for a, _ in p.held] + p.live[0], [pl for _, pl in p.held] + p.live[1]) for p in panels]
        height = min(max(len(s[0]) for s in stacks), max(live_rows, 2)) if stacks else 0
        live_a: list[list[str]] = []
        live_p: list[str] = []
        for r in range(height):
            cells_a = []
            cells_p = []
            for sa, sp in stacks:
                off = max(0, len(sa) - height)
                i = off + r
                cells_a.append(sa[i] + RESET if i < len(sa) else blank)
                cells_p.append(sp[i] if i < len(sp) else blank)
            live_a.append(cells_a)
            live_p.append(" ".join(cells_p))
        return commit_a, live_a, live_p

    def _compose_stacked(self, live_rows: int) -> tuple[list[str], list[list[str]], list[str]]:
        panels = self._panels
        commit_a: list[str] = []
        while self._head < len(panels):
            head = panels[self._head]
            commit_a += [a for a, _ in head.held]
            head.held.clear()
            if not head.finished:
                break
            self._head += 1
        live_a: list[str] = []
        live_p: list[str] = []
        if self._head < len(panels):
            head = panels[self._head]
            waiting = panels[self._head + 1:]
            budget = max(2, live_rows - 2 * len(waiting))
            live_a += head.live[0][-budget:]
            live_p += head.live[1][-budget:]
            window = max(1, (live_rows - len(live_a)) // max(1, len(waiting)) - 1) if waiting else 0
            for p in waiting:
                stack_a = [a for a, _ in p.held] + p.live[0]
                stack_p = [pl for _, pl in p.held] + p.live[1]
                if stack_a:
                    # The label row first (it is the panel's top border, still held), then its newest rows.
                    live_a.append(stack_a[0])
                    live_p.append(stack_p[0])
                    live_a += stack_a[1:][-window:]
                    live_p += stack_p[1:][-window:]
        return commit_a, [[row] for row in live_a], live_p

    # -- output -----------------------------------------------------------------------------------

    def _write(self, data: str) -> None:
        if self._broken:
            return
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):
            self._broken = True

    def _err_line(self, text: str) -> None:
        try:
            self._err.write(text + "\n")
            self._err.flush()
        except (OSError, ValueError):
            pass


def _fit(ansi: str, plain: str, width: int, right: str = "") -> list[tuple[str, str]]:
    """A held row at a new panel width: padded when narrower (inside its right border, `right`,
    when it has one), re-wrapped (as plain text, between words where it can) when wider, so no
    character is lost."""
    w = cell_len(plain)
    if w <= width:
        pad = " " * (width - w)
        if right and ansi.endswith(right) and plain.endswith(" │"):
            return [(ansi[:-len(right)] + pad + right, plain[:-2] + pad + " │")]
        return [(ansi + RESET + pad, plain + pad)]
    out: list[tuple[str, str]] = []
    rest = plain
    while rest:
        piece = set_cell_size(rest, width)
        taken = len(piece.rstrip(" ")) if cell_len(rest) > width else len(rest)
        taken = max(1, min(taken, len(rest)))
        chunk = rest[:taken]
        while cell_len(chunk) > width and len(chunk) > 1:
            chunk = chunk[:-1]
        if len(chunk) < len(rest):  # more follows: break after a space when there is one late enough
            space = chunk.rfind(" ")
            if space >= len(chunk) // 2:
                chunk = chunk[:space + 1]
        rest = rest[len(chunk):]
        row = set_cell_size(chunk, width)
        out.append((row, row))
    return out
