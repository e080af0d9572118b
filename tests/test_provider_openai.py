"""OpenAIProvider against the loopback SSE server, through the real `openai` SDK (nothing patched)."""

from __future__ import annotations

import email.utils
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import Any, cast

import pytest

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, Message, ReasoningDelta, Retrying, TextDelta, Usage
from chatcli.providers.openai import OpenAIProvider
from chatcli.redact import Secret
from chatcli.settings import ProviderConfig
from tests.support import provider_checks
from tests.support.provider_checks import finish_of, text_of
from tests.support.sse_server import (
    Reply,
    Sleep,
    SSEServer,
    Write,
    comment,
    openai_chunk,
    openai_chunks,
    openai_error,
    split_bytes,
    sse,
)

pytestmark = pytest.mark.timeout(20)

CANARY = "sk-canary-0123456789abcdef"
HELLO = [Message("user", "hi")]


def make_config(server: SSEServer | None, **overrides: Any) -> ProviderConfig:
    base = ProviderConfig(
        name="openai", type="openai",
        base_url=server.openai_url if server else None,
        api_key=Secret(CANARY), api_key_env="OPENAI_API_KEY",
        headers=(("X-Custom", Secret("custom-value")),),
        timeout=2.0, connect_timeout=1.0,
    )
    return replace(base, **overrides)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[SSEServer]:
    with SSEServer() as server:
        yield server


@pytest.fixture(scope="module")
def shared_provider(shared_server: SSEServer) -> Iterator[OpenAIProvider]:
    # Building an SDK client costs ~0.1 s (TLS setup), so the stateless tests share one.
    p = OpenAIProvider(make_config(shared_server))
    yield p
    p.close()


@pytest.fixture
def sse_server(shared_server: SSEServer) -> SSEServer:
    return shared_server.reset()


@pytest.fixture
def provider(shared_provider: OpenAIProvider, sse_server: SSEServer) -> OpenAIProvider:
    return shared_provider


@pytest.fixture
def fresh(sse_server: SSEServer) -> Iterator[OpenAIProvider]:
    """A provider of its own, for tests that change what a provider remembers."""
    p = OpenAIProvider(make_config(sse_server))
    yield p
    p.close()


def run(p: OpenAIProvider, messages: list[Message] | None = None, **kw: Any) -> list[Event]:
    kw.setdefault("model", "gpt-test")
    return list(p.stream(messages or HELLO, **kw))




def expect_error(p: OpenAIProvider, kind: str, **kw: Any) -> ProviderError:
    return provider_checks.expect_error(lambda: run(p, **kw), kind, canary=CANARY, provider="openai")


# -- normal streams ---------------------------------------------------------------------------


def test_normal_stream_with_usage(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(openai_chunks(["Hel", "lo, ", "world"], usage=(12, 3))))
    events = run(provider)
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("Hel"), TextDelta("lo, "), TextDelta("world")]
    assert Usage(12, 3) in events
    assert finish_of(events) == Finish("stop", raw="stop")
    assert events[-2] == Usage(12, 3)


def test_request_carries_system_history_limits_and_headers(
        provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(openai_chunks(["ok"])))
    history = [Message("user", "one"), Message("assistant", "two"), Message("user", "three")]
    run(provider, history, system="be brief", max_tokens=77, temperature=0.25, model="gpt-x")
    (req,) = sse_server.requests
    assert req.method == "POST" and req.path == "/v1/chat/completions"
    body = req.json
    assert body["model"] == "gpt-x"
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    assert body["max_tokens"] == 77 and "max_completion_tokens" not in body
    assert body["temperature"] == 0.25
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert req.headers["authorization"] == f"Bearer {CANARY}"
    assert req.headers["x-custom"] == "custom-value"
    assert req.headers["x-stainless-retry-count"] == "0"


def test_optional_parameters_are_left_out(sse_server: SSEServer) -> None:
    p = OpenAIProvider(make_config(sse_server, include_usage=False))
    sse_server.add(Reply.sse(openai_chunks(["ok"])))
    run(p)
    body = sse_server.requests[0].json
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    for key in ("max_tokens", "temperature", "stream_options", "max_completion_tokens"):
        assert key not in body
    p.close()


