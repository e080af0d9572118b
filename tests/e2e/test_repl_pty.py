"""End to end: the INSTALLED `chatcli` command in a pseudo-terminal, talking to the loopback SSE server.

Real keys go in (Enter is CR, Ctrl-C is 0x03 through the tty's line discipline, a paste is a
bracketed-paste sequence), the real OpenAI SDK talks HTTP to `tests/support/sse_server.py`, and the tests
look at what the server received and at what the terminal shows.

`PROMPT_TOOLKIT_NO_CPR=1`: pexpect is not a terminal emulator and never answers prompt-toolkit's
cursor-position request; without the variable prompt-toolkit would print a "terminal doesn't
support CPR" warning after its timeout. Real terminals answer it.
"""

from __future__ import annotations

import base64
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.support.pty import CTRL_C, CTRL_D, PROMPT, chat_env, finish, run_in_pty, screen, wait_for
from tests.support.sse_server import Reply, SSEServer, openai_chunks

CHATCLI = shutil.which("chatcli", path=str(Path(sys.executable).parent)) or shutil.which("chatcli")
pytestmark = [
    pytest.mark.skipif(CHATCLI is None, reason="chatcli is not installed (pip install -e .)"),
    pytest.mark.skipif(not sys.platform.startswith(("linux", "darwin")), reason="needs a POSIX pty"),
]


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as srv:
        yield srv


def spawn(server: SSEServer, home: Path, command: str | None = None) -> pexpect.spawn:
    """`chatcli -m openai:gpt-test` in a 100x30 pty (or `command` through bash, for pipes)."""
    env = chat_env(server, home)
    if command is None:
        return run_in_pty(CHATCLI, ["-m", "openai:gpt-test"], env)
    return run_in_pty("/bin/bash", ["-c", command], env)


def messages(server: SSEServer, index: int) -> list[dict[str, Any]]:
    body = server.requests[index].json
    assert isinstance(body, dict)
    return list(body["messages"])


def reply(*texts: str) -> Reply:
    return Reply.sse(openai_chunks(list(texts), usage=(10, 4)), delay=0.02)


def test_message_streams_reply_and_ctrl_d_exits_zero(server: SSEServer, tmp_path: Path) -> None:
    server.add(reply("Bonjour", " tout le monde"), reply("Second", " reply"))
    child = spawn(server, tmp_path)
    child.expect_exact(PROMPT)
    child.send("hello there\r")
    child.expect_exact("tout le monde")
    child.expect_exact(PROMPT)
    child.send("and again\r")
    child.expect_exact("reply")
    child.expect_exact(PROMPT)
    child.send(CTRL_D)
    assert finish(child) == 0
    assert messages(server, 0) == [{"role": "user", "content": "hello there"}]
    # The whole history goes with every request: the model remembers.
    assert messages(server, 1) == [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "Bonjour tout le monde"},
        {"role": "user", "content": "and again"},
    ]
    assert server.requests[0].json is not None and server.requests[0].json["model"] == "gpt-test"
    assert "sk-canary" not in screen(child)


def test_ctrl_c_mid_reply_keeps_partial_and_next_turn_sends_it(server: SSEServer, tmp_path: Path) -> None:
    stalled = Reply.sse(openai_chunks(["Partial", " answer"], finish=None, done=False), delay=0.02, stall=9)
    server.add(stalled, reply("Recovered"))
    # bash runs `stty -a` after chatcli: the terminal must be back in cooked mode with echo.
    modes = "stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo -e -icanon -e -echo"
    child = spawn(server, tmp_path, f"'{CHATCLI}' -m openai:gpt-test; echo EXIT=$?; {modes}")
    child.expect_exact(PROMPT)
    child.send("tell me a long story\r")
    child.expect_exact("answer")
    time.sleep(0.3)  # the server is stalling now, the reply is mid-stream
    started = time.monotonic()
    child.send(CTRL_C)
    assert server.wait_disconnect(timeout=5), "the server never saw the client hang up"
    assert time.monotonic() - started < 3, "Ctrl-C did not stop the stream at once"
    child.expect("(?i)interrupted")
    child.expect_exact(PROMPT)
    child.send("please go on\r")
    child.expect_exact("Recovered")
    child.expect_exact(PROMPT)
    child.send(CTRL_D)
    child.expect_exact("EXIT=0")
    child.expect(pexpect.EOF)
    tail = screen(child).rsplit("EXIT=0", 1)[1].split()
    assert "icanon" in tail and "echo" in tail, tail
    assert server.disconnects == [0]
    assert messages(server, 1) == [
        {"role": "user", "content": "tell me a long story"},
        {"role": "assistant", "content": "Partial answer"},
        {"role": "user", "content": "please go on"},
    ]


