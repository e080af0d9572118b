"""Run the `chatcli` command in-process, the way httpie's `tests/utils` `http()` runs httpie.

    from tests.support.runner import chatcli

    result = chatcli("ask", "--json", "hi", stdin="some text", env={"OPENAI_BASE_URL": url})
    assert result.exit_code == 0 and json.loads(result.stdout)["text"] == "Hello"

`chatcli(*args)` calls `chatcli.cli.run(list(args))` -- the console script's `main()` minus its
`sys.exit` -- with the process's three streams replaced and the environment changed for the
call only. That works because the CLI looks everything up when it runs, never at import time:
`chatcli.env.Environment.from_process()` (called through `chatcli.cli.wiring.make_app()`)
reads `sys.stdin`, `sys.stdout`, `sys.stderr`, `os.environ` and the working directory; `run()`
itself reads `CHATCLI_DEBUG` and credential-looking variables from `os.environ` and writes its
error lines to `sys.stderr`; Click's help and usage errors go to `sys.stdout`/`sys.stderr` as
they are at that moment.

What the call sees, unless `env` says otherwise:

* stdin: `stdin` as a pipe's bytes (a `str` is UTF-8 encoded; `bytes` go as they are, so binary
  and Latin-1 input can be tested), or an empty pipe like `< /dev/null` when `stdin` is None.
  It is not a TTY and has no file descriptor, so `chatcli.cli.stdin` reads it without waiting.
* stdout / stderr: in-memory, not TTYs, UTF-8 (stderr with `backslashreplace`, as Python's own).
  `Result.stdout` / `.stderr` are their text, `.stdout_bytes` the exact bytes written.
* the environment: `os.environ` with `env` applied over it (a value of None removes that
  variable), plus `COLUMNS=80` and `LINES=24` when neither `env` nor `os.environ` sets them: a
  piped subprocess gets that size too (Click wraps `--help` to it). Everything is put back
  afterwards, also when the call raises. The autouse `isolated_env` fixture (tests/conftest.py)
  has already pointed HOME, the XDG directories and CHATCLI_HOME at the test's tmp_path.

Left as the call found them: the garbage collector (the fast paths pause it and `chatcli ask`
freezes it -- chatcli/warmup.py -- which a long test process should not inherit), and the
SIGTERM/SIGHUP handlers (`run()` restores them itself).

Differences from the installed binary that a test may meet: `--version` is answered by Typer
here, not by `main()`'s shortcut (same text); a broken pipe cannot happen (the streams never
close); process-wide state persists between calls in one test process (a permission warning is
printed once per path per process, modules stay imported). Tests of what only a real process
has -- signals, a pseudo-terminal, `| head -1`, start-up time -- belong in tests/e2e/ with the
installed binary.
"""

from __future__ import annotations

import gc
import io
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Result", "chatcli"]

_DEFAULT_ENV = {"COLUMNS": "80", "LINES": "24"}


@dataclass(frozen=True)
class Result:
    """What one run printed and how it ended."""

    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


class _Capture(io.TextIOWrapper):
    """A text stream over an in-memory buffer that keeps its bytes readable after the run."""

    def __init__(self, *, errors: str = "strict", data: bytes = b"") -> None:
        self._raw = io.BytesIO(data)
        super().__init__(self._raw, encoding="utf-8", errors=errors, newline=None if data else "\n",
                         write_through=True)

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> bytes:
        self.flush()
        return self._raw.getvalue()


@contextmanager
def _environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    saved = dict(os.environ)
    try:
        for name, default in _DEFAULT_ENV.items():
            if name not in changes and name not in os.environ:
                os.environ[name] = default
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _streams(stdin: _Capture, stdout: _Capture, stderr: _Capture) -> Iterator[None]:
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


@contextmanager
def _gc_kept() -> Iterator[None]:
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    try:
        yield
    finally:
        if frozen == 0 and gc.get_freeze_count():
            gc.unfreeze()
        if enabled and not gc.isenabled():
            gc.enable()


def chatcli(*args: str, stdin: str | bytes | None = None, env: Mapping[str, str | None] | None = None) -> Result:
    """Run `chatcli ARGS...` in this process and return its exit code and output."""
    from chatcli.cli import run

    data = stdin.encode("utf-8") if isinstance(stdin, str) else (stdin or b"")
    fake_in = _Capture(data=data)
    fake_out = _Capture()
    fake_err = _Capture(errors="backslashreplace")
    with _gc_kept(), _environ(env or {}), _streams(fake_in, fake_out, fake_err):
        code: int
        try:
            code = run(list(args))
        except SystemExit as exc:  # `run()` lets Click's own exits through; main() would sys.exit them
            if isinstance(exc.code, int):
                code = exc.code
            elif exc.code is None:
                code = 0
            else:  # what the interpreter does with `sys.exit("text")`
                fake_err.write(f"{exc.code}\n")
                code = 1
    out, err = fake_out.getvalue(), fake_err.getvalue()
    return Result(exit_code=int(code), stdout=out.decode("utf-8", "replace"),
                  stderr=err.decode("utf-8", "replace"), stdout_bytes=out, stderr_bytes=err)
