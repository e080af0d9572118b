"""`chatcli history list / show / export / delete / search`, as plain functions over a `Store`.

`cli.py` wires them into Typer; they take their collaborators (store, output streams, an
optional markdown renderer) so tests drive them directly. Errors are `ChatCLIError`s:
`ConversationNotFound`/`AmbiguousConversation` (exit 2), `StoreError` (exit 1).

Everything read back from the store is raw: model text and titles may hold escape sequences
(protocols.md §3.1, R13). Whatever goes to a terminal — list, search, show, and an export written
to a stdout that is a TTY — passes the sanitizer first. Exports to a file are raw by design
(the file is a faithful copy; `cat` on it is the user's choice, as with any downloaded text).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

from chatcli.errors import UsageError
from chatcli.fsperm import write_private
from chatcli.session import Turn
from chatcli.store import Conversation, SearchHit, Store

ExportFormat = Literal["markdown", "json"]

#: What `show` says after a partial reply (SPEC "Finish reasons and partial replies").
PARTIAL_LABELS: dict[str, str] = {
    "length": "cut at the token limit",
    "content_filter": "filtered or refused by the provider",
    "tool_calls": "the model asked for a tool chatcli did not offer",
    "pause_turn": "paused by the provider",
    "interrupted": "interrupted",
    "error": "stopped by an error",
    "incomplete": "the reply may be truncated (no finish signal)",
}


# -- sanitizing ---------------------------------------------------------------------------------

_sanitizer: Callable[[str], str] | None = None


def safe(text: str) -> str:
    """Untrusted stored text made harmless for a terminal (the renderer's sanitizer).

    Looked up lazily: the render package is written in parallel and may import heavier things.
    The fallback replaces every control character but newline and tab, so nothing live ever
    reaches the terminal even without it.
    """
    global _sanitizer
    if _sanitizer is None:
        _sanitizer = _find_sanitizer()
    return _sanitizer(text)


def _find_sanitizer() -> Callable[[str], str]:
    for module_name in ("chatcli.render.sanitize", "chatcli.render"):
        try:
            module: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        function = getattr(module, "sanitize", None)
        if callable(function):
            return lambda text: str(function(text))
    return _fallback_sanitize


def _fallback_sanitize(text: str) -> str:
    return "".join(
        ch if ch in "\n\t" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) else f"\\x{ord(ch):02x}"
        for ch in text
    )


def _one_line(text: str, width: int | None = None) -> str:
    line = safe(" ".join(text.split()))
    if width is not None and len(line) > width:
        line = line[: width - 1].rstrip() + "…"
    return line


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _model(provider: str | None, model: str | None) -> str:
    if provider and model:
        return f"{provider}:{model}"
    return model or provider or "-"


# -- resolving ----------------------------------------------------------------------------------


def resolve(store: Store, conv_id: str) -> Conversation:
    """The conversation for an id or unique id prefix (raises ConversationNotFound / Ambiguous)."""
    return store.get(conv_id)


def load_for_resume(store: Store, conv_id: str | None) -> tuple[Conversation, list[Turn]] | None:
    """`--resume ID` (conv_id given) or `--continue` (None: the most recent conversation).

    Returns None only for `--continue` with no saved conversation. The caller builds
    `Session(turns=turns, recorder=store.recorder(conversation.id), system=turns[-1].system ...)`.
    """
    if conv_id is None:
        latest = store.latest_conversation()
        if latest is None:
            return None
        conversation = latest
    else:
        conversation = store.get(conv_id)
    return conversation, store.load_turns(conversation.id)


# -- list / search ------------------------------------------------------------------------------


def list_cmd(store: Store, out: TextIO, *, limit: int = 20, offset: int = 0) -> int:
    """Print saved conversations, most recently used first. Returns how many were printed."""
    rows = store.list_conversations(limit=limit, offset=offset)
    if not rows:
        print("no saved conversations" + (" at this offset" if offset else ""), file=out)
        return 0
    print(f"{'ID':<8}  {'LAST USED':<16}  {'TURNS':>5}  {'MODEL':<24}  TITLE", file=out)
    for row in rows:
        print(f"{row.id:<8}  {_when(row.updated):<16}  {row.turns:>5}  "
              f"{_one_line(_model(row.provider, row.model), 24):<24}  {_one_line(row.title, 60)}", file=out)
    total = store.count_conversations()
    if total > offset + len(rows):
        print(f"({total - offset - len(rows)} more; use --limit/--offset)", file=out)
    return len(rows)


def search_cmd(store: Store, text: str, out: TextIO, *, limit: int = 20) -> int:
    """Print turns matching `text` (taken literally), best first. Returns how many were printed."""
    if not text.strip():
        raise UsageError("usage: chatcli history search TEXT")
    hits = store.search(text, limit=limit)
    if not hits:
        print(f"no saved turn matches {_one_line(text)!r}", file=out)
        return 0
    for hit in hits:
        print(f"{hit.conversation_id}  {_when(hit.created)}  {hit.role:<9}  {_one_line(hit.title, 50)}", file=out)
        print(f"    {_snippet(hit)}", file=out)
    return len(hits)


def _snippet(hit: SearchHit) -> str:
    # Sanitize each piece, then mark the matches with plain brackets (no styling: this may be a pipe).
    return "".join(f"[{_one_line(t)}]" if matched else _one_line_keep_edges(t) for t, matched in hit.parts)


def _one_line_keep_edges(text: str) -> str:
    """Whitespace collapsed but a leading/trailing space kept, so words around a match stay apart."""
    core = _one_line(text)
    lead = " " if text[:1].isspace() else ""
    tail = " " if text[-1:].isspace() and core else ""
    return lead + core + tail


# -- show ---------------------------------------------------------------------------------------


def show_cmd(store: Store, conv_id: str, out: TextIO, *,
             render: Callable[[str], None] | None = None) -> Conversation:
    """Print a conversation's turns with who said what and a mark on every partial reply.

    `render`, when given, shows an assistant reply (raw markdown in; it must sanitize, as the
    renderer does); otherwise the sanitized text is written as is.
    """
    conversation = store.get(conv_id)
    turns = store.load_turns(conversation.id)
    print(f"conversation {conversation.id} · {_one_line(conversation.title, 70)}", file=out)
    print(f"started {_when(conversation.created)} · last used {_when(conversation.updated)} · "
          f"{len(turns)} turns", file=out)
    system: str | None = None
    for turn in turns:
        if turn.system and turn.system != system:
            print(f"\n── system ──\n{safe(turn.system)}", file=out)
        system = turn.system
        if turn.role == "user":
            print(f"\n── you · {_when(turn.created)} ──", file=out)
            print(safe(turn.content), file=out)
            continue
        print(f"\n── {_one_line(_model(turn.provider, turn.model))} · {_when(turn.created)} ──", file=out)
        if render is not None and turn.content:
            out.flush()
            render(turn.content)
        elif turn.content:
            print(safe(turn.content), file=out)
        else:
            print("(no reply text)", file=out)
        mark = partial_mark(turn)
        if mark:
            print(mark, file=out)
    return conversation


def partial_mark(turn: Turn, *, raw: bool = False) -> str | None:
    """'⚠ partial reply: …' for an assistant turn that did not end with `stop`, else None.

    For a terminal the detail is sanitized and cut to 200 characters; `raw` (exports to files and
    pipes) keeps the stored text whole, with only its whitespace folded onto one line."""
    if not turn.partial:
        return None
    reason = turn.finish_reason or "incomplete"
    text = f"⚠ partial reply ({reason}): {PARTIAL_LABELS.get(reason, reason)}"
    if turn.finish_detail:
        detail = " ".join(turn.finish_detail.split()) if raw else _one_line(turn.finish_detail, 200)
        text += f" — {detail}"
    return text


# -- export -------------------------------------------------------------------------------------


def export_cmd(store: Store, conv_id: str, *, fmt: ExportFormat = "markdown", out_file: Path | None = None,
               stdout: TextIO | None = None) -> Path | None:
    """Write a conversation as markdown or JSON to `out_file` (0600, atomic) or to stdout.

    Returns the file written, or None for stdout. Stdout that is a terminal gets sanitized text;
    files and pipes get the raw text.
    """
    if fmt not in ("markdown", "json"):
        raise UsageError(f"unknown export format {fmt!r} (use markdown or json)")
    conversation = store.get(conv_id)
    turns = store.load_turns(conversation.id)
    document = to_json(conversation, turns) if fmt == "json" else to_markdown(conversation, turns)
    if out_file is not None and str(out_file) != "-":
        try:
            write_private(Path(out_file).expanduser(), document)
        except OSError as exc:
            raise UsageError(f"cannot write {out_file}: {exc.strerror or exc}") from exc
        return Path(out_file)
    stream = stdout if stdout is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        document = safe(document)
    if fmt == "json":  # exact on a non-UTF-8 stdout too: escapes, not "?"
        from chatcli.termenc import json_for

        document = json_for(stream, document)
    stream.write(document)
    stream.flush()
    return None


def to_markdown(conversation: Conversation, turns: Sequence[Turn]) -> str:
    """The conversation as a markdown document (raw text)."""
    lines = [f"# {' '.join(conversation.title.split()) or 'chatcli conversation'}", ""]
    lines.append(f"- conversation: `{conversation.id}`")
    lines.append(f"- started: {_when(conversation.created)}")
    lines.append(f"- last used: {_when(conversation.updated)}")
    lines.append(f"- model: `{_model(conversation.provider, conversation.model)}`")
    system: str | None = None
    for turn in turns:
        if turn.system and turn.system != system:
            lines += ["", "## System", "", turn.system]
        system = turn.system
        if turn.role == "user":
            lines += ["", "## You", "", turn.content]
            continue
        lines += ["", f"## Assistant ({_model(turn.provider, turn.model)})", "", turn.content]
        mark = partial_mark(turn, raw=True)
        if mark:
            lines += ["", f"> {mark}"]
    return "\n".join(lines) + "\n"



def to_json(conversation: Conversation, turns: Sequence[Turn]) -> str:
    """The conversation and every field of every turn, as one JSON document."""
    document = {
        "format": "chatcli-conversation",
        "version": 1,
        "conversation": dataclasses.asdict(conversation),
        "turns": [dataclasses.asdict(turn) for turn in turns],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# -- delete -------------------------------------------------------------------------------------


def delete_cmd(store: Store, conv_id: str, err: TextIO) -> Conversation:
    """Delete a conversation (id or unique prefix) and say so on `err`."""
    conversation = store.get(conv_id)
    store.delete(conversation.id)
    print(f"deleted conversation {conversation.id} ({conversation.turns} turns): "
          f"{_one_line(conversation.title, 60)}", file=err)
    return conversation
