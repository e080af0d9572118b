"""What the user reads at the end of a reply and while it retries (issue 16, cosmetic items):

* a finish reason chatcli does not know (`"weird"`) is no promise that the reply is complete: it
  is shown raw, with a warning, stored raw, and `chatcli ask` exits 3 -- for both dialects;
* a retry line says out of how many attempts (`attempt 2 of 4`), in the plain writer and the panel.

`chatcli ask` runs in-process (tests/support/runner.py) against the loopback server (real SDKs, real HTTP).
"""

from __future__ import annotations

import io
import os

import pytest

from chatcli.events import Finish, Retrying, TextDelta
from chatcli.render.footer import describe_finish, retry_line
from chatcli.render.plain import PlainView
from tests.support.runner import Result, run
from tests.support.sse_server import Reply, SSEServer, anthropic_events, openai_chunks

KEY = "sk-canary-finish-0123456789abcdef"
pytestmark = pytest.mark.timeout(90)


def ask(server: SSEServer, model: str, *extra: str) -> Result:
    env = dict(os.environ, TERM="dumb", CHATCLI_STDIN_TIMEOUT="2", OPENAI_BASE_URL=server.openai_url,
               OPENAI_API_KEY=KEY, ANTHROPIC_BASE_URL=server.anthropic_url, ANTHROPIC_API_KEY=KEY)
    return run(["ask", "-m", model, *extra, "hi"], env)


@pytest.fixture
def server() -> object:
    with SSEServer() as s:
        yield s


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_unknown_finish_reason_is_shown_raw_warned_and_exits_3(server: SSEServer, dialect: str) -> None:
    if dialect == "openai":
        server.add(Reply.sse(openai_chunks(["Hel", "lo"], finish="weird", usage=(3, 2))))
        model = "openai:gpt-test"
    else:
        server.add(Reply.sse(anthropic_events(["Hel", "lo"], stop_reason="weird")))
        model = "anthropic:claude-test"
    result = ask(server, model)
    assert result.stdout == "Hello\n"
    assert result.returncode == 3, result.stderr  # partial, not complete
    assert "[stop" not in result.stderr
    assert "(weird)" in result.stderr  # the raw value, as the server said it
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "does not know" in warnings[0] and "weird" in warnings[0], result.stderr
    assert "Traceback" not in result.stderr and KEY not in result.stderr


def test_known_values_of_compatible_servers_are_still_complete(server: SSEServer) -> None:
    server.add(Reply.sse(openai_chunks(["ok"], finish="eos")))  # llama.cpp / TGI
    result = ask(server, "openai:gpt-test")
    assert result.returncode == 0 and "[stop (eos)" in result.stderr and "warning" not in result.stderr


def test_ask_retry_line_says_attempt_2_of_4(server: SSEServer) -> None:
    server.add(Reply.error(503, "busy", headers=(("retry-after-ms", "100"),)),
               Reply.sse(openai_chunks(["ok"])))
    result = ask(server, "openai:gpt-test")
    assert result.returncode == 0, result.stderr
    assert "(attempt 2 of 4)" in result.stderr  # max_retries 3 by default: 4 attempts in all


def test_describe_finish_uses_the_providers_detail_for_an_unknown_reason() -> None:
    detail = "the server ended the reply with a finish reason chatcli does not know (weird)"
    summary, warning = describe_finish(Finish("incomplete", raw="weird", detail=detail), where="ask")
    assert summary == "incomplete (weird)"
    assert warning is not None and warning.startswith(detail) and "incomplete" in warning
    # the plain "no finish signal at all" case keeps its own wording
    assert "without a finish signal" in (describe_finish(Finish("incomplete"))[1] or "")


def test_retry_line_counts_attempts_in_plain_and_panel() -> None:
    assert retry_line(2, 3.0, "overloaded", 4).endswith("(attempt 2 of 4)")
    out, err = io.StringIO(), io.StringIO()
    view = PlainView(out, err, clock=lambda: 0.0)
    for event in (Retrying(2, 1.0, "overloaded", attempts=4), TextDelta("x"), Finish("stop")):
        view.feed(event)
    view.close()
    assert "(attempt 2 of 4)" in err.getvalue()
    from chatcli.render.panel import PanelView

    out, err = io.StringIO(), io.StringIO()  # not a TTY: one logged line per attempt
    panel = PanelView(out, err, size=lambda: (80, 24), label="p:m", color_system=None)
    try:
        panel.feed(Retrying(3, 1.0, "overloaded", attempts=4))
        panel.feed(TextDelta("x"))
        panel.feed(Finish("stop"))
    finally:
        panel.close()
    assert "(attempt 3 of 4)" in err.getvalue()
