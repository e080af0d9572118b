"""K1-K6, T10 and the key-handling facts of docs/architecture.md "Keys", end to end.

A canary key (`sk-canary-<random>`, `sk-ant-canary-<random>`) is in the environment of every run.
It must appear nowhere: stdout, stderr (also with `--debug` tracebacks), `config show`, exported
transcripts, the database file, the input history file. Servers here even ECHO the key in their
error messages (some real ones quote it), so the redaction of server text is exercised too.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    ANTHROPIC_CANARY,
    ANTHROPIC_MODEL,
    CANARIES,
    CHATCLI,
    GATEWAY_CANARY,
    OPENAI_CANARY,
    OPENAI_MODEL,
    Case,
    Expect,
    Played,
    Pty,
    assert_no_secret,
    batch_fixture,
    chat_env,
    collect_files,
    ids,
    run_chatcli,
    stored_turns,
)
from tests.support.sse_server import (
    Reply,
    SSEServer,
    anthropic_error,
    anthropic_events,
    openai_chunks,
    openai_error,
    sse,
)

ASK = ("ask", "-m", OPENAI_MODEL, "hi")
ASK_A = ("ask", "-m", ANTHROPIC_MODEL, "hi")
ECHO = f"Incorrect API key provided: {OPENAI_CANARY}. Bearer {OPENAI_CANARY}"
ECHO_A = f"invalid x-api-key {ANTHROPIC_CANARY}"
NO_RETRY = "[providers.openai]\nmax_retries = 0\n[providers.anthropic]\nmax_retries = 0\n"
# A named provider whose key comes from a variable not named like a key, plus a gateway header
# secret that does not look like a provider key; the server echoes both.
GATEWAY = ('[providers.gw]\ntype = "openai"\nbase_url = "{url}/v1"\napi_key_env = "MYCRED"\nmax_retries = 0\n'
           'headers = { "x-gateway-token" = "${GATEWAY_KEY}" }\n')
GW_ENV = (("MYCRED", OPENAI_CANARY), ("GATEWAY_KEY", GATEWAY_CANARY), ("OPENAI_API_KEY", ""))

# Every error path, the key echoed by the server each time. `--debug` forces tracebacks.
CASES = [
    Case("K3-401-echoes-key", (Reply.error(401, ECHO, code="invalid_api_key"),), Expect(1), ASK),
    Case("K3-401-echoes-key-debug", (Reply.error(401, ECHO, code="invalid_api_key"),), Expect(1),
         ("--debug", *ASK)),
    Case("K3-429-echoes-key", (Reply.error(429, ECHO, code="rate_limit_exceeded"),), Expect(1), ASK,
         config=NO_RETRY),
    Case("K3-500-debug-traceback", (Reply.error(500, ECHO),), Expect(1), ("--debug", *ASK), config=NO_RETRY),
    Case("K3-mid-stream-error-echoes-key",
         (Reply.sse([*openai_chunks(["Hel"], finish=None, done=False), openai_error(ECHO, code=500)]),),
         Expect(3), ("--debug", *ASK)),
    Case("K3-malformed-stream-debug",
         (Reply.sse([*openai_chunks(["Hel"], finish=None, done=False), f"data: {{{OPENAI_CANARY}\n\n".encode()]),),
         Expect(3), ("--debug", *ASK)),
    Case("K3-anthropic-401-debug", (Reply.error(401, ECHO_A, type="authentication_error", dialect="anthropic"),),
         Expect(1), ("--debug", *ASK_A)),
    Case("K3-anthropic-mid-stream-error",
         (Reply.sse([*anthropic_events(["Hel"], stop_reason=None)[:-1], anthropic_error("api_error", ECHO_A)]),),
         Expect(3), ("--debug", *ASK_A)),
    Case("K3-custom-key-env-and-gateway-header-debug",
         (Reply.error(401, f"{ECHO}; header x-gateway-token: {GATEWAY_CANARY}", code="invalid_api_key"),),
         Expect(1), ("--debug", "ask", "-m", "gw:m1", "hi"), env=GW_ENV, config=GATEWAY),
    Case("K3-gateway-mid-stream-echo",
         (Reply.sse([*openai_chunks(["Hel"], finish=None, done=False),
                     openai_error(f"token {GATEWAY_CANARY} / {OPENAI_CANARY} rejected", code=500)]),),
         Expect(3), ("--debug", "ask", "-m", "gw:m1", "hi"), env=GW_ENV, config=GATEWAY),
    Case("K3-html-debug", (Reply.html(),), Expect(1), ("--debug", *ASK)),
    Case("K3-json-output", (Reply.sse(openai_chunks(["Hel", "lo"], usage=(3, 2))),), Expect(0),
         (*ASK[:3], "--json", "hi")),
]

played = batch_fixture(CASES)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_canary_never_leaks(case: Case, played: dict[str, Played]) -> None:
    run = played[case.id]
    res = run.result
    assert res.returncode == case.expect.rc, res.stderr
    assert_no_secret(res.out, res.err, where=f"{case.id} stdout/stderr")
    for name, data in run.files.items():
        assert_no_secret(data, where=f"{case.id}: {name}")
    # masked as `sk-…abcd` at most: never more of the key after "Bearer"
    assert not re.search(r"Bearer sk-[A-Za-z0-9_-]{6}", res.stderr), res.stderr
    if "--debug" in case.args and case.expect.rc == 1:
        assert "Traceback" in res.stderr, "--debug shows no traceback"
    if "--debug" not in case.args:
        assert "Traceback" not in res.stderr
    # the key did go to the (right) server, in a header, never in the body
    for req in run.requests:
        assert not any(c.encode() in req.body for c in CANARIES)
        assert any(c in " ".join(req.headers.values()) for c in CANARIES)
        if "gw:m1" in case.args:
            assert req.headers.get("x-gateway-token") == GATEWAY_CANARY


def test_K4_config_show_masks_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[providers.gw]\ntype = "openai"\nbase_url = "https://gw.example.test/v1"\n'
                   'api_key_env = "GATEWAY_KEY"\nheaders = { "x-api-key" = "${GATEWAY_KEY}" }\n')
    os.chmod(cfg, 0o600)
    env = chat_env(tmp_path, extra={"GATEWAY_KEY": OPENAI_CANARY + "-gw", "CHATCLI_CONFIG": str(cfg)})
    for args in (["config", "show"], ["config", "path"], ["models"]):
        res = run_chatcli(args, env=env)
        assert res.returncode == 0, res.stderr
        assert_no_secret(res.out, res.err, where=" ".join(args))
        assert "Traceback" not in res.stderr
    shown = run_chatcli(["config", "show"], env=env).stdout
    assert "sk-…" in shown, shown  # masked, recognisably


def test_K5_key_on_the_command_line_is_refused_not_echoed(tmp_path: Path) -> None:
    res = run_chatcli(["ask", "--api-key", OPENAI_CANARY, "hi"], env=chat_env(tmp_path))
    assert res.returncode == 2
    assert_no_secret(res.out, res.err, where="--api-key usage error")
    assert stored_turns(tmp_path) == []


def test_K6_exported_transcripts_hold_no_key(tmp_path: Path) -> None:
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["Hel", "lo"])))
        env = chat_env(tmp_path, server=server)
        res = run_chatcli(list(ASK), env=env)
        assert res.returncode == 0, res.stderr
    conv = stored_turns(tmp_path)[0]["conversation_id"]
    out_file = tmp_path / "export.md"
    for args in (["history", "export", conv], ["history", "export", conv, "--json"],
                 ["history", "export", conv, "-o", str(out_file)], ["history", "show", conv], ["history", "list"]):
        res = run_chatcli(args, env=env)
        assert res.returncode == 0, (args, res.stderr)
        assert_no_secret(res.out, res.err, where=" ".join(args))
    assert "Hello" in out_file.read_text()
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    assert_no_secret(out_file.read_bytes(), where="export file")


def test_K1_files_private_under_umask_022_and_input_history_has_no_key(tmp_path: Path) -> None:
    """K1: with umask 022, the data dir is 0700 and the database, its -wal/-shm and the input
    history 0600; `config init` writes a 0600 file in a 0700 dir. A line holding a key typed at the
    prompt never reaches the input history file."""
    old = os.umask(0o022)
    try:
        with SSEServer() as server:
            server.add(Reply.sse(openai_chunks(["Noted."])))
            env = chat_env(tmp_path, server=server)
            pty = Pty(["-m", OPENAI_MODEL], env)
            try:
                pty.expect(b"\x1b[?2004h")
                pty.send(f"my key is {OPENAI_CANARY}\r".encode())
                pty.expect(b"Noted.")
                pty.expect(b"\x1b[?2004h")
                pty.send(b"\x04")
                assert pty.finish() == 0
            finally:
                pty.kill()
            init = run_chatcli(["config", "init"], env=env)
            assert init.returncode == 0, init.stderr
    finally:
        os.umask(old)
    data = tmp_path / "chatcli-data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [p for p in data.iterdir() if p.is_file()]
    assert any(p.name == "history.db" for p in files), files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} is {oct(path.stat().st_mode)}"
    history_files = [p for p in files if "history" in p.name and not p.name.startswith("history.db")]
    assert history_files, f"no input history file in {files}"
    for path in history_files:
        assert_no_secret(path.read_bytes(), where=str(path))
    cfg_dir = tmp_path / ".config" / "chatcli"
    cfg = cfg_dir / "config.toml"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg_dir.stat().st_mode) == 0o700
    assert_no_secret(cfg.read_bytes(), where="config.toml")


def test_K2_open_config_file_is_warned_about(tmp_path: Path) -> None:
    """K2: a config file readable by others: a warning naming the file (the run still works)."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('default_model = "openai:gpt-test"\n')
    os.chmod(cfg, 0o644)
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["one"])))
        res = run_chatcli(["ask", "hi"], env=chat_env(tmp_path, server=server, extra={"CHATCLI_CONFIG": str(cfg)}))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert [line for line in res.err_lines() if "warning" in line and str(cfg) in line], res.stderr


