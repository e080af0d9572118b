"""`chatcli ask -m A -m B [-m C]`: the real CLI in-process (tests/support/runner.py) against one
loopback server per model, through the real openai and anthropic SDKs (chatcli/compare/); the
Ctrl-C case sends a real SIGINT, so it runs the installed command (tests/support/binary.py).

Plain output order, `--json`, the exit code for each mix of outcomes, a failing model that does
not stop the others, Ctrl-C closing every stream with each partial stored, and the one-local-model
rule (in process, with a scripted provider: the embedded model is exercised in test_local.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.binary import CHATCLI, assert_clean, cli_env
from tests.support.runner import run
from tests.support.sse_server import Reply, Sleep, SSEServer, anthropic_events, openai_chunks

A_KEY = "sk-canary-openai-1a2b3c4d5e6f7a8b9c"
B_KEY = "sk-ant-canary-9z8y7x6w5v4u3t2s1r"
C_KEY = "gw-canary-0q9p8o7n6m5l4k3j2i1h"


@pytest.fixture
def servers() -> Any:
    with SSEServer() as a, SSEServer() as b, SSEServer() as c:
        yield a, b, c


def env_for(a: SSEServer, b: SSEServer, **extra: str) -> dict[str, str]:
    values = dict(OPENAI_BASE_URL=a.openai_url, OPENAI_API_KEY=A_KEY, ANTHROPIC_BASE_URL=b.anthropic_url,
                  ANTHROPIC_API_KEY=B_KEY, GATEWAY_KEY=C_KEY)
    values.update(extra)
    return cli_env(**values)


def gateway_config(tmp_path: Path, c: SSEServer) -> Path:
    path = tmp_path / "compare.toml"
    path.write_text(f'[providers.gw]\ntype = "openai"\nbase_url = "{c.openai_url}"\napi_key_env = "GATEWAY_KEY"\n')
    return path


def slow(texts: list[str], delay: float, **kw: Any) -> Reply:
    return Reply.sse(openai_chunks(texts, usage=(5, len(texts)), **kw), delay=delay)


def test_plain_replies_in_m_order_under_headers_the_slow_first_one_too(servers: Any) -> None:
    a, b, _ = servers
    a.add(slow(["alpha ", "one ", "two"], 0.15))  # slow, and first
    b.add(Reply.sse(anthropic_events(["beta ", "fast"], stop_reason="max_tokens")))  # fast, cut at the limit
    result = run(["ask", "-m", "openai:ma", "-m", "anthropic:mb", "same", "question"], env_for(a, b))
    assert result.returncode == 3, result.stderr  # one reply partial
    assert result.stdout == "## openai:ma\n\nalpha one two\n\n## anthropic:mb\n\nbeta fast\n"
    # Both requests carried the same prompt, each to its own server and model.
    assert a.requests[0].json["messages"][-1]["content"] == "same question"
    assert b.requests[0].json["messages"][-1]["content"] == "same question"
    assert a.requests[0].json["model"] == "ma" and b.requests[0].json["model"] == "mb"
    assert "token limit" in result.stderr
    assert_clean(result, A_KEY, B_KEY)


def test_all_complete_is_exit_0_and_each_reply_is_stored(servers: Any) -> None:
    a, b, _ = servers
    a.add(slow(["from a"], 0.0))
    b.add(Reply.sse(anthropic_events(["from b"])))
    result = run(["ask", "--json", "-m", "openai:ma", "-m", "anthropic:mb", "q"], env_for(a, b))
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [(i["provider"], i["model"], i["text"], i["finish_reason"]) for i in items] == [
        ("openai", "ma", "from a", "stop"), ("anthropic", "mb", "from b", "stop")]
    assert items[0]["usage"] == {"input_tokens": 5, "output_tokens": 1}
    ids = [i["conversation_id"] for i in items]
    assert all(ids) and ids[0] != ids[1]
    for conv_id, text in zip(ids, ("from a", "from b"), strict=True):
        shown = run(["history", "show", conv_id], cli_env())
        assert shown.returncode == 0 and text in shown.stdout and "q" in shown.stdout


def test_three_models_a_failing_one_does_not_stop_the_others(servers: Any, tmp_path: Path) -> None:
    a, b, c = servers
    a.add(slow(["complete ", "answer"], 0.05))
    b.add(Reply.error(401, "invalid x-api-key", type="authentication_error", dialect="anthropic"))
    # Text, then the connection drops mid-stream.
    c.add(Reply.sse([*openai_chunks(["half ", "of it"], finish=None, done=False)], cut=True))
    args = ["--config", str(gateway_config(tmp_path, c)), "ask", "--json",
            "-m", "openai:ma", "-m", "anthropic:mb", "-m", "gw:mc", "q"]
    result = run(args, env_for(a, b))
    assert result.returncode == 3, result.stderr
    items = json.loads(result.stdout)
    assert [i["finish_reason"] for i in items] == ["stop", "error", "error"]
    assert [i["text"] for i in items] == ["complete answer", "", "half of it"]
    assert "error" in items[1] and "api key" in items[1]["error"].lower()
    assert "chatcli: anthropic:mb:" in result.stderr  # the failure named, once, on stderr
    assert_clean(result, A_KEY, B_KEY, C_KEY)


def test_plain_three_with_an_error_first(servers: Any, tmp_path: Path) -> None:
    a, b, c = servers
    a.add(Reply.error(401, "bad key"))
    b.add(Reply.sse(anthropic_events(["second ", "reply"]), delay=0.02))
    c.add(slow(["third"], 0.0, finish="length"))
    args = ["--config", str(gateway_config(tmp_path, c)), "ask", "-m", "openai:ma", "-m", "anthropic:mb",
            "-m", "gw:mc", "q"]
    result = run(args, env_for(a, b))
    assert result.returncode == 3, result.stderr
    assert result.stdout == "## openai:ma\n\n\n## anthropic:mb\n\nsecond reply\n\n## gw:mc\n\nthird\n"
    assert "chatcli: openai:ma:" in result.stderr
    assert "Traceback" not in result.stderr


def test_all_failed_with_no_text_is_exit_1(servers: Any) -> None:
    a, b, _ = servers
    a.add(Reply.error(401, "bad key"))
    b.add(Reply.error(401, "invalid x-api-key", type="authentication_error", dialect="anthropic"))
    result = run(["ask", "-m", "openai:ma", "-m", "anthropic:mb", "q"], env_for(a, b))
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("chatcli: ") == 2
    assert_clean(result, A_KEY, B_KEY)


def test_connection_refused_for_one_model(servers: Any) -> None:
    a, b, _ = servers
    b.add(Reply.sse(anthropic_events(["still here"])))
    port = a.port
    a.close()  # nothing listens there any more: connection refused
    env = env_for(a, b, OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
    result = run(["ask", "--json", "-m", "openai:ma", "-m", "anthropic:mb", "q"], env)
    assert result.returncode == 3, result.stderr
    items = json.loads(result.stdout)
    assert items[1]["text"] == "still here" and items[0]["finish_reason"] == "error"


def test_resume_takes_one_model(servers: Any) -> None:
    a, b, _ = servers
    result = run(["ask", "-c", "-m", "openai:ma", "-m", "anthropic:mb", "q"], env_for(a, b))
    assert result.returncode == 2
    assert result.stderr.startswith("chatcli: ") and result.stderr.count("\n") == 1
    assert not a.requests and not b.requests


@pytest.mark.skipif(CHATCLI is None, reason="the chatcli command is not installed (pip install -e .)")
def test_ctrl_c_closes_every_stream_and_stores_each_partial(servers: Any) -> None:
    a, b, _ = servers
    # Both stream some text, then stall far longer than the test takes.
    a.add(Reply.sse([*openai_chunks(["partial a"], finish=None, done=False), Sleep(30)]))
    b.add(Reply.sse([*anthropic_events(["partial b"], stop_reason=None, message_stop=False), Sleep(30)]))
    assert CHATCLI is not None
    proc = subprocess.Popen([CHATCLI, "ask", "--json", "-m", "openai:ma", "-m", "anthropic:mb", "q"],
                            env=env_for(a, b), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (a.requests and b.requests) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)  # the servers write their first chunks right after recording the request
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    assert a.wait_disconnect(10) and b.wait_disconnect(10)
    assert a.disconnects == [0] and b.disconnects == [0] and not a.finished and not b.finished
    items = json.loads(out)
    assert [(i["text"], i["finish_reason"]) for i in items] == [("partial a", "interrupted"),
                                                               ("partial b", "interrupted")]
    # Each partial was recorded by its worker (in the session's `finally`), marked interrupted.
    for item in items:
        shown = run(["history", "show", item["conversation_id"]], cli_env())
        assert shown.returncode == 0 and item["text"] in shown.stdout and "interrupted" in shown.stdout


# -- in process: the lanes and the one-local-model rule ----------------------------------------------


def test_a_second_local_model_waits_and_says_so() -> None:
    from chatcli import compare
    from chatcli.events import Notice
    from chatcli.session import Session
    from chatcli.settings import ProviderConfig
    from tests.support.fakes import FakeProvider

    gate = threading.Event()

    class Blocking(FakeProvider):
        def stream(self, *args: Any, **kwargs: Any) -> Any:
            gate.wait(30)
            yield from super().stream(*args, **kwargs)

    class R:
        def __init__(self, name: str, model: str) -> None:
            self.provider = ProviderConfig(name=name, type="local")
            self.model = model

    # Both block until one of them says it waits: whichever thread takes the model first holds it
    # until the other has asked for it (under load, one thread may start after the other ended).
    first = Blocking().reply("first local")
    second = Blocking().reply("second local")
    lanes = []
    for i, (prov, model) in enumerate(((first, "m1"), (second, "m2"))):
        lane = compare.Lane(i, R("local", model), prov)  # type: ignore[arg-type]
        lane.session = Session(prov, model=model)
        lanes.append(lane)

    events: list[tuple[int, object]] = []

    class Record:
        def feed(self, index: int, event: object) -> None:
            events.append((index, event))
            if isinstance(event, Notice):
                gate.set()  # the second one said it waits: let the first one go on

        def fail(self, index: int, message: str) -> None:
            events.append((index, message))

        def end(self, index: int) -> None:
            events.append((index, "end"))

        def close(self) -> None:
            pass

    code = compare.Runner(lanes, "hi", warm=False).run(Record())  # type: ignore[arg-type]
    assert code == 0
    notices = [(i, e) for i, e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "waiting" in notices[0][1].text  # type: ignore[attr-defined]
    waiter = notices[0][0]
    # The waiting model streamed only after the other one had ended.
    other_end = events.index((1 - waiter, "end"))
    first_text = next(k for k, (i, e) in enumerate(events) if i == waiter and getattr(e, "text", "").endswith("local"))
    assert other_end < first_text
    assert lanes[0].text == "first local" and lanes[1].text == "second local"


def test_a_retry_before_the_first_token_is_visible_and_the_other_model_goes_on(servers: Any) -> None:
    a, b, _ = servers
    b.add(Reply.error(529, "overloaded", type="overloaded_error", dialect="anthropic",
                      headers=(("retry-after", "1"),)),
          Reply.sse(anthropic_events(["after a retry"])))
    a.add(slow(["no wait"], 0.0))
    result = run(["ask", "-m", "openai:ma", "-m", "anthropic:mb", "q"], env_for(a, b))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "## openai:ma\n\nno wait\n\n## anthropic:mb\n\nafter a retry\n"
    assert "retrying" in result.stderr and len(b.requests) == 2 and len(a.requests) == 1


def test_a_piped_image_counts_toward_the_attachment_limit_for_several_models(servers: Any, tmp_path: Path) -> None:
    """20 `-a` files and an image piped in: 21, refused before anything is sent, as `ask` alone does."""
    from tests.support import media

    a, b, _ = servers
    (tmp_path / "s.png").write_bytes(media.png())
    result = run(["ask", "-m", "openai:ma", "-m", "anthropic:mb",
                  *(x for _ in range(20) for x in ("-a", str(tmp_path / "s.png"))), "q"],
                 env_for(a, b), input=media.png())
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "21 attachments" in lines[0] and "20" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert a.requests == [] and b.requests == []
