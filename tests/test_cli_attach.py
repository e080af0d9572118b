"""`chatcli ask -a/--attach`, piped images and PDFs, and `--role`: the real CLI in-process
(tests/support/runner.py), both SDKs against the loopback server, the recorded request bodies checked for the
exact part shapes. Media are tiny real files from tests/support/media.py."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support import media
from tests.support.binary import KEY, assert_clean, cli_env
from tests.support.runner import run
from tests.support.sse_server import Reply, SSEServer, anthropic_events, openai_chunks, openai_error

PNG = media.png()
PDF = media.pdf()


@pytest.fixture
def server() -> Any:
    with SSEServer() as s:
        yield s


def ok_openai() -> Reply:
    return Reply.sse(openai_chunks(["A red square."], usage=(5, 2)))


def ok_anthropic() -> Reply:
    return Reply.sse(anthropic_events(["A red square."]))


def anthropic_env(server: SSEServer, **extra: str) -> dict[str, str]:
    return cli_env(server, ANTHROPIC_BASE_URL=server.anthropic_url, ANTHROPIC_API_KEY=KEY,
                   CHATCLI_MODEL="anthropic:claude-test", **extra)


def last_content(server: SSEServer, index: int = -1) -> Any:
    body = server.requests[index].json
    assert body is not None
    return body["messages"][-1]["content"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def stored_turns(home: Path) -> int:
    db = next(home.rglob("*.sqlite*"), None) or next(home.rglob("*.db"), None)
    if db is None:
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from turns").fetchone()[0])


# -- the part shapes ---------------------------------------------------------------------------------

def test_openai_image_file(server: SSEServer, tmp_path: Path) -> None:
    (tmp_path / "shot.png").write_bytes(PNG)
    server.add(ok_openai())
    result = run(["ask", "-a", str(tmp_path / "shot.png"), "describe"], cli_env(server))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "A red square.\n"
    assert last_content(server) == [{"type": "text", "text": "describe"},
                                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}}]
    assert_clean(result)


def test_anthropic_image_file(server: SSEServer, tmp_path: Path) -> None:
    (tmp_path / "shot.png").write_bytes(PNG)
    server.add(ok_anthropic())
    result = run(["ask", "-a", str(tmp_path / "shot.png"), "describe"], anthropic_env(server))
    assert result.returncode == 0, result.stderr
    assert last_content(server) == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)}},
        {"type": "text", "text": "describe"}]


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
@pytest.mark.parametrize(("data", "media_type"), [(media.jpeg(), "image/jpeg"), (media.gif(), "image/gif"),
                                                  (media.webp(), "image/webp")], ids=["jpeg", "gif", "webp"])
def test_jpeg_gif_and_webp_files(server: SSEServer, tmp_path: Path, dialect: str, data: bytes,
                                 media_type: str) -> None:
    # Named .png on purpose: the kind comes from the bytes, not the name.
    (tmp_path / "picture.png").write_bytes(data)
    server.add(ok_openai() if dialect == "openai" else ok_anthropic())
    env = cli_env(server) if dialect == "openai" else anthropic_env(server)
    result = run(["ask", "--no-save", "-a", str(tmp_path / "picture.png"), "describe"], env)
    assert result.returncode == 0, result.stderr
    if dialect == "openai":
        assert last_content(server) == [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{b64(data)}"}}]
    else:
        assert last_content(server) == [
            {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": b64(data)}},
            {"type": "text", "text": "describe"}]


def test_piped_pdf_openai(server: SSEServer) -> None:
    server.add(ok_openai())
    result = run(["ask", "summarise"], cli_env(server), input=PDF)
    assert result.returncode == 0, result.stderr
    assert last_content(server) == [
        {"type": "text", "text": "summarise"},
        {"type": "file", "file": {"filename": "stdin", "file_data": f"data:application/pdf;base64,{b64(PDF)}"}}]


def test_piped_pdf_anthropic(server: SSEServer) -> None:
    server.add(ok_anthropic())
    result = run(["ask", "summarise"], anthropic_env(server), input=PDF)
    assert result.returncode == 0, result.stderr
    assert last_content(server) == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)}},
        {"type": "text", "text": "summarise"}]


def test_piped_png_and_attach_dash(server: SSEServer) -> None:
    server.add(ok_openai(), ok_openai())
    assert run(["ask", "what is wrong here"], cli_env(server), input=PNG).returncode == 0
    assert last_content(server)[1]["image_url"]["url"] == f"data:image/png;base64,{b64(PNG)}"
    result = run(["ask", "-a", "-", "and this"], cli_env(server), input=PNG)
    assert result.returncode == 0, result.stderr
    assert last_content(server) == [{"type": "text", "text": "and this"},
                                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}}]


def test_text_file_is_fenced_with_its_path(server: SSEServer, tmp_path: Path) -> None:
    src = tmp_path / "main.py"
    src.write_text("print('```')\n")
    server.add(ok_openai())
    result = run(["ask", "-a", str(src), "review"], cli_env(server))
    assert result.returncode == 0, result.stderr
    assert last_content(server) == f"review\n\n{src}\n\n````\nprint('```')\n````"  # text only: a string


def test_image_url_passed_on(server: SSEServer) -> None:
    url = "https://example.com/cat.png"
    server.add(ok_openai(), ok_anthropic())
    assert run(["ask", "-a", url, "what"], cli_env(server)).returncode == 0
    assert last_content(server)[1] == {"type": "image_url", "image_url": {"url": url}}
    assert run(["ask", "-a", url, "what"], anthropic_env(server)).returncode == 0
    assert last_content(server)[0] == {"type": "image", "source": {"type": "url", "url": url}}


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_continue_resends_the_stored_attachment(server: SSEServer, tmp_path: Path, dialect: str) -> None:
    (tmp_path / "shot.png").write_bytes(PNG)
    env = cli_env(server, CHATCLI_HOME=str(tmp_path / "home")) if dialect == "openai" else \
        anthropic_env(server, CHATCLI_HOME=str(tmp_path / "home"))
    ok = ok_openai if dialect == "openai" else ok_anthropic
    server.add(ok(), ok())
    assert run(["ask", "-a", str(tmp_path / "shot.png"), "describe"], env).returncode == 0
    result = run(["ask", "-c", "and the colour?"], env)
    assert result.returncode == 0, result.stderr
    body = server.requests[-1].json
    assert body is not None
    first = body["messages"][0]["content"]
    if dialect == "openai":
        assert {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}} in first
    else:
        assert {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)}} in first


# -- limits and bad input: one line, exit 2, nothing sent, nothing stored --------------------------------

def _refused(result: Any, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("make, words", [
    (lambda d: str(d / "missing.png"), ("missing.png", "no such file")),
    (lambda d: str(d), ("directory",)),
    (lambda d: _write(d / "big.png", media.png_of_size(20_000_001)), ("20 MB",)),
    (lambda d: _write(d / "big.pdf", PDF + b"\0" * 32_000_001), ("32 MB",)),
    (lambda d: _write(d / "blob.bin", b"\x00\x01\x02binary"), ("blob.bin", "accepted")),
    (lambda d: "https://user:pw@example.com/x.png", ("user name or password",)),
])
def test_bad_attachments_exit_2_nothing_stored(server: SSEServer, tmp_path: Path, make: Any,
                                               words: tuple[str, ...]) -> None:
    home = tmp_path / "home"
    spec = make(tmp_path)
    result = run(["ask", "-a", spec, "q"], cli_env(server, CHATCLI_HOME=str(home)))
    _refused(result, *words)
    assert "pw" not in result.stderr or "password" in result.stderr
    assert server.requests == []
    assert stored_turns(home) == 0


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_more_than_20_attachments(server: SSEServer, tmp_path: Path) -> None:
    (tmp_path / "s.png").write_bytes(PNG)
    result = run(["ask", *(a for _ in range(21) for a in ("-a", str(tmp_path / "s.png"))), "q"],
                 cli_env(server, CHATCLI_HOME=str(tmp_path / "home")))
    _refused(result, "21 attachments", "20")
    assert server.requests == []
    assert stored_turns(tmp_path / "home") == 0


def test_piped_binary_that_is_no_image_keeps_its_error(server: SSEServer) -> None:
    _refused(run(["ask", "q"], cli_env(server), input=b"\x00\x01binary"), "binary")
    assert server.requests == []


def test_vision_false_provider_refused_before_sending(server: SSEServer, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[providers.txt]\ntype = "openai"\nbase_url = "{server.openai_url}"\n'
                      'api_key_env = "OPENAI_API_KEY"\ndefault_model = "text-only"\nvision = false\n')
    config.chmod(0o600)
    (tmp_path / "s.png").write_bytes(PNG)
    result = run(["ask", "--config", str(config), "-m", "txt", "-a", str(tmp_path / "s.png"), "q"],
                 cli_env(server, CHATCLI_HOME=str(tmp_path / "home")))
    _refused(result, "txt:text-only does not accept images")
    assert server.requests == []


def test_provider_rejecting_images_is_classified(server: SSEServer, tmp_path: Path) -> None:
    (tmp_path / "s.png").write_bytes(PNG)
    server.add(Reply.raw(openai_error("Invalid content type. image_url is only supported by certain models.",
                                      type="invalid_request_error"), status=400, content_type="application/json"))
    result = run(["ask", "--no-save", "-a", str(tmp_path / "s.png"), "q"], cli_env(server))
    assert result.returncode == 1, result.stderr
    assert "does not accept images" in result.stderr
    assert_clean(result)


# -- roles -----------------------------------------------------------------------------------------------

def _role_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text('[roles.reviewer]\nsystem = "You review code."\nmodel = "openai:role-model"\n'
                      'temperature = 0.2\nmax_tokens = 77\n\n[roles.shell]\nsystem = "One command."\n')
    config.chmod(0o600)
    return config


def test_role_values_and_flags_beat_them(server: SSEServer, tmp_path: Path) -> None:
    config = _role_config(tmp_path)
    server.add(ok_openai(), ok_openai())
    assert run(["ask", "--config", str(config), "--role", "reviewer", "q"], cli_env(server)).returncode == 0
    body = server.requests[-1].json
    assert body is not None
    assert body["model"] == "role-model" and body["temperature"] == 0.2
    assert body["messages"][0] == {"role": "system", "content": "You review code."}
    assert (body.get("max_tokens") or body.get("max_completion_tokens")) == 77
    result = run(["ask", "--config", str(config), "--role", "reviewer", "-m", "openai:flag-model", "-t", "1",
                  "-s", "flag system", "q"], cli_env(server))
    assert result.returncode == 0, result.stderr
    body = server.requests[-1].json
    assert body is not None
    assert body["model"] == "flag-model" and body["temperature"] == 1.0
    assert body["messages"][0] == {"role": "system", "content": "flag system"}


def test_unknown_role_names_the_closest(server: SSEServer, tmp_path: Path) -> None:
    result = run(["ask", "--config", str(_role_config(tmp_path)), "--role", "reviwer", "q"], cli_env(server))
    _refused(result, 'unknown role "reviwer"', '"reviewer"')
    assert server.requests == []


def test_roles_command_lists_them(tmp_path: Path) -> None:
    result = run(["roles", "--config", str(_role_config(tmp_path))], cli_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "reviewer (model openai:role-model, temperature 0.2, max_tokens 77): You review code.",
        "shell: One command."]


def test_json_mode_with_attachment(server: SSEServer, tmp_path: Path) -> None:
    (tmp_path / "s.png").write_bytes(PNG)
    server.add(ok_openai())
    result = run(["ask", "--json", "--no-save", "-a", str(tmp_path / "s.png"), "q"], cli_env(server))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == "A red square."


# -- the embedded model --------------------------------------------------------------------------------

def test_local_model_refuses_an_image_before_loading(tmp_path: Path) -> None:
    (tmp_path / "s.png").write_bytes(PNG)
    result = run(["ask", "--no-save", "-m", "local", "-a", str(tmp_path / "s.png"), "q"], cli_env())
    _refused(result, "local:smollm2 does not accept images")


def test_context_estimate_counts_an_image() -> None:
    from chatcli.context import estimate_messages, trim_messages
    from chatcli.events import ImagePart, Message

    image = Message("user", "q", (ImagePart(media_type="image/png", data=media.png(1568, 1568)),))
    assert estimate_messages([image]) >= estimate_messages([Message("user", "q")]) + 1000
    old = [Message("user", "old"), Message("assistant", "a")]
    kept, dropped = trim_messages([*old, image], None, budget=500)
    assert kept == [image] and dropped == 2  # the current message, attachment and all, is never dropped


def test_chat_dash_a_bad_file_exits_2_before_the_chat(tmp_path: Path) -> None:
    result = run(["-a", str(tmp_path / "nope.png")], cli_env(None, OPENAI_API_KEY=KEY))
    _refused(result, "nope.png", "no such file")


def test_local_model_answers_a_text_attachment_for_real(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The launch code word is PELICAN.\n")
    result = run(["ask", "--no-save", "-m", "local", "--max-tokens", "40", "-t", "0", "-a", str(notes),
                  "What is the code word in the file? Answer with the word."], cli_env(), timeout=300)
    assert result.returncode in (0, 3), result.stderr  # 3: cut at --max-tokens, still an answer
    assert result.stdout.strip()
    assert "pelican" in result.stdout.lower()
    assert_clean(result)
