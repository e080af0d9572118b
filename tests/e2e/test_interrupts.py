"""U1-U7, S6 and the cancel half of A12 (the U table of tests/e2e/README.md): the user interrupts, in a real pty.

The installed `chatcli` runs in a pseudo-terminal (pexpect); Ctrl-C is the 0x03 byte through the
tty's line discipline, exactly like a keyboard. Each test checks what the server saw (a
disconnect when the stream is cancelled, no stray request after a cancelled retry wait), the exit
code, the stored turns and the terminal state left behind (cursor shown, no alternate screen,
SGR reset, bracketed paste off).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    ANTHROPIC_MODEL,
    CHATCLI,
    OPENAI_MODEL,
    Case,
    Expect,
    Played,
    Pty,
    assert_no_secret,
    assert_terminal_sane,
    batch_fixture,
    chat_env,
    check,
    ids,
    stored_turns,
)
from tests.support.sse_server import Reply, Sleep, SSEServer, anthropic_events, openai_chunks, sse

PROMPT = b"\x1b[?2004h"  # prompt-toolkit turns bracketed paste on when a prompt reads keys
CTRL_C = b"\x03"
CTRL_D = b"\x04"


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as srv:
        yield srv


def _stalling(texts: list[str], seconds: float = 9.0) -> Reply:
    """Some text, then a long stall: the reply is still streaming when the test presses Ctrl-C."""
    return Reply.sse(openai_chunks(texts, finish=None, done=False), stall=seconds)


def _summary(home: Path) -> list[tuple[str, str, str | None]]:
    return [(t["role"], t["content"], t["finish_reason"]) for t in stored_turns(home)]


def _check_clean(pty: Pty) -> None:
    assert b"Traceback" not in pty.transcript, pty.transcript[-3000:]
    assert_terminal_sane(pty.transcript)
    assert_no_secret(pty.transcript, where="pty transcript")


def _interrupt_then_ask_again(server: SSEServer, tmp_path: Path, model: str) -> None:
    """In the REPL: ask, Ctrl-C once the first reply streams, ask again, Ctrl-D. Asserts the stream
    was closed at once, the second reply arrived, exit 0 and a clean terminal."""
    pty = Pty(["-m", model], chat_env(tmp_path, server=server))
    try:
        pty.expect(PROMPT)
        pty.send(b"first question\r")
        pty.expect(b"reply")
        t0 = time.monotonic()
        pty.send(CTRL_C)
        assert server.wait_disconnect(5), "the stream was not closed on Ctrl-C"
        pty.expect(PROMPT)
        assert time.monotonic() - t0 < 5, "Ctrl-C did not stop the reply at once"
        pty.send(b"second question\r")
        pty.expect(b"answer")
        pty.expect(PROMPT)
        pty.send(CTRL_D)
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 0
    _check_clean(pty)


def test_U1_U4_ctrl_c_mid_stream_then_next_turn(server: SSEServer, tmp_path: Path) -> None:
    """U1: Ctrl-C once mid-stream -> stream closed (server sees the disconnect), partial kept as
    `interrupted`, back at the prompt. U4: the next request is valid: user / assistant(partial) /
    user, no empty or whitespace-ended assistant message."""
    server.add(_stalling(["Partial ", "reply "]), Reply.sse(openai_chunks(["Second ", "answer"])))
    _interrupt_then_ask_again(server, tmp_path, OPENAI_MODEL)
    assert server.disconnects == [0]
    assert _summary(tmp_path) == [
        ("user", "first question", None),
        ("assistant", "Partial reply ", "interrupted"),
        ("user", "second question", None),
        ("assistant", "Second answer", "stop"),
    ]
    messages = server.requests[1].json["messages"]
    roles = [m["role"] for m in messages if m["role"] != "system"]
    assert roles == ["user", "assistant", "user"], messages
    assert messages[-2]["content"].startswith("Partial reply"), messages
    assert messages[-2]["content"].strip(), "an empty assistant message was sent"


def test_U1_anthropic_next_request_has_no_trailing_whitespace(server: SSEServer, tmp_path: Path) -> None:
    """U4 for Anthropic: an interrupted assistant turn ending in whitespace must not be sent as is
    (the API rejects a final assistant content ending in whitespace; in the middle it is fine, but
    empty content never is)."""
    events = anthropic_events(["Partial ", "reply "], stop_reason=None)[:-1]
    server.add(Reply.sse(events, stall=9), Reply.sse(anthropic_events(["Second ", "answer"])))
    _interrupt_then_ask_again(server, tmp_path, ANTHROPIC_MODEL)
    messages = server.requests[1].json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"], messages
    for m in messages:
        content = m["content"]
        text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
        assert text.strip(), f"empty content sent: {messages}"
    assert _summary(tmp_path)[1] == ("assistant", "Partial reply ", "interrupted")


def test_U2_ctrl_c_twice_quickly_mid_stream(server: SSEServer, tmp_path: Path) -> None:
    """U2: two Ctrl-C 30 ms apart while a reply streams: no traceback, the partial is stored
    (the second ^C must not abort the recording of the first), the terminal is sane, and the
    process either is back at the prompt or has exited 0/130."""
    server.add(_stalling(["Partial ", "reply "]))
    pty = Pty(["-m", OPENAI_MODEL], chat_env(tmp_path, server=server))
    try:
        pty.expect(PROMPT)
        pty.send(b"question\r")
        pty.expect(b"reply")
        pty.send(CTRL_C)
        time.sleep(0.03)
        pty.send(CTRL_C)
        time.sleep(1.0)
        if pty.child.isalive():
            pty.send(CTRL_D)
        code = pty.finish()
    finally:
        pty.kill()
    assert code in (0, 130)
    _check_clean(pty)
    assert _summary(tmp_path) == [("user", "question", None), ("assistant", "Partial reply ", "interrupted")]


def test_U3_ctrl_c_before_first_token_ask(server: SSEServer, tmp_path: Path) -> None:
    """U3: Ctrl-C while waiting for the first token (`chatcli ask` on a terminal): exit 130 at once,
    the request aborted (server sees the disconnect), the user turn kept, no empty assistant turn."""
    server.add(Reply.sse([Sleep(9.0)]))
    pty = Pty(["ask", "-m", OPENAI_MODEL, "hello there"], chat_env(tmp_path, server=server))
    try:
        deadline = time.monotonic() + 20
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.requests, "no request reached the server"
        time.sleep(0.3)
        t0 = time.monotonic()
        pty.sigint()
        code = pty.finish()
        assert time.monotonic() - t0 < 5
    finally:
        pty.kill()
    assert code == 130
    _check_clean(pty)
    assert server.wait_disconnect(3)
    turns = _summary(tmp_path)
    assert turns[0] == ("user", "hello there", None), turns
    assert not [t for t in turns[1:] if t[0] == "assistant" and t[1] == "" and t[2] != "interrupted"], turns


def test_ask_ctrl_c_mid_stream_exit_130_partial_kept(server: SSEServer, tmp_path: Path) -> None:
    """`chatcli ask` on a terminal, Ctrl-C mid-stream: exit 130, partial saved as interrupted."""
    server.add(_stalling(["Partial ", "reply "]))
    pty = Pty(["ask", "-m", OPENAI_MODEL, "hi"], chat_env(tmp_path, server=server))
    try:
        pty.expect(b"reply")
        pty.sigint()
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 130
    _check_clean(pty)
    assert server.wait_disconnect(3)
    assert _summary(tmp_path) == [("user", "hi", None), ("assistant", "Partial reply ", "interrupted")]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_U5_terminated_mid_stream_keeps_partial(server: SSEServer, tmp_path: Path, signame: str) -> None:
    """U5: SIGTERM / SIGHUP (terminal closed) mid-stream: the partial is persisted, the database is
    valid, exit 128 + signal, no traceback."""
    sig = getattr(signal, signame)
    server.add(_stalling(["Partial ", "reply "]))
    env = chat_env(tmp_path, server=server)
    proc = subprocess.Popen([CHATCLI, "ask", "-m", OPENAI_MODEL, "hi"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while len(server.requests) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.8)  # the two chunks are out; the server now stalls
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert b"Traceback" not in err, err
    assert out == b"Partial reply \n", out
    assert_no_secret(out, err)
    assert _summary(tmp_path) == [("user", "hi", None), ("assistant", "Partial reply ", "interrupted")]


def test_U6_ctrl_d_at_prompt_exits_clean(server: SSEServer, tmp_path: Path) -> None:
    """U6: Ctrl-D on the empty prompt: exit 0, nothing sent, nothing stored, terminal sane."""
    pty = Pty(["-m", OPENAI_MODEL], chat_env(tmp_path, server=server))
    try:
        pty.expect(PROMPT)
        pty.send(CTRL_D)
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 0
    _check_clean(pty)
    assert server.requests == []
    assert _summary(tmp_path) == []


def test_U7_resize_during_stream(server: SSEServer, tmp_path: Path) -> None:
    """U7: the terminal is resized three times while a markdown reply streams: no crash, the reply
    completes (exit 0), text stored intact, terminal sane."""
    chunks = [f"Line {i} with **bold** text and `code`.\n\n" for i in range(30)]
    server.add(Reply.sse(openai_chunks(chunks), delay=0.05))
    pty = Pty(["ask", "--markdown", "-m", OPENAI_MODEL, "hi"], chat_env(tmp_path, server=server))
    try:
        pty.expect(b"Line 3")
        for rows, cols in ((20, 60), (40, 140), (24, 80)):
            pty.child.setwinsize(rows, cols)
            time.sleep(0.2)
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 0, pty.transcript[-2000:]
    _check_clean(pty)
    assert _summary(tmp_path)[-1] == ("assistant", "".join(chunks), "stop")


def test_S6_ctrl_c_during_retry_wait(server: SSEServer, tmp_path: Path) -> None:
    """S6: Ctrl-C during a retry backoff (429, retry-after 8): exit 130 at once, and no request is
    sent afterwards."""
    server.add(Reply.error(429, "Rate limit reached", code="rate_limit_exceeded", headers=(("retry-after", "8"),)))
    pty = Pty(["ask", "-m", OPENAI_MODEL, "hi"], chat_env(tmp_path, server=server))
    try:
        pty.expect(b"retrying in")
        t0 = time.monotonic()
        pty.sigint()
        code = pty.finish()
        assert time.monotonic() - t0 < 3, "Ctrl-C did not cancel the wait at once"
    finally:
        pty.kill()
    assert code == 130
    _check_clean(pty)
    time.sleep(1.0)
    assert len(server.requests) == 1, "a request was sent after the wait was cancelled"


def test_A12_ctrl_c_during_endless_pings(server: SSEServer, tmp_path: Path) -> None:
    """A12: an Anthropic stream that only pings: the user can cancel (exit 130, connection closed)."""
    ping = sse({"type": "ping"}, event="ping")
    start = anthropic_events([], stop_reason=None)[0]
    events: list[bytes | Sleep] = [start]
    for _ in range(36):
        events += [Sleep(0.25), ping]
    server.add(Reply.sse(events))
    pty = Pty(["ask", "-m", ANTHROPIC_MODEL, "hi"], chat_env(tmp_path, server=server))
    try:
        deadline = time.monotonic() + 20
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        pty.sigint()
        code = pty.finish(timeout=5)
    finally:
        pty.kill()
    assert code == 130
    _check_clean(pty)
    assert server.wait_disconnect(3)


# -- the user misbehaves at the command line (not interrupts, but bad input): exit 2, one line ----

BAD_TOML = "default_model = \"openai:gpt-test\"\nmax_tokens = = 3\nsave = true\n"
INPUT_CASES = [
    Case("IN1-binary-stdin", (), Expect(2, "", (r"chatcli: .*(binary|not UTF-8|text).*",), 1, (), 0),
         args=("ask", "-m", OPENAI_MODEL), stdin=b"\x00\x01\x02\xff\xfe" * 200),
    Case("IN2-latin1-stdin", (), Expect(2, "", (r"chatcli: piped input is not UTF-8 text .*",), 1, (), 0),
         args=("ask", "-m", OPENAI_MODEL, "review"), stdin=b"caf\xe9 cr\xe8me"),
    Case("IN3-unknown-provider", (), Expect(2, "", (r"chatcli: unknown model \"nope:model\".*",), 1, (), 0),
         args=("ask", "-m", "nope:model", "hi")),
    Case("IN4-invalid-toml", (), Expect(2, "", (r"chatcli: .*config\.toml:2: .*",), 1, (), 0), config=BAD_TOML),
    Case("IN5-negative-max-tokens", (), Expect(2, "", (r"Error: Invalid value for '--max-tokens'.*",), None, (), 0),
         args=("ask", "-m", OPENAI_MODEL, "--max-tokens", "-5", "hi")),
    Case("IN6-resume-unknown-id", (), Expect(2, "", (r"chatcli: no conversation 'zzzz' .*",), 1, (), 0),
         args=("ask", "-m", OPENAI_MODEL, "-r", "zzzz", "hi")),
    Case("IN7-nothing-to-ask", (), Expect(2, "", (r"chatcli: nothing to ask: .*",), 1, (), 0),
         args=("ask", "-m", OPENAI_MODEL)),
    Case("IN8-continue-with-no-history", (Reply.sse(openai_chunks(["fresh"])),),
         Expect(0, "fresh\n", (), None, None, 1), args=("ask", "-m", OPENAI_MODEL, "-c", "hi"),
         note="-c with nothing saved starts a new conversation"),
    Case("IN9-empty-piped-prompt", (), Expect(2, "", (r"chatcli: .*",), 1, (), 0),
         args=("ask", "-m", OPENAI_MODEL), stdin=b"   \n\n"),
]

played_inputs = batch_fixture(INPUT_CASES)


@pytest.mark.parametrize("case", INPUT_CASES, ids=ids(INPUT_CASES))
def test_bad_user_input(case: Case, played_inputs: dict[str, Played]) -> None:
    check(played_inputs[case.id])


def test_ctrl_c_while_the_panel_is_busy_rendering(server: SSEServer, tmp_path: Path) -> None:
    """Ctrl-C while the rich panel is actively redrawing (a fast stream of markdown, no stall): the
    Live display is stopped cleanly — exit 130, cursor shown, SGR reset — and the partial stored."""
    chunks = [f"- item {i} with **bold** and `code` and a [link](https://example.com/{i})\n" for i in range(4000)]
    server.add(Reply.sse(openai_chunks(chunks), delay=0.002))
    pty = Pty(["ask", "--markdown", "-m", OPENAI_MODEL, "hi"], chat_env(tmp_path, server=server))
    try:
        pty.expect(b"item 300")
        pty.sigint()
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 130, pty.transcript[-1500:]
    _check_clean(pty)
    turns = _summary(tmp_path)
    assert turns[-1][0] == "assistant" and turns[-1][2] == "interrupted", turns
    assert turns[-1][1].startswith(chunks[0]) and len(turns[-1][1]) < len("".join(chunks))


def test_R13_repl_history_list_neutralises_stored_titles(server: SSEServer, tmp_path: Path) -> None:
    """R13 in the REPL: `/history` lists a saved conversation whose title (the first message) holds
    escape sequences; none of them reaches the terminal."""
    from chatcli.history.store import Store
    from chatcli.turn import Turn

    with Store.open(tmp_path / "chatcli-data") as store:
        rec = store.recorder()
        rec.record(Turn("user", "title \x1b]0;pwned\x07 \x1b]52;c;ZXZpbA==\x07 \x1b[2J\x9b6n end"))
        rec.record(Turn("assistant", "ok", finish_reason="stop", provider="openai", model="gpt-test"))
    pty = Pty(["-m", OPENAI_MODEL], chat_env(tmp_path, server=server))
    try:
        pty.expect(PROMPT)
        pty.send(b"/history\r")
        pty.expect(b"end")
        pty.expect(PROMPT)
        pty.send(CTRL_D)
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 0
    _check_clean(pty)
    for seq in (b"\x1b]0;", b"\x1b]52", b"\x1b[2J", "\x9b".encode()):
        assert seq not in pty.transcript, seq
