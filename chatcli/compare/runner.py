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
import io
import json
import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

from chatcli.errors import ChatCLIError, ExitCode, UsageError
from chatcli.events import Finish, Notice, SessionEvent, TextDelta

if TYPE_CHECKING:
    from chatcli.app import App
    from chatcli.config import Resolved
    from chatcli.events import Part
    from chatcli.history.store import Store, StoreRecorder
    from chatcli.providers.base import Provider
    from chatcli.repl.commands import Outcome, ReplState
    from chatcli.session import Session
    from chatcli.turn import Turn

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
    from chatcli import warmup
    from chatcli.cli import stdin as stdinmod
    from chatcli.cli.ask import check_vision, load_attachments

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
    warmup.resume_gc()
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
    from chatcli.cli.ask import _UNSAFE_IN_JSON as unsafe

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


# -- in the chat: /compare and /keep ------------------------------------------------------------------
#
# `/compare A B` arms the next message: it is recorded once in the conversation, and every model
# answers it in a session of its own built on the conversation so far (`Session.retry()` replies to
# the last user message). Each reply is recorded, in that session's `finally`, as an alternative of
# the message (the `alternatives` table, schema v4 in chatcli/history/store.py); the first reply with text
# also becomes the conversation's assistant turn, so the conversation goes on with it until `/keep`
# picks another one (which then replaces it, and its model becomes the chat's model).


@dataclass
class Alternative:
    position: int
    provider: str | None
    model: str | None
    turn: Turn
    kept: bool = False

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass
class ChatCompare:
    """The chat's compare state (`ReplState.compare`)."""

    armed: tuple[str, ...] = ()  # the next message goes to these models
    last: tuple[str, ...] = ()  # the models named last time (`/compare` alone)
    replies: list[Alternative] = field(default_factory=list)  # of the last comparison
    user: Turn | None = None  # the message they answer
    kept_turn: Turn | None = None  # the conversation's assistant turn for it
    noted: bool = True  # "continuing with ..." said already


class _AltRecorder:
    """A compare lane's `Recorder` in the chat: its reply goes to the alternatives table."""

    def __init__(self, store: Store | None, user: Turn, position: int) -> None:
        self._store = store
        self._user = user
        self._position = position

    def record(self, turn: Turn) -> None:
        if self._store is not None and self._user.id is not None:
            save_alternative(self._store, self._user.id, self._position, turn)

    def forget(self, turn: Turn) -> None:
        pass  # a comparison's replies are all kept


def save_alternative(store: Store, user_turn_id: int, position: int, turn: Turn, kept: bool | None = None) -> None:
    def action(conn: Any) -> None:
        conn.execute(
            "INSERT INTO alternatives (turn_id, position, provider, model, content, finish_reason, finish_detail,"
            " input_tokens, output_tokens, created, kept) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (turn_id, position) DO UPDATE SET provider = excluded.provider, model = excluded.model,"
            " content = excluded.content, finish_reason = excluded.finish_reason,"
            " finish_detail = excluded.finish_detail, input_tokens = excluded.input_tokens,"
            " output_tokens = excluded.output_tokens",
            (user_turn_id, position, turn.provider, turn.model, turn.content, turn.finish_reason,
             turn.finish_detail, turn.input_tokens, turn.output_tokens, turn.created, 1 if kept else 0))

    store._write(action)  # the store's own transaction and failure handling (warn once, go on)


def mark_kept(store: Store, user_turn_id: int, position: int) -> None:
    def action(conn: Any) -> None:
        conn.execute("UPDATE alternatives SET kept = (position = ?) WHERE turn_id = ?", (position, user_turn_id))

    store._write(action)


def load_alternatives(store: Store, conv_id: str) -> dict[int, list[Alternative]]:
    """A conversation's alternatives, by the id of the user message they answer."""
    from chatcli.turn import Turn

    with store._reading() as conn:
        rows = conn.execute(
            "SELECT a.turn_id, a.position, a.provider, a.model, a.content, a.finish_reason, a.finish_detail,"
            " a.input_tokens, a.output_tokens, a.created, a.kept FROM alternatives a"
            " JOIN turns t ON t.id = a.turn_id WHERE t.conversation_id = ? ORDER BY a.turn_id, a.position",
            (conv_id,)).fetchall()
    out: dict[int, list[Alternative]] = {}
    for (turn_id, position, provider, model, content, reason, detail, tin, tout, created, kept) in rows:
        turn = Turn("assistant", content, provider=provider, model=model, finish_reason=reason,
                    finish_detail=detail, input_tokens=tin, output_tokens=tout, created=created)
        out.setdefault(int(turn_id), []).append(Alternative(int(position), provider, model, turn, bool(kept)))
    return out


