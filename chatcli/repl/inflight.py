"""The user's message is committed while its request is in flight (issue 16 item 18).

`Session.send` records the user turn, then sends the request. That record is one fsynced SQLite
transaction (`synchronous = FULL`): 1-4 ms on this machine, all of it between Enter and the
request leaving. `InFlightRecorder` wraps the session's recorder for one send and runs that first
record in a writer thread, so the fsync overlaps the SDK building and sending the request (the thread
waits in the kernel, not on the GIL).

What is saved when stays as strong as before:

* before anything of the reply is shown, the user turn is committed: the REPL calls `settle()`
  before the view gets the first event, so once the first token is on screen a `kill -9` finds the
  message on disk (tests/e2e/test_persistence.py);
* before anything else is written for the conversation (the reply, a tool turn, a /retry's
  forget), the user turn is committed first: every other call waits for it, so the store sees
  the same writes in the same order;
* a failed request (no reply at all) still leaves the message saved: the send ends with `settle()`.

The store serializes its connection with its own lock (`check_same_thread=False`), so the thread
may use it. The thread is a daemon: a send always ends with `settle()`, so no commit is pending
when the chat exits (SIGTERM and SIGHUP end the chat through the same `finally`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatcli.events import SessionEvent
    from chatcli.turn import Recorder, Turn


class _Writer:
    """One long-lived thread that runs the records handed to it. Started while the prompt waits
    (`start_writer`), because `Thread.start()` waits until the new thread is scheduled: on a busy
    machine that was 3-5 ms on Enter's way (measured with both cores loaded), more than the fsync
    it was meant to hide. Handing a job to a running thread waits for nothing."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="chatcli-record", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> threading.Lock:
        """Run `job`; the returned lock is released when it has run."""
        done = threading.Lock()
        done.acquire()

        def run() -> None:
            try:
                job()
            finally:
                done.release()

        self._jobs.put(run)
        return done

    def _run(self) -> None:
        while True:
            self._jobs.get()()


_writer: _Writer | None = None
_writer_lock = threading.Lock()


def start_writer() -> None:
    """Start the writer thread now (the REPL does while its first prompt waits for typing)."""
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = _Writer()


def _get_writer() -> _Writer:
    start_writer()
    assert _writer is not None
    return _writer


class InFlightRecorder:
    """A `Recorder` whose first user-turn record runs in the background until `settle()`."""

    def __init__(self, inner: Recorder) -> None:
        self.inner = inner
        self._done: threading.Lock | None = None
        self._error: BaseException | None = None
        self._used = False  # only the send's own user turn goes to the background
        self._finished = False

    @property
    def conversation_id(self) -> Any:
        self.settle()  # a new conversation's id is made by that first record
        return getattr(self.inner, "conversation_id", None)

    def record(self, turn: Turn) -> None:
        if not self._used and turn.role == "user" and turn.id is None:
            self._used = True
            self._done = _get_writer().submit(lambda: self._record(turn))
            return
        self.settle()
        self.inner.record(turn)

    def forget(self, turn: Turn) -> None:
        self.settle()
        self.inner.forget(turn)

    def settle(self) -> None:
        """Wait until the in-flight record is committed (or has failed: the store warned)."""
        done = self._done
        if done is not None:
            # A raw lock, not an Event: a Ctrl-C during the wait leaves nothing half-held, and
            # the wait is simply repeated by the next settle() (the send's last). `_finished` is
            # set before the lock is released, so a wait cut short after the acquire is not repeated.
            if not self._finished:
                done.acquire()
                done.release()
            self._done = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _record(self, turn: Turn) -> None:
        try:
            self.inner.record(turn)  # never raises for I/O failures (it warns and stops saving)
        except BaseException as exc:  # a bug: surfaced in the main thread at settle()
            self._error = exc
        finally:
            self._finished = True


def settled_first(events: Generator[SessionEvent, None, None],
                  settle: Callable[[], None]) -> Generator[SessionEvent, None, None]:
    """`events`, with `settle()` called before the first one is passed on (to a view that shows it).
    Closing this closes `events` (run_turn closes the stream it was given on Ctrl-C)."""
    try:
        try:
            first = next(events)
        except StopIteration:
            settle()
            return
        settle()
        yield first
        yield from events
    finally:
        events.close()


__all__ = ["InFlightRecorder", "settled_first", "start_writer"]
