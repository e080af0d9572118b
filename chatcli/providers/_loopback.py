"""A one-request HTTP server on the loopback interface, for the warm-up rehearsal (`_client.py`).

The rehearsal plays a whole request and streamed reply before the user's first message, so that
the first reply does not run the HTTP stack's code for the first time. An in-memory transport
skips the part of that stack that touches the network (the connection pool, the HTTP/1.1 state
machine, the chunked reader, the socket): repl_bench measured the first reply's request 0.4-1.5 ms
slower than the second's because of it. This server lets the rehearsal go through all of it.

It accepts one connection on 127.0.0.1 (an ephemeral port), reads one request, answers it with
the given SSE body (chunked, as real servers stream) and closes. Nothing here ever leaves the
machine, and the rehearsal sends a placeholder key, never the user's.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

#: Seconds any step may take before the server gives up (the rehearsal then just fails quietly).
TIMEOUT = 5.0
_MAX_REQUEST = 1 << 20


class LoopbackReply:
    """`with LoopbackReply(body) as url:` -- a server answering one request at `url` with `body`."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        #: The request as it arrived (head and body), once one did.
        self.received: bytes | None = None
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._thread: threading.Thread | None = None

    def __enter__(self) -> str:
        try:
            self._listener.bind(("127.0.0.1", 0))
            self._listener.listen(1)
            self._listener.settimeout(TIMEOUT)
        except OSError:
            self._listener.close()
            raise
        self._thread = threading.Thread(target=self._serve, name="chatcli-rehearsal", daemon=True)
        self._thread.start()
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Closing the listener wakes an accept() that never got its connection.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        if self._thread is not None:
            self._thread.join(TIMEOUT)

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self._listener.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                self.received = _read_request(conn)
                if self.received is not None:
                    conn.sendall(self._response())

    def _response(self) -> bytes:
        head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (len(self._body), self._body) if self._body else b""
        return head + chunk + b"0\r\n\r\n"


def _read_request(conn: socket.socket) -> bytes | None:
    """Read one request (head and a Content-Length body); None if it never arrived whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part or len(data) > _MAX_REQUEST:
            return None
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
    if length > _MAX_REQUEST:
        return None
    while len(body) < length:
        part = conn.recv(65536)
        if not part:
            return None
        body += part
    return head + b"\r\n\r\n" + body
