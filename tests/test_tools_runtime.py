"""ToolRuntime against real MCP servers: the scripted test server (tests/support), over the real SDK.

Servers take about a second to start on a loaded machine, so servers that each provoke one
behaviour share a module-scoped runtime (they are independent sessions, each with its own process
and log); tests that need a runtime of their own (close, the canary, Ctrl-C) make one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcli.tools.runtime import ToolRuntime
from chatcli.tools.servers import parse_servers

SCRIPT = str(Path(__file__).parent / "support" / "mcp_scripted_server.py")
CANARY = "sk-canary-3f9d0c7e1b2a4d5e"


def scripted(*modes: str, **extra: object) -> dict[str, object]:
    return {"command": sys.executable, "args": [SCRIPT, *modes], **extra}


def alive(pid: int) -> bool:
    """True if `pid` is in the process table and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


def wait_for(predicate: object, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolRuntime]:
    servers = parse_servers({
        "ok": scripted("junk"),
        "nocmd": {"command": "chatcli-no-such-mcp-server"},
        "dies": scripted("exit-at-start"),
        "hangs": scripted("hang", startup_timeout=1),
        "slowstart": scripted("slow-start=1.5"),
        "nocwd": scripted(cwd="/nonexistent/dir/for/chatcli"),
        "unset": scripted(env={"TOKEN": "${CHATCLI_TEST_UNSET_VAR}"}),
        "off": scripted(enabled=False),
        "refused": {"url": f"http://127.0.0.1:{_free_port()}/mcp"},  # nothing listens there
    }, source="test.toml", environ={})
    runtime = ToolRuntime(servers, log_dir=tmp_path_factory.mktemp("mcp-logs"))
    runtime.start()
    runtime.wait_ready(timeout=60)
    yield runtime
    runtime.close()


def status(runtime: ToolRuntime, name: str) -> tuple[str, str | None]:
    [found] = runtime.status([name])
    return found.state, found.reason


def test_start_returns_before_servers_are_ready(tmp_path: Path) -> None:
    runtime = ToolRuntime(parse_servers({"s": scripted("slow-start=2")}, source="t"), log_dir=tmp_path)
    try:
        runtime.start()
        assert status(runtime, "s") == ("starting", None)
        [ready] = runtime.wait_ready(["s"], timeout=60)
        assert ready.state == "ready"
    finally:
        runtime.close()


def test_ready_with_tools_and_slow_start(shared: ToolRuntime) -> None:
    [ok] = shared.status(["ok"])
    assert ok.state == "ready"
    assert {"echo", "env_report", "huge", "fail", "slow", "crash"} <= {t.name for t in ok.tools}
    assert status(shared, "slowstart")[0] == "ready"
    assert {t.server for t in shared.list_tools()} == {"ok", "slowstart"}
    assert status(shared, "off") == ("stopped", None)  # disabled: not started by start()


@pytest.mark.parametrize(("name", "reason"), [
    ("nocmd", "MCP server nocmd: command not found: chatcli-no-such-mcp-server"),
    ("dies", "MCP server dies: exited at start (exit code 3)"),
    ("hangs", "MCP server hangs: no answer to initialize within 1 s (startup_timeout)"),
    ("nocwd", "MCP server nocwd: working directory not found: /nonexistent/dir/for/chatcli"),
    ("unset", "MCP server unset: environment variable not set: CHATCLI_TEST_UNSET_VAR"),
    ("refused", "MCP server refused: cannot connect to http://127.0.0.1:"),
])
def test_failures_are_one_line_naming_the_server(shared: ToolRuntime, name: str, reason: str) -> None:
    state, found = status(shared, name)
    assert state == "failed" and found is not None
    assert found == reason or (name == "refused" and found.startswith(reason))
    assert "\n" not in found


def test_failed_server_shows_the_last_lines_of_its_log(shared: ToolRuntime) -> None:
    [dies] = shared.status(["dies"])
    assert dies.log_tail[-1] == "scripted server: cannot open the database, giving up"
    assert dies.log_path is not None and dies.log_path.read_text().count("giving up") == 1


def test_junk_on_stdout_is_logged_and_the_session_goes_on(shared: ToolRuntime) -> None:
    outcome = shared.call("ok", "echo", {"text": "still here"})
    assert (outcome.status, outcome.text, outcome.is_error) == ("ok", "still here", False)
    [ok] = shared.status(["ok"])
    assert ok.log_path is not None
    assert "ignored a non-JSON line on stdout: 'Welcome to the scripted server!" in ok.log_path.read_text()


