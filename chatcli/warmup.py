"""All of chatcli's start-up tuning, in one place, with what each trick saves.

Measured on the 2-core machine this project is developed on (benchmarks/README.md has the runs);
"saves" is the time taken off the path named, with the trick against without it in the same run.

Each trick: what it does, where it runs, what it saves, on which path.

* `pause_gc` / `resume_gc` (below): no cyclic GC while the SDK and prompt-toolkit import, then
  `gc.freeze()`. Fast paths (`cli.run`) until the first reply. Saves 20-80 ms: full passes of
  17-80 ms, one of which landed on the second reply (90 ms to its first byte instead of 15).
* The Typer-free reader (chatcli/cli/fast.py): `chatcli`, `chatcli -m X`, `chatcli ask`.
  Saves 60-110 ms of start-up on both flows.
* `Warmer` (below): in a thread while the user types -- the SDK import, the client build, an
  in-memory rehearsal of one request (providers/_client.py, on httpx's MockTransport) and the
  renderer primed off screen (`render.prime`). Saves ~24 ms of the chat's first reply (its first
  byte 3.26x the second reply's without it, 1.09x with it).
* The SDK import overlapped with the wait for piped stdin (chatcli/cli/ask.py): `ask` with a
  slow pipe; saves the import (0.6-1.3 s) when the pipe is that slow.
* The chat's modules built after the first prompt is drawn (`Repl.boot`, chatcli/repl/loop.py):
  ~20 ms of launch -> prompt. A new conversation's store opened, and its first commit made, while
  the prompt waits: ~10 ms.
* `warm_enter` (below): Enter's key-binding lookup done while the user types; and the prompt's
  `accepted` style left out (chatcli/repl/prompt.py): 0.6 ms each on the first message. Kept
  although under 2 ms: the first reply's first byte sits at 1.09x the second's against a 1.1x
  target, and the two together would cross it.
* The user turn committed while its request is in flight (chatcli/repl/inflight.py): an fsync,
  2-4 ms, off every message's Enter -> request path.

Deleted in the redesign (issue 14): the socket server that rehearsed a request inside the product
(`providers/_loopback.py`, ~0.5 ms over the in-memory rehearsal).

Nothing here imports anything heavy at import time: `cli.run` imports this module on every fast path.
"""

from __future__ import annotations

import contextlib
import gc
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prompt_toolkit.application import Application

    from chatcli.providers.base import Provider


# -- the garbage collector during start-up ------------------------------------------------------------
#
# Start-up without the cyclic garbage collector.
#
# Importing an SDK or prompt-toolkit allocates hundreds of thousands of objects, and CPython's
# collector keeps scanning them while they load: dozens of generation-1 passes of 1-5 ms and full
# passes of 17-80 ms, measured in a `chatcli` session (gc.callbacks) -- one of them landing on the
# second reply, which then took 90 ms to its first byte instead of 15. What they find is next to
# nothing: modules, classes and functions live as long as the process.
#
# So the fast paths (`chatcli`, `chatcli ask`) pause the collector while they start, and once the
# slow one-time work is done (SDK imported, client built, the REPL's warm-up over) `resume()` moves
# everything alive into the permanent generation (`gc.freeze()`) and turns collection back on:
# from then on each pass scans only what the chat itself allocates. Whatever cyclic garbage start-up
# made stays allocated (a few hundred kB); a full collection to reclaim it would cost the 50-80 ms
# this avoids.

_paused = False


def pause_gc() -> None:
    """Stop automatic collection (if it is on) until `resume_gc()`."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_gc() -> None:
    """Freeze what start-up built and collect again. Idempotent; a no-op unless `pause_gc()` turned
    collection off (so code that disabled it itself keeps it that way)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


# -- warm-up while the user types -------------------------------------------------------------


class Warmer:
    """Runs the slow one-time work (SDK import, renderer import) in a daemon thread.

    Started after the prompt is drawn, so it never delays the prompt; joined before a request,
    so a request never races a half-done import. Failures are swallowed: the real request will
    raise the classified error where the user can see it.
    """

    def __init__(self) -> None:
        self._thread: Any = None  # a threading.Thread once started
        self._skipped = False

    @property
    def started(self) -> bool:
        return self._thread is not None or self._skipped

    def settle(self) -> None:
        """Before a request: wait for the warm-up, or, if it never started (Enter pressed before
        the first prompt finished drawing), make sure it does not start now -- the request itself
        is doing that work, and a rehearsal after it would only delay the next reply."""
        if self._thread is None:
            self._skipped = True
        self.join()

    def start_for(self, provider: Provider) -> None:
        self.join()  # one warm-up at a time: /model twice in a row must not import in parallel
        import threading

        self._thread = threading.Thread(target=warm_provider, args=(provider,), name="chatcli-warm", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


def warm_enter(app: Application[Any]) -> None:
    """Look up which key bindings Enter triggers, once, while the prompt waits for typing.

    prompt-toolkit caches, per set of key bindings, the bindings a key sequence matches, and the
    first lookup of a sequence scans all ~600 of them twice (exact match, then longer ones
    starting with it): 0.6 ms of the first message's way to the server (repl_bench, checkpoints
    in 10 processes). The typed letters fill their own entries; Enter's would be filled when it is
    pressed. The set is reachable only as the key processor's `_bindings`, so this is best effort:
    if a prompt-toolkit release renames it, Enter just pays the lookup (test_repl checks it).
    Main thread only: the lookup evaluates the application's focus.
    """
    from prompt_toolkit.key_binding import KeyBindingsBase
    from prompt_toolkit.keys import Keys

    bindings = getattr(app.key_processor, "_bindings", None)
    if isinstance(bindings, KeyBindingsBase):
        keys = (Keys.ControlM,)
        bindings.get_bindings_for_keys(keys)
        bindings.get_bindings_starting_with_keys(keys)


def warm_provider(provider: Provider) -> None:
    with contextlib.suppress(Exception):
        provider.warm(rehearse=True)
    # The view's markdown stack (markdown-it, Rich, Pygments) and its first-use costs are the other
    # big part of the first reply's path: draw a sample reply once, off screen. The turn loop that
    # feeds a view is the last module a send needs that the REPL's boot did not import.
    import chatcli.turn  # noqa: F401
    from chatcli.render import prime

    with contextlib.suppress(Exception):
        prime()
    resume_gc()  # the slow one-time work is done (above)
