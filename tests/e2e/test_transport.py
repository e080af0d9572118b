"""T1-T9 and S1-S5 (the T / S table of tests/e2e/README.md): HTTP and transport faults, rate limits, overload.

Each case runs the installed `chatcli ask` against a scripted loopback server (or a dead port, or a
socket that never answers) and asserts the exit code, the one-line error, the number of requests
the server saw (retries: how many, and none where none is allowed), the stored turns and that no
canary key is printed. T10 (redirect to another origin) is in test_secrets.py; S6 (Ctrl-C during
a retry wait) in test_interrupts.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.e2e.helpers import (
    ANTHROPIC_MODEL,
    Case,
    Expect,
    Played,
    batch_fixture,
    check,
    ids,
)
from tests.support.sse_server import Reply, anthropic_events, openai_chunks, openai_error, sse

URL = r"http://127\.0\.0\.1:\d+/v1"
AURL = r"http://127\.0\.0\.1:\d+"
USER = ("user", "hi", None)
FAST = "[providers.openai]\nmax_retries = {n}\ntimeout = 1.5\nconnect_timeout = 1.5\n"
AFAST = "[providers.anthropic]\nmax_retries = {n}\ntimeout = 1.5\nconnect_timeout = 1.5\n"
ASK_A = ("ask", "-m", ANTHROPIC_MODEL, "hi")


def footer(reason: str) -> str:
    return r"\[" + reason + r"(?: \([^)]*\))?(?: · [^\]]*)?\]"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Silent:
    """A listening socket that never accepts: connects succeed (kernel backlog), no byte comes back."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])


SILENT = _Silent()
DEAD = _dead_port()


@pytest.fixture(scope="module", autouse=True)
def _close_silent() -> Iterator[None]:
    yield
    SILENT.sock.close()


def _status(status: int, message: str, **kw: object) -> Reply:
    return Reply.error(status, message, **kw)  # type: ignore[arg-type]


