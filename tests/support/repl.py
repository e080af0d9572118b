"""The chat loop driven through prompt-toolkit's pipe input: keys in, FakeProvider calls and stderr out.

`Harness().run(keys)` runs `chatcli.repl.run_repl` on a pipe input and a DummyOutput, with a
FakeProvider and views that record the events they are fed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from chatcli.env import Environment
from chatcli.events import SessionEvent, TextDelta
from chatcli.providers.base import Provider
from chatcli.repl.start import Chat, run_repl
from chatcli.session import Session
from chatcli.settings import Settings
from tests.support.fakes import FakeProvider

ENTER = "\r"
ESC_ENTER = "\x1b\r"
CTRL_C = "\x03"
CTRL_D = "\x04"


def paste(text: str) -> str:
    """A bracketed paste, as a terminal sends it (line breaks as CR)."""
    return "\x1b[200~" + text.replace("\n", "\r") + "\x1b[201~"


@dataclass
class FakeView:
    events: list[SessionEvent] = field(default_factory=list)
    closed: int = 0
    label: str = ""

    def feed(self, event: SessionEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed += 1

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))


@dataclass
class Run:
    code: int
    err: str
    views: list[FakeView]
    session_calls: list[Any]


@dataclass
class Harness:
    provider: FakeProvider = field(default_factory=FakeProvider)
    settings: Settings = field(default_factory=Settings)
    session: Session | None = None
    resolve_model: Callable[[str], tuple[Provider, str]] | None = None
    store: Any = None
    history_path: Path | None = None
    views: list[FakeView] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.session is None:
            self.session = Session(self.provider, model="m1")

    def view(self, session: Session) -> FakeView:
        view = FakeView(label=f"{session.provider.name}:{session.model}")
        self.views.append(view)
        return view

    def run(self, keys: str, *, first_message: str | None = None) -> Run:
        err = io.StringIO()
        env = Environment(stdin=None, stdout=io.StringIO(), stderr=err)
        session = self.session
        assert session is not None
        with create_pipe_input() as pipe:
            pipe.send_text(keys)
            code = run_repl(
                Chat(session=lambda: session, label="fake:m1", settings=self.settings, open_view=self.view,
                     resolve_model=self.resolve_model, store=self.store, env=env, first_message=first_message),
                history_path=self.history_path, input=pipe, output=DummyOutput(),
            )
        return Run(code, err.getvalue(), self.views, self.provider.calls)


def sent(provider: FakeProvider) -> list[str]:
    """The last user message of every request."""
    return [call.messages[-1].content for call in provider.calls]
