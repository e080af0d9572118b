"""The composition root's own decisions: which view a reply gets."""

from __future__ import annotations

import io

from chatcli.app import App
from chatcli.config import Loaded
from chatcli.env import Environment
from chatcli.settings import RenderMode, Settings


def app(render: RenderMode, *, tty: bool, term: str = "xterm-256color") -> App:
    env = Environment(stdout=io.StringIO(), stdout_isatty=tty, environ={"TERM": term})
    return App(env=env, loaded=Loaded(settings=Settings(render=render)))


def test_view_mode() -> None:
    # What the CLI uses; render.choose_mode (tests/test_render_plain.py) decides the same way.
    assert app("auto", tty=True).view_mode() == "markdown"
    assert app("auto", tty=False).view_mode() == "plain"
    assert app("plain", tty=True).view_mode() == "plain"
    assert app("markdown", tty=False).view_mode() == "markdown"
    assert app("auto", tty=True, term="dumb").view_mode() == "plain"
