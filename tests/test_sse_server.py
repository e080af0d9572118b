"""The loopback server itself: what other tests rely on it to do (framing, cuts, stalls, records)."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from tests.support import sse_server as sse_module
from tests.support.sse_server import (
    Reply,
    Sleep,
    SSEServer,
    Write,
    anthropic_events,
    openai_chunks,
    split_bytes,
    sse,
)

pytestmark = pytest.mark.timeout(20)


def post(server: SSEServer, body: object, path: str = "/v1/chat/completions") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", "X-Test": "1"})
    return conn.getresponse()


def test_records_requests_and_plays_replies_in_order() -> None:
    with SSEServer() as server:
        server.add(Reply.json({"n": 1}), Reply.json({"n": 2}, status=201))
        first, second = post(server, {"a": 1}), post(server, {"b": 2}, path="/other")
        assert (first.status, json.loads(first.read())) == (200, {"n": 1})
        assert (second.status, json.loads(second.read())) == (201, {"n": 2})
        assert [r.path for r in server.requests] == ["/v1/chat/completions", "/other"]
        assert server.requests[0].json == {"a": 1} and server.requests[0].method == "POST"
        assert server.requests[0].headers["x-test"] == "1"
        assert server.wait_finished(2) and sorted(server.finished) == [0, 1]


def test_an_exhausted_script_fails_loudly() -> None:
    with SSEServer() as server:
        resp = post(server, {})
        assert resp.status == 500
        assert "no scripted reply" in json.loads(resp.read())["error"]["message"]


def test_default_reply() -> None:
    with SSEServer(default=Reply.json({"ok": True})) as server:
        assert json.loads(post(server, {}).read()) == {"ok": True}


def test_sse_reply_is_chunked_one_chunk_per_write() -> None:
    with SSEServer() as server:
        server.add(Reply.sse([b"data: 1\n\n", b"data: 2\n\n"]))
        resp = post(server, {})
        assert resp.getheader("Transfer-Encoding") == "chunked"
        assert resp.getheader("Content-Type") == "text/event-stream"
        assert resp.read() == b"data: 1\n\ndata: 2\n\n"


def test_cut_leaves_an_incomplete_chunked_body() -> None:
    with SSEServer() as server:
        server.add(Reply.sse([b"data: 1\n\n"], cut=True))
        resp = post(server, {})
        with pytest.raises(http.client.IncompleteRead):
            resp.read()


def test_split_bytes_writes_arrive_as_separate_chunks() -> None:
    data = "é€".encode()
    with SSEServer() as server:
        server.add(Reply.sse(split_bytes(data, 1, 3)))
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        raw = b""
        while not raw.endswith(b"0\r\n\r\n"):
            part = sock.recv(4096)
            assert part
            raw += part
        sock.close()
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert body == b"1\r\n\xc3\r\n2\r\n\xa9\xe2\r\n2\r\n\x82\xac\r\n0\r\n\r\n"


def test_stall_notices_a_client_that_hangs_up() -> None:
    with SSEServer() as server:
        server.add(Reply.sse([b"data: 1\n\n", Sleep(8), b"data: 2\n\n"]))
        resp = post(server, {})
        assert resp.status == 200
        resp.close()
        started = time.monotonic()
        assert server.wait_disconnect(1.0)
        assert time.monotonic() - started < 1.0
        assert server.disconnects == [0] and server.finished == []


def test_stalls_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse_module, "MAX_SLEEP", 0.2)
    with SSEServer() as server:
        server.add(Reply.sse([Sleep(3600), b"data: late\n\n"]))
        started = time.monotonic()
        assert post(server, {}).read() == b"data: late\n\n"
        assert time.monotonic() - started < 2


def test_close_does_not_wait_for_a_stalled_reply() -> None:
    server = SSEServer().start()
    server.add(Reply.sse([Sleep(8)]))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/", body=b"{}")
    conn.getresponse()
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 2
    conn.close()


def test_reset_forgets_the_previous_test() -> None:
    with SSEServer() as server:
        server.add(Reply.json({}), Reply.json({}))
        post(server, {}).read()
        server.reset()
        assert server.requests == [] and server.finished == []
        assert post(server, {}).status == 500  # the queued reply was dropped too


def test_builders_produce_the_documented_streams() -> None:
    events = openai_chunks(["a"], usage=(1, 2))
    payloads = [e.decode().removeprefix("data: ").strip() for e in events]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[1]["choices"][0]["delta"]["content"] == "a"
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[3]["choices"] == [] and chunks[3]["usage"]["completion_tokens"] == 2

    names = [e.decode().split("\n", 1)[0].removeprefix("event: ") for e in anthropic_events(["x"])]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]
    assert sse("[DONE]", crlf=True) == b"data: [DONE]\r\n\r\n"
    assert Reply.sse([b"a", b"b"], delay=0.1).actions == (Write(b"a"), Write(b"b", 0.1))
