"""The chat in a pseudo-terminal (pexpect): its environment, the child, what the terminal received.

Shared by tests/e2e/test_repl_pty.py and the piped-chat tests (tests/test_chat_piped.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pexpect

from tests.support.sse_server import SSEServer

TIMEOUT = 20  # generous: a cold start imports the SDK; bounded: a hang fails, never blocks CI

# prompt-toolkit turns bracketed paste on when a prompt starts and off when it ends, so this
# sequence marks "a prompt is active and reading keys" (the "> " itself is drawn with cursor
# moves, not a literal space).
PROMPT = "\x1b[?2004h"
CTRL_C = "\x03"
CTRL_D = "\x04"


def chat_env(server: SSEServer, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "CHATCLI_"))}
    env.update({
        "HOME": str(home),
        "CHATCLI_HOME": str(home / "chatcli-data"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "OPENAI_BASE_URL": server.openai_url,
        "OPENAI_API_KEY": "sk-canary-e2e-0123456789abcdef",
        "TERM": "xterm-256color",
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "COLUMNS": "100",
        "LINES": "30",
    })
    env.pop("NO_COLOR", None)
    return env


def run_in_pty(program: str | None, args: list[str], env: dict[str, str]) -> pexpect.spawn:
    """`program` in a 100x30 pty, everything it writes kept for `screen()`."""
    assert program is not None
    child = pexpect.spawn(program, args, env=env, dimensions=(30, 100), encoding="utf-8", codec_errors="replace",
                          timeout=TIMEOUT)
    child.logfile_read = _Log()
    return child


class _Log:
    """Keeps everything the terminal received, for assertions and for failure messages."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, data: str) -> None:
        self.parts.append(data)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.parts)


def screen(child: pexpect.spawn) -> str:
    log = child.logfile_read
    assert isinstance(log, _Log)
    return log.text


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF, timeout=TIMEOUT)
    child.close()
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}"
    return int(child.exitstatus)


def wait_for(predicate: Any, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
