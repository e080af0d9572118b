"""Attachments under SIGKILL, with real processes: a kill -9 while a message with an image is being
recorded leaves the database consistent -- the turn and its blobs are both there or both absent,
no blob without a turn, no turn pointing at a missing blob -- and loses no earlier turn.

The child records messages with multi-megabyte images back to back (a third of them the same
screenshot, stored once), so most of its time is spent inside a record and the kills land there."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatcli.events import ImagePart
from chatcli.history.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

REPO = Path(__file__).resolve().parents[1]
SIZE = 3 * 1024 * 1024

CHILD = r'''
import random, sys
from pathlib import Path
from chatcli.events import Finish, ImagePart, TextDelta, Usage
from chatcli.session import Session
from chatcli.history.store import Store
from chatcli.turn import run_turn

SIZE = int(sys.argv[2])

BASE = b"\x89PNG\r\n\x1a\n" + random.Random(0).randbytes(SIZE)

def image(n):
    # Cheap to make, so the child's time goes into recording; every third: the same screenshot.
    return BASE if n % 3 == 0 else BASE[:-8] + n.to_bytes(8, "big")

class Quick:
    name = "quick"
    supports_prefill = False
    def warm(self): pass
    def stream(self, messages, *, model, system=None, max_tokens=None, temperature=None):
        yield TextDelta("seen")
        yield Usage(10, 1)
        yield Finish("stop", raw="stop")

class View:
    def feed(self, event): pass
    def close(self): pass

store = Store.open(Path(sys.argv[1]))
recorder = store.recorder()
session = Session(Quick(), model="m", recorder=recorder)
print("READY", flush=True)
for n in range(100000):
    data = image(n)
    part = ImagePart("image/png", data, name=f"shot{n}.png")
    finish = run_turn(session.send(f"look {n}", (part,)), View())
    print(f"ENDED {recorder.conversation_id} {n}", flush=True)
'''


BASE = b"\x89PNG\r\n\x1a\n" + random.Random(0).randbytes(SIZE)


def expected(n: int) -> bytes:
    return BASE if n % 3 == 0 else BASE[:-8] + n.to_bytes(8, "big")


def test_sigkill_mid_record_leaves_turns_and_blobs_consistent(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    data = tmp_path / "d"
    rng = random.Random(4321)
    total_ended = 0
    for _ in range(10):
        child = subprocess.Popen([sys.executable, str(script), str(data), str(SIZE)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert child.stdout is not None
        ready = child.stdout.readline()
        assert ready.startswith("READY"), ready + (child.stderr.read() if child.stderr else "")
        time.sleep(rng.uniform(0.05, 0.5))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, err
        ended = [line.split() for line in out.splitlines() if line.startswith("ENDED")]
        total_ended += len(ended)
        with Store.open(data, warn=pytest.fail) as store:
            conn = store._conn
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            # No orphan: every blob is referenced, every reference has its blob and its turn.
            assert conn.execute("SELECT count(*) FROM blobs WHERE hash NOT IN "
                                "(SELECT hash FROM turn_blobs)").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM turn_blobs WHERE hash NOT IN "
                                "(SELECT hash FROM blobs)").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM turn_blobs WHERE turn_id NOT IN "
                                "(SELECT id FROM turns)").fetchone()[0] == 0
            # Stored once: the shared screenshot is one row however many messages carry it.
            shared = hashlib.sha256(BASE).hexdigest()
            assert conn.execute("SELECT count(*) FROM blobs WHERE hash = ?", (shared,)).fetchone()[0] <= 1
            # Every user turn that is there has its image, byte for byte.
            for conversation in store.list_conversations(limit=100):
                for turn in store.load_turns(conversation.id):
                    if turn.role != "user":
                        continue
                    n = int(turn.content.split()[1])
                    assert len(turn.parts) == 1, f"{turn.content!r} is stored without its image"
                    (part,) = turn.parts
                    assert isinstance(part, ImagePart) and part.data == expected(n), turn.content
            # No earlier turn lost: each message the child saw end is stored, with its reply.
            for _, conv, n in ended:
                turns = store.load_turns(conv)
                i = next(i for i, t in enumerate(turns) if t.content == f"look {n}")
                (part,) = turns[i].parts
                assert isinstance(part, ImagePart) and part.data == expected(int(n))
                assert turns[i + 1].role == "assistant" and turns[i + 1].content == "seen"
    assert total_ended > 0
