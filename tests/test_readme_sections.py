"""The README's Tools, Attachments and Roles sections show configs that work: each TOML block is
written to a config file and used by the real CLI in-process (tests/support/runner.py) -- the
`mcp-server-time` server from the Tools section answers a real call, the filesystem server's entry
is a valid server (its npm package is optional, so it is not started here), and the Roles
section's roles are listed by `chatcli roles`."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.runner import Result, run

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def toml_blocks(text: str) -> str:
    return "\n".join(re.findall(r"```toml\n(.*?)```", text, re.S))


def chatcli(args: list[str], tmp_path: Path, config: str) -> Result:
    path = tmp_path / "config.toml"
    path.write_text(config)
    path.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "CHATCLI_"))}
    env.update(CHATCLI_HOME=str(tmp_path / "data"), HOME=str(tmp_path))
    return run(["--config", str(path), *args], env, timeout=120)


@pytest.mark.skipif(shutil.which("mcp-server-time") is None, reason="mcp-server-time (dev extra)")
def test_the_tools_sections_time_server_answers_a_call(tmp_path: Path) -> None:
    config = toml_blocks(section("Tools (MCP)"))
    assert "[mcp.servers.time]" in config and "[mcp.servers.files]" in config
    result = chatcli(["tools", "call", "time", "get_current_time", '{"timezone": "Asia/Tokyo"}'], tmp_path, config)
    assert result.returncode == 0, result.stderr
    assert "Asia/Tokyo" in result.stdout and "datetime" in result.stdout


def test_the_tools_sections_filesystem_server_is_a_valid_entry(tmp_path: Path) -> None:
    import tomllib

    from chatcli.tools.servers import parse_servers

    config = toml_blocks(section("Tools (MCP)"))
    servers = parse_servers(tomllib.loads(config)["mcp"]["servers"], source="README.md")
    files = servers["files"]
    assert files.command == "mcp-server-filesystem" and files.args == ("/home/me/notes",)
    assert set(files.allow) == {"read_text_file", "list_directory", "search_files"}


def test_the_roles_section_is_a_working_config(tmp_path: Path) -> None:
    result = chatcli(["roles"], tmp_path, toml_blocks(section("Roles")))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("reviewer") and "\nshell (max_tokens 300)" in result.stdout
