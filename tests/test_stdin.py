"""stdin.py in-process: composing the prompt, fences, refusals, and the bounded wait on a real pipe."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterator

import pytest

from chatcli.cli import stdin
from chatcli.env import Environment
from chatcli.errors import InputError, UsageError


def env_with(data: bytes | None, *, tty: bool = False) -> tuple[Environment, io.StringIO]:
    err = io.StringIO()
    stream = None if data is None else io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    return Environment(stdin=stream, stdout=io.StringIO(), stderr=err, stdin_isatty=tty), err


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_compose_argument_only_and_stdin_only() -> None:
    assert stdin.compose("hello", None) == "hello"
    text = "  line one\n\tindented\n\n"
    assert stdin.compose(None, text) == text  # byte for byte, whitespace kept
    with pytest.raises(UsageError, match="nothing to ask"):
        stdin.compose(None, None)
    with pytest.raises(UsageError):
        stdin.compose("", " \n\t")


def test_compose_argument_then_fenced_stdin_preserves_whitespace() -> None:
    code = "def f():\n    return 1  \n\n\n"
    assert stdin.compose("review this", code) == f"review this\n\n```\n{code}```"
    assert stdin.compose("x", "no newline") == "x\n\n```\nno newline\n```"


def test_fence_is_longer_than_any_backtick_run_inside() -> None:
    text = "a ``` fence\n````\ninline `x` and ``````six``````\n"
    fence = stdin.fence_for(text)
    assert fence == "`" * 7
    prompt = stdin.compose("explain", text)
    body = prompt.split(fence + "\n", 1)[1].rsplit(fence, 1)[0]
    assert body == text
    assert stdin.fence_for("plain") == "```"


def test_decode_refuses_binary_and_non_utf8() -> None:
    with pytest.raises(InputError, match="NUL byte at offset 3"):
        stdin.decode(b"abc\0def")
    with pytest.raises(InputError, match=r"not UTF-8 text \(invalid byte 0xe9 at offset 3\)"):
        stdin.decode("café".encode("latin-1"))
    assert stdin.decode("\ufeffhi".encode()) == "hi"  # a BOM is not content
    assert stdin.decode("naïve ✓\r\n".encode()) == "naïve ✓\r\n"


def test_read_piped_rules() -> None:
    env, _ = env_with(b"piped\n", tty=True)
    assert stdin.read_piped(env, 1, have_argument=False) is None  # a TTY is never read
    env, _ = env_with(None)
    assert stdin.read_piped(env, 1, have_argument=False) is None
    env, _ = env_with(b"")
    assert stdin.read_piped(env, 1, have_argument=False) is None  # < /dev/null
    env, _ = env_with(b"piped\n")
    assert stdin.read_piped(env, 1, have_argument=True) == "piped\n"
    env, _ = env_with(b"\x00\x01")
    with pytest.raises(InputError):
        stdin.read_piped(env, 1, have_argument=True)


def test_size_cap_is_an_error_not_a_truncation(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="larger than 1 MB"):
        stdin.read_bytes(io.BytesIO(b"x" * (1024 * 1024 + 1)), 1, limit=1024 * 1024)
    assert len(stdin.read_bytes(io.BytesIO(b"x" * (1024 * 1024)), 1, limit=1024 * 1024)) == 1024 * 1024


def test_idle_pipe_times_out_then_argument_alone(pipe: tuple[int, int]) -> None:
    r, _w = pipe  # the write end stays open and silent
    err = io.StringIO()
    env = Environment(stdin=os.fdopen(r, "r", closefd=False), stderr=err, stdin_isatty=False)
    start = time.monotonic()
    assert stdin.read_piped(env, 0.3, have_argument=True) is None
    assert 0.25 <= time.monotonic() - start < 3
    assert "sent nothing in 0.3s" in err.getvalue()
    with pytest.raises(InputError, match=r"sent nothing in 0\.3s"):
        stdin.read_piped(env, 0.3, have_argument=False)


def test_slow_producer_is_read_to_eof(pipe: tuple[int, int]) -> None:
    r, w = pipe

    def produce() -> None:
        os.write(w, b"first ")
        time.sleep(0.5)  # longer than the timeout: only the first byte is bounded
        os.write(w, b"second")
        os.close(w)

    threading.Thread(target=produce, daemon=True).start()
    env = Environment(stdin=os.fdopen(r, "r", closefd=False), stdin_isatty=False)
    assert stdin.read_piped(env, 0.3, have_argument=False) == "first second"


def test_multi_megabyte_pipe_is_read_fully(pipe: tuple[int, int]) -> None:
    r, w = pipe
    payload = (b"0123456789abcdef" * 64 + b"\n") * 3000  # ~3 MB, far more than a pipe buffer

    def produce() -> None:
        with os.fdopen(w, "wb", closefd=True) as f:
            f.write(payload)

    threading.Thread(target=produce, daemon=True).start()
    env = Environment(stdin=os.fdopen(r, "r", closefd=False), stdin_isatty=False)
    text = stdin.read_piped(env, 2, have_argument=False)
    assert text is not None and text.encode() == payload
