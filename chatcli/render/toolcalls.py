"""How a tool call looks on the terminal: the compact call line, the result summary, and the
approval question. Pure functions over untrusted text (tool names come from MCP servers, arguments
from the model, results from the tool): everything passes the sanitizer here, once, for every view.
"""

from __future__ import annotations

import json

from chatcli.events import ToolResultPart
from chatcli.render.sanitize import sanitize, sanitize_line

#: Characters of arguments shown on a call line (the question shows them all).
CALL_LINE_ARGS = 160
#: Lines of a result shown in its summary.
RESULT_LINES = 3


def compact_arguments(arguments: str) -> str:
    """One line: the JSON re-dumped without spaces when it parses, else the text as sent."""
    try:
        text = json.dumps(json.loads(arguments or "{}"), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        text = arguments
    text = sanitize_line(text)
    return text if len(text) <= CALL_LINE_ARGS else text[: CALL_LINE_ARGS - 1] + "…"


def pretty_arguments(arguments: str) -> str:
    """Indented JSON for the question (the text as sent, marked, when it is not JSON)."""
    try:
        return sanitize(json.dumps(json.loads(arguments or "{}"), ensure_ascii=False, indent=2))
    except ValueError:
        return sanitize(arguments) + "\n(not valid JSON: the tool will not be called with it)"


def call_line(server: str, tool: str, arguments: str) -> str:
    """`⚙ time.get_current_time {"timezone":"Asia/Tokyo"}`"""
    return f"⚙ {sanitize_line(server)}.{sanitize_line(tool)} {compact_arguments(arguments)}"


def result_summary(result: ToolResultPart, seconds: float) -> str:
    """`↳ ok · 0.12 s · 2 lines, 48 chars` then the first lines, indented; errors marked."""
    text = result.full if result.full is not None else result.content
    lines = text.splitlines()
    size = f"{len(lines)} line{'s' if len(lines) != 1 else ''}, {len(text):,} chars"
    status = result.status if not (result.is_error and result.status == "ok") else "error"
    head = f"↳ {status} · {seconds:.2f} s · {size}"
    if result.full is not None and result.full != result.content:
        head += f" (the model got {len(result.content):,})"
    shown = [sanitize_line(line)[:200] for line in lines[:RESULT_LINES]]
    more = ["…"] if len(lines) > RESULT_LINES else []
    return "\n".join([head, *("  " + line for line in [*shown, *more])])


def question(server: str, tool: str, arguments: str) -> str:
    """The approval question chatcli draws itself, outside the model's panel."""
    body = "\n".join("│ " + line for line in pretty_arguments(arguments).splitlines())
    return (
        f"╭─ run tool {sanitize_line(server)} · {sanitize_line(tool)}?\n{body}\n"
        "╰─ [y] run once  [n] decline  [a] always in this chat  [A] always (saved)  "
    )
