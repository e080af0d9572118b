"""Row-diff painter for a live region at the bottom of normal scrollback (docs/architecture.md, "Painting").

Why not `rich.live.Live`: it erases the region and redraws it every frame (flicker, rich PR #3873),
has no synchronized output, and duplicates content once the region outgrows the screen (#3263).

Invariants:
* one `write()` per frame, wrapped in DEC 2026 synchronized update (BSU/ESU; terminals without
  support ignore it) and with auto-wrap off, so one row is always one physical row;
* rows are overwritten in place and cleared to end of line (EL) -- never erase-then-draw; only rows
  left over below the new region are erased (ED);
* new rows are reached with CR LF (LF scrolls), never with CUD (which stops at the bottom row);
* after a frame the cursor rests at the START of the last live row (or of an empty line when there
  is no live region), never at the right margin: a `^C` the tty echoes there (ECHOCTL) would wrap
  onto a new row and push the region one row down, so the next frame would land one row low and
  leave a duplicated row. At column 0 the echo only overwrites two cells the next frame repaints.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len

# A frame is bracketed by synchronized update (DEC 2026) and auto-wrap off (DECAWM): a row that the
# terminal measures wider than Rich did (emoji/ZWJ/ambiguous widths, docs/architecture.md "Width")
# is then clipped at the right edge instead of wrapping onto an extra physical row, which would
# break the row arithmetic.
BSU = "\x1b[?2026h\x1b[?7l"
ESU = "\x1b[?7h\x1b[?2026l"
EL = "\x1b[K"
ED = "\x1b[J"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
RESET = "\x1b[0m"
# CR LF, not LF: correct even when the tty is in raw mode (no ONLCR), e.g. under prompt_toolkit.
NL = "\r\n"


def _up(n: int) -> str:
    return f"\x1b[{n}A" if n > 0 else ""


class RowPainter:
    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self.prev: list[str] = []
        self.prev_plain: list[str] = []
        self.bytes = 0
        self.frames = 0

    def _emit(self, data: str) -> None:
        self.bytes += len(data.encode("utf-8", "replace"))
        self.frames += 1
        self._write(data)

    def paint(self, commit: list[str], live: list[str], live_plain: list[str] | None = None,
              prefix: str = "") -> None:
        """Print `commit` rows into scrollback above a live region that becomes `live`."""
        prev = self.prev
        n = len(prev)
        buf: list[str] = []
        k = len(commit)
        if commit and n > k and prev[:k] == commit:
            # The rows to commit are already on screen at the top of the region (a tall block
            # scrolling up): leave them where they are and diff the rest -- no rewrite.
            prev = prev[k:]
            n -= k
            commit = []
        if commit or not n:
            if not commit and not live:
                return
            buf.append("\r" + _up(n - 1))
            for row in commit:
                buf.append(row + EL + NL)
            if live:
                buf.append((EL + NL).join(live) + EL)
            buf.append(ED)
        else:
            first = 0
            m = min(n, len(live))
            while first < m and live[first] == prev[first]:
                first += 1
            if first == n == len(live):
                self.prev = list(live)  # (it may have dropped committed rows above)
                self.prev_plain = list(live_plain) if live_plain is not None else list(live)
                return  # nothing changed on screen: no bytes at all
            if not live:
                buf.append("\r" + _up(n - 1) + ED)
            else:
                # Clamp: the cursor must land on an existing row (CUD cannot scroll), and rewrite at
                # least the last row so the cursor ends on it.
                first = min(first, n - 1, len(live) - 1)
                buf.append("\r" + _up(n - 1 - first))
                buf.append((EL + NL).join(live[first:]) + EL)
                if len(live) < n:
                    buf.append(ED)
        if live:
            buf.append("\r")  # after ED: at column 0 it would erase the last row (see the invariants)
        self.prev = list(live)
        self.prev_plain = list(live_plain) if live_plain is not None else list(live)
        self._emit(BSU + prefix + "".join(buf) + ESU)

    def clear(self, extra: str = "") -> None:
        """Erase the live region (e.g. before a line is printed on stderr); it is redrawn later."""
        n = len(self.prev)
        if n:
            self._emit(BSU + "\r" + _up(n - 1) + ED + extra + ESU)
        elif extra:
            self._emit(extra)
        self.prev, self.prev_plain = [], []

    def reanchor(self, new_cols: int, reflow: bool = True) -> None:
        """After a width change: erase the old region as the terminal now shows it ("Resize").

        A reflowing terminal re-wrapped each old row into ceil(width / new_cols) rows; the old region
        is at most a quarter of the screen (panel.py), so even doubled it is still on screen and can
        be erased when the screen loses rows in the same resize (120x40 -> 80x30).
        """
        n = len(self.prev)
        if not n:
            return
        rows = n
        if reflow:
            rows = sum(max(1, -(-cell_len(p) // max(1, new_cols))) for p in self.prev_plain)
        self._emit(BSU + "\r" + _up(rows - 1) + ED + ESU)
        self.prev, self.prev_plain = [], []
