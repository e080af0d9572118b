"""`chatcli ask -m A -m B [-m C ...] PROMPT`: one prompt, every model at once, side by side.

Threads, one per model, each driving its own `Session` over the sync SDK streams: the session's
rules hold for each reply unchanged (recorded in `finally`, retries only before the first token,
each wait a visible `Retrying` event). Nothing but the main thread touches the terminal: workers
put `(lane, event)` pairs on one `SimpleQueue` (a single C call, so an interruption can never leave
it half-done) and the main thread drains it into the view -- the plain writer below, or the one
painter for all panels (chatcli/render/columns.py) on a terminal.

Ctrl-C lands in the main thread only, while each worker is blocked in a socket read that Python
cannot interrupt. `_Lane.interrupt` first schedules a KeyboardInterrupt in the worker
(`PyThreadState_SetAsyncExc`, raised at its next bytecode), then shuts its HTTP response's socket
down (reported through chatcli/providers/_inflight.py), which wakes the read at once and sends the
server its FIN. The KeyboardInterrupt then travels up through the provider and the session exactly
as a Ctrl-C does in a one-model `ask`: the partial reply is recorded as `interrupted`.

Each model's exchange is stored as its own conversation (resumable with `chatcli -r ID`), so
`--resume`/`--continue` take one model. At most one embedded (local) model streams at a time: a
second one waits for the first and says so (one llama.cpp context per process is the budget).

Exit code: 0 every reply complete, 3 any partial, 1 all failed with no text, 130 Ctrl-C.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import queue
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from chatcli.errors import ChatCLIError, ExitCode, UsageError
from chatcli.events import Finish, Notice, SessionEvent, TextDelta

if TYPE_CHECKING:
    from chatcli.app import App
    from chatcli.config import Resolved
    from chatcli.events import Part
    from chatcli.providers.base import Provider
    from chatcli.session import Session
    from chatcli.store import StoreRecorder

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
        """Stop this lane's stream now, from another thread (see the module docstring)."""
        with self._state:
            if self._closing or self._stopped or self.thread is None or self.thread.ident is None:
                return
            self._stopped = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident),
                                                       ctypes.py_object(KeyboardInterrupt))
            responses = list(self.responses)
        for response in responses:
            shutdown_response(response)


def shutdown_response(response: Any) -> None:
    """Wake a read blocked on `response` and tell the server: shut its socket down."""
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
                 warm: bool = True) -> None:
        self.lanes = list(lanes)
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
            events = lane.session.send(self.text, parts=self.parts)
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


# -- plain output -----------------------------------------------------------------------------------


class _Gate(io.StringIO):
    """A stream that holds what is written until `open()`, then passes it (and the rest) on."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self._target = target
        self._held: list[str] | None = []

    def write(self, data: str) -> int:
        if self._held is not None:
            self._held.append(data)
        else:
            self._target.write(data)
        return len(data)

    def flush(self) -> None:
        if self._held is None:
            self._target.flush()

    def isatty(self) -> bool:
        return False

    def open(self) -> None:
        held, self._held = self._held, None
        if held:
            self._target.write("".join(held))
            self._target.flush()


class PlainCompare:
    """Piped / `--plain`: the replies in `-m` order, each under `## provider:model`. The first is
    streamed as it arrives; a later one is held until the ones before it are done, then printed
    (what it has so far at once, the rest as it arrives). Every reply's writer starts at once, so
    its footer's timings are its own; only its output waits (`_Gate`)."""

    def __init__(self, labels: Sequence[str], out: TextIO, err: TextIO, *, secrets: Sequence[str] = (),
                 no_color: bool = False, show_reasoning: bool = True, json_mode: bool = False) -> None:
        from chatcli.render.plain import PlainView
        from chatcli.render.sanitize import sanitize_line

        self._labels = [sanitize_line(label) for label in labels]
        self._err = err
        self._secrets = tuple(secrets)
        err_tty = _isatty(err)
        self._outs = [_Gate(io.StringIO() if json_mode else out) for _ in labels]
        self._errs = [_Gate(err) for _ in labels]
        self._views = [PlainView(o, e, show_reasoning=show_reasoning and not json_mode, no_color=no_color,
                                 err_tty=err_tty, where="ask") for o, e in zip(self._outs, self._errs, strict=True)]
        if not json_mode:
            for i, o in enumerate(self._outs):
                o.write(("\n" if i else "") + f"## {self._labels[i]}\n\n")
        self._ended = [False] * len(labels)
        self._current = 0
        self._closed = False
        self._outs[0].open()
        self._errs[0].open()

    def begin(self, index: int) -> None:
        # The footer's "first token" is counted from the request, not from the SDK's import
        # (which several threads share); PlainView keeps its start in `_start`.
        self._views[index]._start = time.monotonic()

    def feed(self, index: int, event: SessionEvent) -> None:
        self._views[index].feed(event)

    def fail(self, index: int, message: str) -> None:
        from chatcli.redact import redact
        from chatcli.render.sanitize import sanitize_line

        line = " ".join(sanitize_line(redact(message, self._secrets)).split("\n"))
        self._errs[index].write(f"chatcli: {self._labels[index]}: {line}\n")
        self._errs[index].flush()

    def end(self, index: int) -> None:
        self._views[index].close()
        self._ended[index] = True
        while self._current < len(self._labels) and self._ended[self._current]:
            self._current += 1
            if self._current < len(self._labels):
                self._outs[self._current].open()
                self._errs[self._current].open()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for i, view in enumerate(self._views):
            view.close()
            self._outs[i].open()
            self._errs[i].open()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- the command ------------------------------------------------------------------------------------


