"""A real loopback HTTP server that plays scripted OpenAI / Anthropic streaming replies.

Point a real SDK at it (``base_url=server.openai_url`` or ``server.anthropic_url``) and every
byte goes through the SDK's own transport, SSE decoder and error handling. Nothing is patched.

Quick start::

    from tests.support.sse_server import Reply, SSEServer, openai_chunks

    with SSEServer() as server:                      # or the `sse_server` pytest fixture
        server.add(Reply.sse(openai_chunks(["Hel", "lo"], usage=(5, 2))))
        ...                                          # call the SDK / provider
        assert server.requests[0].json["model"] == "m"

Public API (kept stable for the CLI, REPL and end-to-end tests):

``SSEServer(default=None)``
    Context manager; ``start()`` / ``close()`` also work. Binds 127.0.0.1 on a free port.
    ``url``            ``http://127.0.0.1:PORT`` (no trailing slash)
    ``openai_url``     ``url + "/v1"``, the OpenAI-style ``base_url``
    ``anthropic_url``  ``url``, the Anthropic-style ``base_url`` (the SDK appends ``/v1/messages``)
    ``guard``          optional ``Callable[[Recorded], Reply | None]``: a Reply it returns answers
                       the request instead of the queue (a gateway refusing a missing header).
    ``add(*replies)``  queue replies, played one per request in order (any path). When the queue
                       is empty ``default`` is played; with no default the server answers 500 with a
                       JSON error saying the script ran out (so a test fails loudly, never hangs).
    ``requests``       list of ``Recorded(method, path, headers, body, json)``; header names are
                       lower-case; ``json`` is the parsed body or None.
    ``disconnects``    list of request indexes whose client went away before the reply was fully
                       written (a write failed or the peer closed while the server was stalling).
    ``disconnected``   a ``threading.Event`` set on the first disconnect;
                       ``wait_disconnect(timeout)`` waits for it.
    ``finished``       list of request indexes whose reply was written completely.
                       Both lists are filled by server threads, possibly just after the client
                       read the last byte: use ``wait_disconnect()`` / ``wait_finished(n)``.
    ``reset()``        forget requests, queue and disconnects, so one server can serve a whole
                       module (``scope="module"``) — starting a server is cheap, but building an
                       SDK client is not (~0.1 s of TLS setup), so sharing both keeps suites fast.

``Reply`` (frozen) — one scripted response:
    ``Reply(status=200, headers=(), actions=(), chunked=True)`` — ``actions`` is a sequence of
    ``Write`` / ``Sleep`` / ``Cut`` (or plain ``bytes``, meaning ``Write``). With ``chunked`` the
    body uses HTTP/1.1 chunked transfer encoding, one chunk per ``Write``, so a ``Cut`` can break
    the framing like a dropped connection does. Every reply is sent with ``Connection: close``.
    Constructors:
    ``Reply.sse(events, *, status=200, headers=(), content_type="text/event-stream", delay=0.0,
    stall=None, cut=False)`` — write each item of ``events`` (bytes, or an action) as its own chunk,
    ``delay`` seconds apart; then optionally stall ``stall`` seconds; then end cleanly or ``cut``.
    ``Reply.json(body, *, status=200, headers=())``  — a JSON body with a Content-Length.
    ``Reply.raw(body, *, status=200, content_type=..., headers=())`` — any bytes, Content-Length.
    ``Reply.html(status=200)``                       — a captive-portal-like HTML page.
    ``Reply.error(status, message, *, type=None, code=None, headers=(), dialect="openai")`` —
    an API error body in the OpenAI (``{"error": {message, type, code}}``) or Anthropic
    (``{"type": "error", "error": {type, message}}``) shape.
    ``Reply.redirect(location, status=307)``.

Actions: ``Write(data, delay=0.0)`` (sleep ``delay`` first, then one TCP write/one chunk),
``Sleep(seconds)`` (a stall; capped at ``MAX_SLEEP`` and cut short by a client disconnect or server
shutdown), ``Cut()`` (announce a chunk, send half of it, close the socket: "connection lost").

SSE builders (return ``list[bytes]``, one item per write):
    ``sse(data, event=None, *, crlf=False)`` -> bytes. ``data`` is a str or JSON-able value.
    ``comment(text="keep-alive")`` -> bytes: an SSE ``:`` comment line.
    ``openai_chunks(texts, *, finish="stop", usage=None, model="test-model", reasoning=(),
    refusal=(), tool_call=False, role_chunk=True, done=True, crlf=False, index=0)``
        role chunk, one chunk per text, a ``finish_reason`` chunk (omitted when ``finish=None``),
        a usage chunk with ``choices: []`` when ``usage=(prompt, completion)``, then ``[DONE]``.
    ``openai_chunk(delta=None, *, finish=None, index=0, usage=None, choices=None, **extra)`` -> bytes
    ``openai_error(message, *, code=None, type=None)`` -> bytes: the in-stream error payload.
    ``anthropic_events(texts, *, stop_reason="end_turn", usage=(10, 5), thinking=(), ping=True,
    stop_details=None, tool_use=False, message_stop=True, crlf=False, model="test-model")``
        message_start, [ping], thinking block, text block, [tool_use block], message_delta
        (omitted when ``stop_reason=None``), message_stop.
    ``anthropic_event(type, **fields)`` -> bytes, ``anthropic_error(type, message)`` -> bytes.
    ``split_bytes(data, *at)`` -> list[Write]: split one byte string at the given offsets
        (e.g. inside a multi-byte UTF-8 character), a short delay between writes so each part
        arrives in its own TCP segment.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

#: The longest stall a script may ask for, so a broken test can never hang the suite.
MAX_SLEEP = 10.0
_SPLIT_DELAY = 0.02


# -- script actions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    data: bytes
    delay: float = 0.0


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Cut:
    """Close the socket in the middle of a chunk: the client sees an incomplete chunked body."""


Action = Write | Sleep | Cut


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    actions: tuple[Action, ...] = ()
    chunked: bool = True

    @classmethod
    def sse(cls, events: Sequence[bytes | Action], *, status: int = 200,
            headers: Sequence[tuple[str, str]] = (), content_type: str = "text/event-stream",
            delay: float = 0.0, stall: float | None = None, cut: bool = False) -> Reply:
        actions: list[Action] = []
        for item in events:
            if isinstance(item, bytes):
                actions.append(Write(item, delay if actions else 0.0))
            else:
                actions.append(item)
        if stall is not None:
            actions.append(Sleep(stall))
        if cut:
            actions.append(Cut())
        hdrs = (("Content-Type", content_type), ("Cache-Control", "no-cache"), *headers)
        return cls(status, tuple(hdrs), tuple(actions), chunked=True)

    @classmethod
    def raw(cls, body: bytes, *, status: int = 200, content_type: str = "application/octet-stream",
            headers: Sequence[tuple[str, str]] = ()) -> Reply:
        hdrs = (("Content-Type", content_type), *headers)
        return cls(status, tuple(hdrs), (Write(body),), chunked=False)

    @classmethod
    def json(cls, body: Any, *, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Reply:
        return cls.raw(json.dumps(body).encode(), status=status, content_type="application/json",
                       headers=headers)

    @classmethod
    def html(cls, status: int = 200) -> Reply:
        page = (b"<!DOCTYPE html><html><head><title>Sign in to the network</title></head>"
                b"<body><h1>Welcome</h1><p>Please log in to continue.</p></body></html>")
        return cls.raw(page, status=status, content_type="text/html; charset=utf-8")

    @classmethod
    def error(cls, status: int, message: str, *, type: str | None = None, code: str | None = None,
              headers: Sequence[tuple[str, str]] = (), dialect: str = "openai") -> Reply:
        if dialect == "anthropic":
            body: dict[str, Any] = {"type": "error",
                                    "error": {"type": type or "api_error", "message": message}}
        else:
            body = {"error": {"message": message, "type": type, "param": None, "code": code}}
        return cls.json(body, status=status, headers=headers)

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> Reply:
        return cls.raw(b"", status=status, content_type="text/plain", headers=(("Location", location),))


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None


# -- SSE builders -----------------------------------------------------------------------------


def sse(data: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    """One SSE event. `data` is sent as is when it is a str, else as compact JSON."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    nl = "\r\n" if crlf else "\n"
    lines = ([f"event: {event}"] if event else []) + [f"data: {line}" for line in text.split("\n")]
    return (nl.join(lines) + nl + nl).encode()


