"""Streaming-render benchmark: chatcli's panel (fast3) against the naive `Live(Markdown(all))`.

Method (virtual time, as in benchmarks/README.md): a generated reply (headings, prose with
inline markup, lists, 15-40-line Python fences, tables) is cut into chunks of exponentially
distributed size averaging 4 characters; chunk i arrives at i / rate (one chunk per "token"). A
single consumer handles arrivals in order on a virtual clock: every piece of renderer work (each
`feed()`, each trailing-edge `tick()`) is timed with the thread's CPU clock and advances the
virtual clock by that amount, so a slow renderer falls behind exactly as it would in real life,
but the run takes only the CPU time it needs. The terminal is a byte counter of 100x40.

Reported per run:
  frame p50/p95/max  CPU per painted frame (ms)
  fps                frames per second of streaming time
  gap                largest gap between two frames while tokens flow (ms)
  wait               longest any character waited between arriving and being painted (ms)
  end lag            last character arrived -> final frame done (ms)
  cpu                render CPU as a share of one core over the streaming time
  bytes, x1          bytes written to the terminal, and that over a one-shot render's bytes
                     (for a partial naive run: over the same share of the one-shot bytes)

The naive strategy (what most tools do) re-renders the whole reply with `rich.live.Live`
(`vertical_overflow="visible"`, 10 fps cap, trailing-edge frames). It is quadratic, so each naive
run has a CPU budget; a run that exhausts it reports the part it streamed (marked `partial`).

    python benchmarks/render_bench.py [--quick] [--naive-budget SECONDS]
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from chatcli.events import Finish, TextDelta, Usage
from chatcli.render import render_markdown_once
from chatcli.render.blocks import warm_highlighting
from chatcli.render.panel import PanelView

COLS, ROWS = 100, 40
_VOCABULARY = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if can more "
    "will some what about into than them only other time new could these two may first then do "
    "any like my now over such our man me even most made after also did many before must "
    "through renderer stream buffer token latency terminal markdown function value result "
    "parser"
)
WORDS = _VOCABULARY.split()


def gen_doc(size: int, seed: int = 7) -> str:
    rnd = random.Random(seed)

    def sentence() -> str:
        words = [rnd.choice(WORDS) for _ in range(rnd.randint(6, 18))]
        i = rnd.randrange(len(words))
        style = rnd.random()
        if style < 0.25:
            words[i] = f"**{words[i]}**"
        elif style < 0.4:
            words[i] = f"`{words[i]}()`"
        elif style < 0.5:
            words[i] = f"*{words[i]}*"
        elif style < 0.55:
            words[i] = f"[{words[i]}](https://example.com/{words[i]})"
        return " ".join(words).capitalize() + "."

    def code(n: int) -> str:
        lines = []
        for i in range(n):
            indent = "    " * rnd.choice([0, 1, 1, 2])
            kind = rnd.random()
            if kind < 0.15:
                lines.append(f"def {rnd.choice(WORDS)}_{i}(x, y=None):")
            elif kind < 0.3:
                lines.append(f"{indent}# {rnd.choice(WORDS)} {rnd.choice(WORDS)} {rnd.choice(WORDS)}")
            elif kind < 0.45:
                lines.append(f"{indent}return {{'{rnd.choice(WORDS)}': {i}, 'n': [{i}, {i * 2}]}}")
            else:
                lines.append(f"{indent}{rnd.choice(WORDS)}_{i} = {rnd.choice(WORDS)}(x) + {i} * y")
        return "\n".join(lines)

    parts: list[str] = []
    n = 0
    while n < size:
        kind = rnd.random()
        if kind < 0.12:
            block = f"{'#' * rnd.randint(1, 3)} {sentence()[:-1]}"
        elif kind < 0.5:
            block = " ".join(sentence() for _ in range(rnd.randint(2, 6)))
        elif kind < 0.65:
            block = "\n".join(f"{'-' if rnd.random() < .6 else '1.'} {sentence()}"
                              for _ in range(rnd.randint(3, 7)))
        elif kind < 0.85:
            block = f"```python\n{code(rnd.randint(15, 40))}\n```"
        else:
            rows = "\n".join(f"| {rnd.choice(WORDS)} | {rnd.randint(1, 999)} | {sentence()[:30]} |"
                             for _ in range(5))
            block = f"| name | count | note |\n|---|---:|---|\n{rows}"
        parts.append(block)
        n += len(block) + 2
    return "\n\n".join(parts) + "\n"


def chunk(text: str, seed: int = 1, mean: float = 4.0) -> list[str]:
    rnd = random.Random(seed)
    out: list[str] = []
    i = 0
    while i < len(text):
        n = max(1, round(rnd.expovariate(1 / mean)))
        out.append(text[i:i + n])
        i += n
    return out


class ByteSink(io.StringIO):
    """A terminal that only counts (UTF-8) bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def write(self, s: str) -> int:
        self.n += len(s.encode("utf-8", "replace"))
        return len(s)

    def isatty(self) -> bool:
        return True


