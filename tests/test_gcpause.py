"""The garbage collector is paused while chatcli starts and always turned back on (chatcli/warmup.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from chatcli import warmup
from tests.support.fakes import FakeProvider
from tests.support.repl import CTRL_D, ENTER, Harness
from tests.support.sse_server import Reply, SSEServer, openai_chunks


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    yield
    warmup._paused = False
    gc.enable()


def test_pause_then_resume_freezes_what_start_up_built() -> None:
    warmup.pause_gc()
    assert not gc.isenabled()
    before = gc.get_freeze_count()
    kept = [object() for _ in range(10)]  # start-up objects: frozen, never scanned again
    warmup.resume_gc()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= before + len(kept)
    warmup.resume_gc()  # idempotent
    assert gc.isenabled()


def test_resume_leaves_a_collector_someone_else_disabled_alone() -> None:
    gc.disable()
    warmup.pause_gc()  # it was off already: not ours to turn on
    warmup.resume_gc()
    assert not gc.isenabled()


@pytest.mark.parametrize("keys", ["hi" + ENTER + CTRL_D, CTRL_D])
def test_the_repl_turns_collection_back_on(keys: str) -> None:
    # After the warm-up (the user only pressed Ctrl-D) or at the latest before the first request.
    warmup.pause_gc()
    h = Harness(provider=FakeProvider().reply("hello"))
    h.run(keys)
    for thread in threading.enumerate():  # Ctrl-D alone: the warm-up may still be finishing
        if thread.name == "chatcli-warm":
            thread.join(10)
    assert gc.isenabled()


def test_a_one_shot_turns_collection_back_on_before_the_request() -> None:
    # In a process of its own, as `chatcli ask` runs: the server's handler cannot see the
    # client's collector, so the client reports it once the reply is printed.
    code = ("import gc, sys\nfrom chatcli import cli\ncode = cli.run(['ask', '--no-save', 'hi'])\n"
            "print('\\nenabled' if gc.isenabled() else '\\ndisabled', gc.get_freeze_count() > 0)\nsys.exit(code)")
    with SSEServer(default=Reply.sse(openai_chunks(["fine"]))) as server:
        env = dict(os.environ, OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=server.openai_url)
        out = subprocess.run([sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fine", "enabled", "True"]
