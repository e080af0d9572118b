"""What the end of a reply says: finish reason, usage, timings, and the warning for partial replies.

Shared by the plain writer and the panel so both word every case the same way (SPEC "Finish
reasons and partial replies"). Pure functions, stdlib only.
"""

from __future__ import annotations

from chatcli.events import Finish, Usage
from chatcli.render.sanitize import sanitize_line


def describe_finish(finish: Finish) -> tuple[str, str | None]:
    """Return (summary, warning). `summary` is the normalized reason with the provider's raw value
    beside it when it differs; `warning` is None for a complete reply, else one line saying what
    happened and what the user can do."""
    raw = sanitize_line(finish.raw) if finish.raw else None
    summary = finish.reason if not raw or raw == finish.reason else f"{finish.reason} ({raw})"
    detail = sanitize_line(finish.detail).strip() if finish.detail else ""
    reason = finish.reason
    if reason == "stop":
        return summary, None
    if reason == "length":
        warning = "reply cut at the token limit — /continue resumes, or raise --max-tokens"
    elif reason == "content_filter":
        warning = "reply filtered or refused by the provider" + (f": {detail}" if detail else "")
    elif reason == "tool_calls":
        warning = "the model asked for a tool chatcli does not offer — the reply is incomplete"
    elif reason == "pause_turn":
        warning = "the provider paused this long turn — /continue resumes"
    elif reason == "interrupted":
        warning = "interrupted — partial reply kept"
    elif reason == "error":
        warning = f"the stream failed: {detail or 'unknown error'} — partial reply kept"
    else:  # "incomplete", or anything new: never claim completeness
        warning = "the stream ended without a finish signal — the reply may be truncated"
    return summary, warning


def format_stats(usage: Usage | None, ttft: float | None, gen_seconds: float | None) -> str:
    """`12 in / 340 out · first token 0.81 s · 45.2 tok/s`, leaving out what is unknown.

    `ttft`: seconds from the request to the first content; `gen_seconds`: from the first content to
    the end (tokens/s is output tokens over that span, the generation speed the user perceives).
    """
    parts: list[str] = []
    if usage is not None and (usage.input_tokens is not None or usage.output_tokens is not None):
        tin = "?" if usage.input_tokens is None else f"{usage.input_tokens:,}"
        tout = "?" if usage.output_tokens is None else f"{usage.output_tokens:,}"
        parts.append(f"{tin} in / {tout} out")
    if ttft is not None:
        parts.append(f"first token {ttft:.2f} s")
    if usage is not None and usage.output_tokens and gen_seconds and gen_seconds > 0.05:
        parts.append(f"{usage.output_tokens / gen_seconds:.1f} tok/s")
    return " · ".join(parts)


def retry_line(attempt: int, delay: float, cause: str) -> str:
    """The countdown shown while the session waits before another attempt."""
    return f"{sanitize_line(cause)} — retrying in {max(0, round(delay))} s (attempt {attempt})"
