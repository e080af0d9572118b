"""The runner of several concurrent streams: one thread per model (a `Lane`), each driving its own
`Session` over the sync SDK streams, so the session's rules hold for each reply unchanged (recorded in
`finally`, retries only before the first token, each wait a visible `Retrying` event). Nothing but the
main thread touches the terminal: workers put `(lane, event)` pairs on one `SimpleQueue` (a single C
call, so an interruption can never leave it half-done) and the main thread drains it into a
`CompareView` (chatcli/compare/plain.py, or the one painter for all panels, chatcli/render/columns.py).
Ctrl-C lands in the main thread only and is carried to each worker by `Lane.interrupt`; at most one
embedded (local) model streams at a time (`LOCAL_LOCK`): a second one waits and says so.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chatcli.errors import ChatCLIError, ExitCode
from chatcli.events import Finish, Notice, SessionEvent, TextDelta

if TYPE_CHECKING:
    from chatcli.config import Resolved
    from chatcli.events import Part
    from chatcli.history.store import StoreRecorder
    from chatcli.providers.base import Provider
    from chatcli.session import Session


#: One embedded model streams at a time (chatcli/providers/local.py holds one llama.cpp context).
LOCAL_LOCK = threading.Lock()
#: How long, after Ctrl-C, the main thread waits for the workers to record their partial replies.
#: A worker still waiting for response headers (nothing to record yet) is left behind: it is a
#: daemon thread, and the process exit closes its socket.
STOP_GRACE = 3.0


class CompareView(Protocol):
    """Shows several replies. `feed(i, e)` in each lane's order; `fail(i, msg)` when lane i
    failed before any text; `end(i)` once per lane; `close()` once, on every path."""

    def feed(self, index: int, event: SessionEvent) -> None: ...

    def fail(self, index: int, message: str) -> None: ...

    def end(self, index: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Begin:
    """A lane's request is about to be sent (its SDK imported, a local model's turn come)."""

    at: float  # time.perf_counter() in the worker, as it sends


@dataclass
class _End:
    finish: Finish | None
    error: str | None = None


@dataclass
class Lane:
    """One model of the comparison and how its reply went."""

    index: int
    resolved: Resolved
    provider: Provider
    session: Session | None = None
    recorder: StoreRecorder | None = None
    finish: Finish | None = None
    error: str | None = None
    text: str = ""
    thread: threading.Thread | None = None
    responses: list[Any] = field(default_factory=list)
    started_at: float | None = None  # perf_counter when its request was sent
    _state: threading.Lock = field(default_factory=threading.Lock)
    _closing: bool = False
    _stopped: bool = False

    @property
    def label(self) -> str:
        return f"{self.resolved.provider.name}:{self.resolved.model}"

    @property
    def local(self) -> bool:
        return self.resolved.provider.type == "local"

    def exit_code(self) -> ExitCode:
        finish = self.finish
        if finish is None or (self.error is not None and not self.text):
            return ExitCode.FAILED
        if finish.reason == "stop":
            return ExitCode.OK
        if finish.reason == "interrupted":
            return ExitCode.INTERRUPTED
        return ExitCode.PARTIAL if self.text or finish.reason == "tool_calls" else ExitCode.FAILED

    def interrupt(self) -> None:
        """Stop this lane's stream now, from another thread.

        Ctrl-C lands in the main thread only, while each worker is blocked in a socket read that
        Python cannot interrupt. So first schedule a KeyboardInterrupt in the worker
        (`PyThreadState_SetAsyncExc`, raised at its next bytecode), then shut its HTTP response's
        socket down (reported through chatcli/providers/_inflight.py), which wakes the read at once
        and sends the server its FIN. The KeyboardInterrupt then travels up through the provider and
        the session exactly as a Ctrl-C does in a one-model `ask`: the partial reply is recorded as
        `interrupted`."""
        with self._state:
            if self._closing or self._stopped or self.thread is None or self.thread.ident is None:
                return
            self._stopped = True
            import ctypes  # here, not at the top: the chat imports this module for /compare

            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident),
                                                       ctypes.py_object(KeyboardInterrupt))
            responses = list(self.responses)
        for response in responses:
            shutdown_response(response)


def shutdown_response(response: Any) -> None:
    """Wake a read blocked on `response` and tell the server: shut its socket down."""
    import socket

    with contextlib.suppress(Exception):
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)


def overall_exit(lanes: Sequence[Lane], interrupted: bool) -> int:
    if interrupted:
        return int(ExitCode.INTERRUPTED)
    codes = [lane.exit_code() for lane in lanes]
    if all(c == ExitCode.OK for c in codes):
        return int(ExitCode.OK)
    if all(c == ExitCode.FAILED for c in codes):
        return int(ExitCode.FAILED)
    return int(ExitCode.PARTIAL)


# -- running the lanes ------------------------------------------------------------------------------


class Runner:
    """Starts every lane's thread together and feeds the view from the one queue."""

    def __init__(self, lanes: Sequence[Lane], text: str, parts: tuple[Part, ...] = (), *,
                 warm: bool = True, answer_last: bool = False) -> None:
        self.lanes = list(lanes)
        #: The chat's /compare: each session already ends with the user message; reply to it.
        self.answer_last = answer_last
        self.text = text
        self.parts = parts
        self.warm = warm
        self.queue: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
        self.interrupted = False
        self._stop = threading.Event()

    def run(self, view: CompareView, *, poll: float = 0.05) -> int:
        # Several threads build requests and parse SSE at the same time; at the default 5 ms
        # switch interval a thread ready to send waited for another's slice (the OpenAI request
        # started ~1.4 ms late beside the Anthropic one: compare_bench's TTFB ratio was 1.2x).
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, 0.0005))
        try:
            return self._run(view, poll)
        finally:
            sys.setswitchinterval(switch)

    def _run(self, view: CompareView, poll: float) -> int:
        for lane in self.lanes:
            lane.thread = threading.Thread(target=self._work, args=(lane,), name=f"chatcli-compare-{lane.index}",
                                           daemon=True)
        for lane in self.lanes:
            assert lane.thread is not None
            lane.thread.start()
        left = len(self.lanes)
        try:
            try:
                while left:
                    try:
                        index, item = self.queue.get(timeout=poll)
                    except queue.Empty:
                        tick = getattr(view, "tick", None)
                        if tick is not None:
                            tick()
                        continue
                    left -= self._show(view, index, item)
            except KeyboardInterrupt:  # every partial kept; `--json` still prints them all
                self.interrupted = True
                self.stop()
                self._drain(view, final=True)
            except BaseException:  # SIGTERM (signals.Terminated), a broken pipe: stop, then leave
                self.interrupted = True
                self.stop()
                self._drain(view, final=True)
                raise
        finally:
            view.close()
        return overall_exit(self.lanes, self.interrupted)

    def stop(self) -> None:
        """Stop every stream at once, then wait (briefly) for each partial to be recorded."""
        self._stop.set()
        for lane in self.lanes:
            lane.interrupt()
        for lane in self.lanes:
            if lane.thread is not None:
                lane.thread.join(STOP_GRACE)

    def _drain(self, view: CompareView, *, final: bool) -> None:
        ended = {lane.index for lane in self.lanes if lane.finish is not None or lane.error is not None}
        with contextlib.suppress(queue.Empty):
            while True:
                index, item = self.queue.get_nowait()
                if isinstance(item, _End):
                    ended.add(index)
                with contextlib.suppress(Exception):
                    self._show(view, index, item)
        if final:
            for lane in self.lanes:
                if lane.index not in ended:
                    lane.finish = Finish("interrupted", detail="stopped by Ctrl-C")
                    with contextlib.suppress(Exception):
                        view.feed(lane.index, lane.finish)
                        view.end(lane.index)

    def _show(self, view: CompareView, index: int, item: object) -> int:
        lane = self.lanes[index]
        if isinstance(item, _Begin):
            lane.started_at = item.at
            begin = getattr(view, "begin", None)
            if begin is not None:
                begin(index)
            return 0
        if isinstance(item, _End):
            if item.error is not None:
                lane.error = item.error
                view.fail(index, item.error)
            if item.finish is not None:
                lane.finish = item.finish
            view.end(index)
            return 1
        if isinstance(item, TextDelta):
            lane.text += item.text
        elif isinstance(item, Finish):
            lane.finish = item
        view.feed(index, item)  # type: ignore[arg-type]
        return 0

    # -- in the worker thread ---------------------------------------------------------------

    def _work(self, lane: Lane) -> None:
        put = self.queue.put
        end = _End(None)
        try:
            end = self._stream(lane, put)
        except BaseException:  # an interruption that landed outside the stream: nothing to add
            end = _End(Finish("interrupted", detail="stopped by Ctrl-C"))
        finally:
            with lane._state:
                lane._closing = True  # no interruption is scheduled from here on
            put((lane.index, end))

    def _stream(self, lane: Lane, put: Any) -> _End:
        from chatcli.providers import _inflight

        _inflight.watch(lane.responses.append)
        finish: Finish | None = None
        held = False
        try:
            if lane.local:
                held = LOCAL_LOCK.acquire(blocking=False)
                if not held:
                    put((lane.index, Notice(f"waiting: {lane.label} starts when the other local model "
                                            "has finished (one embedded model streams at a time)")))
                    while not held:
                        if self._stop.is_set():
                            return _End(Finish("interrupted", detail="stopped by Ctrl-C"))
                        held = LOCAL_LOCK.acquire(timeout=0.1)
            if self.warm:
                with contextlib.suppress(Exception):  # the real call reports any failure
                    lane.provider.warm()
            put((lane.index, _Begin(time.perf_counter())))  # the request starts now: footers time it from here
            assert lane.session is not None
            events = lane.session.retry() if self.answer_last else lane.session.send(self.text, parts=self.parts)
            try:
                for event in events:
                    if isinstance(event, Finish):
                        finish = event
                    put((lane.index, event))
            except KeyboardInterrupt:
                events.close()
                return _End(Finish("interrupted", detail="stopped by Ctrl-C"))
            finally:
                events.close()
            return _End(finish or Finish("incomplete"))
        except ChatCLIError as exc:
            return _End(Finish("error", detail=exc.message), error=exc.message)
        except KeyboardInterrupt:
            return _End(Finish("interrupted", detail="stopped by Ctrl-C"))
        except Exception as exc:  # a bug in one lane must not take the others down
            return _End(Finish("error"), error=f"internal error: {type(exc).__name__}: {exc}")
        finally:
            _inflight.watch(None)
            if held:
                LOCAL_LOCK.release()
