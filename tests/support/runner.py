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

What the call sees, unless told otherwise:

* stdin: `stdin` as a pipe's bytes (a `str` is UTF-8 encoded; `bytes` go as they are, so binary
  and Latin-1 input can be tested), or an empty pipe like `< /dev/null` when `stdin` is None.
  It has no file descriptor, so `chatcli.cli.stdin` reads it without waiting. A real file
  object (say the read end of an `os.pipe()` whose write end the test keeps open) is used as
  it is: that is how a test meets the idle-pipe timeout without a subprocess.
* stdout / stderr: in-memory, UTF-8 (stderr with `backslashreplace`, as Python's own).
  `Result.stdout` / `.stderr` are their text, `.stdout_bytes` the exact bytes written.
* TTY flags: none of the three is a TTY, as under `subprocess.run(..., capture_output=True)`;
  `stdin_isatty=` / `stdout_isatty=` / `stderr_isatty=` say otherwise (only the flag: a
  real terminal -- keys, sizes, a REPL -- is tests/e2e/'s pty).
* the environment: `os.environ` with `env` applied over it (a value of None removes that
  variable), or exactly `environ` when given (what `subprocess.run(env=...)` does: nothing of
  the test process's own environment is seen), plus `COLUMNS=80` and `LINES=24` when neither
  sets them: a piped subprocess gets that size too (Click wraps `--help` to it). The autouse
  `isolated_env` fixture (tests/conftest.py) has already pointed HOME, the XDG directories and
  CHATCLI_HOME at the test's tmp_path.
* the working directory: `cwd` when given (the `.env` lookup reads it), else the test's.
* chatcli's once-per-process memory starts empty, as in a fresh process: the permission
  warnings (`chatcli.fsperm`) and the plain-HTTP warnings (`chatcli.providers._common`) are
  printed again by each call.

Put back after every call, also when it raises, so one call cannot leak into the next test:
`os.environ`, the working directory, `sys.stdin/stdout/stderr`, `sys.argv`, the SIGINT,
SIGTERM, SIGHUP, SIGPIPE and SIGWINCH handlers, the run's state `chatcli.cli.report.state`,
the two warn-once sets above, and the garbage collector (the fast paths pause it and `chatcli
ask` freezes it -- chatcli/warmup.py -- which a long test process should not inherit).

Differences from the installed binary that a test may meet: `--version` is answered by Typer
here, not by `main()`'s shortcut (same text); `main()`'s terminal-encoding set-up
(chatcli/termenc.py) does not run, and the streams are always UTF-8; a broken pipe cannot
happen (the streams never close); modules stay imported between calls. Tests of what only a
real process has -- signals, a pseudo-terminal, `| head -1`, PYTHONIOENCODING or LC_ALL read at
interpreter start, start-up time -- belong with the installed binary (tests/support/binary.py).
"""

from __future__ import annotations

import gc
import io
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["Result", "chatcli", "run"]

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

    @property
    def returncode(self) -> int:
        """`subprocess.CompletedProcess`'s name, so a test moved off the binary keeps its asserts."""
        return self.exit_code


class _Capture(io.TextIOWrapper):
    """A text stream over an in-memory buffer that keeps its bytes readable after the run."""

    def __init__(self, *, errors: str = "strict", data: bytes = b"", tty: bool = False) -> None:
        self._raw = io.BytesIO(data)
        self._tty = tty
        super().__init__(self._raw, encoding="utf-8", errors=errors, newline=None if data else "\n",
                         write_through=True)

    def isatty(self) -> bool:
        return self._tty

    def getvalue(self) -> bytes:
        self.flush()
        return self._raw.getvalue()


@contextmanager
def _environ(changes: Mapping[str, str | None], whole: Mapping[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    try:
        if whole is not None:
            os.environ.clear()
            os.environ.update(whole)
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
def _cwd(where: str | os.PathLike[str] | None) -> Iterator[None]:
    saved = os.getcwd()
    try:
        if where is not None:
            os.chdir(where)
        yield
    finally:
        # A test that dropped its uid in a forked child (tests/test_store_readonly.py) may not
        # enter pytest's directory again; that child never goes back to pytest, so no matter.
        with suppress(PermissionError):
            os.chdir(saved)


_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE", "SIGWINCH")
                 if hasattr(signal, name))


@contextmanager
def _signals() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if signal.getsignal(sig) is not handler and handler is not None:
                signal.signal(sig, handler)


@contextmanager
def _process_state() -> Iterator[None]:
    """chatcli's module-level memory: a fresh process starts with it empty; the test gets its own back."""
    from chatcli import fsperm, warmup
    from chatcli.cli import report
    from chatcli.providers import _common

    fields = ("debug", "secrets", "restore_signals")
    state = {name: report.state.__dict__[name] for name in fields if name in report.state.__dict__}
    warned = set(fsperm._warned), set(_common._insecure_warned)
    paused = warmup._paused
    argv = list(sys.argv)
    fsperm._warned.clear()
    _common._insecure_warned.clear()
    for name in fields:
        report.state.__dict__.pop(name, None)  # the class defaults, as after import
    try:
        yield
    finally:
        for name in fields:
            report.state.__dict__.pop(name, None)
        report.state.__dict__.update(state)
        fsperm._warned.clear()
        fsperm._warned.update(warned[0])
        _common._insecure_warned.clear()
        _common._insecure_warned.update(warned[1])
        warmup._paused = paused
        sys.argv[:] = argv


@contextmanager
def _streams(stdin: IO[Any], stdout: _Capture, stderr: _Capture) -> Iterator[None]:
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


def chatcli(*args: str, stdin: str | bytes | IO[Any] | None = None, env: Mapping[str, str | None] | None = None,
            environ: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
            stdin_isatty: bool = False, stdout_isatty: bool = False, stderr_isatty: bool = False) -> Result:
    """Run `chatcli ARGS...` in this process and return its exit code and output."""
    from chatcli.cli import run as run_cli

    fake_in: IO[Any]
    if stdin is None or isinstance(stdin, (str, bytes)):
        data = stdin.encode("utf-8") if isinstance(stdin, str) else (stdin or b"")
        fake_in = _Capture(data=data, tty=stdin_isatty)
    else:
        fake_in = stdin
    fake_out = _Capture(tty=stdout_isatty)
    fake_err = _Capture(errors="backslashreplace", tty=stderr_isatty)
    with ExitStack() as stack:
        for context in (_gc_kept(), _signals(), _process_state(), _environ(env or {}, environ), _cwd(cwd),
                        _streams(fake_in, fake_out, fake_err)):
            stack.enter_context(context)
        sys.argv[:] = ["chatcli", *args]
        code: int
        try:
            code = run_cli(list(args))
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


def run(args: Sequence[str], env: Mapping[str, str], *, input: bytes | None = None,
        stdin: IO[Any] | None = None, cwd: str | os.PathLike[str] | None = None,
        timeout: float | None = None) -> Result:
    """tests/support/binary.py's `run(args, env, input=...)` in this process: `env` is the WHOLE
    environment (as `subprocess.run(env=...)` takes it, e.g. `binary.cli_env(server)`), `input`
    the piped bytes (none: an empty pipe, as `stdin=DEVNULL`). `timeout` is accepted for the same
    signature and not enforced: a call in this process is bounded by pytest's own --timeout."""
    return chatcli(*args, stdin=stdin if stdin is not None else input, environ=env,
                   cwd=Path(cwd) if cwd is not None else None)
