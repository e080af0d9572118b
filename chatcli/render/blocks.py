"""Streaming markdown with bounded cost: the "fast3" block engine
(docs/architecture.md, "Streaming markdown (fast3)").

No I/O here. `TailBlocks` turns an append-only, already sanitized markdown source into two kinds of
rendered rows per frame:

* **commit** rows: final, printed once into scrollback and never touched again;
* **live** rows: the bottom of the last, still-changing top-level block (at most `live_rows`).

Rules that keep the scrollback identical to a one-shot render (docs/architecture.md, "Scrollback fidelity"):

* Only the last top-level block can change, so every block before it is rendered once, when the
  next block starts, and committed.
* Block boundaries are decided on complete lines only (`para\\n```a` is inline code, not a fence).
* Rows of the last block that scroll above the live window are committed early (paragraph, list
  and fence rows above the window do not change) -- except tables, whose column widths depend on
  every row: a table is shown cropped to its bottom rows and committed whole when it ends.
* An unclosed ``**`` or `` ` `` is closed on a display copy (`heal`) so rows committed early already
  carry their final style.
* Huge last blocks keep the per-frame bound. An open code fence keeps only `FENCE_LIVE_ROWS` rows
  live: its complete lines above them are rendered once as a fence of their own, committed, and
  rendering continues after them (`prefix` holds the opener line), so a 1,000-line fence costs no
  more per frame than a 10-line one. A long paragraph is cut likewise at a row boundary once rows
  are committed (only where no inline markup spans the cut, and verified by rendering). Tables and
  lists are re-rendered whole; the panel's adaptive frame interval bounds their CPU.
* Rows of each top-level block are memoized by source for one frame, so the block that gets
  finalized is usually not rendered again (the previous live frame already did it).

Rendering uses Rich's own `Markdown` elements with the same markdown-it configuration as Rich (so
the output matches `Markdown(text)`), fed pre-parsed tokens, `hyperlinks=False` (link targets
shown), and serialises Rich segments to ANSI rows itself so each row can carry side borders.
"""

from __future__ import annotations

import functools
import io
import itertools
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich._wrap import divide_line
from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markdown import CodeBlock, Markdown, MarkdownElement
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax, SyntaxTheme
from rich.text import Text

#: Rich's own parser configuration (rich/markdown.py), shared: construction is not free.
MD = MarkdownIt().enable("strikethrough").enable("table")

_COLOR_SYSTEMS = {
    "standard": ColorSystem.STANDARD,
    "256": ColorSystem.EIGHT_BIT,
    "truecolor": ColorSystem.TRUECOLOR,
    "windows": ColorSystem.WINDOWS,
}

FENCE_LIVE_ROWS = 5
Rows = tuple[list[str], list[str]]  # (ANSI rows, plain rows) -- always the same length


@functools.lru_cache(maxsize=64)
def _lexer(name: str) -> Any:  # a pygments Lexer (pygments ships no type stubs), or the name
    lexer = Syntax("", name).lexer  # Rich's own lookup, so unknown names behave exactly as in Rich
    return lexer if lexer is not None else name


@functools.lru_cache(maxsize=1)
def warm_highlighting() -> None:
    """Compile the most common lexers' regexes now (Pygments does it on first use: ~0.2 s for
    Python, which would otherwise land in the first frame that shows a code fence). Runs once per
    process, whoever calls it first: `render.prime()` in the REPL's warm-up, or a panel's ticker."""
    for name in ("python", "bash", "json"):
        lexer = _lexer(name)
        if not isinstance(lexer, str):
            for _ in lexer.get_tokens("x = 1\n"):
                pass


@functools.lru_cache(maxsize=8)
def _theme(name: str) -> SyntaxTheme:
    return Syntax.get_theme(name)


