"""Terminal output: the streaming markdown panel, the plain writer, and the sanitizer.

Cheap to import: nothing from Rich or markdown-it is loaded until a view is opened (startup time
matters, docs/architecture.md "Start-up time"). Entry points for the CLI and the REPL:

* `choose_mode(setting, out)` -- "auto" becomes "markdown" on a TTY (unless `TERM=dumb`), else "plain";
* `open_view(...)` -- a `ReplyView` for one reply (drive it with `chatcli.turn.run_turn`);
* `render_markdown_once(...)` -- show a stored reply (history show, resume replay), sanitized too;
* `sanitize`, `sanitize_line` -- for any other untrusted string (server errors, model names).

Broken pipe: a view's `feed()` lets `BrokenPipeError` propagate (plain mode); map it to a quiet exit.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, TextIO

from chatcli.render.sanitize import StreamSanitizer, sanitize, sanitize_line

if TYPE_CHECKING:
    from chatcli.render.base import ReplyView
    from chatcli.render.footer import Where

__all__ = ["StreamSanitizer", "choose_mode", "open_view", "render_markdown_once", "sanitize",
           "sanitize_line", "terminal_size"]

ViewMode = Literal["plain", "markdown"]


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def choose_mode(setting: str, out: TextIO) -> ViewMode:
    """`--plain`/`--markdown` win; "auto" is markdown only on a TTY whose TERM is not `dumb`."""
    if setting == "plain":
        return "plain"
    if setting == "markdown":
        return "markdown"
    if _isatty(out) and os.environ.get("TERM", "") != "dumb":
        return "markdown"
    return "plain"


def terminal_size(out: TextIO) -> Callable[[], tuple[int, int]]:
    """A (columns, rows) getter for `out`'s terminal, polled each frame (a cheap ioctl; see
    docs/architecture.md, "Resize")."""

    def size() -> tuple[int, int]:
        try:
            sz = os.get_terminal_size(out.fileno())
        except (AttributeError, ValueError, OSError):
            sz = shutil.get_terminal_size()
        return sz.columns, sz.lines

    return size


def _color_system(out: TextIO) -> str | None:
    from rich.console import Console

    # force_terminal: detect from TERM/COLORTERM even when `out` is a test double.
    return Console(file=out, force_terminal=True).color_system


def open_view(*, out: TextIO, err: TextIO, mode: ViewMode, label: str = "",
              size: Callable[[], tuple[int, int]] | None = None, show_reasoning: bool = True,
              no_color: bool | None = None, code_theme: str = "monokai",
              clock: Callable[[], float] = time.monotonic, where: Where = "chat",
              dumb: bool | None = None) -> ReplyView:
    """A view for one reply. `label` is "provider:model" (untrusted: sanitized). `no_color=None`
    reads `NO_COLOR`. `size` defaults to `out`'s terminal. `where`: in the chat or in `chatcli ask`
    (the warnings name what works there). `dumb=None` reads `TERM=dumb`: such a terminal gets no
    escape sequence at all from the plain view (no colour, no transient status line).
    Close it (run_turn does) on every path."""
    if no_color is None:
        no_color = bool(os.environ.get("NO_COLOR"))
    if dumb is None:
        dumb = os.environ.get("TERM", "") == "dumb"
    if mode == "plain":
        from chatcli.render.plain import PlainView

        return PlainView(out, err, show_reasoning=show_reasoning, no_color=no_color or dumb, clock=clock,
                         where=where, err_tty=False if dumb else None)
    from chatcli.render.panel import PanelView

    return PanelView(out, err, size=size or terminal_size(out), label=label, show_reasoning=show_reasoning,
                     no_color=no_color, code_theme=code_theme, color_system=_color_system(out), clock=clock,
                     where=where)


_PRIME_SAMPLE = (
    "# Title\n\nSome **bold**, `code` and a [link](https://example.invalid).\n\n- one\n- two\n\n"
    "```python\ndef f(x):\n    return x * 2\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
)


def prime() -> None:
    """Draw a small reply through a real panel into a private buffer, once.

    Importing the markdown stack is not all the first reply pays: Rich's console and theme setup,
    the first markdown-it parse, Pygments' lexer compilation and the painter's first frame are
    first-use costs too (~100 ms measured in the REPL). The REPL calls this from its warm-up
    thread while the user types, so the first reply's first frame costs what every later one does.
    """
    import io

    from chatcli.events import Finish, TextDelta
    from chatcli.render.blocks import warm_highlighting
    from chatcli.render.panel import PanelView

    warm_highlighting()
    view = PanelView(io.StringIO(), io.StringIO(), size=lambda: (100, 40), label="warm", threaded=False,
                     spinner=False, err_tty=False)
    try:
        for line in _PRIME_SAMPLE.splitlines(keepends=True):
            view.feed(TextDelta(line))
        view.feed(Finish("stop"))
    finally:
        view.close()


def render_markdown_once(text: str, out: TextIO, *, mode: ViewMode, width: int | None = None,
                         label: str = "", no_color: bool | None = None, code_theme: str = "monokai") -> None:
    """Show a stored reply: sanitized, as a bordered markdown panel (`markdown`) or raw (`plain`).

    `width` is the terminal's column count (default: `out`'s terminal).
    """
    safe = sanitize(text)
    if mode == "plain":
        out.write(safe if safe.endswith("\n") or not safe else safe + "\n")
        out.flush()
        return
    if no_color is None:
        no_color = bool(os.environ.get("NO_COLOR"))
    from rich.style import Style

    from chatcli.render.blocks import RowRenderer, render_rows
    from chatcli.render.panel import border_row, content_width

    cols = width if width is not None else terminal_size(out)()[0]
    r = RowRenderer(content_width(cols), color_system=_color_system(out), no_color=no_color,
                    code_theme=code_theme)
    ansi, _ = render_rows(safe, r)
    dim = Style(dim=True)
    full = content_width(cols) + 4
    rows = [border_row("╭", sanitize_line(label), "╮", full, dim, r.cs), *ansi,
            border_row("╰", "", "╯", full, dim, r.cs)]
    out.write("\n".join(rows) + "\x1b[0m\n")
    out.flush()