def test_ctrl_c_while_the_panel_is_busy_painting_returns_to_the_prompt(server: SSEServer, tmp_path: Path) -> None:
    """Ctrl-C while the live panel is redrawing a fast stream (no stall: the render thread holds the
    view's lock much of the time), three times in one chat, then a normal turn: the chat goes on, each
    partial reply is kept and sent back, the server saw each disconnect. (The lock hang CI found in
    `ask` did not show here in 24 tries with the old code; `tests/test_render_panel.py` reproduces
    it every time.)"""
    lines = [f"- item {i} with **bold** and `code` and a [link](https://example.com/{i})\n" for i in range(4000)]
    for _ in range(3):
        server.add(Reply.sse(openai_chunks(lines), delay=0.002))
    server.add(reply("Still", " here"))
    child = spawn(server, tmp_path)
    for n in range(3):
        child.expect_exact(PROMPT)
        child.send(f"list {n}\r")
        child.expect_exact("item 300 ")
        child.send(CTRL_C)
        child.expect("(?i)interrupted")
    child.expect_exact(PROMPT)
    child.send("are you there?\r")
    child.expect_exact("Still here")
    child.expect_exact(PROMPT)
    child.send(CTRL_D)
    assert finish(child) == 0
    sent = messages(server, 3)
    assert [m["role"] for m in sent] == ["user", "assistant"] * 3 + ["user"]
    for m in sent[1:6:2]:
        assert m["content"].startswith(lines[0]) and len(m["content"]) < len("".join(lines))
    assert server.disconnects == [0, 1, 2]


def test_bracketed_paste_is_one_message(server: SSEServer, tmp_path: Path) -> None:
    server.add(reply("Got it"))
    child = spawn(server, tmp_path)
    child.expect_exact(PROMPT)
    pasted = "def f(x):\r    return x * 2\r\rprint(f(21))"
    child.send("\x1b[200~" + pasted + "\x1b[201~")
    time.sleep(0.3)
    assert len(server.requests) == 0, "a newline inside the paste submitted the message"
    child.send("\r")
    child.expect_exact("Got it")
    child.expect_exact(PROMPT)
    child.send(CTRL_D)
    assert finish(child) == 0
    assert len(server.requests) == 1
    assert messages(server, 0) == [{"role": "user", "content": "def f(x):\n    return x * 2\n\nprint(f(21))"}]


def test_ctrl_c_twice_on_empty_prompt_exits_zero(server: SSEServer, tmp_path: Path) -> None:
    child = spawn(server, tmp_path)
    child.expect_exact(PROMPT)
    child.send("some draft")
    child.send(CTRL_C)  # clears the line
    time.sleep(0.2)
    child.send(CTRL_C)
    child.expect_exact("Ctrl-D")  # the hint
    child.send(CTRL_C)
    assert finish(child) == 0
    assert server.requests == []


def test_piped_text_then_interactive_on_the_terminal(server: SSEServer, tmp_path: Path) -> None:
    server.add(reply("Notes", " summarised"), reply("Follow-up", " answered"))
    child = spawn(server, tmp_path,
                  f"printf 'meeting notes\\nline two\\n' | '{CHATCLI}' -m openai:gpt-test; echo EXIT=$?")
    child.expect_exact("summarised")
    child.expect_exact(PROMPT)
    child.send("what were the action items?\r")
    child.expect_exact("answered")
    child.expect_exact(PROMPT)
    child.send(CTRL_D)
    child.expect_exact("EXIT=0")
    assert messages(server, 0)[0]["content"].startswith("meeting notes\nline two")
    assert messages(server, 1) == [
        messages(server, 0)[0],
        {"role": "assistant", "content": "Notes summarised"},
        {"role": "user", "content": "what were the action items?"},
    ]


