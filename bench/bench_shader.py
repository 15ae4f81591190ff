"""Shader-core throughput: lane-instructions per second and dispatch time.

Kernels are OpenCL C compiled with clang-19 -O2 (no device libraries): a 1M-element saxpy and
an LDS tree reduction (256-item groups, barriers), on gfx942 (wave64) and gfx1100 (wave32).
Each dispatch runs on the shader core directly against the simulated driver's GPUVM; the
figure is lane-instructions / wall time, median of the runs after a warm-up dispatch (which
decodes and compiles the code once). Lane-instructions are counted as the hardware would
execute them, in a separate traced run: every instruction a wave executes counts its
wavefront size, except that vector instructions of a wave whose EXEC is zero do not count
(the hardware skips those blocks; the simulator may run them as no-ops). "cpu" columns use
the thread's CPU time, which is steadier than wall time on a shared machine.

    python bench/bench_shader.py [--n 1048576] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.shader.harness import CodeObject, Device, compile_cl  # noqa: E402
from tests.shader.realvm import RealVM  # noqa: E402

SRC = r"""
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())
#define BARRIER() do { __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup"); \
  __builtin_amdgcn_s_barrier(); __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup"); } while (0)

__kernel void saxpy(__global float *y, __global const float *x, float a, int n) {
  int i = GID;
  if (i < n) y[i] = a * x[i] + y[i];
}

__kernel void reduce(__global float *out, __global const float *in, int n) {
  __local float s[256];
  int lid = __builtin_amdgcn_workitem_id_x();
  int gid = __builtin_amdgcn_workgroup_id_x() * 256 + lid;
  s[lid] = gid < n ? in[gid] : 0.0f;
  BARRIER();
  for (int st = 128; st > 0; st >>= 1) {
    if (lid < st) s[lid] += s[lid + st];
    BARRIER();
  }
  if (lid == 0) out[__builtin_amdgcn_workgroup_id_x()] = s[0];
}
"""


def bench(target: str, kernel: str, n: int, runs: int, tmp: Path) -> dict:
    src = tmp / "bench.cl"
    src.write_text(SRC)
    co = CodeObject(compile_cl(src, target, tmp))
    vm = RealVM()
    try:
        d = Device(target, co, vm=vm)
        rng = np.random.default_rng(1)
        x = rng.standard_normal(n).astype(np.float32)
        y = rng.standard_normal(n).astype(np.float32)
        xa, ya = d.buf(x), d.buf(y)
        groups = -(-n // 256)
        out = d.buf(nbytes=4 * groups)
        times = []
        cpu = []
        for _ in range(runs + 1):
            c0 = time.thread_time()
            t0 = time.perf_counter()
            if kernel == "saxpy":
                d.launch("saxpy", (n,), (256,), ya, xa, 2.0, n)
            else:
                d.launch("reduce", (groups * 256,), (256,), out, xa, n)
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        stats = dict(d.core.last_stats)
        hw = [0]

        def count(inst, b):
            if inst.fmt.startswith(("SOP", "SMEM")):
                hw[0] += b.W * b.L
            else:
                hw[0] += int(b.em.any(axis=1).sum()) * b.L
        d.core.trace = count
        if kernel == "saxpy":
            d.launch("saxpy", (n,), (256,), ya, xa, 2.0, n)
        else:
            d.launch("reduce", (groups * 256,), (256,), out, xa, n)
        d.core.trace = None
        stats["lane_instructions"] = hw[0]
        if kernel == "reduce":
            got = d.read(out, np.float32, groups)
            pad = np.zeros(groups * 256, np.float32)
            pad[:n] = x
            ok = np.allclose(got, pad.reshape(groups, 256).sum(axis=1), rtol=1e-4, atol=1e-3)
        else:
            ok = True
        t = statistics.median(times[1:])
        c = statistics.median(cpu[1:])
        return {"target": target, "kernel": kernel, "n": n, "time_ms": t * 1e3, "first_ms": times[0] * 1e3,
                "cpu_ms": c * 1e3, "cpu_mlips": stats["lane_instructions"] / c / 1e6,
                "lane_instructions": stats["lane_instructions"], "instructions": stats["instructions"],
                "mlips": stats["lane_instructions"] / t / 1e6, "ok": ok}
    finally:
        vm.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--targets", default="gfx942,gfx1100")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"{'target':8} {'kernel':7} {'items':>8} {'median ms':>10} {'cpu ms':>8} {'first ms':>9} "
              f"{'M lane-inst/s':>14} {'(cpu)':>7} {'wave insts':>11}")
        for target in args.targets.split(","):
            for kernel in ("saxpy", "reduce"):
                r = bench(target, kernel, args.n, args.runs, tmp)
                flag = "" if r["ok"] else "  WRONG RESULT"
                print(f"{r['target']:8} {r['kernel']:7} {r['n']:8d} {r['time_ms']:10.1f} {r['cpu_ms']:8.1f} "
                      f"{r['first_ms']:9.1f} {r['mlips']:14.1f} {r['cpu_mlips']:7.1f} {r['instructions']:11d}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
