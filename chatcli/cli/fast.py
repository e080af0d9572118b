"""The Typer-free reader of the command lines people type most (the table is chatcli/cli/options.py):

    chatcli [OPTIONS]                    the chat, with flags
    chatcli [OPTIONS] ask [OPTIONS] [PROMPT]...

`parse_fast` accepts only what it reads unambiguously and returns None for everything else; then
Typer parses the whole command line itself (the reasons, and why the two cannot disagree, are in
chatcli/cli/options.py's docstring; tests/test_options.py checks it over a corpus).

No Typer, Click or typing import here: this runs before anything else on the fast paths.
"""

from __future__ import annotations

import os
import re

from chatcli.cli.options import JSON, OPTIONS, Ask, Opt, Shared

# Only values that Click converts the same way without doubt: Click's int() would also take
# " 7", "+7" or "1_000", and its float() "1e0" or "nan" -- those go to Typer.
_INT = re.compile(r"[0-9]{1,9}")
_FLOAT = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,12})?|\.[0-9]{1,12}")


def parse_fast(args: list[str]) -> Shared | Ask | None:
    """`Shared` for the chat with options, `Ask` for `ask`, None: leave it to Typer."""
    root = _Reader(OPTIONS)
    rest = root.read(args, stop_at_positional=True)
    if rest is None or root.shared is None:
        return None
    if not rest:
        return root.shared  # `chatcli [OPTIONS]`: the chat
    if rest[0] != "ask":
        return None  # another command (or a prompt given to the chat by mistake): Typer says what
    ask = _Reader((*OPTIONS, JSON))
    positionals = ask.read(rest[1:], stop_at_positional=False)
    if positionals is None or ask.shared is None:
        return None
    return Ask(ask.shared.over(root.shared), positionals, ask.values.get("json_") is True)


class _Reader:
    def __init__(self, options: tuple[Opt, ...]) -> None:
        self.by_flag: dict[str, tuple[Opt, bool]] = {}
        for opt in options:
            for flag in opt.flags:
                self.by_flag[flag] = (opt, True)
            for flag in opt.off_flags:
                self.by_flag[flag] = (opt, False)
        self.values: dict[str, object] = {}
        self.shared: Shared | None = None

    def read(self, args: list[str], *, stop_at_positional: bool) -> list[str] | None:
        """Consume options; return the positionals (from the first one on, when `stop_at_positional`,
        as a Click group does), or None if anything is not plainly understood."""
        positionals: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                if stop_at_positional:
                    return None
                positionals.extend(args[i + 1:])
                break
            if arg == "-":
                return None  # Click reads a lone "-" as a positional; rare enough to leave to Typer
            if not arg.startswith("-"):
                if stop_at_positional:
                    positionals.extend(args[i:])
                    break
                positionals.append(arg)
                i += 1
                continue
            name, eq, attached = arg.partition("=")
            if eq and not name.startswith("--"):
                return None  # `-m=x`: Click reads the value as "=x"
            found = self.by_flag.get(name)
            if found is None:
                return None
            opt, on = found  # given twice, the last one wins, as in Click
            if not opt.takes_value:
                if eq:
                    return None
                self.values[opt.dest] = on
                i += 1
                continue
            if eq:
                raw = attached
                i += 1
            elif i + 1 < len(args):
                raw = args[i + 1]
                i += 2
            else:
                return None  # missing value: Typer's message
            value = _convert(opt, raw)
            if value is None:
                return None
            if opt.kind == "list":
                previous = self.values.get(opt.dest, ())
                value = (*previous, value) if isinstance(previous, tuple) else (value,)
            self.values[opt.dest] = value
        kwargs = {k: v for k, v in self.values.items() if k != "json_"}
        self.shared = Shared(**kwargs)
        return positionals


def _convert(opt: Opt, raw: str) -> object | None:
    if raw.startswith("-") or not raw:
        return None  # a value like an option, or empty: Click's reading is not obvious
    if opt.kind in ("str", "list"):
        return raw
    if opt.kind == "int":
        if not _INT.fullmatch(raw):
            return None
        number: float = int(raw)
    elif opt.kind == "float":
        if not _FLOAT.fullmatch(raw):
            return None
        number = float(raw)
    elif opt.kind == "path":
        if os.path.isdir(raw):
            return None  # Typer's "is a directory" error
        from pathlib import Path

        return Path(raw)
    else:
        return None
    if (opt.min is not None and number < opt.min) or (opt.max is not None and number > opt.max):
        return None  # out of range: Typer's message
    return number
