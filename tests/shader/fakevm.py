"""A small stand-in for the simulated driver's GPUVM (pytest_amdgpu.sim.memory.GPUVM).

It implements the same interface the shader core uses (read / write / view / gather /
scatter / atomic / check_exec / lookup / notify_write) over a few numpy-backed regions, and
raises the real `VMFault`, so shader-core tests do not depend on the driver model.
"""

from __future__ import annotations

import bisect

import numpy as np

from pytest_amdgpu.sim.memory import VMFault


class Region:
    def __init__(self, base: int, size: int, *, writable: bool = True, executable: bool = False):
        self.start = base
        self.end = base + size
        self.array = np.zeros(size, dtype=np.uint8)
        self.writable = writable
        self.executable = executable


class FakeVM:
    """Regions of GPU virtual memory; any other address faults."""

    def __init__(self) -> None:
        self.regions: list[Region] = []
        self.writes = 0
        self.next_va = 0x7F00_0000_0000

    # -- setup ----------------------------------------------------------------------------------
    def map(self, size: int, *, base: int | None = None, writable: bool = True, executable: bool = False,
            align: int = 0x10000) -> Region:
        size = max(size, 4)
        if base is None:
            base = (self.next_va + align - 1) & ~(align - 1)
            self.next_va = base + ((size + 0xFFFF) & ~0xFFFF) + 0x10000   # leave a gap between regions
        r = Region(base, size, writable=writable, executable=executable)
        i = bisect.bisect([x.start for x in self.regions], base)
        self.regions.insert(i, r)
        return r

    def alloc(self, data, *, writable: bool = True, executable: bool = False) -> int:
        """Map a region holding `data` (bytes or numpy array); returns its address."""
        raw = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else \
            np.ascontiguousarray(data).view(np.uint8).reshape(-1)
        r = self.map(max(raw.size, 4), writable=writable, executable=executable)
        r.array[:raw.size] = raw
        return r.start

    def array(self, addr: int, dtype, count: int) -> np.ndarray:
        r = self.lookup(addr)
        o = addr - r.start
        return r.array[o:o + np.dtype(dtype).itemsize * count].view(dtype)

    # -- GPUVM interface ------------------------------------------------------------------------
    def lookup(self, addr: int) -> Region | None:
        i = bisect.bisect_right([x.start for x in self.regions], addr) - 1
        if i >= 0 and addr < self.regions[i].end:
            return self.regions[i]
        return None

    def _span(self, addr: int, size: int, write: bool) -> Region:
        r = self.lookup(addr)
        if r is None:
            raise VMFault(addr, write, "not_present", size=size)
        if addr + size > r.end:
            raise VMFault(r.end, write, "not_present", size=size)
        if write and not r.writable:
            raise VMFault(addr, write, "read_only", size=size)
        return r

    def read(self, addr: int, size: int) -> bytes:
        r = self._span(addr, size, False)
        o = addr - r.start
        return r.array[o:o + size].tobytes()

    def write(self, addr: int, data) -> None:
        src = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else \
            np.ascontiguousarray(data).view(np.uint8).reshape(-1)
        r = self._span(addr, src.size, True)
        o = addr - r.start
        r.array[o:o + src.size] = src
        self.writes += 1

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u32(self, addr: int, v: int) -> None:
        self.write(addr, int(v).to_bytes(4, "little"))

    def view(self, addr: int, size: int, write: bool) -> np.ndarray:
        r = self._span(addr, size, write)
        o = addr - r.start
        v = r.array[o:o + size]
        if not write:
            v = v.view()
            v.flags.writeable = False
        return v

    def check_exec(self, addr: int, size: int) -> None:
        r = self.lookup(addr)
        if r is None:
            raise VMFault(addr, False, "not_present", size=size)
        if not r.executable:
            raise VMFault(addr, False, "no_execute", size=size)

    def gather(self, addrs, nbytes: int, mask=None) -> np.ndarray:
        addrs = np.asarray(addrs, dtype=np.uint64)
        out = np.zeros((addrs.size, nbytes), dtype=np.uint8)
        for i, a in enumerate(addrs):
            if mask is not None and not mask[i]:
                continue
            out[i] = np.frombuffer(self.read(int(a), nbytes), dtype=np.uint8)
        return out

    def scatter(self, addrs, data, mask=None) -> None:
        addrs = np.asarray(addrs, dtype=np.uint64)
        data = np.asarray(data).view(np.uint8).reshape(addrs.size, -1)
        for i, a in enumerate(addrs):
            if mask is not None and not mask[i]:
                continue
            self.write(int(a), data[i])

    def atomic(self, addr: int, op: str, src: int, cmp: int = 0, size: int = 4) -> int:
        r = self._span(addr, size, True)
        o = addr - r.start
        dt = np.uint32 if size == 4 else np.uint64
        cell = r.array[o:o + size].view(dt)
        old = int(cell[0])
        mask = (1 << (8 * size)) - 1
        sgn = lambda v: v - (1 << (8 * size)) if v >> (8 * size - 1) else v  # noqa: E731
        new = {"add": old + src, "sub": old - src, "swap": src, "cmpswap": src if old == cmp else old,
               "and": old & src, "or": old | src, "xor": old ^ src, "umin": min(old, src), "umax": max(old, src),
               "smin": old if sgn(old) < sgn(src) else src, "smax": old if sgn(old) > sgn(src) else src,
               "inc": 0 if old >= src else old + 1, "dec": src if old == 0 or old > src else old - 1}[op]
        cell[0] = new & mask
        return old

    def notify_write(self) -> None:
        self.writes += 1