@dataclass
class Result:
    name: str
    frame_cpu: list[float]
    frame_times: list[float]
    stream_time: float
    max_wait: float
    end_lag: float
    cpu_total: float
    nbytes: int
    partial: float = 1.0  # share of the reply streamed (naive runs may stop at their budget)


class VClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def timed(fn: Callable[[], object], clock: VClock) -> float:
    c0 = time.thread_time()
    fn()
    cost = time.thread_time() - c0
    clock.t += cost
    return cost


def run_fast3(chunks: list[str], rate: float) -> Result:
    clock = VClock()
    sink = ByteSink()
    view = PanelView(sink, io.StringIO(), size=lambda: (COLS, ROWS), label="bench:model", threaded=False,
                     clock=clock, color_system="truecolor", err_tty=False)
    cpu = 0.0
    arrivals: list[float] = []  # arrival time of each not-yet-painted chunk
    max_wait = 0.0
    frames_seen = 0

    def settle() -> None:
        nonlocal frames_seen, max_wait
        if len(view.frame_log) != frames_seen:
            frames_seen = len(view.frame_log)
            for a in arrivals:
                max_wait = max(max_wait, clock.t - a)
            arrivals.clear()

    for i, c in enumerate(chunks):
        t_arr = i / rate
        while True:  # trailing-edge frames due before the next arrival
            due = view.next_due
            if due is None or due > t_arr:
                break
            clock.t = max(clock.t, due)
            cpu += timed(view.tick, clock)
            settle()
        clock.t = max(clock.t, t_arr)
        arrivals.append(t_arr)
        cpu += timed(lambda c=c: view.feed(TextDelta(c)), clock)  # type: ignore[misc]
        settle()
    t_last = (len(chunks) - 1) / rate
    while view.next_due is not None:  # the stream is over but text is pending: trailing edge
        clock.t = max(clock.t, view.next_due or 0)
        cpu += timed(view.tick, clock)
        settle()
    end_start = max(clock.t, t_last)
    clock.t = end_start
    view.feed(Usage(1000, len(chunks)))
    cpu += timed(lambda: view.feed(Finish("stop")), clock)
    settle()
    end_lag = clock.t - t_last
    view.close()
    log = view.frame_log
    return Result("fast3", [c for _, _, c in log], [t for t, _, _ in log], t_last, max_wait, end_lag, cpu,
                  sink.n)


