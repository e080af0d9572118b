"""Start-up benchmark: how long chatcli takes before it is useful, next to the floor.

    python benchmarks/startup_bench.py [--runs N]

Measures the median wall time (N runs each, interleaved so drift hits every row alike) of:

* `python -c pass`                     the interpreter floor;
* `chatcli --version`                  target <= 60 ms (answered before Typer is imported);
* `chatcli --help`                     target <= 150 ms (Click's plain help, no rich);
* plain SDK loop, time to first byte   the seed's loop: `openai` streaming, print each delta;
* `chatcli ask hi`, time to first byte target <= 1.1 x the plain SDK loop (with --no-save, and
  saving to the history database as by default).

Both streaming rows talk to the same loopback SSE server (tests/sse_server.py) with zero
latency, so the figures are pure client start-up: interpreter, imports, config, request.
The installed `chatcli` command is used (pip install -e . first). Exit status 1 if a target is
missed, so CI can run it as a check.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sse_server import Reply, SSEServer, openai_chunks  # noqa: E402

# The seed's plain SDK loop (shared/seeds), reduced to its essentials and pointed at the server.
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


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def first_byte(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning `cmd` to the first byte on its stdout (then it runs to the end)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    data = os.read(proc.stdout.fileno(), 1)
    elapsed = time.perf_counter() - start
    proc.stdout.read()
    if proc.wait() != 0 or not data:
        raise RuntimeError(f"{cmd} failed (exit {proc.returncode})")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    chatcli = shutil.which("chatcli", path=str(Path(sys.executable).parent)) or shutil.which("chatcli")
    if chatcli is None:
        print("the chatcli command is not installed: pip install -e .", file=sys.stderr)
        return 2
    python = sys.executable
    reply = Reply.sse(openai_chunks(["Hello", " there"], usage=(5, 2)))
    with SSEServer(default=reply) as server, tempfile.TemporaryDirectory() as tmp:
        # PYTHONDONTWRITEBYTECODE is dropped: with it, chatcli's own modules are compiled from
        # source on every start (site-packages were byte-compiled by pip, so the SDK loop would
        # not pay the same). A normal install byte-compiles everything; the warm-up run writes
        # the .pyc files here.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENAI_", "ANTHROPIC_", "CHATCLI_")) and k != "PYTHONDONTWRITEBYTECODE"}
        env.update(OPENAI_API_KEY="sk-bench-0000000000", OPENAI_BASE_URL=server.openai_url,
                   CHATCLI_HOME=str(Path(tmp) / "data"), XDG_CONFIG_HOME=str(Path(tmp) / "config"),
                   HOME=tmp, TERM="dumb")
        loop = Path(tmp) / "sdk_loop.py"
        loop.write_text(SDK_LOOP)
        rows: list[tuple[str, Callable[[], float]]] = [
            ("python -c pass", lambda: wall([python, "-c", "pass"], env)),
            ("chatcli --version", lambda: wall([chatcli, "--version"], env)),
            ("chatcli --help", lambda: wall([chatcli, "--help"], env)),
            ("plain SDK loop (first byte)", lambda: first_byte([python, str(loop)], env)),
            ("chatcli ask (first byte)", lambda: first_byte([chatcli, "ask", "--no-save", "hi"], env)),
            ("chatcli ask, saving (first byte)", lambda: first_byte([chatcli, "ask", "hi"], env)),
        ]
        for _, measure in rows:  # warm-up: .pyc files, page cache
            measure()
        samples: dict[str, list[float]] = {name: [] for name, _ in rows}
        for _ in range(args.runs):
            for name, measure in rows:
                samples[name].append(measure())

    med = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    floor = med["python -c pass"]
    sdk = med["plain SDK loop (first byte)"]
    targets = {
        "chatcli --version": (60.0, None),
        "chatcli --help": (150.0, None),
        "chatcli ask (first byte)": (None, 1.1),
        "chatcli ask, saving (first byte)": (None, 1.1),
    }
    # "over floor": median minus the `python -c pass` median, the part chatcli itself adds; it
    # stays meaningful on a loaded machine where every absolute figure inflates.
    print(f"{'':34} {'median ms':>10} {'min ms':>8} {'over floor':>10} {'x python':>9} {'x SDK loop':>11}  target")
    failed = False
    for name, _ in rows:
        values = samples[name]
        line = (f"{name:34} {med[name]:10.1f} {min(values) * 1000:8.1f} {med[name] - floor:10.1f} "
                f"{med[name] / floor:9.2f} {med[name] / sdk:11.2f}")
        limit_ms, limit_ratio = targets.get(name, (None, None))
        if limit_ms is not None:
            ok = med[name] <= limit_ms
            line += f"  <= {limit_ms:.0f} ms {'ok' if ok else 'MISSED'}"
            failed |= not ok
        if limit_ratio is not None:
            ok = med[name] <= limit_ratio * sdk
            line += f"  <= {limit_ratio:.1f} x SDK loop {'ok' if ok else 'MISSED'}"
            failed |= not ok
        print(line)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average at the end: {load:.2f} on {os.cpu_count()} CPUs")
    print(f"{args.runs} runs each, interleaved; loopback server, zero latency; python {sys.version.split()[0]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
