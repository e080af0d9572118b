# On the installed binary: PYTHONIOENCODING and the C locale are read once, when the interpreter starts.
"""A terminal that is not UTF-8: nothing crashes, nothing stored is lost (issue 16, item 2).

The INSTALLED `chatcli` runs as a subprocess (as in tests/test_cli_ask.py) against the loopback
SSE server, under the two ways a user gets a non-UTF-8 stdout: an explicit Latin-1 one
(`PYTHONIOENCODING=iso-8859-1`) and the C locale without UTF-8 mode (`LC_ALL=C PYTHONUTF8=0`,
ASCII, argv and environment read with surrogateescape). The history database is then read
back read-only to check that what was stored is the exact text, whatever the terminal showed.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatcli import termenc
from tests.support.binary import CHATCLI, cli_env, user_text
from tests.support.sse_server import Reply, SSEServer, openai_chunks

pytestmark = pytest.mark.skipif(CHATCLI is None, reason="the chatcli command is not installed (pip install -e .)")

REPLY = "Party 🎉 time, café ☕ — 漢字 done"
LATIN1 = {"PYTHONIOENCODING": "iso-8859-1"}
C_LOCALE = {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "", "PYTHONCOERCECLOCALE": "0"}
VARIANTS = [pytest.param(LATIN1, id="latin1"), pytest.param(C_LOCALE, id="c-locale")]


@pytest.fixture
def server() -> Any:
    with SSEServer() as s:
        yield s


def reply(text: str = REPLY) -> Reply:
    half = len(text) // 2  # the emoji's neighbours arrive in two chunks
    return Reply.sse(openai_chunks([text[:half], text[half:]], finish="stop", usage=(5, 2)))


def env_for(server: SSEServer, variant: dict[str, str]) -> dict[str, str]:
    env = cli_env(server, **variant)
    for name in ("LANG", "LANGUAGE", "LC_CTYPE"):
        env.pop(name, None)
    if not env.get("PYTHONIOENCODING"):
        env.pop("PYTHONIOENCODING", None)
    return env


def run_raw(args: list[str | bytes], env: dict[str, str], *, input: bytes | None = None
            ) -> subprocess.CompletedProcess[bytes]:
    assert CHATCLI is not None
    stdin = None if input is not None else subprocess.DEVNULL
    return subprocess.run([CHATCLI, *args], env=env, input=input, stdin=stdin, capture_output=True, timeout=60)


def encoding_of(variant: dict[str, str]) -> str:
    return "iso-8859-1" if variant is LATIN1 else "ascii"


def stored(env: dict[str, str]) -> list[tuple[str, str, str]]:
    """(title, role, content) of every saved turn, read from the database read-only."""
    db = Path(env["CHATCLI_HOME"]) / "history.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return list(conn.execute("SELECT c.title, t.role, t.content FROM turns t JOIN conversations c "
                                 "ON c.id = t.conversation_id ORDER BY t.id"))
    finally:
        conn.close()


def assert_no_crash(result: subprocess.CompletedProcess[bytes]) -> None:
    err = result.stderr.decode("ascii", "backslashreplace")
    assert result.returncode == 0, err
    assert b"internal error" not in result.stderr and b"Traceback" not in result.stderr, err
    assert b"UnicodeEncodeError" not in result.stderr and b"surrogates" not in result.stderr, err


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("view", ["--plain", "--markdown"])
def test_an_emoji_reply_is_shown_replaced_and_stored_exactly(server: SSEServer, variant: dict[str, str],
                                                             view: str) -> None:
    server.add(reply())
    env = env_for(server, variant)
    result = run_raw(["ask", view, "hello"], env)
    assert_no_crash(result)
    shown = result.stdout.decode(encoding_of(variant))  # the bytes are valid in the terminal's encoding
    assert "Party ?? time" in shown  # a double-width emoji becomes two visible cells
    assert "done" in shown and "漢" not in shown
    if view == "--markdown":  # the panel's box drawing has ASCII look-alikes, not "?"
        assert "+- " in shown and "|" in shown and "╭" not in shown
    assert b"first token" in result.stderr + result.stdout  # the footer (in the panel's border) too
    assert stored(env) == [("hello", "user", "hello"), ("hello", "assistant", REPLY)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_history_list_and_show_with_an_emoji_title(server: SSEServer, variant: dict[str, str]) -> None:
    server.add(reply())
    utf8 = cli_env(server)
    assert run_raw(["ask", "plan the 🎉 party"], utf8).returncode == 0  # stored from a UTF-8 terminal
    env = env_for(server, variant)
    listed = run_raw(["history", "list"], env)
    assert_no_crash(listed)
    assert "plan the ?? party" in listed.stdout.decode(encoding_of(variant))
    conv_id = listed.stdout.decode(encoding_of(variant)).splitlines()[1].split()[0]
    shown = run_raw(["history", "show", conv_id], env)
    assert_no_crash(shown)
    assert "Party ?? time" in shown.stdout.decode(encoding_of(variant))
    exported = run_raw(["history", "export", conv_id], env)  # markdown to stdout
    assert_no_crash(exported)
    assert "Party ?? time" in exported.stdout.decode(encoding_of(variant))
    assert stored(env)[-1] == ("plan the 🎉 party", "assistant", REPLY)


@pytest.mark.parametrize("variant", VARIANTS)
def test_json_output_stays_exact(server: SSEServer, variant: dict[str, str]) -> None:
    # A machine reads --json: escapes, never "?", whatever the terminal's encoding.
    server.add(reply())
    env = env_for(server, variant)
    result = run_raw(["ask", "--json", "hello"], env)
    assert_no_crash(result)
    payload = json.loads(result.stdout.decode(encoding_of(variant)))
    assert payload["text"] == REPLY
    exported = run_raw(["history", "export", "--json", payload["conversation_id"]], env)
    assert_no_crash(exported)
    document = json.loads(exported.stdout.decode(encoding_of(variant)))
    assert [turn["content"] for turn in document["turns"]] == ["hello", REPLY]


def test_non_ascii_arguments_under_the_c_locale(server: SSEServer) -> None:
    server.add(reply("ok"))
    env = env_for(server, C_LOCALE)
    prompt = "Résumé du 漢字 🎉"
    result = run_raw(["ask", "-s", "Réponds en français", prompt], env)
    assert_no_crash(result)
    assert user_text(server) == prompt  # the UTF-8 bytes typed, not surrogates, not "?"
    body = server.requests[0].json
    assert body is not None and body["messages"][0] == {"role": "system", "content": "Réponds en français"}
    assert stored(env)[0] == (prompt, "user", prompt)


def test_non_ascii_environment_under_the_c_locale(server: SSEServer) -> None:
    server.add(reply("ok"))
    env = env_for(server, C_LOCALE)
    env["CHATCLI_SYSTEM"] = "Réponds en français ☕"
    result = run_raw(["ask", "salut"], env)
    assert_no_crash(result)
    body = server.requests[0].json
    assert body is not None and body["messages"][0]["content"] == "Réponds en français ☕"


def test_an_argument_that_is_not_utf8_is_refused_clearly(server: SSEServer) -> None:
    env = env_for(server, C_LOCALE)
    result = run_raw(["ask", b"caf\xe9"], env)  # Latin-1 bytes from a Latin-1 terminal
    assert result.returncode == 2
    err = result.stderr.decode("ascii", "backslashreplace")
    assert err.count("\n") == 1 and "not UTF-8" in err and "0xe9" in err and "offset 3" in err
    assert server.requests == []


def test_piped_non_ascii_stdin_under_the_c_locale(server: SSEServer) -> None:
    server.add(reply("ok"))
    env = env_for(server, C_LOCALE)
    result = run_raw(["ask"], env, input="naïve 🎉\n".encode())
    assert_no_crash(result)
    assert user_text(server) == "naïve 🎉\n"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("args", [["--help"], ["ask", "--help"], ["models"], ["config", "show"],
                                  ["config", "path"]])
def test_other_output_paths_do_not_crash(server: SSEServer, variant: dict[str, str], args: list[str],
                                         tmp_path: Path) -> None:
    cfg = tmp_path / "réglages 🎉.toml"  # a path and an alias that the terminal cannot show
    cfg.write_text('[aliases]\nfete = "openai:modèle-🎉"\n')
    env = env_for(server, variant)
    result = run_raw([*args, "--config", str(cfg)] if args[0] != "--help" else args, env)
    assert_no_crash(result)


def test_a_warning_with_an_emoji_on_an_ascii_stderr(server: SSEServer, tmp_path: Path) -> None:
    missing = tmp_path / "nope 🎉.toml"
    env = env_for(server, C_LOCALE)
    result = run_raw(["config", "path", "--config", str(missing)], env)
    assert_no_crash(result)
    # The file name is bytes the C locale could not read: written back as those bytes, like `ls`.
    assert result.stdout.strip().endswith("nope 🎉.toml".encode())


def test_look_alikes_keep_the_width() -> None:
    termenc.register()
    assert "╭─ x ─╮".encode("ascii", termenc.HANDLER) == b"+- x -+"
    assert "a🎉b".encode("iso-8859-1", termenc.HANDLER) == b"a??b"
    assert "e\u0301 ❤\ufe0f".encode("ascii", termenc.HANDLER) == b"e ?"
    assert "é".encode("iso-8859-1", termenc.HANDLER) == b"\xe9"  # what the encoding has, it keeps


def test_json_for_escapes_only_what_the_stream_lacks() -> None:
    class Latin1:
        encoding = "iso-8859-1"

    text = json.dumps({"t": "é 🎉 ☕"}, ensure_ascii=False)
    out = termenc.json_for(Latin1(), text)
    assert out == '{"t": "é \\ud83c\\udf89 \\u2615"}'
    assert json.loads(out) == {"t": "é 🎉 ☕"}
    assert termenc.json_for(sys.stdout, "plain") == "plain"
