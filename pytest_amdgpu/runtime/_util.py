"""Small helpers shared by the runtime modules: alignment, deadlines, CPU memory access.

Waiting on the GPU always has a deadline and always yields the CPU: on the simulator the GPU is
a Python thread that needs the GIL, and on hardware a spinning host thread only burns a core.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Iterator

import numpy as np

from ..errors import UsageError
from ..kfd import _syscall

PAGE_SIZE = 4096
DEFAULT_TIMEOUT = 10.0          # seconds, for every wait that was not given one


def set_default_timeout(seconds: float) -> None:
    """The deadline (seconds) of every runtime wait not given a timeout (default 10 s)."""
    global DEFAULT_TIMEOUT
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise UsageError(f"the default timeout must be a positive number of seconds, got "
                         f"{seconds!r}")
    DEFAULT_TIMEOUT = float(seconds)


def get_default_timeout() -> float:
    return DEFAULT_TIMEOUT


def align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def is_pow2(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def check_int(name: str, value: object, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """`value` as an int, or a UsageError that names the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise UsageError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise UsageError(f"{name} must be <= {maximum:#x}, got {value:#x}")
    return value


def resolve_timeout(timeout: float | None) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise UsageError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    return float(timeout)


def backoff(deadline: float, *, first_sleep: float = 2e-6, max_sleep: float = 1e-3
            ) -> Iterator[float]:
    """Yield the time left until `deadline`, sleeping a growing interval between yields.

    The first rounds only yield the CPU and the GIL (sched_yield: under a microsecond, where
    sleep(0) costs tens) so a fast GPU answer is seen within microseconds; later rounds sleep
    up to `max_sleep`. Stops after the first round past the deadline (which is still yielded
    once so the caller checks a last time).
    """
    sleep = 0.0
    rounds = 0
    while True:
        left = deadline - time.monotonic()
        yield left
        if left <= 0:
            return
        rounds += 1
        if rounds <= 20:
            os.sched_yield()
            continue
        sleep = min(max_sleep, first_sleep if sleep == 0.0 else sleep * 1.5)
        time.sleep(min(sleep, max(left, 0.0)))


def load64(addr: int) -> int:
    """64-bit acquire load from a CPU-mapped GPU buffer."""
    return _syscall.load64(addr)


def store64(addr: int, value: int) -> None:
    """64-bit release store to a CPU-mapped GPU buffer."""
    _syscall.store64(addr, value & 0xFFFFFFFFFFFFFFFF)


def load32(addr: int) -> int:
    return _syscall.load32(addr)


def store32(addr: int, value: int) -> None:
    _syscall.store32(addr, value & 0xFFFFFFFF)


def memory_array(addr: int, size: int, *, owner: object = None, writable: bool = True
                 ) -> np.ndarray:
    """A uint8 numpy array over `size` bytes of process memory at `addr`.

    The array keeps `owner` alive (through its base object) so a Buffer is not collected while
    a view of it exists; it cannot stop an explicit free, after which the view must not be used.
    """
    raw = (ctypes.c_uint8 * size).from_address(addr)
    raw._owner = owner  # type: ignore[attr-defined]
    arr = np.frombuffer(raw, dtype=np.uint8)
    if not writable:
        arr.flags.writeable = False
    return arr


def raw_view(addr: int, size: int) -> memoryview:
    """A writable byte memoryview of `size` bytes of process memory at `addr` (no copy, no
    owner: valid while the memory stays mapped). Slice assignment through it copies without
    releasing the GIL, several times cheaper than ctypes.memmove for packet-sized writes."""
    return memoryview((ctypes.c_char * size).from_address(addr)).cast("B")


_PAGE_VIEWS: dict[int, memoryview] = {}
_PAGE_VIEWS_MAX = 4096


def write_bytes(addr: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
    """Copy `data` to process memory at `addr`."""
    if type(data) is bytes or type(data) is bytearray:
        off = addr & (PAGE_SIZE - 1)
        end = off + len(data)
        if end <= PAGE_SIZE:
            # within one page: a cached view of the page (a plain memcpy)
            page = addr - off
            view = _PAGE_VIEWS.get(page)
            if view is None:
                if len(_PAGE_VIEWS) >= _PAGE_VIEWS_MAX:
                    _PAGE_VIEWS.clear()
                view = _PAGE_VIEWS[page] = raw_view(page, PAGE_SIZE)
            view[off:end] = data
            return
    raw = np.ascontiguousarray(data).tobytes() if isinstance(data, np.ndarray) else bytes(data)
    ctypes.memmove(addr, raw, len(raw))


def read_bytes(addr: int, size: int) -> bytes:
    return ctypes.string_at(addr, size)
