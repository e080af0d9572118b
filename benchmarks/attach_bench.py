"""Attachment cost: time added before the request leaves, and peak memory, for a big image.

    python benchmarks/attach_bench.py [--runs 15] [--size-mb 10] [--mem-mb 20]

Time (target: attaching a 10 MB image adds <= 60 ms): each round runs, back to back,

* `bare`:   `base64.b64encode(data).decode("ascii")` of bytes already in memory, the floor any
            attachment pays however it is read;
* `attach`: `attachments.load(path)` (open, fstat, sniff, the size limit, one read) and then the
            data URL exactly as the providers build it,
            `f"data:{mt};base64,{base64.b64encode(data).decode('ascii')}"`;
* `lean`:   `attachments.load(path)` then `attachments.data_url(part)`, which builds the same
            string in place (see `attachments.base64_text`).

"added" is the median of the per-round differences attach - bare (and lean - bare). The file is in the OS page
cache after the first round (as a screenshot just taken is); the SHA-256 the store computes, and
the context estimate, are timed on their own rows since `ask` pays them only when saving.

Memory (target: peak <= baseline + 3x the file size): each row runs in a fresh subprocess that
imports the same modules and then measures, with tracemalloc, the peak of what it allocates
while it does its work, and reports ru_maxrss too:

* `baseline`: nothing (the process after its imports);
* `attach`:   load the 20 MB image and build the provider's data URL with the one-liner above,
              holding the part as a conversation does;
* `lean`:     the same with `attachments.data_url`;
* `bare`:     read the file with `Path.read_bytes` and build the same data URL, for comparison:
              what any code that keeps the bytes and base64-encodes them pays.

The image is a real PNG (tests/support/media.py), incompressible, generated in a temp dir.
Exit status 1 if a target is missed by the `lean` path (the one-liner's memory is printed with
its own verdict: it misses 3x by itself, whatever reads the file, as the `bare` row shows).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import base64  # noqa: E402

from chatcli import attachments  # noqa: E402
from tests.support import media  # noqa: E402

ADDED_TARGET_MS = 60.0
MEMORY_TARGET_X = 3.0

_MEMORY_CHILD = """
import base64, json, resource, sys, tracemalloc
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from chatcli import attachments
mode, path = sys.argv[2], sys.argv[3]
def hwm_kb():
    # VmHWM is this process's own peak RSS; ru_maxrss would carry the forking parent's over exec.
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rss_before = hwm_kb()
tracemalloc.start()
keep = None
if mode == "attach":
    a = attachments.load(path)
    part = a.part
    url = f"data:{part.media_type};base64,{base64.b64encode(part.data).decode('ascii')}"
    keep = (a, url)
elif mode == "lean":
    a = attachments.load(path)
    url = attachments.data_url(a.part)
    keep = (a, url)
elif mode == "bare":
    data = Path(path).read_bytes()
    url = f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}"
    keep = (data, url)
current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss_after = hwm_kb()
print(json.dumps({"peak": peak, "rss_before_kb": rss_before, "rss_after_kb": rss_after}))
"""


def _data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def time_rows(path: Path, runs: int) -> dict[str, list[float]]:
    data = path.read_bytes()
    rows: dict[str, list[float]] = {name: [] for name in ("bare", "attach", "lean", "added", "added lean",
                                                          "sha256", "estimate")}
    for _ in range(runs):
        t0 = time.perf_counter()
        base64.b64encode(data).decode("ascii")
        t1 = time.perf_counter()
        a = attachments.load(str(path))
        assert a.part is not None and a.part.data is not None
        _data_url(a.part.media_type, a.part.data)
        t2 = time.perf_counter()
        attachments.content_hash(a.part)
        t3 = time.perf_counter()
        attachments.estimate_tokens(a.part)
        t4 = time.perf_counter()
        lean = attachments.load(str(path))
        assert lean.part is not None
        attachments.data_url(lean.part)
        t5 = time.perf_counter()
        bare_ms, attach_ms, lean_ms = (t1 - t0) * 1000, (t2 - t1) * 1000, (t5 - t4) * 1000
        rows["bare"].append(bare_ms)
        rows["attach"].append(attach_ms)
        rows["lean"].append(lean_ms)
        rows["added"].append(attach_ms - bare_ms)
        rows["added lean"].append(lean_ms - bare_ms)
        rows["sha256"].append((t3 - t2) * 1000)
        rows["estimate"].append((t4 - t3) * 1000)
    return rows


def memory_row(mode: str, path: Path) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(ROOT), mode, str(path)],
                         capture_output=True, text=True, check=True).stdout
    result: dict[str, int] = json.loads(out)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--mem-mb", type=float, default=20.0)
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        timed = Path(tmp) / "shot.png"
        timed.write_bytes(media.png_of_size(int(args.size_mb * 1_000_000)))
        size = timed.stat().st_size
        rows = time_rows(timed, args.runs)
        print(f"time, {size / 1e6:.1f} MB PNG, median of {args.runs} rounds:")
        for name in rows:
            print(f"  {name:<11} {statistics.median(rows[name]):8.2f} ms")
        for name in ("added", "added lean"):
            added = statistics.median(rows[name])
            verdict = "ok" if added <= ADDED_TARGET_MS else "MISSED"
            ok &= added <= ADDED_TARGET_MS
            print(f"  {name} before the request leaves: {added:.2f} ms (target <= {ADDED_TARGET_MS:g} ms) {verdict}")

        big = Path(tmp) / "big.png"
        big.write_bytes(media.png_of_size(int(args.mem_mb * 1_000_000) - 10_000))  # just under the limit
        big_size = big.stat().st_size
        print(f"memory, {big_size / 1e6:.1f} MB PNG, a fresh process per row (tracemalloc; RSS = VmHWM):")
        base = memory_row("baseline", big)
        for mode in ("attach", "lean", "bare"):
            m = memory_row(mode, big)
            peak_x = (m["peak"] - base["peak"]) / big_size
            rss_x = (m["rss_after_kb"] - base["rss_after_kb"]) * 1024 / big_size
            verdict = "ok" if peak_x <= MEMORY_TARGET_X else "MISSED"
            print(f"  {mode:<7} peak +{(m['peak'] - base['peak']) / 1e6:5.1f} MB = {peak_x:.2f}x the file "
                  f"(target <= {MEMORY_TARGET_X:g}x: {verdict}); peak RSS +{rss_x:.2f}x")
            if mode == "lean":
                ok &= peak_x <= MEMORY_TARGET_X
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
