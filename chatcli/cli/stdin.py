"""Piped input: when stdin is read, how it becomes the prompt, and what is refused.

The rules (docs/architecture.md, "Piped stdin"):

* stdin is read only when it is not a TTY;
* `echo text | chatcli ask` — the piped text is the prompt, byte for byte;
* `cat f | chatcli ask "review"` — the argument first, then the piped text in a fenced block.
  The fence is one backtick longer than the longest backtick run inside the text, so a file that
  itself contains ``` fences cannot close ours early. Whitespace inside is preserved exactly;
* a pipe that stays open and sends nothing: we wait at most `stdin_timeout` seconds (default 5)
  for the first byte. With an argument, chatcli then goes on with the argument alone and says
  so on stderr — the user asked a question, and an idle inherited pipe (CI runners, `ssh`,
  subprocess with stdin=PIPE) should not turn it into an error. Without an argument there is
  nothing to ask: an `InputError` that says how to fix it. Once data has started to arrive we
  read to EOF with no deadline: a slow producer (`make 2>&1 | chatcli ask`) is legitimate, and
  the user can see the pipe they built;
* an empty pipe (`< /dev/null`) counts as no input;
* binary (a NUL byte) or non-UTF-8 input is refused (exit 2) naming the offset; a UTF-8 BOM is
  dropped;
* input above `MAX_BYTES` (10 MB — far beyond any model's context window) is refused rather than
  truncated silently;
* in `chatcli ask`, piped bytes that are an image or a PDF (judged by their first bytes) become an
  attachment instead (`read_piped_input`); for them the attachment limits apply (up to
  `MAX_ATTACHMENT_BYTES`, 32 MB), so stdin is read up to that much. Other bytes keep the rules above.
"""

from __future__ import annotations

import os
import re
import select
import time
from typing import IO, TYPE_CHECKING, Any

from chatcli.env import Environment
from chatcli.errors import InputError, UsageError

if TYPE_CHECKING:
    from chatcli.attachments import Attachment

MAX_BYTES = 10 * 1024 * 1024
#: The most piped stdin may be when it is an image or a PDF (the PDF limit, chatcli/attachments.py).
MAX_ATTACHMENT_BYTES = 32_000_000
_CHUNK = 1 << 16
_BACKTICKS = re.compile(r"`+")


class StdinTimeout(Exception):
    """The pipe is open but sent nothing within the timeout."""


def _fileno(stream: IO[Any]) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # StringIO/BytesIO in tests, or a detached stream
        return None


def _wait_readable(fd: int, timeout: float) -> bool:
    """True when `fd` has data or EOF within `timeout` seconds. Files and /dev/null are always ready."""
    deadline = time.monotonic() + timeout
    while True:
        left = max(0.0, deadline - time.monotonic())
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except InterruptedError:  # pragma: no cover - EINTR is retried by Python since 3.5
            continue
        except (OSError, ValueError):  # not selectable (Windows console, odd fds): just read
            return True
        return bool(ready)


def read_bytes(stream: IO[Any], timeout: float, limit: int = MAX_BYTES) -> bytes:
    """Read all of a non-TTY stdin, waiting at most `timeout` for the first byte."""
    fd = _fileno(stream)
    if fd is None:  # an in-memory stream: no waiting possible or needed
        raw = stream.read(limit + 1)
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw or b"")
    else:
        if not _wait_readable(fd, timeout):
            raise StdinTimeout
        parts: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        data = b"".join(parts)
    if len(data) > limit:
        raise InputError(
            f"piped input is larger than {limit // (1024 * 1024)} MB; send a smaller part "
            "(e.g. head -c 1000000 FILE | chatcli ask ...)"
        )
    return data


def decode(data: bytes) -> str:
    """UTF-8 text or an InputError that says what is wrong and where."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputError(f"piped input looks binary (a NUL byte at offset {nul}); chatcli reads text only")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"piped input is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None
    return text.removeprefix("\ufeff")


def read_piped(env: Environment, timeout: float, *, have_argument: bool) -> str | None:
    """The piped text, or None when stdin is a TTY, absent, empty, or idle with an argument given."""
    if env.stdin is None or env.stdin_isatty:
        return None
    stream = getattr(env.stdin, "buffer", env.stdin)  # bytes: we decode (and judge) it ourselves
    try:
        data = read_bytes(stream, timeout)
    except StdinTimeout:
        if have_argument:
            env.warn(f"stdin is open but sent nothing in {timeout:g}s; going on with the argument alone")
            return None
        raise InputError(
            f"stdin is open but sent nothing in {timeout:g}s: pass the prompt as an argument, "
            "close the pipe (< /dev/null), or raise stdin_timeout"
        ) from None
    if not data:
        return None
    return decode(data)


def read_piped_input(env: Environment, timeout: float, *,
                     have_argument: bool) -> tuple[str | None, Attachment | None]:
    """`read_piped`, except that an image or a PDF on stdin comes back as an attachment: (text, None)
    or (None, attachment). Text keeps its 10 MB limit and other binary input its clear error."""
    if env.stdin is None or env.stdin_isatty:
        return None, None
    stream = getattr(env.stdin, "buffer", env.stdin)
    try:
        data = read_bytes(stream, timeout, limit=MAX_ATTACHMENT_BYTES)
    except StdinTimeout:
        if have_argument:
            env.warn(f"stdin is open but sent nothing in {timeout:g}s; going on with the argument alone")
            return None, None
        raise InputError(
            f"stdin is open but sent nothing in {timeout:g}s: pass the prompt as an argument, "
            "close the pipe (< /dev/null), or raise stdin_timeout"
        ) from None
    except InputError:
        raise InputError("piped input is larger than 32 MB (the limit for a PDF; 20 MB for an image, "
                         "10 MB for text); send a smaller part") from None
    if not data:
        return None, None
    from chatcli.attachments import piped  # only once bytes arrived: the text path stays lean

    attachment = piped(data)
    if attachment is not None:
        return None, attachment
    if len(data) > MAX_BYTES:
        raise InputError(
            f"piped input is larger than {MAX_BYTES // (1024 * 1024)} MB; send a smaller part "
            "(e.g. head -c 1000000 FILE | chatcli ask ...)"
        )
    return decode(data), None


def fence_for(text: str) -> str:
    """A backtick fence longer than any backtick run in `text` (CommonMark: at least 3)."""
    longest = max((len(m.group(0)) for m in _BACKTICKS.finditer(text)), default=0)
    return "`" * max(3, longest + 1)


def compose(argument: str | None, piped: str | None) -> str:
    """The prompt: the argument, the piped text, or the argument then the piped text fenced."""
    if piped is None or not piped.strip():  # whitespace alone is no input (APIs reject it too)
        if not argument:
            raise UsageError('nothing to ask: give a prompt (chatcli ask "...") or pipe text in')
        return argument
    if not argument:
        return piped
    fence = fence_for(piped)
    body = piped if piped.endswith("\n") else piped + "\n"
    return f"{argument}\n\n{fence}\n{body}{fence}"
