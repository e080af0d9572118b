"""`chatcli` with no command: the interactive chat, started with what it needs (chatcli/repl/)."""

from typing import TYPE_CHECKING

from chatcli.cli.wiring import check_resume_flags, make_app, text_args

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from chatcli.app import App
    from chatcli.cli.options import Shared
    from chatcli.config import Resolved
    from chatcli.providers.base import Provider
    from chatcli.render.base import ReplyView
    from chatcli.session import Session


def run_chat(shared: "Shared") -> int:
    check_resume_flags(shared)
    text_args(shared)
    app = make_app(shared)
    conversation = app.load_conversation(resume=shared.resume, continue_=shared.continue_)
    resolved = app.resolve_for(conversation)
    # `cat notes.md | chatcli`: the piped text is the first message. An idle pipe is not an error
    # here (the chat itself is what the user asked for): we just go on without a first message.
    pending: list[Any] = []
    if shared.attach:  # read and checked before the chat starts: a bad file is exit 2, as in `ask`
        from chatcli.cli.ask import load_attachments

        pending = load_attachments(app, shared.attach, resolved)
    from chatcli.repl.attach import piped_for_chat  # an image or a PDF piped in joins `pending`

    first = None if "-" in shared.attach else piped_for_chat(app, resolved, pending)
    if first is not None and not first.strip():
        first = None
    # A new conversation's history store is opened by the REPL once the prompt is up: SQLite and
    # the store module are ~10 ms of the prompt's 250 ms budget. Resuming opened it already.
    store_now = app.settings.save and app.store_is_open

    def start() -> "Session":
        # Called by the REPL once its prompt is drawn: the provider and session modules are ~20 ms
        # of the prompt's budget (chatcli/repl/). What the prompt shows until then is the label.
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
        intro: list[str] = []
        if conversation is not None:  # -c / -r ID: say which conversation, as /resume does
            from chatcli.repl.resume import stored_summary

            intro = stored_summary(app.store(), conversation.id, conversation.turns)
        return _run_chat(app, start, open_view, resolved, resolve_model, store_now, first, pending, intro)
    finally:
        app.close_tools()  # every MCP server ends with the chat


def _run_chat(app: "App", start: "Callable[[], Session]", open_view: "Callable[[Session], ReplyView]",
              resolved: "Resolved", resolve_model: "Callable[[str], tuple[Provider, str]]", store_now: bool,
              first: "str | None", pending: "list[Any]", intro: "list[str] | None" = None) -> int:
    from chatcli.repl.start import Chat, run_repl

    return run_repl(
        Chat(session=start, label=f"{resolved.provider.name}:{resolved.model}", settings=app.settings,
             open_view=open_view, resolve_model=resolve_model, store=app.store() if store_now else None,
             open_store=app.store if app.settings.save and not store_now else None, env=app.env,
             first_message=first, pending=pending, intro=intro or ()),
    )
