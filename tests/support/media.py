"""Tiny real media files, generated here (never downloaded): PNG, JPEG, GIF, WebP and PDF.

Each builder returns the bytes of a file that a real decoder accepts:

* `png`: signature, IHDR, one zlib IDAT, IEND, every chunk with its CRC-32 (RGB, filter 0 rows);
  `png_of_size` makes one at least N bytes long from incompressible pixels stored uncompressed, for
  the size limits and the benchmark;
* `jpeg`: a baseline JFIF of a uniform mid-grey: with the level shift every 8x8 block's DC
  coefficient is 0 and every AC one too, so each block is the two 1-bit Huffman codes
  "DC category 0" and "end of block", from two one-code tables;
* `gif`: GIF89a with a two-colour global table and one 1x1 LZW image (clear, index 0, end);
* `webp`: a RIFF/WEBP container around the VP8L bitstream of a 1x1 lossless image (the one
  browsers have long been feature-tested with), with the RIFF sizes computed here;
* `pdf`: a PDF 1.4 of N pages of Helvetica text, with a cross-reference table whose offsets are
  computed from the bytes written, and the trailer/startxref pointing at it.
"""

from __future__ import annotations

import random
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A solid-colour RGB PNG of `width` x `height` pixels."""
    row = b"\x00" + bytes(rgb) * width  # filter type 0 (None), then the samples
    raw = row * height
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no interlace
    idat = zlib.compress(raw)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def png_of_size(nbytes: int, *, width: int = 1024, seed: int = 17) -> bytes:
    """A valid RGB PNG at least `nbytes` long: random pixels, deflate level 0 (stored blocks)."""
    stride = 1 + 3 * width
    height = max(1, -(-nbytes // stride))
    rng = random.Random(seed)
    line = rng.randbytes(3 * width)
    # Rows differ by a rotating offset, so the image is not one row repeated (still incompressible).
    raw = b"".join(b"\x00" + line[i % 97:] + line[: i % 97] for i in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(raw, 0)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg(width: int = 8, height: int = 8) -> bytes:
    """A baseline greyscale JFIF of a uniform mid-grey (128), any size."""
    app0 = b"JFIF\x00" + struct.pack(">BBBHHBB", 1, 1, 0, 1, 1, 0, 0)
    dqt = b"\x00" + b"\x01" * 64  # 8-bit table 0, all ones
    sof0 = struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0])  # component 1, 1x1, table 0
    one_code = bytes([1] + [0] * 15)  # BITS: one code of length 1 ("0")
    dht = b"\x00" + one_code + b"\x00" + b"\x10" + one_code + b"\x00"  # DC 0: category 0; AC 0: EOB
    sos = bytes([1, 1, 0x00, 0, 63, 0])  # one component, tables DC0/AC0, full spectral range
    blocks = -(-width // 8) * -(-height // 8)
    bits = "00" * blocks  # per block: DC diff category 0, then EOB
    bits += "1" * (-len(bits) % 8)  # pad the last byte with 1-bits (T.81 F.1.2.3)
    scan = bytearray()
    for i in range(0, len(bits), 8):
        byte = int(bits[i:i + 8], 2)
        scan.append(byte)
        if byte == 0xFF:
            scan.append(0x00)  # byte stuffing
    return (b"\xff\xd8" + _segment(0xE0, app0) + _segment(0xDB, dqt) + _segment(0xC0, sof0)
            + _segment(0xC4, dht) + _segment(0xDA, sos) + bytes(scan) + b"\xff\xd9")


def gif(width: int = 1, height: int = 1) -> bytes:
    """GIF89a: a `width` x `height` logical screen holding one 1x1 image of colour 0."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # global table of 2 colours
    palette = bytes([255, 255, 255, 0, 0, 0])
    image = b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    # LZW, minimum code size 2: codes clear(4), 0, end(5) in 3 bits each, LSB first -> 0x44 0x01.
    data = b"\x02" + b"\x02\x44\x01" + b"\x00"
    return b"GIF89a" + screen + palette + image + data + b";"


# A 1x1 lossless VP8L bitstream (signature 0x2f, 14-bit width-1 and height-1, alpha bit, version,
# then a colour-indexing transform and the coded pixel).
_VP8L_1X1 = bytes.fromhex("2f000000100710111188" "88fe07")


def webp() -> bytes:
    """A 1x1 lossless WebP: RIFF size, "WEBP", one VP8L chunk (padded to an even length)."""
    chunk = b"VP8L" + struct.pack("<I", len(_VP8L_1X1)) + _VP8L_1X1 + b"\x00" * (len(_VP8L_1X1) % 2)
    body = b"WEBP" + chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pdf(pages: int = 1, text: str = "Hello from chatcli") -> bytes:
    """A PDF 1.4 of `pages` pages, each showing `text`, with a correct cross-reference table."""
    n_objects = 3 + 2 * pages  # catalog, pages, font, then a page and its content per page
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pages))
    bodies: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    for i in range(pages):
        content = f"BT /F1 18 Tf 72 720 Td ({escaped} {i + 1}) Tj ET".encode("latin-1")
        bodies.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                      f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode())
        bodies.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # the binary comment marks the file as binary
    offsets: list[int] = []
    for number, body in enumerate(bodies, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (n_objects + 1)
    out += b"0000000000 65535 f \n"  # each entry is exactly 20 bytes, EOL included
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (n_objects + 1, xref)
    return bytes(out)