CASES = [
    # -- T: transport -----------------------------------------------------------------------------
    Case("T1-connection-refused", (),
         Expect(1, "", (rf"chatcli: openai \(http://127\.0\.0\.1:{DEAD}/v1\): cannot connect to "
                        rf"http://127\.0\.0\.1:{DEAD}/v1 \(connection refused\)",), None, None, 0),
         env=(("OPENAI_BASE_URL", f"http://127.0.0.1:{DEAD}/v1"),), config=FAST.format(n=1)),
    Case("T2-tls-to-plain-http-server", (Reply.sse(openai_chunks(["x"])),) * 2,
         Expect(1, "", (r"chatcli: openai \(https://127\.0\.0\.1:\d+/v1\): .*",), None, None),
         env=(("OPENAI_BASE_URL", "https://127.0.0.1:{port}/v1"),), config=FAST.format(n=0)),
    Case("T2b-proxy-407", (Reply.raw(b"proxy auth required", status=407, content_type="text/plain",
                                     headers=(("Proxy-Authenticate", 'Basic realm="corp"'),)),),
         Expect(1, "", (r"chatcli: openai \(http://10\.255\.255\.1/v1\): .*407.*",), None, None, 1),
         env=(("OPENAI_BASE_URL", "http://10.255.255.1/v1"), ("HTTP_PROXY", "http://127.0.0.1:{port}"),
              ("http_proxy", "http://127.0.0.1:{port}"), ("NO_PROXY", ""), ("no_proxy", "")),
         config=FAST.format(n=0)),
    Case("T3-peer-reset-mid-stream", (Reply.sse(openai_chunks(["Hel", "lo"], finish=None, done=False), cut=True),),
         Expect(3, "Hello\n", (footer("error"), r"warning: the stream failed: connection lost.* — partial reply kept"),
                2, (USER, ("assistant", "Hello", "error")), 1)),
    Case("T3b-peer-reset-mid-stream-anthropic",
         (Reply.sse(anthropic_events(["Hel", "lo"], stop_reason=None)[:-1], cut=True),),
         Expect(3, "Hello\n", (footer("error"), r"warning: the stream failed: connection lost.* — partial reply kept"),
                2, (USER, ("assistant", "Hello", "error")), 1), args=ASK_A),
    Case("T4-stall-mid-stream", (Reply.sse(openai_chunks(["Hel", "lo"], finish=None, done=False), stall=8),),
         Expect(3, "Hello\n", (footer("error"),
                               r"warning: the stream failed: connection lost: no data from the server for 1\.5s"
                               r" — partial reply kept"), 2, (USER, ("assistant", "Hello", "error")), 1),
         config=FAST.format(n=2)),
    Case("T4b-stall-mid-stream-anthropic",
         (Reply.sse(anthropic_events(["Hel", "lo"], stop_reason=None)[:-1], stall=8),),
         Expect(3, "Hello\n", (footer("error"), r"warning: the stream failed: .*1\.5s.* — partial reply kept"),
                2, (USER, ("assistant", "Hello", "error")), 1), args=ASK_A, config=AFAST.format(n=2)),
    Case("T5-stall-before-headers", (),
         Expect(1, "", (rf"chatcli: openai \(http://127\.0\.0\.1:{SILENT.port}/v1\): .*timed out.*",
                        r".*retrying in T \(attempt 2 of [0-9]+\)"), None, None, 0),
         env=(("OPENAI_BASE_URL", f"http://127.0.0.1:{SILENT.port}/v1"),), config=FAST.format(n=1)),
    Case("T6-5xx-retried-then-error",
         (_status(500, "boom"), _status(502, "bad gateway"), _status(503, "unavailable")),
         Expect(1, "", (r".*\(HTTP 500\).* — retrying in T \(attempt 2 of [0-9]+\)",
                        r".*\(HTTP 502\).* — retrying in T \(attempt 3 of [0-9]+\)",
                        rf"chatcli: openai \({URL}\): .*\(HTTP 503\).*unavailable"), 3, None, 3),
         config=FAST.format(n=2)),
    Case("T6b-5xx-then-success", (_status(502, "bad gateway"), Reply.sse(openai_chunks(["Hel", "lo"]))),
         Expect(0, "Hello\n", (r".*\(HTTP 502\).* — retrying in T \(attempt 2 of [0-9]+\)", footer("stop")), 2,
                (USER, ("assistant", "Hello", "stop")), 2)),
    Case("T7-401", (_status(401, "Incorrect API key provided: sk-canary-****", code="invalid_api_key"),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): authentication failed \(HTTP 401\): .*; check the API key in "
                        r"\$OPENAI_API_KEY",), 1, None, 1)),
    Case("T7b-403", (_status(403, "Project does not have access", code="model_not_allowed"),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*\(HTTP 403\).*",), 1, None, 1)),
    Case("T7c-401-anthropic", (Reply.error(401, "invalid x-api-key", type="authentication_error",
                                           dialect="anthropic"),),
         Expect(1, "", (rf"chatcli: anthropic \({AURL}\): authentication failed \(HTTP 401\): .*"
                        r"\$ANTHROPIC_API_KEY",), 1, None, 1), args=ASK_A),
    Case("T8-404-model", (_status(404, "The model `gpt-test` does not exist", code="model_not_found"),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*gpt-test.*models.*",), 1, None, 1)),
    Case("T9-context-length-openai",
         (_status(400, "This model's maximum context length is 8192 tokens.", code="context_length_exceeded"),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*context.*",), 1, None, 1)),
    Case("T9b-context-length-anthropic",
         (Reply.error(400, "prompt is too long: 250000 tokens > 200000 maximum", type="invalid_request_error",
                      dialect="anthropic"),),
         Expect(1, "", (rf"chatcli: anthropic \({AURL}\): .*too long.*",), 1, None, 1), args=ASK_A),
    Case("T9c-context-length-llamacpp-in-stream",
         (Reply.sse([openai_error("the request exceeds the available context size, try increasing it",
                                  code=400, type="exceed_context_size_error"), sse("[DONE]")]),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*context size.*",), 1, None, 1)),
    # -- S: rate limits and overload ----------------------------------------------------------------
    Case("S1-429-retry-after-2", (_status(429, "Rate limit reached", code="rate_limit_exceeded",
                                          headers=(("retry-after", "2"),)),
                                  Reply.sse(openai_chunks(["Hel", "lo"]))),
         Expect(0, "Hello\n", (r".*rate limit.* — retrying in T \(attempt 2 of [0-9]+\)", footer("stop")), None,
                (USER, ("assistant", "Hello", "stop")), 2)),
    Case("S2-429-retry-after-3600", (_status(429, "Rate limit reached", headers=(("retry-after", "3600"),)),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*3600s.*retry cap.*",), 1, None, 1)),
    Case("S2b-429-retry-after-3600-anthropic",
         (Reply.error(429, "Number of requests has exceeded your rate limit", type="rate_limit_error",
                      dialect="anthropic", headers=(("retry-after", "3600"),)),),
         Expect(1, "", (rf"chatcli: anthropic \({AURL}\): .*3600s.*retry cap.*",), 1, None, 1), args=ASK_A),
    Case("S3-429-insufficient-quota", (_status(429, "You exceeded your current quota", code="insufficient_quota",
                                               type="insufficient_quota"),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*quota.*",), 1, None, 1)),
    Case("S4-529-overloaded-anthropic",
         (Reply.error(529, "Overloaded", type="overloaded_error", dialect="anthropic"),
          Reply.error(529, "Overloaded", type="overloaded_error", dialect="anthropic")),
         Expect(1, "", (r".*overloaded.* — retrying in T \(attempt 2 of [0-9]+\)",
                        rf"chatcli: anthropic \({AURL}\): .*overloaded.*"), 2, None, 2),
         args=ASK_A, config=AFAST.format(n=1)),
    Case("S4b-529-then-success-anthropic",
         (Reply.error(529, "Overloaded", type="overloaded_error", dialect="anthropic"),
          Reply.sse(anthropic_events(["Hel", "lo"]))),
         Expect(0, "Hello\n", (footer("stop"),), 2, (USER, ("assistant", "Hello", "stop")), 2), args=ASK_A),
    Case("S5-500-x-should-retry-false", (_status(500, "do not retry", headers=(("x-should-retry", "false"),)),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*do not retry",), 1, None, 1)),
]

played = batch_fixture(CASES)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_transport_fault(case: Case, played: dict[str, Played]) -> None:
    run = played[case.id]
    check(run)
    if run.case.expect.rc == 1:
        # a failed request: the user's message is kept, no empty assistant reply claims success
        assert not [t for t in run.turns if t["role"] == "assistant" and (t["content"] or t["finish_reason"] == "stop")]
    if case.id.startswith("S1"):
        assert run.result.elapsed >= 2.0, "retry-after: 2 was not honoured"
    if case.id.startswith("S2"):
        assert run.result.elapsed < 20, "slept on retry-after: 3600"
    if case.id.startswith("T2b"):
        assert_no_key_to_proxy = [r for r in run.requests if "10.255.255.1" in r.path or r.path.startswith("http")]
        assert assert_no_key_to_proxy, "the request did not go through the proxy"


def test_timeouts_are_bounded() -> None:
    """T4/T5 above run with a 1.5 s read timeout; the default must also be well below the SDK's 600 s."""
    from chatcli.settings import ProviderConfig

    default = ProviderConfig.__dataclass_fields__["timeout"].default
    assert isinstance(default, (int, float)) and default <= 120, default
