"""What a tool call produced: `ToolOutcome`, a CallToolResult flattened to text, and the cap.

The full text is what history keeps; `for_model()` is what goes into the next request, capped at
`tool_result_limit` characters with the cut announced in the text itself, so the model knows it
saw part of it (and the user, who sees the same line in the summary).

`flatten()` takes the SDK's result object duck-typed (`content`, `structured_content`,
`is_error`), so this module imports nothing of `mcp`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_RESULT_LIMIT = 64_000

Status = Literal["ok", "error", "timeout", "interrupted"]


@dataclass(frozen=True)
class ToolOutcome:
    server: str
    tool: str
    status: Status
    text: str  # the full text (history); may be huge
    is_error: bool  # what the APIs' `is_error` / an error tool message should say
    seconds: float

    def for_model(self, limit: int = DEFAULT_RESULT_LIMIT) -> str:
        return cap(self.text, limit)


def cut_notice(count: int) -> str:
    return f"\n[... {count:,} characters cut ...]\n"


def cap(text: str, limit: int = DEFAULT_RESULT_LIMIT) -> str:
    """`text` if it fits in `limit` characters; else its head and tail around a notice saying how
    much was cut, all within `limit`. The tail is kept because errors and totals tend to be last."""
    if len(text) <= limit:
        return text
    room = max(0, limit - len(cut_notice(len(text))))
    head = room * 4 // 5
    tail = room - head
    cut = len(text) - head - tail
    return text[:head] + cut_notice(cut) + (text[len(text) - tail:] if tail else "")


def _block(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(getattr(block, "text", ""))
    if kind in ("image", "audio"):
        data = getattr(block, "data", "") or ""
        size = len(data) * 3 // 4  # base64
        return f"[{kind}: {getattr(block, 'mime_type', None) or 'unknown type'}, {size:,} bytes, not shown]"
    if kind == "resource_link":
        return f"[resource link: {getattr(block, 'uri', '')} {getattr(block, 'name', '') or ''}]".replace(" ]", "]")
    if kind == "resource":
        resource = getattr(block, "resource", None)
        text = getattr(resource, "text", None)
        if isinstance(text, str):
            return text
        return f"[resource: {getattr(resource, 'uri', '')}, {getattr(resource, 'mime_type', None) or 'binary'}]"
    return f"[{kind or 'unknown'} content, not shown]"


def flatten(result: Any) -> tuple[str, bool]:
    """(text, is_error) of an MCP CallToolResult.

    Text blocks are joined by blank lines; images and audio become a placeholder. Structured content
    is added as JSON only when no text block carries it already (servers are asked by the spec to
    send the same JSON as text too; mcp-server-time does, and the model needs it once).
    """
    parts = [_block(block) for block in (getattr(result, "content", None) or [])]
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        dumped = json.dumps(structured, ensure_ascii=False, indent=2)
        if not any(_same_json(part, structured) for part in parts):
            parts.append(dumped)
    return "\n\n".join(parts), bool(getattr(result, "is_error", False))


def _same_json(text: str, value: Any) -> bool:
    if value == {"result": text}:
        return True
    try:
        parsed = json.loads(text)
    except ValueError:
        return False
    # A tool returning a non-object is wrapped as {"result": value} in structured content (MCP SDK
    # servers do this); the text block then carries the bare value.
    return bool(parsed == value or value == {"result": parsed})
