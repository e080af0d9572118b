"""The GGUF file header, read without llama.cpp: `check_gguf` tells a file that is not GGUF from one
llama.cpp should judge, and returns the trained context length the header records
(`<general.architecture>.context_length`), which chatcli/providers/local.py sizes its context from.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from chatcli.errors import ProviderError

_GGUF_MAGIC = b"GGUF"
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
                 11: "<q", 12: "<d"}
_GGUF_MAX_STRING = 1 << 24  # longer than any real key or value: the file is corrupt


def check_gguf(path: Path, provider: str) -> int | None:
    """Check that `path` is a GGUF file; return its trained context length if the header says."""
    try:
        with path.open("rb") as f:
            if f.read(4) != _GGUF_MAGIC:
                raise ProviderError(
                    "bad_request",
                    f"{path} is not a GGUF model file — set model_path to a .gguf model "
                    "(llama.cpp's format), or remove it to use the bundled SmolLM2",
                    provider=provider,
                )
            return context_length(f)
    except OSError as exc:
        why = f"{type(exc).__name__}: {str(exc).strip()}" if str(exc).strip() else type(exc).__name__
        raise ProviderError("not_found", f"cannot read the model file {path}: {why}",
                            provider=provider) from exc


def context_length(f: BinaryIO) -> int | None:
    """Walk the GGUF key/value header until `<general.architecture>.context_length`; None if absent.

    GGUF v2/v3: u32 version, u64 tensor count, u64 key count, then (string key, u32 type, value) pairs.
    The architecture key comes first in files written by llama.cpp's tools, so this stops early, long
    before the big tokenizer arrays.
    """

    def read(fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = f.read(size)
        if len(data) != size:
            raise ValueError("truncated header")
        return struct.unpack(fmt, data)[0]

    def read_string() -> str:
        size = read("<Q")
        if size > _GGUF_MAX_STRING:
            raise ValueError("string too long")
        return bytes(f.read(size)).decode("utf-8", "replace")

    def skip(kind: int) -> None:
        if kind == _GGUF_STRING:
            f.seek(read("<Q"), 1)
        elif kind == _GGUF_ARRAY:
            item_kind, count = read("<I"), read("<Q")
            if item_kind in _GGUF_SCALARS:
                f.seek(struct.calcsize(_GGUF_SCALARS[item_kind]) * count, 1)
            else:
                for _ in range(count):
                    skip(item_kind)
        elif kind in _GGUF_SCALARS:
            f.seek(struct.calcsize(_GGUF_SCALARS[kind]), 1)
        else:
            raise ValueError(f"unknown value type {kind}")

    try:
        if read("<I") < 2:  # GGUF v1 used 32-bit counts; nothing current writes it
            return None
        read("<Q")  # tensor count
        arch: str | None = None
        for _ in range(read("<Q")):
            key = read_string()
            kind = read("<I")
            if key == "general.architecture" and kind == _GGUF_STRING:
                arch = read_string()
            elif arch is not None and key == f"{arch}.context_length" and kind in _GGUF_SCALARS:
                value = read(_GGUF_SCALARS[kind])
                return int(value) if value > 0 else None
            else:
                skip(kind)
    except (ValueError, struct.error, OverflowError):
        pass  # an odd header: llama.cpp itself will judge the file; only the context length is unknown
    return None
