"""The INSTALLED `chatcli` command as a subprocess: where it is, its environment, its output.

For what only a real process has (signals, `| head -1`, the pty); everything else runs in-process
through tests/support/runner.py, whose `run(args, cli_env(...), input=...)` takes the same
arguments. `cli_env()` starts from
`os.environ` after the autouse isolation fixture (tests/conftest.py) ran, so nothing of the
developer's (keys, config, history) leaks in; `KEY` and `OTHER_KEY` are canaries that
`assert_clean` checks never reach the output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from tests.support.sse_server import SSEServer

CHATCLI = shutil.which("chatcli", path=str(Path(sys.executable).parent)) or shutil.which("chatcli")

KEY = "sk-canary-5f1e2d3c4b5a69788796WXYZ"
OTHER_KEY = "sk-dotenv-00aa11bb22cc33dd44eeQRST"


def cli_env(server: SSEServer | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(TERM="dumb", PYTHONUNBUFFERED="1", CHATCLI_STDIN_TIMEOUT="2")
    env.pop("NO_COLOR", None)
    if server is not None:
        env.update(OPENAI_BASE_URL=server.openai_url, OPENAI_API_KEY=KEY)
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], *, input: bytes | None = None, stdin: Any = subprocess.DEVNULL,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert CHATCLI is not None
    proc = subprocess.run([CHATCLI, *args], env=env, input=input, stdin=None if input is not None else stdin,
                          capture_output=True, timeout=timeout)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class Output(Protocol):
    """What `run()` here and tests/support/runner.py's `run()` both return."""

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


def assert_clean(result: Output, *secrets: str) -> None:
    for secret in (KEY, OTHER_KEY, *secrets):
        assert secret not in result.stdout and secret not in result.stderr
    assert "Traceback" not in result.stderr


def user_text(server: SSEServer, index: int = -1) -> str:
    body = server.requests[index].json
    assert body is not None
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content)