def test_K2_open_dotenv_holding_a_key_is_warned_about(tmp_path: Path) -> None:
    """K2 for `.env`: a key file readable by others (0644 in the current directory) gets a warning
    naming the file; the key in it is used and never printed."""
    work = tmp_path / "project"
    work.mkdir()
    dotenv = work / ".env"
    dotenv.write_text(f"OPENAI_API_KEY={OPENAI_CANARY}\n")
    os.chmod(dotenv, 0o644)
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["one"])))
        env = chat_env(tmp_path, server=server)
        del env["OPENAI_API_KEY"]
        res = run_chatcli(list(ASK), env=env, cwd=work)
        sent = server.requests[0].headers.get("authorization", "")
    assert res.returncode == 0, res.stderr
    assert OPENAI_CANARY in sent  # the .env key was used
    assert_no_secret(res.out, res.err)
    assert [line for line in res.err_lines() if str(dotenv) in line], res.stderr


def test_K2_open_database_is_warned_about(tmp_path: Path) -> None:
    """K2: a history database readable by others: a warning naming the file (the run still works)."""
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["one"])), Reply.sse(openai_chunks(["two"])))
        env = chat_env(tmp_path, server=server)
        first = run_chatcli(list(ASK), env=env)
        assert first.returncode == 0, first.stderr
        db = tmp_path / "chatcli-data" / "history.db"
        os.chmod(db, 0o644)
        second = run_chatcli(list(ASK), env=env)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    warned = [line for line in second.err_lines() if "accessible to other users" in line and str(db) in line]
    assert warned, second.stderr
    assert [t["content"] for t in stored_turns(tmp_path)] == ["hi", "one", "hi", "two"]


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_T10_redirect_to_another_origin_never_carries_the_key(tmp_path: Path, dialect: str) -> None:
    """T10: base_url answers 307 to a second loopback server (another origin). The key (in
    Authorization or X-Api-Key) and a gateway header never reach it; the redirect is an error."""
    cfg = tmp_path / "config.toml"
    with SSEServer() as origin, SSEServer() as other:
        other.default = Reply.sse(openai_chunks(["stolen"]) if dialect == "openai" else anthropic_events(["stolen"]))
        target = (other.openai_url + "/chat/completions") if dialect == "openai" else (other.url + "/v1/messages")
        origin.add(Reply.redirect(target), Reply.redirect(target))
        base = origin.openai_url if dialect == "openai" else origin.anthropic_url
        cfg.write_text(f'[providers.gw]\ntype = "{dialect}"\nbase_url = "{base}"\n'
                       f'api_key_env = "GATEWAY_KEY"\nheaders = {{ "x-gateway-key" = "${{GATEWAY_KEY}}" }}\n'
                       f'max_retries = 1\n')
        os.chmod(cfg, 0o600)
        env = chat_env(tmp_path, extra={"CHATCLI_CONFIG": str(cfg), "GATEWAY_KEY": OPENAI_CANARY})
        res = run_chatcli(["ask", "-m", "gw:m1", "hi"], env=env)
        time.sleep(0.2)
        leaked = [r for r in other.requests if any(c in " ".join(r.headers.values()) for c in CANARIES)]
    assert not leaked, f"the key reached another origin: {leaked[0].headers}"
    assert other.requests == [], "the redirect was followed to another origin"
    assert res.returncode == 1, res.stderr
    assert "redirect" in res.stderr and "Traceback" not in res.stderr
    assert_no_secret(res.out, res.err)