def print_alternatives(alternatives: Sequence[Alternative], out: TextIO) -> None:
    """`history show`: a message's alternatives, under the reply the conversation went on with."""
    from chatcli.history.commands import partial_mark
    from chatcli.render.sanitize import sanitize as safe

    print(f"  ⇄ {len(alternatives)} models answered this message (/compare):", file=out)
    for alt in alternatives:
        mark = " · kept" if alt.kept else ""
        print(f"  ── [{alt.position}] {safe(alt.label)}{mark} ──", file=out)
        text = safe(alt.turn.content) if alt.turn.content else "(no reply text)"
        for line in text.splitlines() or [""]:
            print(f"  {line}", file=out)
        partial = partial_mark(alt.turn)
        if partial:
            print(f"  {partial}", file=out)


def _state_of(state: ReplState) -> ChatCompare:
    cc = getattr(state, "compare", None)
    if not isinstance(cc, ChatCompare):
        cc = ChatCompare()
        state.compare = cc
    return cc


def compare_cmd(state: ReplState, args: str) -> Outcome:
    """`/compare A B ...`: the next message goes to those models side by side; alone: the last
    message again, to the models named last time."""
    specs = tuple(args.split())
    cc = _state_of(state)
    if specs:
        if len(specs) < 2:
            raise UsageError("/compare needs two models or more: /compare MODEL MODEL ...")
        if state.resolve_model is None:
            raise UsageError("comparing models is not available here")
        for spec in specs:
            state.resolve_model(spec)  # an unknown name is said now, not after the message is typed
        cc.armed = cc.last = specs
        state.say(f"the next message goes to {', '.join(specs)}, side by side")
        return None
    if not cc.last:
        raise UsageError("no models named yet: /compare MODEL MODEL ...")
    if not any(t.role == "user" for t in state.session.turns):
        raise UsageError("nothing to compare yet: /compare MODEL MODEL ..., then type the message")
    run_in_chat(state, cc.last, repeat=True)
    return None


def chat_send(state: ReplState, text: str, parts: tuple[Part, ...] = ()) -> bool:
    """Called by the chat before it sends a message: True when a comparison took it."""
    cc = _state_of(state)
    if cc.armed:
        specs, cc.armed = cc.armed, ()
        run_in_chat(state, specs, text=text, parts=parts)
        return True
    if not cc.noted and cc.kept_turn is not None:
        cc.noted = True
        kept = next((a for a in cc.replies if a.kept), None)
        if kept is not None:
            state.say(f"continuing with [{kept.position}] {kept.label}'s reply (/keep N picks another first)")
        cc.replies, cc.user, cc.kept_turn = [], None, None
    return False


