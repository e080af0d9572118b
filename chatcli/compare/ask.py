"""`chatcli ask -m A -m B [-m C ...] PROMPT`: one prompt, every model at once, side by side. It resolves
every model before anything is sent, reads the prompt, attachments and piped stdin as a one-model `ask`
does, runs the lanes (chatcli/compare/runner.py) into the live columns or the plain writer, and with
`--json` prints one array of the usual objects. Each model's exchange is stored as its own conversation
(resumable with `chatcli -r ID`), so `--resume`/`--continue` take one model. Exit code: 0 every reply
complete, 3 any partial, 1 all failed with no text, 130 Ctrl-C.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatcli.compare.plain import PlainCompare
from chatcli.compare.runner import CompareView, Lane, Runner
from chatcli.errors import UsageError
from chatcli.events import Finish

if TYPE_CHECKING:
    from chatcli.app import App
    from chatcli.config import Resolved


def run(app: App, specs: Sequence[str], prompt: Sequence[str], *, as_json: bool = False,
        resume: str | None = None, continue_: bool = False, attach: Sequence[str] = ()) -> int:
    try:
        return _run(app, specs, prompt, as_json=as_json, resume=resume, continue_=continue_, attach=attach)
    finally:
        app.close_tools()


def _run(app: App, specs: Sequence[str], prompt: Sequence[str], *, as_json: bool, resume: str | None,
         continue_: bool, attach: Sequence[str]) -> int:
    from chatcli import warmup
    from chatcli.cli.ask import check_vision, load_attachments, read_message

    if resume is not None or continue_:
        raise UsageError("--resume/--continue take one model: several -m compare them in a new conversation each")
    env = app.env
    resolved = [app.resolve(spec) for spec in specs]  # a bad name fails before anything is sent
    atts = load_attachments(app, attach, resolved[0])
    for other in resolved[1:]:
        check_vision(atts, other)
    argument = " ".join(prompt) if prompt else None
    text, parts = read_message(app, argument, attach, atts, resolved)
    warmup.resume_gc()
    lanes = build_lanes(app, resolved)
    runner = Runner(lanes, text, parts)
    view = open_view(app, [lane.label for lane in lanes], as_json=as_json)
    code = runner.run(view)
    if as_json:
        from chatcli.termenc import json_for

        env.stdout.write(json_for(env.stdout, to_json(lanes) + "\n"))
        env.stdout.flush()
    return code


def build_lanes(app: App, resolved: Sequence[Resolved]) -> list[Lane]:
    """A provider (its own client and connection) and a session (its own conversation) per model."""
    lanes = []
    for i, r in enumerate(resolved):
        provider = app.provider(r.provider)
        recorder = app.recorder(None)
        lane = Lane(i, r, provider, recorder=recorder)
        lane.session = app.session(r, provider, recorder=recorder)
        lanes.append(lane)
    return lanes


def open_view(app: App, labels: Sequence[str], *, as_json: bool = False) -> CompareView:
    env = app.env
    if as_json or app.view_mode() != "markdown":
        return PlainCompare(labels, env.stdout, env.stderr, secrets=app.secrets(), no_color=env.no_color,
                            show_reasoning=app.settings.show_reasoning, json_mode=as_json)
    from chatcli.render.columns import ColumnsView

    return ColumnsView(env.stdout, env.stderr, labels=labels, show_reasoning=app.settings.show_reasoning,
                       no_color=env.no_color, secrets=app.secrets())


def to_json(lanes: Sequence[Lane]) -> str:
    """The usual `--json` object for each model, in `-m` order (plus `error` for a failed one)."""
    from chatcli.cli.ask import _UNSAFE_IN_JSON as unsafe

    items = []
    for lane in lanes:
        reply = lane.session.last_reply if lane.session is not None else None
        usage = None
        if reply is not None and (reply.input_tokens is not None or reply.output_tokens is not None):
            usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
        finish = lane.finish or Finish("incomplete")
        item: dict[str, object] = {
            "text": reply.content if reply else "",
            "finish_reason": finish.reason,
            "model": lane.resolved.model,
            "provider": lane.resolved.provider.name,
            "usage": usage,
            "conversation_id": lane.recorder.conversation_id if lane.recorder else None,
        }
        if lane.error is not None:
            item["error"] = lane.error
        items.append(item)
    raw = json.dumps(items, ensure_ascii=False)
    return unsafe.sub(lambda m: f"\\u{ord(m.group(0)):04x}", raw)
