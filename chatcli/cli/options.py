"""The options `chatcli` and `chatcli ask` share, defined once, and a Typer-free reading of the
command lines people type most.

`OPTIONS` is the one table of names, value kinds, ranges and help. Typer builds its parser from
it (chatcli/cli/typer_app.py), and `parse_fast` reads the two common command lines with it:

    chatcli [OPTIONS]                    the chat, with flags
    chatcli [OPTIONS] ask [OPTIONS] [PROMPT]...

Why a second reader: on those paths Typer is the single biggest cost chatcli adds to a start --
importing it and building its per-option adapters (pydantic) takes ~60-110 ms measured here,
which alone broke the `ask` time-to-first-byte target (<= 1.1x the bare SDK loop's) and the
prompt target. Why it cannot disagree with Typer: `parse_fast` accepts only what it reads
unambiguously -- known options in their plain forms, values that convert without doubt -- and
returns None for everything else (`--help`, a typo, `-mgpt-4o`, `--max-tokens 0`,
a value that starts with "-", any other command...). Then Typer parses the whole command line
itself, with its own messages and exit codes. tests/test_options.py checks, over a corpus of
command lines, that every one `parse_fast` accepts gives exactly what Typer gives, and that this
table matches the options Typer actually built.

No Typer, Click or typing import here: this runs before anything else on the fast paths.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: see the module docstring; mypy treats it as true
if TYPE_CHECKING:
    from pathlib import Path

    from chatcli.config import Overrides
    from chatcli.settings import RenderMode


class Opt:
    """One option. `kind`: "str", "int", "float", "path" (a file, never a directory), "flag"
    (sets True), "switch" (an on/off pair: `flags` set True, `off_flags` set False), or "list"
    (a string option that may be given again; its values are kept in order). `extend`, for a
    list: given both before and after `ask`, the values add up (`-T`, `-a`); False: the later
    ones replace the earlier (`-m`: `chatcli -m a ask -m b` asks b alone, as when it was a str).

    Plain classes here and below, not dataclasses: this module runs first on the fast paths, and
    a dataclass costs ~0.5-1 ms to create (its methods are generated and compiled at import)."""

    __slots__ = ("dest", "extend", "flags", "help", "kind", "max", "metavar", "min", "off_flags")

    def __init__(self, dest: str, flags: tuple[str, ...], kind: str, help: str, *, metavar: str | None = None,
                 min: float | None = None, max: float | None = None, off_flags: tuple[str, ...] = (),
                 extend: bool = True) -> None:
        self.dest = dest
        self.extend = extend
        self.flags = flags
        self.kind = kind
        self.help = help
        self.metavar = metavar
        self.min = min
        self.max = max
        self.off_flags = off_flags

    @property
    def takes_value(self) -> bool:
        return self.kind not in ("flag", "switch")

    @property
    def default(self) -> object:
        """The value when the option is not given."""
        return False if self.kind == "flag" else () if self.kind == "list" else None


#: The options of both `chatcli` and `chatcli ask` (given before `ask`, they apply to it too).
OPTIONS: tuple[Opt, ...] = (
    Opt("model", ("-m", "--model"), "list", "provider:model, a bare provider (its default) or an alias. "
        "Given more than once (ask): every model answers, side by side.", metavar="SPEC", extend=False),
    Opt("system", ("-s", "--system"), "str", "System prompt.", metavar="TEXT"),
    Opt("max_tokens", ("--max-tokens",), "int", "Longest reply, in tokens.", metavar="N", min=1),
    Opt("temperature", ("-t", "--temperature"), "float", "Sampling temperature (0-2).", metavar="X",
        min=0.0, max=2.0),
    Opt("continue_", ("-c", "--continue"), "flag", "Continue the most recent saved conversation."),
    Opt("resume", ("-r", "--resume"), "str", "Continue conversation ID (or a unique prefix).", metavar="ID"),
    Opt("no_save", ("--no-save",), "flag", "Do not save this conversation."),
    Opt("plain", ("--plain",), "switch",
        "Force plain text / rich markdown output (default: markdown on a terminal, plain otherwise).",
        off_flags=("--markdown",)),
    Opt("config", ("--config",), "path", "Config file to use.", metavar="PATH"),
    Opt("debug", ("--debug",), "flag", "Show tracebacks (secrets still redacted)."),
    Opt("tools", ("-T", "--tools"), "list", "Offer only these MCP servers' tools (NAME[,NAME], repeatable).",
        metavar="NAME"),
    Opt("no_tools", ("--no-tools",), "flag", "Offer no tools."),
    Opt("allow_tool", ("--allow-tool",), "list",
        "Let SERVER's TOOL run without asking (repeatable).", metavar="SERVER:TOOL"),
    Opt("attach", ("-a", "--attach"), "list",
        "Attach a file (image, PDF or text), an http(s) image URL, or - for stdin (repeatable).",
        metavar="PATH|URL|-"),
    Opt("role", ("--role",), "str", "Use role NAME from the config ([roles.NAME]): its system prompt and settings.",
        metavar="NAME"),
)

#: `chatcli ask` only.
JSON = Opt("json_", ("--json",), "flag",
           "Print one JSON object {text, finish_reason, model, provider, usage, conversation_id} instead of the text.")

BY_DEST = {opt.dest: opt for opt in (*OPTIONS, JSON)}


class Shared:
    """The values of `OPTIONS` (None / False / (): not given), one attribute per option's `dest`.

    Built from the table, so a new shared option needs no edit here."""

    model: tuple[str, ...]  # every -m in order; `last_model` for the paths that take one
    system: str | None
    max_tokens: int | None
    temperature: float | None
    continue_: bool
    resume: str | None
    no_save: bool
    plain: bool | None  # True --plain, False --markdown
    config: Path | None
    debug: bool
    tools: tuple[str, ...]
    no_tools: bool
    allow_tool: tuple[str, ...]
    attach: tuple[str, ...]
    role: str | None

    def __init__(self, **values: object) -> None:
        for opt in OPTIONS:
            value = values.pop(opt.dest, opt.default)
            setattr(self, opt.dest, tuple(value) if opt.kind == "list" else value)  # type: ignore[arg-type]
        if values:
            raise TypeError(f"unknown options: {', '.join(sorted(values))}")

    def over(self, base: Shared) -> Shared:
        """These options, falling back to `base` (the ones given before the subcommand)."""
        merged: dict[str, object] = {}
        for opt in OPTIONS:
            mine, theirs = getattr(self, opt.dest), getattr(base, opt.dest)
            if opt.kind == "flag":
                merged[opt.dest] = mine or theirs
            elif opt.kind == "list":
                merged[opt.dest] = (*theirs, *mine) if opt.extend else (mine or theirs)
            else:
                merged[opt.dest] = mine if mine is not None else theirs
        return Shared(**merged)

    @property
    def last_model(self) -> str | None:
        """The model of the single-model paths (the chat, one `ask`): the last -m, as Click's
        last-one-wins reading of a str option gave."""
        return self.model[-1] if self.model else None

    def overrides(self) -> Overrides:
        from chatcli.config import Overrides

        render: RenderMode | None = None if self.plain is None else ("plain" if self.plain else "markdown")
        tools = tuple(n.strip() for v in self.tools for n in v.split(",") if n.strip()) if self.tools else None
        return Overrides(model=self.last_model, system=self.system, max_tokens=self.max_tokens,
                         temperature=self.temperature, no_save=self.no_save, render=render,
                         config=self.config, debug=self.debug, tools=tools, no_tools=self.no_tools,
                         allow_tools=self.allow_tool, role=self.role)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shared) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Shared({', '.join(f'{k}={v!r}' for k, v in vars(self).items() if v not in (None, False, ()))})"

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class Ask:
    """`chatcli ask`: the options (root ones folded in), the prompt words, --json."""

    def __init__(self, shared: Shared, prompt: list[str], as_json: bool) -> None:
        self.shared = shared
        self.prompt = prompt
        self.as_json = as_json
