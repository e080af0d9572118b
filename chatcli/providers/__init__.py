"""Provider registry: builds a provider from its config, importing its module (and SDK) only then."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatcli.providers.base import Provider
    from chatcli.settings import ProviderConfig


def build_provider(config: ProviderConfig) -> Provider:
    if config.type == "openai":
        from chatcli.providers.openai import OpenAIProvider

        return OpenAIProvider(config)
    if config.type == "anthropic":
        from chatcli.providers.anthropic import AnthropicProvider

        return AnthropicProvider(config)
    from chatcli.providers.local import LocalProvider

    return LocalProvider(config)
