"""`chatcli` with no command reaches the REPL with the session cli.py built (wiring, not REPL behaviour:
tests/test_repl.py covers that). The terminal cases run the installed command in a pty (and one under
LC_ALL=C, read at interpreter start); the piped one runs in-process (tests/support/runner.py)."""

from __future__ import annotations

import pytest

from tests.support.binary import CHATCLI, KEY, cli_env, user_text
from tests.support.runner import run
from tests.support.sse_server import Reply, SSEServer, openai_chunks

pexpect = pytest.importorskip("pexpect")
needs_binary = pytest.mark.skipif(CHATCLI is None, reason="the chatcli command is not installed (pip install -e .)")


@needs_binary
def test_repl_in_a_terminal_uses_flags_and_exits_on_ctrl_d() -> None:
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["Hello", " from the REPL"], usage=(3, 4))))
        env = cli_env(server, TERM="xterm")
        child = pexpect.spawn(CHATCLI, ["-s", "be brief", "--max-tokens", "55"], env=env, encoding="utf-8",
                              timeout=30, dimensions=(30, 100))
        try:
            child.expect(">")
            child.send("hi there\r")  # Enter (a bare \n is Ctrl-J: a newline in the message)
            child.expect("from the REPL")
            child.expect(">")
            child.sendcontrol("d")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
        assert child.exitstatus == 0
        body = server.requests[0].json
        assert body is not None
        assert user_text(server) == "hi there"
        assert body["max_tokens"] == 55 or body.get("max_completion_tokens") == 55
        assert {"role": "system", "content": "be brief"} in body["messages"]
        assert KEY not in (child.before or "")


def test_piped_first_message_without_a_terminal() -> None:
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["piped answer"])))
        result = run([], cli_env(server), input=b"notes to discuss\n")
        assert result.stdout == "piped answer\n"
        assert user_text(server) == "notes to discuss\n"


@needs_binary
def test_non_ascii_typed_in_the_chat_under_the_c_locale() -> None:
    # LC_ALL=C without UTF-8 mode: prompt-toolkit decoded the keys as ASCII, so "é" typed in a
    # UTF-8 terminal reached the request as escaped bytes and the turn failed ("surrogates not
    # allowed"). The reply's emoji is shown replaced on the ASCII terminal (issue 16, item 2).
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["Party 🎉", " done"], usage=(3, 4))))
        env = cli_env(server, TERM="xterm", LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
        for name in ("LANG", "LC_CTYPE", "PYTHONIOENCODING"):
            env.pop(name, None)
        child = pexpect.spawn(CHATCLI, [], env=env, timeout=30, dimensions=(30, 100))
        try:
            child.expect(b">")
            child.send("héllo 🎉 漢字\r".encode())
            child.expect(b"done")
            child.expect(b">")
            child.sendcontrol("d")
            child.expect(pexpect.EOF)
            transcript = (child.before or b"")
        finally:
            child.close(force=True)
        assert child.exitstatus == 0
        assert b"internal error" not in transcript
        assert user_text(server) == "héllo 🎉 漢字"
