"""Message parts as JSON for the history database, with attachments' bytes kept apart by hash.

A turn's parts are stored as one JSON array in its row; an image's or a PDF's bytes are replaced
by their sha256, and the bytes go to the `blobs` table once (two messages with the same screenshot
store it once). Decoding takes a lookup from hash to bytes. Unknown part kinds (a newer chatcli)
are skipped on reading rather than failing the whole conversation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from chatcli.events import DocumentPart, ImagePart, Part, ToolCallPart, ToolResultPart


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(parts: Sequence[Part]) -> tuple[str | None, dict[str, tuple[str, bytes]]]:
    """(JSON text or None when there are no parts, {hash: (media_type, bytes)} to store)."""
    if not parts:
        return None, {}
    rows: list[dict[str, Any]] = []
    blobs: dict[str, tuple[str, bytes]] = {}
    for part in parts:
        if isinstance(part, ToolCallPart):
            rows.append({"type": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments})
        elif isinstance(part, ToolResultPart):
            row: dict[str, Any] = {"type": "tool_result", "call_id": part.call_id, "content": part.content,
                                   "is_error": part.is_error, "status": part.status}
            if part.full is not None:
                row["full"] = part.full
            rows.append(row)
        elif isinstance(part, ImagePart):
            row = {"type": "image", "media_type": part.media_type, "name": part.name}
            if part.url is not None:
                row["url"] = part.url
            if part.data is not None:
                row["blob"] = key = digest(part.data)
                row["size"] = len(part.data)
                blobs[key] = (part.media_type, part.data)
            rows.append(row)
        elif isinstance(part, DocumentPart):
            key = digest(part.data)
            blobs[key] = (part.media_type, part.data)
            rows.append({"type": "document", "media_type": part.media_type, "name": part.name, "blob": key,
                         "size": len(part.data)})
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")), blobs


def decode(text: str | None, blob: Callable[[str], bytes | None]) -> tuple[Part, ...]:
    """The parts of a stored turn; an attachment whose bytes are missing is left out."""
    if not text:
        return ()
    try:
        rows = json.loads(text)
    except ValueError:
        return ()
    parts: list[Part] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        kind = row.get("type")
        if kind == "tool_call":
            parts.append(ToolCallPart(str(row.get("id", "")), str(row.get("name", "")), str(row.get("arguments", ""))))
        elif kind == "tool_result":
            full = row.get("full")
            parts.append(ToolResultPart(str(row.get("call_id", "")), str(row.get("content", "")),
                                        is_error=bool(row.get("is_error")), status=str(row.get("status", "ok")),
                                        full=full if isinstance(full, str) else None))
        elif kind == "image":
            data = blob(row["blob"]) if isinstance(row.get("blob"), str) else None
            url = row.get("url")
            if data is None and not isinstance(url, str):
                continue
            parts.append(ImagePart(str(row.get("media_type", "")), data=data,
                                   url=url if isinstance(url, str) else None, name=row.get("name")))
        elif kind == "document":
            data = blob(row["blob"]) if isinstance(row.get("blob"), str) else None
            if data is not None:
                parts.append(DocumentPart(str(row.get("media_type", "application/pdf")), data, name=row.get("name")))
    return tuple(parts)


def summary(text: str | None) -> list[dict[str, Any]]:
    """The stored rows as they are (no bytes): for `history show` and exports."""
    if not text:
        return []
    try:
        rows = json.loads(text)
    except ValueError:
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def size_text(size: int) -> str:
    return f"{size} B" if size < 1000 else f"{size / 1000:.1f} kB" if size < 1_000_000 else f"{size / 1e6:.1f} MB"


def describe(part: Part) -> str:
    """One line naming a part (raw: callers sanitize), for `history show` and exports."""
    if isinstance(part, ToolCallPart):
        return f"tool call {part.name} {' '.join((part.arguments or '{}').split())}"
    if isinstance(part, ToolResultPart):
        text = part.full if part.full is not None else part.content
        lines = text.splitlines()
        first = lines[0] if lines else ""
        return (f"tool result ({part.status}{', error' if part.is_error and part.status == 'ok' else ''}) "
                f"{len(lines)} line{'s' if len(lines) != 1 else ''}, {len(text):,} chars: {first[:120]}")
    if isinstance(part, ImagePart):
        if part.data is None:
            return f"image {part.url or ''}".rstrip()
        return f"image {part.media_type} {size_text(len(part.data))}{' ' + part.name if part.name else ''}"
    return f"document {part.media_type} {size_text(len(part.data))}{' ' + part.name if part.name else ''}"


def to_json_rows(parts: Sequence[Part]) -> list[dict[str, Any]]:
    """Every field of every part, attachments' bytes as base64 (the JSON export)."""
    import base64

    rows: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ToolCallPart):
            rows.append({"type": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments})
        elif isinstance(part, ToolResultPart):
            rows.append({"type": "tool_result", "call_id": part.call_id, "content": part.content,
                         "is_error": part.is_error, "status": part.status, "full": part.full})
        elif isinstance(part, ImagePart):
            rows.append({"type": "image", "media_type": part.media_type, "name": part.name, "url": part.url,
                         "data": base64.b64encode(part.data).decode("ascii") if part.data is not None else None})
        else:
            rows.append({"type": "document", "media_type": part.media_type, "name": part.name,
                         "data": base64.b64encode(part.data).decode("ascii")})
    return rows