class HangingSyntax(Syntax):
    """`Syntax` whose wrapped code lines keep their indentation on every continuation row (Rich
    starts them at column 0, which hides the structure of indented code in a narrow terminal).

    The lines are pre-wrapped here, after highlighting and at the width `_get_syntax` computes,
    so Rich's own word wrap finds nothing left to wrap. Each code line is still wrapped on its own,
    so rows of a complete line never change as later lines stream in (blocks rely on that)."""

    _hang_width = 0

    def _get_syntax(self, console: Console, options: ConsoleOptions) -> Iterable[Segment]:
        _top, pad_right, _bottom, pad_left = self.padding
        self._hang_width = max(0, options.max_width - pad_left - pad_right)
        yield from super()._get_syntax(console, options)

    def highlight(self, code: str, line_range: tuple[int | None, int | None] | None = None) -> Text:
        text = super().highlight(code, line_range)
        width = self._hang_width
        if width < 8 or all(cell_len(line) <= width for line in text.plain.split("\n")):
            return text
        rows: list[Text] = []
        for line in text.split("\n", allow_blank=True):
            plain = line.plain
            if cell_len(plain) <= width:
                rows.append(line)
                continue
            hang = min(len(plain) - len(plain.lstrip(" ")), width // 2)
            rest, avail = line, width
            while True:
                breaks = divide_line(rest.plain, avail, fold=True)
                if not breaks:
                    rows.append(rest if avail == width else Text(" " * hang) + rest)
                    break
                head, rest = rest[:breaks[0]], rest[breaks[0]:]
                head.rstrip()
                rows.append(head if avail == width else Text(" " * hang) + head)
                avail = width - hang
        return Text("\n").join(rows)


class CachedCodeBlock(CodeBlock):
    """Rich's code block with the Pygments lexer and theme looked up once, not on every render
    (`get_lexer_by_name` scans the lexer registry: about 1 ms, a quarter of a small fence's cost)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        yield HangingSyntax(code, _lexer(self.lexer_name), theme=_theme(self.theme), word_wrap=True,
                            padding=1)


class TokenMarkdown(Markdown):
    """`rich.markdown.Markdown` fed tokens we already parsed (no second parse, shared parser)."""

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **Markdown.elements, "fence": CachedCodeBlock, "code_block": CachedCodeBlock}

    def __init__(self, tokens: Sequence[Token], code_theme: str = "monokai") -> None:
        # Deliberately not calling super().__init__: it would build a parser and parse again.
        self.markup = ""
        self.parsed = list(tokens)
        self.code_theme = code_theme
        self.justify = None
        self.style = "none"
        self.hyperlinks = False  # link targets stay visible (docs/architecture.md, "Links and images")
        self.inline_code_lexer = None
        self.inline_code_theme = code_theme

    def _flatten_tokens(self, tokens: Iterable[Token]) -> Iterable[Token]:
        # A single line break inside a paragraph (or a list item) is the model's own line break:
        # chat interfaces keep it, CommonMark joins it with a space (`first\nsecond` -> one line).
        # Only inline content has soft breaks, so tables, code and block structure are untouched.
        for token in super()._flatten_tokens(tokens):
            yield _HARDBREAK if token.type == "softbreak" else token


class RowRenderer:
    """Renders Rich renderables at a fixed content width into ANSI rows, with optional side borders."""

    def __init__(self, width: int, *, color_system: str | None, no_color: bool = False,
                 code_theme: str = "monokai", borders: bool = True) -> None:
        self.width = width
        self.code_theme = code_theme
        self.no_color = no_color
        self.console = Console(file=io.StringIO(), width=width, force_terminal=color_system is not None,
                               color_system=color_system,  # type: ignore[arg-type]
                               no_color=no_color, highlight=False, markup=False, emoji=False,
                               legacy_windows=False)
        self.cs = _COLOR_SYSTEMS.get(color_system or "")
        self.options = self.console.options.update(width=width)
        border = Style(dim=True)
        if borders:
            self.left = border.render("│ ", color_system=self.cs) if self.cs else "│ "
            self.right = border.render(" │", color_system=self.cs) if self.cs else " │"
            self.plain_left, self.plain_right = "│ ", " │"
        else:
            self.left = self.right = self.plain_left = self.plain_right = ""
        self.border_chars = _nonspace(self.plain_left + self.plain_right)
        self.blank = self.left + " " * width + self.right
        self.plain_blank = self.plain_left + " " * width + self.plain_right

    def render(self, renderable: RenderableType) -> Rows:
        lines = self.console.render_lines(renderable, self.options, pad=True)
        return self.serialise(lines)

    def serialise(self, lines: list[list[Segment]]) -> Rows:
        cs = self.cs
        ansi: list[str] = []
        plain: list[str] = []
        left, right, pleft, pright = self.left, self.right, self.plain_left, self.plain_right
        for line in lines:
            if self.no_color:
                line = list(Segment.remove_color(line))
            parts = [left]
            texts = [pleft]
            for text, style, control in line:
                if control:
                    continue
                texts.append(text)
                parts.append(style.render(text, color_system=cs) if style and cs else text)
            parts.append(right)
            texts.append(pright)
            ansi.append("".join(parts))
            plain.append("".join(texts))
        return ansi, plain

    def markdown(self, tokens: Sequence[Token], sep: bool) -> Rows:
        """Rows of some top-level blocks rendered as if they followed others in one document.

        Rich puts a blank row before an element when the element *left last* had `new_line` set
        (any element, nested ones included: a list's inner paragraphs decide its own separator, an
        image inside a paragraph suppresses it). `sep` is that state at the start of `tokens`; it is
        reproduced exactly by leading with an empty `html_block`, which renders nothing but leaves
        `new_line` set.
        """
        if not tokens:
            return [], []
        if sep:
            tokens = [_NEW_LINE_SETTER, *tokens]
        return self.render(TokenMarkdown(tokens, self.code_theme))


_HARDBREAK = Token("hardbreak", "br", 0)
#: Renders nothing; leaves Rich's `new_line` state True (see `RowRenderer.markdown`).
_NEW_LINE_SETTER = Token("html_block", "", 0, content="")


def top_blocks(tokens: Sequence[Token]) -> list[list[Token]]:
    """Group a markdown-it token stream into its top-level blocks."""
    groups: list[list[Token]] = []
    for tok in tokens:
        if tok.level == 0 and tok.nesting >= 0 and tok.map is not None:
            groups.append([tok])
        elif groups:
            groups[-1].append(tok)
    return groups


_FENCE_OPENER = re.compile(r" {0,3}(?:`{3,}|~{3,})")
_FENCE_LINE = re.compile(r"^ {0,3}(?:[-*+] +|\d+[.)] +)*(?:`{3,}|~{3,})", re.M)
_CODE_SPAN = re.compile(r"`+")


def heal(src: str) -> str:
    """Close an unclosed inline code span or ``**`` at the end of a block, for display only.

    Never inside code fences, and not for ``2 ** 3`` (a ``**`` followed by a space cannot open).
    """
    if _FENCE_LINE.search(src):
        return src
    body = src.rstrip()
    if not body:
        return src
    # Only the last paragraph can still be open: inline markup never spans a blank line.
    last = body[body.rfind("\n\n") + 1:]
    ticks = _CODE_SPAN.findall(last)
    if len(ticks) % 2:
        return body + str(ticks[-1])
    if last.count("**") % 2:
        pos = last.rfind("**")
        after = last[pos + 2:pos + 3]
        if after and not after.isspace():
            return body + "**"
    return src


def _nonspace(s: str) -> int:
    return len(s) - s.count(" ")


def _line_ns(line: str) -> int:
    return sum(1 for ch in line if not ch.isspace())


#: Committed text kept in front of the tail before `TailBlocks.append` drops it.
_COMPACT_AT = 1 << 14


class TailBlocks:
    """The fast3 state machine (see the module docstring). Feed sanitized text, call `frame()`.

    The source still in play is `tail` = `prefix` + `text[tail_off:]`. `prefix` is empty except
    after a long fence was rebased: then it is the fence's opening line, `tail_off` points at the
    first code line not yet committed, and the render of `tail` drops its first row (the code
    block's top padding, already shown).
    """

    def __init__(self, renderer: RowRenderer) -> None:
        self.r = renderer
        self.text = ""
        self.tail_off = 0  # where the last (unfinished) top-level block starts in `text`
        self.prefix = ""  # synthetic source in front of text[tail_off:] (a rebased fence's opener)
        self.tail_committed = 0  # rows of the tail's render already committed
        self.tail_committed_plain: list[str] = []  # ...their plain text (re-mapping after a resize)
        self.sep_next = False  # Rich's `new_line` state before the tail (a blank separator row)
        self._boundary_key: tuple[int, int] = (-1, -1)
        self.last_kind = ""  # type of the first token of the live render
        self.rebases = 0
        self.live_cost = 0.0  # seconds the last live render took (the per-frame, recurring cost)
        self._cache: dict[tuple[str, bool, bool], Rows] = {}
        self._parsed: dict[str, list[Token]] = {}
        self._prev_cache: dict[tuple[str, bool, bool], Rows] = {}

    def append(self, text: str) -> None:
        # `self.text += text` copies the whole string (an attribute is a second reference, so
        # CPython cannot extend it in place): with the whole reply kept that is O(reply) per
        # frame, quadratic over a 10 MB reply. Only `text[tail_off:]` is ever read again, so the
        # committed part is dropped once it is most of the string: the copy stays O(tail).
        shift = self.tail_off
        if shift >= _COMPACT_AT and 2 * shift >= len(self.text):
            self.text = self.text[shift:] + text
            self.tail_off = 0
            start, cut = self._boundary_key
            if start >= 0:
                self._boundary_key = (start - shift, cut)
        else:
            self.text += text

    def _parse(self, src: str) -> list[Token]:
        """`MD.parse` memoized for the last few sources: one frame asks for the same complete-line
        text for boundaries, fence splitting and (when there is no partial line) the live render.
        Callers never mutate the tokens."""
        hit = self._parsed.get(src)
        if hit is None:
            hit = MD.parse(src)
            if len(self._parsed) >= 4:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[src] = hit
        return hit

    def _tail(self) -> str:
        return self.prefix + self.text[self.tail_off:]

    def _render(self, tokens: Sequence[Token], first: bool, sep: bool | None = None) -> Rows:
        """Render tokens that start the tail (`first`) or follow a finalized block."""
        if first and self.prefix:
            ansi, plain = self.r.markdown(tokens, sep=False)
            return ansi[1:], plain[1:]  # the rebased fence's top padding row is already on screen
        return self.r.markdown(tokens, sep=self.sep_next if sep is None else sep)

    def _group_rows(self, group: list[Token], lines: list[str], first: bool, sep: bool) -> Rows:
        """Rows of one top-level block, memoized by its source for one frame: the block that gets
        finalized was usually rendered, unchanged, by the previous frame's live render."""
        span = group[0].map or [0, len(lines)]
        key = ("".join(lines[span[0]:span[1]]), sep, first and bool(self.prefix))
        rows = self._cache.get(key) or self._prev_cache.get(key)
        if rows is None:
            rows = self._render(group, first, sep)
        self._cache[key] = rows
        return rows

    def _advance(self, tail_pos: int) -> None:
        """Move the start of the tail to position `tail_pos` of the current tail string."""
        self.tail_off += tail_pos - len(self.prefix)
        self.prefix = ""

    # -- one frame ---------------------------------------------------------------------------------

    def frame(self, live_rows: int, final: bool = False) -> tuple[Rows, Rows]:
        """Return (commit rows, live rows). `final`: the reply ended, commit everything."""
        commit_a: list[str] = []
        commit_p: list[str] = []
        self._prev_cache, self._cache = self._cache, {}
        tail = self._tail()
        cut = len(tail) if final else tail.rfind("\n") + 1
        key = (self.tail_off, cut)
        if cut and (final or key != self._boundary_key):
            self._boundary_key = key
            src = tail[:cut]
            groups = top_blocks(self._parse(src))
            n_final = len(groups) if final else len(groups) - 1
            if n_final > 0:
                skip = self.tail_committed
                skip_plain = self.tail_committed_plain
                lines = src.splitlines(keepends=True)
                for i, group in enumerate(groups[:n_final]):
                    ansi, plain = self._group_rows(group, lines, i == 0, self.sep_next)
                    self.sep_next = group[0].type != "hr"  # Rich: no blank row after a rule
                    if skip >= len(ansi):
                        skip -= len(ansi)
                        skip_plain = skip_plain[len(ansi):]
                        continue
                    commit_a += ansi[skip:]
                    commit_p += plain[skip:]
                    skip, skip_plain = 0, []
                if final:
                    self.tail_off, self.prefix = len(self.text), ""
                    self.tail_committed, self.tail_committed_plain = 0, []
                else:
                    first_line = groups[n_final][0].map[0]  # type: ignore[index]
                    self._advance(_line_offset(src, first_line))
                    self.tail_committed, self.tail_committed_plain = skip, skip_plain
                self._boundary_key = (self.tail_off, -1)
                tail = self._tail()
        if final:
            return (commit_a, commit_p), ([], [])
        if _FENCE_OPENER.match(tail):
            tail = self._split_fence(tail, commit_a, commit_p)
        t0 = time.perf_counter()
        live_a, live_p = self._live(tail)
        self.live_cost = time.perf_counter() - t0
        if self.last_kind == "table_open":
            # Never commit part of a table: show its bottom rows, commit it whole when it ends.
            live_a, live_p = live_a[self.tail_committed:], live_p[self.tail_committed:]
            return (commit_a, commit_p), (live_a[-live_rows:], live_p[-live_rows:])
        if self.last_kind == "fence":
            # Code rows are final once their line is complete and highlighting is per line, so a
            # fence keeps only a few rows live: Syntax is the costliest renderer (~0.5 ms/row).
            live_rows = min(live_rows, FENCE_LIVE_ROWS)
        extra = len(live_a) - self.tail_committed - live_rows
        if extra > 0:
            k = self.tail_committed + extra
            commit_a += live_a[self.tail_committed:k]
            commit_p += live_p[self.tail_committed:k]
            self.tail_committed_plain += live_p[self.tail_committed:k]
            self.tail_committed = k
        rows = (live_a[self.tail_committed:], live_p[self.tail_committed:])
        if self.last_kind == "fence" and self.tail_committed >= 2:
            self._rebase_fence(tail)
        elif self.last_kind == "paragraph_open" and self.tail_committed >= 4 and not self.prefix:
            self._rebase_paragraph(tail)
        return (commit_a, commit_p), rows

    def _live(self, tail: str) -> Rows:
        disp = tail
        nl = disp.rfind("\n") + 1
        partial = disp[nl:].lstrip(" ")
        # Cosmetic hold-backs: a bare ``` (its info string is not known yet) and a `|` line that
        # may become a table row (no paragraph-to-table jump).
        if partial.startswith(("```", "~~~", "|")):
            disp = disp[:nl]
        if not disp.strip():
            self.last_kind = ""
            return [], []
        disp = heal(disp)
        tokens = self._parse(disp)
        self.last_kind = tokens[0].type if tokens else ""
        lines = disp.splitlines(keepends=True)
        ansi: list[str] = []
        plain: list[str] = []
        sep = self.sep_next
        for i, group in enumerate(top_blocks(tokens)):
            a, p = self._group_rows(group, lines, i == 0, sep)
            ansi += a
            plain += p
            sep = group[0].type != "hr"
        return ansi, plain

    def _split_fence(self, tail: str, commit_a: list[str], commit_p: list[str]) -> str:
        """Commit the complete lines of an open fence that will not be in the live window, by
        rendering them once as a fence of their own, and continue the fence after them (`prefix`).

        Code rows never change once their line is complete (Rich wraps each code line on its own),
        so this equals committing overflow rows of the whole fence -- without rendering the whole
        fence every frame. The split prefers a non-indented line (likely the lexer's initial state:
        highlighting then matches a one-shot render too) and never touches blank lines (Rich strips
        them at the ends of a code block)."""
        cut = tail.rfind("\n") + 1
        opener_end = tail.find("\n") + 1
        if opener_end <= 0 or cut <= opener_end:
            return tail
        tokens = self._parse(tail[:cut])
        if not tokens or tokens[0].type != "fence" or not tokens[0].map or tokens[0].map[0] != 0:
            return tail
        fence = tokens[0]
        lines = fence.content.split("\n")[:-1]  # complete content lines
        limit = len(lines) - FENCE_LIVE_ROWS
        if limit < 2:
            return tail
        j = 0
        for k in range(limit, max(0, limit - 12), -1):
            if lines[k - 1].strip() and lines[k].strip():
                if not lines[k][0].isspace():
                    j = k
                    break
                j = j or k
        if j <= 0:
            return tail
        part = fence.copy(content="\n".join(lines[:j]) + "\n")
        ansi, plain = self._render([part], first=True)
        ansi, plain = ansi[:-1], plain[:-1]  # the part's bottom padding row
        skip = self.tail_committed
        if skip > len(ansi):
            return tail  # more is on screen than this part: leave it to the overflow path
        commit_a += ansi[skip:]
        commit_p += plain[skip:]
        self._advance(opener_end + _line_offset(tail[opener_end:], j))
        self.prefix = tail[:opener_end]
        self.tail_committed, self.tail_committed_plain = 0, []
        self._boundary_key = (-1, -1)
        self.rebases += 1
        return self._tail()

    def _rebase_fence(self, tail: str) -> None:
        """Stop re-rendering the committed top of a long open fence (see the module docstring)."""
        cut = tail.rfind("\n") + 1
        opener_end = tail.find("\n") + 1
        tokens = self._parse(tail[:cut])
        if not tokens or tokens[0].type != "fence" or tokens[0].map is None or tokens[0].map[0] != 0:
            return
        fence = tokens[0]
        lines = fence.content.split("\n")
        if len(lines) < 4 or opener_end <= 0:
            return
        budget = self._committed_chars()
        cum = [0]
        for line in lines:
            cum.append(cum[-1] + _line_ns(line))
        best = fallback = 0
        for j in range(1, len(lines) - 1):
            if cum[j] > budget:
                break
            if lines[j - 1].strip() and lines[j].strip():
                fallback = j
                if not lines[j][0].isspace():
                    best = j  # a dedent: the lexer is most likely in its initial state here
        j = best or fallback
        if j <= 0:
            return
        part = fence.copy(content="\n".join(lines[:j]) + "\n")
        ansi, plain = self._render([part], first=True)
        ansi, plain = ansi[:-1], plain[:-1]  # the part's bottom padding row
        n = len(plain)
        if n > self.tail_committed or plain != self.tail_committed_plain[:n]:
            return  # not a clean line boundary in the committed rows: try again later
        # Source offset of content line j: content lines map 1:1 to source lines after the opener.
        pos = opener_end + _line_offset(tail[opener_end:], j)
        opener = tail[:opener_end]
        self._advance(pos)
        self.prefix = opener
        self.tail_committed -= n
        self.tail_committed_plain = self.tail_committed_plain[n:]
        self._boundary_key = (-1, -1)
        self.rebases += 1

    def _rebase_paragraph(self, tail: str) -> None:
        """Continue a long paragraph as a new one after its committed rows (greedy wrapping restarts
        identically at a row boundary), when no inline markup spans the split. Verified by
        rendering the prefix: it must give exactly the committed rows."""
        cut = len(self.r.plain_left), len(self.r.plain_right)
        words = sum(len(p[cut[0]:len(p) - cut[1]].split()) for p in self.tail_committed_plain)
        if words <= 0:
            return
        it = _WORD.finditer(tail)
        match = None
        for match in itertools.islice(it, words - 1, words):  # noqa: B007 (we want the last one)
            pass
        nxt = next(it, None)
        if match is None or nxt is None:
            return
        split = nxt.start()
        prefix = tail[:split]
        if not _balanced(prefix) or nxt.group()[0] in _BLOCK_STARTERS:
            return
        groups = top_blocks(MD.parse(prefix))
        _, plain = self.r.markdown([t for g in groups for t in g], sep=self.sep_next)
        if len(plain) != self.tail_committed or plain != self.tail_committed_plain:
            return
        self._advance(split)
        self.tail_committed, self.tail_committed_plain = 0, []
        # A blank line before the next word: it starts a new block, after Rich's separator
        # (unless the block before is a rule); otherwise it continues the paragraph.
        new_block = tail.count("\n", match.end(), split) > 1
        self.sep_next = new_block and bool(groups) and groups[-1][0].type != "hr"
        self._boundary_key = (-1, -1)
        self.rebases += 1

    def _committed_chars(self) -> int:
        rows = self.tail_committed_plain
        return sum(_nonspace(p) for p in rows) - self.r.border_chars * len(rows)

    # -- resize ------------------------------------------------------------------------------------

    def set_renderer(self, renderer: RowRenderer) -> None:
        """Switch to a new width. Rows of the last block already committed (at the old width) are
        mapped onto the new rendering by their visible characters, so nothing is shown twice or
        lost; at worst the row that straddles the old boundary repeats a few words."""
        if self.tail_committed and self.last_kind == "paragraph_open" and not self.prefix:
            # Best case: cut the paragraph exactly after its committed words (verified at the old
            # width) and continue it at the new width -- no word lost or repeated.
            self._rebase_paragraph(self._tail())
        self.r = renderer
        self._boundary_key = (-1, -1)
        self._cache, self._prev_cache = {}, {}
        if not self.tail_committed:
            return
        done = self._committed_chars()
        _, plain = self._live(self._tail())
        k = 0
        seen = 0
        for row in plain:
            ns = _nonspace(row) - self.r.border_chars
            if seen + ns > done:
                break
            seen += ns
            k += 1
        self.tail_committed = k
        self.tail_committed_plain = plain[:k]


_WORD = re.compile(r"\S+")
_BLOCK_STARTERS = set("#>-+*=|`~<0123456789_")


def _balanced(src: str) -> bool:
    """No emphasis, code span, strikethrough or link left open at the end of `src` (conservative)."""
    return (src.count("*") % 2 == 0 and src.count("_") % 2 == 0 and src.count("`") % 2 == 0
            and src.count("~") % 2 == 0 and src.count("[") == src.count("]")
            and src.count("(") == src.count(")") and "<" not in src and "\\" not in src)


def _line_offset(src: str, line: int) -> int:
    off = 0
    for _ in range(line):
        nxt = src.find("\n", off)
        if nxt < 0:
            return len(src)
        off = nxt + 1
    return off


def render_rows(text: str, renderer: RowRenderer) -> Rows:
    """A one-shot render of a whole (sanitized) reply: the reference the streaming result equals."""
    return renderer.markdown(MD.parse(text), sep=False)


def display_width(plain: str) -> int:
    return cell_len(plain)
