"""The one markdown exporter, used by the chat's `/export` and by `chatcli history export`.

Both hand it the same things (the turns, the conversation id when it is saved), so the same
conversation gives the same document from either (tests/test_export.py checks it).

The document's shape, and why:

* `# title`, then a few `- key: value` lines, then one `## You` / `## Assistant (provider:model)`
  section per turn. Message text is kept as written, except that its headings are moved two
  levels down (`#` -> `###`, `##` -> `####`, setext headings rewritten as ATX ones): a reply's own
  `## Summary` can then never pass for a speaker heading, and the outline stays readable.
  Headings inside fenced code are code, not headings (markdown-it's parse says which lines are).
* A system prompt is printed where it took effect (the first turn that carried it), and where it
  was cleared: a prompt set at turn 5 did not apply to turns 1-4.
* A reply with no text (a failed or cancelled request) says so instead of leaving a bare heading.
* The title is the first message, whitespace folded, cut at a word boundary and never inside a
  link or a code span (a cut `[docs](https://exa…` is a broken link).
* Key-shaped text is redacted (`chatcli.redact`): exports are made to be shared.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from chatcli.errors import UsageError
from chatcli.fsperm import FILE_MODE, write_private
from chatcli.redact import redact
from chatcli.turn import Turn

TITLE_LENGTH = 80

#: What follows "⚠ partial reply (reason):" for each reason (shared with `history show`).
PARTIAL_LABELS: dict[str, str] = {
    "length": "cut at the token limit",
    "content_filter": "filtered or refused by the provider",
    "tool_calls": "stopped with tool calls that did not run",
    "pause_turn": "paused by the provider",
    "interrupted": "interrupted",
    "error": "stopped by an error",
    "incomplete": "the reply may be truncated (no finish signal)",
}


def model_spec(provider: str | None, model: str | None) -> str:
    """`provider:model`, the one way a model is named in lists and exports."""
    if provider and model:
        return f"{provider}:{model}"
    return model or provider or "-"


def when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def partial_text(turn: Turn) -> str | None:
    """'⚠ partial reply (reason): label — detail' (raw, one line), or None for a complete turn."""
    if not turn.partial:
        return None
    reason = turn.finish_reason or "incomplete"
    text = f"⚠ partial reply ({reason}): {PARTIAL_LABELS.get(reason, reason)}"
    if turn.finish_detail:
        text += " — " + " ".join(turn.finish_detail.split())
    return text


def to_markdown(turns: Sequence[Turn], *, conversation_id: str | None = None, model: str | None = None,
                system_now: str | Literal[False] | None = False) -> str:
    """The conversation as one markdown document (raw text, keys redacted).

    `model` names the model when no reply says which (a conversation of one unanswered message);
    `system_now` is the chat's current system prompt: printed at the end when it differs from
    the one the last turn carried (it applies to the replies after the export); False (a saved
    conversation, read back) when there is no such thing.
    """
    first = next((t.content for t in turns if t.role == "user"), "")
    lines = [f"# {export_title(first) or 'chatcli conversation'}", ""]
    if conversation_id:
        lines.append(f"- conversation: `{conversation_id}`")
    if turns:
        lines.append(f"- started: {when(turns[0].created)}")
        lines.append(f"- last turn: {when(turns[-1].created)}")
    models = list(dict.fromkeys(model_spec(t.provider, t.model) for t in turns
                                if t.role == "assistant" and (t.provider or t.model)))
    shown = models or ([model] if model else [])
    if shown:
        lines.append(f"- model: {', '.join(f'`{m}`' for m in shown)}")
    system: str | None = None
    for turn in turns:
        if turn.system != system:
            lines += _system_section(turn.system)
        system = turn.system
        if turn.role == "user":
            lines += ["", "## You", "", demote_headings(turn.content)]
            lines += _parts_section(turn)
            continue
        if turn.role == "tool":
            lines += _parts_section(turn)
            continue
        lines += ["", f"## Assistant ({model_spec(turn.provider, turn.model)})", ""]
        if turn.content or not turn.tool_calls:
            lines.append(demote_headings(turn.content) if turn.content else "*(no reply text)*")
        lines += _parts_section(turn)
        mark = partial_text(turn)
        if mark and not (turn.finish_reason == "tool_calls" and turn.tool_calls and turn is not turns[-1]):
            lines += ["", f"> {mark}"]
    if system_now is not False and system_now != system:
        lines += _system_section(system_now)
        lines += ["", "*(for the replies after this point)*"]
    return redact("\n".join(lines).rstrip() + "\n")


def _parts_section(turn: Turn) -> list[str]:
    """Attachments named, tool calls with their arguments, tool results summarised (first lines)."""
    from chatcli.events import ToolCallPart, ToolResultPart
    from chatcli.history import partcodec

    lines: list[str] = []
    for part in turn.parts:
        if isinstance(part, ToolCallPart):
            lines += ["", f"**Tool call** `{part.name}` (`{part.id}`)", "", "```json", part.arguments or "{}", "```"]
        elif isinstance(part, ToolResultPart):
            text = part.full if part.full is not None else part.content
            head = text.splitlines()[:5]
            fence = "````" if "```" in text else "```"
            lines += ["", f"**Tool result** (`{part.call_id}`, {part.status}"
                      f"{', error' if part.is_error and part.status == 'ok' else ''}, {len(text):,} characters)",
                      "", fence, *head, *(["…"] if len(text.splitlines()) > 5 else []), fence]
        else:
            lines += ["", f"- attached: {partcodec.describe(part)}"]
    return lines


def _system_section(system: str | None) -> list[str]:
    return ["", "## System", "", demote_headings(system) if system else "*(no system prompt from here on)*"]


# -- the title ------------------------------------------------------------------------------------

# Whole units a title is never cut inside: a link or image, a code span, an autolink, a word.
_ATOM = re.compile(r"!?\[[^\]\n]*\]\([^)\s]*(?:\s+\"[^\"]*\")?\)|`+[^`]*`+|<[^>\s]+>|\S+")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)]*\)")


def export_title(text: str, width: int = TITLE_LENGTH) -> str:
    """The first message folded onto one line, cut to `width` at a unit boundary ("…" when cut)."""
    folded = " ".join(text.split())
    if len(folded) <= width:
        return folded
    kept = ""
    for atom in _ATOM.findall(folded):
        candidate = f"{kept} {atom}" if kept else atom
        if len(candidate) > width - 1:
            if not kept:  # one unit longer than the title: keep a link's text, else cut the word
                label = _LINK.sub(r"\1", atom)
                kept = label if len(label) <= width - 1 else label[: width - 1]
            break
        kept = candidate
    return kept.rstrip() + "…"


# -- headings inside messages ---------------------------------------------------------------------

_ATX = re.compile(r"^(?P<lead>(?:[ \t]*>)*[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?[ \t]{0,3})(?P<hashes>#{1,6})"
                  r"(?=[ \t]|$)")
_SETEXT = re.compile(r"^[ \t]{0,3}(?:=+|-+)[ \t]*$")


def demote_headings(text: str, by: int = 2) -> str:
    """`text` with every markdown heading `by` levels lower (at most level 6); nothing else changes."""
    if "#" not in text and "=" not in text and "-" not in text:
        return text
    from markdown_it import MarkdownIt  # only on export: markdown-it is the renderer's parser too

    tokens = MarkdownIt("commonmark").parse(text)
    lines = text.split("\n")
    for token in reversed(tokens):  # from the end: a setext rewrite changes the line count
        if token.type != "heading_open" or token.map is None:
            continue
        level = min(6, int(token.tag[1]) + by)
        start, end = token.map
        if token.markup.startswith(("=", "-")):  # setext: text lines, then the underline
            if end - 1 <= start or not _SETEXT.match(lines[end - 1]):
                continue  # inside a container (quote, list): left as it is
            heading = " ".join(line.strip() for line in lines[start:end - 1])
            lines[start:end] = ["#" * level + " " + heading]
            continue
        lines[start] = _ATX.sub(_with_hashes("#" * level), lines[start], count=1)
    return "\n".join(lines)


def _with_hashes(hashes: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match.group("lead") + hashes


# -- writing --------------------------------------------------------------------------------------


def write_export(path: Path, text: str, *, force: bool, hint: str) -> None:
    """Write an export as a 0600 file. An existing file is replaced only with `force` (atomically);
    otherwise a UsageError says so, ending with `hint` (how to overwrite: `--force`, `/export!`)."""
    path = Path(path).expanduser()
    data = text.encode("utf-8")
    try:
        if force:
            write_private(path, data)
            return
        # O_EXCL: the check and the creation are one step, so nothing appearing meanwhile is clobbered.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    except FileExistsError:
        raise UsageError(f"{path} exists; {hint}") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
