"""From the parsed options to the composition root (chatcli/app.py): the shared steps every
command takes before it runs -- the environment, the config, the app, the text arguments."""

from typing import TYPE_CHECKING

from chatcli.cli.report import state

if TYPE_CHECKING:
    from chatcli.app import App
    from chatcli.cli.options import Shared
    from chatcli.env import Environment


def environment() -> "Environment":
    from chatcli.env import Environment

    return Environment.from_process()


def make_app(shared: "Shared", env: "Environment | None" = None) -> "App":
    from chatcli import config
    from chatcli.app import App

    env = env or environment()
    loaded = config.load(env.environ, env.cwd, shared.overrides())
    state.debug = state.debug or loaded.settings.debug
    model_flag = shared.last_model
    role = loaded.settings.roles.get(loaded.settings.role or "")
    if model_flag is None and role is not None:
        model_flag = role.model  # the role's model beats a resumed conversation's own, as -m does
    app = App(env=env, loaded=loaded, model_flag=model_flag)
    state.secrets = app.secrets()
    if state.restore_signals is None:
        from chatcli.cli.signals import install_termination_handlers

        state.restore_signals = install_termination_handlers()
    return app


def text_arg(what: str, value: str) -> str:
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


def text_args(shared: "Shared") -> None:
    if shared.system is not None:
        shared.system = text_arg("the --system prompt", shared.system)
    if shared.model:
        shared.model = tuple(text_arg("the --model name", m) for m in shared.model)


def check_resume_flags(shared: "Shared") -> None:
    if shared.continue_ and shared.resume is not None:
        from chatcli.errors import UsageError

        raise UsageError("use either --continue or --resume ID, not both")
