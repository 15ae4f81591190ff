"""Host-visible latencies and dispatch times through the public runtime API on the simulator.

What a test sees, end to end (submit, doorbell, the simulated GPU thread, the CPU wait):

- signal round trip: `queue.signal(sig, n)` then `sig.wait(n)` on a PM4, SDMA and AQL queue;
- empty-kernel dispatch round trip through AQL and PM4 (`queue.dispatch(empty).wait()`);
- a 1M-element saxpy (the corpus kernel, clang-19 -O2) dispatched through AQL, checked.

Median and p99 of the repetitions after a warm-up.

    python bench/bench_dispatch.py [--target gfx942] [--n 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from pytest_amdgpu import open_device


def percentiles(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]


def signal_round_trip(dev, kind: str, n: int) -> tuple[float, float]:
    q = dev.create_queue(kind)
    sig = dev.create_signal(0)
    times = []
    try:
        for i in range(1, n + 1):
            t0 = time.perf_counter()
            if kind == "aql":
                sig.set(1)
                q.signal(sig)               # AQL barrier-AND completion: decrement to 0
                sig.wait(0, cond="==", timeout=10)
            else:
                q.signal(sig, i)
                sig.wait(i, timeout=10)
            times.append(time.perf_counter() - t0)
    finally:
        sig.free()
        q.destroy()
    return percentiles(times[n // 10:])


def empty_dispatch(dev, kind: str, n: int) -> tuple[float, float]:
    q = dev.create_queue(kind)
    kernel = dev.load_kernel("empty")
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            q.dispatch(kernel, 64, 64, []).wait(timeout=10)
            times.append(time.perf_counter() - t0)
    finally:
        q.destroy()
    return percentiles(times[n // 10:])


def saxpy(dev, n: int, runs: int) -> float:
    q = dev.create_queue("aql")
    kernel = dev.load_kernel("saxpy")
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    xb, yb = dev.alloc(4 * n, "vram"), dev.alloc(4 * n, "vram")
    xb.view(np.float32)[:] = x
    times = []
    try:
        for _ in range(runs + 1):
            yb.view(np.float32)[:] = y
            t0 = time.perf_counter()
            q.dispatch(kernel, n, 256, [np.float32(2.0), xb, yb, np.uint32(n)]).wait(timeout=60)
            times.append(time.perf_counter() - t0)
        expect = np.float32(2.0) * x + y
        if not np.allclose(yb.view(np.float32), expect, rtol=1e-6, atol=1e-6):
            raise SystemExit("saxpy result differs from numpy")
    finally:
        xb.free()
        yb.free()
        q.destroy()
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="gfx942")
    ap.add_argument("--n", type=int, default=2000, help="repetitions per latency figure")
    ap.add_argument("--saxpy", type=int, default=1 << 20)
    args = ap.parse_args()
    with open_device("sim", target=args.target, record=False) as dev:
        print(f"target {args.target}, {args.n} repetitions (median / p99, microseconds)")
        for kind in ("pm4", "sdma", "aql"):
            med, p99 = signal_round_trip(dev, kind, args.n)
            print(f"signal round trip {kind:5s}: {med * 1e6:8.1f} / {p99 * 1e6:8.1f}")
        for kind in ("aql", "pm4"):
            med, p99 = empty_dispatch(dev, kind, max(args.n // 4, 50))
            print(f"empty dispatch {kind:8s}: {med * 1e6:8.1f} / {p99 * 1e6:8.1f}")
        ms = saxpy(dev, args.saxpy, 3) * 1e3
        print(f"saxpy {args.saxpy} elements (AQL, checked): {ms:.1f} ms")


if __name__ == "__main__":
    main()
