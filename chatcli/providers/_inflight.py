"""Who is told when a provider's HTTP response opens, per thread (chatcli/compare/runner.py).

`chatcli ask -m A -m B` streams each reply in its own thread. A Ctrl-C reaches the main thread
only, while each worker sits in a blocking socket read that nothing in Python can interrupt; and
closing a socket from another thread does not wake a read blocked on it (nor send the FIN the
server should see). Shutting the socket down does both. The compare runner installs a watcher in
each worker thread, the providers report every response they open, and on Ctrl-C the runner
shuts each one down (`httpcore`'s documented `network_stream` response extension).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_local = threading.local()


def watch(callback: Callable[[Any], None] | None) -> None:
    """Call `callback(response)` for every response opened in this thread (None: stop)."""
    _local.callback = callback


def opened(response: Any) -> None:
    """Providers call this with each streaming HTTP response (an httpx Response) they open."""
    callback = getattr(_local, "callback", None)
    if callback is not None:
        callback(response)
