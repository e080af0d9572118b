"""Anthropic Messages streaming.

The SDK (`anthropic` 2.x on `httpx2`) is imported on first use only. `messages.create(stream=True)`
gives the raw event stream (no snapshot accumulation: the session accumulates the text). Wire
quirks handled here (docs/architecture.md, "Anthropic streaming", "Retries and timeouts"):

* `event: error` inside the 200 stream raises a bare `APIStatusError` with `status_code == 200`;
  its category is only in `.type` (e.g. `overloaded_error`), so that is what we classify by;
* a stream that ends without `message_delta`/`message_stop` leaves `stop_reason` unset: the reply
  is `incomplete`, never complete;
* transport failures mid-stream are raw `httpx2.RemoteProtocolError`/`ReadTimeout` (not wrapped
  by the SDK); malformed JSON / invalid UTF-8 are raw `JSONDecodeError`/`UnicodeDecodeError`;
* `ping` and unknown events are ignored; signatures and citations are never shown;
* `tool_use` blocks: the name at `content_block_start`, the input as `input_json_delta`
  fragments (the first is often `''`); text blocks may come before and between them;
* a trailing assistant message (prefill, used by /continue) must not end in whitespace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from chatcli.errors import ProviderError
from chatcli.events import (
    DocumentPart,
    Event,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallPart,
    ToolSpec,
    Usage,
)
from chatcli.providers import _common as common
from chatcli.providers._client import SDKClientProvider

if TYPE_CHECKING:
    import anthropic
    import httpx2
    from anthropic.types import MessageParam

    from chatcli.settings import ProviderConfig

#: The API requires `max_tokens`. 4096 is within every current model's output limit (some older
#: models reject more), and long enough for a chat reply; `--max-tokens` raises it.
DEFAULT_MAX_TOKENS = 4096

#: A stream that sends nothing but `ping` events for this many read timeouts is given up on
#: (docs/architecture.md, "Anthropic pings"): pings keep the read timeout from ever firing, so a server that only pings
#: would hang a piped `chatcli ask` (no spinner there) forever. Real pings come while a long
#: prompt is processed, so the bound is generous: 5 minutes with the default 60 s timeout.
PING_IDLE_FACTOR = 5

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
    "pause_turn": "pause_turn",
}

# A whole reply for the warm-up rehearsal (_client.py), every event type a text reply carries.
_REHEARSAL_EVENTS: list[dict[str, Any]] = [
    {"type": "message_start", "message": {
        "id": "r", "type": "message", "role": "assistant", "model": "rehearsal", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 0}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
     "usage": {"output_tokens": 1}},
    {"type": "message_stop"},
]


class _ToolBlock:
    """One streaming `tool_use` block (a plain class: a dataclass costs ~0.5 ms at import)."""

    __slots__ = ("id", "name", "partial", "position", "start_input")

    def __init__(self, position: int, id: str, name: str, start_input: Any) -> None:
        self.position = position  # the call's place in this reply (ToolCallDelta.index)
        self.id = id
        self.name = name
        self.start_input = start_input  # `input` of content_block_start: {} when the JSON streams as deltas
        self.partial: list[str] = []

    def part(self) -> ToolCallPart:
        arguments = "".join(self.partial)
        if not arguments.strip():
            import json

            arguments = json.dumps(self.start_input) if isinstance(self.start_input, dict) else "{}"
        return ToolCallPart(self.id, self.name, arguments)


@dataclass
class _State:
    events: int = 0
    content: bool = False  # text or thinking was yielded
    stop_reason: str | None = None
    stop_detail: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    tools: dict[int, _ToolBlock] = field(default_factory=dict)  # by content block index

    def usage(self) -> Usage | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return Usage(self.input_tokens, self.output_tokens)


class AnthropicProvider(SDKClientProvider["anthropic.Anthropic"]):
    sdk_module = "anthropic"
    supports_prefill = True  # a trailing assistant message is continued by the model

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._send_temperature = True

    # -- client -----------------------------------------------------------------------------

    def rehearsal_reply(self) -> bytes:
        import json  # not at the top: json is ~3 ms of the prompt's start-up budget

        return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in _REHEARSAL_EVENTS)

    def _http_client_class(self) -> type[httpx2.Client]:
        import anthropic

        return anthropic.DefaultHttpxClient  # the SDK's defaults (pool limits, TCP keep-alive)

    def _build(self, key: str) -> anthropic.Anthropic:
        # An explicit api_key also stops the SDK from looking for credentials in the
        # environment and profile files (it reads them only when none is passed).
        return _client_class()(
            idle_limit=max(self.config.timeout, 0.0) * PING_IDLE_FACTOR,
            api_key=key,
            base_url=self.config.base_url,  # None: the SDK default
            max_retries=0,  # retries are the session's job: 2.x would sleep out any retry-after
            timeout=common.timeout(self.config),
            default_headers=common.default_headers(self.config),
            http_client=common.http_client(self._http_client_class(), self.config),
        )

    # -- streaming --------------------------------------------------------------------------

    def _open(self, client: anthropic.Anthropic, messages: Sequence[Message], *, model: str, system: str | None,
              max_tokens: int | None, temperature: float | None,
              tools: Sequence[ToolSpec] | None = None) -> anthropic.Stream[Any]:
        import anthropic
        import httpx2

        wire = _wire_messages(messages)
        for _ in range(2):  # the original request plus one retry without `temperature`
            # anthropic 2.x dropped `temperature` from `messages.create` (newer models reject
            # it), but older models and gateways still honour it: sent through `extra_body`,
            # and dropped for this provider if the server says it is not supported.
            extra = {"temperature": temperature} if temperature is not None and self._send_temperature else None
            try:
                return client.messages.create(
                    model=model,
                    messages=cast("list[MessageParam]", wire),
                    max_tokens=max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS,
                    system=system if system else anthropic.omit,
                    stream=True,
                    extra_body=extra,
                    tools=cast("Any", _wire_tools(tools)) if tools else anthropic.omit,
                )
            except anthropic.APIStatusError as exc:
                if not (extra and exc.status_code in (400, 422) and "temperature" in str(exc.body).lower()):
                    raise self._error(exc, model, streaming=False) from None
                self._send_temperature = False
            except (anthropic.APIError, httpx2.TransportError) as exc:
                raise self._error(exc, model, streaming=False) from None
        raise common.bad_response(self._where, "the server kept rejecting the request parameters")

    def _events(self, sdk_stream: anthropic.Stream[Any], content_type: str | None,
                model: str) -> Iterator[Event]:
        import json

        import anthropic
        import httpx2

        state = _State()
        try:
            for event in sdk_stream:
                state.events += 1
                yield from _event_events(event, state)
        except (anthropic.APIError, httpx2.TransportError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            # The SSE decoder lets malformed JSON and invalid UTF-8 through raw.
            if state.stop_reason is not None:
                pass  # complete already; only `message_stop` went missing
            elif state.content or state.tools:
                # A half-streamed tool call is never yielded as a `ToolCall`: nothing runs it.
                usage = state.usage()
                if usage is not None:
                    yield usage
                yield Finish("error", raw=getattr(exc, "type", None) if _is_event_error(exc) else None,
                             detail=self._midstream_detail(exc))
                return
            else:
                raise self._error(exc, model, streaming=True) from None
        if state.stop_reason is None and not state.content and not state.tools:
            if state.events == 0:  # an empty body, JSON or anything not SSE
                raise common.not_a_stream(self._where, content_type,
                                         empty=sdk_stream.response.num_bytes_downloaded == 0)
            raise common.bad_response(self._where, "the stream ended before any reply text")
        usage = state.usage()
        if usage is not None:
            yield usage
        finish = _with_tool_calls(_finish(state), state)
        if finish.reason == "tool_calls":
            yield from (ToolCall(block.part()) for block in state.tools.values())
        yield finish

    # -- errors -----------------------------------------------------------------------------

    def _error(self, exc: BaseException, model: str, *, streaming: bool) -> ProviderError:
        """Any failure before content, as a classified ProviderError."""
        import anthropic
        import httpx2

        if isinstance(exc, anthropic.APIStatusError):
            # Status 200 means an `event: error` inside the stream: the status says nothing then.
            status = exc.status_code if exc.status_code != 200 else None
            return common.classify_status(
                self._where, status=status, body=exc.body, headers=exc.response.headers, model=model,
                etype=exc.type, code=exc.error_code, fallback=exc.api_message or "",
                placeholder_key=self._placeholder_key)
        if isinstance(exc, (anthropic.APITimeoutError, httpx2.TimeoutException)):
            return common.timeout_error(self._where, streaming=streaming)
        if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError)):
            if (scheme := common.bad_scheme(exc)) is not None:
                return common.invalid_base_url(self._where, scheme)
            return common.connection_error(self._where, exc, streaming=streaming)
        if isinstance(exc, anthropic.APIError):  # e.g. APIResponseValidationError
            return common.bad_response(self._where, f"unexpected response ({common.clean(exc.message, self._where)})")
        return common.bad_response(self._where, common.malformed_detail(exc))

    def _midstream_detail(self, exc: BaseException) -> str:
        if _is_event_error(exc):
            return common.event_error_detail(self._where, body=getattr(exc, "body", None),
                                             etype=getattr(exc, "type", None),
                                             fallback=getattr(exc, "api_message", None) or "")
        return common.stream_failure_detail(exc, self._where)


def _is_event_error(exc: BaseException) -> bool:
    """An `event: error` inside the 200 stream (the SDK raises it as APIStatusError, status 200)."""
    import anthropic

    return isinstance(exc, anthropic.APIStatusError) and exc.status_code == 200


def _wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = []
    merge_next = False  # the previous wire message carries tool results
    for m in messages:
        item = _wire_message(m) if m.parts else {"role": m.role, "content": m.content}
        carries_results = m.role == "tool"
        if wire and wire[-1]["role"] == item["role"] == "user" and (carries_results or merge_next):
            # Tool results go in a user message; one that follows (or precedes) another user
            # message is merged with it so roles keep alternating.
            wire[-1]["content"] = _merged(wire[-1]["content"], item["content"])
        else:
            wire.append(item)
        merge_next = carries_results or (merge_next and item["role"] == "user")
    if wire and wire[-1]["role"] == "assistant" and isinstance(wire[-1]["content"], str):
        # Prefill: the API rejects a final assistant message with trailing whitespace, and an
        # empty one is pointless, so strip it (and drop it if nothing is left).
        prefill = wire[-1]["content"].rstrip()
        if prefill:
            wire[-1]["content"] = prefill
        else:
            wire.pop()
    return wire


def _wire_message(m: Message) -> dict[str, Any]:
    """A message with parts as Messages content blocks."""
    if m.role == "tool":
        return {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content, "is_error": r.is_error}
            for r in m.tool_results]}
    blocks: list[dict[str, Any]] = []
    if m.role == "assistant":
        if m.content.strip():  # the API rejects an empty text block
            blocks.append({"type": "text", "text": m.content})
        blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _tool_input_object(c.arguments)}
                   for c in m.tool_calls]
        return {"role": "assistant", "content": blocks}
    # Images and documents before the text: the order Anthropic's guide recommends.
    for part in m.parts:
        if isinstance(part, ImagePart):
            if part.url:
                blocks.append({"type": "image", "source": {"type": "url", "url": part.url}})
            else:
                blocks.append({"type": "image", "source": {"type": "base64", "media_type": part.media_type,
                                                           "data": _b64(part.data or b"")}})
        elif isinstance(part, DocumentPart):
            blocks.append({"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                          "data": _b64(part.data)}})
    if m.content:
        blocks.append({"type": "text", "text": m.content})
    return {"role": m.role, "content": blocks}


def _merged(first: Any, second: Any) -> list[dict[str, Any]]:
    """Two user messages' content as one block list, `tool_result` blocks first (the API wants
    them before any other content of the message)."""
    blocks = [*_as_blocks(first), *_as_blocks(second)]
    return sorted(blocks, key=lambda b: 0 if b.get("type") == "tool_result" else 1)


def _as_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content)


def _tool_input_object(arguments: str) -> dict[str, Any]:
    """`tool_use.input` must be an object. Arguments that were not a JSON object (their call was
    answered with an error result) go back as `{}`: the result says what was wrong."""
    import json

    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _b64(data: bytes) -> str:
    from chatcli.attachments import base64_text  # built in place: a lower peak than b64encode().decode()

    return base64_text(data)


def _wire_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]


def _event_events(event: Any, state: _State) -> Iterator[Event]:
    # Events are built without validation (`construct_type`): an unknown event type can come
    # back as a dict or a half-filled model, hence getattr throughout; unknown types are ignored.
    kind = getattr(event, "type", None)
    if kind == "message_start":
        _read_start_usage(getattr(getattr(event, "message", None), "usage", None), state)
    elif kind == "content_block_start":
        block = getattr(event, "content_block", None)
        if getattr(block, "type", None) == "tool_use":
            yield from _tool_start(getattr(event, "index", None), block, state)
        else:
            yield from _text_events(getattr(block, "type", None), block, state)
    elif kind == "content_block_delta":
        delta = getattr(event, "delta", None)
        if getattr(delta, "type", None) == "input_json_delta":
            yield from _tool_input(getattr(event, "index", None), delta, state)
        else:
            yield from _text_events(getattr(delta, "type", None), delta, state)
    elif kind == "message_delta":
        _read_message_delta(event, state)


def _text_events(kind: Any, obj: Any, state: _State) -> Iterator[Event]:
    """Text and thinking, from a block start (usually empty) or a delta. Tool input JSON,
    signatures, citations and redacted thinking are never shown."""
    if kind in ("text", "text_delta"):
        text = getattr(obj, "text", None)
        if isinstance(text, str) and text:
            state.content = True
            yield TextDelta(text)
    elif kind in ("thinking", "thinking_delta"):
        thinking = getattr(obj, "thinking", None)
        if isinstance(thinking, str) and thinking:
            state.content = True
            yield ReasoningDelta(thinking)


def _tool_start(index: Any, block: Any, state: _State) -> Iterator[Event]:
    """`content_block_start{type: tool_use, id, name, input: {}}`: the call's name, at once."""
    name, call_id = getattr(block, "name", None), getattr(block, "id", None)
    if not isinstance(index, int) or not isinstance(name, str) or not name:
        return  # nothing could run a nameless call
    tool = _ToolBlock(position=len(state.tools), id=call_id if isinstance(call_id, str) and call_id
                      else f"toolu_{len(state.tools)}", name=name, start_input=getattr(block, "input", None))
    state.tools[index] = tool
    yield ToolCallDelta(tool.position, name=name)


