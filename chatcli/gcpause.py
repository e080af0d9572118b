"""Start-up without the cyclic garbage collector.

Importing an SDK or prompt-toolkit allocates hundreds of thousands of objects, and CPython's
collector keeps scanning them while they load: dozens of generation-1 passes of 1-5 ms and full
passes of 17-80 ms, measured in a `chatcli` session (gc.callbacks) -- one of them landing on the
second reply, which then took 90 ms to its first byte instead of 15. What they find is next to
nothing: modules, classes and functions live as long as the process.

So the fast paths (`chatcli`, `chatcli ask`) pause the collector while they start, and once the
slow one-time work is done (SDK imported, client built, the REPL's warm-up over) `resume()` moves
everything alive into the permanent generation (`gc.freeze()`) and turns collection back on:
from then on each pass scans only what the chat itself allocates. Whatever cyclic garbage start-up
made stays allocated (a few hundred kB); a full collection to reclaim it would cost the 50-80 ms
this avoids.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Stop automatic collection (if it is on) until `resume()`."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Freeze what start-up built and collect again. Idempotent; a no-op unless `pause()` turned
    collection off (so code that disabled it itself keeps it that way)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
