"""The Typer-free reader of `chatcli [OPTIONS]` / `chatcli ask ...` (chatcli/cli/fast.py) against Typer.

Two readers of one command line must never disagree. These tests hold `parse_fast` to that: the
option table is the one Typer built, and over a corpus of command lines (hand-picked edge cases
plus a seeded random sample) every line `parse_fast` accepts gives exactly what Typer gives.
Lines it declines go to Typer, which is what runs them (checked for a few errors).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import typer.main

from chatcli import cli
from chatcli.cli import chat, typer_app
from chatcli.cli.fast import parse_fast
from chatcli.cli.options import JSON, OPTIONS, Ask, Opt, Shared


def typer_reading(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    """What the Typer path makes of `argv`: ("ask", Ask) / ("chat", Shared) / ("exit", code)."""
    seen: list[tuple[str, Any]] = []
    monkeypatch.setattr(typer_app, "run_ask", lambda ask: seen.append(("ask", ask)) or 0)
    monkeypatch.setattr(typer_app, "run_chat", lambda shared: seen.append(("chat", shared)) or 0)
    monkeypatch.setattr(chat, "run_chat", lambda shared: seen.append(("chat", shared)) or 0)  # bare `chatcli`
    code = cli.run(list(argv), fast_path=False)
    return seen[0] if seen else ("exit", code)


def same(fast: Shared | Ask, typer_says: tuple[str, Any]) -> bool:
    kind, value = typer_says
    if isinstance(fast, Ask):
        return (kind == "ask" and fast.shared == value.shared and fast.prompt == value.prompt
                and fast.as_json == value.as_json)
    return kind == "chat" and fast == value


# -- the table is what Typer built --------------------------------------------------------------


def params_of(command: Any) -> dict[str, Any]:
    # Duck-typed: Typer 0.29 builds on a click it vendors, not the `click` package.
    return {p.name: p for p in command.params if p.name not in ("help", "version")}


KIND_TYPES: dict[str, object] = {"str": str, "int": int, "float": float, "path": Path, "flag": bool, "switch": bool,
                                 "list": list[str]}


def check_matches(opt: Opt, param: Any) -> None:
    assert (tuple(param.opts), tuple(param.secondary_opts)) == (opt.flags, opt.off_flags), opt.dest
    assert param.is_flag == (not opt.takes_value), opt.dest
    assert param.type_descriptor.annotation == KIND_TYPES[opt.kind], opt.dest
    assert (param.min, param.max) == (opt.min, opt.max), opt.dest
    assert param.nargs == 1 and param.multiple == (opt.kind == "list") and not param.count, opt.dest
    assert param.envvar is None and param.callback is None, opt.dest  # the fast reader reads neither
    if opt.kind == "path":
        assert param.type_descriptor.parameter_info.dir_okay is False


def test_the_option_table_is_exactly_what_typer_built() -> None:
    group: Any = typer.main.get_command(typer_app.app)
    ask = group.commands["ask"]
    root_params, ask_params = params_of(group), params_of(ask)
    assert set(root_params) == {o.dest for o in OPTIONS}
    assert set(ask_params) == {o.dest for o in OPTIONS} | {JSON.dest, "prompt"}
    for opt in OPTIONS:
        check_matches(opt, root_params[opt.dest])
        check_matches(opt, ask_params[opt.dest])
    check_matches(JSON, ask_params[JSON.dest])
    prompt = ask_params["prompt"]
    assert prompt.nargs == -1 and prompt.envvar is None
    assert not group.allow_interspersed_args and ask.allow_interspersed_args  # the reader's assumptions


# -- both readers agree --------------------------------------------------------------------------

HAND_PICKED: list[list[str]] = [
    [], ["-m", "openai:gpt-4o"], ["--model=anthropic"], ["-c"], ["--plain"], ["--markdown", "--no-save"],
    ["ask"], ["ask", "hi"], ["ask", "hello", "world"], ["ask", "--json", "hi"], ["ask", "hi", "--json"],
    ["ask", "-m", "local", "hi"], ["-m", "a", "ask", "-m", "b", "hi"], ["-s", "be brief", "ask", "x"],
    ["ask", "--max-tokens", "5", "hi"], ["ask", "--max-tokens=1", "hi"], ["ask", "--max-tokens", "0", "hi"],
    ["ask", "--max-tokens", "-3", "hi"], ["ask", "--max-tokens", "1_000", "hi"], ["ask", "--max-tokens", "x"],
    ["ask", "-t", "0", "hi"], ["ask", "-t", "2", "hi"], ["ask", "-t", "2.0", "hi"], ["ask", "-t", "2.01", "hi"],
    ["ask", "-t", ".5", "hi"], ["ask", "-t", "1e0", "hi"], ["ask", "-t", "nan", "hi"], ["ask", "--temperature=0.7"],
    ["ask", "--", "--json", "-m"], ["ask", "hi", "--", "-c"], ["--", "ask"], ["ask", "-"], ["ask", "-c", "-r", "x"],
    ["ask", "--continue", "hi"], ["ask", "-r", "abc123", "more"], ["ask", "--resume=abc", "q"],
    ["ask", "--plain", "--markdown", "hi"], ["ask", "--json", "--json", "hi"], ["ask", "-m"], ["-m"],
    ["ask", "-mgpt", "hi"], ["ask", "-m=gpt", "hi"], ["ask", "--mod", "x", "hi"], ["ask", "--unknown"],
    ["ask", "-m", "--json", "hi"], ["ask", "-s", "", "hi"], ["ask", "--config", "nope.toml", "hi"],
    ["--config", "c.toml", "ask", "hi"], ["ask", "--debug", "hi"], ["--debug", "ask", "hi"], ["ask", "-h"],
    ["--help"], ["models"], ["config", "path"], ["hello"], ["ask", "--json=1", "hi"], ["ask", "--no-save=x"],
    ["ask", "ask"], ["ask", "-c", "-c"], ["ask", "héllo", "wörld"], ["-t", "1", "ask", "-t", "0.5", "hi"],
    ["-T", "time", "ask", "hi"], ["ask", "-T", "time,files", "-T", "web", "hi"], ["ask", "--no-tools", "hi"],
    ["--allow-tool", "time:get_current_time", "ask", "--allow-tool", "files:read_file", "q"],
    ["-T", "a", "ask", "-T", "b", "q"], ["ask", "--tools=time", "q"], ["ask", "-T"], ["-T", "x"],
    ["ask", "-a", "shot.png", "describe"], ["-a", "a.png", "ask", "-a", "b.pdf", "--attach=c.txt", "q"],
    ["ask", "-a", "-", "q"], ["ask", "-a"], ["-a", "x.png"], ["ask", "--role", "reviewer", "-m", "x", "q"],
    ["--role", "shell", "ask", "--role", "reviewer", "q"], ["--role", "shell"], ["ask", "--role"],
]

VALUES = ["gpt-4o", "anthropic:claude", "a b", "", "-x", "--json", "0", "1", "7", "2", "2.0", "1.5", ".5",
          "2.5", "-1", "1e0", " 7", "+7", "nan", "1_0", "x=y", "ünï", "c.toml"]
WORDS = ["hi", "what", "is", "2+2", "-", "--", "--json", "-c", "ask", "models", "x=y", "--bogus", "ünï"]


def random_argv(rng: random.Random) -> list[str]:
    def options(pool: tuple[Opt, ...]) -> list[str]:
        out: list[str] = []
        for _ in range(rng.randint(0, 3)):
            opt = rng.choice(pool)
            if opt.kind == "switch":
                out.append(rng.choice(opt.flags + opt.off_flags))
            elif not opt.takes_value:
                out.append(rng.choice(opt.flags))
            else:
                flag, value = rng.choice(opt.flags), rng.choice(VALUES)
                out.extend([f"{flag}={value}"] if flag.startswith("--") and rng.random() < 0.3 else [flag, value])
        return out

    argv = options(OPTIONS)
    if rng.random() < 0.8:
        argv.append("ask")
        tail = options((*OPTIONS, JSON)) + [rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
        rng.shuffle(tail) if rng.random() < 0.3 else None
        argv.extend(tail)
    return argv


def corpus() -> list[list[str]]:
    rng = random.Random(20261122)
    return HAND_PICKED + [random_argv(rng) for _ in range(300)]


def test_every_command_line_the_fast_reader_accepts_reads_as_typer_reads_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    accepted = declined = 0
    for argv in [*corpus(), ["ask", "--config", "adir", "hi"]]:
        fast = parse_fast(argv) if argv else Shared()
        if fast is None:
            declined += 1
            continue
        accepted += 1
        typer_says = typer_reading(argv, monkeypatch)
        assert same(fast, typer_says), f"{argv}: fast {vars(fast)} but Typer {typer_says}"
    capsys.readouterr()
    # Both halves of the corpus are exercised: most plain lines go the fast way, the odd ones not.
    assert accepted > 100 and declined > 60, (accepted, declined)


@pytest.mark.parametrize(("argv", "expected"), [
    (["ask", "hi"], Ask(Shared(), ["hi"], False)),
    (["-m", "a", "ask", "--json", "-t", "0.5", "x", "y"], Ask(Shared(model=("a",), temperature=0.5), ["x", "y"], True)),
    (["-m", "a", "ask", "-m", "b"], Ask(Shared(model=("b",)), [], False)),
    # several -m after `ask`: every model, in order (chatcli/compare/ask.py); before it too
    (["ask", "-m", "a", "-m", "b", "hi"], Ask(Shared(model=("a", "b")), ["hi"], False)),
    (["-m", "a", "-m", "b", "ask", "hi"], Ask(Shared(model=("a", "b")), ["hi"], False)),
    (["ask", "--", "-c"], Ask(Shared(), ["-c"], False)),
    (["--markdown", "-c"], Shared(plain=False, continue_=True)),
])
def test_common_command_lines_take_the_fast_way(argv: list[str], expected: Shared | Ask) -> None:
    fast = parse_fast(argv)
    assert fast is not None
    if isinstance(expected, Ask):
        assert isinstance(fast, Ask)
        assert (fast.shared, fast.prompt, fast.as_json) == (expected.shared, expected.prompt, expected.as_json)
    else:
        assert fast == expected


@pytest.mark.parametrize(("argv", "message"), [
    (["ask", "--max-tokens", "0", "hi"], "--max-tokens"),
    (["ask", "-t", "3", "hi"], "--temperature"),
    (["ask", "--bogus", "hi"], "--bogus"),
    (["ask", "-m"], "-m"),
    (["hello"], "hello"),
])
def test_what_the_fast_reader_declines_typer_rejects_with_its_usage_error(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_fast(argv) is None
    assert cli.run(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Error" in err