def _tool_input(index: Any, delta: Any, state: _State) -> Iterator[Event]:
    """`input_json_delta{partial_json}`; the first one is often `''` (nothing to show)."""
    tool = state.tools.get(index) if isinstance(index, int) else None
    partial = getattr(delta, "partial_json", None)
    if tool is not None and isinstance(partial, str) and partial:
        tool.partial.append(partial)
        yield ToolCallDelta(tool.position, arguments=partial)


def _with_tool_calls(finish: Finish, state: _State) -> Finish:
    """Decided by the calls collected: a reply with tool_use blocks that says `end_turn` still
    ends with calls to answer (the API rejects a next request that leaves one unanswered)."""
    if state.tools and finish.reason == "stop":
        return Finish("tool_calls", raw=finish.raw, detail=finish.detail)
    return finish


def _read_start_usage(usage: Any, state: _State) -> None:
    if usage is None:
        return
    # `input_tokens` excludes cached prompt tokens; the prompt's size is the sum of the three.
    parts = [common.usage_int(getattr(usage, name, None))
             for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")]
    if parts[0] is not None:
        state.input_tokens = sum(p or 0 for p in parts)
    output = common.usage_int(getattr(usage, "output_tokens", None))
    if output is not None:
        state.output_tokens = output


def _read_message_delta(event: Any, state: _State) -> None:
    delta = getattr(event, "delta", None)
    reason = getattr(delta, "stop_reason", None)
    if reason:
        state.stop_reason = str(reason)
        state.stop_detail = _stop_detail(getattr(delta, "stop_details", None))
    usage = getattr(event, "usage", None)
    output = common.usage_int(getattr(usage, "output_tokens", None))
    if output is not None:
        state.output_tokens = output  # cumulative for the whole message
    if common.usage_int(getattr(usage, "input_tokens", None)) is not None:
        _read_start_usage(usage, state)
        if output is not None:
            state.output_tokens = output


def _stop_detail(details: Any) -> str | None:
    """`stop_details` of a refusal: `{type: "refusal", category, explanation}`."""
    if details is None:
        return None
    if isinstance(details, dict):
        explanation, category = details.get("explanation"), details.get("category")
    else:
        explanation, category = getattr(details, "explanation", None), getattr(details, "category", None)
    parts = [str(p) for p in (explanation, f"category: {category}" if category else None) if p]
    return "; ".join(parts) or None


def _finish(state: _State) -> Finish:
    raw = state.stop_reason
    if raw is None:
        return Finish("incomplete", detail="the stream ended without a stop reason")
    reason = _STOP.get(raw)
    if reason is None:
        # A value chatcli does not know is no promise that the message is complete: partial,
        # raw kept for the footer and the history (_with_tool_calls does not touch it).
        return Finish("incomplete", raw=raw, detail=common.unknown_finish_detail(raw))
    detail = state.stop_detail if reason == "content_filter" else None
    return Finish(reason, raw=raw, detail=detail)


def _with_x_api_key(auth: dict[str, str], key: str | None, custom: Any) -> dict[str, str]:
    """The SDK's auth headers plus `x-api-key`.

    anthropic 2.x sends the key only as `Authorization: Bearer`; the Messages API has always
    taken `x-api-key`, and gateways and proxies that check only that header answer 401 "missing
    x-api-key header" without it (issue 16). Both are sent, so either kind of server works. Not
    added when the config's `headers` set `x-api-key` themselves (any casing), nor when there is
    no real key (the placeholder) and the headers carry a credential of their own: a gateway that
    reads `x-api-key` first must not see the placeholder there. Computed from the client's own
    key, so the warm-up's rehearsal copy (`with_options(api_key=...)`) sends its placeholder,
    never the user's key.
    """
    names = {str(name).lower() for name in (custom or {})}
    if not key or "x-api-key" in names:
        return auth
    if key == common.PLACEHOLDER_KEY and names & {"authorization", "api-key"}:
        return auth
    return {**auth, "x-api-key": key}


_CLIENT_CLASS: type | None = None


def _client_class() -> Callable[..., anthropic.Anthropic]:
    """`anthropic.Anthropic` with an idle watchdog in its SSE decoder.

    The SDK drops `ping` events inside its stream iterator, so the provider never sees them; the
    decoder does. Ours raises `httpx2.ReadTimeout` (handled like any stall) once only pings have
    arrived for `idle_limit` seconds since the last other event.
    """
    global _CLIENT_CLASS
    import anthropic

    if _CLIENT_CLASS is not None:
        return _CLIENT_CLASS
    class _Keyed(anthropic.Anthropic):
        @property
        def auth_headers(self) -> dict[str, str]:
            return _with_x_api_key(super().auth_headers, self.api_key, self._custom_headers)

    try:
        from anthropic._streaming import SSEDecoder
    except ImportError:  # a future SDK moved it: no watchdog, the SDK's own behaviour
        class _Plain(_Keyed):
            def __init__(self, *, idle_limit: float = 0.0, **kwargs: Any) -> None:
                super().__init__(**kwargs)

        _CLIENT_CLASS = _Plain
        return _CLIENT_CLASS

    import httpx2

    class _Decoder(SSEDecoder):
        def __init__(self, idle_limit: float) -> None:
            super().__init__()
            self._idle_limit = idle_limit
            self._progress = time.monotonic()

        def decode(self, line: str):  # type: ignore[no-untyped-def]
            event = super().decode(line)
            if event is not None:
                now = time.monotonic()
                if event.event != "ping":
                    self._progress = now
                elif self._idle_limit and now - self._progress > self._idle_limit:
                    raise httpx2.ReadTimeout(f"only pings for {now - self._progress:.0f}s")
            return event

    class _Anthropic(_Keyed):
        def __init__(self, *, idle_limit: float = 0.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._chatcli_idle_limit = idle_limit

        # anthropic 2.16 passes the request's options (`_make_sse_decoder(options)`); 2.12 passed
        # nothing. Accept both: the decoder does not depend on them.
        def _make_sse_decoder(self, options: Any = None) -> Any:
            return _Decoder(self._chatcli_idle_limit)

    _CLIENT_CLASS = _Anthropic
    return _CLIENT_CLASS
