"""Cost of one KFD ioctl through the typed layer vs a C loop on the same request.

Without a GPU the only ioctl path is the failing one: GET_VERSION on a /dev/null fd returns
ENOTTY after the same syscall entry, fd lookup and dispatch a trivial KFD ioctl costs. So:

- C loop: ``_syscall.ioctl_loop`` (n syscalls in one C call, the floor);
- prepared: ``kfd.prepared("GET_VERSION", on_error=errors.append)``; ``list.append`` is a C
  no-op counter, so each call is C only: partial → ioctl_checked → syscall → append.
  Measured driven from C (``islice(iter(call, sentinel), n)``) and from a Python for-loop;
- wrapper: ``kfd.get_version()``, once with a shim port that turns ENOTTY into success (the
  shim is one extra Python call), once failing (KFDNotSupported raised and caught).

Run: ``python bench/bench_ioctl.py [-n 100000] [-r 7]``. Prints the median ns per call and
the ratio to the C loop measured in the same run. Target: prepared <= 3x the C loop.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import statistics
import sys
import time

from pytest_amdgpu.kfd import KFD, KFDNotSupported, LinuxPort, _syscall
from pytest_amdgpu.kfd.abi import IOCTLS


def per_call_ns(fn, n: int) -> float:
    t0 = time.perf_counter_ns()
    fn(n)
    return (time.perf_counter_ns() - t0) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100_000, help="calls per repetition")
    ap.add_argument("-r", "--repeat", type=int, default=7, help="repetitions (median taken)")
    args = ap.parse_args(argv)
    n = args.n

    fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    port = LinuxPort()
    kfd = KFD.from_fd(port, fd)
    errors: list[int] = []
    prepared = kfd.prepared("GET_VERSION", on_error=errors.append)
    request, addr = IOCTLS["GET_VERSION"].request, prepared.address
    sentinel = object()

    def c_loop(k):
        _syscall.ioctl_loop(fd, request, addr, k)

    def drive_c(call):
        def run(k):
            collections.deque(itertools.islice(iter(call, sentinel), k), maxlen=0)
            errors.clear()
        return run

    def drive_py(call):
        def run(k):
            for _ in range(k):
                call()
            errors.clear()
        return run

    shim_port = LinuxPort()
    raw = _syscall.ioctl
    shim_port.ioctl = lambda f, r, a: raw(f, r, a) and 0  # ENOTTY → "success"
    shim = KFD.from_fd(shim_port, fd)

    def wrapper_ok(k):
        gv = shim.get_version
        for _ in range(k):
            gv()

    def wrapper_fail(k):
        gv = kfd.get_version
        for _ in range(k):
            try:
                gv()
            except KFDNotSupported:
                pass

    cases = [
        ("C loop (_syscall.ioctl_loop)", c_loop, n),
        ("prepared.call(), C-driven", drive_c(prepared.call), n),
        ("prepared(), C-driven", drive_c(prepared), n),
        ("prepared.call(), Python loop", drive_py(prepared.call), n),
        ("prepared(), Python loop", drive_py(prepared), n),
        ("kfd.get_version() success (shim port)", wrapper_ok, max(n // 4, 1)),
        ("kfd.get_version() ENOTTY raised+caught", wrapper_fail, max(n // 10, 1)),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(args.repeat):          # interleaved so load changes hit every case alike
        for name, fn, k in cases:
            samples[name].append(per_call_ns(fn, k))
    os.close(fd)

    floor = statistics.median(samples[cases[0][0]])
    width = max(len(name) for name, _, _ in cases)
    print(f"{'path':{width}}  {'ns/call':>9}  {'x C loop':>8}   (median of {args.repeat}, "
          f"Python {sys.version.split()[0]})")
    for name, _, _ in cases:
        med = statistics.median(samples[name])
        print(f"{name:{width}}  {med:9.0f}  {med / floor:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
