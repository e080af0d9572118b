"""Every `chatcli` command line the README shows exists in the real CLI (issue 16, item 9).

The README once documented `history export ID --format json`; the option is `--json`. This test
reads README.md whatever it says -- every fenced code block, and every inline code span that
starts with `chatcli` -- finds each `chatcli ...` command in it, and walks it through the Click
command tree Typer builds (chatcli/cli/typer_app.py): each sub-command must exist, each option must be one
that command accepts (checked against its parameters, so against what `--help` lists), an option
that takes a value must be given one, and a group takes no stray words.

The README's shorthand is understood: `chatcli history list | show ID | export ID` (alternatives
after `|` that name a sub-command of the same group), `chatcli -c / chatcli -r ID`, `[optional]`
parts, `[--a|--b]`, `# comments`, placeholders (ID, FILE, TEXT, ...) and shell pipes around the
command (`cat f | chatcli ask`, `... && chatcli ask`). `python -m chatcli` counts as `chatcli`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main

from chatcli.cli import typer_app

README = Path(__file__).resolve().parent.parent / "README.md"
_FENCE = re.compile(r"^(```+|~~~+)[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_SHELL_OPS = {"|", "||", "&&", ";", "/", "&"}

# Duck-typed: Typer 0.29 builds on a click it vendors, not the `click` package (as in
# tests/test_options.py), so isinstance checks against `click` would never match.
Command = Any


def _is_group(cmd: Command) -> bool:
    return isinstance(getattr(cmd, "commands", None), dict)


@dataclass(frozen=True)
class Shown:
    where: str  # "README.md:LINE"
    words: tuple[str, ...]  # the words after `chatcli`

    def __str__(self) -> str:
        return f"{self.where}: chatcli {' '.join(self.words)}"


def _root() -> Command:
    return typer.main.get_command(typer_app.app)


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote (an apostrophe in a comment): read up to the comment
        return shlex.split(re.sub(r"\s#.*$", "", line).replace("'", ""), comments=True)


def _segments(words: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for word in words:
        if word in _SHELL_OPS:
            out.append([])
        else:
            out[-1].append(word)
    return [seg for seg in out if seg]


def _command_start(seg: list[str]) -> int | None:
    """Index of the first word after `chatcli` (or `python -m chatcli`), or None. Leading
    `$ ` prompts, `NAME=value`, `env` and `sudo` words are skipped (`$ NO_COLOR=1 chatcli ask ...`)."""
    i = 0
    while i < len(seg) and (seg[i] in ("$", "env", "sudo") or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", seg[i])):
        i += 1
    if i < len(seg) and (seg[i] == "chatcli" or seg[i].endswith("/chatcli")):
        return i + 1
    if i < len(seg) and seg[i].split("/")[-1].startswith("python") and seg[i + 1:i + 3] == ["-m", "chatcli"]:
        return i + 3
    return None


def _group_path(root: Command, words: tuple[str, ...]) -> tuple[str, ...]:
    """The sub-command names in `words` that name groups (for `| show ID` alternatives)."""
    path: list[str] = []
    cmd = root
    for word in words:
        if _is_group(cmd) and word in cmd.commands:
            cmd = cmd.commands[word]
            if _is_group(cmd):
                path.append(word)
            else:
                break
    return tuple(path)


def shown_commands(text: str, root: Command) -> list[Shown]:
    lines: list[tuple[int, str]] = []
    for block in _FENCE.finditer(text):
        first = text.count("\n", 0, block.start(2)) + 1
        lines += [(first + n, line) for n, line in enumerate(block.group(2).splitlines())]
    fenced = {n for n, _ in lines}
    for n, line in enumerate(text.splitlines(), 1):
        if n in fenced:
            continue
        for span in _INLINE.finditer(line):
            if span.group(1).startswith("chatcli ") or span.group(1) == "chatcli":
                lines.append((n, span.group(1)))
    found: list[Shown] = []
    for n, line in lines:
        previous: Shown | None = None
        for seg in _segments(_split(line)):
            start = _command_start(seg)
            if start is not None:
                previous = Shown(f"README.md:{n}", tuple(seg[start:]))
                found.append(previous)
                continue
            if previous is None:
                continue
            # `chatcli history list | show ID`: an alternative naming a sibling sub-command.
            group = _group_path(root, previous.words)
            cmd: Any = root
            for name in group:
                cmd = cmd.commands[name]
            if group and seg[0] in cmd.commands:
                found.append(Shown(previous.where, (*group, *seg)))
            # anything else after a pipe (`| head -1`, `| less`) is another program
    return found


def _options(cmd: Command, ctx_help: tuple[str, ...]) -> dict[str, bool]:
    """Every option flag of `cmd` -> whether it takes a value."""
    flags: dict[str, bool] = {name: False for name in ctx_help}
    for param in cmd.params:
        if getattr(param, "param_type_name", "") == "option":
            takes = not (param.is_flag or param.count)
            for flag in (*param.opts, *param.secondary_opts):
                flags[flag] = takes
    return flags


def problems(shown: Shown, root: Command) -> list[str]:
    help_names = tuple(root.context_settings.get("help_option_names", ["--help"]))
    cmd = root
    path = ["chatcli"]
    errors: list[str] = []
    words = list(shown.words)
    i = 0
    while i < len(words):
        word = words[i].strip("[]")
        i += 1
        if not word or word in ("…", "...", "-"):
            continue
        if word.startswith("-"):
            for alternative in word.split("|"):
                name = alternative.partition("=")[0].strip("[]")
                flags = _options(cmd, help_names)
                if name not in flags:
                    errors.append(f"{' '.join(path)} has no option {name} (its --help lists "
                                  f"{', '.join(sorted(f for f in flags if f.startswith('--')))})")
                elif flags[name] and "=" not in alternative:
                    if i >= len(words) or words[i].strip("[]").startswith("-"):
                        errors.append(f"{' '.join(path)} {name} needs a value")
                    else:
                        i += 1
            continue
        if _is_group(cmd):
            if word in cmd.commands:
                cmd = cmd.commands[word]
                path.append(word)
            else:
                errors.append(f"{' '.join(path)} has no command {word!r} "
                              f"(it has {', '.join(sorted(cmd.commands))})")
                break
        # else: an argument or a placeholder of a command (ID, FILE, "a prompt")
    return errors


def test_the_readme_shows_commands_at_all() -> None:
    # Guard against a parser that silently finds nothing (and so checks nothing).
    commands = shown_commands(README.read_text(encoding="utf-8"), _root())
    assert len(commands) >= 5, commands


def test_every_command_line_in_the_readme_exists() -> None:
    root = _root()
    bad = [f"{shown}: {problem}" for shown in shown_commands(README.read_text(encoding="utf-8"), root)
           for problem in problems(shown, root)]
    assert not bad, "\n".join(bad)


# -- the checker itself, on made-up READMEs ------------------------------------------------------------

SAMPLE = """\
# x

