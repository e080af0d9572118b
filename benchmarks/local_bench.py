"""Local model speed: chatcli's LocalProvider (and Session) next to a bare llama-cpp-python loop.

    python benchmarks/local_bench.py [--reps 7] [--max-tokens 128] [--prompt "..."] [--model-path X.gguf]

All three paths run the same GGUF with the same settings (n_ctx, seed, temperature 0, max_tokens, the
chat template from the GGUF, chatcli's thread counts) and the same prompt, interleaved so that
machine noise hits them alike; each has its own `Llama` instance and so its own prompt cache, warmed by
one unmeasured run. Greedy decoding makes the replies identical, which is checked, so all three are
timed on the same tokens. Figures are medians; "vs direct" is the median of per-round ratios:

* ttft: request to the first text;
* tok/s: reply tokens / (request to last token);
* decode tok/s: (reply tokens - 1) / (first to last token), generation speed without the prompt;
* tok/cpu-s: reply tokens per CPU second of the process — on a shared machine, where other processes
  steal the cores, this shows chatcli's own overhead better than the wall clock does.

Target: chatcli >= 0.95x the direct loop's tok/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatcli.events import Message, TextDelta, Usage
from chatcli.providers.local import LocalProvider
from chatcli.session import Session
from chatcli.settings import ProviderConfig

SEED = 1234
DEFAULT_PROMPT = "Tell me a long story about dragons."


@dataclass
class Run:
    text: str
    ttft: float
    total: float
    last_token: float  # seconds from the request to the last text
    cpu: float  # CPU seconds of the whole process for the run


def timed(chunks: Iterator[str]) -> Run:
    """Drive an iterator of text pieces, timing the first and the last."""
    cpu = time.process_time()
    start = time.perf_counter()
    first = last = 0.0
    parts: list[str] = []
    for piece in chunks:
        now = time.perf_counter()
        if not parts:
            first = now
        last = now
        parts.append(piece)
    end = time.perf_counter()
    return Run("".join(parts), first - start, end - start, last - start, time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument("--model-path", default=None, help="a GGUF file (default: the bundled SmolLM2)")
    args = parser.parse_args()

    config = ProviderConfig(name="local", type="local", model_path=args.model_path)
    started = time.perf_counter()
    provider = LocalProvider(config, seed=SEED)
    provider.warm()
    chatcli_load = time.perf_counter() - started
    model_file, n_ctx = provider.model_file, provider.context_window
    assert model_file is not None and n_ctx is not None

    import llama_cpp  # after warm(): llama.cpp's logging already goes to chatcli's quiet callback

    llama_class: Any = llama_cpp.Llama  # its stream chunks are TypedDict unions: read them untyped

    started = time.perf_counter()
    params = provider._llama.context_params  # the same thread counts as chatcli's
    threads = {"n_threads": params.n_threads, "n_threads_batch": params.n_threads_batch}
    direct = llama_class(model_path=str(model_file), n_ctx=n_ctx, seed=SEED, verbose=False, **threads)
    direct_load = time.perf_counter() - started

    session_provider = LocalProvider(config, seed=SEED)  # its own Llama, so its own prompt cache
    session_provider.warm()

    messages = [Message("user", args.prompt)]
    tokens: dict[str, int] = {}

    def direct_loop() -> Iterator[str]:
        for chunk in direct.create_chat_completion(
            messages=[{"role": "user", "content": args.prompt}], stream=True,
            max_tokens=args.max_tokens, temperature=0.0, seed=SEED,
        ):
            text = chunk["choices"][0]["delta"].get("content")
            if text:
                yield text

    def provider_loop() -> Iterator[str]:
        for event in provider.stream(messages, model="smollm2", max_tokens=args.max_tokens, temperature=0.0):
            if isinstance(event, TextDelta):
                yield event.text
            elif isinstance(event, Usage) and event.output_tokens is not None:
                tokens["reply"] = event.output_tokens

    def session_loop() -> Iterator[str]:
        # A fresh session per run: the same one-message request every time.
        session = Session(session_provider, model="smollm2", max_tokens=args.max_tokens, temperature=0.0)
        for event in session.send(args.prompt):
            if isinstance(event, TextDelta):
                yield event.text

    paths: dict[str, Callable[[], Iterator[str]]] = {
        "direct llama_cpp": direct_loop,
        "chatcli LocalProvider": provider_loop,
        "chatcli Session": session_loop,
    }
    runs: dict[str, list[Run]] = {name: [] for name in paths}
    for loop in paths.values():
        timed(loop())  # warm-up: fills this instance's prompt cache, pages the weights in
    names = list(paths)
    for rep in range(args.reps):
        # Rotate the order every round: on a shared machine a slow spell should not always hit one path.
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            runs[name].append(timed(paths[name]()))

    texts = {run.text for results in runs.values() for run in results}
    if len(texts) != 1:
        print("warning: the paths produced different replies; the token count is chatcli's", file=sys.stderr)
    n = tokens["reply"]

    print(f"llama-cpp-python {llama_cpp.__version__}; model {model_file.name}; n_ctx {n_ctx}; "
          f"threads {threads['n_threads']}/{threads['n_threads_batch']} (generation/prompt); "
          f"temperature 0, seed {SEED}, max_tokens {args.max_tokens}; reply {n} tokens; "
          f"{args.reps} runs, medians")
    print(f"model load: chatcli warm() {chatcli_load:.3f}s (includes importing llama_cpp), "
          f"direct Llama() {direct_load:.3f}s")
    print(f"{'path':<24}{'ttft ms':>9}{'tok/s':>9}{'decode tok/s':>14}{'vs direct':>11}"
          f"{'tok/cpu-s':>11}{'vs direct':>11}")
    baseline = runs[names[0]]
    for name, results in runs.items():
        ttft = statistics.median(r.ttft for r in results)
        rate = statistics.median(n / r.last_token for r in results)
        decode = statistics.median((n - 1) / (r.last_token - r.ttft) for r in results)
        # Paired: each run against the direct run of the same round, so drifts in machine load cancel.
        ratio = statistics.median(b.last_token / r.last_token for r, b in zip(results, baseline, strict=True))
        cpu_rate = statistics.median(n / r.cpu for r in results)
        cpu_ratio = statistics.median(b.cpu / r.cpu for r, b in zip(results, baseline, strict=True))
        print(f"{name:<24}{ttft * 1000:>9.1f}{rate:>9.1f}{decode:>14.1f}{ratio:>10.3f}x"
              f"{cpu_rate:>11.1f}{cpu_ratio:>10.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
