"""Output streams that cannot crash on a character the terminal's encoding lacks.

With a Latin-1 or ASCII stdout (`PYTHONIOENCODING=iso-8859-1`, `LC_ALL=C PYTHONUTF8=0`) Python's
stdout is strict (or surrogateescape, which is strict for an emoji too): the first emoji in a
reply, a title or a model list raised UnicodeEncodeError halfway through the output. `setup()`,
called once by the entry point, gives stdout and stderr the error handler below instead, so
every output path -- panel, plain text, footer, warnings, errors, history, exports, help -- is
covered at one place, and what is stored and sent stays the exact text: only its picture on
this terminal is lossy.

The handler keeps the picture readable and the layout intact: the panel's box drawing and the
footer's separators become their ASCII look-alikes, and any other character becomes "?" -- "??"
for a double-width one, nothing for a zero-width mark -- so a panel row keeps its width. A
UTF-8 stream never calls it, except for a lone surrogate (never valid text).

Start-up: `codecs` is imported by the interpreter before any of our code; `unicodedata` only
when a character has no look-alike, i.e. never on a UTF-8 terminal.
"""

from __future__ import annotations

import codecs
import os
import sys

HANDLER = "chatcli-terminal"
_JSON_HANDLER = "chatcli-json"

#: Look-alikes that are one cell wide, like the characters they stand for.
_ASCII = {
    "─": "-", "━": "-", "│": "|", "┃": "|", "╭": "+", "╮": "+", "╰": "+", "╯": "+",
    "┌": "+", "┐": "+", "└": "+", "┘": "+", "├": "+", "┤": "+", "┬": "+", "┴": "+", "┼": "+",
    "═": "=", "║": "|", "╔": "+", "╗": "+", "╚": "+", "╝": "+",
    "·": ".", "•": "*", "…": ".", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"',
    "→": ">", "←": "<", "▌": "|", "█": "#", "\u00a0": " ",
}


def _replace(exc: UnicodeError) -> tuple[str | bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    if all("\udc80" <= ch <= "\udcff" for ch in exc.object[exc.start:exc.end]):
        # Bytes the C locale could not decode (a file name from argv, say): written back as the
        # bytes they were, as surrogateescape does and as `ls` shows them.
        return bytes(ord(ch) - 0xDC00 for ch in exc.object[exc.start:exc.end]), exc.end
    out: list[str] = []
    for ch in exc.object[exc.start:exc.end]:
        sub = _ASCII.get(ch)
        if sub is None:
            if "\ud800" <= ch <= "\udfff":
                sub = "?"
            else:
                import unicodedata

                if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
                    sub = ""  # a combining mark, a variation selector, a joiner: no cell of its own
                else:
                    sub = "??" if unicodedata.east_asian_width(ch) in ("W", "F") else "?"
        out.append(sub)
    return "".join(out), exc.end


def _json_escape(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out: list[str] = []
    for ch in exc.object[exc.start:exc.end]:
        code = ord(ch)
        if code > 0xFFFF:  # JSON spells a character beyond the BMP as its UTF-16 surrogate pair
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out), exc.end


def json_for(stream: object, text: str) -> str:
    """JSON text as `stream` can carry it exactly: characters its encoding lacks become `\\uXXXX`
    escapes, which is the same JSON (outside strings, JSON is ASCII), instead of the lossy "?"
    the stream would write. A machine reads this output: it must stay exact on any terminal."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        pass
    except LookupError:
        return text
    codecs.register_error(_JSON_HANDLER, _json_escape)
    return text.encode(encoding, _JSON_HANDLER).decode(encoding)


def utf8_text(value: str) -> str:
    """Text from argv or the environment as the UTF-8 the user typed. Under a C locale (no UTF-8
    mode) Python decodes both as ASCII with surrogateescape, so `chatcli ask café` arrives as
    "caf" plus two escaped bytes, which no request body can encode ("surrogates not allowed").
    Recover the bytes and read them as UTF-8; bytes that are not UTF-8 are left escaped (see
    `undecodable`). Only for text: a file name must stay escaped, as the file system expects it."""
    if value.isascii() or not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeError:
        return value


def undecodable(value: str) -> tuple[int, int] | None:
    """(byte, offset) of the first byte `utf8_text` could not read, or None."""
    for i, ch in enumerate(value):
        if "\udc80" <= ch <= "\udcff":
            return ord(ch) - 0xDC00, len(value[:i].encode("utf-8", "surrogateescape"))
    return None


def register() -> None:
    """Make `HANDLER` known to the codecs (idempotent)."""
    codecs.register_error(HANDLER, _replace)


def setup() -> None:
    """Give stdout and stderr the look-alike handler (a stream that cannot take it is left be);
    read a C-locale stdin as UTF-8 (below)."""
    register()
    # The chat's line editor (prompt-toolkit) decodes the keys it reads with sys.stdin's encoding.
    # Under the C locale without UTF-8 mode that is ASCII, so "é" typed in a UTF-8 terminal became
    # two escaped bytes and the request failed on them ("surrogates not allowed"). ASCII is never
    # what a terminal sends beyond 0x7f; UTF-8 reads ASCII the same and is what it sends today
    # (Python's own UTF-8 mode makes this choice for the C locale). A Latin-1 stdin is left alone:
    # the user said so. Piped stdin is read as bytes and judged in chatcli/cli/stdin.py.
    stdin = sys.stdin
    try:
        ascii_in = stdin is not None and codecs.lookup(stdin.encoding or "utf-8").name == "ascii"
    except LookupError:
        ascii_in = False
    if ascii_in:
        try:  # noqa: SIM105 - see below
            stdin.reconfigure(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            pass
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:  # noqa: SIM105 - contextlib is an import the start-up path does not pay for otherwise
            reconfigure(errors=HANDLER)
        except (ValueError, OSError):  # a detached or closed stream
            pass
