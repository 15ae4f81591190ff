"""Mutation check of the conformance suite: break one simulator (or runtime) behaviour at a
time and show which conformance tests notice.

Each mutation is a small pytest plugin module, generated into a temporary directory and loaded
with ``-p`` into a subprocess run of the suite (``pytest -p amdgpu -p <mutation> conformance
--amdgpu-sim=<target>``); at import it monkeypatches one function of the simulator (parts B, E,
F) or the runtime. The suite itself never imports the simulator. A baseline run without a
mutation comes first; a mutation is caught when at least one test that passed in the baseline
fails (or errors) under it. The script prints, per mutation, the tests that caught it, and
exits non-zero if any mutation was not caught (or the baseline itself is broken).

Run: ``python bench/mutation_check.py [--target gfx942] [-n 2] [--only NAME ...] [--list]``.
Extra pytest arguments go after ``--`` (e.g. ``-- -k "pm4 or sdma"`` to narrow the suite).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "conformance"


@dataclass(frozen=True)
class Mutation:
    """One deliberate defect: what it breaks, and the plugin source that breaks it."""

    name: str
    breaks: str
    source: str


MUTATIONS: tuple[Mutation, ...] = (
    Mutation("wait_reg_mem_compare",
             "PM4 WAIT_REG_MEM compare function 5 (>=) evaluated as 6 (>)",
             """
             from pytest_amdgpu.packets import pm4 as P
             from pytest_amdgpu.sim.gpu import pm4

             _orig = pm4._HANDLERS[P.WaitRegMem]

             def _mutated(ex, f, level):
                 function, *rest = f
                 return _orig(ex, (6 if function == 5 else function, *rest), level)

             pm4._HANDLERS[P.WaitRegMem] = _mutated
             """),
    Mutation("release_mem_data_sel",
             "PM4 RELEASE_MEM DATA_SEL 1 (low 32 bits) writes all 64 bits",
             """
             from pytest_amdgpu.packets import pm4 as P
             from pytest_amdgpu.sim.gpu import pm4

             _orig = pm4._HANDLERS[P.ReleaseMem]

             def _mutated(ex, f, level):
                 dst_sel, int_sel, data_sel, *rest = f
                 return _orig(ex, (dst_sel, int_sel, 2 if data_sel == 1 else data_sel, *rest),
                              level)

             pm4._HANDLERS[P.ReleaseMem] = _mutated
             """),
    Mutation("sdma_copy_count",
             "SDMA COPY_LINEAR copies count bytes instead of count + 1",
             """
             from pytest_amdgpu.sim.gpu import sdma

             _orig = sdma.SDMAProcessor._copy

             def _mutated(self, src, dsts, size):
                 return _orig(self, src, dsts, size - 1)

             sdma.SDMAProcessor._copy = _mutated
             """),
    Mutation("barrier_and",
             "AQL BARRIER_AND completes when any (not every) dependency is 0",
             """
             from pytest_amdgpu.sim.gpu import aql

             _orig = aql.AQLProcessor._barrier

             def _mutated(self, pkt, is_and):
                 if not is_and:
                     return _orig(self, pkt, is_and)
                 values = [self.vm.read_u64(h + aql.SIGNAL_VALUE) for h in pkt.dep_signal if h]
                 return not values or any(v == 0 for v in values)

             aql.AQLProcessor._barrier = _mutated
             """),
    Mutation("event_auto_reset",
             "a WAIT_EVENTS that sees an auto-reset event does not consume it",
             """
             from pytest_amdgpu.sim import events

             _orig = events.EventManager._init_waiter

             def _mutated(self, w, ev, last_age):
                 auto = ev.auto_reset
                 ev.auto_reset = False
                 try:
                     return _orig(self, w, ev, last_age)
                 finally:
                     ev.auto_reset = auto

             events.EventManager._init_waiter = _mutated
             """),
    Mutation("ring_wrap_padding",
             "the runtime pads the PM4 ring end with zero dwords instead of NOP packets",
             """
             from pytest_amdgpu.runtime import queue

             queue.PM4Queue._nop = lambda self, ndw: [0] * ndw
             """),
    Mutation("aql_completion_decrement",
             "AQL completion decrements only the low 32 bits of the 64-bit signal value",
             """
             from pytest_amdgpu.sim.gpu import aql

             _orig = aql.AQLProcessor.signal_completion
             _M32 = 0xFFFFFFFF

             def _mutated(self, signal):
                 before = self.vm.read_u64(signal + aql.SIGNAL_VALUE)
                 _orig(self, signal)
                 self.vm.write_u64(signal + aql.SIGNAL_VALUE,
                                   (before & ~_M32) | ((before - 1) & _M32))

             aql.AQLProcessor.signal_completion = _mutated
             """),
    Mutation("vm_fault_unmapped",
             "GPU accesses to unmapped addresses are dropped (reads give 0) instead of faulting",
             """
             import numpy as np

             from pytest_amdgpu.sim import memory

             def _quiet(name, default):
                 orig = getattr(memory.GPUVM, name)

                 def wrapper(self, *args, **kwargs):
                     try:
                         return orig(self, *args, **kwargs)
                     except memory.VMFault as exc:
                         if exc.reason != "not_present":
                             raise
                         return default(*args)
                 setattr(memory.GPUVM, name, wrapper)

             _quiet("read", lambda addr, size, *a: bytes(size))
             _quiet("read_u32", lambda *a: 0)
             _quiet("read_u64", lambda *a: 0)
             _quiet("write", lambda *a: None)
             _quiet("write_u32", lambda *a: None)
             _quiet("write_u64", lambda *a: None)
             _quiet("atomic", lambda *a, **k: 0)
             _quiet("gather", lambda addrs, nbytes, *a: np.zeros((len(addrs), nbytes), np.uint8))
             _quiet("scatter", lambda *a: None)
             """),
    Mutation("aql_queue_error_code",
             "a stopped AQL queue reports every packet error as invalid packet format (0x20)",
             """
             from pytest_amdgpu.sim.gpu import engine

             _orig = engine.GPUEngine._report_aql_queue_error

             def _mutated(self, q, reason):
                 return _orig(self, q, "EC_QUEUE_PACKET_RESERVED: " + reason)

             engine.GPUEngine._report_aql_queue_error = _mutated
             """),
    Mutation("hidden_remainder",
             "the hidden argument hidden_remainder_x is always 0 (partial work-groups lost)",
             """
             from pytest_amdgpu.codeobj import kernarg

             _orig = kernarg.hidden_values

             def _mutated(*args, **kwargs):
                 values = _orig(*args, **kwargs)
                 values["hidden_remainder_x"] = 0
                 return values

             kernarg.hidden_values = _mutated
             """),
)


def _run_suite(plugin: str | None, plugin_dir: Path, report: Path, target: str, workers: int,
               extra: list[str], log: Path) -> dict:
    """One pytest run of the suite in a subprocess; its --amdgpu-report JSON."""
    cmd = [sys.executable, "-m", "pytest", "-p", "amdgpu", str(SUITE), f"--amdgpu-sim={target}",
           f"--amdgpu-report={report}", "-q", "-p", "no:cacheprovider", "--timeout=120"]
    if workers > 1:
        cmd += ["-n", str(workers)]
    if plugin:
        cmd += ["-p", plugin]
    cmd += extra
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_dir), str(ROOT),
                                                      env.get("PYTHONPATH", "")]))
    for name in list(env):
        if name.startswith("PYTEST_AMDGPU_") or name == "PYTEST_ADDOPTS":
            del env[name]
    with open(log, "w") as out:
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    try:
        return json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"the suite run wrote no report ({exc}); see {log}") from None


def _outcomes(data: dict) -> dict[str, str]:
    return {t["nodeid"]: t["outcome"] for t in data.get("tests", [])}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="gfx942", help="simulated target (default gfx942)")
    ap.add_argument("-n", "--workers", type=int, default=2, help="xdist workers (default 2)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these mutations")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--show", type=int, default=8, help="catching tests shown per mutation")
    ap.add_argument("--keep", default="", help="directory to keep the logs and reports in")
    args = ap.parse_args(argv)

    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:26} {m.breaks}")
        return 0
    chosen = [m for m in MUTATIONS if args.only is None or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        print(f"unknown mutations: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mutation-check-"))
    work.mkdir(parents=True, exist_ok=True)
    for m in chosen:
        (work / f"mutation_{m.name}.py").write_text(
            f'"""Mutation {m.name}: {m.breaks}."""\n' + textwrap.dedent(m.source))

    t0 = time.monotonic()
    base = _outcomes(_run_suite(None, work, work / "baseline.json", args.target, args.workers,
                                extra, work / "baseline.log"))
    passed = {k for k, v in base.items() if v == "passed"}
    broken = sorted(k for k, v in base.items() if v in ("failed", "error"))
    print(f"baseline ({args.target}): {len(passed)} passed, {len(broken)} failed, "
          f"{len(base) - len(passed) - len(broken)} other in {time.monotonic() - t0:.0f} s")
    for k in broken:
        print(f"  baseline failure (not counted for any mutation): {k}")
    if not passed:
        print("the baseline run passed no test: nothing to compare against", file=sys.stderr)
        return 2

    missed = []
    for m in chosen:
        t1 = time.monotonic()
        got = _outcomes(_run_suite(f"mutation_{m.name}", work, work / f"{m.name}.json",
                                   args.target, args.workers, extra, work / f"{m.name}.log"))
        caught = sorted(k for k in passed if got.get(k) in ("failed", "error"))
        status = "CAUGHT" if caught else "MISSED"
        print(f"\n{status} {m.name}: {m.breaks} — {len(caught)} test(s) failed "
              f"({time.monotonic() - t1:.0f} s)")
        for k in caught[:args.show]:
            print(f"    {k}")
        if len(caught) > args.show:
            print(f"    … and {len(caught) - args.show} more")
        if not caught:
            missed.append(m.name)
    print(f"\n{len(chosen) - len(missed)} of {len(chosen)} mutations caught "
          f"in {time.monotonic() - t0:.0f} s; logs and reports in {work}")
    if missed:
        print(f"not caught: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
