"""Attachments: a file, an image URL or stdin turned into a message part, judged by its bytes.

What `load(spec)` accepts (docs/architecture.md, "Attachments and roles"):

* a path: the kind comes from the first bytes (magic numbers), never from the name, so `shot.png`
  holding a PDF is a PDF:

      89 50 4E 47 0D 0A 1A 0A     PNG   -> ImagePart image/png
      FF D8 FF                    JPEG  -> ImagePart image/jpeg
      "GIF87a" / "GIF89a"         GIF   -> ImagePart image/gif
      "RIFF" .... "WEBP"          WebP  -> ImagePart image/webp
      "%PDF-"                     PDF   -> DocumentPart application/pdf
      no NUL byte, valid UTF-8    text  -> the text, fenced and labelled with its path, in the message

  anything else is an `InputError` (exit 2) naming the file and what is accepted;
* an `http://` or `https://` URL: passed on as `ImagePart(url=...)`. chatcli fetches nothing, so
  the rule cannot look at bytes: every http(s) URL is taken as an image URL (the only kind of URL
  both APIs take in a user message); the media type is guessed from the path's extension
  (.png .jpg .jpeg .gif .webp) and is "" otherwise. Refused without fetching: a URL whose path ends
  in `.pdf` (neither API takes a PDF by URL in Chat Completions; download it and attach the file),
  and a URL carrying a user name or password (it would be sent to the provider and stored in
  history);
* `-`: the bytes of the stdin the caller passes, judged like a file's.

Limits, each a one-line `InputError` before any request: missing or unreadable file, a directory,
an image over 20 MB, a PDF over 32 MB, a text file over 10 MB (piped stdin's limit,
`chatcli.cli.stdin.MAX_BYTES`), more than 20 attachments in one message (`check_count`). Sizes are
checked from `fstat` before the body is read, so a 2 GB file costs nothing. MB here is 10^6 bytes,
as `describe` prints them and as the providers state their limits.

Memory: a file is read once, into the one `bytes` object the part keeps (`FileIO.readall` sizes
its buffer from `fstat`); nothing here copies it. The SHA-256 for the store is computed on first
use (`Attachment.sha256`, `content_hash`), not on load, so `ask` does not pay for it before the
request when nothing is saved.

Nothing is imported at start-up beyond the stdlib basics: this module is imported when an
attachment is given, and hashlib/urllib load only when used.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import BinaryIO, Literal

from chatcli.cli.stdin import MAX_BYTES as MAX_TEXT_BYTES
from chatcli.cli.stdin import compose
from chatcli.errors import InputError
from chatcli.events import DocumentPart, ImagePart

MAX_IMAGE_BYTES = 20_000_000
MAX_PDF_BYTES = 32_000_000
MAX_ATTACHMENTS = 20
#: Enough bytes to tell every accepted kind apart (WebP needs 12).
_HEAD = 16
#: The most a non-seekable source (stdin, a FIFO) may send: the largest limit, plus one byte to notice more.
_MAX_STREAM = max(MAX_IMAGE_BYTES, MAX_PDF_BYTES, MAX_TEXT_BYTES) + 1

ACCEPTED = "PNG, JPEG, GIF or WebP images, PDF documents, UTF-8 text files, http(s) image URLs"

Kind = Literal["image", "document", "text"]

_IMAGE_EXTENSIONS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                     ".gif": "image/gif", ".webp": "image/webp"}


@dataclass(frozen=True)
class Attachment:
    """One attachment, ready for a message.

    `source` is what the user gave (path, URL or "-"); `name` the file name kept with the part
    (the path's last component, "stdin", or the URL). An image or a document has `part`; a text
    file has `text` (decoded, BOM dropped) and goes into the message as `block`.
    """

    kind: Kind
    source: str
    name: str
    media_type: str
    size: int  # bytes; 0 for a URL
    part: ImagePart | DocumentPart | None = None
    text: str | None = None

    @property
    def block(self) -> str:
        """A text attachment as it goes into the message: its path, then the text fenced.

        The fence rule is piped stdin's (`chatcli.cli.stdin.compose`): one backtick longer than the
        longest run inside, so a file full of ``` fences cannot close it early.
        """
        if self.text is None:
            raise ValueError(f"{self.kind} attachment has no text block")
        if not self.text.strip():
            return f"{self.source} (empty)"
        return compose(self.source, self.text)

    @cached_property
    def sha256(self) -> str | None:
        """Hex SHA-256 of the bytes of an image or document (None for a URL or a text file)."""
        return content_hash(self.part) if self.part is not None else None


def content_hash(part: ImagePart | DocumentPart) -> str | None:
    """Hex SHA-256 of a part's bytes, the store's key for keeping an attachment once; None for a URL."""
    if part.data is None:
        return None
    import hashlib

    return hashlib.sha256(part.data).hexdigest()


# -- sniffing --------------------------------------------------------------------------------------

def sniff(head: bytes) -> str | None:
    """The media type of an accepted binary kind from a file's first bytes, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _limit_for(media_type: str | None) -> tuple[int, str]:
    if media_type == "application/pdf":
        return MAX_PDF_BYTES, "the PDF"
    if media_type is not None:
        return MAX_IMAGE_BYTES, "the image"
    return MAX_TEXT_BYTES, "the text file"


def _mb(limit: int) -> str:
    # Text's limit is piped stdin's, in MiB; say it the way chatcli/cli/stdin.py does ("10 MB").
    return f"{limit // (1024 * 1024)} MB" if limit % (1024 * 1024) == 0 else f"{limit // 1_000_000} MB"


def _check_size(source: str, size: int, media_type: str | None) -> None:
    limit, what = _limit_for(media_type)
    if size > limit:
        extra = " (and it is not an image or a PDF)" if media_type is None else ""
        raise InputError(f"cannot attach {source}: {what} is {human_size(size)}, over the "
                         f"{_mb(limit)} limit{extra}")


def _from_bytes(data: bytes, *, source: str, name: str) -> Attachment:
    media_type = sniff(data[:_HEAD])
    _check_size(source, len(data), media_type)
    if media_type == "application/pdf":
        return Attachment("document", source, name, media_type, len(data),
                          part=DocumentPart(media_type=media_type, data=data, name=name))
    if media_type is not None:
        return Attachment("image", source, name, media_type, len(data),
                          part=ImagePart(media_type=media_type, data=data, name=name))
    nul = data.find(b"\0")
    if nul >= 0:
        why = f"a NUL byte at offset {nul}"
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            why = f"invalid UTF-8 byte 0x{data[exc.start]:02x} at offset {exc.start}"
        else:
            return Attachment("text", source, name, "text/plain", len(data), text=text.removeprefix("\ufeff"))
    raise InputError(f"cannot attach {source}: not a kind chatcli accepts ({why}); accepted: {ACCEPTED}")


# -- loading ---------------------------------------------------------------------------------------

def _read_stream(stream: BinaryIO, limit: int) -> bytes:
    """Up to `limit` bytes to EOF. A buffered stream returns them in one read; a raw one may need more."""
    data = stream.read(limit)
    if not data or len(data) >= limit:
        return bytes(data or b"")
    more: list[bytes] = []
    size = len(data)
    while size < limit:
        chunk = stream.read(limit - size)
        if not chunk:
            break
        more.append(chunk)
        size += len(chunk)
    return data if not more else b"".join([data, *more])


def _load_path(spec: str) -> Attachment:
    path = os.path.expanduser(spec)  # `/attach ~/x.png` reaches us unexpanded: no shell in between
    name = os.path.basename(path.rstrip(os.sep)) or path
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"cannot attach {spec}: no such file") from None
    except IsADirectoryError:  # Windows; on POSIX a directory opens and fstat tells
        raise InputError(f"cannot attach {spec}: it is a directory (attach its files one by one)") from None
    except PermissionError:
        raise InputError(f"cannot attach {spec}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot attach {spec}: cannot read it ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise InputError(f"cannot attach {spec}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise InputError(f"cannot attach {spec}: it is a directory (attach its files one by one)")
    with open(fd, "rb", buffering=0, closefd=True) as raw:
        try:
            if not stat.S_ISREG(st.st_mode):  # a FIFO, /dev/stdin, a process substitution
                with open(fd, "rb", closefd=False) as buffered:
                    return _from_bytes(_read_stream(buffered, _MAX_STREAM), source=spec, name=name)
            head = raw.read(_HEAD) or b""
            # Judge the size before reading the body: a 2 GB file is refused without touching it.
            _check_size(spec, st.st_size, sniff(head))
            raw.seek(0)
            data = raw.readall()  # one buffer sized from fstat; the only copy of the bytes
        except OSError as exc:
            raise InputError(f"cannot attach {spec}: cannot read it ({exc.strerror or exc})") from None
    return _from_bytes(data, source=spec, name=name)


def _load_url(spec: str) -> Attachment:
    from urllib.parse import urlsplit

    try:
        url = urlsplit(spec)
        host = url.hostname
    except ValueError:  # an invalid port or IPv6 literal
        host = None
    if not host:
        raise InputError(f"cannot attach {spec}: not a valid http(s) URL")
    if url.username is not None or url.password is not None:
        shown = url._replace(netloc=host + (f":{url.port}" if url.port else "")).geturl()
        raise InputError(f"cannot attach {shown}: the URL carries a user name or password, which "
                         "would be sent to the provider and stored in history")
    suffix = os.path.splitext(url.path)[1].lower()
    if suffix == ".pdf":
        raise InputError(f"cannot attach {spec}: only image URLs are passed on (chatcli fetches "
                         "nothing); download the PDF and attach the file")
    media_type = _IMAGE_EXTENSIONS.get(suffix, "")
    return Attachment("image", spec, spec, media_type, 0, part=ImagePart(media_type=media_type, url=spec, name=spec))


def is_url(spec: str) -> bool:
    return spec[:8].lower().startswith(("http://", "https://"))


def load(spec: str, *, stdin: BinaryIO | None = None) -> Attachment:
    """An attachment from a path, an http(s) URL, or `-` (the bytes of `stdin`). InputError if unusable."""
    if spec == "-":
        if stdin is None:
            raise InputError("cannot attach -: there is no piped stdin to read (stdin is a terminal)")
        try:
            data = _read_stream(stdin, _MAX_STREAM)
        except OSError as exc:
            raise InputError(f"cannot attach -: cannot read stdin ({exc.strerror or exc})") from None
        if not data:
            raise InputError("cannot attach -: stdin is empty")
        return _from_bytes(data, source="-", name="stdin")
    if is_url(spec):
        return _load_url(spec)
    if not spec:
        raise InputError("cannot attach an empty path")
    return _load_path(spec)


def piped(data: bytes) -> Attachment | None:
    """Piped stdin that is an image or a PDF, as an attachment; None for any other bytes.

    The caller keeps its own rules (text, "binary stdin" refused) for None. Size limits apply:
    a 25 MB piped PNG is an InputError, not None.
    """
    media_type = sniff(data[:_HEAD])
    if media_type is None:
        return None
    return _from_bytes(data, source="stdin", name="stdin")


# -- checks before a request -------------------------------------------------------------------------

def check_count(attachments: Sequence[Attachment]) -> None:
    """InputError when one message would carry more than `MAX_ATTACHMENTS`."""
    if len(attachments) > MAX_ATTACHMENTS:
        first_extra = attachments[MAX_ATTACHMENTS].source
        raise InputError(f"cannot attach {first_extra}: {len(attachments)} attachments in one message, "
                         f"the limit is {MAX_ATTACHMENTS}")


def refuse_unsupported(attachments: Iterable[Attachment], *, model_label: str, vision: bool | None) -> None:
    """InputError for an image or PDF sent to a model known not to take them (`vision=False`).

    `vision=None` (not known) lets everything through: the provider's answer decides. Text
    attachments are text and go to every model.
    """
    if vision is not False:
        return
    for att in attachments:
        if att.kind != "text":
            what = "images" if att.kind == "image" else "PDFs"
            raise InputError(f"cannot attach {att.source}: {model_label} does not accept {what} "
                             "(text files it does; choose a model that takes images and PDFs)")


# -- building the message --------------------------------------------------------------------------------

def message_content(prompt: str | None, attachments: Iterable[Attachment]) -> str:
    """The message text: the prompt, then each text attachment's block, separated by blank lines."""
    pieces = [prompt] if prompt else []
    pieces += [att.block for att in attachments if att.kind == "text"]
    return "\n\n".join(pieces)


def message_parts(attachments: Iterable[Attachment]) -> tuple[ImagePart | DocumentPart, ...]:
    """The image and document parts, in the order given (text attachments are in the content)."""
    return tuple(att.part for att in attachments if att.part is not None)


def compose_message(argument: str | None, piped: str | None,
                    attachments: Sequence[Attachment]) -> tuple[str, tuple[ImagePart | DocumentPart, ...]]:
    """`chatcli ask`'s message, text and parts: the argument with piped text (chatcli/cli/stdin.py's
    rule), then the attachments. Attachments alone are a message (the image is the question)."""
    alone = bool(attachments) and not argument and (piped is None or not piped.strip())
    text = "" if alone else compose(argument, piped)
    if not attachments:
        return text, ()
    return message_content(text, attachments), message_parts(attachments)


# -- wire encoding (for the providers) -------------------------------------------------------------

#: Bytes encoded per step of `base64_text`: a multiple of 3, so the pieces join without padding.
_B64_STEP = 3 * 256 * 1024


def base64_text(data: bytes, prefix: str = "") -> str:
    """`prefix + base64(data)` as one str, without a full-size intermediate.

    `f"{prefix}{base64.b64encode(data).decode('ascii')}"` holds the encoded bytes and their str
    (or that str and the concatenation) at once: 2.67x the file on top of the file itself,
    3.67x in all (benchmarks/attach_bench.py). Here the str grows in place, piece by piece:
    CPython resizes a str that only one local refers to instead of copying it (`out += piece`),
    so the peak is the result plus one 1 MB piece, about 1.36x on top of the file. On an
    interpreter without that optimization the result is the same, only built with more copies.
    """
    import binascii

    out = prefix
    view = memoryview(data)
    for start in range(0, len(data), _B64_STEP):
        out += binascii.b2a_base64(view[start:start + _B64_STEP], newline=False).decode("ascii")
    return out


def data_url(part: ImagePart | DocumentPart) -> str:
    """`data:<media type>;base64,<data>` for a part with bytes (OpenAI `image_url`, `file_data`)."""
    if part.data is None:
        raise ValueError("a URL part has no bytes to encode")
    return base64_text(part.data, f"data:{part.media_type};base64,")


# -- context estimate ----------------------------------------------------------------------------------

#: An image whose size is not known (a URL, an unparsed header): the most either formula gives.
IMAGE_TOKENS_UNKNOWN = 1_600
#: Per PDF page: Anthropic documents 1,500-3,000 text tokens a page and also sends each page as an
#: image; OpenAI likewise gives the model each page's text and image. 3,000 is the top of the text
#: range, so a typical page with its picture is covered without assuming every page is dense.
PDF_PAGE_TOKENS = 3_000
#: When no page object can be seen (pages inside compressed object streams): one page per 100 kB.
_PDF_BYTES_PER_PAGE_GUESS = 100_000


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header, without decoding it; None if not found."""
    import struct

    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if data.startswith((b"GIF87a", b"GIF89a")):
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            if chunk == b"VP8L" and data[20] == 0x2F:
                bits = int.from_bytes(data[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
                w, h = struct.unpack("<HH", data[26:30])
                return int(w) & 0x3FFF, int(h) & 0x3FFF
            return None
        if data.startswith(b"\xff\xd8"):
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    return None
                marker = data[i + 1]
                if marker == 0xFF:  # fill byte
                    i += 1
                    continue
                if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
                    i += 2
                    continue
                (length,) = struct.unpack(">H", data[i + 2:i + 4])
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
                    h, w = struct.unpack(">HH", data[i + 5:i + 9])
                    return int(w), int(h)
                i += 2 + length
    except (struct.error, IndexError):
        return None
    return None


def _image_tokens(width: int, height: int) -> int:
    """The larger of the two vendors' documented image costs, so the budget holds for either.

    Anthropic: long edge scaled to at most 1568 px, then width*height/750, about 1,600 at most.
    OpenAI (high detail): fit in 2048x2048, shortest side to 768, then 85 + 170 per 512 px tile.
    """
    if width <= 0 or height <= 0:
        return IMAGE_TOKENS_UNKNOWN
    scale = min(1.0, 1568 / max(width, height))
    anthropic = min(IMAGE_TOKENS_UNKNOWN, -(-int(width * scale) * int(height * scale) // 750))
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        f = 2048 / max(w, h)
        w, h = w * f, h * f
    if min(w, h) > 768:
        f = 768 / min(w, h)
        w, h = w * f, h * f
    tiles = -(-int(w) // 512) * -(-int(h) // 512)
    openai = 85 + 170 * tiles
    return max(1, anthropic, openai)


def pdf_pages(data: bytes) -> int:
    """Pages of a PDF, counted cheaply: `/Type /Page` objects (not `/Pages`), else the largest
    `/Count`, else a guess from the size (pages packed into compressed object streams hide both)."""
    import re

    pages = len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", data))
    if pages:
        return pages
    counts = [int(m) for m in re.findall(rb"/Count\s+(\d{1,6})", data)]
    if counts:
        return max(1, max(counts))
    return max(1, len(data) // _PDF_BYTES_PER_PAGE_GUESS)


def estimate_tokens(part: ImagePart | DocumentPart) -> int:
    """Context tokens an image or a PDF will take, for the context budget.

    Image: from its pixel size (read from the header) by `_image_tokens`, the larger of the
    Anthropic and OpenAI formulas; a URL or an unreadable header counts `IMAGE_TOKENS_UNKNOWN`
    (1,600, the most either formula gives). PDF: `pdf_pages` x `PDF_PAGE_TOKENS` (3,000).
    """
    if isinstance(part, DocumentPart):
        return pdf_pages(part.data) * PDF_PAGE_TOKENS
    if part.data is None:
        return IMAGE_TOKENS_UNKNOWN
    size = image_size(part.data[:65536] if part.media_type == "image/jpeg" else part.data[:64])
    if size is None and part.media_type == "image/jpeg":
        size = image_size(part.data)  # a frame header after a large EXIF/ICC block
    return _image_tokens(*size) if size else IMAGE_TOKENS_UNKNOWN


# -- display -------------------------------------------------------------------------------------------

def human_size(n: int) -> str:
    """Bytes in SI units, one decimal: 532 B, 12.3 kB, 4.5 MB."""
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    if n < 1_000_000_000:
        return f"{n / 1_000_000:.1f} MB"
    return f"{n / 1_000_000_000:.1f} GB"


def describe(attachment: Attachment | ImagePart | DocumentPart) -> str:
    """One line for lists, the toolbar and `history show`: `image/png 12.3 kB shot.png`.

    The name is user data and may carry terminal escapes or newlines: sanitized to one line.
    """
    from chatcli.render.sanitize import sanitize_line

    if isinstance(attachment, Attachment):
        if attachment.part is not None and attachment.part.data is None:
            return sanitize_line(f"image URL {_shorten(attachment.source)}")
        kind = "text" if attachment.kind == "text" else attachment.media_type
        return sanitize_line(f"{kind} {human_size(attachment.size)} {attachment.name}")
    if attachment.data is None:
        return sanitize_line(f"image URL {_shorten(attachment.url or attachment.name or '')}")
    name = f" {attachment.name}" if attachment.name else ""
    return sanitize_line(f"{attachment.media_type} {human_size(len(attachment.data))}{name}")


def _shorten(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
