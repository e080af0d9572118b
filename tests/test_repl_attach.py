"""/attach, /detach and /role in the chat, through prompt-toolkit's pipe input (the harness of
tests/test_repl.py), and their Tab completion and toolbar piece."""

from __future__ import annotations

from pathlib import Path

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from chatcli.events import ImagePart
from chatcli.repl.commands import ReplState
from chatcli.repl.loop import Repl
from chatcli.repl.prompt import SlashCompleter
from chatcli.roles import Role
from chatcli.session import Session
from chatcli.settings import ProviderConfig, Settings
from tests.support import media
from tests.support.repl import CTRL_D, ENTER, Harness

PNG = media.png()


def test_attach_goes_with_the_next_message_only(tmp_path: Path) -> None:
    (tmp_path / "shot.png").write_bytes(PNG)
    h = Harness()
    h.provider.reply("a square").reply("ok")
    run = h.run(f"/attach {tmp_path / 'shot.png'}" + ENTER + "/attach" + ENTER + "describe" + ENTER
                + "and then?" + ENTER + CTRL_D)
    assert run.code == 0, run.err
    assert "attached image/png" in run.err and "1. image/png" in run.err
    first, second = h.provider.calls
    assert first.messages[-1].content == "describe"
    assert first.messages[-1].parts == (ImagePart(media_type="image/png", data=PNG, name="shot.png"),)
    assert second.messages[-1].parts == ()
    assert second.messages[0].parts == first.messages[-1].parts  # still in the history


def test_text_attachment_and_detach(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.txt").write_text("beta\n")
    h = Harness()
    h.provider.reply("ok")
    run = h.run(f"/attach {tmp_path / 'a.txt'}" + ENTER + f"/attach {tmp_path / 'b.txt'}" + ENTER
                + "/detach 1" + ENTER + "/detach 5" + ENTER + "read" + ENTER + CTRL_D)
    assert "detached text" in run.err and "/detach N: N is 1 to 1" in run.err
    assert h.provider.calls[0].messages[-1].content == f"read\n\n{tmp_path / 'b.txt'}\n\n```\nbeta\n```"


def test_bad_attach_is_one_line_and_the_chat_goes_on(tmp_path: Path) -> None:
    h = Harness()
    h.provider.reply("ok")
    run = h.run(f"/attach {tmp_path / 'nope.png'}" + ENTER + "hi" + ENTER + CTRL_D)
    assert "no such file" in run.err
    assert h.provider.calls[0].messages[-1].content == "hi"


def test_image_refused_for_a_text_only_model_and_kept_pending(tmp_path: Path) -> None:
    (tmp_path / "s.png").write_bytes(PNG)
    settings = Settings(providers={"fake": ProviderConfig(name="fake", type="openai", vision=False)})
    h = Harness(settings=settings)
    h.provider.reply("ok")
    run = h.run(f"/attach {tmp_path / 's.png'}" + ENTER + "look" + ENTER + "/detach" + ENTER + "hi" + ENTER + CTRL_D)
    assert "fake:m1 does not accept images" in run.err
    assert [c.messages[-1].content for c in h.provider.calls] == ["hi"]


def test_role_switches_system_temperature_and_max_tokens() -> None:
    roles = {"reviewer": Role("reviewer", "You review.", temperature=0.2, max_tokens=50),
             "shell": Role("shell", "One command.")}
    h = Harness(settings=Settings(roles=roles))
    h.provider.reply("ok").reply("ok")
    run = h.run("/role" + ENTER + "/role reviwer" + ENTER + "/role reviewer" + ENTER + "q" + ENTER
                + "/role shell" + ENTER + "q2" + ENTER + CTRL_D)
    assert "reviewer (temperature 0.2, max_tokens 50): You review." in run.err
    assert 'did you mean "reviewer"' in run.err
    one, two = h.provider.calls
    assert (one.system, one.temperature, one.max_tokens) == ("You review.", 0.2, 50)
    assert two.system == "One command."


def _state(settings: Settings) -> ReplState:
    return ReplState(session=Session(Harness().provider, model="m1"), settings=settings)


def test_completion_of_paths_and_role_names(tmp_path: Path) -> None:
    (tmp_path / "shot.png").write_bytes(PNG)
    state = _state(Settings(roles={"reviewer": Role("reviewer", "x"), "shell": Role("shell", "y")}))
    completer = SlashCompleter(lambda: state)

    def complete(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text, len(text)), CompleteEvent())]

    assert complete("/role re") == ["reviewer"]
    assert "shot.png" in complete(f"/attach {tmp_path}/sh")[0] or complete(f"/attach {tmp_path}/sh") == ["ot.png"]


def test_toolbar_shows_the_pending_attachment(tmp_path: Path) -> None:
    from chatcli.attachments import load

    state = _state(Settings())
    (tmp_path / "shot.png").write_bytes(PNG)
    state.pending.append(load(str(tmp_path / "shot.png")))
    with create_pipe_input() as pipe:
        repl = Repl(state, lambda s: None, input=pipe, output=DummyOutput())  # type: ignore[arg-type,return-value]
        text = "".join(piece[1] for piece in repl.toolbar())
    assert "attached: image/png" in text and "shot.png" in text


def test_chatcli_dash_a_goes_with_the_first_typed_message(tmp_path: Path) -> None:
    import io

    from chatcli.attachments import load
    from chatcli.env import Environment
    from chatcli.repl.start import Chat, run_repl

    (tmp_path / "s.png").write_bytes(PNG)
    h = Harness()
    h.provider.reply("ok")
    session = h.session
    assert session is not None
    with create_pipe_input() as pipe:
        pipe.send_text("what" + ENTER + CTRL_D)
        run_repl(
            Chat(session=lambda: session, settings=h.settings, open_view=h.view,
                 env=Environment(stdin=None, stdout=io.StringIO(), stderr=io.StringIO()),
                 pending=[load(str(tmp_path / "s.png"))]),
            input=pipe, output=DummyOutput(),
        )
    assert h.provider.calls[0].messages[-1].parts == (ImagePart(media_type="image/png", data=PNG, name="s.png"),)
