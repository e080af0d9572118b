"""The `chatcli` command: argv -> a flow. The one place where errors become exit codes.

* a `ChatCLIError` -> one line `chatcli: <message>` on stderr (sanitized, secrets redacted) and
  its exit code (the error class's own, chatcli/errors.py); Typer/Click usage errors -> Click's
  message, exit 2;
* Ctrl-C -> 130; SIGTERM/SIGHUP -> 128 + signal (after the reply in flight is saved);
* stdout closed by the reader (`| head -1`) -> a quiet exit 141, what any Unix filter killed by
  SIGPIPE reports, with fd 1 pointed at /dev/null so the interpreter's last flush stays silent;
* a character the terminal's encoding lacks -> a visible replacement, never a crash: `main()`
  sets the process's streams up once (chatcli/termenc.py), for every output path at once;
* anything else is a bug: one line naming it, and the traceback only with `--debug` -- redacted,
  and never with local variables (they hold keys).

The rooms: `report.py` writes what the user sees, `wiring.py` builds the app from the options,
`ask.py` and `chat.py` start the two flows, `typer_app.py` is every other command line.

Start-up cost: nothing heavy at import time. `--version` is answered in `main()` before Typer is
imported at all. `chatcli`, `chatcli -m X` and `chatcli ask ...` are read without Typer
(chatcli/cli/fast.py), with the garbage collector paused until the slow start-up work is done
(chatcli/warmup.py); only the remaining command lines import `typer_app`.
"""

import os
import sys

from chatcli import __version__

# Not `typing.TYPE_CHECKING`: importing typing (and dataclasses, ~15 ms together) would be most
# of the `--version` budget. mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

EPIPE_EXIT = 141  # 128 + SIGPIPE


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
    from chatcli.cli.report import silence_stdout

    try:
        sys.stdout.write(f"chatcli {__version__}\n")
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        sys.exit(EPIPE_EXIT)
    sys.exit(0)


def run(args: "list[str]", *, fast_path: bool = True) -> int:
    """Run the command line; return the exit code. Never raises (but SystemExit from Click).
    `fast_path=False` sends every command line through Typer (tests compare the two readers)."""
    from chatcli.cli import report
    from chatcli.errors import ChatCLIError, ExitCode

    state = report.state
    state.debug = "--debug" in args[: args.index("--") if "--" in args else len(args)] or report.truthy(
        os.environ.get("CHATCLI_DEBUG"))
    try:
        # The command lines people type most -- `chatcli`, `chatcli -m X`, `chatcli ask ...` --
        # skip Typer, whose import and per-option pydantic adapters cost ~60-110 ms before the
        # prompt or the request (measured; see chatcli/cli/options.py for why the two readers
        # cannot disagree). Anything else, help and mistakes included, goes to Typer.
        from chatcli.cli.fast import parse_fast
        from chatcli.cli.options import Ask, Shared

        fast = Shared() if not args else parse_fast(args) if fast_path else None
        if fast is not None:
            from chatcli import warmup

            warmup.pause_gc()  # until the slow start-up work is done: see chatcli/warmup.py
        if isinstance(fast, Shared):
            from chatcli.cli.chat import run_chat

            return run_chat(fast)
        if isinstance(fast, Ask):
            from chatcli.cli.ask import run_ask

            return run_ask(fast)
        import typer.main

        from chatcli.cli.typer_app import app

        command = typer.main.get_command(app)
        result = command.main(args=args, prog_name="chatcli", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except ChatCLIError as exc:
        report.error(exc.message)
        if state.debug:
            report.traceback(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        report.write_err("\n")
        return int(ExitCode.INTERRUPTED)
    except (BrokenPipeError, report.PipeClosed):
        report.silence_stdout()
        return EPIPE_EXIT
    except Exception as exc:
        import typer

        if isinstance(exc, typer.TyperException):  # Click's usage errors: its own format, exit 2
            show = getattr(exc, "show", None)
            if show is not None:
                show(file=sys.stderr)
            else:
                report.error(exc.message)
            return int(getattr(exc, "exit_code", ExitCode.USAGE))
        if isinstance(exc, typer.Abort):
            return int(ExitCode.INTERRUPTED)
        report.error(f"internal error: {type(exc).__name__}: {exc}"
                     + ("" if state.debug else " (run with --debug for the traceback)"))
        if state.debug:
            report.traceback(exc)
        return int(ExitCode.FAILED)
    except BaseException as exc:
        # SIGTERM/SIGHUP while a reply streams (handlers installed by cli/wiring.py): the reply in
        # flight was saved on the way up; exit 128 + signal. chatcli.cli.signals is imported only if
        # it was installed, so `--help` does not pay for it (it pulls in threading).
        terminated = sys.modules.get("chatcli.cli.signals")
        if terminated is not None and isinstance(exc, terminated.Terminated):
            return int(exc.exit_code)
        raise
    finally:
        if state.restore_signals is not None:
            state.restore_signals()
            state.restore_signals = None
