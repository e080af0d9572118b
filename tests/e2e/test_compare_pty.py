"""`chatcli ask -m A -m B` in a real pseudo-terminal: two live panels side by side, Ctrl-C (the 0x03
byte through the tty's line discipline) stops both streams at once -- each server sees its
disconnect, each partial is stored as interrupted -- and the terminal is left sane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import Pty, assert_terminal_sane, chat_env, stored_turns
from tests.support.sse_server import Reply, Sleep, SSEServer, anthropic_events, openai_chunks


@pytest.fixture
def servers() -> Iterator[tuple[SSEServer, SSEServer]]:
    with SSEServer() as a, SSEServer() as b:
        yield a, b


def _env(home: Path, a: SSEServer, b: SSEServer) -> dict[str, str]:
    return chat_env(home, extra={"OPENAI_BASE_URL": a.openai_url, "ANTHROPIC_BASE_URL": b.anthropic_url})


def test_two_panels_side_by_side_then_ctrl_c_stops_both(servers: tuple[SSEServer, SSEServer],
                                                        tmp_path: Path) -> None:
    a, b = servers
    a.add(Reply.sse([*openai_chunks(["alpha streaming now"], finish=None, done=False), Sleep(30)]))
    b.add(Reply.sse([*anthropic_events(["beta streaming now"], stop_reason=None, message_stop=False),
                     Sleep(30)]))
    pty = Pty(["ask", "-m", "openai:ma", "-m", "anthropic:mb", "question"], _env(tmp_path, a, b),
              rows=40, cols=160)
    try:
        pty.expect(b"alpha streaming now")
        pty.expect(b"beta streaming now")
        pty.send(b"\x03")
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 130, pty.transcript[-2000:]
    assert b"Traceback" not in pty.transcript
    assert_terminal_sane(pty.transcript)
    assert a.wait_disconnect(10) and b.wait_disconnect(10)
    assert not a.finished and not b.finished  # cut off, not played to the end of the stall
    # Both labels on the same top row: side by side.
    top = next(line for line in pty.transcript.split(b"\n") if b"openai:ma" in line)
    assert b"anthropic:mb" in top
    replies = sorted((t["content"], t["finish_reason"]) for t in stored_turns(tmp_path) if t["role"] == "assistant")
    assert replies == [("alpha streaming now", "interrupted"), ("beta streaming now", "interrupted")]
    questions = [t["content"] for t in stored_turns(tmp_path) if t["role"] == "user"]
    assert questions == ["question", "question"]


def test_stacked_panels_in_a_100_column_terminal(servers: tuple[SSEServer, SSEServer], tmp_path: Path) -> None:
    a, b = servers
    a.add(Reply.sse(openai_chunks(["first ", "reply"], usage=(3, 2)), delay=0.05))
    b.add(Reply.sse(anthropic_events(["second ", "reply"])))
    pty = Pty(["ask", "-m", "openai:ma", "-m", "anthropic:mb", "q"], _env(tmp_path, a, b), rows=30, cols=100)
    try:
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 0, pty.transcript[-2000:]
    assert_terminal_sane(pty.transcript)
    lines = pty.transcript.split(b"\n")
    top_a = next(i for i, line in enumerate(lines) if b"openai:ma" in line)
    assert b"anthropic:mb" not in lines[top_a]


def test_chat_compare_keep_then_a_resumed_conversation_goes_on_with_the_kept_reply(
        servers: tuple[SSEServer, SSEServer], tmp_path: Path) -> None:
    import json

    from tests.e2e.helpers import run_chatcli

    a, b = servers
    a.add(Reply.sse(openai_chunks(["reply from A"], usage=(3, 3))))
    b.add(Reply.sse(anthropic_events(["reply from B"])),
          Reply.sse(anthropic_events(["B again, resumed"])))
    env = _env(tmp_path, a, b)
    pty = Pty(["-m", "openai:ma"], env, rows=40, cols=160)
    prompt = b"\x1b[?2004h"
    try:
        pty.expect(prompt)
        pty.send("/compare openai:ma anthropic:mb\r")
        pty.expect("side by side")
        pty.expect(prompt)
        pty.send("pick one\r")
        pty.expect("/keep N")
        pty.expect(prompt)
        pty.send("/keep anthropic:mb\r")
        pty.expect("keeping [2] anthropic:mb")
        pty.expect(prompt)
        pty.send("\x04")
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 0, pty.transcript[-2000:]
    assert b"Traceback" not in pty.transcript
    assert_terminal_sane(pty.transcript)
    turns = [(t["role"], t["content"], t["provider"]) for t in stored_turns(tmp_path)]
    assert turns == [("user", "pick one", "openai"), ("assistant", "reply from B", "anthropic")]
    conv = str(stored_turns(tmp_path)[0]["conversation_id"])
    # `chatcli ask -c`: the conversation goes on with the kept reply, and its model.
    result = run_chatcli(["ask", "--json", "-c", "and now?"], env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["conversation_id"] == conv
    sent = b.requests[-1].json
    assert sent is not None and [(m["role"], m["content"]) for m in sent["messages"]][:2] == [
        ("user", "pick one"), ("assistant", "reply from B")]
    assert len(a.requests) == 1


def test_ctrl_c_during_a_chat_compare_stops_both_and_the_chat_goes_on(
        servers: tuple[SSEServer, SSEServer], tmp_path: Path) -> None:
    import sqlite3

    from tests.e2e.helpers import db_path

    a, b = servers
    a.add(Reply.sse([*openai_chunks(["alpha in the chat"], finish=None, done=False), Sleep(30)]))
    b.add(Reply.sse([*anthropic_events(["beta in the chat"], stop_reason=None, message_stop=False), Sleep(30)]))
    pty = Pty(["-m", "openai:ma"], _env(tmp_path, a, b), rows=40, cols=160)
    prompt = b"\x1b[?2004h"
    try:
        pty.expect(prompt)
        pty.send("/compare openai:ma anthropic:mb\r")
        pty.expect("side by side")
        pty.expect(prompt)
        pty.send("both at once\r")
        pty.expect(b"alpha in the chat")
        pty.expect(b"beta in the chat")
        pty.send(b"\x03")
        pty.expect(prompt)  # back at the prompt: the chat goes on
        assert a.wait_disconnect(10) and b.wait_disconnect(10)
        pty.send("\x04")
        code = pty.finish()
    finally:
        pty.kill()
    assert code == 0, pty.transcript[-2000:]
    assert b"Traceback" not in pty.transcript
    assert_terminal_sane(pty.transcript)
    assert not a.finished and not b.finished
    conn = sqlite3.connect(f"file:{db_path(tmp_path)}?mode=ro", uri=True)
    try:
        alternatives = sorted(conn.execute("SELECT content, finish_reason FROM alternatives").fetchall())
    finally:
        conn.close()
    assert alternatives == [("alpha in the chat", "interrupted"), ("beta in the chat", "interrupted")]