def comment(text: str = "keep-alive") -> bytes:
    return f": {text}\n\n".encode()


def openai_chunk(delta: dict[str, Any] | None = None, *, finish: str | None = None, index: int = 0,
                 usage: tuple[int, int] | None = None, choices: list[Any] | None = None,
                 model: str = "test-model", crlf: bool = False, **extra: Any) -> bytes:
    if choices is None:
        choices = [{"index": index, "delta": delta or {}, "finish_reason": finish, "logprobs": None}]
    body: dict[str, Any] = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1,
                            "model": model, "choices": choices, **extra}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                         "total_tokens": usage[0] + usage[1]}
    return sse(body, crlf=crlf)


def openai_chunks(texts: Sequence[str], *, finish: str | None = "stop", usage: tuple[int, int] | None = None,
                  model: str = "test-model", reasoning: Sequence[str] = (), refusal: Sequence[str] = (),
                  tool_call: bool = False, role_chunk: bool = True, done: bool = True, crlf: bool = False,
                  index: int = 0) -> list[bytes]:
    """A whole Chat Completions stream, in the order the live API sends it."""
    kw: dict[str, Any] = {"model": model, "crlf": crlf, "index": index}
    out: list[bytes] = []
    if role_chunk:
        out.append(openai_chunk({"role": "assistant", "content": "", "refusal": None}, **kw))
    out += [openai_chunk({"reasoning_content": text}, **kw) for text in reasoning]
    out += [openai_chunk({"content": text}, **kw) for text in texts]
    out += [openai_chunk({"refusal": text}, **kw) for text in refusal]
    if tool_call:
        first = {"index": 0, "id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": ""}}
        out.append(openai_chunk({"tool_calls": [first]}, **kw))
        for frag in ('{"loc', 'ation": "Par', 'is"}'):
            out.append(openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": frag}}]}, **kw))
    if finish is not None:
        out.append(openai_chunk({}, finish=finish, **kw))
    if usage is not None:
        out.append(openai_chunk(choices=[], usage=usage, model=model, crlf=crlf))
    if done:
        out.append(sse("[DONE]", crlf=crlf))
    return out


def openai_error(message: str, *, code: Any = None, type: str | None = None) -> bytes:
    return sse({"error": {"message": message, "type": type, "code": code}})


def anthropic_event(type: str, *, crlf: bool = False, **fields: Any) -> bytes:
    return sse({"type": type, **fields}, event=type, crlf=crlf)


def anthropic_error(type: str, message: str) -> bytes:
    return sse({"type": "error", "error": {"type": type, "message": message}, "request_id": "req_test"},
               event="error")


def anthropic_events(texts: Sequence[str], *, stop_reason: str | None = "end_turn",
                     usage: tuple[int, int] = (10, 5), thinking: Sequence[str] = (), ping: bool = True,
                     stop_details: dict[str, Any] | None = None, tool_use: bool = False,
                     message_stop: bool = True, crlf: bool = False, model: str = "test-model") -> list[bytes]:
    """A whole Messages stream, in the order the live API sends it."""
    def ev(type: str, **fields: Any) -> bytes:
        return anthropic_event(type, crlf=crlf, **fields)

    message: dict[str, Any] = {"id": "msg_test", "type": "message", "role": "assistant", "model": model, "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": usage[0], "output_tokens": 1}}
    out = [ev("message_start", message=message)]
    index = 0
    if thinking:
        out.append(ev("content_block_start", index=index,
                      content_block={"type": "thinking", "thinking": "", "signature": ""}))
        out += [ev("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": t})
                for t in thinking]
        out.append(ev("content_block_delta", index=index,
                      delta={"type": "signature_delta", "signature": "c2lnbmF0dXJl"}))
        out.append(ev("content_block_stop", index=index))
        index += 1
    out.append(ev("content_block_start", index=index, content_block={"type": "text", "text": ""}))
    if ping:
        out.append(sse({"type": "ping"}, event="ping", crlf=crlf))
    out += [ev("content_block_delta", index=index, delta={"type": "text_delta", "text": t}) for t in texts]
    out.append(ev("content_block_stop", index=index))
    if tool_use:
        index += 1
        out.append(ev("content_block_start", index=index,
                      content_block={"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}))
        for frag in ('{"loc', 'ation": "Par', 'is"}'):
            out.append(ev("content_block_delta", index=index,
                          delta={"type": "input_json_delta", "partial_json": frag}))
        out.append(ev("content_block_stop", index=index))
    if stop_reason is not None:
        delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": None}
        if stop_details is not None:
            delta["stop_details"] = stop_details
        out.append(ev("message_delta", delta=delta, usage={"output_tokens": usage[1]}))
        if message_stop:
            out.append(ev("message_stop"))
    return out


def split_bytes(data: bytes, *at: int) -> list[Write]:
    """Split `data` at the given offsets into separate writes (separate TCP segments)."""
    cuts = [0, *sorted(at), len(data)]
    return [Write(data[a:b], _SPLIT_DELAY if i else 0.0) for i, (a, b) in enumerate(itertools.pairwise(cuts))]


# -- tool-call streams ------------------------------------------------------------------------
# Builders for scripted tool-call replies in both dialects, down to the fragments that break
# naive accumulators (see chatcli/providers/_toolcalls.py).
#
# ``openai_tool_call(index=0, *, id=None, name=None, arguments=None, type=None)`` -> dict: one
#     item of ``delta.tool_calls``; a field left None is omitted (``index=None`` omits the index);
#     ``arguments`` may be a str or, like some compatible servers send it, a dict.
# ``openai_tool_chunks(fragments, *, text=(), finish="tool_calls", usage=None, done=True)``
#     -> list[bytes]: role chunk, a chunk per text, then one chunk per item of ``fragments`` (a
#     tool-call dict, or a list of them for several calls in one chunk), the finish chunk (omitted
#     when ``finish=None``), an optional usage chunk, ``[DONE]``.
# ``ToolUse(id, name, partial_json=("",), input=None)``: an Anthropic ``tool_use`` block whose
#     input streams as ``input_json_delta`` events (the live API's first one is often ``''``).
# ``anthropic_tool_events(blocks, *, stop_reason="tool_use", usage=(10, 5), message_stop=True)``
#     -> list[bytes]: message_start, then one content block per item of ``blocks`` (a str is a
#     text block with that text, a ``ToolUse`` a tool_use block), message_delta, message_stop.


def openai_tool_call(index: int | None = 0, *, id: str | None = None, name: str | None = None,
                     arguments: str | dict[str, Any] | None = None, type: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {} if index is None else {"index": index}
    if id is not None:
        item["id"] = id
    if type is not None:
        item["type"] = type
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    if function:
        item["function"] = function
    return item


def openai_tool_chunks(fragments: Sequence[dict[str, Any] | list[dict[str, Any]]], *, text: Sequence[str] = (),
                       finish: str | None = "tool_calls", usage: tuple[int, int] | None = None,
                       done: bool = True) -> list[bytes]:
    out = [openai_chunk({"role": "assistant", "content": None})]
    out += [openai_chunk({"content": t}) for t in text]
    for fragment in fragments:
        out.append(openai_chunk({"tool_calls": fragment if isinstance(fragment, list) else [fragment]}))
    if finish is not None:
        out.append(openai_chunk({}, finish=finish))
    if usage is not None:
        out.append(openai_chunk(choices=[], usage=usage))
    if done:
        out.append(sse("[DONE]"))
    return out


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    partial_json: tuple[str, ...] = ("",)
    input: dict[str, Any] | None = None


def anthropic_tool_events(blocks: Sequence[str | ToolUse], *, stop_reason: str | None = "tool_use",
                          usage: tuple[int, int] = (10, 5), message_stop: bool = True) -> list[bytes]:
    message: dict[str, Any] = {"id": "msg_tools", "type": "message", "role": "assistant", "model": "test-model",
                               "content": [], "stop_reason": None, "stop_sequence": None,
                               "usage": {"input_tokens": usage[0], "output_tokens": 1}}
    out = [anthropic_event("message_start", message=message)]
    for index, block in enumerate(blocks):
        if isinstance(block, str):
            out.append(anthropic_event("content_block_start", index=index, content_block={"type": "text", "text": ""}))
            out.append(anthropic_event("content_block_delta", index=index,
                                       delta={"type": "text_delta", "text": block}))
        else:
            start = {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input or {}}
            out.append(anthropic_event("content_block_start", index=index, content_block=start))
            out += [anthropic_event("content_block_delta", index=index,
                                    delta={"type": "input_json_delta", "partial_json": frag})
                    for frag in block.partial_json]
        out.append(anthropic_event("content_block_stop", index=index))
    if stop_reason is not None:
        out.append(anthropic_event("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": None},
                                   usage={"output_tokens": usage[1]}))
        if message_stop:
            out.append(anthropic_event("message_stop"))
    return out


# -- the server -------------------------------------------------------------------------------


class _Disconnected(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parsed: Any = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(body) if body else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        ticket, reply = owner._record(Recorded(self.command, self.path, headers, body, parsed))
        self.close_connection = True
        try:
            self._play(reply)
        except (_Disconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            owner._disconnect(ticket)
            return
        owner._finish(ticket)

    def _play(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            size = sum(len(a.data) for a in reply.actions if isinstance(a, Write))
            self.send_header("Content-Length", str(size))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        for action in reply.actions:
            if isinstance(action, Cut):
                self._cut(reply.chunked)
                return
            if isinstance(action, Sleep):
                self._stall(action.seconds)
                continue
            if action.delay:
                self._stall(action.delay)
            self._write(action.data, reply.chunked)
        if reply.chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _write(self, data: bytes, chunked: bool) -> None:
        if not data:
            return
        if chunked:
            data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
        self.wfile.write(data)
        self.wfile.flush()

    def _cut(self, chunked: bool) -> None:
        """Promise a chunk of 64 bytes, send 5, drop the connection (no terminating chunk)."""
        if chunked:
            self.wfile.write(b"40\r\ndata:")
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def _stall(self, seconds: float) -> None:
        """Sleep, but notice a client that hangs up (readable + EOF) or a server shutdown."""
        deadline = time.monotonic() + min(seconds, MAX_SLEEP)
        while (left := deadline - time.monotonic()) > 0:
            if self.server.owner._stopping.is_set():
                raise _Disconnected
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    peeked = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    raise _Disconnected from None
                if not peeked:
                    raise _Disconnected


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: SSEServer


@dataclass
class SSEServer:
    default: Reply | None = None
    requests: list[Recorded] = field(default_factory=list)
    disconnects: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    #: Called with each request before the queue: a Reply it returns is played instead (the
    #: queue is left as it is), None lets the request through -- e.g. a gateway's 401 for
    #: requests without some header.
    guard: Callable[[Recorded], Reply | None] | None = None

    def __post_init__(self) -> None:
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._generation = 0

    # lifecycle
    def start(self) -> SSEServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._port = int(httpd.server_address[1])
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sse-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> SSEServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # addresses
    @property
    def port(self) -> int:
        """The bound port (still readable after `close()`, e.g. for messages naming it)."""
        assert self._port is not None, "server not started"
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    def reset(self) -> SSEServer:
        """Forget requests, queued replies and disconnects (to share one server between tests).

        Replies still being played for an earlier test no longer report into the new lists."""
        with self._lock:
            self._generation += 1
            self.guard = None
            self._queue.clear()
            self.requests.clear()
            self.disconnects.clear()
            self.finished.clear()
            self.disconnected.clear()
        return self

    # scripting
    def add(self, *replies: Reply) -> SSEServer:
        with self._lock:
            self._queue.extend(replies)
        return self

    def wait_disconnect(self, timeout: float = 2.0) -> bool:
        return self.disconnected.wait(timeout)

    def wait_finished(self, count: int, timeout: float = 2.0) -> bool:
        """Wait until `count` replies were written completely (the server thread records that
        just after the client may already have read the last byte)."""
        deadline = time.monotonic() + timeout
        while len(self.finished) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # called from handler threads
    def _record(self, request: Recorded) -> tuple[tuple[int, int], Reply]:
        with self._lock:
            self.requests.append(request)
            index = len(self.requests) - 1
            ticket = (self._generation, index)
            refused = self.guard(request) if self.guard is not None else None
            if refused is not None:
                return ticket, refused
            if self._queue:
                return ticket, self._queue.pop(0)
        if self.default is not None:
            return ticket, self.default
        return ticket, Reply.error(500, f"sse_server: no scripted reply for request #{index}",
                                   type="script_exhausted")

    def _disconnect(self, ticket: tuple[int, int]) -> None:
        with self._lock:
            if ticket[0] != self._generation:
                return
            self.disconnects.append(ticket[1])
            self.disconnected.set()

    def _finish(self, ticket: tuple[int, int]) -> None:
        with self._lock:
            if ticket[0] == self._generation:
                self.finished.append(ticket[1])


@pytest.fixture
def sse_server() -> Iterator[SSEServer]:
    """A started `SSEServer`, closed after the test."""
    with SSEServer() as server:
        yield server
