"""End-to-end `chatcli --version/--help`, `models`, `config path/show/init` and config errors,
through the real CLI in-process (tests/support/runner.py); `--version` (answered by `main()`
before `run()`) through the installed command, and what start-up imports (no SDK, rich or
prompt-toolkit) in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatcli import __version__
from tests.support import binary
from tests.support.binary import KEY, cli_env
from tests.support.runner import run

HEAVY = ("openai", "anthropic", "rich", "prompt_toolkit", "httpx", "httpx2", "pydantic", "markdown_it",
         "llama_cpp")


def imported_by(args: list[str], env: dict[str, str]) -> set[str]:
    """Top-level packages among HEAVY that `chatcli ARGS` imported (reported at interpreter exit)."""
    code = (
        "import atexit, sys\n"
        f"heavy = {HEAVY!r}\n"
        "atexit.register(lambda: sys.__stderr__.write('IMPORTED=' + ','.join(sorted({m.split('.')[0] "
        "for m in sys.modules} & set(heavy))) + '\\n'))\n"
        "from chatcli.cli import main\n"
        f"main({args!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    line = next(x for x in result.stderr.splitlines() if x.startswith("IMPORTED="))
    return {m for m in line.removeprefix("IMPORTED=").split(",") if m}


@pytest.mark.skipif(binary.CHATCLI is None, reason="the chatcli command is not installed (pip install -e .)")
def test_version() -> None:
    # The installed binary: `main()` answers `--version` itself, before `run()` (tests/support/runner.py).
    result = binary.run(["--version"], cli_env())
    assert (result.returncode, result.stdout) == (0, f"chatcli {__version__}\n")
    assert binary.run(["--debug", "--version"], cli_env()).stdout == f"chatcli {__version__}\n"
    assert run(["--version"], cli_env()).stdout == f"chatcli {__version__}\n"  # and Typer's, in-process


def test_version_and_help_and_light_commands_import_nothing_heavy() -> None:
    env = cli_env(OPENAI_API_KEY=KEY)
    assert imported_by(["--version"], env) == set()
    assert imported_by(["--help"], env) == set()
    # Typer 0.29 coerces every non-bool option value through a pydantic TypeAdapter, so once a
    # command's options are processed pydantic is loaded; but never an SDK, rich or prompt-toolkit.
    for args in (["ask", "--help"], ["models"], ["config", "show"], ["history", "list"]):
        assert imported_by(args, env) <= {"pydantic"}, args


def test_help_lists_commands_and_shared_options() -> None:
    result = run(["--help"], cli_env())
    assert result.returncode == 0
    for word in ("ask", "models", "history", "config", "--model", "--system", "--max-tokens", "--temperature",
                 "--continue", "--resume", "--no-save", "--plain", "--markdown", "--config", "--debug",
                 "--version"):
        assert word in result.stdout, word
    assert "\x1b" not in result.stdout
    ask = run(["ask", "--help"], cli_env())
    assert "--json" in ask.stdout and "--model" in ask.stdout


def test_unknown_command_is_exit_2() -> None:
    result = run(["frobnicate"], cli_env())
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_config_path_show_init(tmp_path: Path) -> None:
    env = cli_env(OPENAI_API_KEY=KEY)
    expected = Path(os.environ["XDG_CONFIG_HOME"]) / "chatcli" / "config.toml"
    result = run(["config", "path"], env)
    assert (result.returncode, result.stdout) == (0, f"{expected}\n")
    init = run(["config", "init"], env)
    assert init.returncode == 0, init.stderr
    assert expected.stat().st_mode & 0o777 == 0o600
    assert expected.parent.stat().st_mode & 0o777 == 0o700
    again = run(["config", "init"], env)
    assert again.returncode == 2 and "--force" in again.stderr
    expected.write_text('default_model = "openai:gpt-4.1"\n')
    assert run(["config", "init", "--force"], env).returncode == 0
    assert "default_model = \"openai:gpt-4.1\"" not in expected.read_text()
    show = run(["config", "show"], env)
    assert show.returncode == 0
    assert KEY not in show.stdout and "sk-…WXYZ" in show.stdout
    other = tmp_path / "other.toml"
    assert run(["--config", str(other), "config", "path"], env).stdout == f"{other}\n"
    assert run(["config", "path"], {**env, "CHATCLI_CONFIG": str(other)}).stdout == f"{other}\n"


def test_models_marks_default_and_missing_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[aliases]\nquick = "anthropic:claude-haiku-4-5"\n'
                   '[providers.ollama]\ntype = "openai"\nbase_url = "http://localhost:11434/v1"\n'
                   'models = ["llama3.2"]\n')
    result = run(["models", "--config", str(cfg)], cli_env(OPENAI_API_KEY=KEY))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "  * openai:gpt-4o-mini" in out
    assert "ANTHROPIC_API_KEY missing" in out
    assert "quick -> anthropic:claude-haiku-4-5" in out
    assert "ollama:llama3.2" in out
    assert KEY not in out


@pytest.mark.parametrize(("text", "where"), [
    ('system = "ok"\nmax_tokens = = 3\n', ":2: max_tokens: invalid TOML"),
    ('system = "ok"\n\ncolour = "red"\n', ":3: colour: unknown key"),
    ('[providers.x]\ntype = "openai"\ntimeout = "soon"\n', ":3: providers.x.timeout: expected a number"),
])
def test_config_errors_name_file_line_key(tmp_path: Path, text: str, where: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    for args in (["ask", "hi"], ["models"], ["config", "show"]):
        result = run(["--config", str(cfg), *args], cli_env(OPENAI_API_KEY=KEY))
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"chatcli: {cfg}{where}"), lines[0]
        assert "Traceback" not in result.stderr


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    result = run(["ask", "--config", str(tmp_path / "nope.toml"), "hi"], cli_env(OPENAI_API_KEY=KEY))
    assert result.returncode == 2
    assert "nope.toml: no such file" in result.stderr


def test_missing_key_for_an_explicit_provider() -> None:
    result = run(["ask", "-m", "anthropic", "hi"], cli_env())
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "chatcli: anthropic: no API key: set ANTHROPIC_API_KEY (export ANTHROPIC_API_KEY=..., or put it in a "
        ".env file in this directory or the config directory)")


def test_history_commands_are_wired(tmp_path: Path) -> None:
    env = cli_env()
    empty = run(["history", "list"], env)
    assert empty.returncode == 0 and "no saved conversations" in empty.stdout
    missing = run(["history", "show", "deadbeef"], env)
    assert missing.returncode == 2
    assert missing.stderr.startswith("chatcli: ") and "Traceback" not in missing.stderr
    assert run(["history", "search", "anything"], env).returncode == 0
    assert run(["history", "delete", "deadbeef"], env).returncode == 2
    assert run(["history", "export", "deadbeef", "-o", str(tmp_path / "x.md")], env).returncode == 2


# -- help and information that read well (issue 16, cosmetics) ------------------------------------------

COMMANDS = [[], ["ask"], ["models"], ["config"], ["config", "path"], ["config", "show"], ["config", "init"],
            ["history"], ["history", "list"], ["history", "show"], ["history", "export"], ["history", "delete"],
            ["history", "search"]]


def _rows(text: str, section: str) -> list[str]:
    """The rows of a help section, continuation lines joined to their row."""
    lines = text.split(f"\n{section}:\n", 1)[1].split("\n\n", 1)[0].splitlines() if f"\n{section}:\n" in text else []
    rows: list[str] = []
    for line in lines:
        if (line.startswith("  ") and not line.startswith("    ")) or not rows:
            rows.append(line.strip())
        else:
            rows[-1] += " " + line.strip()
    return rows


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "chatcli")
def test_help_reads_well(path: list[str]) -> None:
    result = run([*path, "--help"], cli_env())
    assert result.returncode == 0, result.stderr
    text = result.stdout
    usage = text.splitlines()[0]
    # Typer's plain help once showed `{ID}`, `[[PROMPT]...]...` and Python types (`<list[str]>`).
    assert "{" not in usage and "[[" not in usage and "]]" not in usage, usage
    assert re.search(r"<[a-z][\w\[\] ]*>", text) is None, text
    for section in ("Arguments", "Options"):
        for row in _rows(text, section):  # every argument and option says what it is
            assert re.match(r"\S.*?\s{2,}\S", row), f"{section} row without a description: {row!r}"
    for row in _rows(text, "Commands"):  # a command's line is a whole sentence, not cut with "..."
        assert not row.endswith("..."), row


def test_config_path_note_is_information_not_an_error(tmp_path: Path) -> None:
    result = run(["config", "path", "--config", str(tmp_path / "new.toml")], cli_env())
    assert result.returncode == 0
    assert result.stdout == f"{tmp_path / 'new.toml'}\n"  # stdout: the path alone, for $(chatcli config path)
    assert result.stderr == "The file does not exist yet; `chatcli config init` writes a starter one.\n"
    init = run(["config", "init", "--config", str(tmp_path / "new.toml")], cli_env())
    assert (init.returncode, init.stderr) == (0, f"Wrote {tmp_path / 'new.toml'}\n")


def test_a_config_error_shows_the_bad_value(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[providers.g]\ntype = "gemini"\n')
    cfg.chmod(0o600)
    result = run(["--config", str(cfg), "models"], cli_env())
    assert result.returncode == 2
    assert result.stderr == (f'chatcli: {cfg}:2: providers.g.type: expected "openai", "anthropic" or "local", '
                             'got "gemini"\n')


def test_models_flags_an_alias_to_an_unknown_provider(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[aliases]\nlab = "mylab:big-model"\n')
    cfg.chmod(0o600)
    listed = run(["--config", str(cfg), "models"], cli_env(OPENAI_API_KEY=KEY))
    assert listed.returncode == 0, listed.stderr
    assert 'lab -> mylab:big-model  - broken: no provider is named "mylab"' in listed.stdout
    used = run(["--config", str(cfg), "ask", "-m", "lab", "hi"], cli_env(OPENAI_API_KEY=KEY))
    assert used.returncode == 2
    assert 'alias "lab" points to "mylab:big-model"' in used.stderr and used.stderr.count("\n") == 1
