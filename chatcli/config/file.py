"""Reading one config file: bytes → UTF-8 → TOML, and errors that name the file, the line and the key.

tomllib reports a line only for invalid documents, so `locate` finds a valid key's line by
scanning the text; `_File.error` builds the `ConfigError` that points there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatcli.errors import ConfigError

if TYPE_CHECKING:
    from chatcli.config.schema import _Kind

# -- locating keys in the file's text ----------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def _split_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', text)
    return tuple(next(p for p in groups if p) if any(groups) else "" for groups in parts)


def locate(text: str, table: tuple[str, ...], key: str | None) -> int | None:
    """The 1-based line where `key` is set inside `[table]` (or the table's header when key is None).

    tomllib does not report positions of valid documents, so this scans the text: good enough to
    point at the line for the usual layouts (tables, dotted keys, inline tables), else None.
    """
    lines = text.splitlines()
    current: tuple[str, ...] = ()
    key_re = None
    if key is not None:
        key_re = re.compile(r'^\s*(?:["\']?' + re.escape(key) + r'["\']?)\s*=')
    fallback: int | None = None
    for number, line in enumerate(lines, 1):
        header = _HEADER.match(line)
        if header:
            current = _split_dotted(header.group(1))
            if key is None and current == table:
                return number
            continue
        if key is None:
            continue
        assert key_re is not None
        stripped = line.split("#", 1)[0] if "#" not in line.split("=", 1)[0] else line
        if current == table and key_re.match(stripped):
            return number
        # Dotted keys (`providers.x.base_url = ...`) or inline tables (`x = { base_url = ... }`).
        dotted = ".".join((*table, key))[len(".".join(current)) + 1 if current else 0:]
        if fallback is None and (
            re.match(r"^\s*" + re.escape(dotted) + r"\s*=", stripped)
            or re.search(r"[{,]\s*[\"']?" + re.escape(key) + r"[\"']?\s*=", stripped)
        ):
            fallback = number
    if fallback is None and table and key is not None:
        return locate(text, table, None)
    return fallback


class _File:
    """One config file's text and parsed data, and the errors that point into it."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def error(self, message: str, table: tuple[str, ...], key: str | None) -> ConfigError:
        dotted = ".".join((*table, key) if key else table) or None
        return ConfigError(message, path=str(self.path), line=locate(self.text, table, key), key=dotted)

    def check(self, kind: _Kind, value: Any, table: tuple[str, ...], key: str) -> Any:
        try:
            return kind.check(value)
        except ValueError:
            raise self.error(f"expected {kind.expected}, got {_describe(value)}", table, key) from None

    def unknown(self, table: tuple[str, ...], key: str, known: Iterable[str], hint: str = "") -> ConfigError:
        close = _closest(key, known)
        suggestion = f' (did you mean "{close}"?)' if close else ""
        return self.error(f"unknown key{suggestion}{hint}", table, key)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # the value itself ("gemini"), not just its type: that is what to fix
        return _toml_str(value if len(value) <= 40 else value[:40] + "…")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _closest(word: str, options: Iterable[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return found[0] if found else None


def read_file(path: Path) -> tuple[dict[str, Any], _File]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file", path=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a TOML file", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("not UTF-8 text", path=str(path), line=line) from None
    file = _File(path, text)
    import tomllib  # here, not at the top: most starts have no config file (~4 ms to import)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)$", message)
        line_no = int(m.group(1)) if m else None
        key = None
        if line_no is not None and line_no <= len(text.splitlines()):
            km = re.match(r"^\s*([A-Za-z0-9_\-.\"']+)\s*=", text.splitlines()[line_no - 1])
            key = km.group(1).strip("\"'") if km else None
        reason = message[: m.start()].strip() if m else message
        where = f" (column {m.group(2)})" if m else ""
        raise ConfigError(f"invalid TOML: {reason}{where}", path=str(path), line=line_no, key=key) from None
    return data, file


def _toml_str(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(ch if ch >= " " and ch != "\x7f" else f"\\u{ord(ch):04x}" for ch in out)
    return f'"{out}"'
