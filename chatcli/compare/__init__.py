"""Several models side by side: `chatcli ask -m A -m B` and the chat's `/compare` and `/keep`. The
package re-exports every name its callers use (`compare.run`, `compare.Runner`, `compare.chat_send`, ...);
each room owns one thing: runner.py the concurrent streams, plain.py the plain writer, ask.py the
one-shot flow, alternatives.py the stored alternatives, chat.py the chat's commands.
"""

from __future__ import annotations

from chatcli.compare.alternatives import (
    Alternative,
    AltRecorder,
    load_alternatives,
    mark_kept,
    print_alternatives,
    save_alternative,
)
from chatcli.compare.ask import build_lanes, open_view, run, to_json
from chatcli.compare.chat import ChatCompare, chat_send, compare_cmd, keep_choices, keep_cmd, run_in_chat
from chatcli.compare.plain import PlainCompare
from chatcli.compare.runner import (
    LOCAL_LOCK,
    STOP_GRACE,
    CompareView,
    Lane,
    Runner,
    overall_exit,
    shutdown_response,
)

__all__ = [
    "LOCAL_LOCK", "STOP_GRACE", "AltRecorder", "Alternative", "ChatCompare", "CompareView", "Lane",
    "PlainCompare", "Runner", "build_lanes", "chat_send", "compare_cmd", "keep_choices", "keep_cmd",
    "load_alternatives", "mark_kept", "open_view", "overall_exit", "print_alternatives", "run",
    "run_in_chat", "save_alternative", "shutdown_response", "to_json",
]
