"""Throughput benchmark: a long reply streamed through `chatcli ask`, next to the plain SDK loop.

    python benchmarks/throughput_bench.py [--sizes 1,10] [--rate 128] [--rounds 1] [--delta 48]

A loopback server (tests/support/sse_server.py, in a process of its own) streams a markdown reply of 1 MB
and of 10 MB (prose paragraphs, headings, list items) as OpenAI chunks of about `--delta`
characters, paced at `--rate` KB/s. The default, 128 KB/s (some 30,000 tokens a second, a hundred
times a fast model), is below what the panel can draw: Rich renders markdown at ~3 µs a character,
~330 KB/s of an idle core, and the SDK's own parsing shares that core (the GIL); at the issue's
~320 KB/s (5 MB in 16 s) the panel is render-bound on this 2-core machine, whatever chatcli's
per-chunk path costs. Three clients read the same stream, interleaved within each round:

* **SDK loop** -- the seed's loop (`openai` streaming, print each delta), stdout a pipe;
* **plain** -- `chatcli ask` with stdout a pipe (the plain writer), saving to the history;
* **panel** -- `chatcli ask --markdown` in a pseudo-terminal (100x40), the output drained.

Each time runs from the request reaching the server (the server records it on the machine-wide
monotonic clock) to the client's exit: start-up is left out (`startup_bench.py` measures it), the
end (writing a 10 MB turn to the history, restoring the terminal) is in. A client that keeps up
with the stream takes the stream's own time, so the ratio to the SDK loop is ~1; a per-chunk cost
that grows with the reply shows as a ratio that grows with the size.

Targets (issue 16): plain and panel <= 1.05x the SDK loop at both sizes, and the same ratio at
both (the 10 MB ratio within 0.05 of the 1 MB one). Exit status 1 if a target is missed. chatcli
runs from this checkout (PYTHONPATH), with the same interpreter as the SDK loop.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024

SDK_LOOP = """\
import os
from openai import OpenAI

client = OpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=os.environ["OPENAI_BASE_URL"])
stream = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()
"""

_WORDS = ("the", "stream", "of", "tokens", "reply", "model", "server", "chunk", "markdown", "panel",
          "terminal", "history", "a", "is", "and", "with", "every", "line", "`code`", "**bold**",
          "*emphasis*", "render", "window", "context", "plain", "delta", "byte", "second")


def reply_text(size: int, seed: int = 16) -> str:
    """`size` characters of chat-like markdown: paragraphs of wrapped prose, headings, lists."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    n = 0
    while total < size:
        n += 1
        if n % 12 == 1:
            block = f"## Section {n // 12 + 1}\n\n"
        elif n % 5 == 0:
            block = "".join(f"- {' '.join(rng.choices(_WORDS, k=9))}\n" for _ in range(4)) + "\n"
        else:
            lines = [" ".join(rng.choices(_WORDS, k=12)) for _ in range(rng.randint(2, 6))]
            block = "\n".join(lines) + "\n\n"
        parts.append(block)
        total += len(block)
    return "".join(parts)[:size]


def sse_writes(text: str, delta: int, rate_kb: float) -> list[Any]:
    """The reply as OpenAI chunks, grouped into writes 10 ms apart so the stream runs at `rate_kb`."""
    from tests.support.sse_server import Write, openai_chunk, sse

    events = [openai_chunk({"role": "assistant", "content": ""})]
    events += [openai_chunk({"content": text[i:i + delta]}) for i in range(0, len(text), delta)]
    events += [openai_chunk({}, finish="stop"), sse("[DONE]")]
    per_write = max(1, int(rate_kb * 1024 * 0.010 / delta))
    return [Write(b"".join(events[i:i + per_write]), delay=0.010 if i else 0.0)
            for i in range(0, len(events), per_write)]


# -- the server, in a process of its own (the pty reader must not share its GIL) --------------


def _serve(conn: Connection) -> None:
    from tests.support.sse_server import Recorded, Reply, SSEServer

    arrivals: list[float] = []

    def note(request: Recorded) -> Reply | None:
        arrivals.append(time.monotonic())  # CLOCK_MONOTONIC: the same clock in every process
        return None

    with SSEServer(guard=note) as server:
        conn.send(server.openai_url)
        writes: list[Any] = []
        while True:
            message = conn.recv()
            if message is None:
                return
            if message[0] == "script":
                writes = message[1]
                server.reset()
                server.guard = note
                server.default = Reply.sse(writes)
                arrivals.clear()
                conn.send(True)
            elif message[0] == "arrival":
                conn.send(arrivals[-1] if arrivals else None)


