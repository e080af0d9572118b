"""The Typer app: every command line the fast reader (chatcli/cli/fast.py) does not take --
help, `history`, `config`, `models`, `roles`, `tools`, and mistakes. Imported only on that slow
path: Typer (+ its vendored click, shellingham) costs ~70 ms, more than the `--version` budget.

Options come from the one table, `chatcli.cli.options.OPTIONS`; Typer runs with
`rich_markup_mode=None` so `--help` is Click's plain formatter and never imports rich."""

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from chatcli import __version__
from chatcli.cli.ask import run_ask
from chatcli.cli.chat import run_chat
from chatcli.cli.options import BY_DEST, OPTIONS, Ask, Opt, Shared
from chatcli.cli.report import PipeClosed, info, out, state
from chatcli.cli.wiring import environment, make_app

#: Help for the positional arguments the history commands share (keyed by metavar).
_ARGUMENT_HELP = {
    "NAME": "An MCP server's name ([mcp.servers.NAME] in the config).",
    "TOOL": "The tool's name on that server (chatcli tools list shows them).",
    "JSON": 'The arguments as one JSON object, e.g. \'{"timezone": "Asia/Tokyo"}\'.',
    "ID": "A conversation id, or a unique prefix of one (chatcli history list shows them).",
    "TEXT": "What to look for in saved messages.",
}


def _usage(param: Any) -> str:
    name = param.metavar or param.name.upper()
    name = name if param.required else f"[{name}]"
    return str(name + ("..." if param.nargs != 1 else ""))


