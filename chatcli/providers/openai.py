"""OpenAI Chat Completions streaming — also every OpenAI-compatible server (Ollama, vLLM,
llama.cpp server, LM Studio, OpenRouter, Azure-style gateways).

The SDK (`openai` 3.x on `httpx2`) is imported on first use only. Wire quirks handled here
(see notes/protocols.md §1.1, §1.3):

* chunks with `choices: []` — the usage chunk, Azure's first `prompt_filter_results` chunk;
* `delta.refusal` text, `reasoning_content`/`reasoning` extra fields, tool-call fragments;
* a body that just ends (no `finish_reason`) is `incomplete`; `[DONE]` alone, zero chunks or an
  HTML page are `bad_response`, never a blank success;
* `data: {"error": ...}` inside a 200 raises a bare `openai.APIError`, not `APIStatusError`;
* malformed JSON / invalid UTF-8 surface as raw `JSONDecodeError` / `UnicodeDecodeError`;
  transport failures mid-stream as `APIConnectionError`/`APITimeoutError` (3.54) or raw
  `httpx2.TransportError` (older SDKs) — all are caught;
* servers that reject `stream_options` (Groq 400, Mistral 422) or `max_tokens` (OpenAI reasoning
  models want `max_completion_tokens`) get the request retried once without / with the other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, FinishReason, Message, ReasoningDelta, TextDelta, Usage
from chatcli.providers import _common as common
from chatcli.providers._client import SDKClientProvider

if TYPE_CHECKING:
    import httpx2
    import openai
    from openai.types.chat import ChatCompletionMessageParam

    from chatcli.settings import ProviderConfig

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the deprecated single-function form
    # Values seen from compatible servers:
    "max_tokens": "length",
    "model_length": "length",  # vLLM: hit the model's context length
    "abort": "error",  # vLLM aborted the request
    "error": "error",
}

# A delta's reasoning text: DeepSeek/vLLM/llama.cpp send `reasoning_content`, OpenRouter and
# newer vLLM `reasoning`. Neither is a declared SDK field, so they live in `model_extra`.
_REASONING_FIELDS = ("reasoning_content", "reasoning")


# A whole reply for the warm-up rehearsal (_client.py): role, text, finish, usage chunk, [DONE].
_REHEARSAL_CHUNKS: list[dict[str, Any]] = [
    {"id": "r", "object": "chat.completion.chunk", "created": 0, "model": "rehearsal",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}]},
    {"id": "r", "object": "chat.completion.chunk", "created": 0, "model": "rehearsal",
     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"id": "r", "object": "chat.completion.chunk", "created": 0, "model": "rehearsal", "choices": [],
     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
]


@dataclass
class _State:
    chunks: int = 0
    content: bool = False  # text or reasoning was yielded (the session counts both as content)
    finish_raw: str | None = None
    refusal: list[str] = field(default_factory=list)
    tool_call: bool = False
    usage: Usage | None = None


class OpenAIProvider(SDKClientProvider["openai.OpenAI"]):
    sdk_module = "openai"
    supports_prefill = False  # Chat Completions has no assistant prefill

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        # Adapted after a server rejects a parameter, for the life of this provider:
        self._include_usage = config.include_usage
        # `max_tokens`, not `max_completion_tokens`: every compatible server understands the
        # former, most ignore the latter (no limit at all). OpenAI's reasoning models reject
        # `max_tokens` with a 400 naming both, which switches this to the newer name.
        self._max_tokens_param = "max_tokens"

    # -- client -----------------------------------------------------------------------------

    def rehearsal_reply(self) -> bytes:
        import json  # not at the top: json is ~3 ms of the prompt's start-up budget

        return b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in _REHEARSAL_CHUNKS) + (
            b"data: [DONE]\n\n")

    def _http_client_class(self) -> type[httpx2.Client]:
        import openai

        return openai.DefaultHttpxClient  # the SDK's defaults (pool limits, TCP keep-alive)

    def _build(self, key: str) -> openai.OpenAI:
        return _client_class()(
            api_key=key,
            base_url=self.config.base_url,  # None: the SDK default
            max_retries=0,  # retries are the session's job, visible and capped
            timeout=common.timeout(self.config),
            default_headers=common.default_headers(self.config),
            http_client=common.http_client(self._http_client_class(), self.config),
        )

    # -- streaming --------------------------------------------------------------------------

    def _open(self, client: openai.OpenAI, messages: Sequence[Message], *, model: str, system: str | None,
              max_tokens: int | None, temperature: float | None) -> openai.Stream[Any]:
        """Send the request; adapt once to a server that rejects `stream_options`/`max_tokens`."""
        import httpx2
        import openai

        wire = _wire_messages(messages, system)
        for _ in range(3):  # the original request plus at most one retry per adaptation
            try:
                return client.chat.completions.create(
                    model=model,
                    messages=cast("list[ChatCompletionMessageParam]", wire),
                    stream=True,
                    stream_options={"include_usage": True} if self._include_usage else openai.omit,
                    max_tokens=max_tokens if max_tokens is not None and self._max_tokens_param == "max_tokens"
                    else openai.omit,
                    max_completion_tokens=max_tokens
                    if max_tokens is not None and self._max_tokens_param != "max_tokens" else openai.omit,
                    temperature=temperature if temperature is not None else openai.omit,
                )
            except openai.APIStatusError as exc:
                if not self._adapt(exc, max_tokens):
                    raise self._status_error(exc, model) from None
            except (openai.APIError, httpx2.TransportError) as exc:
                raise self._error(exc, model, streaming=False) from None
        raise common.bad_response(self._where, "the server kept rejecting the request parameters")

    def _adapt(self, exc: openai.APIStatusError, max_tokens: int | None) -> bool:
        """True when the 400/422 names a parameter we can drop or rename (then retry)."""
        if exc.status_code not in (400, 422):
            return False
        text = f"{exc.message} {exc.body}".lower()
        if self._include_usage and "stream_options" in text:
            self._include_usage = False  # usage will show as unknown
            return True
        if (max_tokens is not None and self._max_tokens_param == "max_tokens"
                and "max_completion_tokens" in text and "max_tokens" in text.replace("max_completion_tokens", "")):
            self._max_tokens_param = "max_completion_tokens"
            return True
        return False

    def _events(self, sdk_stream: openai.Stream[Any], content_type: str | None, model: str) -> Iterator[Event]:
        import json

        import httpx2
        import openai

        state = _State()
        try:
            for chunk in sdk_stream:
                state.chunks += 1
                yield from _chunk_events(chunk, state)
        except (openai.APIError, httpx2.TransportError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            # The SSE decoder lets malformed JSON and invalid UTF-8 through raw.
            if state.finish_raw is not None:
                pass  # the reply was complete; only the usage chunk or [DONE] went missing
            elif state.content or state.refusal:
                if state.usage is not None:
                    yield state.usage
                yield Finish("error", raw=_error_raw(exc), detail=self._midstream_detail(exc))
                return
            else:
                raise self._error(exc, model, streaming=True) from None
        if state.finish_raw is None and not state.content and not state.refusal:
            if state.chunks == 0:  # `[DONE]` alone, an empty body, JSON or anything not SSE
                raise common.not_a_stream(self._where, content_type,
                                         empty=sdk_stream.response.num_bytes_downloaded == 0)
            raise common.bad_response(self._where, "the stream ended before any reply text")
        if state.usage is not None:
            yield state.usage
        yield _finish(state)

    # -- errors -----------------------------------------------------------------------------

    def _status_error(self, exc: openai.APIStatusError, model: str) -> ProviderError:
        return common.classify_status(
            self._where, status=exc.status_code, body=exc.body, headers=exc.response.headers,
            model=model, etype=exc.type, code=exc.code, fallback=_sdk_message(exc),
            placeholder_key=self._placeholder_key)

    def _error(self, exc: BaseException, model: str, *, streaming: bool) -> ProviderError:
        """Any failure before content, as a classified ProviderError."""
        import httpx2
        import openai

        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc, model)
        if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException)):
            return common.timeout_error(self._where, streaming=streaming)
        if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError)):
            if (scheme := common.bad_scheme(exc)) is not None:
                return common.invalid_base_url(self._where, scheme)
            return common.connection_error(self._where, exc, streaming=streaming)
        if isinstance(exc, openai.APIError):  # `data: {"error": ...}` inside the 200 stream
            return common.classify_status(
                self._where, status=None, body=exc.body, model=model, etype=exc.type, code=exc.code,
                fallback=exc.message, placeholder_key=self._placeholder_key)
        return common.bad_response(self._where, common.malformed_detail(exc))

    def _midstream_detail(self, exc: BaseException) -> str:
        import openai

        if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIConnectionError):
            return common.event_error_detail(self._where, body=exc.body, etype=exc.type, code=exc.code,
                                             fallback=exc.message)
        return common.stream_failure_detail(exc, self._where)


def _wire_messages(messages: Sequence[Message], system: str | None) -> list[dict[str, str]]:
    wire = [{"role": "system", "content": system}] if system else []
    wire += [{"role": m.role, "content": m.content} for m in messages]
    return wire


def _chunk_events(chunk: Any, state: _State) -> Iterator[Event]:
    # The SDK builds chunks without validation (`construct_type`): fields can be missing or
    # of another type on a compatible server, hence getattr and isinstance throughout.
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        state.usage = Usage(common.usage_int(getattr(usage, "prompt_tokens", None)),
                            common.usage_int(getattr(usage, "completion_tokens", None)))
    # `choices` is [] on the usage chunk and on Azure's first chunk (prompt_filter_results).
    for choice in getattr(chunk, "choices", None) or ():
        if getattr(choice, "index", 0) != 0:
            continue  # chatcli never asks for n>1; other choices are not shown
        delta = getattr(choice, "delta", None)
        if delta is not None:
            yield from _delta_events(delta, state)
        reason = getattr(choice, "finish_reason", None)
        if reason:
            state.finish_raw = str(reason)


def _delta_events(delta: Any, state: _State) -> Iterator[Event]:
    reasoning = _extra_text(delta)
    if reasoning:
        state.content = True
        yield ReasoningDelta(reasoning)
    content = getattr(delta, "content", None)
    if isinstance(content, str) and content:
        state.content = True
        yield TextDelta(content)
    refusal = getattr(delta, "refusal", None)
    if isinstance(refusal, str) and refusal:
        state.refusal.append(refusal)  # shown as the finish detail, not as reply text
    if getattr(delta, "tool_calls", None) or getattr(delta, "function_call", None):
        state.tool_call = True  # argument fragments are JSON pieces: never shown as text


def _extra_text(delta: Any) -> str | None:
    extra = getattr(delta, "model_extra", None) or {}
    for name in _REASONING_FIELDS:
        value = extra.get(name) if isinstance(extra, dict) else None
        if value is None:
            value = getattr(delta, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _finish(state: _State) -> Finish:
    if state.refusal:
        return Finish("content_filter", raw="refusal", detail="".join(state.refusal).strip())
    raw = state.finish_raw
    if raw is None:
        return Finish("incomplete", detail="the stream ended without a finish reason")
    # An unknown value (llama.cpp/TGI `eos`, ...) is still the server saying the reply is done:
    # `stop`, with the raw value kept for the footer and the history.
    reason = _FINISH.get(raw, "stop")
    if reason == "stop" and state.tool_call:
        reason = "tool_calls"  # Ollama and others say `stop` after a tool call
    return Finish(reason, raw=raw)


def _error_raw(exc: BaseException) -> str | None:
    """The server's own error type/code for an in-stream error event; None for transport faults."""
    import openai

    if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIConnectionError):
        facts = common.error_facts(exc.body)
        return exc.type or exc.code or facts.type or facts.code or "error"
    return None