def run(app: App, specs: Sequence[str], prompt: Sequence[str], *, as_json: bool = False,
        resume: str | None = None, continue_: bool = False, attach: Sequence[str] = ()) -> int:
    try:
        return _run(app, specs, prompt, as_json=as_json, resume=resume, continue_=continue_, attach=attach)
    finally:
        app.close_tools()


def _run(app: App, specs: Sequence[str], prompt: Sequence[str], *, as_json: bool, resume: str | None,
         continue_: bool, attach: Sequence[str]) -> int:
    from chatcli import gcpause
    from chatcli import stdin as stdinmod
    from chatcli.oneshot import check_vision, load_attachments

    if resume is not None or continue_:
        raise UsageError("--resume/--continue take one model: several -m compare them in a new conversation each")
    env = app.env
    resolved = [app.resolve(spec) for spec in specs]  # a bad name fails before anything is sent
    atts = load_attachments(app, attach, resolved[0])
    for other in resolved[1:]:
        check_vision(atts, other)
    argument = " ".join(prompt) if prompt else None
    piped: str | None = None
    if "-" not in attach:
        piped, piped_att = stdinmod.read_piped_input(env, app.settings.stdin_timeout,
                                                     have_argument=bool(argument) or bool(atts))
        if piped_att is not None:
            atts.append(piped_att)
            for r in resolved:
                check_vision(atts, r)
    gcpause.resume()
    alone = bool(atts) and not argument and (piped is None or not piped.strip())
    text = "" if alone else stdinmod.compose(argument, piped)
    parts: tuple[Part, ...] = ()
    if atts:
        from chatcli import attachments

        text = attachments.message_content(text, atts)
        parts = attachments.message_parts(atts)
    lanes = build_lanes(app, resolved)
    runner = Runner(lanes, text, parts)
    view = open_view(app, [lane.label for lane in lanes], as_json=as_json)
    code = runner.run(view)
    if as_json:
        from chatcli.termenc import json_for

        env.stdout.write(json_for(env.stdout, to_json(lanes) + "\n"))
        env.stdout.flush()
    return code


def build_lanes(app: App, resolved: Sequence[Resolved]) -> list[Lane]:
    """A provider (its own client and connection) and a session (its own conversation) per model."""
    lanes = []
    for i, r in enumerate(resolved):
        provider = app.provider(r.provider)
        recorder = app.recorder(None)
        lane = Lane(i, r, provider, recorder=recorder)
        lane.session = app.session(r, provider, recorder=recorder)
        lanes.append(lane)
    return lanes


def open_view(app: App, labels: Sequence[str], *, as_json: bool = False) -> CompareView:
    env = app.env
    if as_json or app.view_mode() != "markdown":
        return PlainCompare(labels, env.stdout, env.stderr, secrets=app.secrets(), no_color=env.no_color,
                            show_reasoning=app.settings.show_reasoning, json_mode=as_json)
    from chatcli.render.columns import ColumnsView

    return ColumnsView(env.stdout, env.stderr, labels=labels, show_reasoning=app.settings.show_reasoning,
                       no_color=env.no_color, secrets=app.secrets())


def to_json(lanes: Sequence[Lane]) -> str:
    """The usual `--json` object for each model, in `-m` order (plus `error` for a failed one)."""
    from chatcli.oneshot import _UNSAFE_IN_JSON as unsafe

    items = []
    for lane in lanes:
        reply = lane.session.last_reply if lane.session is not None else None
        usage = None
        if reply is not None and (reply.input_tokens is not None or reply.output_tokens is not None):
            usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
        finish = lane.finish or Finish("incomplete")
        item: dict[str, object] = {
            "text": reply.content if reply else "",
            "finish_reason": finish.reason,
            "model": lane.resolved.model,
            "provider": lane.resolved.provider.name,
            "usage": usage,
            "conversation_id": lane.recorder.conversation_id if lane.recorder else None,
        }
        if lane.error is not None:
            item["error"] = lane.error
        items.append(item)
    raw = json.dumps(items, ensure_ascii=False)
    return unsafe.sub(lambda m: f"\\u{ord(m.group(0)):04x}", raw)
