"""AnthropicProvider against the loopback SSE server, through the real `anthropic` SDK (nothing patched)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import Any, cast

import pytest

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, Message, ReasoningDelta, Retrying, TextDelta, Usage
from chatcli.providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicProvider
from chatcli.redact import Secret
from chatcli.settings import ProviderConfig
from tests.support import provider_checks
from tests.support.provider_checks import finish_of, text_of
from tests.support.sse_server import (
    Reply,
    Sleep,
    SSEServer,
    anthropic_error,
    anthropic_event,
    anthropic_events,
    comment,
    split_bytes,
    sse,
)

pytestmark = pytest.mark.timeout(20)

CANARY = "sk-ant-canary-0123456789abcdef"
HELLO = [Message("user", "hi")]


def make_config(server: SSEServer | None, **overrides: Any) -> ProviderConfig:
    base = ProviderConfig(
        name="anthropic", type="anthropic",
        base_url=server.anthropic_url if server else None,
        api_key=Secret(CANARY), api_key_env="ANTHROPIC_API_KEY",
        headers=(("X-Custom", Secret("custom-value")),),
        timeout=2.0, connect_timeout=1.0,
    )
    return replace(base, **overrides)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[SSEServer]:
    with SSEServer() as server:
        yield server


@pytest.fixture(scope="module")
def shared_provider(shared_server: SSEServer) -> Iterator[AnthropicProvider]:
    # Building an SDK client costs ~0.1 s (TLS setup), so the stateless tests share one.
    p = AnthropicProvider(make_config(shared_server))
    yield p
    p.close()


@pytest.fixture
def sse_server(shared_server: SSEServer) -> SSEServer:
    return shared_server.reset()


@pytest.fixture
def provider(shared_provider: AnthropicProvider, sse_server: SSEServer) -> AnthropicProvider:
    return shared_provider


@pytest.fixture
def fresh(sse_server: SSEServer) -> Iterator[AnthropicProvider]:
    """A provider of its own, for tests that change what a provider remembers."""
    p = AnthropicProvider(make_config(sse_server))
    yield p
    p.close()


def run(p: AnthropicProvider, messages: list[Message] | None = None, **kw: Any) -> list[Event]:
    kw.setdefault("model", "claude-test")
    return list(p.stream(messages or HELLO, **kw))




def expect_error(p: AnthropicProvider, kind: str, **kw: Any) -> ProviderError:
    return provider_checks.expect_error(lambda: run(p, **kw), kind, canary=CANARY, provider="anthropic")


def head(texts: list[str]) -> list[bytes]:
    """message_start .. the text deltas, with no message_delta / message_stop."""
    return anthropic_events(texts, stop_reason=None)[:-1]  # drop content_block_stop too


# -- normal streams ---------------------------------------------------------------------------


def test_normal_stream_with_ping_and_usage(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(anthropic_events(["Hel", "lo, ", "world"], usage=(25, 7), ping=True)))
    events = run(provider)
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("Hel"), TextDelta("lo, "), TextDelta("world")]
    assert events[-2] == Usage(25, 7)
    assert finish_of(events) == Finish("stop", raw="end_turn")


def test_request_carries_system_history_limits_and_headers(
        provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(anthropic_events(["ok"])))
    history = [Message("user", "one"), Message("assistant", "two"), Message("user", "three")]
    run(provider, history, system="be brief", max_tokens=77, temperature=0.25, model="claude-x")
    (req,) = sse_server.requests
    assert req.method == "POST" and req.path == "/v1/messages"
    body = req.json
    assert body["model"] == "claude-x"
    assert body["system"] == "be brief"
    assert body["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    assert body["max_tokens"] == 77
    assert body["temperature"] == 0.25
    assert body["stream"] is True
    assert req.headers["authorization"] == f"Bearer {CANARY}"
    assert req.headers["x-custom"] == "custom-value"
    assert "anthropic-version" in req.headers
    assert req.headers["x-stainless-retry-count"] == "0"


def test_defaults_max_tokens_and_leaves_out_system_and_temperature(
        provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(anthropic_events(["ok"])))
    run(provider)
    body = sse_server.requests[0].json
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert "system" not in body and "temperature" not in body


def test_temperature_rejected_is_retried_without_it(
        fresh: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.error(400, "temperature: Extra inputs are not permitted", type="invalid_request_error",
                               dialect="anthropic"),
                   Reply.sse(anthropic_events(["ok"])))
    assert text_of(run(fresh, temperature=0.5)) == "ok"
    first, second = sse_server.requests
    assert first.json["temperature"] == 0.5 and "temperature" not in second.json


def test_prefill_trailing_whitespace_is_stripped(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(anthropic_events([" continued"])), Reply.sse(anthropic_events(["x"])))
    run(provider, [Message("user", "write"), Message("assistant", "The start \n\n ")])
    assert sse_server.requests[0].json["messages"][-1] == {"role": "assistant", "content": "The start"}
    run(provider, [Message("user", "write"), Message("assistant", "  \n")])
    assert sse_server.requests[1].json["messages"] == [{"role": "user", "content": "write"}]
    assert provider.supports_prefill is True


@pytest.mark.parametrize(("raw", "reason"), [
    ("end_turn", "stop"),
    ("stop_sequence", "stop"),
    ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"),
    ("tool_use", "tool_calls"),
    ("pause_turn", "pause_turn"),
    ("refusal", "content_filter"),
])
def test_stop_reason_mapping(provider: AnthropicProvider, sse_server: SSEServer,
                             raw: str, reason: str) -> None:
    sse_server.add(Reply.sse(anthropic_events(["abc"], stop_reason=raw)))
    events = run(provider)
    assert text_of(events) == "abc"
    assert finish_of(events) == Finish(reason, raw=raw)  # type: ignore[arg-type]


def test_unknown_stop_reason_is_partial_and_kept_raw(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    # Not a promise of completeness (issue 16): `incomplete`, the raw value kept and explained.
    sse_server.add(Reply.sse(anthropic_events(["abc"], stop_reason="future_reason")))
    finish = finish_of(run(provider))
    assert (finish.reason, finish.raw) == ("incomplete", "future_reason")
    assert "does not know (future_reason)" in (finish.detail or "")


def test_refusal_carries_the_explanation(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    details = {"type": "refusal", "category": "cyber", "explanation": "This could enable malware."}
    sse_server.add(Reply.sse(anthropic_events([], stop_reason="refusal", stop_details=details)))
    events = run(provider)
    assert finish_of(events) == Finish("content_filter", raw="refusal",
                                       detail="This could enable malware.; category: cyber")


def test_thinking_becomes_reasoning_and_signature_is_hidden(
        provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(anthropic_events(["answer"], thinking=["let me ", "think"])))
    events = run(provider)
    assert [e for e in events if isinstance(e, ReasoningDelta)] == [ReasoningDelta("let me "), ReasoningDelta("think")]
    assert text_of(events) == "answer"
    assert all("c2lnbmF0dXJl" not in getattr(e, "text", "") for e in events)


def test_tool_use_is_not_shown(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(anthropic_events(["Checking."], tool_use=True, stop_reason="tool_use")))
    events = run(provider)
    assert text_of(events) == "Checking."
    assert finish_of(events) == Finish("tool_calls", raw="tool_use")


def test_unknown_events_and_deltas_are_ignored(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    events_ = anthropic_events(["a", "b"])
    extra = [anthropic_event("future_event", data={"x": 1}),
             anthropic_event("content_block_delta", index=0, delta={"type": "citations_delta", "citation": {}}),
             anthropic_event("content_block_delta", index=0, delta={"type": "future_delta", "text": "NO"})]
    sse_server.add(Reply.sse([*events_[:3], *extra, *events_[3:]]))
    events = run(provider)
    assert text_of(events) == "ab"
    assert finish_of(events).reason == "stop"


@pytest.mark.parametrize("message_delta", [True, False])
def test_stream_without_stop_reason_is_incomplete(provider: AnthropicProvider, sse_server: SSEServer,
                                                  message_delta: bool) -> None:
    events_ = head(["partial ", "text"])
    if message_delta:  # message_delta without stop_reason, no message_stop
        events_.append(anthropic_event("message_delta", delta={"stop_reason": None}, usage={"output_tokens": 3}))
    sse_server.add(Reply.sse(events_))
    events = run(provider)
    assert text_of(events) == "partial text"
    assert finish_of(events).reason == "incomplete"


def test_message_stop_missing_after_stop_reason_is_still_complete(
        provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(anthropic_events(["done"], message_stop=False)))
    assert finish_of(run(provider)) == Finish("stop", raw="end_turn")


# -- wire-level details -----------------------------------------------------------------------


def test_multibyte_character_split_across_writes(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    text = "Grüße, 世界 🌍!"
    events_ = anthropic_events([text])
    i = next(n for n, e in enumerate(events_) if "世".encode() in e)
    cut1 = events_[i].index("世".encode()) + 1
    cut2 = events_[i].index("🌍".encode()) + 3
    sse_server.add(Reply.sse([*events_[:i], *split_bytes(events_[i], cut1, cut2), *events_[i + 1:]]))
    events = run(provider)
    assert text_of(events) == text
    assert finish_of(events).reason == "stop"


def test_crlf_and_comments(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    events_ = anthropic_events(["one\n", "two"], crlf=True, usage=(3, 4))
    sse_server.add(Reply.sse([comment(), *events_[:2], comment("still here"), *events_[2:]]))
    events = run(provider)
    assert text_of(events) == "one\ntwo"
    assert Usage(3, 4) in events
    assert finish_of(events).reason == "stop"


def test_cached_input_tokens_are_counted(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    events_ = anthropic_events(["x"], usage=(10, 2))
    start = anthropic_event("message_start", message={
        "id": "m", "type": "message", "role": "assistant", "model": "c", "content": [],
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5,
                  "output_tokens": 1}})
    sse_server.add(Reply.sse([start, *events_[1:]]))
    assert Usage(115, 2) in run(provider)


# -- failures after some text -----------------------------------------------------------------


def test_overloaded_error_event_after_text(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse([*head(["Hello"]), anthropic_error("overloaded_error", "Overloaded")]))
    events = run(provider)
    assert text_of(events) == "Hello"
    assert finish_of(events) == Finish("error", raw="overloaded_error",
                                       detail="mid-stream: the server is overloaded: Overloaded")


def test_malformed_json_after_text(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse([*head(["Good"]), b"event: content_block_delta\ndata: {oops\n\n"]))
    events = run(provider)
    assert text_of(events) == "Good"
    assert finish_of(events) == Finish("error", detail="malformed stream from the server (invalid JSON)")


def test_invalid_utf8_after_text(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse([*head(["Good"]), b'event: content_block_delta\ndata: {"x": "\xff"}\n\n']))
    events = run(provider)
    assert text_of(events) == "Good"
    assert finish_of(events) == Finish("error", detail="malformed stream from the server (invalid UTF-8)")


def test_connection_cut_after_text(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(head(["Some ", "text"]), cut=True))
    events = run(provider)
    assert text_of(events) == "Some text"
    finish = finish_of(events)
    assert finish.reason == "error" and finish.raw is None
    assert finish.detail is not None and finish.detail.startswith("connection lost")


def test_stall_after_text_times_out(sse_server: SSEServer) -> None:
    p = AnthropicProvider(make_config(sse_server, timeout=0.5))
    sse_server.add(Reply.sse(head(["Wait"]), stall=5))
    started = time.monotonic()
    events = run(p)
    assert time.monotonic() - started < 3
    assert text_of(events) == "Wait"
    assert finish_of(events) == Finish("error", detail="connection lost: no data from the server for 0.5s")
    p.close()


# -- failures before any text -----------------------------------------------------------------


@pytest.mark.parametrize(("status", "etype", "message", "kind", "needle"), [
    (401, "authentication_error", f"invalid x-api-key {CANARY}", "auth", "check the API key in $ANTHROPIC_API_KEY"),
    (403, "permission_error", "not allowed", "auth", "check the API key in $ANTHROPIC_API_KEY"),
    (404, "not_found_error", "model: claude-test", "not_found", "chatcli models"),
    (429, "rate_limit_error", "Number of request tokens has exceeded your rate limit", "rate_limited", "HTTP 429"),
    (400, "billing_error", "Your credit balance is too low", "quota", "billing"),
    (500, "api_error", "Internal server error", "server", "HTTP 500"),
    (503, "api_error", "Service unavailable", "overloaded", "HTTP 503"),
    (529, "overloaded_error", "Overloaded", "overloaded", "HTTP 529"),
    (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", "context_length",
     "context window"),
    (400, "invalid_request_error", "messages: roles must alternate", "bad_request", "roles must alternate"),
])
def test_http_errors_are_classified(provider: AnthropicProvider, sse_server: SSEServer,
                                    status: int, etype: str, message: str, kind: str, needle: str) -> None:
    sse_server.add(Reply.error(status, message, type=etype, dialect="anthropic",
                               headers=(("retry-after", "4"),) if status == 429 else ()))
    err = expect_error(provider, kind)
    assert err.status == status
    assert needle in err.message
    assert sse_server.anthropic_url in err.message
    assert len(sse_server.requests) == 1  # never retried inside the SDK
    if status == 429:
        assert err.retry_after == 4.0


def test_retry_after_3600_is_reported_not_slept(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.error(429, "slow down", type="rate_limit_error", dialect="anthropic",
                               headers=(("retry-after", "3600"),)))
    started = time.monotonic()
    err = expect_error(provider, "rate_limited")
    assert time.monotonic() - started < 2 and err.retry_after == 3600.0


@pytest.mark.parametrize(("etype", "kind"), [
    ("overloaded_error", "overloaded"),
    ("rate_limit_error", "rate_limited"),
    ("api_error", "server"),
    ("invalid_request_error", "bad_request"),
])
def test_error_event_before_text_is_classified_by_type(provider: AnthropicProvider, sse_server: SSEServer,
                                                       etype: str, kind: str) -> None:
    sse_server.add(Reply.sse([*head([])[:2], anthropic_error(etype, "went wrong")]))
    err = expect_error(provider, kind)
    assert err.status is None  # the 200 of the stream says nothing about the error
    assert "went wrong" in err.message


def test_html_200_is_a_bad_response(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.html())
    err = expect_error(provider, "bad_response")
    assert "text/html" in err.message


@pytest.mark.parametrize("body", [[], [sse({"type": "ping"}, event="ping")]])
def test_empty_stream_is_a_bad_response(provider: AnthropicProvider, sse_server: SSEServer,
                                        body: list[bytes]) -> None:
    sse_server.add(Reply.sse(body))
    err = expect_error(provider, "bad_response")
    assert "empty response" in err.message


def test_malformed_json_before_text(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse([b"event: message_start\ndata: {nope\n\n"]))
    assert "invalid JSON" in expect_error(provider, "bad_response").message


def test_invalid_utf8_before_text(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse([b'event: message_start\ndata: {"type": "\xc3\x28"}\n\n']))
    assert "invalid UTF-8" in expect_error(provider, "bad_response").message


def test_connection_cut_before_text(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    sse_server.add(Reply.sse(head([])[:1], cut=True))
    assert expect_error(provider, "connection").retryable


def test_stall_before_text_times_out(sse_server: SSEServer) -> None:
    p = AnthropicProvider(make_config(sse_server, timeout=0.5))
    sse_server.add(Reply.sse([sse({"type": "ping"}, event="ping")], stall=5))
    started = time.monotonic()
    err = expect_error(p, "timeout")
    assert time.monotonic() - started < 3 and "0.5s" in err.message
    p.close()


def test_wrong_port_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    p = AnthropicProvider(make_config(None, base_url=url))
    err = expect_error(p, "connection")
    assert f"cannot connect to {url}" in err.message
    p.close()


def test_redirect_is_not_followed_and_no_key_leaves(sse_server: SSEServer) -> None:
    # A gateway key in `x-api-key` is exactly what httpx2 would forward across origins.
    p = AnthropicProvider(make_config(sse_server, headers=(("x-api-key", Secret("gw-secret-987654")),)))
    with SSEServer() as other:
        other.add(Reply.sse(anthropic_events(["stolen"])))
        sse_server.add(Reply.redirect(other.anthropic_url + "/v1/messages", status=308))
        err = expect_error(p, "bad_response")
        assert other.requests == []
    assert f"127.0.0.1:{other.port}" in err.message and "HTTP 308" in err.message
    assert sse_server.requests[0].headers["x-api-key"] == "gw-secret-987654"
    p.close()


def test_missing_key_for_the_vendor_endpoint_fails_before_any_network() -> None:
    p = AnthropicProvider(make_config(None, api_key=None, headers=()))
    p.warm()
    err = expect_error(p, "auth")
    assert err.message == "anthropic: no API key: set ANTHROPIC_API_KEY"


# -- cancellation and warm-up -----------------------------------------------------------------


def test_closing_the_stream_closes_the_connection(provider: AnthropicProvider, sse_server: SSEServer) -> None:
    events_ = anthropic_events(["first ", "second", "late"])
    sse_server.add(Reply.sse([*events_[:4], Sleep(8), *events_[4:]]))
    gen = cast(Generator[Event, None, None], provider.stream(HELLO, model="claude-test"))
    assert next(gen) == TextDelta("first ")
    closed_at = time.monotonic()
    gen.close()
    assert sse_server.wait_disconnect(1.0), "server never saw the client go away"
    assert time.monotonic() - closed_at < 1.0


def test_warm_rehearses_a_reply_in_memory_and_sends_nothing(sse_server: SSEServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    p = AnthropicProvider(make_config(sse_server))
    try:
        provider_checks.check_rehearsal(p, sse_server, Reply.sse(anthropic_events(["real ", "reply"])), CANARY,
                                        monkeypatch)
    finally:
        p.close()


def test_a_failed_rehearsal_is_harmless(sse_server: SSEServer) -> None:
    p = AnthropicProvider(make_config(sse_server))
    try:
        reply = Reply.sse(anthropic_events(["real ", "reply"]))
        provider_checks.check_failed_rehearsal_is_harmless(p, sse_server, reply)
    finally:
        p.close()


def test_warm_is_thread_safe(sse_server: SSEServer) -> None:
    p = AnthropicProvider(make_config(sse_server))
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


def test_session_retries_a_mid_stream_overload_before_text(
        provider: AnthropicProvider, sse_server: SSEServer) -> None:
    from chatcli.session import Session

    sse_server.add(Reply.sse([*head([])[:2], anthropic_error("overloaded_error", "Overloaded")]),
                   Reply.sse(anthropic_events(["second ", "try"])))
    waits: list[float] = []
    session = Session(provider, model="claude-test", sleep=waits.append)
    events = list(session.send("hello"))
    assert [e.attempt for e in events if isinstance(e, Retrying)] == [2]
    assert waits == [0.5]
    assert text_of(events) == "second try"
    assert session.turns[-1].finish_reason == "stop"
