"""The simulated GPU clock: a 100 MHz monotonic counter derived from the host's monotonic clock.

One clock per machine is enough (every consumer reads the same host clock), but each engine
holds one so a device can be asked for its counter on its own. RELEASE_MEM / COPY_DATA
timestamps, SDMA TIMESTAMP, s_memtime / s_memrealtime and GET_CLOCK_COUNTERS all read it, so
their values are mutually consistent: one tick = 10 ns of host monotonic time.
"""

from __future__ import annotations

import time

GPU_CLOCK_HZ = 100_000_000
_NS_PER_TICK = 1_000_000_000 // GPU_CLOCK_HZ

# All clocks share one origin so timestamps taken on different devices compare.
_ORIGIN_NS = time.monotonic_ns()


class GPUClock:
    """100 MHz counter: 10 ns ticks of host monotonic time since the simulator was loaded.

    Calling the object returns the counter, so it can be passed where a `clock()` callable is
    expected (the shader core's s_memtime). It never goes backwards because the host's
    monotonic clock does not.
    """

    frequency = GPU_CLOCK_HZ

    def __call__(self) -> int:
        return (time.monotonic_ns() - _ORIGIN_NS) // _NS_PER_TICK

    now = __call__

    @staticmethod
    def host_ns_to_ticks(ns: int) -> int:
        """Convert a host monotonic timestamp (time.monotonic_ns()) into GPU ticks."""
        return (ns - _ORIGIN_NS) // _NS_PER_TICK
