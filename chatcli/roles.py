"""Roles: named, reusable prompts from the config file's `[roles.NAME]` tables.

    [roles.reviewer]
    system = "You review code. Point at bugs first, style last."
    model = "anthropic:claude-sonnet-4-5"   # optional
    temperature = 0.2                        # optional
    max_tokens = 1500                        # optional

`system` is required; an unknown key or a wrong type is a `ConfigError` worded like every other
config error (file, line, `roles.NAME.key`, what was expected), through chatcli/config/'s own
helpers. That module is imported inside the functions, not at the top: config/load.py is the one that
calls `parse_roles` while it loads, so a top-level import either way would be a cycle.

Precedence (`apply`): an explicit flag beats the role; the role beats the config file's top-level
values and the environment, which the caller falls back to when both are None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatcli.errors import UsageError


@dataclass(frozen=True)
class Role:
    name: str
    system: str
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Effective:
    """The values a request uses once flags and a role are combined (None: neither said)."""

    system: str | None
    model: str | None
    temperature: float | None
    max_tokens: int | None


ROLE_KEYS = ("system", "model", "temperature", "max_tokens")


def parse_roles(table: Mapping[str, Any], *, source: str, text: str | None = None) -> dict[str, Role]:
    """The `[roles]` table of the config file at `source` (its `text`, if given, to name the line)."""
    from chatcli import config as cfg

    file = cfg._File(Path(source), text or "")
    kinds = {"system": cfg.STR, "model": cfg.NONEMPTY, "temperature": cfg.TEMPERATURE, "max_tokens": cfg.POS_INT}
    roles: dict[str, Role] = {}
    for name, body in table.items():
        where = ("roles", name)
        if not cfg._NAME.match(name):
            raise file.error("role names may use letters, digits, '_', '-' and '.' only", where, None)
        if not isinstance(body, Mapping):
            raise file.error(f"expected a table ([roles.{name}]), got {cfg._describe(body)}", where, None)
        values: dict[str, Any] = {}
        for key, value in body.items():
            if key not in kinds:
                raise file.unknown(where, key, ROLE_KEYS)
            values[key] = file.check(kinds[key], value, where, key)
        if "system" not in values:
            raise file.error('missing "system" (the role\'s system prompt)', where, None)
        roles[name] = Role(name=name, **values)
    return roles


def find_role(roles: Mapping[str, Role], name: str) -> Role:
    """The role called `name`, or a UsageError (exit 2) naming the closest one."""
    found = roles.get(name)
    if found is not None:
        return found
    from chatcli.config import _closest

    if not roles:
        raise UsageError(f'unknown role "{name}": no roles are defined (add [roles.NAME] to the config file)')
    close = _closest(name, roles)
    hint = f' (did you mean "{close}"?)' if close else ""
    raise UsageError(f'unknown role "{name}"{hint}; roles: {", ".join(sorted(roles))}')


def apply(role: Role | None, *, system: str | None, model: str | None, temperature: float | None,
          max_tokens: int | None) -> Effective:
    """Flags (None: not given) over the role's values."""
    if role is None:
        return Effective(system=system, model=model, temperature=temperature, max_tokens=max_tokens)
    return Effective(
        system=system if system is not None else role.system,
        model=model if model is not None else role.model,
        temperature=temperature if temperature is not None else role.temperature,
        max_tokens=max_tokens if max_tokens is not None else role.max_tokens,
    )


def describe_roles(roles: Mapping[str, Role]) -> str:
    """`chatcli roles`: one line per role (name, its model/settings, the system prompt's start).

    Role text comes from the user's own file but may hold anything: sanitized to one line each.
    """
    from chatcli.render.sanitize import sanitize_line

    if not roles:
        return "no roles defined: add [roles.NAME] with system = \"...\" to the config file\n"
    lines = []
    for name in sorted(roles):
        role = roles[name]
        extras = [f"model {role.model}"] if role.model else []
        if role.temperature is not None:
            extras.append(f"temperature {role.temperature:g}")
        if role.max_tokens is not None:
            extras.append(f"max_tokens {role.max_tokens}")
        system = role.system if len(role.system) <= 60 else role.system[:59] + "…"
        meta = f" ({', '.join(extras)})" if extras else ""
        lines.append(sanitize_line(f"{name}{meta}: {system}"))
    return "\n".join(lines) + "\n"
