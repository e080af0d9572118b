"""The effective settings as frozen values. Reading and validating them is the job of `chatcli/config/`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from chatcli.redact import Secret

if TYPE_CHECKING:
    from chatcli.roles import Role
    from chatcli.tools.servers import ServerConfig

ProviderType = Literal["openai", "anthropic", "local"]
RenderMode = Literal["auto", "plain", "markdown"]


@dataclass(frozen=True)
class ProviderConfig:
    """Everything a provider needs, passed in explicitly: providers never read the environment."""

    name: str  # as configured ("openai", "anthropic", "local", "ollama", ...); never changes behaviour
    type: ProviderType
    base_url: str | None = None
    api_key: Secret | None = None
    api_key_env: str | None = None  # the variable the key comes from (for "set X" messages)
    default_model: str | None = None
    models: tuple[str, ...] = ()
    headers: tuple[tuple[str, Secret], ...] = ()  # extra HTTP headers; values may hold secrets
    timeout: float = 60.0  # seconds of silence allowed between two reads of a stream
    connect_timeout: float = 10.0
    max_retries: int = 3  # chatcli's own retries, before the first content event only
    retry_cap: float = 60.0  # longest wait chatcli accepts (retry-after above it: give up at once)
    include_usage: bool = True  # OpenAI `stream_options.include_usage`; some compatibles reject it
    model_path: str | None = None  # local: a GGUF file instead of the bundled SmolLM2
    context_window: int | None = None  # tokens; None = known default for the model, or unknown
    vision: bool | None = None  # takes images and PDFs; None = not known (the provider's answer decides)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value this provider holds, for redaction of error text."""
        values = [v.reveal() for _, v in self.headers]
        if self.api_key:
            values.append(self.api_key.reveal())
        return tuple(v for v in values if v)


@dataclass(frozen=True)
class Settings:
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    default_model: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    save: bool = True
    render: RenderMode = "auto"
    show_reasoning: bool = True
    data_dir: Path | None = None
    config_path: Path | None = None
    context_windows: Mapping[str, int] = field(default_factory=dict)  # model -> tokens
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # model -> $/Mtok (in, out)
    stdin_timeout: float = 5.0  # seconds to wait for the first byte of a pipe that stays open
    debug: bool = False
    # provider name -> variables its config refers to (`${VAR}` in headers) that are not set; such a
    # provider is reported as unusable when chosen rather than failing the whole config.
    missing_env: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # -- tools (MCP) -----------------------------------------------------------------------------
    mcp_servers: Mapping[str, ServerConfig] = field(default_factory=dict)  # [mcp.servers.NAME]
    tool_servers: tuple[str, ...] | None = None  # -T NAME,...: only these (None: every enabled one)
    tools_off: bool = False  # --no-tools
    allow_tools: tuple[tuple[str, str], ...] = ()  # --allow-tool SERVER:TOOL
    max_tool_rounds: int = 10
    tool_result_limit: int = 64_000  # characters of a tool result sent to the model
    # -- roles -----------------------------------------------------------------------------------
    roles: Mapping[str, Role] = field(default_factory=dict)  # [roles.NAME]
    role: str | None = None  # --role NAME (already applied to system/model/temperature/max_tokens)
