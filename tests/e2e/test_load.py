"""Load: a 2,000-turn conversation resumed within a small context budget, and 10 MB replies
streamed with bounded memory (O17 included: one huge delta, one line without a newline).

Peak memory is the child's own high-water mark (VmHWM from /proc/<pid>/status, polled every
20 ms; RUSAGE_CHILDREN would mix in every other child of the test process). The figures are
printed (`-s` shows them) and recorded in tests/e2e/README.md.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    OPENAI_MODEL,
    Pty,
    assert_no_secret,
    assert_terminal_sane,
    chat_env,
    run_chatcli,
    stored_turns,
)
from tests.support.sse_server import Reply, SSEServer, openai_chunk, openai_chunks, sse

TURNS = 2000
WINDOW = 4000  # tokens: the model's declared context window in the test config
TEN_MB = 10 * 1024 * 1024
#: Peak RSS allowed for a 10 MB reply: the reply must be held once (to store it) plus the
#: interpreter and the SDK (~60-80 MB); a renderer that keeps copies per chunk blows far past it.
RSS_LIMIT_KB = 200 * 1024
#: The rich panel keeps more per reply (measured ~93 MB at 1 MB, ~200 MB at 5 MB, 160-215 MB at 10 MB).
RSS_LIMIT_MARKDOWN_KB = 256 * 1024

pytestmark = pytest.mark.slow


def _estimate(messages: list[dict[str, str]]) -> int:
    """An independent, generous token estimate: 4 ASCII chars a token, 4 tokens framing a message."""
    return sum(len(m["content"]) // 4 + 4 for m in messages)


def test_2000_turns_resume_within_the_context_budget(tmp_path: Path) -> None:
    from chatcli.history.store import Store
    from chatcli.turn import Turn

    data = tmp_path / "chatcli-data"
    with Store.open(data) as store:
        rec = store.recorder()
        conn = store._conn  # batch the 2,000 inserts in one transaction (speed only)
        conn.execute("PRAGMA synchronous=OFF")
        for i in range(TURNS // 2):
            rec.record(Turn("user", f"question {i}: " + "lorem ipsum dolor sit amet " * 3))
            rec.record(Turn("assistant", f"answer {i}: " + "consectetur adipiscing elit " * 3,
                            finish_reason="stop", provider="openai", model="gpt-test"))
        conv = rec.conversation_id
    assert conv is not None
    assert len(stored_turns(tmp_path)) == TURNS

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[context_windows]\n"gpt-test" = {WINDOW}\n')
    cfg.chmod(0o600)
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["resumed"])))
        env = chat_env(tmp_path, server=server, extra={"CHATCLI_CONFIG": str(cfg)})
        start = time.monotonic()
        res = run_chatcli(["ask", "-m", OPENAI_MODEL, "-c", "the new question"], env=env)
        elapsed = time.monotonic() - start
        body = server.requests[0].json
    assert res.returncode == 0, res.stderr
    assert res.stdout == "resumed\n"
    assert "Traceback" not in res.stderr
    assert_no_secret(res.out, res.err)
    messages = [m for m in body["messages"] if m["role"] != "system"]
    # the newest exchanges and the new question are sent, in order, roles alternating
    assert messages[-1] == {"role": "user", "content": "the new question"}
    assert messages[-2]["content"].startswith(f"answer {TURNS // 2 - 1}:")
    assert [m["role"] for m in messages] == ["user", "assistant"] * ((len(messages) - 1) // 2) + ["user"]
    assert len(messages) > 20, "trimmed far more than the budget needs"
    # under budget: the request plus room for the reply fits the declared window
    assert _estimate(messages) + min(WINDOW // 4, 4096) <= WINDOW, _estimate(messages)
    # not silently: the notice says how many turns were left out
    left_out = TURNS - (len(messages) - 1)
    notice = [line for line in res.err_lines() if re.search(rf"\b{left_out}\b", line)]
    assert notice, f"no notice naming {left_out} left-out turns in {res.stderr!r}"
    # nothing was dropped from the store: 2,000 + the new exchange
    assert len(stored_turns(tmp_path)) == TURNS + 2
    print(f"\n2000-turn resume: {len(messages)} messages sent, {left_out} turns left out, "
          f"{_estimate(messages)} est. tokens, {elapsed:.2f}s")


def _ten_mb_chunks(size: int = 8192) -> list[bytes]:
    line = ("x" * 79 + "\n")
    piece = line * (size // len(line))
    count = TEN_MB // len(piece) + 1
    return openai_chunks([piece] * count)


def _ten_mb_text(size: int = 8192) -> str:
    line = ("x" * 79 + "\n")
    piece = line * (size // len(line))
    return piece * (TEN_MB // len(piece) + 1)


def test_10mb_reply_plain_bounded_memory(tmp_path: Path) -> None:
    events = _ten_mb_chunks()
    total = sum(1 for _ in events)
    with SSEServer() as server:
        server.add(Reply.sse(events))
        res = run_chatcli(["ask", "--plain", "-m", OPENAI_MODEL, "big"], env=chat_env(tmp_path, server=server),
                          poll_rss=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    expected = _ten_mb_text()
    assert len(expected) >= TEN_MB
    assert res.out == expected.encode(), "the 10 MB reply was not written exactly"
    text_len = len(expected)
    assert "Traceback" not in res.stderr
    stored = stored_turns(tmp_path)[-1]
    assert len(stored["content"]) == text_len and stored["finish_reason"] == "stop"
    print(f"\n10 MB plain: {total} SSE events, {res.elapsed:.1f}s, peak RSS {res.maxrss_kb / 1024:.1f} MB")
    assert 0 < res.maxrss_kb < RSS_LIMIT_KB, f"peak RSS {res.maxrss_kb} kB"


def test_O17_one_huge_delta_without_newline(tmp_path: Path) -> None:
    """O17: a single 8 MB delta on one SSE line (no newline inside the text): memory bounded, the
    text arrives whole, no crash."""
    big = "y" * (8 * 1024 * 1024)
    events = [openai_chunk({"role": "assistant", "content": ""}), openai_chunk({"content": big}),
              openai_chunk({}, finish="stop"), sse("[DONE]")]
    with SSEServer() as server:
        server.add(Reply.sse(events))
        res = run_chatcli(["ask", "--plain", "-m", OPENAI_MODEL, "big"], env=chat_env(tmp_path, server=server),
                          poll_rss=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.out == big.encode() + b"\n"
    print(f"\nO17 8 MB single delta: {res.elapsed:.1f}s, peak RSS {res.maxrss_kb / 1024:.1f} MB")
    assert 0 < res.maxrss_kb < RSS_LIMIT_KB, f"peak RSS {res.maxrss_kb} kB"


def test_10mb_reply_markdown_panel_in_pty(tmp_path: Path) -> None:
    """The rich panel (`--markdown`) in a terminal streams the same 10 MB: completes, bounded
    memory, the terminal left sane. The pty output is drained as it comes (only the tail kept)."""
    import pexpect

    events = _ten_mb_chunks()
    with SSEServer() as server:
        server.add(Reply.sse(events))
        pty = Pty(["ask", "--markdown", "-m", OPENAI_MODEL, "big"], chat_env(tmp_path, server=server))
        peak, tail, seen = 0, b"", 0
        status = Path(f"/proc/{pty.child.pid}/status")
        deadline = time.monotonic() + 180
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = pty.child.read_nonblocking(1 << 16, timeout=0.05)
                    seen += len(chunk)
                    tail = (tail + chunk)[-65536:]
                except pexpect.TIMEOUT:
                    pass
                except pexpect.EOF:
                    break
                try:
                    for line in status.read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
                except OSError:
                    pass
            else:
                raise AssertionError(f"--markdown 10 MB did not finish in 180 s ({seen} bytes shown)")
            pty.child.close()
            code = pty.child.exitstatus
        finally:
            pty.kill()
    assert code == 0, tail[-2000:]
    assert b"Traceback" not in tail
    assert_terminal_sane(tail)
    stored = stored_turns(tmp_path)[-1]
    assert stored["content"] == _ten_mb_text() and stored["finish_reason"] == "stop"
    print(f"\n10 MB --markdown in a pty: {seen / 1e6:.1f} MB written to the terminal, peak RSS {peak / 1024:.1f} MB")
    assert 0 < peak < RSS_LIMIT_MARKDOWN_KB, f"peak RSS {peak} kB"
