"""The SDK client's life, shared by the OpenAI and Anthropic providers.

The client is built once, lazily, under a lock (the REPL warms it from a background thread while
the user types): the key is revealed only here, SDK retries are off (the session retries, visibly),
and the HTTP client never follows redirects. The stream itself is shared too (`_stream_on`: the
response is closed on every exit, an HTML page is never taken for a stream). Subclasses supply the
SDK's constructor (`_build`), the request (`_open`), the mapping of the SDK's stream to events
(`_events`), and a short reply in their wire dialect for the warm-up's rehearsal
(`rehearsal_reply`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from chatcli.errors import ChatCLIError
from chatcli.events import Event, Finish, Message, ToolSpec
from chatcli.providers import _common as common
from chatcli.providers import _inflight

if TYPE_CHECKING:
    import httpx2

    from chatcli.settings import ProviderConfig


class _SDKClient(Protocol):
    @property
    def base_url(self) -> object: ...

    def close(self) -> None: ...

    # Both SDKs: a copy of the client with some options replaced (`copy`).
    def with_options(self, *, http_client: httpx2.Client | None = None, base_url: str | None = None,
                     api_key: str | None = None) -> Any: ...


ClientT = TypeVar("ClientT", bound=_SDKClient)

#: The key the warm-up's rehearsal sends to its in-memory stand-in instead of the user's.
REHEARSAL_KEY = "chatcli-rehearsal-placeholder"


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
        #: True once a warm-up rehearsal played a whole reply (tests; see `_rehearse`).
        self.rehearsed = False
        #: The requests the last rehearsal's stand-in received (tests).
        self.rehearsal_requests: list[httpx2.Request] = []

    def warm(self, *, rehearse: bool = False) -> None:
        """Import the SDK and build the client (and with `rehearse`, play one request in memory).
        A missing key is not raised here (this runs in a background thread): `stream()` raises it
        when the user actually sends something."""
        try:
            client = self._get_client()
        except ChatCLIError:
            __import__(self.sdk_module)  # still the slow part worth doing early
            return
        if rehearse:
            self._rehearse(client)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> Iterator[Event]:
        # A generator, so that a missing key or a bad URL is raised on the first `next()`, where
        # the session handles errors, not when the request is merely described.
        yield from self._stream_on(self._get_client(), messages, model=model, system=system,
                                   max_tokens=max_tokens, temperature=temperature, tools=tools)

    def _rehearse(self, client: ClientT) -> None:
        """Play one request and its streamed reply through the SDK and this provider, in memory.

        The SDK defers a lot to the first request: loading the resource, building its request
        transforms (`get_type_hints` over the params TypedDicts), the response models' validators,
        the SSE decoder; and our own mapping code runs for the first time too. repl_bench
        measured the first reply's time to first byte 1.6x the second's because of it. Paid here,
        while the user types.

        The request goes from a copy of the client (`with_options`, the SDKs' public seam) with
        an HTTP client of its own on `httpx2.MockTransport` (httpx2's public test seam), which
        answers with `rehearsal_reply()` and never touches the network: the user's key is never
        sent (a placeholder is), the configured server sees nothing, the real client's
        connection pool is untouched. Not rehearsed: the socket, connection pool and HTTP/1.1
        parser of the first real request (0.4-1.5 ms measured; a loopback server that rehearsed
        those too was deleted as not worth its code). Only an optimisation: any failure just
        leaves the first request to pay the costs.
        """
        import httpx2

        body = self.rehearsal_reply()
        received: list[httpx2.Request] = []
        # The first real request resolves its host through getaddrinfo, which loads Python's IDNA
        # codec (~3 ms measured); the stand-in resolves nothing, so load it here.
        "rehearsal.invalid".encode("idna")

        def answer(request: httpx2.Request) -> httpx2.Response:
            received.append(request)
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

        try:
            with httpx2.Client(transport=httpx2.MockTransport(answer)) as http:
                stand_in = client.with_options(http_client=http, base_url="http://rehearsal.invalid/v1",
                                               api_key=REHEARSAL_KEY)
                events = list(self._stream_on(stand_in, [Message("user", "hi")], model="rehearsal",
                                              system=None, max_tokens=None, temperature=None))
        except Exception:  # an optimisation must never break the real request
            return
        self.rehearsal_requests = received
        self.rehearsed = bool(events) and isinstance(events[-1], Finish) and events[-1].reason == "stop"

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

    def _http_client_class(self) -> type[httpx2.Client]:
        """The SDK's HTTP client class (its pool limits and TCP keep-alive options)."""
        raise NotImplementedError

    def _build(self, key: str) -> ClientT:
        """The SDK client: `max_retries=0`, `common.timeout`, `common.default_headers`, and
        `common.http_client` (no redirects)."""
        raise NotImplementedError

    def rehearsal_reply(self) -> bytes:
        """A complete streamed reply in the provider's wire dialect (SSE bytes), for `_rehearse`."""
        raise NotImplementedError

    def _stream_on(
        self,
        client: ClientT,
        messages: Sequence[Message],
        *,
        model: str,
        system: str | None,
        max_tokens: int | None,
        temperature: float | None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> Iterator[Event]:
        """One request on `client` and its reply as events (see providers/base.py)."""
        sdk_stream = self._open(client, messages, model=model, system=system, max_tokens=max_tokens,
                                temperature=temperature, tools=tools)
        # The `with` closes the HTTP response on every exit, including the generator being
        # closed at a `yield` (Ctrl-C): the server sees the disconnect at once.
        with sdk_stream:
            _inflight.opened(sdk_stream.response)  # for chatcli/compare/runner.py's Ctrl-C (see `Lane.interrupt`)
            content_type = sdk_stream.response.headers.get("content-type")
            if common.is_html(content_type):
                raise common.not_a_stream(self._where, content_type, empty=False)
            yield from self._events(sdk_stream, content_type, model)

    def _open(self, client: ClientT, messages: Sequence[Message], *, model: str, system: str | None,
              max_tokens: int | None, temperature: float | None,
              tools: Sequence[ToolSpec] | None = None) -> Any:
        """Send the request; the SDK's stream object (a context manager with `.response`), or a
        classified `ProviderError`."""
        raise NotImplementedError

    def _events(self, sdk_stream: Any, content_type: str | None, model: str) -> Iterator[Event]:
        """The SDK stream as events, ending with exactly one `Finish` (see providers/base.py)."""
        raise NotImplementedError
