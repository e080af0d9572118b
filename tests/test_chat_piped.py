# On the installed binary: "no terminal" here means a new session without /dev/tty, and the rest is a pty.
"""`chatcli` (the chat) with piped stdin that is an image or a PDF: the file joins the attachments
pending for the first message, as `-a` would -- never the "binary stdin" refusal -- and the checks
`ask` makes apply before the chat starts. The INSTALLED command: without a terminal as a subprocess
in its own session (no /dev/tty), and in a pseudo-terminal with keys read from /dev/tty."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from tests.support import media
from tests.support.binary import CHATCLI, KEY, cli_env
from tests.support.sse_server import Reply, SSEServer, openai_chunks

pytestmark = pytest.mark.skipif(CHATCLI is None, reason="the chatcli command is not installed (pip install -e .)")

PNG = media.png()


def run_detached(args: list[str], env: dict[str, str], data: bytes) -> subprocess.CompletedProcess[str]:
    """No controlling terminal at all (a new session), so /dev/tty cannot be opened: CI, cron."""
    assert CHATCLI is not None
    proc = subprocess.run([CHATCLI, *args], env=env, input=data, capture_output=True, timeout=60,
                          start_new_session=True)
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def image_url(data: bytes, media_type: str = "image/png") -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{base64.b64encode(data).decode()}"}}


def test_piped_text_with_dash_a_and_no_terminal_sends_the_attachment_too(tmp_path: Path) -> None:
    (tmp_path / "shot.png").write_bytes(PNG)
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["a red square"])))
        result = run_detached(["--no-save", "-a", str(tmp_path / "shot.png")], cli_env(server), b"what is this?")
        assert result.returncode == 0, result.stderr
        body = server.requests[0].json
    assert body is not None
    assert body["messages"][-1]["content"] == [{"type": "text", "text": "what is this?"}, image_url(PNG)]


def test_a_piped_image_is_not_refused_as_binary(tmp_path: Path) -> None:
    with SSEServer() as server:
        result = run_detached(["--no-save"], cli_env(server), PNG)
    assert "binary" not in result.stderr, result.stderr
    assert "attached image/png" in result.stderr and "from stdin" in result.stderr
    # No terminal to type the question on: the chat's own exit 2, nothing sent.
    assert result.returncode == 2 and "needs a terminal" in result.stderr
    assert server.requests == []


def test_a_piped_image_for_a_model_without_vision_exits_2_before_the_chat() -> None:
    result = run_detached(["--no-save", "-m", "local"], cli_env(None), PNG)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "image" in result.stderr and "Traceback" not in result.stderr


def test_other_binary_stdin_keeps_its_error() -> None:
    result = run_detached(["--no-save"], cli_env(None, OPENAI_API_KEY=KEY), b"\x00\x01\x02 not media")
    assert result.returncode == 2 and "binary" in result.stderr and result.stderr.count("\n") == 1


def test_in_a_terminal_the_piped_image_goes_with_the_first_typed_message(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    from tests.support.pty import PROMPT, chat_env, finish, run_in_pty

    (tmp_path / "shot.png").write_bytes(PNG)
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["It is a red square."], usage=(5, 2))))
        child = run_in_pty("/bin/bash", ["-c", f"cat '{tmp_path / 'shot.png'}' | '{CHATCLI}' -m openai:gpt-test; "
                                         "echo EXIT=$?"], chat_env(server, tmp_path))
        child.expect_exact("from stdin")
        child.expect_exact(PROMPT)
        assert server.requests == []  # nothing sent until the user asks
        child.send("what is wrong here?\r")
        child.expect_exact("red square")
        child.expect_exact(PROMPT)
        child.send("\x04")
        child.expect_exact("EXIT=0")
        assert finish(child) == 0
        body = server.requests[0].json
    assert body is not None and pexpect is not None
    assert body["messages"][-1]["content"] == [{"type": "text", "text": "what is wrong here?"}, image_url(PNG)]


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_attach_and_role_in_the_chat_against_both_dialects(tmp_path: Path, dialect: str) -> None:
    # `chatcli --role NAME`, `/attach PATH` in a pseudo-terminal, the real SDK on the loopback server.
    pytest.importorskip("pexpect")
    from tests.support.pty import PROMPT, chat_env, finish, run_in_pty
    from tests.support.sse_server import anthropic_events

    (tmp_path / "shot.gif").write_bytes(media.gif())
    config = tmp_path / "config.toml"
    config.write_text('[roles.reviewer]\nsystem = "You review images."\ntemperature = 0.3\n')
    config.chmod(0o600)
    with SSEServer() as server:
        env = chat_env(server, tmp_path)
        if dialect == "openai":
            server.add(Reply.sse(openai_chunks(["A tiny gif."], usage=(5, 2))))
            model = "openai:gpt-test"
        else:
            server.add(Reply.sse(anthropic_events(["A tiny gif."])))
            env.update(ANTHROPIC_BASE_URL=server.anthropic_url, ANTHROPIC_API_KEY=KEY)
            model = "anthropic:claude-test"
        assert CHATCLI is not None
        child = run_in_pty(CHATCLI, ["--config", str(config), "--role", "reviewer", "-m", model], env)
        child.expect_exact(PROMPT)
        child.send(f"/attach {tmp_path / 'shot.gif'}\r")
        child.expect_exact("goes with the next message")
        child.expect_exact(PROMPT)
        child.send("what is it?\r")
        child.expect_exact("A tiny gif.")
        child.expect_exact(PROMPT)
        child.send("\x04")
        assert finish(child) == 0
        body = server.requests[0].json
    assert body is not None and body["temperature"] == 0.3
    data = base64.b64encode(media.gif()).decode()
    if dialect == "openai":
        assert body["messages"][0] == {"role": "system", "content": "You review images."}
        assert body["messages"][-1]["content"] == [{"type": "text", "text": "what is it?"},
                                                   image_url(media.gif(), "image/gif")]
    else:
        system = body["system"]
        assert system == "You review images." or system[0]["text"] == "You review images."
        assert body["messages"][-1]["content"] == [
            {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": data}},
            {"type": "text", "text": "what is it?"}]
