"""The text the config commands print or write: `config show`, `chatcli models`, `config init`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatcli.config.file import _toml_str
from chatcli.config.load import Loaded
from chatcli.config.resolution import Resolved, resolve, unusable_reason
from chatcli.errors import ConfigError, NoProviderError, UsageError
from chatcli.redact import mask
from chatcli.settings import ProviderConfig, Settings


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