def test_error_result_is_an_error_outcome(shared: ToolRuntime) -> None:
    outcome = shared.call("ok", "fail", {"message": "the disk is on fire"})
    assert outcome.status == "error" and outcome.is_error
    assert "the disk is on fire" in outcome.text


def test_unknown_tool_and_unknown_server(shared: ToolRuntime) -> None:
    unknown = shared.call("ok", "no_such_tool", {})
    assert unknown.status == "error" and unknown.is_error and "no_such_tool" in unknown.text
    failed = shared.call("dies", "echo", {"text": "x"})
    assert (failed.status, failed.text) == ("error", "MCP server dies: exited at start (exit code 3)")
    nobody = shared.call("nobody", "echo", {})
    assert (nobody.status, nobody.text) == ("error", "no MCP server named 'nobody'")


def test_huge_result_kept_whole_and_capped_for_the_model(shared: ToolRuntime) -> None:
    outcome = shared.call("ok", "huge", {"size": 200_000})
    assert outcome.status == "ok" and len(outcome.text) == 200_000
    for_model = outcome.for_model(64_000)
    assert len(for_model) <= 64_000 and for_model.startswith("HEAD:") and for_model.endswith(":TAIL")
    assert "characters cut ...]" in for_model


def test_image_becomes_a_placeholder(shared: ToolRuntime) -> None:
    outcome = shared.call("ok", "picture")
    assert outcome.status == "ok" and outcome.text.startswith("[image: image/png, ")


def test_call_timeout_then_session_still_usable(shared: ToolRuntime) -> None:
    outcome = shared.call("ok", "slow", {"seconds": 30}, timeout=0.5)
    assert outcome.status == "timeout" and outcome.is_error
    assert outcome.text == "MCP server ok: slow timed out after 0.5 s"
    assert shared.call("ok", "echo", {"text": "next"}).text == "next"


def test_cancel_sends_mcp_cancellation(shared: ToolRuntime) -> None:
    [ok] = shared.status(["ok"])
    assert ok.log_path is not None
    pending = shared.submit("ok", "slow", {"seconds": 31})
    assert wait_for(lambda: "slow(31.0) started" in ok.log_path.read_text())  # type: ignore[union-attr]
    assert pending.wait(0.1) is None  # still running
    outcome = pending.cancel()
    assert (outcome.status, outcome.is_error) == ("interrupted", True)
    # The server got notifications/cancelled and stopped the handler (it logs that on stderr).
    assert wait_for(lambda: "slow(31.0) cancelled" in ok.log_path.read_text())  # type: ignore[union-attr]
    assert shared.call("ok", "echo", {"text": "after cancel"}).text == "after cancel"


def test_ctrl_c_during_call_returns_interrupted(tmp_path: Path) -> None:
    runtime = ToolRuntime(parse_servers({"s": scripted()}, source="t"), log_dir=tmp_path)
    try:
        runtime.start()
        [ready] = runtime.wait_ready(timeout=60)
        assert ready.state == "ready" and ready.log_path is not None
        log = ready.log_path

        def interrupt() -> None:
            if wait_for(lambda: "slow(32.0) started" in log.read_text()):
                os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        outcome = runtime.call("s", "slow", {"seconds": 32})
        assert outcome.status == "interrupted"
        assert wait_for(lambda: "slow(32.0) cancelled" in log.read_text())
    finally:
        runtime.close()


def test_dies_mid_call(tmp_path: Path) -> None:
    runtime = ToolRuntime(parse_servers({"s": scripted()}, source="t"), log_dir=tmp_path)
    try:
        runtime.start()
        runtime.wait_ready(timeout=60)
        outcome = runtime.call("s", "crash")
        assert (outcome.status, outcome.text) == ("error", "MCP server s: exited during a call (exit code 7) to crash")
        assert status(runtime, "s") == ("failed", "MCP server s: exited during a call (exit code 7)")
        runtime.start(["s"])  # `/tools on s`: a failed server starts again
        [again] = runtime.wait_ready(["s"], timeout=60)
        assert again.state == "ready"
        assert runtime.call("s", "echo", {"text": "back"}).text == "back"
    finally:
        runtime.close()


