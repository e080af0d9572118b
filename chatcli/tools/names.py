"""MCP tool names <-> function names the model APIs accept.

OpenAI and Anthropic accept `[a-zA-Z0-9_-]{1,64}`; MCP allows `.` and up to 128 characters, and two
servers may both have a tool called `search`. So every tool gets the API name `SERVER__TOOL`, and
the way back is this registry's lookup, never a split on `_` (server and tool names contain `_`).

A name that had to change (a character replaced, cut to 64) or that two (server, tool) pairs would
share gets a hash suffix of the exact pair instead: `weird_name_1a2b3c4d`. Each pair's name depends
only on the set of pairs, not on their order, so a conversation resumed with the same servers sends
the same names.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator

MAX_LEN = 64
SEPARATOR = "__"
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def sanitize(text: str) -> str:
    """`text` with every character outside `[a-zA-Z0-9_-]` replaced by `_` (lossy; see ToolNames)."""
    return _UNSAFE.sub("_", text) or "_"


def _hashed(server: str, tool: str, base: str, digits: int) -> str:
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:digits]
    return base[: MAX_LEN - digits - 1] + "_" + digest


class ToolNames:
    """A bijection between (server, tool) pairs and API-safe names."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        unique = sorted(set(pairs))
        plain: dict[tuple[str, str], str] = {}
        users: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
        for server, tool in unique:
            name = sanitize(server) + SEPARATOR + sanitize(tool)
            plain[(server, tool)] = name
            users[name].append((server, tool))
        self._to_api: dict[tuple[str, str], str] = {}
        self._from_api: dict[str, tuple[str, str]] = {}
        # Exact names first: a name that needed no change and is nobody else's is kept as it is.
        needs_hash: list[tuple[str, str]] = []
        for (server, tool), name in plain.items():
            exact = name == f"{server}{SEPARATOR}{tool}" and len(name) <= MAX_LEN
            if exact and len(users[name]) == 1:
                self._add((server, tool), name)
            else:
                needs_hash.append((server, tool))
        for server, tool in needs_hash:
            digits = 8
            name = _hashed(server, tool, plain[(server, tool)], digits)
            while name in self._from_api:  # a tool literally named like someone's hashed name
                digits += 2
                name = _hashed(server, tool, plain[(server, tool)], digits)
            self._add((server, tool), name)

    def _add(self, pair: tuple[str, str], name: str) -> None:
        self._to_api[pair] = name
        self._from_api[name] = pair

    def api_name(self, server: str, tool: str) -> str:
        """The API name of `tool` on `server`. KeyError if the pair is not in the registry."""
        return self._to_api[(server, tool)]

    def lookup(self, api_name: str) -> tuple[str, str] | None:
        """(server, tool) for a name the model sent back, or None for a name we never gave out."""
        return self._from_api.get(api_name)

    def __iter__(self) -> Iterator[tuple[str, tuple[str, str]]]:
        """(api_name, (server, tool)) in a stable order."""
        return iter(sorted(self._from_api.items()))

    def __len__(self) -> int:
        return len(self._to_api)

    def __contains__(self, api_name: object) -> bool:
        return api_name in self._from_api
