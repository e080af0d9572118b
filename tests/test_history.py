"""`chatcli history list/show/export/delete/search` as functions: output, sanitizing, errors."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcli.errors import ExitCode, UsageError
from chatcli.history import commands as history
from chatcli.history.store import ConversationNotFound, Store
from chatcli.turn import Turn
from tests.support.fakes import TTY

EVIL = "\x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b]8;;http://evil\x1b\\label\x1b]8;;\x1b\\ \x9b31m\x9d0;t\x9c \x90dcs\x9c\x07\b"
DANGEROUS = ("\x1b", "\x9b", "\x9d", "\x90", "\x9c", "\x07", "\b")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "data") as opened:
        yield opened


def _conversation(store: Store, *turns: Turn) -> str:
    rec = store.recorder()
    for turn in turns:
        rec.record(turn)
    assert rec.conversation_id
    return rec.conversation_id


def _clean(text: str) -> None:
    for ch in DANGEROUS:
        assert ch not in text, f"{ch!r} reached the terminal: {text!r}"


def test_list_newest_first_with_columns(store: Store) -> None:
    old = _conversation(store, Turn("user", "old question", provider="openai", model="gpt-4o"),
                        Turn("assistant", "answer", provider="openai", model="gpt-4o", finish_reason="stop"))
    new = _conversation(store, Turn("user", "new question", provider="anthropic", model="claude-x"))
    out = io.StringIO()
    assert history.list_cmd(store, out) == 2
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["ID", "LAST", "USED", "TURNS", "MODEL", "TITLE"]
    assert lines[1].startswith(new) and "anthropic:claude-x" in lines[1] and "new question" in lines[1]
    assert lines[2].startswith(old) and " 2 " in lines[2] and "openai:gpt-4o" in lines[2]


def test_list_empty_and_more(store: Store) -> None:
    out = io.StringIO()
    assert history.list_cmd(store, out) == 0
    assert "no saved conversations" in out.getvalue()
    for i in range(4):
        _conversation(store, Turn("user", f"q{i}"))
    out = io.StringIO()
    history.list_cmd(store, out, limit=3)
    assert "(1 more" in out.getvalue()


def test_list_and_search_sanitize_stored_text(store: Store) -> None:
    _conversation(store, Turn("user", f"title {EVIL} needle", model=f"m{EVIL}", provider="p\x1b[31m"),
                  Turn("assistant", f"reply {EVIL} needle", finish_reason="stop"))
    out = io.StringIO()
    history.list_cmd(store, out)
    _clean(out.getvalue())
    out = io.StringIO()
    assert history.search_cmd(store, "needle", out) == 2
    _clean(out.getvalue())
    assert "[needle]" in out.getvalue()


def test_search_output_and_no_match(store: Store) -> None:
    conv = _conversation(store, Turn("user", "How to sort a dict by value in Python?"))
    out = io.StringIO()
    assert history.search_cmd(store, "sort value", out) == 1
    first, second = out.getvalue().splitlines()
    assert first.startswith(conv) and "user" in first
    assert second.strip() == "How to [sort] a dict by [value] in Python?"
    out = io.StringIO()
    assert history.search_cmd(store, '"*" AND -x', out) == 0
    assert "no saved turn matches" in out.getvalue()
    with pytest.raises(UsageError):
        history.search_cmd(store, "  ", out)


def test_show_renders_turns_and_marks_partials(store: Store) -> None:
    conv = _conversation(
        store,
        Turn("user", "first", system="be terse"),
        Turn("assistant", "complete answer", provider="openai", model="gpt-4o", finish_reason="stop",
             system="be terse"),
        Turn("user", "second", system="be terse"),
        Turn("assistant", f"cut {EVIL}", provider="openai", model="gpt-4o", finish_reason="length",
             finish_raw="length", system="be terse"),
        Turn("user", "third"),
        Turn("assistant", "", finish_reason="error", finish_detail=f"connection lost {EVIL}"),
    )
    out = io.StringIO()
    shown = history.show_cmd(store, conv[:5], out)
    text = out.getvalue()
    _clean(text)
    assert shown.id == conv
    assert text.count("── you") == 3 and text.count("── openai:gpt-4o") == 2
    assert text.count("── system ──") == 1 and "be terse" in text
    assert "complete answer" in text
    assert "⚠ partial reply (length): cut at the token limit" in text
    assert "⚠ partial reply (error): stopped by an error — connection lost" in text
    assert "(no reply text)" in text
    assert text.count("⚠") == 2


def test_show_uses_the_renderer_for_replies(store: Store) -> None:
    conv = _conversation(store, Turn("user", "q"), Turn("assistant", "**bold**", finish_reason="stop"))
    rendered: list[str] = []
    history.show_cmd(store, conv, io.StringIO(), render=rendered.append)
    assert rendered == ["**bold**"]  # raw in: the renderer sanitizes


def test_unknown_and_ambiguous_ids(store: Store) -> None:
    for call in (
        lambda: history.show_cmd(store, "deadbeef", io.StringIO()),
        lambda: history.export_cmd(store, "deadbeef"),
        lambda: history.delete_cmd(store, "deadbeef", io.StringIO()),
    ):
        with pytest.raises(ConversationNotFound) as raised:
            call()
        assert raised.value.message == "no conversation 'deadbeef' (see chatcli history list)"
        assert raised.value.exit_code == ExitCode.USAGE


def test_export_markdown_to_a_private_file_is_raw(store: Store, tmp_path: Path) -> None:
    conv = _conversation(
        store,
        Turn("user", "Explain\n\n```py\nx = 1\n```", system="sys prompt"),
        Turn("assistant", f"Sure {EVIL}", provider="anthropic", model="claude-x", finish_reason="pause_turn",
             system="sys prompt"),
    )
    old = os.umask(0o022)
    try:
        target = tmp_path / "out.md"
        assert history.export_cmd(store, conv, out_file=target) == target
    finally:
        os.umask(old)
    text = target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert text.startswith("# Explain ```py x = 1 ```\n")
    assert f"- conversation: `{conv}`" in text
    assert "## System\n\nsys prompt" in text
    assert "## You\n\nExplain\n\n```py\nx = 1\n```" in text  # whitespace exact
    assert "## Assistant (anthropic:claude-x)" in text
    assert f"Sure {EVIL}" in text  # a file gets the raw text
    assert "> ⚠ partial reply (pause_turn)" in text


def test_export_to_stdout_sanitizes_only_a_terminal(store: Store) -> None:
    conv = _conversation(store, Turn("user", f"q {EVIL}"))
    pipe = io.StringIO()
    assert history.export_cmd(store, conv, stdout=pipe) is None
    assert EVIL in pipe.getvalue()
    tty = TTY()
    history.export_cmd(store, conv, stdout=tty)
    _clean(tty.getvalue())
    tty = TTY()
    history.export_cmd(store, conv, fmt="json", stdout=tty)
    _clean(tty.getvalue())


def test_export_json_has_every_field(store: Store, tmp_path: Path) -> None:
    conv = _conversation(
        store,
        Turn("user", "q", provider="openai", model="gpt-4o", system="s"),
        Turn("assistant", "a", provider="openai", model="gpt-4o", system="s", finish_reason="length",
             finish_raw="length", finish_detail="d", reasoning="r", input_tokens=3, output_tokens=4, ttft=0.5,
             duration=1.5),
    )
    target = tmp_path / "c.json"
    history.export_cmd(store, conv, fmt="json", out_file=target)
    doc = json.loads(target.read_text())
    assert doc["format"] == "chatcli-conversation" and doc["version"] == 1
    assert doc["conversation"]["id"] == conv and doc["conversation"]["turns"] == 2
    reply = doc["turns"][1]
    assert {k: reply[k] for k in ("role", "content", "finish_reason", "finish_raw", "finish_detail", "reasoning",
                                  "input_tokens", "output_tokens", "ttft", "duration", "provider", "model",
                                  "system")} == {
        "role": "assistant", "content": "a", "finish_reason": "length", "finish_raw": "length",
        "finish_detail": "d", "reasoning": "r", "input_tokens": 3, "output_tokens": 4, "ttft": 0.5,
        "duration": 1.5, "provider": "openai", "model": "gpt-4o", "system": "s"}
    assert isinstance(reply["id"], int) and isinstance(reply["created"], float)
    with pytest.raises(UsageError):
        history.export_cmd(store, conv, fmt="html")  # type: ignore[arg-type]


def test_export_to_an_unwritable_place_is_a_usage_error(store: Store, tmp_path: Path) -> None:
    conv = _conversation(store, Turn("user", "q"))
    with pytest.raises(UsageError) as raised:
        history.export_cmd(store, conv, out_file=tmp_path / "missing-dir" / "x.md")
    assert "cannot write" in raised.value.message


def test_delete(store: Store) -> None:
    conv = _conversation(store, Turn("user", f"bye {EVIL}"), Turn("assistant", "x", finish_reason="stop"))
    err = io.StringIO()
    history.delete_cmd(store, conv[:4], err)
    assert f"deleted conversation {conv} (2 turns)" in err.getvalue()
    _clean(err.getvalue())
    assert store.list_conversations() == []


def test_load_for_resume(store: Store) -> None:
    assert history.load_for_resume(store, None) is None
    first = _conversation(store, Turn("user", "one"))
    second = _conversation(store, Turn("user", "two"), Turn("assistant", "2", finish_reason="stop"))
    latest = history.load_for_resume(store, None)
    assert latest is not None and latest[0].id == second and [t.content for t in latest[1]] == ["two", "2"]
    chosen = history.load_for_resume(store, first[:5])
    assert chosen is not None and chosen[0].id == first
    with pytest.raises(ConversationNotFound):
        history.load_for_resume(store, "ffffffff0")


def test_the_sanitizer_history_uses_removes_controls() -> None:
    # (history had a fallback sanitizer of its own for when the render package was not there yet)
    cleaned = history.sanitize(EVIL + "\n\tok")
    _clean(cleaned)
    assert cleaned.endswith("\n\tok")