def test_environment_is_minimal_and_the_canary_never_leaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY + "-anthropic")
    monkeypatch.setenv("SERVER_TOKEN", "tok-for-the-server")
    servers = parse_servers({"s": scripted(env={"TOKEN": "${SERVER_TOKEN}"})}, source="t", environ=os.environ)
    runtime = ToolRuntime(servers, log_dir=tmp_path / "logs")
    try:
        runtime.start()
        runtime.wait_ready(timeout=60)
        outcome = runtime.call("s", "env_report")
        env = json.loads(outcome.text)
        assert env["TOKEN"] == "tok-for-the-server"
        # LC_CTYPE: Python sets it in its own process under the C locale (PEP 538 coercion).
        assert set(env) - {"LC_CTYPE"} <= {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "TOKEN"}
        assert CANARY not in outcome.text
        runtime.call("s", "fail", {"message": "log something"})
    finally:
        runtime.close()
    logs = list((tmp_path / "logs").iterdir())
    assert logs
    for log in logs:
        assert oct(log.stat().st_mode & 0o777) == "0o600"
        assert CANARY not in log.read_text()
    assert oct((tmp_path / "logs").stat().st_mode & 0o777) == "0o700"


def test_close_leaves_no_process_behind(tmp_path: Path) -> None:
    servers = parse_servers({"polite": scripted("grandchild"), "stubborn": scripted("stubborn"),
                             "also": scripted()}, source="t")
    runtime = ToolRuntime(servers, log_dir=tmp_path)
    runtime.start()
    assert all(s.state == "ready" for s in runtime.wait_ready(timeout=60))
    pids = [int(runtime.call(name, "pid").text) for name in ("polite", "stubborn", "also")]
    grandchild = int(runtime.call("polite", "child_pid").text)
    assert all(alive(pid) for pid in [*pids, grandchild])
    started = time.monotonic()
    runtime.close()
    took = time.monotonic() - started
    # close() gives up after its 3 s budget, so "gone when close returns" is the 3 s promise,
    # including the server that ignores both stdin closing and SIGTERM.
    assert [pid for pid in [*pids, grandchild] if alive(pid)] == [], f"close took {took:.2f} s"
    assert all(group_members(pid) == [] for pid in pids)
    assert [s.state for s in runtime.status()] == ["stopped", "stopped", "stopped"]


def test_streamable_http_server(tmp_path: Path) -> None:
    port = _free_port()
    with open(tmp_path / "http-server.log", "wb") as log:
        server = subprocess.Popen([sys.executable, SCRIPT, f"http={port}"], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log)
    try:
        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        assert wait_for(listening, 60)
        servers = parse_servers({"web": {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Test": "1"}}},
                                source="t")
        runtime = ToolRuntime(servers, log_dir=tmp_path / "logs")
        try:
            runtime.start()
            [web] = runtime.wait_ready(timeout=60)
            assert web.state == "ready", web.reason
            assert runtime.call("web", "echo", {"text": "over http"}).text == "over http"
        finally:
            runtime.close()
    finally:
        server.terminate()
        server.wait(10)


def test_sdk_loggers_write_to_the_log_file_not_the_terminal(tmp_path: Path,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    import logging

    # The routing is process-wide and follows the newest runtime: start one (a server that fails
    # at once is enough) so this test does not depend on which runtime another test started last.
    runtime = ToolRuntime(parse_servers({"nocmd": {"command": "chatcli-no-such-mcp-server"}}, source="t"),
                          log_dir=tmp_path)
    try:
        runtime.start()
        runtime.wait_ready(timeout=60)
        logging.getLogger("mcp.client.session").warning("sdk says: something odd %s", "here")
        logging.getLogger("httpx2").error("transport says: boom")
    finally:
        runtime.close()
    out, err = capfd.readouterr()
    assert "sdk says" not in out + err and "transport says" not in out + err
    client_log = (tmp_path / "mcp-client.log").read_text()
    assert "sdk says: something odd here" in client_log and "transport says: boom" in client_log


def test_stop_one_server_then_start_it_again(shared: ToolRuntime) -> None:
    # Last in the module: it stops a shared server (`/tools off slowstart`, then `/tools on`).
    pid = int(shared.call("slowstart", "pid").text)
    shared.stop(["slowstart"])
    assert status(shared, "slowstart") == ("stopped", None)
    assert not alive(pid)
    assert shared.call("slowstart", "echo", {"text": "x"}).status == "error"
    assert status(shared, "ok")[0] == "ready"  # the others are untouched
    shared.start(["slowstart"])
    [again] = shared.wait_ready(["slowstart"], timeout=60)
    assert again.state == "ready"
