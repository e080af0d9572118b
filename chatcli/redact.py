"""Secrets: a wrapper that never shows its value, and redaction of key-shaped text.

Keys live in `Secret` from the moment they are read until the SDK client is built, so a repr,
a log line or a traceback of any object holding one prints `Secret('sk-…abcd')` at most.
"""

from __future__ import annotations

import re

# Key shapes seen in the wild: OpenAI `sk-…`/`sk-proj-…`, Anthropic `sk-ant-…`, bearer tokens,
# and header dumps (`x-api-key: …`, `authorization: …`).
_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=:+/]{6,}"),
    re.compile(r"(?i)((?:x-api-key|api[-_]key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
]


_CREDENTIAL_NAME = re.compile(r"(?i)KEY|TOKEN|SECRET|PASSWORD")


# A credential as a whole part of a variable's name (`OPENAI_API_KEY`, `GH_TOKEN`, `DB_PASSWORD`),
# not a substring of another word (`TOKENIZERS_PARALLELISM`, `KEYBOARD_LAYOUT`, `MONKEY_PATCH`).
_KEY_VARIABLE = re.compile(r"(?i)(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)(?:$|_)")


def holds_credential(name: str, value: str | None) -> bool:
    """Whether a `.env` line holds a key: a credential-named variable with a value, or a value
    shaped like a key whatever its name. Narrower than `is_credential_name` on purpose: that
    one decides what to redact (too wide is safe there); this one decides whether to warn about
    a world-readable project `.env` (too wide warned on every run about files with no key)."""
    value = (value or "").strip()
    if not value:
        return False
    return _KEY_VARIABLE.search(name) is not None or _PATTERNS[0].fullmatch(value) is not None


def is_credential_name(name: str) -> bool:
    """Whether an environment/.env variable name says it holds a credential (`GATEWAY_TOKEN`, …)."""
    return _CREDENTIAL_NAME.search(name) is not None


def mask(value: str) -> str:
    """`sk-…abcd`: enough to tell keys apart, never enough to use one."""
    if not value:
        return ""
    if len(value) <= 8:
        return "…"
    prefix = value[:3] if value.startswith("sk-") else ""
    return f"{prefix}…{value[-4:]}"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({mask(self._value)!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secret values and anything shaped like a key from `text`."""
    for value in secrets:
        if value and len(value) >= 6:
            text = text.replace(value, mask(value))
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "…", text)
        else:
            text = pattern.sub(lambda m: mask(m.group(0)), text)
    return text
