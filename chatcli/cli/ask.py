"""`chatcli ask`: the options checked, the app built, one reply, then an exit code that says how it ended.

    0    the provider said the reply is complete (`stop`)
    1    the request failed and no reply text was produced
    3    a partial reply was printed (any reason but `stop` and `interrupted`)
    130  interrupted by the user (Ctrl-C), partial reply kept

Start-up order, chosen for time to first byte: the model is resolved first (a missing key fails
before anything slow happens), then the provider's `warm()` (the SDK import, ~0.6-1.3 s) runs in
a thread only while the main thread waits for piped stdin, and is joined before the main thread
does anything else. Imports hold the GIL: the overlap pays where the main thread waits (a pipe
slow to deliver, `slow-command | chatcli ask`), while two threads both running Python cost more
than one -- measured ~40 ms of CPU on 2 cores when the history was also opened during the import.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from chatcli import warmup
from chatcli.cli import stdin as stdinmod
from chatcli.cli.report import state
from chatcli.cli.wiring import check_resume_flags, make_app, text_arg, text_args
from chatcli.env import Environment
from chatcli.errors import ExitCode

if TYPE_CHECKING:
    from chatcli.app import App
    from chatcli.attachments import Attachment
    from chatcli.cli.options import Ask
    from chatcli.config import Resolved
    from chatcli.events import Finish, Part
    from chatcli.render.base import ReplyView
    from chatcli.session import Session
    from chatcli.settings import ProviderConfig
    from chatcli.tools.host import McpHost


def run_ask(ask: Ask) -> int:
    state.debug = state.debug or ask.shared.debug
    check_resume_flags(ask.shared)
    text_args(ask.shared)
    ask.prompt = [text_arg("the prompt argument", word) for word in ask.prompt]
    app = make_app(ask.shared)
    if len(ask.shared.model) > 1:  # `ask -m A -m B`: every model at once (chatcli/compare/ask.py)
        from chatcli import compare

        return compare.run(app, ask.shared.model, ask.prompt, as_json=ask.as_json, resume=ask.shared.resume,
                           continue_=ask.shared.continue_, attach=ask.shared.attach)
    return run(app, ask.prompt, as_json=ask.as_json, resume=ask.shared.resume,
               continue_=ask.shared.continue_, attach=ask.shared.attach)


def exit_code(finish: Finish, text: str) -> ExitCode:
    if finish.reason == "stop":
        return ExitCode.OK
    if finish.reason == "interrupted":
        return ExitCode.INTERRUPTED
    if finish.reason == "tool_calls":
        return ExitCode.PARTIAL  # the reply ended with calls that did not run: text or not, incomplete
    return ExitCode.PARTIAL if text else ExitCode.FAILED


def _warm(provider: Any) -> None:
    # Any failure here is reported properly by the real call in stream(); a thread must not print.
    with contextlib.suppress(BaseException):
        provider.warm()


def run(app: App, prompt: Sequence[str], *, as_json: bool = False, resume: str | None = None,
        continue_: bool = False, attach: Sequence[str] = ()) -> int:
    try:
        return _run(app, prompt, as_json=as_json, resume=resume, continue_=continue_, attach=attach)
    finally:
        app.close_tools()  # every MCP server ends with chatcli (stdin closed, SIGTERM, kill)


def _interactive(env: Environment) -> bool:
    """A person can answer the approval question: a terminal on stdin or stderr and /dev/tty."""
    if not (env.stdin_isatty or env.stderr_isatty):
        return False
    import os

    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def vision_of(cfg: ProviderConfig) -> bool | None:
    """Whether the provider's models take images and PDFs: False for the embedded model (its
    provider refuses them) and for `vision = false` in the config; None when not known."""
    return False if cfg.type == "local" else cfg.vision


def load_attachments(app: App, specs: Sequence[str], resolved: Resolved) -> list[Attachment]:
    """Every `-a` attachment, read and checked before anything is sent or stored (InputError: exit 2)."""
    if not specs:
        return []
    from chatcli import attachments

    env = app.env
    stdin: BinaryIO | None = None
    if env.stdin is not None and not env.stdin_isatty:
        stdin = cast("BinaryIO", getattr(env.stdin, "buffer", env.stdin))  # bytes: the kind is judged from them
    loaded = [attachments.load(spec, stdin=stdin) for spec in specs]
    attachments.check_count(loaded)
    check_vision(loaded, resolved)
    return loaded


def check_vision(atts: Sequence[Attachment], resolved: Resolved) -> None:
    from chatcli import attachments

    attachments.refuse_unsupported(atts, model_label=f"{resolved.provider.name}:{resolved.model}",
                                   vision=vision_of(resolved.provider))


def read_message(app: App, argument: str | None, attach: Sequence[str], atts: list[Attachment],
                 models: Sequence[Resolved]) -> tuple[str, tuple[Part, ...]]:
    """The message `ask` sends: the argument, piped stdin (unless `-a -` took it already) and the
    attachments, an image or PDF piped in among them -- counted and checked against every model
    it goes to, before anything is sent (InputError: exit 2)."""
    piped: str | None = None
    if "-" not in attach:
        piped, piped_att = stdinmod.read_piped_input(app.env, app.settings.stdin_timeout,
                                                     have_argument=bool(argument) or bool(atts))
        if piped_att is not None:
            from chatcli import attachments

            atts.append(piped_att)
            attachments.check_count(atts)
            for resolved in models:
                check_vision(atts, resolved)
    from chatcli.attachments import compose_message

    return compose_message(argument, piped, atts)


def _run(app: App, prompt: Sequence[str], *, as_json: bool, resume: str | None, continue_: bool,
         attach: Sequence[str] = ()) -> int:
    env = app.env
    argument = " ".join(prompt) if prompt else None
    conversation = app.load_conversation(resume=resume, continue_=continue_)
    resolved = app.resolve_for(conversation)
    # Before the provider warms up (the embedded model's load) and before any request or record.
    atts = load_attachments(app, attach, resolved)
    provider = app.provider(resolved.provider)
    warmer = threading.Thread(target=_warm, args=(provider,), name="chatcli-warm", daemon=True)
    warmer.start()

    # If stdin is refused (binary, too big, an idle pipe with no argument) the error is raised at
    # once; the daemon thread dies with the process.
    text, parts = read_message(app, argument, attach, atts, [resolved])
    warmer.join()
    warmup.resume_gc()  # the SDK is in: see chatcli/warmup.py
    recorder = app.recorder(conversation)
    tools = app.tool_host(interactive=_interactive(env))
    session = app.session(resolved, provider, conversation=conversation, recorder=recorder, tools=tools)

    from chatcli.turn import run_turn

    if as_json:
        # Status lines (retries, notices, the footer, warnings) still go to stderr; stdout gets
        # exactly one JSON object once the turn is over.
        from chatcli.render.plain import PlainView

        json_view: ReplyView = PlainView(io.StringIO(), env.stderr, show_reasoning=False, no_color=env.no_color,
                         err_tty=env.stderr_isatty)
        finish = run_turn(session.send(text, parts=parts), json_view)
        reply = session.last_reply
        from chatcli.termenc import json_for  # exact on a non-UTF-8 stdout too

        env.stdout.write(json_for(env.stdout, to_json(session, finish, resolved.provider.name,
                                                      recorder.conversation_id if recorder else None,
                                                      tools=tools) + "\n"))
        env.stdout.flush()
        return exit_code(finish, reply.content if reply else "")

    view = app.tool_view(label=resolved.spec) if tools is not None else app.view(label=resolved.spec)
    finish = run_turn(session.send(text, parts=parts), view)
    reply = session.last_reply
    return exit_code(finish, reply.content if reply else "")


# Characters JSON may carry raw that a terminal could still act on (8-bit C1 controls such as
# CSI 0x9B, bidi overrides, line separators): written as \u escapes, which is equivalent JSON.
_UNSAFE_IN_JSON = re.compile("[\u0080-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def to_json(session: Session, finish: Finish, provider: str, conversation_id: str | None, *,
            tools: McpHost | None = None) -> str:
    reply = session.last_reply
    usage = None
    if reply is not None and (reply.input_tokens is not None or reply.output_tokens is not None):
        usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    payload = {
        "text": reply.content if reply else "",
        "finish_reason": finish.reason,
        "model": session.model,
        "provider": provider,
        "usage": usage,
        "conversation_id": conversation_id,
        **({"tool_calls": [vars(r) for r in tools.records]} if tools is not None else {}),
    }
    # json.dumps escapes C0 controls (ESC included) itself; ensure_ascii=False keeps text readable.
    raw = json.dumps(payload, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", raw)
