"""The warm-up rehearsal's one-request loopback server (chatcli/providers/_loopback.py)."""

from __future__ import annotations

import socket
import time

import httpx2

from chatcli.providers._loopback import LoopbackReply


def test_it_answers_one_request_with_the_body_streamed_chunked() -> None:
    body = b"data: one\n\ndata: two\n\n"
    with LoopbackReply(body) as url, httpx2.Client() as client:
        assert url.startswith("http://127.0.0.1:")
        payload = b'{"x": "' + b"y" * 200_000 + b'"}'  # arrives in several reads
        response = client.post(url + "/v1/chat/completions", content=payload,
                               headers={"authorization": "Bearer placeholder"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.content == body


def test_it_records_what_it_received() -> None:
    server = LoopbackReply(b"data: x\n\n")
    with server as url:
        httpx2.post(url + "/path", content=b"hello", headers={"x-api-key": "placeholder"})
    received = server.received or b""
    assert received.startswith(b"POST /path HTTP/1.1\r\n")
    assert b"x-api-key: placeholder" in received and received.endswith(b"\r\n\r\nhello")


def test_leaving_without_a_request_returns_at_once() -> None:
    started = time.monotonic()
    server = LoopbackReply(b"data: x\n\n")
    with server:
        pass
    assert time.monotonic() - started < 1.0
    assert server.received is None


def test_a_request_cut_short_gets_no_answer() -> None:
    server = LoopbackReply(b"data: x\n\n")
    with server as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\ncontent-length: 100\r\n\r\nonly a part")
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(100) == b""  # closed without a response
    assert server.received is None
