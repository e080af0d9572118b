"""A huge input and a huge reply (issue 16, item 16), through `chatcli ask` in-process (tests/support/runner.py).

* a 5 MB stdin, ten times a 128k window, gets one clear warning on stderr before the request
  goes, and is sent all the same (the estimate is conservative; the server has the last word);
* the per-delta path is constant-time: the session grows a reply in a local, not with `+=` on
  the turn's attribute (which copied the whole text at every delta). Checked without a clock, by
  peak memory: an in-place `str +=` never holds two copies of the reply, a copy per delta does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatcli.events import Finish, TextDelta
from chatcli.session import Session
from tests.support.fakes import FakeProvider
from tests.support.runner import run
from tests.support.sse_server import Reply, SSEServer, openai_chunks

KEY = "sk-canary-huge-0123456789abcdef"
pytestmark = pytest.mark.timeout(120)


def test_5mb_stdin_is_warned_about_once_before_sending(tmp_path: Path) -> None:
    big = ("lorem ipsum dolor sit amet, consectetur adipiscing elit\n" * 92_000).encode()  # ~5 MB
    assert len(big) > 5_000_000
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["too long, but read"])))
        env = dict(os.environ, TERM="dumb", CHATCLI_STDIN_TIMEOUT="5", OPENAI_BASE_URL=server.openai_url,
                   OPENAI_API_KEY=KEY, CHATCLI_HOME=str(tmp_path / "data"))
        proc = run(["ask", "-m", "openai:gpt-4o-mini", "summarize"], env, input=big, timeout=100)
        err = proc.stderr_bytes.decode("utf-8", "replace")
        assert proc.returncode == 0, err
        warnings = [line for line in err.splitlines() if "context window" in line]
        assert len(warnings) == 1, err
        assert warnings[0].startswith("warning:") and "128,000-token context window" in warnings[0]
        assert "Traceback" not in err
        assert len(server.requests) == 1  # sent anyway, whole
        sent = server.requests[0].json["messages"][-1]["content"]
        assert len(sent) >= len(big)


def test_a_long_reply_grows_in_place() -> None:
    import tracemalloc

    piece = TextDelta("0123456789abcdef" * 64)  # 1 KB, the same object every time
    deltas = 2_000  # a 2 MB reply
    fake = FakeProvider(scripts=[[*([piece] * deltas), Finish("stop")]])
    session = Session(fake, model="m")
    tracemalloc.start()
    try:
        for _ in session.send("go"):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = len(session.turns[-1].content)
    assert size == len(piece.text) * deltas
    # In place, the reply is the one big object: peak ~1x its size. A copy per delta holds the
    # old text and the new one at once: ~2x.
    assert peak < 1.4 * size, f"peak {peak / size:.2f}x the reply"
