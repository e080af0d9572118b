"""Start-up benchmark: how long chatcli takes before it is useful, next to the floor.

    python benchmarks/startup_bench.py [--runs N] [--repl-runs N] [--editable]

Measures the median wall time (N runs each, interleaved so drift hits every row alike) of:

* `python -c pass`                     the interpreter floor;
* `chatcli --version`                  target <= 60 ms (answered before Typer is imported);
* `chatcli --help`                     target <= 150 ms (Click's plain help, no rich);
* plain SDK loop, time to first byte   the seed's loop: `openai` streaming, print each delta;
* `chatcli ask hi`, time to first byte target <= 1.1 x the plain SDK loop (with --no-save, and
  saving to the history database as by default).

Both streaming rows talk to the same loopback SSE server (tests/support/sse_server.py) with zero
latency, so the figures are pure client start-up: interpreter, imports, config, request.
"paired" is the median of the per-round ratios chatcli / SDK loop (each round runs every row
once, back to back): on this VM, where one start can take 20-30% longer than the next for no
reason of its own, it is the steadier of the two ratios; both are printed.

Then the REPL rows of benchmarks/repl_bench.py (launch -> prompt in a pty, first and second
reply's time to first byte from pressing Enter); `--repl-runs 0` skips them.

What runs is chatcli as `pip install .` installs it (benchmarks/_install.py); `--editable` uses
this environment's `chatcli` instead, which pays ~15-25 ms per start for the editable import
hook. Every row, the bare interpreter and the SDK loop included, uses the same interpreter and
environment. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import repl_bench  # noqa: E402
from benchmarks._install import bench_env  # noqa: E402
from tests.support.sse_server import Reply, SSEServer, openai_chunks  # noqa: E402

# The plain SDK streaming loop a chatbot starts from (the `ask` baseline), pointed at the server.
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
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--repl-runs", type=int, default=15)
    parser.add_argument("--editable", action="store_true",
                        help="measure this environment's chatcli (an editable install) instead")
    args = parser.parse_args()

    reply = Reply.sse(openai_chunks(["Hello", " there"], usage=(5, 2)))
    with SSEServer(default=reply) as server, tempfile.TemporaryDirectory() as tmp:
        install = repl_bench.installation(Path(tmp), args.editable)
        python, chatcli = install.python, install.chatcli
        env = {k: v for k, v in bench_env(dict(os.environ)).items()
               if not k.startswith(("OPENAI_", "ANTHROPIC_", "CHATCLI_"))}
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
    what = "this environment's chatcli (editable)" if args.editable else "a regular install"
    print(f"chatcli start-up, {what}; {args.runs} rounds, each row once per round")
    # "over floor": median minus the `python -c pass` median, the part chatcli itself adds; it
    # stays meaningful on a loaded machine where every absolute figure inflates.
    print(f"{'':34} {'median ms':>10} {'min ms':>8} {'over floor':>10} {'x python':>9} {'x SDK loop':>11}"
          f" {'paired':>7}  target")
    failed = False
    for name, _ in rows:
        values = samples[name]
        paired = statistics.median(a / b for a, b in zip(values, samples["plain SDK loop (first byte)"],
                                                          strict=True))
        line = (f"{name:34} {med[name]:10.1f} {min(values) * 1000:8.1f} {med[name] - floor:10.1f} "
                f"{med[name] / floor:9.2f} {med[name] / sdk:11.2f} {paired:7.2f}")
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

    if args.repl_runs > 0:
        print()
        repl_rows = repl_bench.measure(args.repl_runs, 1.5, args.editable)
        failed |= not repl_bench.report(repl_rows, 1.5, args.editable)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
