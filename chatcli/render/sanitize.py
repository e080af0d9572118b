"""Neutralise untrusted text before it reaches a terminal (docs/architecture.md, "Output", "Terminal injection").

Untrusted text is everything chatcli did not write itself: model output and reasoning, server error
messages, model and provider names from the server, and stored history being replayed.

Policy: **visible encoding, character by character** -- nothing is silently removed.

* ESC (0x1B) becomes ``␛``, BEL ``␇``, BS ``␈``, every other C0 control except ``\\t``/``\\n``
  becomes its Control Picture (U+2400 + code), DEL becomes ``␡``.
* Every 8-bit C1 control U+0080-U+009F (8-bit CSI 0x9B, OSC 0x9D, DCS 0x90, ST 0x9C, ...) becomes
  ``<U+009B>``.
* A bare CR becomes ``␍`` (so ``rm -rf ~\\rls -la`` shows both halves); CR LF becomes LF.
* Bidi embedding/override/isolate controls (U+202A-202E, U+2066-2069, Trojan Source), the invisible
  ZWSP/word-joiner/BOM (U+200B, U+2060, U+FEFF) and the line/paragraph separators U+2028/2029 become
  ``<U+202E>`` etc. ZWJ/ZWNJ/LRM/RLM are kept: emoji sequences and Persian/Arabic text need them.

Why encode instead of deleting whole sequences: once the introducer (ESC or a C1 byte) and the
terminators (BEL, ST) are printable glyphs, the rest of a sequence (``[2J``, ``]52;c;...``) is inert
text, so no sequence can survive, whatever its grammar, however it is split across deltas, and an
unterminated OSC can never swallow anything (not even the rest of the reply). The user also *sees*
that the model emitted control sequences, which is what OWASP LLM05 asks for ("encode visibly").

Because the mapping is per character, streaming needs almost no state: `StreamSanitizer` only holds
back a trailing CR (it may be the first half of a CR LF split across two deltas), so a delta's text
is shown at once and the streamed result always equals `sanitize()` of the whole text.

Rich markup: sanitized text is still *text* and must only be given to Rich as ``Text(...)`` or
``Markdown(..., hyperlinks=False)`` -- never as a markup string; `escape_markup` is for the rare case
where an untrusted value must be placed into a markup template.
"""

from __future__ import annotations

import re

_C1_AND_SPECIALS = [*range(0x80, 0xA0), 0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
                    0x2066, 0x2067, 0x2068, 0x2069, 0x200B, 0x2060, 0xFEFF, 0x2028, 0x2029]

#: One `str.translate` table: it runs in C, so the whole pass stays O(n) and cheap.
_TABLE: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)}
_TABLE[0x7F] = "\u2421"  # ␡
_TABLE.update({c: f"<U+{c:04X}>" for c in _C1_AND_SPECIALS})

_BARE_CR = re.compile(r"\r(?!\n)")
_CR = "\u240d"  # ␍


def sanitize(text: str) -> str:
    """Return `text` with every terminal control neutralised (see the module docstring)."""
    if "\r" in text:
        text = _BARE_CR.sub(_CR, text).replace("\r\n", "\n")
    return text.translate(_TABLE)


class StreamSanitizer:
    """`sanitize()` for a text that arrives in pieces; feed(a)+feed(b)+flush() == sanitize(a+b)."""

    __slots__ = ("_held_cr",)

    def __init__(self) -> None:
        self._held_cr = False

    def feed(self, chunk: str) -> str:
        if self._held_cr:
            chunk = "\r" + chunk
            self._held_cr = False
        if chunk.endswith("\r"):
            # It may be the CR of a CR LF whose LF is in the next delta: decide then.
            chunk = chunk[:-1]
            self._held_cr = True
        return sanitize(chunk)

    def flush(self) -> str:
        held, self._held_cr = self._held_cr, False
        return _CR if held else ""


def escape_markup(text: str) -> str:
    """Sanitize `text` and escape Rich markup in it, for an untrusted value inside a markup template."""
    from rich.markup import escape  # imported here: `import chatcli.render` must not load rich

    return escape(sanitize(text))


def sanitize_line(text: str) -> str:
    """Sanitize a value that must stay on one line (names, error causes): newlines become spaces."""
    return sanitize(text).replace("\t", " ").replace("\n", " ")
