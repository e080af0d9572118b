"""Ctrl-C mid-reply, in a pseudo-terminal: how soon the interruption footer is drawn, and how soon
`ask` exits / the chat's prompt is back, beside the same flow ending normally in the same run.

    python benchmarks/interrupt_bench.py [--rounds 7]

Each round runs four flows, interleaved, each a fresh `chatcli` in a 100x30 pty (echoctl on, so the
tty echoes `^C` as most terminals do) against a loopback server in a process of its own:

* `ask`, complete:  the reply's first three paragraphs stream and are drawn; then the bench tells the
                    server to send the last token, the finish and `[DONE]`, and times from that
                    write to the panel's bottom border (the footer) on the terminal, and to exit.
* `ask`, Ctrl-C:    the same paragraphs drawn, the server holding the stream open; the bench writes
                    Ctrl-C to the pty and times from that write to the footer, and to exit.
* chat, complete / chat, Ctrl-C: the same, in `chatcli`'s chat, to the footer and to the prompt
                    drawn again (prompt-toolkit's bracketed-paste switch).

So a row's baseline is the same process at the same point of the same reply, differing only in
what ends it; "× complete" is the median of the per-round ratios. Every Ctrl-C run's transcript is
checked as tests/e2e/test_terminal.py checks it: the screen before Ctrl-C, unchanged, then the
footer and the "partial reply kept" line (issue 16, item 4), counted in the last column.

The server is a plain socket here, not tests/support/sse_server.py: the bench must decide, after
the frame is on the screen, when the last token leaves, which a scripted stream cannot wait for.
`chatcli` is the one on PATH beside this interpreter, with PYTHONPATH as given (the code under
test); start-up is outside every figure, so an editable install changes nothing measured.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pexpect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The pty helpers and the transcript check are the e2e suite's own, so the bench checks exactly
# what the test asserts.
from tests.e2e.helpers import OPENAI_MODEL, Pty, chat_env  # noqa: E402
from tests.e2e.test_terminal import (  # noqa: E402
    COLS,
    CTRL_C,
    CTRL_D,
    PROMPT,
    REPLY,
    ROWS,
    _assert_frame_plus_footer,
    _drain,
    _echoctl_on,
    screen,
)
from tests.support.sse_server import openai_chunks  # noqa: E402

FOOTER = "╰".encode()
_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
         b"Connection: close\r\n\r\n")
HOLD_LIMIT = 15.0  # a held stream is dropped after this long, so a broken run cannot hang the bench


def _read_request(client: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = client.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        piece = client.recv(65536)
        if not piece:
            break
        body += piece
    return head


def _serve(conn: Connection) -> None:
    """One streamed reply per `"serve"`: the paragraphs, then on `"finish"` the end of the stream, on
    `"hold"` nothing until the client hangs up."""
    first = b"".join(openai_chunks(REPLY, finish=None, done=False))
    last = b"".join(openai_chunks([" Done."], finish="stop", role_chunk=False))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        conn.send(listener.getsockname()[1])
        while conn.recv() is not None:
            while True:  # anything but the chat request (none is expected) gets a 404
                client, _ = listener.accept()
                if b"/chat/completions" in _read_request(client).split(b"\r\n", 1)[0]:
                    break
                client.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                client.close()
            with client:
                client.sendall(_HEAD + first)
                if conn.recv() == "finish":
                    client.sendall(last)
                    client.shutdown(socket.SHUT_WR)
                client.settimeout(HOLD_LIMIT)
                with contextlib.suppress(OSError):
                    while client.recv(65536):
                        pass
            conn.send(True)


class Server:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process: Any = context.Process(target=_serve, args=(child,), daemon=True)

    def __enter__(self) -> Server:
        self.process.start()
        self.url = f"http://127.0.0.1:{self.conn.recv()}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


def one_run(server: Server, home: Path, *, chat: bool, interrupt: bool) -> tuple[float, float, bool | None]:
    """(seconds to the footer, seconds to exit / the prompt, transcript check or None)."""
    env = chat_env(home, extra={"OPENAI_BASE_URL": server.url})
    server.conn.send("serve")
    pty = Pty(["-m", OPENAI_MODEL] if chat else ["ask", "-m", OPENAI_MODEL, "hi"], env, rows=ROWS, cols=COLS)
    # pexpect sleeps `delaybeforesend` (50 ms) before every send: it would be timed as Ctrl-C's cost.
    pty.child.delaybeforesend = None
    try:
        _echoctl_on(pty)
        if chat:
            pty.expect(PROMPT)
            pty.send(b"question\r")
        pty.expect(b"partial")
        _drain(pty, 0.3)
        before = screen(pty.transcript)
        started = time.perf_counter()
        if interrupt:
            pty.send(CTRL_C)
        else:
            server.conn.send("finish")
        pty.expect(FOOTER)
        footer = time.perf_counter() - started
        if chat:
            pty.expect(PROMPT)
        else:
            pty.child.expect(pexpect.EOF)
            pty.transcript += pty.child.before or b""
        done = time.perf_counter() - started
        if interrupt:
            server.conn.send("hold")
        check: bool | None = None
        if chat:
            _drain(pty, 0.3)
        if interrupt:
            try:
                _assert_frame_plus_footer(before, screen(pty.transcript))
                check = True
            except AssertionError as exc:
                print(f"  transcript check failed ({'chat' if chat else 'ask'}): {str(exc)[:300]}")
                check = False
        if chat:
            pty.send(CTRL_D)
            pty.finish()
    finally:
        pty.kill()
    server.conn.recv()
    return footer, done, check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    flows = [(chat, interrupt) for chat in (False, True) for interrupt in (False, True)]
    times: dict[tuple[bool, bool], list[tuple[float, float]]] = {flow: [] for flow in flows}
    checks: dict[bool, list[bool]] = {False: [], True: []}
    with Server() as server, tempfile.TemporaryDirectory(prefix="chatcli-interrupt-") as tmp:
        for n in range(args.rounds):
            for chat, interrupt in flows:
                footer, done, check = one_run(server, Path(tmp) / f"{n}-{chat}-{interrupt}", chat=chat,
                                              interrupt=interrupt)
                times[(chat, interrupt)].append((footer, done))
                if check is not None:
                    checks[chat].append(check)
    print(f"{'flow':<18}{'to footer':>12}{'x complete':>12}{'to exit/prompt':>17}{'x complete':>12}"
          f"{'transcript':>12}")
    failed = False
    for chat in (False, True):
        base = times[(chat, False)]
        for interrupt in (False, True):
            rows = times[(chat, interrupt)]
            name = ("chat" if chat else "ask") + (", Ctrl-C" if interrupt else ", complete")
            footer = statistics.median(r[0] for r in rows) * 1000
            done = statistics.median(r[1] for r in rows) * 1000
            ratio_f = statistics.median(r[0] / b[0] for r, b in zip(rows, base, strict=True))
            ratio_d = statistics.median(r[1] / b[1] for r, b in zip(rows, base, strict=True))
            ok = checks[chat]
            mark = f"{sum(ok)}/{len(ok)} ok" if interrupt else "-"
            failed |= interrupt and not all(ok)
            print(f"{name:<18}{footer:>9.1f} ms{ratio_f:>11.2f}x{done:>14.1f} ms{ratio_d:>11.2f}x{mark:>12}")
    print(f"medians of {args.rounds} interleaved rounds; exit 1 if a transcript check failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