class _Command(typer.core.TyperCommand):
    """A command whose help reads like a man page. Typer 0.29's plain help prints the usage as
    `{ID}` and `[[PROMPT]...]...` and each argument with its Python type (`ID <str>`,
    `[PROMPT]... <list[str]>`); Click's own forms are `ID` and `[PROMPT]...`, and an argument's
    line is its help text. Options are Typer's (they carry metavars and help: chatcli/cli/options.py)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_usage(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or param.name.upper()
                args.append((_usage(param), getattr(param, "help", None) or _ARGUMENT_HELP.get(name, "")))
            elif param.param_type_name == "option":
                record = param.get_help_record(ctx)
                if record is not None:
                    opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


_F = TypeVar("_F", bound=Callable[..., Any])


class Typer(typer.Typer):
    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[_F], _F]:
        kwargs.setdefault("cls", _Command)
        return super().command(name, **kwargs)


def _pipe_safe(command: "Callable[..., None]") -> "Callable[..., None]":
    import functools

    @functools.wraps(command)  # keeps the signature Typer reads the options from
    def wrapper(*args: "Any", **kwargs: "Any") -> None:
        try:
            command(*args, **kwargs)
        except BrokenPipeError:
            raise PipeClosed from None

    return wrapper


def _root(ctx: Any) -> Shared:
    """The shared options given before the command (`chatcli --config X history list`)."""
    while ctx is not None:
        if isinstance(ctx.obj, Shared):
            return ctx.obj
        ctx = ctx.parent
    return Shared()


app = Typer(
    name="chatcli",
    help="A terminal chatbot: OpenAI, Anthropic, any OpenAI-compatible server, or a local model.\n\n"
         "With no command: an interactive chat. Piped stdin becomes the first message.",
    rich_markup_mode=None,  # Click's plain help: no rich import on --help
    pretty_exceptions_enable=False,  # errors are reported by run(), tracebacks only with --debug
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def option(dest: str, **extra: "Any") -> "Any":
    opt: Opt = BY_DEST[dest]
    flags = opt.flags if not opt.off_flags else ("/".join((*opt.flags, *opt.off_flags)),)

    def limit(value: float | None) -> float | None:  # an int option's limits are ints ("x>=1")
        return int(value) if value is not None and opt.kind == "int" else value

    if opt.kind == "path":
        extra["dir_okay"] = False  # a file: cli/fast.py refuses a directory the same way
    return typer.Option(*flags, metavar=opt.metavar, help=opt.help, min=limit(opt.min), max=limit(opt.max),
                        **extra)


config_opt = Annotated[Path | None, option("config")]

#: The Python type Typer reads for each kind of option in the table.
_TYPES: dict[str, Any] = {"str": str | None, "int": int | None, "float": float | None, "path": Path | None,
                          "flag": bool, "switch": bool | None, "list": list[str] | None}


def _shared_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give `command` one parameter per option of the table, where its `shared` parameter stands,
    and call it with their values as one `Shared`: a new shared option needs no edit here."""
    signature = inspect.signature(command)
    params: list[inspect.Parameter] = []
    annotations = {k: v for k, v in command.__annotations__.items() if k != "shared"}
    for param in signature.parameters.values():
        if param.name != "shared":
            params.append(param)
            continue
        for opt in OPTIONS:
            extra = {"show_default": False} if opt.kind in ("list", "switch") else {}
            # A type built from a value: mypy cannot follow it; Typer reads it at run time.
            kind = Annotated[_TYPES[opt.kind], option(opt.dest, **extra)]  # type: ignore[name-defined,valid-type]
            default = False if opt.kind == "flag" else None
            params.append(inspect.Parameter(opt.dest, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                                            annotation=kind))
            annotations[opt.dest] = kind

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {opt.dest: kwargs.pop(opt.dest) for opt in OPTIONS}
        shared = Shared(**{k: (v or ()) if BY_DEST[k].kind == "list" else v for k, v in values.items()})
        return command(*args, shared=shared, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = annotations
    return wrapper


def version_callback(value: bool) -> None:
    if value:  # reached only when main()'s fast path did not see it (e.g. `chatcli -m x --version`)
        typer.echo(f"chatcli {__version__}")
        raise typer.Exit(0)


version_opt = Annotated[bool, typer.Option(
    "--version", is_eager=True, callback=version_callback, help="Print the version and exit.")]


@app.callback(invoke_without_command=True)
@_pipe_safe
@_shared_options
def root(ctx: typer.Context, shared: Shared, version: version_opt = False) -> None:
    state.debug = state.debug or shared.debug
    ctx.obj = shared
    if ctx.invoked_subcommand is None:
        raise typer.Exit(run_chat(shared))


@app.command(help="One reply, then exit. Piped stdin is read too: alone it is the prompt; with a "
                  "PROMPT it follows it in a fenced block; an image or a PDF is an attachment.",
             epilog="Exit 3: a partial reply -- cut at the token limit, filtered, the connection lost, or "
                    "finish reason tool_calls: the reply stopped with tool calls that did not run "
                    "(declined, not allowed without a terminal, no tools enabled, or max_tool_rounds).")
@_pipe_safe
@_shared_options
def ask(ctx: typer.Context,
        prompt: Annotated[list[str] | None, typer.Argument(
            metavar="PROMPT", show_default=False,
            help="The message (its words are joined by spaces). Without one, piped stdin is the message.")
        ] = None,
        json_: Annotated[bool, option("json_")] = False,
        shared: Shared = None) -> None:  # type: ignore[assignment]  # filled in by _shared_options
    raise typer.Exit(run_ask(Ask(shared.over(ctx.obj or Shared()), prompt or [], json_)))


@app.command(help="Configured providers, their models and aliases. Marks the default, says which "
                  "keys are missing and which aliases point nowhere.")
@_pipe_safe
def models(ctx: typer.Context, config: config_opt = None) -> None:
    from chatcli import config as configmod
    from chatcli.render.sanitize import sanitize_line

    app_ = make_app(Shared(config=config).over(_root(ctx)))
    out(app_.env, configmod.describe_models(app_.loaded, sanitize_line))


@app.command(help="The roles of the config file ([roles.NAME]).")
@_pipe_safe
def roles(ctx: typer.Context, config: config_opt = None) -> None:
    from chatcli.roles import describe_roles

    app_ = make_app(Shared(config=config).over(_root(ctx)))
    out(app_.env, describe_roles(app_.settings.roles))


config_app = Typer(help="Where the config lives, the effective settings, a starter file.",
                         no_args_is_help=True, rich_markup_mode=None)
app.add_typer(config_app, name="config")


@config_app.command("path", help="Print the config file's path.")
@_pipe_safe
def config_path(ctx: typer.Context, config: config_opt = None) -> None:
    from chatcli import config as configmod

    env = environment()
    shared = Shared(config=config).over(_root(ctx))
    _, path, _ = configmod.merged_environ(env.environ, env.cwd, shared.config)
    out(env, f"{path}\n")
    if not path.exists():  # information, not an error: stderr, so $(chatcli config path) is the path
        info(env, "The file does not exist yet; `chatcli config init` writes a starter one.")


@config_app.command("show", help="The effective settings, keys masked.")
@_pipe_safe
def config_show(ctx: typer.Context, config: config_opt = None) -> None:
    from chatcli import config as configmod

    app_ = make_app(Shared(config=config).over(_root(ctx)))
    out(app_.env, configmod.describe(app_.loaded))


@config_app.command("init", help="Write a starter config file (0600) that documents every key.")
@_pipe_safe
def config_init(ctx: typer.Context, force: Annotated[bool, typer.Option(
                    "--force", help="Overwrite an existing file.")] = False,
                config: config_opt = None) -> None:
    from chatcli import config as configmod

    env = environment()
    shared = Shared(config=config).over(_root(ctx))
    _, path, _ = configmod.merged_environ(env.environ, env.cwd, shared.config)
    configmod.write_example(path, force=force)
    info(env, f"Wrote {path}")


history_app = Typer(help="Saved conversations.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(history_app, name="history")


@history_app.command("list", help="Saved conversations, most recent first.")
@_pipe_safe
def history_list(ctx: typer.Context,
                 limit: Annotated[int, typer.Option("-n", "--limit", min=1, metavar="N",
                                                    help="Show at most N conversations.")] = 20,
                 offset: Annotated[int, typer.Option("--offset", min=0, metavar="N",
                                                     help="Skip the N most recent first.")] = 0) -> None:
    from chatcli.history import commands as history

    app_ = make_app(_root(ctx))
    with app_.history_store() as store:
        history.list_cmd(store, app_.env.stdout, limit=limit, offset=offset)


@history_app.command("show", help="Print conversation ID (an id or a unique prefix).")
@_pipe_safe
def history_show(ctx: typer.Context, conv_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    from chatcli.history import commands as history

    app_ = make_app(_root(ctx))
    render = None
    if app_.view_mode() == "markdown":  # a terminal: replies as panels, like when they streamed
        from chatcli.render import render_markdown_once

        def render(text: str) -> None:
            render_markdown_once(text, app_.env.stdout, mode="markdown", no_color=app_.env.no_color)

    with app_.history_store() as store:
        history.show_cmd(store, conv_id, app_.env.stdout, render=render)


@history_app.command("export", help="Write conversation ID as markdown (or JSON) to stdout or a file.")
@_pipe_safe
def history_export(ctx: typer.Context, conv_id: Annotated[str, typer.Argument(metavar="ID")],
                   output: Annotated[Path | None, typer.Option(
                       "-o", "--output", metavar="FILE", dir_okay=False, help="Write to FILE (0600).")] = None,
                   json_: Annotated[bool, typer.Option("--json", help="JSON instead of markdown.")] = False,
                   force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False
                   ) -> None:
    from chatcli.history import commands as history

    app_ = make_app(_root(ctx))
    with app_.history_store() as store:
        written = history.export_cmd(store, conv_id, fmt="json" if json_ else "markdown",
                                     out_file=output, stdout=app_.env.stdout, force=force)
    if written is not None:
        app_.env.warn(f"wrote {written}")


@history_app.command("delete", help="Delete conversation ID (asks first on a terminal).")
@_pipe_safe
def history_delete(ctx: typer.Context, conv_id: Annotated[str, typer.Argument(metavar="ID")],
                   yes: Annotated[bool, typer.Option("-y", "--yes", help=(
                       "Do not ask (required when stdin is not a terminal)."))] = False) -> None:
    from chatcli.history import commands as history

    app_ = make_app(_root(ctx))
    env = app_.env
    with app_.history_store() as store:
        history.delete_cmd(store, conv_id, env.stderr,
                           confirm=None if yes else history.terminal_confirm(env.stdin, env.stdin_isatty,
                                                                             env.stderr))


@history_app.command("search", help="Find saved conversations containing TEXT.")
@_pipe_safe
def history_search(ctx: typer.Context, text: Annotated[str, typer.Argument(metavar="TEXT")],
                   limit: Annotated[int, typer.Option("-n", "--limit", min=1, metavar="N",
                                                      help="Show at most N matches.")] = 20) -> None:
    from chatcli.history import commands as history

    app_ = make_app(_root(ctx))
    with app_.history_store() as store:
        history.search_cmd(store, text, app_.env.stdout, limit=limit)


tools_app = Typer(help="MCP servers: their state and tools; run one tool with no model.",
                  no_args_is_help=True, rich_markup_mode=None)
app.add_typer(tools_app, name="tools")


@tools_app.command("list", help="Each MCP server's state and tools (starts them to ask).")
@_pipe_safe
def tools_list(ctx: typer.Context, config: config_opt = None) -> None:
    from chatcli.tools import report

    app_ = make_app(Shared(config=config).over(_root(ctx)))
    try:
        code = report.list_cmd(app_.tool_runtime(), app_.env.stdout)
    finally:
        app_.close_tools()
    raise typer.Exit(code)


@tools_app.command("call", help="Run one tool with JSON arguments, no model involved.")
@_pipe_safe
def tools_call(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")],
               tool: Annotated[str, typer.Argument(metavar="TOOL")],
               arguments: Annotated[str, typer.Argument(metavar="JSON")] = "{}",
               config: config_opt = None) -> None:
    from chatcli.tools import report

    app_ = make_app(Shared(config=config).over(_root(ctx)))
    try:
        code = report.call_cmd(app_.tool_runtime(), name, tool, arguments, app_.env.stdout, app_.env.stderr)
    finally:
        app_.close_tools()
    raise typer.Exit(code)
