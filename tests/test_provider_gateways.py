"""Gateways and proxies in front of the APIs (issue 16, item 1), through the real SDKs over HTTP.

An Anthropic-compatible gateway that checks `x-api-key` (the header the Messages API has always
used) must work out of the box although the anthropic 2.x SDK sends the key as
`Authorization: Bearer` only; the config's own `x-api-key` header wins; and a 401 (or 400) that
names a missing header says so instead of blaming a key that is right -- for the OpenAI
dialect's gateways too (Azure-style `api-key`). The loopback server plays the gateway: its
`guard` refuses every request without the header, as such a gateway does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, Message, TextDelta
from chatcli.providers.anthropic import AnthropicProvider
from chatcli.providers.openai import OpenAIProvider
from chatcli.redact import Secret
from chatcli.settings import ProviderConfig
from tests.support.runner import run as run_cli
from tests.support.sse_server import Recorded, Reply, SSEServer, anthropic_events, openai_chunks

pytestmark = pytest.mark.timeout(60)

CANARY = "sk-ant-canary-gw-0123456789abcdef"
HELLO = [Message("user", "hi")]


def requires(header: str, *, dialect: str = "anthropic", echo_key: bool = False) -> Callable[[Recorded], Reply | None]:
    """A gateway's check: 401 "missing HEADER header" unless the request carries it. `echo_key`:
    the error body also quotes the Authorization header it got (some proxies do), key and all."""
    def guard(request: Recorded) -> Reply | None:
        if header in request.headers:
            return None
        said = f"missing {header} header"
        if echo_key:
            said += f" (got authorization: {request.headers.get('authorization', '')})"
        return Reply.error(401, said, type="authentication_error", dialect=dialect)
    return guard


def anthropic_config(server: SSEServer, **overrides: Any) -> ProviderConfig:
    base = ProviderConfig(name="gateway", type="anthropic", base_url=server.anthropic_url,
                          api_key=Secret(CANARY), api_key_env="GATEWAY_KEY", timeout=5.0, connect_timeout=2.0)
    return replace(base, **overrides)


def openai_config(server: SSEServer, **overrides: Any) -> ProviderConfig:
    base = ProviderConfig(name="azure", type="openai", base_url=server.openai_url,
                          api_key=Secret(CANARY), api_key_env="AZURE_KEY", timeout=5.0, connect_timeout=2.0)
    return replace(base, **overrides)


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as s:
        yield s


def run(p: Any, model: str = "claude-x") -> list[Event]:
    try:
        return list(p.stream(HELLO, model=model))
    finally:
        p.close()


def text(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# -- Anthropic-compatible gateways --------------------------------------------------------------


def test_anthropic_gateway_checking_x_api_key_works_out_of_the_box(server: SSEServer) -> None:
    server.guard = requires("x-api-key")
    server.add(Reply.sse(anthropic_events(["through ", "the gateway"])))
    events = run(AnthropicProvider(anthropic_config(server)))
    assert text(events) == "through the gateway"
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"
    sent = server.requests[0].headers
    assert sent["x-api-key"] == CANARY
    assert sent["authorization"] == f"Bearer {CANARY}"  # what the SDK sends stays: both kinds of server work


def test_config_x_api_key_header_wins_in_any_casing(server: SSEServer) -> None:
    server.guard = requires("x-api-key")
    server.add(Reply.sse(anthropic_events(["ok"])))
    cfg = anthropic_config(server, headers=(("X-Api-Key", Secret("gateway-own-key")),))
    assert text(run(AnthropicProvider(cfg))) == "ok"
    sent = server.requests[0].headers
    assert sent["x-api-key"] == "gateway-own-key"  # the config's, not the provider key
    assert [k for k, v in sent.items() if CANARY in v] == ["authorization"]


def test_keyless_gateway_with_its_own_credential_header_gets_no_placeholder_x_api_key(server: SSEServer) -> None:
    server.add(Reply.sse(anthropic_events(["ok"])))
    cfg = anthropic_config(server, api_key=None, headers=(("Authorization", Secret("Bearer team-token")),))
    assert text(run(AnthropicProvider(cfg))) == "ok"
    sent = server.requests[0].headers
    assert sent["authorization"] == "Bearer team-token"
    assert "x-api-key" not in sent


def test_missing_header_401_names_the_header_and_not_the_key(server: SSEServer) -> None:
    # The gateway wants a header chatcli does not send (x-gateway-token); its body quotes the key.
    server.guard = requires("x-gateway-token", echo_key=True)
    with pytest.raises(ProviderError) as caught:
        run(AnthropicProvider(anthropic_config(server)))
    err = caught.value
    assert err.kind == "auth" and not err.retryable
    assert "asked for a 'x-gateway-token' header" in err.message
    assert "check the API key" not in err.message
    assert CANARY not in err.message and CANARY not in str(err)


def test_plain_bad_key_401_still_blames_the_key(server: SSEServer) -> None:
    server.add(Reply.error(401, "invalid x-api-key", type="authentication_error", dialect="anthropic"))
    with pytest.raises(ProviderError) as caught:
        run(AnthropicProvider(anthropic_config(server)))
    assert "check the API key in $GATEWAY_KEY" in caught.value.message


# -- the sibling: OpenAI-compatible gateways ----------------------------------------------------


@pytest.mark.parametrize("said", ["Missing required header: api-key", "missing api-key header",
                                  "Header 'api-key' is required"])
def test_openai_gateway_naming_a_missing_header(server: SSEServer, said: str) -> None:
    server.add(Reply.error(401, said, type="invalid_request_error"))
    with pytest.raises(ProviderError) as caught:
        run(OpenAIProvider(openai_config(server)), model="gpt-x")
    assert "asked for a 'api-key' header" in caught.value.message
    assert "check the API key" not in caught.value.message


def test_openai_gateway_with_the_header_configured_works(server: SSEServer) -> None:
    server.guard = requires("api-key", dialect="openai")
    server.add(Reply.sse(openai_chunks(["fine"])))
    cfg = openai_config(server, headers=(("api-key", Secret("azure-key")),))
    assert text(run(OpenAIProvider(cfg), model="gpt-x")) == "fine"


# -- the user's line ---------------------------------------------------------------------------

def test_ask_against_a_gateway_error_line_says_which_header(server: SSEServer) -> None:
    server.guard = requires("x-gateway-token", echo_key=True)
    env = dict(os.environ, TERM="dumb", ANTHROPIC_BASE_URL=server.anthropic_url, ANTHROPIC_API_KEY=CANARY,
               CHATCLI_STDIN_TIMEOUT="2")
    proc = run_cli(["ask", "-m", "anthropic:claude-x", "hi"], env)  # in-process: tests/support/runner.py
    err = proc.stderr_bytes.decode("utf-8", "replace")
    assert proc.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("chatcli:"), err
    assert "'x-gateway-token' header" in lines[0] and "check the API key" not in lines[0]
    assert CANARY not in err and CANARY not in proc.stdout_bytes.decode("utf-8", "replace")
    assert "Traceback" not in err
    # and the gateway really saw both credentials, so a key-checking one would have let it through
    assert server.requests[0].headers["x-api-key"] == CANARY

