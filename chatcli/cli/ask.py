"""`chatcli ask`: the options checked, the app built, one reply (chatcli/oneshot.py)."""

from typing import TYPE_CHECKING

from chatcli.cli.report import state
from chatcli.cli.wiring import check_resume_flags, make_app, text_arg, text_args

if TYPE_CHECKING:
    from chatcli.cli.options import Ask


def run_ask(ask: "Ask") -> int:
    state.debug = state.debug or ask.shared.debug
    check_resume_flags(ask.shared)
    text_args(ask.shared)
    ask.prompt = [text_arg("the prompt argument", word) for word in ask.prompt]
    app = make_app(ask.shared)
    if len(ask.shared.model) > 1:  # `ask -m A -m B`: every model at once (chatcli/compare.py)
        from chatcli import compare

        return compare.run(app, ask.shared.model, ask.prompt, as_json=ask.as_json, resume=ask.shared.resume,
                           continue_=ask.shared.continue_, attach=ask.shared.attach)
    from chatcli import oneshot

    return oneshot.run(app, ask.prompt, as_json=ask.as_json, resume=ask.shared.resume,
                       continue_=ask.shared.continue_, attach=ask.shared.attach)