def test_slash_commands_in_the_terminal(server: SSEServer, tmp_path: Path) -> None:
    server.add(reply("First"), reply("Again"))
    child = spawn(server, tmp_path)
    child.expect_exact(PROMPT)
    child.send("/hel\r")
    child.expect_exact("did you mean /help?")
    child.expect_exact(PROMPT)
    child.send("hi\r")
    child.expect_exact("First")
    child.expect_exact(PROMPT)
    child.send("/retry\r")
    child.expect_exact("Again")
    child.expect_exact(PROMPT)
    child.send("/usage\r")
    # Both replies were paid for: the one /retry replaced counts too (issue 16 item 6).
    child.expect_exact("this session: 2 replies · 20 tokens in · 8 out")
    child.expect_exact("this conversation: 2 replies (1 replaced or undone) · 20 tokens in · 8 out")
    child.expect_exact(PROMPT)
    child.send("/copy\r")
    # The pty is a terminal: the last reply goes to the clipboard through OSC 52 (base64 of "Again").
    child.expect_exact("\x1b]52;c;" + base64.b64encode(b"Again").decode() + "\x07")
    child.expect_exact(PROMPT)
    child.send("/exit\r")
    assert finish(child) == 0
    assert len(server.requests) == 2
    assert messages(server, 1) == [{"role": "user", "content": "hi"}]
    assert wait_for(lambda: (tmp_path / "chatcli-data" / "input_history").exists(), 2)
    history = (tmp_path / "chatcli-data" / "input_history").read_text()
    assert "+hi" in history and "sk-canary" not in history


def test_ctrl_x_ctrl_e_edits_the_message_in_editor(server: SSEServer, tmp_path: Path) -> None:
    server.add(reply("Edited", " and sent"))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\n# appends to what was typed, like a user editing the draft\n"
                      "printf '\\nwritten in the editor' >> \"$1\"\n")
    editor.chmod(0o755)
    env = chat_env(server, tmp_path)
    env.update({"EDITOR": str(editor), "VISUAL": str(editor)})
    child = run_in_pty(CHATCLI, ["-m", "openai:gpt-test"], env)
    child.expect_exact(PROMPT)
    child.send("typed first")
    child.send("\x18\x05")  # Ctrl-X Ctrl-E
    child.expect_exact("and sent")
    child.expect_exact(PROMPT)
    child.send(CTRL_D)
    assert finish(child) == 0
    assert messages(server, 0) == [{"role": "user", "content": "typed first\nwritten in the editor"}]


def test_ctrl_c_during_retry_countdown_returns_to_the_prompt(server: SSEServer, tmp_path: Path) -> None:
    server.add(Reply.error(429, "Rate limit reached", type="rate_limit_error", code="rate_limit_exceeded",
                           headers=(("retry-after", "8"),)),
               reply("After", " the wait"))
    child = spawn(server, tmp_path)
    child.expect_exact(PROMPT)
    child.send("hi\r")
    child.expect_exact("retrying in")
    started = time.monotonic()
    child.send(CTRL_C)
    child.expect_exact(PROMPT)
    assert time.monotonic() - started < 3, "Ctrl-C did not cancel the wait at once"
    child.send("again\r")
    child.expect_exact("the wait")
    child.expect_exact(PROMPT)
    child.send(CTRL_D)
    assert finish(child) == 0
    assert len(server.requests) == 2  # no stray retry of the cancelled request
    # The cancelled exchange had no reply, so the next request is just the new message.
    assert messages(server, 1) == [{"role": "user", "content": "again"}]


def test_the_prompt_is_drawn_before_the_chats_own_modules_load(server: SSEServer, tmp_path: Path) -> None:
    """What makes the prompt fast (repl_bench: launch -> prompt <= 250 ms): the first frame needs
    only the settings and the model's label. The session, its provider, the slash commands, the
    stream events and the history store are loaded right after that frame, and the chat works."""
    loaded = tmp_path / "loaded-at-first-frame"
    code = (
        "import sys\n"
        "import prompt_toolkit.renderer as renderer\n"
        "render = renderer.Renderer.render\n"
        "def first_frame(self, *args, **kwargs):\n"
        "    render(self, *args, **kwargs)\n"
        "    renderer.Renderer.render = render\n"
        f"    with open({str(loaded)!r}, 'w') as f:\n"
        "        f.write(' '.join(m for m in sys.modules if m.startswith('chatcli')))\n"
        "renderer.Renderer.render = first_frame\n"
        "sys.argv = ['chatcli', '-m', 'openai:gpt-test']\n"
        "from chatcli.cli import main\n"
        "main()\n"
    )
    server.add(reply("built", " after the frame"))
    child = run_in_pty(sys.executable, ["-c", code], chat_env(server, tmp_path))
    child.expect_exact(PROMPT)
    child.send("hello\r")
    child.expect_exact("after the frame")
    child.expect_exact(PROMPT)
    child.send(CTRL_D)
    assert finish(child) == 0
    modules = set(loaded.read_text().split())
    assert {"chatcli.cli", "chatcli.config", "chatcli.repl"} <= modules  # the file is what it says
    late = {"chatcli.repl.commands", "chatcli.session", "chatcli.events", "chatcli.turn", "chatcli.providers.openai",
            "chatcli.providers.base", "chatcli.history.store"}
    assert not modules & late, f"loaded before the first frame: {sorted(modules & late)}"