def _sdk_message(exc: Any) -> str:
    """The SDK's message minus its "Error code: 400 - " prefix (the body is parsed separately)."""
    message = str(getattr(exc, "message", "") or "")
    if message.startswith("Error code:"):
        return message.split(" - ", 1)[1] if " - " in message else ""
    return message


_CLIENT_CLASS: type | None = None


def _client_class() -> type[openai.OpenAI]:
    """`openai.OpenAI` whose SSE decoder follows the SSE spec on empty events.

    The SDK's decoder dispatches an event with an EMPTY data buffer once an `id:` field was seen
    (it keeps `last_event_id` set), so a `: keep-alive` comment after an event with an id becomes
    an empty `data` that the SDK then feeds to `json.loads` -> "malformed stream". The spec
    (html.spec.whatwg.org, "dispatch the event": "If the data buffer is an empty string, ...
    return") never dispatches such an event; this decoder drops it.
    """
    global _CLIENT_CLASS
    import openai

    if _CLIENT_CLASS is None:
        try:
            from openai._streaming import SSEDecoder
        except ImportError:  # a future SDK moved it: keep its own behaviour
            _CLIENT_CLASS = openai.OpenAI
            return _CLIENT_CLASS

        class _Decoder(SSEDecoder):
            def decode(self, line: str):  # type: ignore[no-untyped-def]
                event = super().decode(line)
                if event is not None and not event.data and not event.event:
                    return None
                return event

        class _OpenAI(openai.OpenAI):
            def _make_sse_decoder(self):  # type: ignore[no-untyped-def]
                return _Decoder()

        _CLIENT_CLASS = _OpenAI
    return _CLIENT_CLASS
