"""What the user sees when a run ends badly, and the run's state the reporter needs.

`chatcli.cli.run()` decides the exit code; this module only writes: one `chatcli: <message>`
line on stderr (sanitized, secrets redacted), the traceback with `--debug`, information lines,
and stdout's quiet end after EPIPE. It imports nothing heavy at import time: `run()` imports it
on every command line, `--help` included.
"""

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from chatcli.env import Environment


class RunState:
    """What the error handler needs to know about the run it is reporting on."""

    debug: bool = False
    secrets: "tuple[str, ...]" = ()
    restore_signals: "Callable[[], None] | None" = None


state = RunState()


class PipeClosed(Exception):
    """stdout's reader went away. Not an OSError on purpose: Typer turns an EPIPE OSError into
    a bare `sys.exit(1)` of its own, and we want the quiet 141 that `run()` reports."""


def truthy(value: "str | None") -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _secrets() -> "tuple[str, ...]":
    """Known keys plus anything in the environment named like a credential."""
    from chatcli.redact import is_credential_name

    found = list(state.secrets)
    for name, value in os.environ.items():
        if value and len(value) >= 8 and is_credential_name(name):
            found.append(value)
    return tuple(found)


def _clean(text: str) -> str:
    from chatcli.redact import redact
    from chatcli.render.sanitize import sanitize_line

    return sanitize_line(redact(text, _secrets()))


def error(message: str) -> None:
    """One `chatcli: ...` line on stderr, whatever the message holds."""
    line = " ".join(_clean(message).split("\n"))
    write_err(f"chatcli: {line}\n")


def traceback(exc: BaseException) -> None:
    import traceback as tb

    # Sanitized like any other text (an exception message can carry server text), but newlines
    # kept: a traceback is many lines. Locals are never shown.
    from chatcli.redact import redact
    from chatcli.render.sanitize import sanitize

    text = "".join(tb.format_exception(exc))
    write_err(sanitize(redact(text, _secrets())))


def write_err(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def silence_stdout() -> None:
    """After EPIPE: point fd 1 at /dev/null so the interpreter's final flush cannot fail loudly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def info(env: "Environment", line: str) -> None:
    """A line of information for the user on stderr: no `chatcli:` prefix, which marks warnings
    and errors."""
    try:
        env.stderr.write(line + "\n")
        env.stderr.flush()
    except (OSError, ValueError):
        pass


def out(env: "Environment", text: str) -> None:
    env.stdout.write(text)
    env.stdout.flush()
