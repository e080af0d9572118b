"""The in-process runner (tests/support/runner.py) captures what the installed binary prints.

Each case runs the same command line twice -- through `chatcli(...)` in this process and through
the installed `chatcli` as a subprocess with the same environment and stdin -- and compares exit
code, stdout and stderr. The subprocess is the reference: if the runner lost a stream, looked at
the wrong environment or left state behind, the two would differ.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runner import Result, chatcli
from tests.support.sse_server import Reply, SSEServer, openai_chunks

BINARY = shutil.which("chatcli", path=str(Path(sys.executable).parent)) or shutil.which("chatcli")
needs_binary = pytest.mark.skipif(BINARY is None, reason="the chatcli command is not installed (pip install -e .)")

KEY = "sk-canary-runner-0011223344556677AbCd"
# A key picks OpenAI as the default model; without one the local model would be chosen (when its
# extra is installed) and its warm-up would import llama.cpp for a run that fails before asking.
OPENAI = {"OPENAI_API_KEY": KEY}


def installed(*args: str, stdin: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
    """The same call through the installed binary (the reference)."""
    assert BINARY is not None
    full = {"COLUMNS": "80", "LINES": "24", **os.environ, **(env or {})}
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    proc = subprocess.run([BINARY, *args], env=full, input=data if data is not None else b"",
                          capture_output=True, timeout=60)
    return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"),
                  proc.stdout, proc.stderr)


def _timeless(text: str) -> str:
    """The footer's timings (`first token 0.05 s`, `12.3 tok/s`) differ from run to run."""
    return re.sub(r"\d+(\.\d+)? (s|ms|tok/s)\b", "<t> \\2", text)


