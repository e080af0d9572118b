"""The process environment as one injectable value (the httpie pattern).

Everything that differs between a terminal, a pipe and a test — the three streams, whether each
is a TTY, the environment variables, the working directory — is read here once, by
`Environment.from_process()`, and passed down. Nothing else in the CLI path reads `os.environ`,
`sys.std*` or `os.getcwd()` directly, so in-process tests build an `Environment` by hand.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or replaced streams
        return False


@dataclass
class Environment:
    stdin: TextIO | None = None  # None: no stdin at all (closed fd 0, a daemon)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool = False
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    cwd: Path = field(default_factory=Path)

    @classmethod
    def from_process(cls) -> Environment:
        stdin: TextIO | None = sys.stdin
        if stdin is None or getattr(stdin, "closed", False):
            stdin = None
        try:
            cwd = Path(os.getcwd())
        except OSError:  # the directory was removed under us: .env lookup just finds nothing
            cwd = Path("/")
        return cls(
            stdin=stdin,
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin_isatty=stdin is not None and _isatty(stdin),
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
            environ=dict(os.environ),
            cwd=cwd,
        )

    @property
    def dumb_terminal(self) -> bool:
        return self.environ.get("TERM", "") == "dumb"

    @property
    def no_color(self) -> bool:
        # https://no-color.org: present and not empty.
        return bool(self.environ.get("NO_COLOR"))

    def warn(self, message: str) -> None:
        """One status line on stderr (never stdout: stdout carries the reply only)."""
        try:
            self.stderr.write(f"chatcli: {message}\n")
            self.stderr.flush()
        except (OSError, ValueError):
            pass
