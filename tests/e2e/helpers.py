"""Helpers for the end-to-end fault suite: run the INSTALLED `chatcli` against the loopback server.

* `run_chatcli(args, env=..., stdin=...)` runs the command as a subprocess with a bounded timeout
  and returns a `Result` (exit code, stdout/stderr bytes and text, peak RSS of the child).
* `chat_env(home, server=...)` builds an isolated environment: HOME/XDG/CHATCLI_HOME under
  `home`, canary keys, base URLs pointing at the loopback server, nothing from the developer.
* `Case` + `run_cases(cases)`: a table-driven case (scripted replies, args, stdin, expected exit
  code / stdout / stderr lines / stored turns) and a runner that plays many cases concurrently,
  each with its own server and home. A cold `chatcli` start imports an SDK (~1-2 s of CPU), so
  running the table a few at a time keeps the suite inside its time budget; each test still
  asserts on exactly one scripted case.
* `stored_turns(home)` opens the history database READ-ONLY and returns every turn.
* `Pty`: the command in a pseudo-terminal (pexpect) with a transcript of every byte it wrote, for
  Ctrl-C, resize and terminal-state checks.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.sse_server import Recorded, Reply, SSEServer

CHATCLI = shutil.which("chatcli", path=str(Path(sys.executable).parent)) or shutil.which("chatcli") or "chatcli"
#: One canary per test run: a key value that must never appear in any output or file.
OPENAI_CANARY = "sk-canary-" + secrets.token_hex(12)
ANTHROPIC_CANARY = "sk-ant-canary-" + secrets.token_hex(12)
#: A gateway secret that does not look like a provider key (sent as a custom header).
GATEWAY_CANARY = "gwtok" + secrets.token_hex(12)
CANARIES = (OPENAI_CANARY, ANTHROPIC_CANARY, GATEWAY_CANARY)
OPENAI_MODEL = "openai:gpt-test"
ANTHROPIC_MODEL = "anthropic:claude-test"
RUN_TIMEOUT = 60.0  # any single run; a hang fails the test instead of blocking CI
WORKERS = 6

# Timings that vary from run to run: "first token 0.21 s", "12.5 tok/s", "retrying in 2 s".
_TIMING = re.compile(r"(?<=first token )\d+(?:\.\d+)? ?m?s\b|\d+(?:\.\d+)? tok/s|(?<=retrying in )\d+(?:\.\d+)? ?s\b")


def chat_env(home: Path, *, server: SSEServer | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_", "CHATCLI_", "GATEWAY_", "NO_COLOR"))}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "CHATCLI_HOME": str(home / "chatcli-data"),
        "OPENAI_API_KEY": OPENAI_CANARY,
        "ANTHROPIC_API_KEY": ANTHROPIC_CANARY,
        "TERM": "xterm-256color",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    if server is not None:
        env["OPENAI_BASE_URL"] = server.openai_url
        env["ANTHROPIC_BASE_URL"] = server.anthropic_url
    if extra:
        env.update(extra)
    return env


@dataclass
class Result:
    args: list[str]
    returncode: int
    out: bytes
    err: bytes
    elapsed: float
    maxrss_kb: int = 0

    @property
    def stdout(self) -> str:
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")

    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def norm_err_lines(self) -> list[str]:
        """stderr lines with timings replaced by `T` (they vary from run to run)."""
        return [_TIMING.sub("T", line) for line in self.err_lines()]


def run_chatcli(args: Sequence[str], *, env: dict[str, str], stdin: bytes | None = b"",
                timeout: float = RUN_TIMEOUT, cwd: Path | None = None,
                poll_rss: bool = False) -> Result:
    """Run the installed chatcli. `stdin=None` gives it /dev/null; bytes are piped and closed."""
    start = time.monotonic()
    proc = subprocess.Popen([CHATCLI, *args], env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0]
    stop = threading.Event()

    def poll() -> None:  # VmHWM of this very child (RUSAGE_CHILDREN mixes concurrent children)
        status = Path(f"/proc/{proc.pid}/status")
        while not stop.wait(0.02):
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
            except (OSError, ValueError):
                return

    poller = threading.Thread(target=poll, daemon=True) if poll_rss else None
    if poller:
        poller.start()
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"chatcli {args} did not finish in {timeout}s\nstdout: {out[-2000:]!r}\n"
                             f"stderr: {err[-2000:]!r}") from None
    finally:
        stop.set()
        if poller:
            poller.join(1)
    return Result(list(args), proc.returncode, out, err, time.monotonic() - start, peak[0])


def children_maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


# -- the history database, read-only -------------------------------------------------------------


def db_path(home: Path) -> Path:
    return home / "chatcli-data" / "history.db"


def stored_turns(home: Path) -> list[dict[str, Any]]:
    """Every stored turn in the order it was first written, as dicts (empty when there is no database)."""
    path = db_path(home)
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM turns ORDER BY id").fetchall()
        return [dict(r) for r in rows]
    finally:
        conn.close()


def turn_summary(home: Path) -> list[tuple[str, str, str | None]]:
    return [(t["role"], t["content"], t["finish_reason"]) for t in stored_turns(home)]


# -- common assertions ---------------------------------------------------------------------------


def assert_no_crash(result: Result) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    for word in ("Exception:", "Error:\n"):
        assert word not in result.stderr, result.stderr


def assert_no_secret(*blobs: bytes | str, where: str = "") -> None:
    for blob in blobs:
        data = blob.encode() if isinstance(blob, str) else blob
        for canary in CANARIES:
            assert canary.encode() not in data, f"canary key leaked in {where}"
            # the distinctive tail also must not appear (a key shortened to its end is still a leak
            # of a third of it; masks like `sk-…abcd` show at most 4 characters)
            assert canary[-12:].encode() not in data, f"canary key tail leaked in {where}"


def line_matching(lines: Iterable[str], pattern: str) -> str:
    rx = re.compile(pattern)
    for line in lines:
        if rx.fullmatch(line):
            return line
    raise AssertionError(f"no stderr line matches {pattern!r} in {list(lines)!r}")


# -- table-driven cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    rc: int
    stdout: str | None = None  # exact stdout (None: not checked)
    err: tuple[str, ...] = ()  # regexes: each must fully match one stderr line (timings -> T)
    err_count: int | None = None  # exact number of non-blank stderr lines
    turns: tuple[tuple[str, str, str | None], ...] | None = None  # (role, content, finish_reason)
    requests: int | None = None  # how many requests the server must have received


@dataclass(frozen=True)
class Case:
    id: str
    replies: tuple[Reply, ...]
    expect: Expect
    args: tuple[str, ...] = ("ask", "-m", OPENAI_MODEL, "hi")
    stdin: bytes | None = None
    env: tuple[tuple[str, str], ...] = ()
    config: str | None = None  # TOML written to the config path
    timeout: float = RUN_TIMEOUT
    note: str = ""


@dataclass
class Played:
    case: Case
    result: Result
    requests: list[Recorded]
    disconnects: list[int]
    turns: list[dict[str, Any]]
    home: Path
    files: dict[str, bytes] = field(default_factory=dict)


def play(case: Case, root: Path) -> Played:
    home = root / case.id.replace("/", "_")
    home.mkdir(parents=True)
    with SSEServer() as server:
        server.add(*case.replies)
        extra = {k: v.replace("{port}", str(server.port)) for k, v in case.env}
        if case.config is not None:
            cfg = home / "config.toml"
            cfg.write_text(case.config.replace("{url}", server.url))
            cfg.chmod(0o600)  # as `chatcli config init` writes it: a 0644 config is warned about (K2)
            extra["CHATCLI_CONFIG"] = str(cfg)
        env = chat_env(home, server=server, extra=extra)
        result = run_chatcli(case.args, env=env, stdin=case.stdin, timeout=case.timeout)
        server.wait_finished(len(server.requests), timeout=0.5)
        requests = list(server.requests)
        disconnects = list(server.disconnects)
    return Played(case, result, requests, disconnects, stored_turns(home), home, collect_files(home))


def collect_files(home: Path) -> dict[str, bytes]:
    files = {}
    for path in home.rglob("*"):
        if path.is_file():
            files[str(path.relative_to(home))] = path.read_bytes()
    return files


def run_cases(cases: Sequence[Case], root: Path, workers: int = WORKERS) -> dict[str, Played]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {c.id: pool.submit(play, c, root) for c in cases}
        out = {}
        for cid, fut in futures.items():
            out[cid] = fut.result()
    return out


def check(played: Played) -> None:
    """The assertions every table case makes."""
    case, result, exp = played.case, played.result, played.case.expect
    ctx = f"\n[{case.id}] rc={result.returncode}\nstdout={result.stdout[:1500]!r}\nstderr={result.stderr[-3000:]!r}"
    assert_no_crash(result)
    assert result.returncode == exp.rc, "exit code" + ctx
    if exp.stdout is not None:
        assert result.stdout == exp.stdout, "stdout" + ctx
    lines = result.norm_err_lines()
    for pattern in exp.err:
        line_matching(lines, pattern)
    if exp.err_count is not None:
        assert len(lines) == exp.err_count, f"stderr lines {lines}" + ctx
    if exp.turns is not None:
        got = [(t["role"], t["content"], t["finish_reason"]) for t in played.turns]
        assert got == list(exp.turns), "stored turns" + ctx
    if exp.requests is not None:
        assert len(played.requests) == exp.requests, f"requests: {len(played.requests)}" + ctx
    assert_no_secret(result.out, result.err, where=f"{case.id} output")
    for name, data in played.files.items():
        assert_no_secret(data, where=f"{case.id} file {name}")
    # stdout carries the reply only: never an escape sequence in a non-TTY run
    assert b"\x1b" not in result.out, "ESC on stdout" + ctx


def batch_fixture(cases: Sequence[Case]) -> Callable[..., Any]:
    """A module-scoped fixture playing (concurrently) the cases of `cases` that were selected."""
    import pytest

    @pytest.fixture(scope="module")
    def played(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Played]:
        module = request.module.__name__
        wanted = set()
        for item in request.session.items:
            spec = getattr(item, "callspec", None)
            if item.module.__name__ == module and spec is not None and "case" in spec.params:
                wanted.add(spec.params["case"].id)
        chosen = [c for c in cases if c.id in wanted]
        return run_cases(chosen, tmp_path_factory.mktemp(module.rsplit(".", 1)[-1]))

    return played


def ids(cases: Sequence[Case]) -> list[str]:
    return [c.id for c in cases]


# -- pseudo-terminal -----------------------------------------------------------------------------


class Pty:
    """`chatcli` in a pty via pexpect, keeping every byte it wrote in `transcript`."""

    def __init__(self, args: Sequence[str], env: dict[str, str], *, rows: int = 30, cols: int = 100,
                 timeout: float = 25.0) -> None:
        import pexpect

        # PYTHONFAULTHANDLER: a chatcli that hangs is sent SIGABRT before it is killed, so the failure
        # shows where each of its threads was (see `_hung`).
        env = {**env, "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": str(cols), "LINES": str(rows),
               "PYTHONFAULTHANDLER": "1"}
        self.child = pexpect.spawn(CHATCLI, list(args), env=env, dimensions=(rows, cols), timeout=timeout,
                                   encoding=None)
        self.transcript = b""

    def expect(self, pattern: bytes | str, timeout: float | None = None) -> None:
        import pexpect

        pat = pattern.encode() if isinstance(pattern, str) else pattern
        try:
            self.child.expect_exact(pat, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF):
            self.transcript += self.child.before or b""
            raise AssertionError(f"pty: {pat!r} not seen; output so far: {self.transcript[-3000:]!r}") from None
        self.transcript += (self.child.before or b"") + (self.child.after or b"")

    def send(self, data: str | bytes) -> None:
        self.child.send(data)

    def sigint(self) -> None:
        self.child.sendintr()

    def finish(self, timeout: float = 20.0) -> int:
        """Wait for exit; return the exit code (128+n for a signal)."""
        import pexpect

        try:
            self.child.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT:
            raise AssertionError(f"pty: chatcli did not exit in {timeout} s; {self._hung()}") from None
        self.transcript += self.child.before or b""
        self.child.close()
        if self.child.exitstatus is not None:
            return int(self.child.exitstatus)
        return 128 + int(self.child.signalstatus or 0)

    def _hung(self) -> str:
        """What it wrote since the last expect, then faulthandler's stacks of its threads (SIGABRT)."""
        import signal

        import pexpect

        self.child.kill(signal.SIGABRT)
        with contextlib.suppress(pexpect.TIMEOUT, pexpect.EOF):
            self.child.expect(pexpect.EOF, timeout=5)
        self.kill()
        # pexpect keeps what a timed-out expect read, so this holds all output since the last match.
        since = self.child.before or b""
        self.transcript += since
        output, marker, stacks = since.partition(b"Fatal Python error")
        return (f"output since the last match (tail): {output[-1500:]!r}\n"
                f"stacks:\n{(marker + stacks).decode('utf-8', 'replace')[-6000:]}")

    def kill(self) -> None:
        if self.child.isalive():
            self.child.kill(9)


def assert_terminal_sane(transcript: bytes) -> None:
    """Cursor shown after the last hide, alternate screen left if entered, SGR reset at the end."""
    hide = transcript.rfind(b"\x1b[?25l")
    if hide != -1:
        assert transcript.rfind(b"\x1b[?25h") > hide, f"cursor left hidden: {transcript[-800:]!r}"
    for mode in (b"1049", b"47", b"1047"):
        enter = transcript.rfind(b"\x1b[?" + mode + b"h")
        if enter != -1:
            assert transcript.rfind(b"\x1b[?" + mode + b"l") > enter, "alternate screen left on"
    last_sgr = None
    for m in re.finditer(rb"\x1b\[([0-9;]*)m", transcript):
        last_sgr = m.group(1)
    assert last_sgr in (None, b"", b"0"), f"SGR not reset at the end: {last_sgr!r} in {transcript[-800:]!r}"
    bp_on = transcript.rfind(b"\x1b[?2004h")
    if bp_on != -1:
        assert transcript.rfind(b"\x1b[?2004l") > bp_on, "bracketed paste left on"
