"""Several models side by side (moved from chatcli/compare.py; split into rooms in the next commit)."""

from __future__ import annotations

from chatcli.compare.runner import (
    LOCAL_LOCK,
    STOP_GRACE,
    Alternative,
    ChatCompare,
    CompareView,
    Lane,
    PlainCompare,
    Runner,
    build_lanes,
    chat_send,
    compare_cmd,
    keep_choices,
    keep_cmd,
    load_alternatives,
    mark_kept,
    open_view,
    overall_exit,
    print_alternatives,
    run,
    run_in_chat,
    save_alternative,
    shutdown_response,
    to_json,
)

__all__ = [
    "LOCAL_LOCK", "STOP_GRACE", "Alternative", "ChatCompare", "CompareView", "Lane", "PlainCompare", "Runner",
    "build_lanes", "chat_send", "compare_cmd", "keep_choices", "keep_cmd", "load_alternatives", "mark_kept",
    "open_view", "overall_exit", "print_alternatives", "run", "run_in_chat", "save_alternative",
    "shutdown_response", "to_json",
]
