"""Reading the settings: flags > `CHATCLI_*` environment > config file > defaults, plus `.env` files.

Where things come from:

* the config file: `--config PATH`, else `$CHATCLI_CONFIG`, else
  `<user config dir>/chatcli/config.toml` (missing is fine only for that last default);
* `.env` files: the current directory's, then the config file's directory. They fill in variables
  the real environment does not set — a real variable always wins, and the current directory's
  file wins over the config directory's. The values are kept in a private mapping and are never
  written into `os.environ`: keys then do not leak into the environment of processes chatcli
  starts (an editor, a clipboard helper), and in-process tests cannot pollute each other;
* keys: from that merged mapping, by the variable a provider names (`api_key_env`). A key never
  sits in the config file: an `api_key` entry is rejected with a hint.

Every problem with the file is a `ConfigError` that names the file, the line and the key —
invalid TOML (tomllib reports the line), an unknown key (found by scanning the file's text) or a
wrong type. Nothing here prints or exits; `cli.py` does that.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatcli.config.file import _describe, _File, locate, read_file
from chatcli.config.schema import (
    _NAME,
    BASE_URL_ENV,
    BUILTIN_PROVIDERS,
    NONEMPTY,
    POS_INT,
    PRICE,
    PROVIDER_KEYS,
    RENDER,
    SECONDS,
    STR,
    TABLES,
    TEMPERATURE,
    TOP_KEYS,
    _Kind,
)
from chatcli.errors import ConfigError
from chatcli.redact import Secret, holds_credential
from chatcli.settings import ProviderConfig, RenderMode, Settings

if TYPE_CHECKING:
    from chatcli.roles import Role
    from chatcli.tools.servers import ServerConfig

APP = "chatcli"

# -- where files live -----------------------------------------------------------------------------


def _xdg_dir(environ: Mapping[str, str], variable: str, fallback: str) -> Path | None:
    """The XDG base directory on Linux/BSD (what platformdirs computes there), without importing it."""
    if sys.platform == "darwin" or os.name == "nt":
        return None
    value = environ.get(variable, "").strip()
    if value and os.path.isabs(value):
        return Path(value) / APP
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / fallback / APP


def user_config_dir(environ: Mapping[str, str]) -> Path:
    xdg = _xdg_dir(environ, "XDG_CONFIG_HOME", ".config")
    if xdg is not None:
        return xdg
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def user_data_dir(environ: Mapping[str, str]) -> Path:
    xdg = _xdg_dir(environ, "XDG_DATA_HOME", ".local/share")
    if xdg is not None:
        return xdg
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def config_path(environ: Mapping[str, str], explicit: Path | None = None) -> tuple[Path, bool]:
    """The config file in use and whether it was asked for (an asked-for file must exist)."""
    if explicit is not None:
        return explicit.expanduser(), True
    from_env = environ.get("CHATCLI_CONFIG", "").strip()
    if from_env:
        return Path(from_env).expanduser(), True
    return user_config_dir(environ) / "config.toml", False


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    try:
        # interpolate=False: `${X}` inside .env would otherwise be expanded from os.environ, a
        # second source of truth next to the mapping this module builds.
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the .env file: {exc.__class__.__name__}", path=str(path)) from None
    found = {k: v for k, v in values.items() if v is not None}
    if any(holds_credential(name, value) for name, value in found.items()):
        # A .env with a key in it is a key file: warn if others can read it (as ssh does). A
        # project .env without credentials is ordinary at 0644 and is left alone.
        from chatcli.fsperm import check_private

        check_private(path)
    return found


def merged_environ(environ: Mapping[str, str], cwd: Path, explicit_config: Path | None = None
                   ) -> tuple[dict[str, str], Path, bool]:
    """Real environment over `./.env` over `<config dir>/.env`; plus the config path it implies.

    The cwd `.env` is read first because it may itself set `CHATCLI_CONFIG`, which decides which
    config directory's `.env` comes next.
    """
    merged = {**_read_dotenv(cwd / ".env"), **environ}
    path, asked = config_path(merged, explicit_config)
    config_env = _read_dotenv(path.parent / ".env")
    if config_env:
        merged = {**config_env, **merged}
    return merged, path, asked


# -- settings --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Overrides:
    """What the command line said (None: not given). The top of the precedence order."""

    model: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    no_save: bool = False
    render: RenderMode | None = None
    config: Path | None = None
    debug: bool = False
    tools: tuple[str, ...] | None = None  # -T: only these MCP servers
    no_tools: bool = False
    allow_tools: tuple[str, ...] = ()  # --allow-tool SERVER:TOOL, as typed
    role: str | None = None  # --role NAME


@dataclass(frozen=True)
class Loaded:
    """Settings plus the merged environment they were read from (for `config show`, `models`)."""

    settings: Settings
    environ: Mapping[str, str] = field(default_factory=dict)
    config_exists: bool = False


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_value(environ: Mapping[str, str], name: str, kind: _Kind, parse: Callable[[str], Any]) -> Any:
    raw = environ.get(name)
    if raw is None:
        return None
    try:
        return kind.check(parse(raw.strip()))
    except ValueError:
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise ConfigError(f"{name}={shown!r}: expected {kind.expected}", key=name) from None


def _env_bool(environ: Mapping[str, str], name: str) -> bool | None:
    raw = environ.get(name)
    if raw is None:
        return None
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(f"{name}={raw[:40]!r}: expected 1/0, true/false, yes/no or on/off", key=name)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _interpolate(value: str, environ: Mapping[str, str], missing: list[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        found = environ.get(m.group(1))
        if not found:
            missing.append(m.group(1))
            return ""
        return found
    return _VAR.sub(sub, value)


def _provider(file: _File | None, name: str, table: Any, environ: Mapping[str, str],
              missing_env: dict[str, tuple[str, ...]]) -> ProviderConfig:
    where = ("providers", name)
    base = BUILTIN_PROVIDERS.get(name)
    values: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if table is not None:
        assert file is not None
        if not isinstance(table, dict):
            raise file.error(f"expected a table ([providers.{name}]), got {_describe(table)}", where, None)
        for key, value in table.items():
            if key == "headers":
                if not isinstance(value, dict):
                    raise file.error(f"expected a table of strings, got {_describe(value)}", where, key)
                for h, hv in value.items():
                    if not isinstance(hv, str):
                        raise file.error(f"expected a string, got {_describe(hv)}", (*where, "headers"), h)
                    headers[h] = hv
            elif key == "api_key":
                raise file.error(
                    "keys do not belong in the config file: set api_key_env = \"SOME_VAR\" and put the "
                    "key in the environment or a .env file", where, key)
            elif key in PROVIDER_KEYS:
                values[key] = file.check(PROVIDER_KEYS[key], value, where, key)
            else:
                raise file.unknown(where, key, [*PROVIDER_KEYS, "headers"])
        if base is None and "type" not in values:
            raise file.error('missing "type" ("openai", "anthropic" or "local")', where, None)
    cfg = base or ProviderConfig(name=name, type=values["type"])
    if "models" in values:
        values["models"] = tuple(dict.fromkeys(values["models"]))
    cfg = replace(cfg, **values)
    # Environment beats file: OPENAI_BASE_URL / ANTHROPIC_BASE_URL for the built-ins of that name.
    env_url = environ.get(BASE_URL_ENV.get(name, ""), "").strip() if name in BASE_URL_ENV else ""
    if env_url:
        cfg = replace(cfg, base_url=env_url)
    key_value = environ.get(cfg.api_key_env, "").strip() if cfg.api_key_env else ""
    missing: list[str] = []
    resolved_headers = tuple((h, Secret(_interpolate(v, environ, missing))) for h, v in headers.items())
    if missing:
        missing_env[name] = tuple(dict.fromkeys(missing))
    return replace(cfg, api_key=Secret(key_value) if key_value else None, headers=resolved_headers)


def load(environ: Mapping[str, str], cwd: Path, overrides: Overrides | None = None) -> Loaded:
    """Build the effective Settings. Raises ConfigError for anything invalid."""
    overrides = overrides or Overrides()
    merged, path, asked = merged_environ(environ, cwd, overrides.config)
    data: dict[str, Any] = {}
    file: _File | None = None
    exists = path.is_file()
    if exists or asked:
        data, file = read_file(path)

    top: dict[str, Any] = {}
    for key, value in data.items():
        assert file is not None
        if key in TOP_KEYS:
            top[key] = file.check(TOP_KEYS[key], value, (), key)
        elif key in TABLES:
            if not isinstance(value, dict):
                raise file.error(f"expected a table, got {_describe(value)}", (), key)
        else:
            hint = " (keys go in the environment or .env, never in this file)" if key == "api_key" else ""
            raise file.unknown((), key, [*TOP_KEYS, *TABLES], hint)

    missing_env: dict[str, tuple[str, ...]] = {}
    tables: dict[str, Any] = {t: data.get(t, {}) for t in TABLES}
    providers: dict[str, ProviderConfig] = {}
    for name in BUILTIN_PROVIDERS:
        providers[name] = _provider(file, name, tables["providers"].get(name), merged, missing_env)
    for name, table in tables["providers"].items():
        if name in BUILTIN_PROVIDERS:
            continue
        assert file is not None
        if not _NAME.match(name):
            raise file.error("provider names may use letters, digits, '_', '-' and '.' only",
                             ("providers", name), None)
        providers[name] = _provider(file, name, table, merged, missing_env)

    aliases: dict[str, str] = {}
    for name, target in tables["aliases"].items():
        assert file is not None
        if not _NAME.match(name) or name in providers:
            raise file.error("an alias name must not be a provider name or contain ':'", ("aliases",), name)
        aliases[name] = file.check(NONEMPTY, target, ("aliases",), name)
    windows: dict[str, int] = {}
    prices: dict[str, tuple[float, float]] = {}
    servers = _mcp_servers(file, tables["mcp"], merged)
    if file is not None:
        windows = {m: file.check(POS_INT, v, ("context_windows",), m) for m, v in tables["context_windows"].items()}
        prices = {m: file.check(PRICE, v, ("prices",), m) for m, v in tables["prices"].items()}

    roles: dict[str, Role] = {}
    if file is not None and tables["roles"]:
        from chatcli.roles import parse_roles

        roles = parse_roles(tables["roles"], source=str(file.path), text=file.text)
    role = None
    if overrides.role is not None:
        from chatcli.roles import apply, find_role

        role = find_role(roles, overrides.role)
        # flags > the role > CHATCLI_* > file: the role's values stand in for flags not given.
        eff = apply(role, system=overrides.system, model=overrides.model, temperature=overrides.temperature,
                    max_tokens=overrides.max_tokens)
        overrides = replace(overrides, system=eff.system, model=eff.model, temperature=eff.temperature,
                            max_tokens=eff.max_tokens)

    # flags > CHATCLI_* > file > defaults, one key at a time.
    def pick(flag: Any, env_name: str, kind: _Kind, parse: Callable[[str], Any], key: str) -> Any:
        if flag is not None:
            return flag
        from_env = _env_value(merged, env_name, kind, parse)
        if from_env is not None:
            return from_env
        return top.get(key)

    def as_text(v: str) -> str:
        from chatcli.termenc import utf8_text  # read as UTF-8 under a C locale too

        return utf8_text(v)

    model = pick(overrides.model, "CHATCLI_MODEL", NONEMPTY, as_text, "default_model")
    system = pick(overrides.system, "CHATCLI_SYSTEM", STR, as_text, "system")
    max_tokens = pick(overrides.max_tokens, "CHATCLI_MAX_TOKENS", POS_INT, _parse_int, "max_tokens")
    temperature = pick(overrides.temperature, "CHATCLI_TEMPERATURE", TEMPERATURE, _parse_float, "temperature")
    render: RenderMode = pick(overrides.render, "CHATCLI_RENDER", RENDER, str.lower, "render") or "auto"
    stdin_timeout = pick(None, "CHATCLI_STDIN_TIMEOUT", SECONDS, _parse_float, "stdin_timeout")
    env_no_save = _env_bool(merged, "CHATCLI_NO_SAVE")
    save = not overrides.no_save and not env_no_save and top.get("save", True)
    show_reasoning = _env_bool(merged, "CHATCLI_SHOW_REASONING")
    if show_reasoning is None:
        show_reasoning = top.get("show_reasoning", True)
    debug = overrides.debug or bool(_env_bool(merged, "CHATCLI_DEBUG"))

    home = merged.get("CHATCLI_HOME", "").strip()
    data_dir = Path(home).expanduser() if home else (
        Path(top["data_dir"]).expanduser() if "data_dir" in top else user_data_dir(merged))

    settings = Settings(
        providers=providers,
        aliases=aliases,
        default_model=model,
        system=system or None,
        max_tokens=max_tokens,
        temperature=temperature,
        save=bool(save),
        render=render,
        show_reasoning=bool(show_reasoning),
        data_dir=data_dir,
        config_path=path,
        context_windows=windows,
        prices=prices,
        stdin_timeout=5.0 if stdin_timeout is None else stdin_timeout,
        debug=debug,
        missing_env=missing_env,
        mcp_servers=servers,
        tool_servers=overrides.tools,
        tools_off=overrides.no_tools,
        allow_tools=_allow_flags(overrides.allow_tools),
        max_tool_rounds=top.get("max_tool_rounds", 10),
        tool_result_limit=top.get("tool_result_limit", 64_000),
        roles=roles,
        role=role.name if role is not None else None,
    )
    if file is not None:
        from chatcli.fsperm import check_private

        # After validation, so an invalid file still gives exactly one error line. Headers may
        # hold literal secrets; `config init` writes the file 0600.
        check_private(path)
    return Loaded(settings=settings, environ=merged, config_exists=exists)


def _mcp_servers(file: _File | None, table: Any, environ: Mapping[str, str]) -> dict[str, ServerConfig]:
    """`[mcp.servers.NAME]` (chatcli/tools/servers.py checks each server's keys)."""
    if file is None or not table:
        return {}
    for key in table:
        if key != "servers":
            raise file.unknown(("mcp",), key, ["servers"])
    from chatcli.tools.servers import parse_servers

    return parse_servers(table.get("servers", {}), source=str(file.path), environ=environ,
                         line_of=lambda where, key: locate(file.text, where, key))


def _allow_flags(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    if not values:
        return ()
    from chatcli.tools.grants import parse_allow_flag

    return tuple(parse_allow_flag(v) for v in values)


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError from None


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError from None