def run_naive(chunks: list[str], rate: float, budget: float) -> Result:
    from rich.console import Console
    from rich.live import Live
    from rich.markdown import Markdown

    clock = VClock()
    sink = ByteSink()
    console = Console(file=sink, width=COLS, height=ROWS, force_terminal=True, color_system="truecolor")
    live = Live(console=console, auto_refresh=False, vertical_overflow="visible", transient=False)
    live.start()
    interval = 0.1  # 10 fps cap
    text = ""
    shown = 0  # chars painted
    last = -1e9
    frame_cpu: list[float] = []
    frame_times: list[float] = []
    cpu = 0.0
    max_wait = 0.0
    arrivals: list[float] = []

    def frame() -> None:
        nonlocal last, shown, cpu, max_wait
        last = clock.t
        frame_times.append(clock.t)
        cost = timed(lambda: live.update(Markdown(text), refresh=True), clock)
        frame_cpu.append(cost)
        cpu += cost
        shown = len(text)
        for a in arrivals:
            max_wait = max(max_wait, clock.t - a)
        arrivals.clear()

    n_done = 0
    for i, c in enumerate(chunks):
        t_arr = i / rate
        if shown < len(text) and last + interval <= t_arr:
            clock.t = max(clock.t, last + interval)
            frame()
        clock.t = max(clock.t, t_arr)
        text += c
        arrivals.append(t_arr)
        n_done = i + 1
        if clock.t >= last + interval:
            frame()
        if cpu > budget:
            break
    t_last = (n_done - 1) / rate
    clock.t = max(clock.t, t_last)
    frame()
    end_lag = clock.t - t_last
    live.stop()
    return Result("naive", frame_cpu, frame_times, t_last, max_wait, end_lag, cpu, sink.n,
                  partial=n_done / len(chunks))


def one_shot_bytes(text: str) -> int:
    sink = ByteSink()
    render_markdown_once(text, sink, mode="markdown", width=COLS, no_color=False)
    return sink.n


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def report(r: Result, size_kb: int, rate: int, base: int) -> str:
    times = r.frame_times
    gaps = [b - a for a, b in itertools.pairwise(times) if b <= r.stream_time + 0.05]
    fps = len([t for t in times if t <= r.stream_time]) / r.stream_time if r.stream_time else 0.0
    name = r.name + ("" if r.partial >= 1 else f" (partial {r.partial:.0%})")
    return (f"| {size_kb} KB | {rate} | {name} | {len(r.frame_cpu)} | "
            f"{pct(r.frame_cpu, .5) * 1e3:.1f} / {pct(r.frame_cpu, .95) * 1e3:.1f} / "
            f"{max(r.frame_cpu, default=0) * 1e3:.1f} | {fps:.1f} | {max(gaps, default=0) * 1e3:.0f} | "
            f"{r.max_wait * 1e3:.0f} | {r.end_lag * 1e3:.0f} | {r.cpu_total / max(r.stream_time, 1e-9):.1%} | "
            f"{r.nbytes / 1e6:.2f} MB | {r.nbytes / (base * r.partial):.1f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="200 and 1,000 tok/s only, small naive budget")
    ap.add_argument("--naive-budget", type=float, default=None, help="CPU seconds per naive run")
    ap.add_argument("--no-naive", action="store_true")
    args = ap.parse_args()
    # What the panel's ticker thread does while the first request is in flight: compile the
    # common lexers once per process, so the first fence is not charged ~0.2 s of regex compiling.
    warm_highlighting()
    rates = [200, 1000] if args.quick else [50, 200, 1000]
    budget = args.naive_budget if args.naive_budget is not None else (4.0 if args.quick else 15.0)
    print(f"# render benchmark: {COLS}x{ROWS}, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| reply | tok/s | strategy | frames | frame CPU p50 / p95 / max ms | fps | max gap ms | "
          "max wait ms | end lag ms | CPU share | bytes | vs one-shot |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in (18_000, 65_000):
        text = gen_doc(size)
        chunks = chunk(text)
        base = one_shot_bytes(text)
        for rate in rates:
            print(report(run_fast3(chunks, rate), size // 1000, rate, base), flush=True)
            if not args.no_naive:
                print(report(run_naive(chunks, rate, budget), size // 1000, rate, base), flush=True)
        print(f"<!-- {size // 1000} KB reply: {len(text)} chars, {len(chunks)} chunks, one-shot render "
              f"{base / 1e6:.3f} MB -->", flush=True)


if __name__ == "__main__":
    main()