@pytest.mark.parametrize(("raw", "reason"), [
    ("stop", "stop"),
    ("length", "length"),
    ("content_filter", "content_filter"),
    ("tool_calls", "tool_calls"),
    ("function_call", "tool_calls"),
    ("eos", "stop"),  # llama.cpp / TGI: the end-of-sequence token, raw kept
    ("eos_token", "stop"),
    ("end_turn", "stop"),
])
def test_finish_reason_mapping(provider: OpenAIProvider, sse_server: SSEServer,
                               raw: str, reason: str) -> None:
    sse_server.add(Reply.sse(openai_chunks(["abc"], finish=raw)))
    events = run(provider)
    assert text_of(events) == "abc"
    assert finish_of(events) == Finish(reason, raw=raw)  # type: ignore[arg-type]


def test_unknown_finish_reason_is_partial_and_kept_raw(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    # Not a promise of completeness (issue 16): `incomplete`, the raw value kept and explained.
    sse_server.add(Reply.sse(openai_chunks(["abc"], finish="weird")))
    finish = finish_of(run(provider))
    assert (finish.reason, finish.raw) == ("incomplete", "weird")
    assert "does not know (weird)" in (finish.detail or "")


def test_empty_choices_chunks_are_skipped(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    azure_first = openai_chunk(choices=[], prompt_filter_results=[{"prompt_index": 0, "content_filter_results": {}}])
    sse_server.add(Reply.sse([azure_first, *openai_chunks(["a", "b"], usage=(1, 2))]))
    events = run(provider)
    assert text_of(events) == "ab"
    assert finish_of(events) == Finish("stop", raw="stop")
    assert Usage(1, 2) in events


def test_only_the_first_choice_is_rendered(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    chunks = [openai_chunk({"content": "zero"}), openai_chunk({"content": "ONE"}, index=1),
              openai_chunk({}, finish="stop", index=1), openai_chunk({}, finish="length"), sse("[DONE]")]
    sse_server.add(Reply.sse(chunks))
    events = run(provider)
    assert text_of(events) == "zero"
    assert finish_of(events) == Finish("length", raw="length")


def test_refusal_becomes_content_filter_with_the_text(
        provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(openai_chunks([], refusal=["I'm sorry, ", "I can't help with that."])))
    events = run(provider)
    assert text_of(events) == ""
    assert finish_of(events) == Finish("content_filter", raw="refusal",
                                       detail="I'm sorry, I can't help with that.")


def test_reasoning_fields_become_reasoning_deltas(
        provider: OpenAIProvider, sse_server: SSEServer) -> None:
    chunks = [openai_chunk({"reasoning_content": "think "}), openai_chunk({"reasoning": "more"}),
              *openai_chunks(["answer"], role_chunk=False)]
    sse_server.add(Reply.sse(chunks))
    events = run(provider)
    assert [e for e in events if isinstance(e, ReasoningDelta)] == [ReasoningDelta("think "), ReasoningDelta("more")]
    assert text_of(events) == "answer"
    assert finish_of(events).reason == "stop"


def test_tool_calls_are_not_shown(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(openai_chunks([], tool_call=True, finish="tool_calls")))
    events = run(provider)
    assert text_of(events) == ""
    assert not any(isinstance(e, ReasoningDelta) for e in events)
    assert finish_of(events) == Finish("tool_calls", raw="tool_calls")


def test_tool_call_then_stop_is_still_tool_calls(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(openai_chunks(["Let me check."], tool_call=True, finish="stop")))
    events = run(provider)
    assert text_of(events) == "Let me check."
    assert finish_of(events) == Finish("tool_calls", raw="stop")


@pytest.mark.parametrize("done", [True, False])
def test_no_finish_reason_is_incomplete(provider: OpenAIProvider, sse_server: SSEServer,
                                        done: bool) -> None:
    sse_server.add(Reply.sse(openai_chunks(["partial ", "text"], finish=None, done=done)))
    events = run(provider)
    assert text_of(events) == "partial text"
    assert finish_of(events).reason == "incomplete"


# -- wire-level details -----------------------------------------------------------------------


def test_multibyte_character_split_across_writes(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    text = "Привет, 世界 🌍!"
    event = openai_chunk({"content": text})
    cut1 = event.index("世".encode()) + 1  # inside the 3-byte character
    cut2 = event.index("🌍".encode()) + 2  # inside the 4-byte emoji
    sse_server.add(Reply.sse([*split_bytes(event, cut1, cut2), *openai_chunks([], role_chunk=False)]))
    events = run(provider)
    assert text_of(events) == text
    assert finish_of(events).reason == "stop"


def test_crlf_comments_and_keepalives(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    chunks = openai_chunks(["line one\n", "line two"], crlf=True, usage=(3, 4))
    sse_server.add(Reply.sse([comment("OPENROUTER PROCESSING"), chunks[0], comment(), *chunks[1:]]))
    events = run(provider)
    assert text_of(events) == "line one\nline two"
    assert Usage(3, 4) in events
    assert finish_of(events).reason == "stop"


# -- failures after some text -----------------------------------------------------------------


def test_error_event_after_text(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    chunks = openai_chunks(["Hello"], finish=None, done=False)
    sse_server.add(Reply.sse([*chunks, openai_error("upstream timed out", code=504), sse("[DONE]")]))
    events = run(provider)
    assert text_of(events) == "Hello"
    finish = finish_of(events)
    assert finish.reason == "error" and finish.raw == "504"
    assert finish.detail == "mid-stream: server error (HTTP 504): upstream timed out"


def test_ollama_string_error_after_text(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    chunks = openai_chunks(["Hi"], finish=None, done=False)
    sse_server.add(Reply.sse([*chunks, sse({"error": "llama runner process has terminated"})]))
    events = run(provider)
    assert text_of(events) == "Hi"
    finish = finish_of(events)
    assert finish.reason == "error"
    assert finish.detail is not None and "llama runner process has terminated" in finish.detail


def test_malformed_json_after_text(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    chunks = openai_chunks(["Good"], finish=None, done=False)
    sse_server.add(Reply.sse([*chunks, b"data: {not json\n\n", *openai_chunks(["never"])]))
    events = run(provider)
    assert text_of(events) == "Good"
    assert finish_of(events) == Finish("error", detail="malformed stream from the server (invalid JSON)")


def test_invalid_utf8_after_text(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    chunks = openai_chunks(["Good"], finish=None, done=False)
    sse_server.add(Reply.sse([*chunks, b'data: {"x": "\xff\xfe"}\n\n']))
    events = run(provider)
    assert text_of(events) == "Good"
    assert finish_of(events) == Finish("error", detail="malformed stream from the server (invalid UTF-8)")


def test_connection_cut_after_text(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(openai_chunks(["Some ", "text"], finish=None, done=False), cut=True))
    events = run(provider)
    assert text_of(events) == "Some text"
    finish = finish_of(events)
    assert finish.reason == "error"
    assert finish.detail is not None and finish.detail.startswith("connection lost")


def test_stall_after_text_times_out(sse_server: SSEServer) -> None:
    p = OpenAIProvider(make_config(sse_server, timeout=0.5))
    sse_server.add(Reply.sse(openai_chunks(["Wait"], finish=None, done=False), stall=5))
    started = time.monotonic()
    events = run(p)
    assert time.monotonic() - started < 3
    assert text_of(events) == "Wait"
    assert finish_of(events) == Finish("error", detail="connection lost: no data from the server for 0.5s")
    p.close()


def test_failure_after_the_finish_reason_keeps_the_reply_complete(
        provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(openai_chunks(["Done."], done=False), cut=True))
    events = run(provider)
    assert text_of(events) == "Done."
    assert finish_of(events) == Finish("stop", raw="stop")


# -- failures before any text -----------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "kind", "needle"), [
    (401, {"message": f"Incorrect API key provided: {CANARY}", "type": "invalid_request_error",
           "code": "invalid_api_key"}, "auth", "check the API key in $OPENAI_API_KEY"),
    (403, {"message": "Project does not have access", "type": "invalid_request_error", "code": None},
     "auth", "check the API key in $OPENAI_API_KEY"),
    (404, {"message": "The model `gpt-test` does not exist", "type": "invalid_request_error",
           "code": "model_not_found"}, "not_found", "chatcli models"),
    (429, {"message": "You exceeded your current quota", "type": "insufficient_quota",
           "code": "insufficient_quota"}, "quota", "billing"),
    (500, {"message": "The server had an error", "type": "server_error", "code": None}, "server", "HTTP 500"),
    (503, {"message": "Service unavailable", "type": "server_error", "code": None}, "overloaded", "HTTP 503"),
    (529, {"message": "Overloaded", "type": "overloaded_error", "code": None}, "overloaded", "HTTP 529"),
    (400, {"message": "This model's maximum context length is 8192 tokens. However, your messages "
                      "resulted in 9000 tokens.", "type": "invalid_request_error",
           "code": "context_length_exceeded"}, "context_length", "context window"),
    (400, {"message": "Invalid value for 'temperature'", "type": "invalid_request_error", "code": None},
     "bad_request", "Invalid value"),
])
def test_http_errors_are_classified(provider: OpenAIProvider, sse_server: SSEServer,
                                    status: int, body: dict[str, Any], kind: str, needle: str) -> None:
    sse_server.add(Reply.json({"error": body}, status=status))
    err = expect_error(provider, kind)
    assert err.status == status
    assert needle in err.message
    assert sse_server.url + "/v1" in err.message
    assert len(sse_server.requests) == 1  # never retried inside the SDK
    if kind == "not_found":
        assert "'gpt-test'" in err.message


def test_non_json_error_bodies(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.raw(b"<html><body><h1>502 Bad Gateway</h1></body></html>", status=502,
                             content_type="text/html"),
                   Reply.raw(b"", status=500))
    err = expect_error(provider, "server")
    assert err.message.endswith("server error (HTTP 502): an HTML error page")
    err = expect_error(provider, "server")
    assert err.message.endswith("server error (HTTP 500)")


def test_a_token_rate_limit_is_not_a_context_error(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.error(429, "Rate limit reached on tokens per min (TPM): too many tokens, "
                                    "maximum context length unaffected", code="rate_limit_exceeded"))
    expect_error(provider, "rate_limited")


def test_the_key_echoed_by_the_server_is_redacted(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.error(401, f"bad key {CANARY} and custom-value", code="invalid_api_key"))
    err = expect_error(provider, "auth")
    assert "custom-value" not in err.message  # a secret header value is redacted too


@pytest.mark.parametrize(("headers", "expected"), [
    ((("retry-after", "7"),), 7.0),
    ((("retry-after-ms", "1500"), ("retry-after", "9")), 1.5),
])
def test_429_retry_after(provider: OpenAIProvider, sse_server: SSEServer,
                         headers: tuple[tuple[str, str], ...], expected: float) -> None:
    sse_server.add(Reply.error(429, "Rate limit reached", code="rate_limit_exceeded", headers=headers))
    err = expect_error(provider, "rate_limited")
    assert err.retryable and err.retry_after == expected


def test_429_retry_after_http_date(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    sse_server.add(Reply.error(429, "slow down", headers=(("Retry-After", when),)))
    err = expect_error(provider, "rate_limited")
    assert err.retry_after is not None and 27 <= err.retry_after <= 31


def test_long_server_text_is_truncated(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.error(400, "x" * 5000 + "\nsecond line"))
    err = expect_error(provider, "bad_request")
    assert len(err.message) < 400


@pytest.mark.parametrize(("payload", "kind"), [
    (openai_error("upstream timed out", code=504), "server"),
    (openai_error("Overloaded", type="overloaded_error"), "overloaded"),
    (openai_error("the request exceeds the available context size", code=400), "context_length"),
    (sse({"error": "model 'llama9' not found, try pulling it first"}), "not_found"),
])
def test_error_event_before_text_is_classified(provider: OpenAIProvider, sse_server: SSEServer,
                                               payload: bytes, kind: str) -> None:
    sse_server.add(Reply.sse([openai_chunk({"role": "assistant", "content": ""}), payload, sse("[DONE]")]))
    expect_error(provider, kind)


def test_html_200_is_a_bad_response(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.html())
    err = expect_error(provider, "bad_response")
    assert "text/html" in err.message and sse_server.openai_url in err.message


def test_json_200_is_a_bad_response(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.json({"id": "x", "choices": [{"message": {"content": "hi"}}]}))
    err = expect_error(provider, "bad_response")
    assert "not an event stream (content-type application/json)" in err.message


@pytest.mark.parametrize("events", [[sse("[DONE]")], []])
def test_done_only_or_empty_stream_is_a_bad_response(provider: OpenAIProvider, sse_server: SSEServer,
                                                     events: list[bytes]) -> None:
    sse_server.add(Reply.sse(events))
    err = expect_error(provider, "bad_response")
    assert "empty response" in err.message


def test_malformed_json_before_text(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse([b"data: {not json\n\n"]))
    err = expect_error(provider, "bad_response")
    assert "invalid JSON" in err.message


def test_invalid_utf8_before_text(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse([b'data: {"choices": "\xc3\x28"}\n\n']))
    err = expect_error(provider, "bad_response")
    assert "invalid UTF-8" in err.message


def test_connection_cut_before_text(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse([openai_chunk({"role": "assistant", "content": ""})], cut=True))
    err = expect_error(provider, "connection")
    assert err.retryable


def test_stall_before_text_times_out(sse_server: SSEServer) -> None:
    p = OpenAIProvider(make_config(sse_server, timeout=0.5))
    sse_server.add(Reply.sse([comment()], stall=5))
    started = time.monotonic()
    err = expect_error(p, "timeout")
    assert time.monotonic() - started < 3
    assert "0.5s" in err.message and err.retryable
    p.close()


def test_wrong_port_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    p = OpenAIProvider(make_config(None, base_url=url))
    err = expect_error(p, "connection")
    assert f"cannot connect to {url}" in err.message
    assert "connection refused" in err.message
    p.close()


@pytest.mark.parametrize("url", ["localhost:11434/v1", "ftp://127.0.0.1/v1", "http://[::1"])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_unusable_base_url_is_not_a_retryable_network_error(url: str, kind: str) -> None:
    from chatcli.providers.anthropic import AnthropicProvider

    cls = OpenAIProvider if kind == "openai" else AnthropicProvider
    p = cls(make_config(None, base_url=url, type=kind, name=kind))
    p.warm()  # must not raise
    with pytest.raises(ProviderError) as info:
        list(p.stream(HELLO, model="m"))
    assert info.value.kind == "bad_request" and not info.value.retryable
    assert "invalid base URL" in info.value.message
    p.close()


def test_redirect_is_not_followed_and_the_key_stays_put(
        provider: OpenAIProvider, sse_server: SSEServer) -> None:
    with SSEServer() as other:
        other.add(Reply.sse(openai_chunks(["stolen"])))
        sse_server.add(Reply.redirect(other.openai_url + "/chat/completions"))
        err = expect_error(provider, "bad_response")
        assert other.requests == []  # nothing, so no key, reached the other host
    assert f"127.0.0.1:{other.port}" in err.message and "redirect" in err.message


@pytest.mark.parametrize("status", [400, 422])
def test_stream_options_rejected_is_retried_without_it(fresh: OpenAIProvider, sse_server: SSEServer,
                                                       status: int) -> None:
    sse_server.add(Reply.error(status, "Unrecognized request argument supplied: stream_options"),
                   Reply.sse(openai_chunks(["fine"])), Reply.sse(openai_chunks(["again"])))
    events = run(fresh)
    assert text_of(events) == "fine" and finish_of(events).reason == "stop"
    first, second = sse_server.requests
    assert first.json["stream_options"] == {"include_usage": True}
    assert "stream_options" not in second.json
    assert second.json["messages"] == first.json["messages"]
    run(fresh)  # remembered for this provider
    assert len(sse_server.requests) == 3 and "stream_options" not in sse_server.requests[2].json


def test_max_tokens_rejected_switches_to_max_completion_tokens(
        fresh: OpenAIProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                    "Use 'max_completion_tokens' instead.", code="unsupported_parameter"),
                   Reply.sse(openai_chunks(["ok"])))
    assert text_of(run(fresh, max_tokens=50)) == "ok"
    first, second = sse_server.requests
    assert first.json["max_tokens"] == 50
    assert second.json["max_completion_tokens"] == 50 and "max_tokens" not in second.json


# -- keys -------------------------------------------------------------------------------------


def test_missing_key_for_the_vendor_endpoint_fails_before_any_network() -> None:
    p = OpenAIProvider(make_config(None, api_key=None, headers=()))
    p.warm()  # must not raise: warm() runs in a background thread
    err = expect_error(p, "auth")
    assert err.message == "openai: no API key: set OPENAI_API_KEY"


def test_compatible_server_without_key_gets_a_placeholder(sse_server: SSEServer) -> None:
    p = OpenAIProvider(make_config(sse_server, name="ollama", api_key=None, api_key_env="OLLAMA_API_KEY"))
    sse_server.add(Reply.sse(openai_chunks(["local"])), Reply.error(401, "missing key"))
    assert text_of(run(p)) == "local"
    assert sse_server.requests[0].headers["authorization"] == "Bearer not-needed"
    with pytest.raises(ProviderError) as info:
        run(p)
    assert info.value.kind == "auth"
    assert "the server wants an API key" in info.value.message and "set OLLAMA_API_KEY" in info.value.message
    p.close()


# -- cancellation, warm-up, imports -----------------------------------------------------------


def test_closing_the_stream_closes_the_connection(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    chunks = openai_chunks(["first ", "second"], finish=None, done=False)
    sse_server.add(Reply.sse([*chunks, Sleep(8), *openai_chunks(["late"])]))
    gen = cast(Generator[Event, None, None], provider.stream(HELLO, model="gpt-test"))
    assert next(gen) == TextDelta("first ")
    closed_at = time.monotonic()
    gen.close()
    assert sse_server.wait_disconnect(1.0), "server never saw the client go away"
    assert time.monotonic() - closed_at < 1.0
    assert sse_server.disconnects == [0]


def test_warm_rehearses_a_reply_in_memory_and_sends_nothing(sse_server: SSEServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    p = OpenAIProvider(make_config(sse_server))
    try:
        provider_checks.check_rehearsal(p, sse_server, Reply.sse(openai_chunks(["real ", "reply"])), CANARY,
                                        monkeypatch)
    finally:
        p.close()


def test_a_failed_rehearsal_is_harmless(sse_server: SSEServer) -> None:
    p = OpenAIProvider(make_config(sse_server))
    try:
        provider_checks.check_failed_rehearsal_is_harmless(p, sse_server, Reply.sse(openai_chunks(["real ", "reply"])))
    finally:
        p.close()


def test_warm_is_thread_safe_and_builds_one_client(sse_server: SSEServer) -> None:
    p = OpenAIProvider(make_config(sse_server))
    threads = [threading.Thread(target=p.warm) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client = p._client
    assert client is not None
    p.warm()
    assert p._client is client
    p.close()


def test_importing_the_providers_does_not_import_the_sdks() -> None:
    code = ("import sys, chatcli.providers.openai, chatcli.providers.anthropic, chatcli.providers._common;"
            "bad = [m for m in ('openai', 'anthropic', 'httpx2') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the session, end to end with the real provider ------------------------------------------


def test_session_retries_a_429_with_visible_waits(provider: OpenAIProvider, sse_server: SSEServer) -> None:
    from chatcli.session import Session

    sse_server.add(Reply.error(429, "Rate limit reached", code="rate_limit_exceeded",
                               headers=(("retry-after", "2"),)),
                   Reply.sse(openai_chunks(["after ", "retry"], usage=(4, 2))))
    waits: list[float] = []
    session = Session(provider, model="gpt-test", sleep=waits.append)
    events = list(session.send("hello"))
    retrying = [e for e in events if isinstance(e, Retrying)]
    assert [(r.attempt, r.delay) for r in retrying] == [(2, 2.0), (2, 1.0)]
    assert "rate limited" in retrying[0].cause
    assert waits == [1.0, 1.0]
    assert text_of(events) == "after retry"  # type: ignore[arg-type]
    assert len(sse_server.requests) == 2
    reply = session.turns[-1]
    assert reply.content == "after retry" and reply.finish_reason == "stop"
    assert (reply.input_tokens, reply.output_tokens) == (4, 2)


def test_session_gives_up_at_once_on_a_long_retry_after(
        provider: OpenAIProvider, sse_server: SSEServer) -> None:
    from chatcli.session import Session

    sse_server.add(Reply.error(429, "Rate limit reached", headers=(("retry-after", "3600"),)))
    waits: list[float] = []
    session = Session(provider, model="gpt-test", sleep=waits.append)
    with pytest.raises(ProviderError) as info:
        list(session.send("hello"))
    assert info.value.kind == "rate_limited"
    assert "3600s" in info.value.message
    assert waits == [] and len(sse_server.requests) == 1


def test_split_writes_really_arrive_separately(sse_server: SSEServer) -> None:
    """Guard for the multibyte test: the server must not coalesce the parts into one write."""
    parts = split_bytes(b"abcdef", 2, 4)
    assert parts == [Write(b"ab"), Write(b"cd", 0.02), Write(b"ef", 0.02)]
