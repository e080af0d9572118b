"""`chatcli history list / show / export / delete / search`, as plain functions over a `Store`.

`cli.py` wires them into Typer; they take their collaborators (store, output streams, an
optional markdown renderer) so tests drive them directly. Errors are `ChatCLIError`s:
`ConversationNotFound`/`AmbiguousConversation` (exit 2), `StoreError` (exit 1).

Everything read back from the store is raw: model text and titles may hold escape sequences
(docs/architecture.md, "Terminal injection"; case R13 of tests/e2e/README.md). Whatever goes to a
terminal — list, search, show, and an export written to a stdout that is a TTY — passes the
sanitizer first. Exports to a file are raw by design
(the file is a faithful copy; `cat` on it is the user's choice, as with any downloaded text).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TextIO

from chatcli.errors import UsageError
from chatcli.history import export
from chatcli.history.store import Conversation, SearchHit, Store
from chatcli.render.sanitize import sanitize
from chatcli.turn import Turn

ExportFormat = Literal["markdown", "json"]

#: What `show` says after a partial reply (docs/architecture.md, "Finish reasons").
PARTIAL_LABELS = export.PARTIAL_LABELS


def _one_line(text: str, width: int | None = None) -> str:
    line = sanitize(" ".join(text.split()))
    if width is not None and len(line) > width:
        line = line[: width - 1].rstrip() + "…"
    return line


_when = export.when
_model = export.model_spec  # `provider:model`, as `/history` and exports show it


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
    for hit in hits:
        print(f"{hit.conversation_id}  {_when(hit.created)}  {hit.role:<9}  {_one_line(hit.title, 50)}", file=out)
        print(f"    {_snippet(hit)}", file=out)
    if len(hits) < limit and store.short_scan_bounded(text):
        from chatcli.history import store as store_module  # read at call time: the bound is the store's

        print(f"(a search with no word of 3 or more characters looks at the newest "
              f"{store_module.SHORT_SCAN_TURNS:,} turns only)", file=out)
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
    from chatcli.compare import load_alternatives, print_alternatives  # /compare's replies (schema v4)

    alternatives = load_alternatives(store, conversation.id)
    asked: int | None = None
    for turn in turns:
        if turn.role == "user":
            asked = turn.id
        if turn.system and turn.system != system:
            print(f"\n── system ──\n{sanitize(turn.system)}", file=out)
        system = turn.system
        if turn.role == "user":
            print(f"\n── you · {_when(turn.created)} ──", file=out)
            print(sanitize(turn.content), file=out)
            _print_parts(turn, out)
            continue
        if turn.role == "tool":
            _print_parts(turn, out)
            continue
        print(f"\n── {_one_line(_model(turn.provider, turn.model))} · {_when(turn.created)} ──", file=out)
        if render is not None and turn.content:
            out.flush()
            render(turn.content)
        elif turn.content:
            print(sanitize(turn.content), file=out)
        else:
            print("(no reply text)", file=out)
        _print_parts(turn, out)
        mark = partial_mark(turn)
        if mark and not (turn.finish_reason == "tool_calls" and turn.tool_calls):
            print(mark, file=out)
        if asked is not None and asked in alternatives:
            print_alternatives(alternatives.pop(asked), out)
    return conversation


def _print_parts(turn: Turn, out: TextIO) -> None:
    from chatcli.history import partcodec

    for part in turn.parts:
        print(f"  ⚙ {_one_line(partcodec.describe(part))}", file=out)


def partial_mark(turn: Turn, *, raw: bool = False) -> str | None:
    """'⚠ partial reply: …' for an assistant turn that did not end with `stop`, else None.

    For a terminal the detail is sanitized and cut to 200 characters; `raw` (exports to files and
    pipes) keeps the stored text whole, with only its whitespace folded onto one line."""
    if raw:
        return export.partial_text(turn)
    if not turn.partial:
        return None
    reason = turn.finish_reason or "incomplete"
    text = f"⚠ partial reply ({reason}): {PARTIAL_LABELS.get(reason, reason)}"
    if turn.finish_detail:
        text += f" — {_one_line(turn.finish_detail, 200)}"
    return text


# -- export -------------------------------------------------------------------------------------


def export_cmd(store: Store, conv_id: str, *, fmt: ExportFormat = "markdown", out_file: Path | None = None,
               stdout: TextIO | None = None, force: bool = False) -> Path | None:
    """Write a conversation as markdown or JSON to `out_file` (0600) or to stdout.

    An existing `out_file` is replaced (atomically) only with `force`; otherwise a UsageError.
    Returns the file written, or None for stdout. Stdout that is a terminal gets sanitized text;
    files and pipes get the raw text.
    """
    if fmt not in ("markdown", "json"):
        raise UsageError(f"unknown export format {fmt!r} (use markdown or json)")
    conversation = store.get(conv_id)
    turns = store.load_turns(conversation.id)
    document = to_json(conversation, turns) if fmt == "json" else to_markdown(conversation, turns)
    if out_file is not None and str(out_file) != "-":
        export.write_export(Path(out_file), document, force=force, hint="pass --force to overwrite it")
        return Path(out_file)
    stream = stdout if stdout is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        document = sanitize(document)
    if fmt == "json":  # exact on a non-UTF-8 stdout too: escapes, not "?"
        from chatcli.termenc import json_for

        document = json_for(stream, document)
    stream.write(document)
    stream.flush()
    return None


def to_markdown(conversation: Conversation, turns: Sequence[Turn]) -> str:
    """The conversation as a markdown document (raw text): the one exporter `/export` uses too."""
    return export.to_markdown(turns, conversation_id=conversation.id,
                              model=_model(conversation.provider, conversation.model))


def to_json(conversation: Conversation, turns: Sequence[Turn]) -> str:
    """The conversation and every field of every turn, as one JSON document."""
    document = {
        "format": "chatcli-conversation",
        "version": 1,
        "conversation": dataclasses.asdict(conversation),
        "turns": [_turn_json(turn) for turn in turns],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _turn_json(turn: Turn) -> dict[str, object]:
    from chatcli.history import partcodec

    row = {f.name: getattr(turn, f.name) for f in dataclasses.fields(turn) if f.name != "parts"}
    row["parts"] = partcodec.to_json_rows(turn.parts)
    return row


# -- delete -------------------------------------------------------------------------------------


def terminal_confirm(stdin: TextIO | None, stdin_isatty: bool, err: TextIO) -> Callable[[str], bool]:
    """`history delete`'s question: asked on stderr, answered on stdin when stdin is a terminal.

    With no terminal there is nobody to ask, and a script that forgot `--yes` must not destroy
    data: the answer is then a UsageError saying to pass `--yes` (as `apt-get` without `-y`).
    """
    def confirm(question: str) -> bool:
        if stdin is None or not stdin_isatty:
            raise UsageError("not deleting without confirmation: stdin is not a terminal (pass --yes)")
        err.write(question)
        err.flush()
        answer = stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    return confirm


def delete_cmd(store: Store, conv_id: str, err: TextIO, *,
               confirm: Callable[[str], bool] | None = None) -> Conversation | None:
    """Delete a conversation (id or unique prefix) and say so on `err`.

    `confirm`, when given, is asked first with a one-line question naming the conversation; a
    no deletes nothing (said on `err`) and returns None."""
    conversation = store.get(conv_id)
    if confirm is not None:
        question = (f"delete conversation {conversation.id} ({conversation.turns} turns): "
                    f"{_one_line(conversation.title, 60)}? [y/N] ")
        if not confirm(question):
            print("nothing deleted", file=err)
            return None
    store.delete(conversation.id)
    print(f"deleted conversation {conversation.id} ({conversation.turns} turns): "
          f"{_one_line(conversation.title, 60)}", file=err)
    return conversation