def test_plain_http_to_a_remote_host_warns(tmp_path: Path) -> None:
    """A non-HTTPS base_url to a host that is not this machine gets a warning naming it. (The
    request itself goes through a loopback HTTP proxy, so no traffic leaves the machine.) A
    loopback http:// URL gets no such warning."""
    with SSEServer() as proxy:
        proxy.add(Reply.sse(openai_chunks(["ok"])))
        env = chat_env(tmp_path, extra={
            "OPENAI_BASE_URL": "http://llm.example.test/v1", "HTTP_PROXY": proxy.url, "http_proxy": proxy.url,
            "NO_PROXY": "", "no_proxy": ""})
        remote = run_chatcli(list(ASK), env=env)
        proxy.add(Reply.sse(openai_chunks(["ok"])))
        local = run_chatcli(list(ASK), env=chat_env(tmp_path, server=proxy))
    assert remote.returncode == 0, remote.stderr
    warning = [line for line in remote.err_lines() if "not HTTPS" in line]
    assert len(warning) == 1, remote.stderr
    assert "http://llm.example.test/v1" in warning[0]
    assert local.returncode == 0 and "not HTTPS" not in local.stderr


def test_debug_env_traceback_redacted(tmp_path: Path) -> None:
    """CHATCLI_DEBUG=1 and a crash path outside the provider (a broken database file is moved
    aside; an unreadable data dir): whatever is printed holds no key."""
    data = tmp_path / "chatcli-data"
    data.mkdir(mode=0o700)
    (data / "history.db").write_bytes(b"not a database " + OPENAI_CANARY.encode())
    with SSEServer() as server:
        server.add(Reply.sse(openai_chunks(["ok"])))
        env = chat_env(tmp_path, server=server, extra={"CHATCLI_DEBUG": "1"})
        res = run_chatcli(list(ASK), env=env)
    assert res.returncode == 0, res.stderr
    assert_no_secret(res.out, res.err)
    for name, blob in collect_files(tmp_path).items():
        if "corrupt" in name:
            continue  # the user's own (moved-aside) file, kept byte for byte
        assert_no_secret(blob, where=name)


