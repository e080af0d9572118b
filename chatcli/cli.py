"""The `chatcli` command: flags -> Settings (config.py) -> objects (app.py) -> a flow (oneshot / repl).

Wiring only. This is also the one place that turns errors into what the user sees:

* a `ChatCLIError` -> one line `chatcli: <message>` on stderr (sanitized, secrets redacted) and
  its exit code (SPEC "Exit codes"); Typer/Click usage errors -> Click's message, exit 2;
* Ctrl-C -> 130; SIGTERM/SIGHUP -> 128 + signal (after the reply in flight is saved);
* stdout closed by the reader (`| head -1`) -> a quiet exit 141, what any Unix filter killed by
  SIGPIPE reports, with fd 1 pointed at /dev/null so the interpreter's last flush stays silent;
* a character the terminal's encoding lacks -> a visible replacement, never a crash: `main()`
  sets the process's streams up once (chatcli/termenc.py), for every output path at once;
* anything else is a bug: one line naming it, and the traceback only with `--debug` — redacted,
  and never with local variables (they hold keys).

Start-up cost: this module imports nothing heavy at import time. `--version` is answered in
`main()` before Typer is imported at all: Typer (+ its vendored click, shellingham) costs ~70 ms
here, more than the whole 60 ms budget for `--version`. Typer runs with `rich_markup_mode=None`
so `--help` is Click's plain formatter and never imports rich (~60-110 ms). `chatcli`,
`chatcli -m X` and `chatcli ask ...` are read without Typer at all (chatcli/options.py), with the
garbage collector paused until the slow start-up work is done (chatcli/gcpause.py). Commands
import what they need when they run.
"""

import os
import sys

from chatcli import __version__

# Not `typing.TYPE_CHECKING`: importing typing (and dataclasses, ~15 ms together) would be most
# of the `--version` budget. mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    import typer

    from chatcli.app import App
    from chatcli.config import Resolved
    from chatcli.env import Environment
    from chatcli.options import Ask, Opt, Shared
    from chatcli.providers.base import Provider
    from chatcli.render.base import ReplyView
    from chatcli.session import Session


EPIPE_EXIT = 141  # 128 + SIGPIPE


class _State:
    """What the error handler needs to know about the run it is reporting on."""

    debug: bool = False
    secrets: "tuple[str, ...]" = ()
    restore_signals: "Callable[[], None] | None" = None


_state = _State()


# -- entry point ---------------------------------------------------------------------------------


def main(argv: "Sequence[str] | None" = None) -> "NoReturn":
    from chatcli import termenc

    termenc.setup()  # once, for every output path: see chatcli/termenc.py
    args = list(sys.argv[1:] if argv is None else argv)
    if _asks_version(args):
        _print_version()
    sys.exit(run(args))


def _asks_version(args: "list[str]") -> bool:
    """`--version` among the leading options (before any command or `--`)."""
    for arg in args:
        if arg == "--version":
            return True
        if arg == "--" or not arg.startswith("-"):
            return False
    return False


