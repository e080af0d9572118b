"""The config file's vocabulary: the value kinds, the keys each table accepts, the built-in providers.

`load.py` checks a file against these tables; `roles.py` and the tool servers reuse the kinds so
that every config error reads the same ("expected a number from 0 to 2, got 3").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, get_args

from chatcli.settings import ProviderConfig, ProviderType, RenderMode

# Built-in defaults, chosen as the cheap, fast, generally available model of each vendor: a
# chatbot that starts on the premium model surprises people with its bill. `-m` or
# `default_model` picks anything else, and any model name is accepted as `provider:model`.
BUILTIN_PROVIDERS: dict[str, ProviderConfig] = {
    "openai": ProviderConfig(
        name="openai", type="openai", api_key_env="OPENAI_API_KEY", default_model="gpt-4o-mini",
        models=("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "o4-mini"),
    ),
    "anthropic": ProviderConfig(
        name="anthropic", type="anthropic", api_key_env="ANTHROPIC_API_KEY",
        default_model="claude-sonnet-4-5",
        models=("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"),
    ),
    "local": ProviderConfig(name="local", type="local", default_model="smollm2", models=("smollm2",)),
}
# The vendors' own base-URL variables, honoured for the built-in providers of that name.
BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
# -- the file's schema -----------------------------------------------------------------------------


class _Kind:
    """A value type: a checker returning the converted value or raising ValueError(expected)."""

    def __init__(self, expected: str, check: Callable[[Any], Any]) -> None:
        self.expected = expected
        self.check = check


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError
    return v


def _nonempty_str(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError
    return v


def _int(minimum: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError
        return v
    return check


def _number(minimum: float, maximum: float = math.inf, *, above: bool = False) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError
        f = float(v)
        if math.isnan(f) or f > maximum or f < minimum or (above and f <= minimum):
            raise ValueError
        return f
    return check


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError
        return str(v)
    return check


def _str_list(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise ValueError
    return tuple(v)


def _price(v: Any) -> tuple[float, float]:
    num = _number(0.0)
    if isinstance(v, list) and len(v) == 2:
        return num(v[0]), num(v[1])
    if isinstance(v, dict) and set(v) == {"input", "output"}:
        return num(v["input"]), num(v["output"])
    raise ValueError


STR = _Kind("a string", _str)
NONEMPTY = _Kind("a non-empty string", _nonempty_str)
BOOL = _Kind("true or false", _bool)
POS_INT = _Kind("a whole number ≥ 1", _int(1))
COUNT = _Kind("a whole number ≥ 0", _int(0))
TEMPERATURE = _Kind("a number from 0 to 2", _number(0.0, 2.0))
SECONDS = _Kind("a number of seconds ≥ 0", _number(0.0))
POS_SECONDS = _Kind("a number of seconds > 0", _number(0.0, above=True))
RENDER = _Kind('"auto", "plain" or "markdown"', _choice(*get_args(RenderMode)))
PTYPE = _Kind('"openai", "anthropic" or "local"', _choice(*get_args(ProviderType)))
STR_LIST = _Kind("a list of strings", _str_list)
PRICE = _Kind("[input, output] dollars per million tokens", _price)

TOP_KEYS: dict[str, _Kind] = {
    "default_model": NONEMPTY,
    "system": STR,
    "max_tokens": POS_INT,
    "temperature": TEMPERATURE,
    "save": BOOL,
    "render": RENDER,
    "show_reasoning": BOOL,
    "stdin_timeout": SECONDS,
    "data_dir": NONEMPTY,
    "max_tool_rounds": POS_INT,
    "tool_result_limit": POS_INT,
}
TABLES = ("providers", "aliases", "context_windows", "prices", "mcp", "roles")
PROVIDER_KEYS: dict[str, _Kind] = {
    "type": PTYPE,
    "base_url": NONEMPTY,
    "api_key_env": NONEMPTY,
    "default_model": NONEMPTY,
    "models": STR_LIST,
    "timeout": POS_SECONDS,
    "connect_timeout": POS_SECONDS,
    "max_retries": COUNT,
    "retry_cap": SECONDS,
    "include_usage": BOOL,
    "model_path": NONEMPTY,
    "context_window": POS_INT,
    "vision": BOOL,  # takes images and PDFs; false: refused before sending (unset: the provider decides)
}  # plus "headers", a table of strings
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")  # provider and alias names: no ":" (it splits provider:model)