def run_in_chat(state: ReplState, specs: Sequence[str], *, text: str = "", parts: tuple[Part, ...] = (),
                repeat: bool = False) -> None:
    from chatcli.render import choose_mode
    from chatcli.session import Session
    from chatcli.turn import Turn

    main = state.session
    if repeat:
        index = max(i for i, t in enumerate(main.turns) if t.role == "user")
        for turn in main.turns[index + 1:]:
            if main.recorder is not None:
                main.recorder.forget(turn)
        del main.turns[index + 1:]
        user = main.turns[index]
    else:
        user = Turn("user", text, parts=parts, provider=main.provider.name, model=main.model, system=main.system)
        main.turns.append(user)
        if main.recorder is not None:
            main.recorder.record(user)
    assert state.resolve_model is not None
    store: Store | None = state.store  # type: ignore[assignment]
    lanes = []
    for i, spec in enumerate(specs):
        provider, model = state.resolve_model(spec)
        cfg = state.settings.providers.get(provider.name)
        if cfg is None:
            from chatcli.settings import ProviderConfig

            cfg = ProviderConfig(name=provider.name, type="openai")
        from chatcli.config import Resolved

        session = Session(provider, model=model, system=main.system, max_tokens=main.max_tokens,
                          temperature=main.temperature, retry=main.retry_policy,
                          recorder=_AltRecorder(store, user, i + 1), trimmer=main.trimmer, turns=list(main.turns))
        lane = Lane(i, Resolved(cfg, model), provider)
        lane.session = session
        lanes.append(lane)
    out = cast("TextIO", state.terminals[0] if state.terminals else sys.stdout)
    err = cast("TextIO", state.err)
    labels = [lane.label for lane in lanes]
    view: CompareView
    if choose_mode(state.settings.render, out) == "markdown":
        from chatcli.render.columns import ColumnsView

        view = ColumnsView(out, err, labels=labels, show_reasoning=state.settings.show_reasoning)
    else:
        view = PlainCompare(labels, out, err, show_reasoning=state.settings.show_reasoning)
    Runner(lanes, "", answer_last=True).run(view)
    cc = _state_of(state)
    cc.replies = []
    for lane in lanes:
        reply = lane.session.last_reply if lane.session is not None else None
        if reply is not None and lane.session is not None and reply in lane.session.turns[len(main.turns):]:
            cc.replies.append(Alternative(lane.index + 1, reply.provider, reply.model, reply))
    cc.user = user
    first = next((a for a in cc.replies if a.turn.content), None)
    cc.kept_turn = None
    if first is None:
        state.say("no model replied with text; the message stays unanswered (/compare tries again)")
        return
    kept = _copy_reply(first.turn)
    main.turns.append(kept)
    if main.recorder is not None:
        main.recorder.record(kept)
    first.kept = True
    if store is not None and user.id is not None:
        mark_kept(store, user.id, first.position)
    cc.kept_turn = kept
    cc.noted = False
    state.say(f"{len(cc.replies)} replies; the conversation continues with [{first.position}] {first.label} "
              "— /keep N (or a model name) picks another")


def _copy_reply(turn: Turn) -> Turn:
    from dataclasses import replace

    return replace(turn, id=None)


def keep_cmd(state: ReplState, args: str) -> Outcome:
    """`/keep N` or `/keep MODEL`: the reply of the last comparison the conversation goes on with."""
    cc = _state_of(state)
    if not cc.replies or cc.kept_turn is None:
        raise UsageError("nothing to keep: /compare MODEL MODEL ... first")
    main = state.session
    if not main.turns or main.turns[-1] is not cc.kept_turn:
        raise UsageError("the conversation has moved on since the comparison; /keep picks before the next message")
    pick = args.strip()
    if not pick:
        raise UsageError("/keep N or /keep MODEL: " + ", ".join(f"[{a.position}] {a.label}" for a in cc.replies))
    found = [a for a in cc.replies if pick in (str(a.position), a.label, a.model)]
    if len(found) != 1:
        raise UsageError(f"/keep: no single reply matches {pick!r} (" +
                         ", ".join(f"[{a.position}] {a.label}" for a in cc.replies) + ")")
    alt = found[0]
    if not alt.turn.content:
        raise UsageError(f"[{alt.position}] {alt.label} has no reply text to keep")
    kept = cc.kept_turn
    for name in ("content", "provider", "model", "finish_reason", "finish_raw", "finish_detail", "reasoning",
                 "input_tokens", "output_tokens", "ttft", "duration", "parts"):
        setattr(kept, name, getattr(alt.turn, name))
    if main.recorder is not None:
        main.recorder.record(kept)  # the same stored turn, now with the kept reply
    for a in cc.replies:
        a.kept = a is alt
    store: Store | None = state.store  # type: ignore[assignment]
    if store is not None and cc.user is not None and cc.user.id is not None:
        mark_kept(store, cc.user.id, alt.position)
    if state.resolve_model is not None and alt.provider and alt.model:
        provider, model = state.resolve_model(alt.label)
        main.set_model(provider, model)
    cc.noted = True
    state.say(f"keeping [{alt.position}] {alt.label}: the conversation continues with it (model: {alt.label})")
    return None


def keep_choices(state: ReplState) -> list[tuple[str, str]]:
    """Tab completion for /keep: (what to insert, what it is)."""
    cc = getattr(state, "compare", None)
    if not isinstance(cc, ChatCompare):
        return []
    out = []
    for a in cc.replies:
        out.append((str(a.position), a.label))
        out.append((a.label, f"reply {a.position}"))
    return out