def _print_version() -> "NoReturn":
    try:
        sys.stdout.write(f"chatcli {__version__}\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(EPIPE_EXIT)
    sys.exit(0)


def run(args: "list[str]", *, fast_path: bool = True) -> int:
    """Run the command line; return the exit code. Never raises (but SystemExit from Click).
    `fast_path=False` sends every command line through Typer (tests compare the two readers)."""
    from chatcli.errors import ChatCLIError, ExitCode

    _state.debug = "--debug" in args[: args.index("--") if "--" in args else len(args)] or _truthy(
        os.environ.get("CHATCLI_DEBUG"))
    try:
        # The command lines people type most -- `chatcli`, `chatcli -m X`, `chatcli ask ...` --
        # skip Typer, whose import and per-option pydantic adapters cost ~60-110 ms before the
        # prompt or the request (measured; see chatcli/options.py for why the two readers
        # cannot disagree). Anything else, help and mistakes included, goes to Typer.
        from chatcli.options import Ask, Shared, parse_fast

        fast = Shared() if not args else parse_fast(args) if fast_path else None
        if fast is not None:
            from chatcli import gcpause

            gcpause.pause()  # until the slow start-up work is done: see chatcli/gcpause.py
        if isinstance(fast, Shared):
            return _repl(fast)
        if isinstance(fast, Ask):
            return _ask(fast)
        import typer.main

        command = typer.main.get_command(_build_app())
        result = command.main(args=args, prog_name="chatcli", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except ChatCLIError as exc:
        _report(exc.message)
        if _state.debug:
            _traceback(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _write_err("\n")
        return int(ExitCode.INTERRUPTED)
    except (BrokenPipeError, _PipeClosed):
        _silence_stdout()
        return EPIPE_EXIT
    except Exception as exc:
        import typer

        if isinstance(exc, typer.TyperException):  # Click's usage errors: its own format, exit 2
            show = getattr(exc, "show", None)
            if show is not None:
                show(file=sys.stderr)
            else:
                _report(exc.message)
            return int(getattr(exc, "exit_code", ExitCode.USAGE))
        if isinstance(exc, typer.Abort):
            return int(ExitCode.INTERRUPTED)
        _report(f"internal error: {type(exc).__name__}: {exc}"
                + ("" if _state.debug else " (run with --debug for the traceback)"))
        if _state.debug:
            _traceback(exc)
        return int(ExitCode.FAILED)
    except BaseException as exc:
        # SIGTERM/SIGHUP while a reply streams (handlers installed by _make_app): the reply in
        # flight was saved on the way up; exit 128 + signal. chatcli.signals is imported only if
        # it was installed, so `--help` does not pay for it (it pulls in threading).
        terminated = sys.modules.get("chatcli.signals")
        if terminated is not None and isinstance(exc, terminated.Terminated):
            return int(exc.exit_code)
        raise
    finally:
        if _state.restore_signals is not None:
            _state.restore_signals()
            _state.restore_signals = None


# -- reporting ------------------------------------------------------------------------------------


def _truthy(value: "str | None") -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _secrets() -> "tuple[str, ...]":
    """Known keys plus anything in the environment named like a credential."""
    from chatcli.redact import is_credential_name

    found = list(_state.secrets)
    for name, value in os.environ.items():
        if value and len(value) >= 8 and is_credential_name(name):
            found.append(value)
    return tuple(found)


def _clean(text: str) -> str:
    from chatcli.redact import redact
    from chatcli.render.sanitize import sanitize_line

    return sanitize_line(redact(text, _secrets()))


def _report(message: str) -> None:
    line = " ".join(_clean(message).split("\n"))
    _write_err(f"chatcli: {line}\n")


def _traceback(exc: BaseException) -> None:
    import traceback

    # Sanitized like any other text (an exception message can carry server text), but newlines
    # kept: a traceback is many lines. Locals are never shown.
    from chatcli.redact import redact
    from chatcli.render.sanitize import sanitize

    text = "".join(traceback.format_exception(exc))
    _write_err(sanitize(redact(text, _secrets())))


def _write_err(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After EPIPE: point fd 1 at /dev/null so the interpreter's final flush cannot fail loudly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


# -- building objects -----------------------------------------------------------------------------


def _environment() -> "Environment":
    from chatcli.env import Environment

    return Environment.from_process()


def _make_app(shared: "Shared", env: "Environment | None" = None) -> "App":
    from chatcli import config
    from chatcli.app import App

    env = env or _environment()
    loaded = config.load(env.environ, env.cwd, shared.overrides())
    _state.debug = _state.debug or loaded.settings.debug
    model_flag = shared.last_model
    role = loaded.settings.roles.get(loaded.settings.role or "")
    if model_flag is None and role is not None:
        model_flag = role.model  # the role's model beats a resumed conversation's own, as -m does
    app = App(env=env, loaded=loaded, model_flag=model_flag)
    _state.secrets = app.secrets()
    if _state.restore_signals is None:
        from chatcli.signals import install_termination_handlers

        _state.restore_signals = install_termination_handlers()
    return app


def _text_arg(what: str, value: str) -> str:
    """An argument that is text (a prompt, a system prompt, a model name) as the UTF-8 the user
    typed, also under a C locale (chatcli/termenc.py); bytes that are not UTF-8 are refused, as
    piped stdin is: a model cannot be sent them, and the request body would fail halfway."""
    from chatcli.termenc import undecodable, utf8_text

    text = utf8_text(value)
    bad = undecodable(text)
    if bad is not None:
        from chatcli.errors import InputError

        raise InputError(f"{what} is not UTF-8 text (invalid byte 0x{bad[0]:02x} at offset {bad[1]}); "
                         "pass UTF-8 (e.g. set LANG=C.UTF-8 in the terminal)")
    return text


def _text_args(shared: "Shared") -> None:
    if shared.system is not None:
        shared.system = _text_arg("the --system prompt", shared.system)
    if shared.model:
        shared.model = tuple(_text_arg("the --model name", m) for m in shared.model)


def _check_resume_flags(shared: "Shared") -> None:
    if shared.continue_ and shared.resume is not None:
        from chatcli.errors import UsageError

        raise UsageError("use either --continue or --resume ID, not both")


# -- the Typer app ----------------------------------------------------------------------------------


def _build_app() -> "typer.Typer":
    # Defined in a function so that importing this module (the console script does) costs no
    # Typer import; see the module docstring.
    from pathlib import Path
    from typing import Annotated

    import typer

    from chatcli.options import BY_DEST, Ask, Shared

    Typer = _plain_help_typer(typer)
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
            extra["dir_okay"] = False  # a file: options.py refuses a directory the same way
        return typer.Option(*flags, metavar=opt.metavar, help=opt.help, min=limit(opt.min), max=limit(opt.max),
                            **extra)

    model_opt = Annotated[list[str] | None, option("model", show_default=False)]
    system_opt = Annotated[str | None, option("system")]
    max_tokens_opt = Annotated[int | None, option("max_tokens")]
    temperature_opt = Annotated[float | None, option("temperature")]
    continue_opt = Annotated[bool, option("continue_")]
    resume_opt = Annotated[str | None, option("resume")]
    no_save_opt = Annotated[bool, option("no_save")]
    plain_opt = Annotated[bool | None, option("plain", show_default=False)]
    config_opt = Annotated[Path | None, option("config")]
    debug_opt = Annotated[bool, option("debug")]
    tools_opt = Annotated[list[str] | None, option("tools", show_default=False)]
    no_tools_opt = Annotated[bool, option("no_tools")]
    allow_tool_opt = Annotated[list[str] | None, option("allow_tool", show_default=False)]
    attach_opt = Annotated[list[str] | None, option("attach", show_default=False)]
    role_opt = Annotated[str | None, option("role")]

    def version_callback(value: bool) -> None:
        if value:  # reached only when main()'s fast path did not see it (e.g. `chatcli -m x --version`)
            typer.echo(f"chatcli {__version__}")
            raise typer.Exit(0)

    version_opt = Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=version_callback, help="Print the version and exit.")]

    @app.callback(invoke_without_command=True)
    @_pipe_safe
    def root(ctx: typer.Context, model: model_opt = None, system: system_opt = None,
             max_tokens: max_tokens_opt = None, temperature: temperature_opt = None,
             continue_: continue_opt = False, resume: resume_opt = None, no_save: no_save_opt = False,
             plain: plain_opt = None, config: config_opt = None, debug: debug_opt = False,
             tools: tools_opt = None, no_tools: no_tools_opt = False, allow_tool: allow_tool_opt = None,
             attach: attach_opt = None, role: role_opt = None, version: version_opt = False) -> None:
        shared = Shared(model=model or (), system=system, max_tokens=max_tokens, temperature=temperature,
                        continue_=continue_, resume=resume, no_save=no_save, plain=plain, config=config,
                        debug=debug, tools=tools or (), no_tools=no_tools, allow_tool=allow_tool or (),
                        attach=attach or (), role=role)
        _state.debug = _state.debug or debug
        ctx.obj = shared
        if ctx.invoked_subcommand is None:
            raise typer.Exit(_repl(shared))

    @app.command(help="One reply, then exit. Piped stdin is read too: alone it is the prompt; with a "
                      "PROMPT it follows it in a fenced block.")
    @_pipe_safe
    def ask(ctx: typer.Context,
            prompt: Annotated[list[str] | None, typer.Argument(
                metavar="PROMPT", show_default=False,
                help="The message (its words are joined by spaces). Without one, piped stdin is the message.")
            ] = None,
            json_: Annotated[bool, option("json_")] = False,
            model: model_opt = None, system: system_opt = None,
            max_tokens: max_tokens_opt = None, temperature: temperature_opt = None,
            continue_: continue_opt = False, resume: resume_opt = None, no_save: no_save_opt = False,
            plain: plain_opt = None, config: config_opt = None, debug: debug_opt = False,
            tools: tools_opt = None, no_tools: no_tools_opt = False, allow_tool: allow_tool_opt = None,
            attach: attach_opt = None, role: role_opt = None) -> None:
        shared = Shared(model=model or (), system=system, max_tokens=max_tokens, temperature=temperature,
                        continue_=continue_, resume=resume, no_save=no_save, plain=plain, config=config,
                        debug=debug, tools=tools or (), no_tools=no_tools,
                        allow_tool=allow_tool or (), attach=attach or (), role=role).over(ctx.obj or Shared())
        raise typer.Exit(_ask(Ask(shared, prompt or [], json_)))

    @app.command(help="Configured providers, their models and aliases. Marks the default, says which "
                      "keys are missing and which aliases point nowhere.")
    @_pipe_safe
    def models(ctx: typer.Context, config: config_opt = None) -> None:
        from chatcli import config as configmod
        from chatcli.render.sanitize import sanitize_line

        app_ = _make_app(Shared(config=config).over(_root(ctx)))
        _out(app_.env, configmod.describe_models(app_.loaded, sanitize_line))

    @app.command(help="The roles of the config file ([roles.NAME]).")
    @_pipe_safe
    def roles(ctx: typer.Context, config: config_opt = None) -> None:
        from chatcli.roles import describe_roles

        app_ = _make_app(Shared(config=config).over(_root(ctx)))
        _out(app_.env, describe_roles(app_.settings.roles))

    config_app = Typer(help="Where the config lives, the effective settings, a starter file.",
                             no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(config_app, name="config")

    @config_app.command("path", help="Print the config file's path.")
    @_pipe_safe
    def config_path(ctx: typer.Context, config: config_opt = None) -> None:
        from chatcli import config as configmod

        env = _environment()
        shared = Shared(config=config).over(_root(ctx))
        _, path, _ = configmod.merged_environ(env.environ, env.cwd, shared.config)
        _out(env, f"{path}\n")
        if not path.exists():  # information, not an error: stderr, so $(chatcli config path) is the path
            _info(env, "The file does not exist yet; `chatcli config init` writes a starter one.")

    @config_app.command("show", help="The effective settings, keys masked.")
    @_pipe_safe
    def config_show(ctx: typer.Context, config: config_opt = None) -> None:
        from chatcli import config as configmod

        app_ = _make_app(Shared(config=config).over(_root(ctx)))
        _out(app_.env, configmod.describe(app_.loaded))

    @config_app.command("init", help="Write a starter config file (0600) that documents every key.")
    @_pipe_safe
    def config_init(ctx: typer.Context, force: Annotated[bool, typer.Option(
                        "--force", help="Overwrite an existing file.")] = False,
                    config: config_opt = None) -> None:
        from chatcli import config as configmod

        env = _environment()
        shared = Shared(config=config).over(_root(ctx))
        _, path, _ = configmod.merged_environ(env.environ, env.cwd, shared.config)
        configmod.write_example(path, force=force)
        _info(env, f"Wrote {path}")

    history_app = Typer(help="Saved conversations.", no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(history_app, name="history")

    @history_app.command("list", help="Saved conversations, most recent first.")
    @_pipe_safe
    def history_list(ctx: typer.Context,
                     limit: Annotated[int, typer.Option("-n", "--limit", min=1, metavar="N",
                                                        help="Show at most N conversations.")] = 20,
                     offset: Annotated[int, typer.Option("--offset", min=0, metavar="N",
                                                         help="Skip the N most recent first.")] = 0) -> None:
        from chatcli import history

        app_ = _make_app(_root(ctx))
        with app_.history_store() as store:
            history.list_cmd(store, app_.env.stdout, limit=limit, offset=offset)

    @history_app.command("show", help="Print conversation ID (an id or a unique prefix).")
    @_pipe_safe
    def history_show(ctx: typer.Context, conv_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
        from chatcli import history

        app_ = _make_app(_root(ctx))
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
        from chatcli import history

        app_ = _make_app(_root(ctx))
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
        from chatcli import history

        app_ = _make_app(_root(ctx))
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
        from chatcli import history

        app_ = _make_app(_root(ctx))
        with app_.history_store() as store:
            history.search_cmd(store, text, app_.env.stdout, limit=limit)

    tools_app = Typer(help="MCP servers: their state and tools; run one tool with no model.",
                      no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(tools_app, name="tools")

    @tools_app.command("list", help="Each MCP server's state and tools (starts them to ask).")
    @_pipe_safe
    def tools_list(ctx: typer.Context, config: config_opt = None) -> None:
        from chatcli.tools import report

        app_ = _make_app(Shared(config=config).over(_root(ctx)))
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

        app_ = _make_app(Shared(config=config).over(_root(ctx)))
        try:
            code = report.call_cmd(app_.tool_runtime(), name, tool, arguments, app_.env.stdout, app_.env.stderr)
        finally:
            app_.close_tools()
        raise typer.Exit(code)

    return app


#: Help for the positional arguments the history commands share (keyed by metavar).
_ARGUMENT_HELP = {
    "NAME": "An MCP server's name ([mcp.servers.NAME] in the config).",
    "TOOL": "The tool's name on that server (chatcli tools list shows them).",
    "JSON": 'The arguments as one JSON object, e.g. \'{"timezone": "Asia/Tokyo"}\'.',
    "ID": "A conversation id, or a unique prefix of one (chatcli history list shows them).",
    "TEXT": "What to look for in saved messages.",
}


def _plain_help_typer(typer: "Any") -> "type[typer.Typer]":
    """A Typer whose commands' help reads like a man page. Typer 0.29's plain help prints the
    usage as `{ID}` and `[[PROMPT]...]...` and each argument with its Python type (`ID <str>`,
    `[PROMPT]... <list[str]>`); Click's own forms are `ID` and `[PROMPT]...`, and an argument's
    line is its help text. Options are Typer's (they carry metavars and help: chatcli/options.py)."""

    def usage(param: "Any") -> str:
        name = param.metavar or param.name.upper()
        name = name if param.required else f"[{name}]"
        return name + ("..." if param.nargs != 1 else "")

    class Command(typer.core.TyperCommand):  # type: ignore[misc]  # `typer` is passed in: Any here
        def collect_usage_pieces(self, ctx: "Any") -> "list[str]":
            pieces = [self.options_metavar] if self.options_metavar else []
            for param in self.get_params(ctx):
                if param.param_type_name == "argument":
                    pieces.append(usage(param))
                else:
                    pieces.extend(param.get_usage_pieces(ctx))
            return pieces

        def format_options(self, ctx: "Any", formatter: "Any") -> None:
            args, opts = [], []
            for param in self.get_params(ctx):
                if param.param_type_name == "argument":
                    name = param.metavar or param.name.upper()
                    args.append((usage(param), param.help or _ARGUMENT_HELP.get(name, "")))
                elif param.param_type_name == "option":
                    record = param.get_help_record(ctx)
                    if record is not None:
                        opts.append(record)
            for title, rows in (("Arguments", args), ("Options", opts)):
                if rows:
                    with formatter.section(title):
                        formatter.write_dl(rows)

    class PlainTyper(typer.Typer):  # type: ignore[misc]
        def command(self, *args: "Any", **kwargs: "Any") -> "Any":
            kwargs.setdefault("cls", Command)
            return super().command(*args, **kwargs)

    return PlainTyper


class _PipeClosed(Exception):
    """stdout's reader went away. Not an OSError on purpose: Typer turns an EPIPE OSError into
    a bare `sys.exit(1)` of its own, and we want the quiet 141 that `run()` reports."""


def _pipe_safe(command: "Callable[..., None]") -> "Callable[..., None]":
    import functools

    @functools.wraps(command)  # keeps the signature Typer reads the options from
    def wrapper(*args: "Any", **kwargs: "Any") -> None:
        try:
            command(*args, **kwargs)
        except BrokenPipeError:
            raise _PipeClosed from None

    return wrapper


def _root(ctx: "Any") -> "Shared":
    """The shared options given before the command (`chatcli --config X history list`)."""
    from chatcli.options import Shared

    while ctx is not None:
        if isinstance(ctx.obj, Shared):
            return ctx.obj
        ctx = ctx.parent
    return Shared()


def _info(env: "Environment", line: str) -> None:
    """A line of information for the user on stderr: no `chatcli:` prefix, which marks warnings
    and errors."""
    try:
        env.stderr.write(line + "\n")
        env.stderr.flush()
    except (OSError, ValueError):
        pass


def _out(env: "Environment", text: str) -> None:
    env.stdout.write(text)
    env.stdout.flush()


def _ask(ask: "Ask") -> int:
    """`chatcli ask`: one reply (chatcli.oneshot)."""
    _state.debug = _state.debug or ask.shared.debug
    _check_resume_flags(ask.shared)
    _text_args(ask.shared)
    ask.prompt = [_text_arg("the prompt argument", word) for word in ask.prompt]
    app = _make_app(ask.shared)
    if len(ask.shared.model) > 1:  # `ask -m A -m B`: every model at once (chatcli/compare.py)
        from chatcli import compare

        return compare.run(app, ask.shared.model, ask.prompt, as_json=ask.as_json, resume=ask.shared.resume,
                           continue_=ask.shared.continue_, attach=ask.shared.attach)
    from chatcli import oneshot

    return oneshot.run(app, ask.prompt, as_json=ask.as_json, resume=ask.shared.resume,
                       continue_=ask.shared.continue_, attach=ask.shared.attach)


def _repl(shared: "Shared") -> int:
    """`chatcli` with no command: the interactive chat (chatcli.repl.run_repl)."""
    _check_resume_flags(shared)
    _text_args(shared)
    app = _make_app(shared)
    from chatcli import stdin

    conversation = app.load_conversation(resume=shared.resume, continue_=shared.continue_)
    resolved = app.resolve_for(conversation)
    # `cat notes.md | chatcli`: the piped text is the first message. An idle pipe is not an error
    # here (the chat itself is what the user asked for): we just go on without a first message.
    pending: list[Any] = []
    if shared.attach:  # read and checked before the chat starts: a bad file is exit 2, as in `ask`
        from chatcli.oneshot import load_attachments

        pending = load_attachments(app, shared.attach, resolved)
    first = None if "-" in shared.attach else stdin.read_piped(app.env, app.settings.stdin_timeout,
                                                                have_argument=True)
    if first is not None and not first.strip():
        first = None
    # A new conversation's history store is opened by the REPL once the prompt is up: SQLite and
    # the store module are ~10 ms of the prompt's 250 ms budget. Resuming opened it already.
    store_now = app.settings.save and app.store_is_open

    def start() -> "Session":
        # Called by the REPL once its prompt is drawn: the provider and session modules are ~20 ms
        # of the prompt's budget (chatcli/repl.py). What the prompt shows until then is the label.
        # The MCP servers start here too, in the background: the prompt never waits for them.
        return app.session(resolved, app.provider(resolved.provider), conversation=conversation,
                           recorder=app.recorder(conversation) if store_now else None,
                           tools=app.tool_host(interactive=True, chat=True))

    def open_view(s: "Session") -> "ReplyView":
        label = f"{s.provider.name}:{s.model}"
        return app.tool_view(label=label, chat=True) if s.tools is not None else app.view(label=label, chat=True)

    def resolve_model(spec: str) -> "tuple[Provider, str]":
        found = app.resolve(spec)
        return app.provider(found.provider), found.model

    try:
        return _run_chat(app, start, open_view, resolved, resolve_model, store_now, first, pending)
    finally:
        app.close_tools()  # every MCP server ends with the chat


def _run_chat(app: "App", start: "Callable[[], Session]", open_view: "Callable[[Session], ReplyView]",
              resolved: "Resolved", resolve_model: "Callable[[str], tuple[Provider, str]]", store_now: bool,
              first: "str | None", pending: "list[Any]") -> int:
    from chatcli.repl import run_repl

    return run_repl(
        start,
        label=f"{resolved.provider.name}:{resolved.model}",
        settings=app.settings,
        open_view=open_view,
        resolve_model=resolve_model,
        store=app.store() if store_now else None,
        open_store=app.store if app.settings.save and not store_now else None,
        env=app.env,
        first_message=first,
        pending=pending,
    )
