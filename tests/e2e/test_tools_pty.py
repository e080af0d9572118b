"""Tools in the chat, end to end: the INSTALLED `chatcli` in a pseudo-terminal, a scripted model on
the loopback server calling real MCP servers (`mcp-server-time`; the scripted test server for a
slow call and a hostile result).

The question is chatcli's own, drawn below the reply; only a key pressed at it runs the call. Each
case checks what the next request carried and that the terminal was left sane."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import Pty, assert_terminal_sane
from tests.support.sse_server import Reply, SSEServer, openai_chunks, openai_tool_call, openai_tool_chunks

CHATCLI = shutil.which("chatcli", path=str(Path(sys.executable).parent)) or shutil.which("chatcli")
pytestmark = pytest.mark.skipif(CHATCLI is None, reason="chatcli is not installed (pip install -e .)")

PROMPT = b"\x1b[?2004h"
SCRIPTED = Path(__file__).resolve().parent.parent / "support" / "mcp_scripted_server.py"


@pytest.fixture
def server() -> Iterator[SSEServer]:
    with SSEServer() as srv:
        yield srv


def env_for(server: SSEServer, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "CHATCLI_"))}
    env.update(HOME=str(home), CHATCLI_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / ".config"),
               OPENAI_BASE_URL=server.openai_url, OPENAI_API_KEY="sk-canary-tools-0123456789abcdef",
               TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    return env


def config(home: Path) -> str:
    path = home / "config.toml"
    path.write_text(
        '[mcp.servers.time]\ncommand = "mcp-server-time"\nargs = ["--local-timezone", "UTC"]\n'
        f'[mcp.servers.lab]\ncommand = "{sys.executable}"\nargs = ["{SCRIPTED}"]\n')
    path.chmod(0o600)
    return str(path)


def calls(name: str, arguments: str, cid: str = "call_1") -> Reply:
    return Reply.sse(openai_tool_chunks([openai_tool_call(0, id=cid, type="function", name=name,
                                                          arguments=arguments)]), delay=0.01)


def answer(text: str) -> Reply:
    return Reply.sse(openai_chunks([text], usage=(10, 4)), delay=0.01)


def tool_results(server: SSEServer, index: int) -> list[dict[str, object]]:
    body = server.requests[index].json
    assert isinstance(body, dict)
    return [m for m in body["messages"] if m.get("role") == "tool"]


def chat(server: SSEServer, home: Path) -> Pty:
    pty = Pty(["-m", "openai:gpt-test", "--config", config(home)], env_for(server, home))
    pty.expect(PROMPT)
    return pty


def test_approved_call_runs_and_the_answer_follows(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls("time__get_current_time", '{"timezone": "Asia/Tokyo"}'), answer("It is evening in Tokyo."))
    pty = chat(server, tmp_path)
    pty.send("What time is it in Tokyo?\r")
    pty.expect("[A] always (saved)")
    assert len(server.requests) == 1  # asked first: nothing ran, no second request yet
    pty.send("y")
    pty.expect("It is evening in Tokyo.")
    pty.expect(PROMPT)
    (result,) = tool_results(server, 1)
    assert result["tool_call_id"] == "call_1" and "Asia/Tokyo" in str(result["content"])
    assert b"time \xc2\xb7 get_current_time" in pty.transcript and b"run once" in pty.transcript
    pty.send("\x04")
    assert pty.finish() == 0
    assert_terminal_sane(pty.transcript)


def test_declined_call_tells_the_model_and_the_chat_goes_on(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls("time__get_current_time", '{"timezone": "UTC"}'), answer("Fine, no tool."),
               answer("Still here."))
    pty = chat(server, tmp_path)
    pty.send("time?\r")
    pty.expect("[A] always (saved)")
    pty.send("n")
    pty.expect("Fine, no tool.")
    pty.expect(PROMPT)
    assert tool_results(server, 1)[0]["content"] == "The user declined to run this tool call."
    pty.send("next\r")
    pty.expect("Still here.")
    pty.expect(PROMPT)
    pty.send("\x04")
    assert pty.finish() == 0
    assert_terminal_sane(pty.transcript)


def test_always_in_this_chat_skips_the_next_question(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls("time__get_current_time", '{"timezone": "UTC"}', "c1"), answer("one"),
               calls("time__get_current_time", '{"timezone": "UTC"}', "c2"), answer("two"))
    pty = chat(server, tmp_path)
    pty.send("first\r")
    pty.expect("[A] always (saved)")
    pty.send("a")
    pty.expect("one")
    pty.expect(PROMPT)
    pty.send("second\r")
    pty.expect("two")
    pty.expect(PROMPT)
    assert pty.transcript.count(b"[A] always (saved)") == 1
    assert "UTC" in str(tool_results(server, 3)[-1]["content"])
    pty.send("\x04")
    assert pty.finish() == 0


def test_ctrl_c_during_a_call_cancels_it_and_returns_to_the_prompt(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls("lab__slow", '{"seconds": 30}'), answer("after the interruption"))
    pty = chat(server, tmp_path)
    pty.send("run the slow one\r")
    pty.expect("[A] always (saved)")
    pty.send("y")
    pty.expect("(Ctrl-C cancels)")  # the spinner: the call is running (slow(30) on the scripted server)
    pty.sigint()
    pty.expect(PROMPT, timeout=10)
    assert "↳ interrupted".encode() in pty.transcript  # the spinner's line says what became of the call
    assert len(server.requests) == 1  # back at the prompt: no request with a made-up result
    pty.send("go on\r")
    pty.expect("after the interruption")
    pty.expect(PROMPT)
    (result,) = tool_results(server, 1)
    assert result["tool_call_id"] == "call_1" and "interrupted" in str(result["content"])
    pty.send("\x04")
    assert pty.finish() == 0
    assert_terminal_sane(pty.transcript)
    db = sqlite3.connect(f"file:{tmp_path / 'data' / 'history.db'}?mode=ro", uri=True)
    assert [r[0] for r in db.execute("SELECT role FROM turns ORDER BY id")][:3] == ["user", "assistant", "tool"]


def test_a_running_call_shows_a_spinner_with_its_time_then_the_result(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls("lab__slow", '{"seconds": 1.5}'), answer("slept well"))
    pty = chat(server, tmp_path)
    pty.send("sleep a bit\r")
    pty.expect("[A] always (saved)")
    pty.send("y")
    pty.expect("lab.slow · ")
    pty.expect(" s  (Ctrl-C cancels)")
    pty.expect("↳ ok")
    pty.expect("slept well")
    pty.expect(PROMPT)
    spun = pty.transcript[pty.transcript.index(b"run once"):pty.transcript.index("↳ ok".encode())]
    assert spun.count(b"\r\x1b[2K") >= 2  # redrawn in place, then cleared for the result line
    assert "⠋".encode() in spun
    pty.send("\x04")
    assert pty.finish() == 0
    assert_terminal_sane(pty.transcript)


def test_a_hostile_result_and_hostile_arguments_reach_the_terminal_inert(server: SSEServer, tmp_path: Path) -> None:
    evil = "\\u001b]52;c;aGVsbG8=\\u0007\\u001b[2J"
    server.add(calls("lab__echo", '{"text": "' + evil + 'done"}'), answer("ok"))
    pty = chat(server, tmp_path)
    pty.send("echo it\r")
    pty.expect("[A] always (saved)")
    pty.send("y")
    pty.expect("ok")
    pty.expect(PROMPT)
    assert b"\x1b]52" not in pty.transcript and b"\x1b[2J" not in pty.transcript
    assert "␛]52;c;aGVsbG8=␇".encode() in pty.transcript
    pty.send("\x04")
    assert pty.finish() == 0
    assert_terminal_sane(pty.transcript)


def test_a_resize_while_the_question_shows_changes_nothing(server: SSEServer, tmp_path: Path) -> None:
    server.add(calls("time__get_current_time", '{"timezone": "UTC"}'), answer("resized fine"))
    pty = chat(server, tmp_path)
    pty.send("time?\r")
    pty.expect("[A] always (saved)")
    pty.child.setwinsize(20, 70)
    pty.send("y")
    pty.expect("resized fine")
    pty.expect(PROMPT)
    assert "UTC" in str(tool_results(server, 1)[0]["content"])
    pty.send("\x04")
    assert pty.finish() == 0
    assert_terminal_sane(pty.transcript)


def test_slash_tools_lists_servers_and_turns_one_off(server: SSEServer, tmp_path: Path) -> None:
    server.add(answer("no tools now"))
    pty = chat(server, tmp_path)
    time.sleep(3.0)  # the servers start in the background after the prompt; /tools shows their state now
    pty.send("/tools\r")
    pty.expect("get_current_time")
    pty.expect(PROMPT)
    assert b"time (on): ready, 2 tools" in pty.transcript
    pty.send("/tools off time\r")
    pty.expect(PROMPT)
    pty.send("/tools off lab\r")
    pty.expect(PROMPT)
    pty.send("hello\r")
    pty.expect("no tools now")
    pty.expect(PROMPT)
    body = server.requests[0].json
    assert isinstance(body, dict) and "tools" not in body
    pty.send("\x04")
    assert pty.finish() == 0
    assert_terminal_sane(pty.transcript)


@pytest.mark.parametrize(("key", "status"), [("y", "ok"), ("n", "declined")])
def test_ask_on_a_terminal_asks_then_answers(server: SSEServer, tmp_path: Path, key: str, status: str) -> None:
    # `chatcli ask` on a terminal: the question reads its key from the terminal; approved, the
    # result goes into the next request; declined, the model is told and still answers.
    server.add(calls("time__get_current_time", '{"timezone": "Asia/Tokyo"}'), answer("It is evening in Tokyo."))
    pty = Pty(["ask", "-m", "openai:gpt-test", "--config", config(tmp_path), "--json", "what time is it in Tokyo?"],
              env_for(server, tmp_path))
    pty.expect("[A] always (saved)")
    assert len(server.requests) == 1
    pty.send(key)
    pty.expect('"finish_reason"')
    assert pty.finish() == 0
    (result,) = tool_results(server, 1)
    if status == "ok":
        assert "Asia/Tokyo" in str(result["content"])
    else:
        assert result["content"] == "The user declined to run this tool call."
    out = pty.transcript.decode("utf-8", "replace")
    assert f'"status": "{status}"' in out and "It is evening in Tokyo." in out
    assert_terminal_sane(pty.transcript)
