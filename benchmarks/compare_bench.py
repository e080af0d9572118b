"""`chatcli ask -m A -m B`: time to first byte against each model asked alone, and the cost of
drawing several live panels at once (chatcli/compare/, chatcli/render/columns.py).

1. TTFB (real HTTP): an OpenAI-dialect and an Anthropic-dialect loopback server, each in its own
   process (benchmarks/_server.py), through the real SDKs with warm clients. Per round, in
   interleaved order: model A alone, model B alone (each the one-model path: the session driven in
   the main thread), then A and B together through `compare.Runner` with the live columns view
   drawing into a byte counter. TTFB = request sent -> first text in the main thread. Each server
   waits `--think` seconds (0.2) before its first byte, as a model does; a second row with an
   instant server shows the absolute cost of sharing the GIL between the two request threads
   (a millisecond or few, which only an instant server turns into a large ratio). Reported: the
   median over rounds of each model's together/alone ratio. Target (think row) <= 1.05x.
2. Render (virtual time, the method of render_bench.py): N generated replies (18 KB each, the
   render bench's document generator, different seeds) chunked at ~4 characters a token, every
   reply arriving at R tok/s, fed to one `ColumnsView` in a 160x40 terminal; every piece of
   view work is timed with the thread's CPU clock and advances the virtual clock. Reported: render
   CPU over the streaming time, frames per second (each frame paints every panel), the longest
   any character waited to be painted, and bytes written over one-shot renders of all replies at
   their column width. Targets: two replies at 200 tok/s <= 12% of a core, three at 50 tok/s
   <= 15%; >= 20 fps; wait <= 50 ms; bytes <= 10x.

    python benchmarks/compare_bench.py [--rounds 7] [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from benchmarks.render_bench import ByteSink, VClock, chunk, gen_doc, timed
from chatcli.events import Finish, TextDelta, Usage
from chatcli.render.columns import ColumnsView, layout

COLS, ROWS = 160, 40


# -- 2. render ---------------------------------------------------------------------------------------


def render_run(n: int, rate: float, size: int = 18_000) -> dict[str, float]:
    docs = [gen_doc(size, seed=7 + k) for k in range(n)]
    chunks = [chunk(d, seed=1 + k) for k, d in enumerate(docs)]
    clock = VClock()
    sink = ByteSink()
    view = ColumnsView(sink, io.StringIO(), labels=[f"bench:m{k}" for k in range(n)], size=lambda: (COLS, ROWS),
                       color_system="truecolor", clock=clock)
    # Every arrival, in time order; lane k is offset by a fraction of a token so they interleave.
    arrivals = sorted((j / rate + k / (rate * n), k, c) for k, cs in enumerate(chunks) for j, c in enumerate(cs))
    cpu = 0.0
    waiting: list[float] = []
    max_wait = 0.0
    seen = 0

    def settle() -> None:
        nonlocal seen, max_wait
        if len(view.frame_log) != seen:
            seen = len(view.frame_log)
            for a in waiting:
                max_wait = max(max_wait, clock.t - a)
            waiting.clear()

    last_of = {k: (len(cs) - 1) / rate + k / (rate * n) for k, cs in enumerate(chunks)}
    ended: set[int] = set()
    for t_arr, k, c in arrivals:
        while True:
            due = view.next_due
            if due is None or due > t_arr:
                break
            clock.t = max(clock.t, due)
            cpu += timed(view.tick, clock)
            settle()
        clock.t = max(clock.t, t_arr)
        waiting.append(t_arr)
        cpu += timed(lambda k=k, c=c: view.feed(k, TextDelta(c)), clock)  # type: ignore[misc]
        settle()
        for lane, t_last in last_of.items():
            if lane not in ended and t_arr >= t_last:
                ended.add(lane)
                view.feed(lane, Usage(100, len(chunks[lane])))
                cpu += timed(lambda lane=lane: (view.feed(lane, Finish("stop")), view.end(lane)), clock)  # type: ignore[misc]
                settle()
    stream_time = max(last_of.values())
    cpu += timed(view.close, clock)
    frames = [t for t, _, _ in view.frame_log if t <= stream_time]
    _, width = layout(COLS, n)
    base = sum(one_shot_bytes(d, width) for d in docs)
    return {"cpu": cpu / stream_time, "fps": len(frames) / stream_time, "wait": max_wait,
            "bytes": sink.n / base, "mb": sink.n / 1e6, "frames": len(view.frame_log)}


def one_shot_bytes(text: str, width: int) -> int:
    from chatcli.render import render_markdown_once

    sink = ByteSink()
    render_markdown_once(text, sink, mode="markdown", width=width + 1, no_color=False)  # +1: the margin
    return sink.n


# -- 1. time to first byte ---------------------------------------------------------------------------


def ttfb_rounds(rounds: int, think: float) -> dict[str, float]:
    from benchmarks._server import ServerProcess
    from chatcli import compare
    from chatcli.config import Resolved
    from chatcli.providers import build_provider
    from chatcli.redact import Secret
    from chatcli.session import RetryPolicy, Session
    from chatcli.settings import ProviderConfig
    from tests.support.sse_server import Reply, Sleep, anthropic_events, openai_chunks

    text = [f"word{i} " for i in range(40)]
    with ServerProcess() as sa, ServerProcess() as sb:
        urls = {"openai": sa.openai_url, "anthropic": sa_url_root(sb.openai_url)}
        servers = {"openai": sa, "anthropic": sb}
        cfgs = {kind: ProviderConfig(name=kind, type=kind, base_url=url, api_key=Secret("sk-bench-key-0000"),  # type: ignore[arg-type]
                                     max_retries=0) for kind, url in urls.items()}
        providers = {kind: build_provider(cfg) for kind, cfg in cfgs.items()}
        for p in providers.values():
            p.warm(rehearse=True)

        def reply(kind: str) -> Reply:
            events = openai_chunks(text, usage=(5, 40)) if kind == "openai" else anthropic_events(text)
            # `think` seconds before the first byte: a model's own latency (real ones: 0.2-2 s).
            return Reply.sse([Sleep(think), *events], delay=0.005)

        def alone(kind: str) -> float:
            servers[kind].add(reply(kind))
            session = Session(providers[kind], model="m", retry=RetryPolicy(max_retries=0))
            t0 = time.perf_counter()
            first = None
            for event in session.send("q"):
                if first is None and isinstance(event, TextDelta):
                    first = time.perf_counter() - t0
            assert first is not None
            return first

        def together() -> dict[str, float]:
            for kind in servers:
                servers[kind].add(reply(kind))
            lanes = []
            for i, kind in enumerate(("openai", "anthropic")):
                lane = compare.Lane(i, Resolved(cfgs[kind], "m"), providers[kind])
                lane.session = Session(providers[kind], model="m", retry=RetryPolicy(max_retries=0))
                lanes.append(lane)
            firsts: dict[int, float] = {}
            starts: dict[int, float] = {}
            inner = ColumnsView(ByteSink(), io.StringIO(), labels=[lane.label for lane in lanes],
                                size=lambda: (COLS, ROWS), color_system="truecolor")

            class Timing:
                def begin(self, i: int) -> None:
                    started = lanes[i].started_at  # stamped by the worker as it sends
                    starts[i] = started if started is not None else time.perf_counter()
                    inner.begin(i)

                def feed(self, i: int, e: object) -> None:
                    if i not in firsts and isinstance(e, TextDelta):
                        firsts[i] = time.perf_counter() - starts[i]
                    inner.feed(i, e)  # type: ignore[arg-type]

                def fail(self, i: int, m: str) -> None:
                    inner.fail(i, m)

                def end(self, i: int) -> None:
                    inner.end(i)

                def tick(self) -> bool:
                    return inner.tick()

                def close(self) -> None:
                    inner.close()

            compare.Runner(lanes, "q", warm=False).run(Timing())  # type: ignore[arg-type]
            return {"openai": firsts[0], "anthropic": firsts[1]}

        for _ in range(2):  # warm-up rounds
            alone("openai"), alone("anthropic"), together()
        ratios: dict[str, list[float]] = {"openai": [], "anthropic": []}
        alones: dict[str, list[float]] = {"openai": [], "anthropic": []}
        added: dict[str, list[float]] = {"openai": [], "anthropic": []}
        for _ in range(rounds):
            a = {kind: alone(kind) for kind in ("openai", "anthropic")}
            t = together()
            for kind in ratios:
                ratios[kind].append(t[kind] / a[kind])
                alones[kind].append(a[kind])
                added[kind].append(t[kind] - a[kind])
    return ({f"{k}_ratio": statistics.median(v) for k, v in ratios.items()}
            | {f"{k}_alone_ms": statistics.median(v) * 1e3 for k, v in alones.items()}
            | {f"{k}_added_ms": statistics.median(v) * 1e3 for k, v in added.items()})


def sa_url_root(openai_url: str) -> str:
    return openai_url.removesuffix("/v1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="fewer TTFB rounds")
    ap.add_argument("--think", type=float, default=0.2,
                    help="seconds each server waits before its first byte, as a model does (the target row)")
    args = ap.parse_args()
    ok = True
    rounds = 3 if args.quick else args.rounds
    print(f"TTFB, together / alone (median of {rounds} rounds; target <= 1.05x):")
    print("| server's own latency | model | alone | together / alone | added |")
    print("|---|---|---|---|---|")
    for think in (args.think, 0.0):
        t = ttfb_rounds(rounds, think)
        for kind in ("openai", "anthropic"):
            ratio = t[f"{kind}_ratio"]
            if think:
                ok &= ratio <= 1.05
            print(f"| {think * 1e3:.0f} ms | {kind} | {t[f'{kind}_alone_ms']:.1f} ms | {ratio:.3f}x | "
                  f"{t[f'{kind}_added_ms']:+.1f} ms |" + ("" if ratio <= 1.05 or not think else "  MISSED"))
    print()
    print("| replies | tok/s each | terminal | render CPU (1 core) | fps | max wait | bytes vs one-shot | frames |")
    print("|---|---|---|---|---|---|---|---|")
    for n, rate, cap in ((2, 200, 0.12), (3, 50, 0.15)):
        runs = [render_run(n, rate) for _ in range(3)]  # the median of three: one GC pause is noise
        r = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        good = r["cpu"] <= cap and r["fps"] >= 20 and r["wait"] <= 0.05 and r["bytes"] <= 10
        ok &= good
        print(f"| {n} × 18 KB | {rate} | {COLS}×{ROWS} | {r['cpu']:.1%} (≤ {cap:.0%}) | {r['fps']:.1f} | "
              f"{r['wait'] * 1e3:.0f} ms | {r['bytes']:.1f}× ({r['mb']:.2f} MB) | {r['frames']:.0f} |"
              + ("" if good else "  MISSED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
