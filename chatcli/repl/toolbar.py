"""The chat's bottom toolbar: the model, the context share, the mode, what is attached."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit.formatted_text import StyleAndTextTuples

from chatcli.render.sanitize import sanitize

if TYPE_CHECKING:
    from chatcli.repl.commands import ReplState
    from chatcli.session import Session
    from chatcli.settings import Settings


def toolbar(state: ReplState | None, label: str) -> StyleAndTextTuples:
    """`label` until the state is built (before the first prompt is drawn: no session yet)."""
    if state is None:  # before the first prompt is drawn: no session yet
        return [("class:bottom-toolbar.text", f" {sanitize(label)} ")]
    from chatcli.repl.commands import model_label

    session = state.session
    parts = [model_label(session)]
    counted = context_tokens(session)
    if counted is not None:
        used, exact = counted
        text = f"{'' if exact else '~'}{used:,} tokens"
        window = context_window(state.settings, session)
        if window:
            text += f" · {used / window:.0%} of {_k(window)}"
        parts.append(text)
    if state.multiline:
        parts.append("multiline: Esc-Enter sends")
    if state.pending:
        from chatcli.repl.attach import pending_summary

        parts.append(pending_summary(state) or "")
    return [("class:bottom-toolbar.text", " " + " · ".join(sanitize(p) for p in parts) + " ")]


def context_tokens(session: Session) -> tuple[int, bool] | None:
    """(tokens the conversation fills, exact?) — None before the first message.

    Exact up to the last reply that reported usage (its input + output is what the next request
    re-sends); turns after it, or all of them when the provider reports no usage, are estimated.
    """
    if not session.turns:
        return None
    from chatcli.context import conversation_tokens

    exact = any(t.role == "assistant" and t.input_tokens is not None for t in session.turns)
    return conversation_tokens(session.turns, session.system), exact


def context_window(settings: Settings, session: Session) -> int | None:
    """The current model's window: provider config, then the config's table, then known models."""
    from chatcli.context import context_window_for

    config = settings.providers.get(session.provider.name)
    return context_window_for(session.model, session.provider.name, overrides=settings.context_windows,
                              configured=config.context_window if config else None)


def _k(tokens: int) -> str:
    """128000 -> "128k" (windows are round numbers of thousands, or close to them)."""
    return f"{round(tokens / 1000):,}k" if tokens >= 1000 else str(tokens)


def _size(text: str) -> str:
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return f"{lines:,} line{'s' if lines != 1 else ''}, {len(text):,} characters"