def test_key_absent_from_process_argv(tmp_path: Path) -> None:
    """Keys never live in argv: /proc/<pid>/cmdline of a running chatcli holds no key."""
    with SSEServer() as server:
        server.add(Reply.sse([*openai_chunks(["x"], finish=None, done=False), sse("[DONE]")], stall=3))
        env = chat_env(tmp_path, server=server)
        proc = subprocess.Popen([CHATCLI, *ASK], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while not server.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        finally:
            proc.kill()
            proc.communicate()
    assert_no_secret(cmdline, where="argv")


@pytest.mark.parametrize(("url", "key", "warns"), [
    ("http://llm.example.test/v1", True, True),
    ("http://192.168.1.20:11434/v1", True, True),
    ("http://192.168.1.20:11434/v1", False, False),  # keyless LAN server: nothing secret travels
    ("https://llm.example.test/v1", True, False),
    ("http://127.0.0.1:8080/v1", True, False),
    ("http://127.3.4.5:8080/v1", True, False),
    ("http://localhost:11434/v1", True, False),
    ("http://[::1]:8080/v1", True, False),
    ("http://[::1", True, False),  # malformed: reported when the client is built, not here
])
def test_plain_http_warning_rule(url: str, key: bool, warns: bool) -> None:
    from chatcli.providers._common import insecure_base_url
    from chatcli.redact import Secret
    from chatcli.settings import ProviderConfig

    config = ProviderConfig(name="p", type="openai", base_url=url, api_key=Secret("k" * 20) if key else None)
    message = insecure_base_url(config)
    assert (message is not None) == warns, message
    if warns:
        assert message is not None and url in message and "not HTTPS" in message
