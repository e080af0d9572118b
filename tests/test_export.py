"""One markdown exporter for `/export` and `chatcli history export`, its document, and how both
write files (0600, never over an existing file unless told); `history delete`'s confirmation."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcli.errors import UsageError
from chatcli.events import Finish, TextDelta, Usage
from chatcli.history import commands as history
from chatcli.history.export import demote_headings, export_title, to_markdown
from chatcli.history.store import Store
from chatcli.repl.commands import ReplState, dispatch
from chatcli.session import Session
from chatcli.settings import Settings
from chatcli.turn import Turn
from tests.support.fakes import TTY, FakeProvider
from tests.support.runner import Result, run

REPLY = "## Summary\n\nIt works.\n\n```md\n## not a heading: code\n```\n\nDetails\n-------\n\n> ## quoted"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "data") as opened:
        yield opened


def _chat(store: Store) -> ReplState:
    """A chat that really ran: three exchanges through a Session recording into the store, the
    system prompt set before the third, the last request failing with no text."""
    provider = FakeProvider()
    provider.scripts += [
        [TextDelta(REPLY), Usage(3, 2), Finish("stop")],
        [TextDelta("second"), Finish("stop")],
        [Finish("error", detail="the server closed the stream")],
    ]
    session = Session(provider, model="m1", recorder=store.recorder())
    list(session.send("Read [the long guide](https://example.com/" + "a" * 60 + ") and sum up"))
    list(session.send("more"))
    session.system = "be brief"
    list(session.send("again"))
    return ReplState(session=session, settings=Settings(), err=io.StringIO(), store=store)


def test_export_and_history_export_write_the_same_markdown(store: Store, tmp_path: Path) -> None:
    state = _chat(store)
    dispatch(state, f"/export {tmp_path / 'chat.md'}")
    conv = store.list_conversations()[0].id
    history.export_cmd(store, conv, out_file=tmp_path / "history.md")
    from_chat = (tmp_path / "chat.md").read_text()
    assert from_chat == (tmp_path / "history.md").read_text()
    assert f"- conversation: `{conv}`" in from_chat


def test_the_document(store: Store, tmp_path: Path) -> None:
    state = _chat(store)
    dispatch(state, f"/export {tmp_path / 'chat.md'}")
    text = (tmp_path / "chat.md").read_text()
    # The title is never cut inside the link (it did not fit, so it is left out whole).
    assert text.startswith("# Read…\n")
    # The reply's own headings sit below the speakers' level; code is left alone.
    assert "## Assistant (fake:m1)\n\n#### Summary\n\nIt works." in text
    assert "```md\n## not a heading: code\n```" in text
    assert "\n#### Details\n" in text and "-------" not in text
    assert "> #### quoted" in text
    assert [line for line in text.splitlines() if line.startswith("## ") and "code" not in line] == [
        "## You", "## Assistant (fake:m1)", "## You", "## Assistant (fake:m1)", "## System", "## You",
        "## Assistant (fake:m1)"]
    # The system prompt appears where it was set (before the third message), not at the top.
    assert text.index("## System\n\nbe brief") > text.index("second")
    assert text.index("## System\n\nbe brief") < text.index("## You\n\nagain")
    # A failed turn says so.
    assert text.rstrip().endswith("*(no reply text)*\n\n> ⚠ partial reply (error): stopped by an error — "
                                  "the server closed the stream")


def test_a_system_prompt_cleared_or_set_after_the_last_turn_is_said() -> None:
    turns = [Turn("user", "q", system="first"), Turn("assistant", "a", system="first", finish_reason="stop"),
             Turn("user", "q2"), Turn("assistant", "a2", finish_reason="stop")]
    text = to_markdown(turns, system_now="later")
    assert "## System\n\nfirst\n\n## You\n\nq\n" in text
    assert "## System\n\n*(no system prompt from here on)*\n\n## You\n\nq2" in text
    assert text.endswith("## System\n\nlater\n\n*(for the replies after this point)*\n")


@pytest.mark.parametrize("text, title", [
    ("short one", "short one"),
    ("see [the docs](https://example.com/" + "x" * 70 + ") now", "see…"),
    ("word " * 30, ("word " * 16).strip() + "…"),
    ("`" + "c" * 100 + "`", "`" + "c" * 78 + "…"),
    ("[" + "t" * 20 + "](https://example.com/" + "x" * 90 + ")", "t" * 20 + "…"),
])
def test_export_title_is_cut_between_units(text: str, title: str) -> None:
    assert export_title(text) == title
    assert len(export_title(text)) <= 80


def test_demote_headings_changes_only_headings() -> None:
    assert demote_headings("# a\n\ntext # not\n\n###### six") == "### a\n\ntext # not\n\n###### six"
    assert demote_headings("Title\n=====\nbody") == "### Title\nbody"
    assert demote_headings("- ## in a list") == "- #### in a list"
    assert demote_headings("a - b = c") == "a - b = c"


# -- writing files --------------------------------------------------------------------------------


def test_chat_export_is_private_and_never_overwrites_without_the_bang(store: Store, tmp_path: Path) -> None:
    state = _chat(store)
    target = tmp_path / "out.md"
    target.write_text("keep me")
    target.chmod(0o644)
    old = os.umask(0o022)
    try:
        with pytest.raises(UsageError, match=r"exists; /export! .*out\.md replaces it"):
            dispatch(state, f"/export {target}")
        assert target.read_text() == "keep me"
        dispatch(state, f"/export! {target}")
        assert target.read_text().startswith("# Read")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        fresh = tmp_path / "fresh.md"
        dispatch(state, f"/export {fresh}")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    with pytest.raises(UsageError, match="usage: /export! FILE"):
        dispatch(state, "/export!")
    dispatch(state, "/help")
    assert "/export! FILE" in state.err.getvalue()  # type: ignore[attr-defined]


def test_history_export_never_overwrites_without_force(store: Store, tmp_path: Path) -> None:
    state = _chat(store)
    conv = store.list_conversations()[0].id
    target = tmp_path / "out.json"
    target.write_text("keep me")
    with pytest.raises(UsageError, match="exists; pass --force"):
        history.export_cmd(store, conv, fmt="json", out_file=target)
    assert target.read_text() == "keep me"
    history.export_cmd(store, conv, fmt="json", out_file=target, force=True)
    assert target.read_text().startswith("{") and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert state.session.turns


# -- history delete asks ----------------------------------------------------------------------------


def _saved(store: Store) -> str:
    rec = store.recorder()
    rec.record(Turn("user", "to be deleted"))
    assert rec.conversation_id
    return rec.conversation_id


class TTYIn(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer, deleted", [("y\n", True), ("yes\n", True), ("\n", False), ("n\n", False),
                                             ("", False)])
def test_delete_asks_on_a_terminal(store: Store, answer: str, deleted: bool) -> None:
    conv = _saved(store)
    err = TTY()
    confirm = history.terminal_confirm(TTYIn(answer), True, err)
    history.delete_cmd(store, conv, err, confirm=confirm)
    assert f"delete conversation {conv} (1 turns): to be deleted? [y/N] " in err.getvalue()
    assert bool(store.list_conversations()) is not deleted
    assert ("nothing deleted" in err.getvalue()) is not deleted


def test_delete_without_a_terminal_needs_yes(store: Store) -> None:
    conv = _saved(store)
    confirm = history.terminal_confirm(io.StringIO("y\n"), False, io.StringIO())
    with pytest.raises(UsageError, match="pass --yes"):
        history.delete_cmd(store, conv, io.StringIO(), confirm=confirm)
    assert store.list_conversations()  # nothing deleted
    history.delete_cmd(store, conv, io.StringIO(), confirm=None)  # what --yes does
    assert not store.list_conversations()


def test_usage_and_finish_events_are_what_the_chat_records(store: Store) -> None:
    # The shared fixture's conversation really went through the recorder (no hand-built rows).
    _chat(store)
    [conversation] = store.list_conversations()
    turns = store.load_turns(conversation.id)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert turns[-1].finish_reason == "error" and turns[-1].content == ""


# -- through the CLI --------------------------------------------------------------------------------


def _chatcli(tmp_path: Path, *args: str) -> Result:
    """`chatcli ARGS` in-process (tests/support/runner.py), with no terminal and its own directories."""
    env = {**os.environ, "CHATCLI_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "TERM": "dumb"}
    return run(list(args), env, cwd=tmp_path)


def test_cli_export_force_and_delete_yes(tmp_path: Path) -> None:
    with Store.open(tmp_path / "data") as opened:
        conv = _saved(opened)
    target = tmp_path / "out.md"
    target.write_text("keep me")
    refused = _chatcli(tmp_path, "history", "export", conv, "-o", str(target))
    assert refused.returncode == 2 and "exists; pass --force" in refused.stderr
    assert refused.stderr.count("\n") == 1 and target.read_text() == "keep me"
    forced = _chatcli(tmp_path, "history", "export", conv, "-o", str(target), "--force")
    assert forced.returncode == 0 and target.read_text().startswith("# to be deleted")
    no_terminal = _chatcli(tmp_path, "history", "delete", conv)
    assert no_terminal.returncode == 2 and "pass --yes" in no_terminal.stderr
    assert conv in _chatcli(tmp_path, "history", "list").stdout
    deleted = _chatcli(tmp_path, "history", "delete", conv[:5], "--yes")
    assert deleted.returncode == 0 and f"deleted conversation {conv}" in deleted.stderr
    assert conv not in _chatcli(tmp_path, "history", "list").stdout