def test_a_plain_http_warning_is_printed_above_the_prompt(server: SSEServer, tmp_path: Path) -> None:
    """The provider warns about a plain-http URL to another host when it is built, which is now
    just after the first frame: the line must appear once, with the prompt drawn again below it,
    and the chat must go on. (The request reaches the loopback server as an HTTP proxy.)"""
    server.add(reply("through", " the proxy"))
    env = dict(chat_env(server, tmp_path), OPENAI_BASE_URL="http://llm.example.test/v1", HTTP_PROXY=server.url,
               http_proxy=server.url, NO_PROXY="", no_proxy="")
    child = run_in_pty(CHATCLI, ["-m", "openai:gpt-test"], env)
    child.expect_exact("not HTTPS")
    child.expect_exact(PROMPT)  # drawn again, below the warning
    child.send("hello\r")
    child.expect_exact("the proxy")
    child.expect_exact(PROMPT)
    child.send(CTRL_D)
    assert finish(child) == 0
    assert screen(child).count("not HTTPS") == 1
    assert server.requests[-1].path.endswith("/chat/completions")


def test_continue_and_resume_flags_say_which_conversation_before_the_prompt(server: SSEServer,
                                                                            tmp_path: Path) -> None:
    # Issue 16 item 7: `chatcli -c` / `-r ID` started silently, while /resume names the
    # conversation. The same summary (title, reply count, last reply) now comes before the prompt.
    server.add(reply("Paris is the", " capital"), reply("Lyon"))
    child = spawn(server, tmp_path)
    child.expect_exact(PROMPT)
    child.send("capital of France?\r")
    child.expect_exact("capital")
    child.expect_exact(PROMPT)
    child.send("/exit\r")
    assert finish(child) == 0
    saved = screen(child)
    ident = saved.split("chatcli -r ", 1)[1].split()[0]

    for flags in (["-c"], ["-r", ident[:6]]):
        child = run_in_pty(CHATCLI, ["-m", "openai:gpt-test", *flags], chat_env(server, tmp_path))
        child.expect_exact(PROMPT)
        shown = screen(child)
        child.send("/exit\r")
        assert finish(child) == 0
        head = shown.split(PROMPT, 1)[0]  # all of it said before the first prompt
        assert f'resumed conversation {ident}: "capital of France?" · 1 reply' in head, shown
        assert "last reply: Paris is the capital" in head, shown

    # /resume inside the chat prints the very same lines.
    child = spawn(server, tmp_path)
    child.expect_exact(PROMPT)
    child.send(f"/resume {ident}\r")
    child.expect_exact("last reply: Paris is the capital")
    child.expect_exact(PROMPT)
    child.send("/exit\r")
    assert finish(child) == 0
    assert f'resumed conversation {ident}: "capital of France?" · 1 reply' in screen(child)


def test_kill_9_once_the_first_token_shows_keeps_the_message(server: SSEServer, tmp_path: Path) -> None:
    # The chat commits the user's message while its request is in flight (chatcli/repl/inflight.py,
    # issue 16 item 18), but before the reply's first token is shown: a SIGKILL from then on
    # still finds the message saved.
    import signal
    import sqlite3

    server.add(Reply.sse(openai_chunks(["FIRSTTOKEN", *[" more"] * 40], usage=(10, 4)), delay=0.5))
    child = spawn(server, tmp_path)
    child.expect_exact(PROMPT)
    child.send("remember this message\r")
    child.expect_exact("FIRSTTOKEN")
    child.kill(signal.SIGKILL)
    child.close(force=True)
    db = sqlite3.connect(tmp_path / "chatcli-data" / "history.db")
    try:
        rows = db.execute("SELECT role, content FROM turns ORDER BY id").fetchall()
    finally:
        db.close()
    assert ("user", "remember this message") in rows
