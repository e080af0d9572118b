"""The SDK client's life, shared by the OpenAI and Anthropic providers.

The client is built once, lazily, under a lock (the REPL warms it from a background thread while
the user types): the key is revealed only here, SDK retries are off (the session retries, visibly),
and the HTTP client never follows redirects. Subclasses supply the SDK's constructor (`_build`) and
what else the SDK defers to its first request (`_prime`).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from chatcli.errors import ChatCLIError
from chatcli.providers import _common as common

if TYPE_CHECKING:
    from chatcli.settings import ProviderConfig


class _SDKClient(Protocol):
    @property
    def base_url(self) -> object: ...

    def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_SDKClient)


class SDKClientProvider(Generic[ClientT]):
    #: The SDK's top-level module, imported by `warm()` even when no client can be built yet.
    sdk_module = ""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        common.warn_insecure_base_url(config)
        self.name = config.name
        self._where = config  # for error messages: config with the effective base URL
        self._client: ClientT | None = None
        self._lock = threading.Lock()
        self._placeholder_key = False

    def warm(self) -> None:
        """Import the SDK and build the client. A missing key is not raised here (this runs in a
        background thread): `stream()` raises it when the user actually sends something."""
        try:
            client = self._get_client()
        except ChatCLIError:
            __import__(self.sdk_module)  # still the slow part worth doing early
            return
        self._prime(client)

    def _get_client(self) -> ClientT:
        with self._lock:
            if self._client is None:
                key = common.api_key(self.config)
                import httpx2

                self._placeholder_key = not self.config.api_key
                try:
                    self._client = self._build(key)
                except httpx2.InvalidURL as exc:
                    raise common.invalid_base_url(self.config, exc) from None
                if not self.config.base_url:  # name the SDK's default URL in error messages
                    self._where = replace(self.config, base_url=str(self._client.base_url).rstrip("/"))
            return self._client

    def close(self) -> None:
        """Release pooled connections (tests; the CLI simply exits)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _build(self, key: str) -> ClientT:
        """The SDK client: `max_retries=0`, `common.timeout`, `common.default_headers`, and
        `common.http_client` (no redirects)."""
        raise NotImplementedError

    def _prime(self, client: ClientT) -> None:
        """Do now what the SDK would otherwise do on the first request (load resources, build
        validators), so the first reply's time to first byte matches the second's."""
