"""`[mcp.servers.NAME]` tables -> `ServerConfig`: the shape every MCP client uses, checked strictly.

    [mcp.servers.time]
    command = "mcp-server-time"           # or: url = "https://host/mcp" (+ headers = {...})
    args = ["--local-timezone", "UTC"]
    env = { TZ_TOKEN = "${TZ_TOKEN}" }   # "${VAR}" is replaced from the environment passed in
    cwd = "~/src"
    enabled = true                        # default true
    startup_timeout = 15                  # seconds for spawn + initialize + tools/list
    timeout = 60                          # seconds per tool call
    allow = ["get_current_time"]          # tools that run without asking

A `${VAR}` that is not set is not an error here (the config is read on every start, servers or
not): it is recorded in `missing_env` and the server fails at start with a line that names it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from chatcli.errors import ConfigError

DEFAULT_STARTUP_TIMEOUT = 15.0
DEFAULT_CALL_TIMEOUT = 60.0

# Finds the line of (table, key) in the config text, for errors; chatcli/config/file.py has one (`locate`).
LineOf = Callable[[tuple[str, ...], str | None], int | None]

_KEYS = ("command", "args", "env", "cwd", "url", "headers", "enabled", "startup_timeout", "timeout", "allow")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class ServerConfig:
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    enabled: bool = True
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    timeout: float = DEFAULT_CALL_TIMEOUT
    allow: frozenset[str] = frozenset()
    missing_env: tuple[str, ...] = ()  # `${VAR}` names that were not set

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "http" if self.url is not None else "stdio"

    @property
    def identity(self) -> str:
        """What a saved grant is bound to: the command and its args, or the URL.

        JSON keeps it unambiguous (`["a b"]` vs `["a", "b"]`); env, cwd and headers are not part of
        it, so rotating a token in `env` keeps the user's grants.
        """
        if self.url is not None:
            return "url " + self.url
        return "stdio " + json.dumps([self.command, *self.args], ensure_ascii=False)


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def parse_servers(table: Mapping[str, Any], *, source: str, environ: Mapping[str, str] | None = None,
                  line_of: LineOf | None = None) -> dict[str, ServerConfig]:
    """Check the `mcp.servers` table (NAME -> table) and build one ServerConfig per server.

    `source` names the file in errors; `environ` supplies `${VAR}` values (nothing is read from
    os.environ here); `line_of` (optional) adds the line number to an error.
    """
    env_source: Mapping[str, str] = environ if environ is not None else {}

    def error(message: str, name: str | None = None, key: str | None = None) -> ConfigError:
        where: tuple[str, ...] = ("mcp", "servers") + ((name,) if name is not None else ())
        line = line_of(where, key) if line_of is not None else None
        return ConfigError(message, path=source, line=line, key=".".join((*where, key) if key else where))

    if not isinstance(table, Mapping):
        raise error(f"expected a table ([mcp.servers.NAME]), got {_describe(table)}")
    servers: dict[str, ServerConfig] = {}
    for name, raw in table.items():
        if not isinstance(raw, Mapping):
            raise error(f"expected a table ([mcp.servers.{name}]), got {_describe(raw)}", name)
        servers[name] = _server(name, raw, env_source, error)
    return servers


def _server(name: str, raw: Mapping[str, Any], environ: Mapping[str, str],
            error: Callable[..., ConfigError]) -> ServerConfig:
    for key in raw:
        if key not in _KEYS:
            import difflib

            close = difflib.get_close_matches(key, _KEYS, n=1, cutoff=0.75)
            raise error("unknown key" + (f' (did you mean "{close[0]}"?)' if close else ""), name, key)
    missing: list[str] = []

    def string(key: str, *, expand: bool = False) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise error(f"expected a non-empty string, got {_describe(value)}", name, key)
        return _expand(value, environ, missing) if expand else value

    def strings(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise error(f"expected an array of strings, got {_describe(value)}", name, key)
        return tuple(value)

    def table(key: str) -> Mapping[str, str]:
        value = raw.get(key, {})
        if not isinstance(value, Mapping):
            raise error(f"expected a table of strings, got {_describe(value)}", name, key)
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(v, str):
                raise error(f"expected a string, got {_describe(v)}", name, f"{key}.{k}")
            out[k] = _expand(v, environ, missing)
        return MappingProxyType(out)

    def seconds(key: str, default: float) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86400:
            raise error(f"expected a number of seconds (0 < n <= 86400), got {_describe(value)}", name, key)
        return float(value)

    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise error(f"expected true or false, got {_describe(enabled)}", name, "enabled")
    command, url = string("command"), string("url", expand=True)
    if (command is None) == (url is None):
        raise error('needs either command = "..." (a local server) or url = "..." (streamable HTTP)', name)
    if url is not None:
        for key in ("args", "env", "cwd"):
            if key in raw:
                raise error("only for a local server (command = ...), not with url", name, key)
        if not re.match(r"^https?://", url):
            raise error("expected an http:// or https:// URL", name, "url")
    if command is not None and "headers" in raw:
        raise error("only for an HTTP server (url = ...), not with command", name, "headers")
    return ServerConfig(
        name=name, command=command, args=strings("args"), env=table("env"), cwd=string("cwd"), url=url,
        headers=table("headers"), enabled=enabled,
        startup_timeout=seconds("startup_timeout", DEFAULT_STARTUP_TIMEOUT),
        timeout=seconds("timeout", DEFAULT_CALL_TIMEOUT), allow=frozenset(strings("allow")),
        missing_env=tuple(dict.fromkeys(missing)),
    )


def _expand(value: str, environ: Mapping[str, str], missing: list[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        found = environ.get(m.group(1))
        if found is None:
            missing.append(m.group(1))
            return ""
        return found

    return _VAR.sub(sub, value)
