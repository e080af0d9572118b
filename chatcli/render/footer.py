"""What the end of a reply says: finish reason, usage, timings, and the warning for partial replies.

Shared by the plain writer and the panel so both word every case the same way (docs/architecture.md,
"Finish reasons"). Pure functions, stdlib only.
"""

from __future__ import annotations

from typing import Literal

from chatcli.events import Finish, Usage
from chatcli.render.sanitize import sanitize_line

#: Where a reply is shown: the chat's commands (`/continue`) only exist in "chat"; from the
#: shell ("ask") the way back into a conversation is `chatcli -c`, then `/continue`.
Where = Literal["chat", "ask"]


def _resume_hint(where: Where) -> str:
    return "/continue resumes" if where == "chat" else "`chatcli -c`, then /continue, resumes it"


def describe_finish(finish: Finish, *, where: Where = "chat", has_text: bool = True) -> tuple[str, str | None]:
    """Return (summary, warning). `summary` is the normalized reason with the provider's raw value
    beside it when it differs; `warning` is None for a complete reply, else one line saying what
    happened and what the user can do there (`where`). `has_text=False`: no reply text arrived, so
    there is no partial reply to keep."""
    raw = sanitize_line(finish.raw) if finish.raw else None
    summary = finish.reason if not raw or raw == finish.reason else f"{finish.reason} ({raw})"
    detail = sanitize_line(finish.detail).strip() if finish.detail else ""
    reason = finish.reason
    if reason == "stop":
        return summary, None
    if reason == "length":
        warning = f"reply cut at the token limit — {_resume_hint(where)}, or raise --max-tokens"
    elif reason == "content_filter":
        warning = "reply filtered or refused by the provider" + (f": {detail}" if detail else "")
    elif reason == "tool_calls":
        # docs/architecture.md, "Finish reasons": the reply stopped with calls that did not run --
        # declined, not allowed in a script, no tools enabled, or the round cap (the session's
        # detail names the cap).
        warning = "the reply stopped with tool calls that did not run" + (f" ({detail})" if detail else "")
        if "max_tool_rounds" in detail:
            warning += " — " + ("/continue runs more rounds" if where == "chat"
                                else "`chatcli -c`, then /continue, runs more rounds")
    elif reason == "pause_turn":
        warning = f"the provider paused this long turn — {_resume_hint(where)}"
    elif reason == "interrupted":
        warning = "interrupted — partial reply kept" if has_text else "cancelled before any reply arrived"
    elif reason == "error":
        warning = f"the stream failed: {detail or 'unknown error'}" + (" — partial reply kept" if has_text else "")
    elif raw:
        # "incomplete" with the server's own value: a finish reason chatcli does not know. The
        # provider's detail says so; the summary above shows the value raw.
        warning = f"{detail or f'unknown finish reason ({raw})'} — the reply may be incomplete"
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


def retry_line(attempt: int, delay: float, cause: str, attempts: int | None = None) -> str:
    """The countdown shown while the session waits before another attempt (`attempt 2 of 4`)."""
    of = f" of {attempts}" if attempts else ""
    return f"{sanitize_line(cause)} — retrying in {max(0, round(delay))} s (attempt {attempt}{of})"
