"""OpenAI Chat Completions streaming — also every OpenAI-compatible server (Ollama, vLLM,
llama.cpp server, LM Studio, OpenRouter, Azure-style gateways).

The SDK (`openai` 3.x on `httpx2`) is imported on first use only. Wire quirks handled here
(docs/architecture.md, "OpenAI streaming", "Retries and timeouts"):

* chunks with `choices: []` — the usage chunk, Azure's first `prompt_filter_results` chunk;
* `delta.refusal` text, `reasoning_content`/`reasoning` extra fields;
* tool-call fragments, put together by `_toolcalls.py` (not the SDK's helper: compatible servers
  repeat ids and names, drop or repeat `index`, send arguments as objects);
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
    ToolSpec,
    Usage,
)
from chatcli.providers import _common as common
from chatcli.providers._client import SDKClientProvider

if TYPE_CHECKING:
    import httpx2
    import openai
    from openai.types.chat import ChatCompletionMessageParam

    from chatcli.providers._toolcalls import ToolCallAccumulator
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
    "eos": "stop",  # llama.cpp and TGI: the end-of-sequence token
    "eos_token": "stop",  # TGI
    "stop_sequence": "stop",  # TGI, and gateways that pass Anthropic's values through
    "end_turn": "stop",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
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
    # Built at the first tool-call fragment: the module costs ~3 ms to import on the way to the
    # first prompt (measured with -X importtime), and most replies have no tool call.
    calls_: ToolCallAccumulator | None = None

    @property
    def calls(self) -> ToolCallAccumulator:
        if self.calls_ is None:
            from chatcli.providers._toolcalls import ToolCallAccumulator

            self.calls_ = ToolCallAccumulator()
        return self.calls_

    def has_calls(self) -> bool:
        return self.calls_ is not None and bool(self.calls_)


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
              max_tokens: int | None, temperature: float | None,
              tools: Sequence[ToolSpec] | None = None) -> openai.Stream[Any]:
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
                    tools=cast("Any", _wire_tools(tools)) if tools else openai.omit,
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
            elif state.content or state.refusal or state.has_calls():
                # A half-streamed tool call is never yielded as a `ToolCall`: nothing runs it.
                if state.usage is not None:
                    yield state.usage
                yield Finish("error", raw=_error_raw(exc), detail=self._midstream_detail(exc))
                return
            else:
                raise self._error(exc, model, streaming=True) from None
        if state.finish_raw is None and not state.content and not state.refusal and not state.has_calls():
            if state.chunks == 0:  # `[DONE]` alone, an empty body, JSON or anything not SSE
                raise common.not_a_stream(self._where, content_type,
                                         empty=sdk_stream.response.num_bytes_downloaded == 0)
            raise common.bad_response(self._where, "the stream ended before any reply text")
        if state.usage is not None:
            yield state.usage
        finish = _finish(state)
        if finish.reason == "tool_calls" and state.calls_ is not None:
            yield from (ToolCall(call) for call in state.calls_.calls())
        yield finish

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


def _wire_messages(messages: Sequence[Message], system: str | None) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in messages:
        wire += _wire_message(m) if m.parts else [{"role": m.role, "content": m.content}]
    return wire


def _wire_message(m: Message) -> list[dict[str, Any]]:
    """A message with parts in Chat Completions' shape (one message, or one per tool result)."""
    if m.role == "tool":
        # One `role: tool` message per result, each naming its call. The API has no error flag:
        # the result's text says what went wrong.
        return [{"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in m.tool_results]
    if m.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": m.content}
        if m.tool_calls:
            # `content: ""` rather than null: llama-cpp-python's server answers null with a 500.
            out["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}}
                                 for c in m.tool_calls]
        return [out]
    content: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
    for part in m.parts:
        if isinstance(part, ImagePart):
            url = part.url or _data_url(part.media_type, part.data or b"")
            content.append({"type": "image_url", "image_url": {"url": url}})
        elif isinstance(part, DocumentPart):
            content.append({"type": "file", "file": {
                "filename": part.name or "document.pdf",
                "file_data": _data_url(part.media_type or "application/pdf", part.data)}})
    return [{"role": m.role, "content": content}]


def _data_url(media_type: str, data: bytes) -> str:
    from chatcli.attachments import base64_text  # built in place: a lower peak than b64encode().decode()

    return base64_text(data, f"data:{media_type};base64,")


def _wire_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    # No `tool_choice`: `auto` is the API's default once tools are sent, and servers differ on
    # an explicit one (vLLM refuses `auto` unless started with --enable-auto-tool-choice).
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in tools]


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
    # Argument fragments are JSON pieces: shown as tool-call deltas, never as text. Whether the
    # reply ends with calls is decided by the calls collected, not by `finish_reason` (see _finish).
    for fragment in getattr(delta, "tool_calls", None) or ():
        yield from state.calls.add(fragment)
    function_call = getattr(delta, "function_call", None)
    if function_call:
        yield from state.calls.add_function_call(function_call)
    if state.has_calls():
        state.tool_call = True


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
    reason = _FINISH.get(raw)
    if state.tool_call and reason in ("stop", None):
        reason = "tool_calls"  # Ollama and others say `stop` after a tool call: the calls decide
    if reason is None:
        # A value chatcli does not know is no promise that the reply is complete: partial, with
        # the raw value shown (the footer) and kept (the history).
        return Finish("incomplete", raw=raw, detail=common.unknown_finish_detail(raw))
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