def same(*args: str, stdin: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
    here = chatcli(*args, stdin=stdin, env=env)
    there = installed(*args, stdin=stdin, env=env)
    assert (here.exit_code, here.stdout, _timeless(here.stderr)) == (
        there.exit_code, there.stdout, _timeless(there.stderr))
    return here


@needs_binary
def test_version() -> None:
    result = same("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("chatcli ") and result.stdout.endswith("\n")
    assert result.stderr == ""


@needs_binary
def test_help_goes_to_stdout_at_the_same_width() -> None:
    result = same("--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: chatcli [OPTIONS] COMMAND [ARGS]...")
    assert "--model SPEC" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    sub = same("history", "export", "--help")
    assert "--json" in sub.stdout and "--format" not in sub.stdout


@needs_binary
def test_config_path_reads_the_environment_of_the_call(tmp_path: Path) -> None:
    chosen = tmp_path / "elsewhere" / "my.toml"
    result = same("config", "path", env={"CHATCLI_CONFIG": str(chosen)})
    assert result.exit_code == 0
    assert result.stdout == f"{chosen}\n"
    assert result.stderr_lines == ["The file does not exist yet; `chatcli config init` writes a starter one."]
    assert "CHATCLI_CONFIG" not in os.environ  # put back after the call


@needs_binary
def test_models_sees_a_key_given_for_the_call() -> None:
    without = same("models")
    assert "key OPENAI_API_KEY missing" in without.stdout
    with_key = same("models", env={"OPENAI_API_KEY": KEY})
    assert with_key.exit_code == 0
    assert "key OPENAI_API_KEY missing" not in with_key.stdout
    assert KEY not in with_key.stdout + with_key.stderr


@needs_binary
def test_usage_error_is_exit_2_with_one_stderr_line() -> None:
    result = same("ask", "-c", "-r", "abc", "hi")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr_lines == ["chatcli: use either --continue or --resume ID, not both"]


@needs_binary
def test_nothing_to_ask_with_an_empty_stdin() -> None:
    result = same("ask", stdin="", env=OPENAI)
    assert result.exit_code == 2
    assert result.stderr_lines == ['chatcli: nothing to ask: give a prompt (chatcli ask "...") or pipe text in']


@needs_binary
def test_binary_stdin_is_refused_naming_the_offset() -> None:
    result = same("ask", "review", stdin=b"ab\0cd", env=OPENAI)
    assert result.exit_code == 2
    assert result.stderr_lines == [
        "chatcli: piped input looks binary (a NUL byte at offset 2); chatcli reads text only"]


@needs_binary
def test_click_usage_error_keeps_clicks_format() -> None:
    result = same("--bogus")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.endswith("Error: No such option: --bogus\n")


@needs_binary
def test_ask_against_the_loopback_server() -> None:
    with SSEServer() as server:
        env = {"OPENAI_BASE_URL": server.openai_url, "OPENAI_API_KEY": KEY, "TERM": "dumb"}
        for _ in range(2):  # one reply for each of the two runs
            server.add(Reply.sse(openai_chunks(["Hello", " world"], finish="stop", usage=(5, 2))))
        result = same("ask", "--no-save", "-m", "openai:gpt-test", "review", stdin="x = 1\n", env=env)
        assert result.exit_code == 0
        assert result.stdout == "Hello world\n"
        assert "stop" in result.stderr and KEY not in result.stderr
        sent = [r.json for r in server.requests]
        assert sent[0] == sent[1]  # both runs sent the same request
        assert sent[0] is not None
        assert sent[0]["messages"][-1]["content"] == "review\n\n```\nx = 1\n```"


@needs_binary
def test_ask_json_saves_the_conversation_where_the_call_says() -> None:
    with SSEServer() as server:
        env = {"OPENAI_BASE_URL": server.openai_url, "OPENAI_API_KEY": KEY}
        server.add(Reply.sse(openai_chunks(["Hi"], finish="stop", usage=(3, 1))))
        result = chatcli("ask", "--json", "-m", "openai:gpt-test", "hello", env=env)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["text"] == "Hi" and payload["finish_reason"] == "stop"
    listed = same("history", "list")
    assert payload["conversation_id"][:8] in listed.stdout


def test_streams_environment_and_gc_are_put_back() -> None:
    before = (sys.stdin, sys.stdout, sys.stderr, dict(os.environ), gc.isenabled(), gc.get_freeze_count())
    result = chatcli("ask", "-c", "-r", "x", "hi", env={"CHATCLI_MODEL": "local", "HOME": None})
    assert result.exit_code == 2
    after = (sys.stdin, sys.stdout, sys.stderr, dict(os.environ), gc.isenabled(), gc.get_freeze_count())
    assert after == before


def test_environ_replaces_the_whole_environment_and_cwd_is_the_calls(tmp_path: Path) -> None:
    os.environ["OPENAI_API_KEY"] = KEY  # the test process's own: `environ=` must hide it
    try:
        config = tmp_path / "there" / "c.toml"
        whole = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
        result = chatcli("models", environ=whole)
        assert "key OPENAI_API_KEY missing" in result.stdout, result.stderr
        path = chatcli("config", "path", environ={**whole, "CHATCLI_CONFIG": str(config)})
        assert path.stdout == f"{config}\n"
    finally:
        del os.environ["OPENAI_API_KEY"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text(f"OPENAI_API_KEY={KEY}\n")
    here = os.getcwd()
    assert "key OPENAI_API_KEY missing" not in chatcli("models", cwd=elsewhere).stdout  # .env read from cwd
    assert "key OPENAI_API_KEY missing" in chatcli("models").stdout
    assert os.getcwd() == here


def test_stdin_flagged_as_a_tty_is_not_read() -> None:
    piped = chatcli("ask", stdin="", env=OPENAI)
    assert piped.exit_code == 2 and "nothing to ask" in piped.stderr
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["ok"], finish="stop", usage=(1, 1))))
        env = {"OPENAI_BASE_URL": server.openai_url, **OPENAI}
        result = chatcli("ask", "--no-save", "-m", "openai:gpt-test", "q", stdin="ignored text", stdin_isatty=True,
                         env=env)
        assert result.exit_code == 0, result.stderr
        assert server.requests[0].json is not None
        assert server.requests[0].json["messages"][-1]["content"] == "q"


def test_a_real_file_object_is_stdin_as_it_is() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "r") as idle:
        result = chatcli("ask", stdin=idle, env={"CHATCLI_STDIN_TIMEOUT": "0.2", **OPENAI})
    os.close(write_end)
    assert result.exit_code == 2
    assert result.stderr.startswith("chatcli: stdin is open but sent nothing in 0.2s")


def test_signal_handlers_run_state_and_warn_once_memory_are_put_back() -> None:
    import signal

    from chatcli import fsperm
    from chatcli.cli import report

    def mine(signum: int, frame: object) -> None:  # pragma: no cover - never delivered
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    fsperm._warned.add("/a/path/the/test/warned/about")
    before = set(fsperm._warned)  # earlier tests in this process may have warned about their own paths
    report.state.secrets = ("outer",)
    try:
        result = chatcli("--debug", "ask", "-c", "-r", "x", "hi")
        assert result.exit_code == 2
        assert signal.getsignal(signal.SIGTERM) is mine
        assert report.state.secrets == ("outer",) and report.state.debug is False
        assert fsperm._warned == before
        assert sys.argv[0] != "chatcli"
    finally:
        signal.signal(signal.SIGTERM, previous)
        fsperm._warned.discard("/a/path/the/test/warned/about")
        del report.state.secrets
