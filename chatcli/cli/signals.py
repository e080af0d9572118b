"""SIGTERM / SIGHUP as an exception, so a reply in flight is saved before the process ends.

By default those signals kill Python at once: no `finally` runs, and the reply being streamed is
lost (docs/architecture.md, "History and persistence"; case U5 of tests/e2e/README.md). With the handlers installed, the
signal raises `Terminated` in the main thread at the next bytecode, exactly like Ctrl-C raises
KeyboardInterrupt: it travels up through the provider's read and the session generator, whose
`finally` records the partial reply, and out to the CLI, which exits with 128 + signal number.

`Terminated` is deliberately NOT a KeyboardInterrupt: the REPL catches KeyboardInterrupt to stop a
reply and go back to the prompt, but a terminated chatcli must leave. It IS a SystemExit (code
128 + signal number), for two reasons: asyncio (prompt-toolkit's loop) re-raises only SystemExit
and KeyboardInterrupt from its callbacks and would log-and-swallow any other BaseException; and
if nothing catches it, Python exits quietly with the right status (143 / 129), no traceback.
`except Exception` blocks do not swallow it either.

Only the first signal raises. A second one (the terminal sends SIGHUP then SIGTERM; a supervisor
repeats SIGTERM) arrives while the first is unwinding and would interrupt the very `finally`
that is saving the reply, so it is ignored; SIGKILL remains for anyone who cannot wait.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


class Terminated(SystemExit):
    """The process got SIGTERM or SIGHUP. `code`/`exit_code` is 128 + the signal number (143, 129)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        self.signum = signum
        self.signal_name = name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return f"terminated by {self.signal_name}"


def _termination_signals() -> list[signal.Signals]:
    wanted = [getattr(signal, name, None) for name in ("SIGTERM", "SIGHUP")]
    return [s for s in wanted if isinstance(s, signal.Signals)]


def install_termination_handlers() -> Callable[[], None]:
    """Make SIGTERM and SIGHUP raise `Terminated` in the main thread. Returns a function that
    puts the previous handlers back. A no-op (returning a no-op) outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired:
            return  # already unwinding: let the first one finish saving
        fired = True
        raise Terminated(signum)

    previous: dict[signal.Signals, Any] = {}
    for sig in _termination_signals():
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