class Server:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc: Any = ctx.Process(target=_serve, args=(child,), daemon=True, name="throughput-server")
        self.url = ""

    def __enter__(self) -> Server:
        self._proc.start()
        self.url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()

    def script(self, writes: list[Any]) -> None:
        self._conn.send(("script", writes))
        self._conn.recv()

    def arrival(self) -> float:
        self._conn.send(("arrival",))
        value = self._conn.recv()
        if value is None:
            raise RuntimeError("the server saw no request")
        return float(value)


# -- the clients ------------------------------------------------------------------------------


def piped(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run with stdout a pipe, drained; (exit time, bytes read)."""
    # cwd: `python -m chatcli` puts the working directory first on sys.path, before PYTHONPATH
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=env["HOME"])
    assert proc.stdout is not None
    seen = 0
    while chunk := os.read(proc.stdout.fileno(), 1 << 20):
        seen += len(chunk)
    code = proc.wait()
    end = time.monotonic()
    if code != 0:
        raise RuntimeError(f"{cmd[-3:]} exited {code}")
    return end, seen


def in_pty(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run in a 100x40 pseudo-terminal, the output drained as it comes; (exit time, bytes read)."""
    import pexpect

    child = pexpect.spawn(cmd[0], cmd[1:], env=env, dimensions=(40, 100), timeout=None, cwd=env["HOME"])
    seen = 0
    try:
        while True:
            try:
                seen += len(child.read_nonblocking(1 << 20, timeout=5))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                break
        child.close()
        end = time.monotonic()
    finally:
        if child.isalive():
            child.terminate(force=True)
    if child.exitstatus != 0:
        raise RuntimeError(f"{cmd[-3:]} exited {child.exitstatus} / signal {child.signalstatus}")
    return end, seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10", help="reply sizes in MB, comma-separated")
    parser.add_argument("--rate", type=float, default=128.0, help="stream rate, KB/s")
    parser.add_argument("--delta", type=int, default=48, help="characters per chunk")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--clients", default="plain,panel", help="chatcli rows to run beside the SDK loop")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout whose chatcli runs (e.g. the main branch, for a before/after)")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]

    with Server() as server, tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENAI_", "ANTHROPIC_", "CHATCLI_", "NO_COLOR", "PYTHONDONTWRITEBYTECODE"))}
        env.update(OPENAI_API_KEY="sk-bench-0000000000", OPENAI_BASE_URL=server.url + "/v1",
                   CHATCLI_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"), HOME=tmp,
                   PYTHONPATH=str(args.root.resolve()), TERM="xterm-256color", CHATCLI_STDIN_TIMEOUT="1")
        loop = home / "sdk_loop.py"
        loop.write_text(SDK_LOOP)
        chatcli = [sys.executable, "-m", "chatcli", "ask", "-m", "openai:gpt-4o-mini"]
        clients = {
            "SDK loop": lambda: piped([sys.executable, str(loop)], env),
            "plain": lambda: piped([*chatcli, "--plain", "echo it"], env),
            "panel": lambda: in_pty([*chatcli, "--markdown", "echo it"], env),
        }
        wanted = {"SDK loop", *args.clients.split(",")}
        clients = {name: run for name, run in clients.items() if name in wanted}
        times: dict[tuple[float, str], list[float]] = {}
        shown: dict[tuple[float, str], int] = {}
        for size in sizes:
            text = reply_text(int(size * MB))
            server.script(sse_writes(text, args.delta, args.rate))
            clients["SDK loop"]()  # warm-up: .pyc files, page cache
            for _ in range(args.rounds):
                for name, run in clients.items():
                    end, seen = run()
                    times.setdefault((size, name), []).append(end - server.arrival())
                    shown[(size, name)] = seen

    print(f"stream: {args.rate:g} KB/s in chunks of {args.delta} characters; {args.rounds} round(s); "
          "seconds from the request reaching the server to the client's exit (median)")
    print(f"{'reply':>7}  {'client':<9} {'seconds':>8} {'vs SDK loop':>12} {'output':>10}")
    ok = True
    ratios: dict[tuple[float, str], float] = {}
    for size in sizes:
        base = statistics.median(times[(size, "SDK loop")])
        for name in clients:
            t = statistics.median(times[(size, name)])
            ratio = t / base
            ratios[(size, name)] = ratio
            print(f"{size:>5g} MB  {name:<9} {t:>8.2f} {ratio:>11.3f}x {shown[(size, name)] / MB:>7.1f} MB")
    for name in [n for n in clients if n != "SDK loop"]:
        rs = [ratios[(size, name)] for size in sizes]
        within = all(r <= 1.05 for r in rs)
        same = max(rs) - min(rs) <= 0.05
        ok = ok and within and same
        verdict = "ok" if within and same else "MISSED"
        print(f"target {name}: <= 1.05x at every size ({', '.join(f'{r:.3f}x' for r in rs)}), "
              f"same ratio within 0.05 -- {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