```sh
chatcli ask --json "hi"                  # fine
cat f | chatcli ask "review"             # a pipe into chatcli
chatcli history list | show ID | export ID [-o FILE] [--format json] | delete ID
chatcli -c / chatcli -r ID
chatcli -m                               # a value is missing
chatcli config paht
NO_COLOR=1 python3 -m chatcli --no-such
$ chatcli ask hi | head -1
```

Inline: `chatcli history search --limit 3 TEXT` and `chatcli models --verbose`, not `ls -l`.
"""


def test_the_checker_reads_the_readme_shorthand() -> None:
    root = _root()
    found = {str(s): problems(s, root) for s in shown_commands(SAMPLE, root)}
    assert found["README.md:6: chatcli history export ID [-o FILE] [--format json]"][0].startswith(
        "chatcli history export has no option --format")
    assert found["README.md:9: chatcli config paht"][0].startswith("chatcli config has no command 'paht'")
    assert found["README.md:10: chatcli --no-such"][0].startswith("chatcli has no option --no-such")
    assert found["README.md:14: chatcli models --verbose"][0].startswith("chatcli models has no option --verbose")
    assert found["README.md:8: chatcli -m"] == ["chatcli -m needs a value"]
    assert len(found) == 14 and all(len(errs) <= 1 for errs in found.values())
    clean = [key for key, errs in found.items() if not errs]
    assert clean == ["README.md:4: chatcli ask --json hi", "README.md:5: chatcli ask review",
                     "README.md:6: chatcli history list", "README.md:6: chatcli history show ID",
                     "README.md:6: chatcli history delete ID", "README.md:7: chatcli -c",
                     "README.md:7: chatcli -r ID", "README.md:11: chatcli ask hi",
                     "README.md:14: chatcli history search --limit 3 TEXT"]
