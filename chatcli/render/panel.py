"""The live markdown panel for TTYs: fast3 (docs/architecture.md, "Streaming markdown (fast3)") with a panel look.

Output split (docs/architecture.md, "Output", says stdout carries the reply, stderr status/warnings/usage): on a TTY
the *rendered reply is the panel*, so the panel goes to stdout whole -- top border with the model
label, side borders on every row, and the bottom border carrying the footer (finish reason, tokens
in/out, time to first token, tokens/s), because "Output" also says the panel's bottom border shows these.
Everything that is not part of the reply goes to stderr: the spinner and retry countdown (a
transient line, only when stderr is a TTY; the spinner only once the reply has kept the user
waiting `SPINNER_DELAY`), notices, and the partial-reply warning (printed right
below the panel). Before a line goes to stderr the live region is erased and then redrawn below it,
so the two streams never interleave on the same rows.

Threading: `feed()` (the caller's thread) only appends sanitized text under a lock and wakes a
daemon ticker thread; the ticker paints at most one frame per interval (~30 fps, adaptive to frame
cost) and always paints pending text when the interval ends (trailing edge), so no text waits longer
than one interval. All terminal writes happen under the same lock. `close()` stops and joins the
ticker, then paints the final frame and restores the terminal (SGR reset, cursor shown, synchronized
update ended) in a `finally`, so every exit path -- including Ctrl-C -- leaves the terminal sane.
With `threaded=False` the view paints on `feed()` when a frame is due and on `tick()` (the
benchmark drives it that way, on a virtual clock).

Ctrl-C and the lock: the main thread takes the lock only with `with self._lock:` on a plain
`threading.Lock`, never through a `threading.Condition` (or Event, or Semaphore). A Ctrl-C often
arrives while the main thread waits for the lock the ticker holds to paint, or, once the ticker let
go of it, for the GIL the ticker still holds; the main thread then gets the lock and runs the
handler at its first bytecode check after the acquire. `Condition.__enter__` is a Python frame, so
that check fell inside it, before the `with` statement had anything to release: the
KeyboardInterrupt left the lock held and the next `feed(Finish)` waited forever (CI: `chatcli ask`
hanging after Ctrl-C, 1 run in ~15). With a C-level `__enter__` the check falls inside the `with`
body, whose exit releases the lock. The ticker is woken through `_Wakeup`, whose setter is one C call.

Reasoning is shown dimmed above the answer (unless `show_reasoning=False`); reasoning that arrives
after the answer has started is not shown (providers send it first).

Security: all model text passes `StreamSanitizer` before it is parsed; it only ever reaches Rich as
parsed markdown tokens (`hyperlinks=False`) or `Text`, never as markup.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TextIO

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text

from chatcli.events import Finish, Notice, ReasoningDelta, Retrying, SessionEvent, TextDelta, Usage
from chatcli.render.blocks import RowRenderer, Rows, TailBlocks, warm_highlighting
from chatcli.render.footer import Where, describe_finish, format_stats, retry_line
from chatcli.render.painter import ESU, HIDE_CURSOR, RESET, SHOW_CURSOR, RowPainter
from chatcli.render.sanitize import StreamSanitizer, sanitize_line

SizeGetter = Callable[[], tuple[int, int]]  # (columns, rows)
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: Seconds without a reply before the spinner shows. A faster reply (a local server, a warm
#: connection) starts without a status line flashing up for one frame and being erased, and the
#: request does not share the CPU with that write (the render thread's first run, on a 2-core VM):
#: checkpoint timestamps over 20 REPL processes put the first reply's wait for the response 0.75 ms
#: longer than the second's with the immediate spinner, 0.2 ms without.
SPINNER_DELAY = 0.12
MIN_CONTENT_WIDTH = 20


def content_width(cols: int) -> int:
    """Markdown width inside the borders: cols - 1 (margin for wcwidth disagreements, "Width") - 4."""
    return max(MIN_CONTENT_WIDTH, cols - 5)


def fit_words(text: str, width: int, sep: str = " · ") -> str:
    """`text` shortened to `width` cells at a boundary, never mid-word: whole `sep`-separated parts
    are dropped from the end first, then words, with `…` marking the cut."""
    if cell_len(text) <= width:
        return text
    parts = text.split(sep)
    while len(parts) > 1:
        parts.pop()
        if cell_len(sep.join(parts) + " …") <= width:
            return sep.join(parts) + " …"
    if cell_len(parts[0]) <= width:
        return parts[0]  # the finish reason alone, without room for the marker
    words = parts[0].split(" ")
    while len(words) > 1:
        words.pop()
        if cell_len(" ".join(words) + " …") <= width:
            return " ".join(words) + " …"
    # One word wider than the border (a long model name): cut it, visibly.
    return set_cell_size(parts[0], max(0, width - 1)) + "…" if width > 0 else ""


def border_row(left: str, label: str, right: str, width: int, style: Style, cs: object) -> str:
    """`╭─ label ──…─╮` exactly `width` cells wide; a label too long is shortened at a word or
    ` · ` boundary (`fit_words`), never cut mid-word."""
    inner = width - 2
    label = f"─ {fit_words(label, inner - 3)} " if label else ""
    if cell_len(label) > inner:
        label = set_cell_size(label, inner)
    line = left + label + "─" * (inner - cell_len(label)) + right
    return style.render(line, color_system=cs) if cs else line  # type: ignore[arg-type]


#: The most reply text one pass of the engine takes (see `_frame`).
FRAME_SLICE = 1 << 16


class _Reasoning:
    """Reasoning text: plain dim rows. Complete source lines are final, so they commit at once."""

    STYLE = Style(dim=True, italic=True)

    def __init__(self) -> None:
        self.text = ""
        self.off = 0
        self.committed = 0

    def _rows(self, r: RowRenderer, src: str) -> Rows:
        if not src:
            return [r.blank], [r.plain_blank]
        return r.render(Text(src, style=self.STYLE))

    def frame(self, r: RowRenderer, live_rows: int, final: bool) -> tuple[Rows, Rows]:
        ca: list[str] = []
        cp: list[str] = []
        end = len(self.text) if final else self.text.rfind("\n")  # end of the complete lines
        if end >= self.off:
            if not (final and end == self.off):
                a, p = self._rows(r, self.text[self.off:end])
                ca += a[self.committed:]
                cp += p[self.committed:]
            self.off, self.committed = end + 1, 0
        if final or self.off >= len(self.text):
            return (ca, cp), ([], [])
        la, lp = self._rows(r, self.text[self.off:])
        extra = len(la) - self.committed - live_rows
        if extra > 0:
            k = self.committed + extra
            ca += la[self.committed:k]
            cp += lp[self.committed:k]
            self.committed = k
        return (ca, cp), (la[self.committed:], lp[self.committed:])


class _Wakeup:
    """A binary semaphore on a raw lock (locked = nothing to say): `set()` from any thread holding the
    view's lock, `wait()` from the ticker only. Unlike `threading.Condition`/`Event`, a Ctrl-C in the
    setter's thread cannot leave a lock held (see the module docstring). A wake-up is only a hint:
    the ticker re-reads the view's state under the view's lock after every wait."""

    def __init__(self) -> None:
        self._flag = threading.Lock()
        self._flag.acquire()

    def set(self) -> None:
        # Only setters release, and they hold the view's lock: locked() cannot change under us.
        if self._flag.locked():
            self._flag.release()

    def wait(self, timeout: float | None) -> None:
        self._flag.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))


class PanelView:
    """A `ReplyView` drawing a live markdown panel. See the module docstring."""

    def __init__(self, out: TextIO, err: TextIO, *, size: SizeGetter, label: str = "",
                 show_reasoning: bool = True, no_color: bool = False, code_theme: str = "monokai",
                 color_system: str | None = "truecolor", clock: Callable[[], float] = time.monotonic,
                 threaded: bool = True, reflow: bool = True, err_tty: bool | None = None,
                 spinner: bool = True, where: Where = "chat") -> None:
        self._out = out
        self._where: Where = where
        self._err = err
        self._size = size
        self._label = sanitize_line(label)
        self._show_reasoning = show_reasoning
        self._no_color = no_color
        self._code_theme = code_theme
        self._cs_name = color_system
        self._clock = clock
        self._reflow = reflow
        if err_tty is None:
            try:
                err_tty = err.isatty()
            except (AttributeError, ValueError):
                err_tty = False
        self._err_tty = err_tty
        self._spinner = spinner and err_tty
        self._err_color = err_tty and not no_color

        self._lock = threading.Lock()
        self._wakeup = _Wakeup()
        self._text_san = StreamSanitizer()
        self._reason_san = StreamSanitizer()
        self._pending: list[str] = []
        self._rpending: list[str] = []
        self._dirty = False
        self._stop = False
        self._closed = False
        self._finalized = False
        self._broken = False
        self._failed: BaseException | None = None

        self._cols = -1
        self._renderer: RowRenderer | None = None
        self._engine: TailBlocks | None = None
        self._reason = _Reasoning()
        self._painter = RowPainter(self._write_out)
        self._started = False
        self._answer = False
        self._had_text = False  # any reply text was fed (painted or not)
        self._status: str | None = None
        self._status_shown = False
        self._spin_i = 0
        self._retry_attempt = -1

        self._start = clock()
        self._first: float | None = None
        self._usage: Usage | None = None
        self._last_frame = -1e9
        self._cost = 0.0
        self.interval = 1 / 30
        #: (clock at start, wall seconds, CPU seconds of this thread) per painted frame (benchmark).
        self.frame_log: list[tuple[float, float, float]] = []

        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="chatcli-render", daemon=True)
            self._thread.start()

    # -- ReplyView ------------------------------------------------------------------------------

    def feed(self, event: SessionEvent) -> None:
        if isinstance(event, TextDelta):
            self._add(self._pending, self._text_san.feed(event.text))
        elif isinstance(event, ReasoningDelta):
            if self._show_reasoning:
                self._add(self._rpending, self._reason_san.feed(event.text))
            else:
                self._mark_first()
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, Retrying):
            with self._lock:
                line = retry_line(event.attempt, event.delay, event.cause, event.attempts)
                if self._err_tty and not self._started:
                    self._status = line  # the transient status line counts down in place
                    self._draw_status()
                elif event.attempt != self._retry_attempt:
                    self._err_line(line, "dim")  # a log gets one line per attempt
                self._retry_attempt = event.attempt
        elif isinstance(event, Notice):
            with self._lock:
                self._err_line(sanitize_line(event.text), "dim")
        elif isinstance(event, Finish):
            with self._lock:
                if not self._finalized:
                    self._finalize(event)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._thread is not None:
                with self._lock:
                    self._stop = True
                    self._wakeup.set()
                self._thread.join()
        finally:
            with self._lock:
                try:
                    if not self._finalized:
                        self._finalize(None)
                finally:
                    self._clear_status()
                    if self._started and not self._broken:
                        self._write_out(ESU + RESET + SHOW_CURSOR)

    def tick(self) -> bool:
        """Paint if text is pending and a frame is due (used when `threaded=False`). True if painted."""
        with self._lock:
            if self._dirty and self._clock() >= self._last_frame + self.interval and not self._finalized:
                self._safe_frame()
                return True
        return False

    @property
    def next_due(self) -> float | None:
        """When the next frame may be painted, if text is waiting (for virtual-time drivers)."""
        return self._last_frame + self.interval if self._dirty else None

    @property
    def bytes_written(self) -> int:
        return self._painter.bytes

    # -- feeding --------------------------------------------------------------------------------

    def _mark_first(self) -> None:
        if self._first is None:
            self._first = self._clock()

    def _add(self, queue: list[str], text: str) -> None:
        if not text:
            return
        with self._lock:
            if self._finalized:
                return
            self._mark_first()
            if queue is self._pending:
                self._had_text = True
            queue.append(text)
            self._dirty = True
            if self._thread is not None:
                self._wakeup.set()
            elif self._clock() >= self._last_frame + self.interval:
                self._safe_frame()

    def _run(self) -> None:
        # While the request is in flight (time to first token), outside the lock; a no-op once done
        # (the REPL's warm-up usually did it while the user typed).
        with contextlib.suppress(Exception):  # only an optimisation
            warm_highlighting()
        while True:
            with self._lock:
                if self._stop:
                    return
                wait = self._run_once()
            self._wakeup.wait(wait)

    def _run_once(self) -> float | None:
        """Paint what is due; return how long the ticker may sleep (None: until woken)."""
        if self._dirty and not self._finalized:
            wait = self._last_frame + self.interval - self._clock()
            if wait <= 0:
                self._safe_frame()
                return 0.0
            return wait
        if self._spinner and not self._started and not self._finalized:
            due = self._start + SPINNER_DELAY - self._clock()
            if due > 0:
                return due
            self._draw_status()
            return 0.08
        return None

    # -- painting (all under self._lock) --------------------------------------------------------

    def _safe_frame(self, final: bool = False) -> None:
        if self._failed is not None or self._broken:
            self._dirty = False
            return
        try:
            self._frame(final)
        except Exception as exc:  # a rendering bug must not lose the reply or wreck the terminal
            self._failed = exc
            self._painter.clear()

    def _setup(self, cols: int) -> None:
        if self._cols != -1:
            self._painter.reanchor(cols, self._reflow)
        self._cols = cols
        self._renderer = RowRenderer(content_width(cols), color_system=self._cs_name,
                                     no_color=self._no_color, code_theme=self._code_theme)
        if self._engine is None:
            self._engine = TailBlocks(self._renderer)
        else:
            self._engine.set_renderer(self._renderer)
        self._reason.committed = 0

    def _get_size(self) -> tuple[int, int]:
        try:
            cols, rows = self._size()
        except Exception:
            cols, rows = 80, 24
        return max(cols, MIN_CONTENT_WIDTH + 5), max(rows, 6)

    def _frame(self, final: bool = False, footer: str | None = None) -> None:
        t0 = time.perf_counter()
        c0 = time.thread_time()
        now = self._clock()
        self._dirty = False
        cols, rows = self._get_size()
        if cols != self._cols:
            self._setup(cols)
        r, engine = self._renderer, self._engine
        assert r is not None and engine is not None
        # A quarter of the screen: a reflowing terminal doubles the region's rows when the width
        # halves, and a resize that also takes rows away (120x40 -> 80x30) pushes whatever does not
        # fit above the cursor into scrollback, where no erase reaches (a second, partial copy).
        # A third was enough for one shrink; after a shrink and a grow the region is no longer at
        # the bottom of the screen (the erase left blank rows under it), tmux keeps some of those
        # blank rows below the cursor on the next shrink, and the doubled third no longer fit
        # (tests/e2e/test_terminal.py, schedule "twice": 21 rows twice). Doubled, a quarter
        # leaves half the new screen free.
        live_rows = max(2, rows // 4)
        text = "".join(self._pending)
        rtext = "".join(self._rpending)
        self._pending.clear()
        self._rpending.clear()
        if final:
            text += self._text_san.flush()
            rtext += self._reason_san.flush()
        commit: list[str] = []
        prefix = ""
        if not self._started:
            if not (text or rtext or final):
                return
            self._clear_status()
            self._started = True
            prefix = HIDE_CURSOR
            commit.append(self._border("╭", self._label, "╮"))
        if rtext and not self._answer:
            self._reason.text += rtext
        live: Rows = ([], [])
        if text and not self._answer:
            self._answer = True
            if self._reason.text:
                (ra, _), _ = self._reason.frame(r, live_rows, final=True)
                commit += ra
                commit.append(r.blank)
        if self._answer:
            # At most FRAME_SLICE characters go through the engine at a time: a frame that finds
            # megabytes pending (a fast stream, a slow frame before it) would otherwise render
            # them as one live block, and the rows of a 1 MB paragraph cost ~100 MB at once.
            # Same work in total; only the last slice's live rows are painted.
            start = 0
            while True:
                piece = text[start:start + FRAME_SLICE]
                start += len(piece)
                last = start >= len(text)
                if piece:
                    engine.append(piece)
                (ca, _), live = engine.frame(live_rows, final and last)
                commit += ca
                if last:
                    break
        elif self._reason.text:
            (ca, _), live = self._reason.frame(r, live_rows, final)
            commit += ca
        if footer is not None:
            commit.append(self._border("╰", footer, "╯"))
        self._painter.paint(commit, live[0], live[1], prefix)
        cost = time.perf_counter() - t0
        self.frame_log.append((now, cost, time.thread_time() - c0))
        self._last_frame = now
        # The frame interval follows the cost of re-rendering the live block, the only work that
        # is repeated every frame (rendering a finished block happens once, whatever the frame
        # rate): ~30 fps, slower only when the live block is expensive (a huge table or
        # paragraph), keeping render CPU near 10% of a core.
        live_cost = engine.live_cost if self._answer else cost
        self._cost = live_cost if self._cost == 0 else 0.7 * self._cost + 0.3 * live_cost
        c = self._cost
        self.interval = min(max(1 / 30, 8 * c), max(1 / 25, 3 * c), 0.25)

    def _finalize(self, finish: Finish | None) -> None:
        self._finalized = True
        end = self._clock()
        warning = None
        if not self._had_text:
            held = self._text_san.flush()  # text the sanitizer held back counts as text
            if held:
                self._pending.append(held)
                self._had_text = True
        if not (self._started or self._had_text or self._reason.text or self._rpending) and (
                finish is None or finish.reason in ("interrupted", "error")):
            # Cancelled or failed before anything arrived: no empty panel, only the warning.
            if finish is not None:
                self._err_line(f"⚠ {describe_finish(finish, where=self._where, has_text=False)[1]}", "yellow")
            return
        if finish is not None:
            summary, warning = describe_finish(finish, where=self._where, has_text=self._had_text)
            ttft = None if self._first is None else self._first - self._start
            gen = None if self._first is None else end - self._first
            stats = format_stats(self._usage, ttft, gen)
            footer = summary + (f" · {stats}" if stats else "")
        else:
            footer = ""
        if self._failed is None and not self._broken:
            try:
                self._frame(final=True, footer=footer)
            except Exception as exc:
                self._failed = exc
        if self._failed is not None and self._engine is not None and not self._broken:
            # Rendering failed: still show every character of the reply, as plain text.
            rest = self._engine.text[self._engine.tail_off:] + "".join(self._pending)
            self._write_out(ESU + RESET + "\n" + rest + "\n")
        if warning:
            self._err_line(f"⚠ {warning}", "yellow")

    def _border(self, left: str, label: str, right: str) -> str:
        r = self._renderer
        assert r is not None
        return border_row(left, label, right, content_width(self._cols) + 4, Style(dim=True), r.cs)

    # -- stderr ---------------------------------------------------------------------------------

    def _err_write(self, data: str) -> None:
        try:
            self._err.write(data)
            self._err.flush()
        except (OSError, ValueError):
            pass

    def _draw_status(self) -> None:
        if not self._err_tty or self._started:
            return
        frame = _SPINNER[self._spin_i % len(_SPINNER)]
        self._spin_i += 1
        text = self._status or (f"{self._label} …" if self._label else "waiting for the reply …")
        cols, _ = self._get_size()
        line = set_cell_size(f"{frame} {text}", cols - 1).rstrip()
        if self._err_color:
            line = f"\x1b[2m{line}\x1b[0m"
        # Cursor back to column 0: a `^C` echoed at the right margin would wrap (see painter.py).
        self._err_write("\r" + line + "\x1b[K\r")
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self._status_shown = False
            self._err_write("\r\x1b[K")

    def _err_line(self, text: str, style: str) -> None:
        self._clear_status()
        if self._painter.prev:
            self._painter.clear()  # the live region is redrawn below the line by the next frame
            self._dirty = True
            self._last_frame = -1e9
        if self._err_color:
            text = f"\x1b[{'33' if style == 'yellow' else '2'}m{text}\x1b[0m"
        self._err_write(text + "\n")
        if self._thread is not None:
            self._wakeup.set()

    def _write_out(self, data: str) -> None:
        if self._broken:
            return
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):
            self._broken = True  # the terminal went away: nothing left to protect
