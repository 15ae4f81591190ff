"""Simulated GPU memory: buffer objects, their backing pages, and the per-process GPU VM.

A buffer object (BO) is backed by a memfd (VRAM, GTT, doorbell and MMIO pages) or by the
process's own pages (USERPTR). The simulator holds one numpy view of every backing; a CPU mmap
of the BO through the render node maps the same memfd, so the process's pointer and the
simulator's view alias the same physical pages (no copies, no synchronisation step).

`GPUVM` is the one door through which the command processors and the shader core touch memory:
every access is looked up in that process's mappings on that device, bounds- and
permission-checked, and a miss is a `VMFault` (never a host crash). Mappings change under the
process lock; readers use an immutable snapshot, so GPU threads never take a lock to read.
A BO is mapped as one attachment per VM, or two back to back over the same pages for
AQL_QUEUE_MEM (kfd_mem_attach), each an independent `Mapping`, as amdgpu's page tables see it.

ALLOC/FREE/MAP/UNMAP follow amdkfd (kfd_chardev.c) and amdgpu_amdkfd_gpuvm.c in the order of
../shared/reference/facts-kfd.md §2.3-2.5; each rule names its source next to it.
"""

from __future__ import annotations

import bisect
import ctypes
import errno as E
import mmap
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..kfd import _syscall
from ..kfd.abi import lib
from .atomic_ops import combine_scalar

if TYPE_CHECKING:  # pragma: no cover
    from .device import SimDevice

__all__ = [
    "PAGE_SIZE", "DriverError", "VMFault", "Backing", "BufferObject", "Mapping", "GPUVM",
    "MemoryManager", "read_user", "write_user", "host_range_mapped",
]

PAGE_SIZE = 4096
VRAM_AVAILABILITY_ALIGN = 1 << 21     # amdgpu_amdkfd_gpuvm.c VRAM_AVAILABLITY_ALIGN (2 MiB)
VM_RESERVED_VRAM = 8 << 20            # AMDGPU_VM_RESERVED_VRAM (amdgpu_vm.h): page-table floor
GPU_VA_BITS = 48                      # gfx9/gfx11 VM: max_pfn = 1 << (48 - 12)
MAX_PFN = 1 << (GPU_VA_BITS - 12)
TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE  # x86-64 access_ok() limit for user pointers

F_VRAM = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_VRAM) & 0xFFFF_FFFF)
F_GTT = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_GTT) & 0xFFFF_FFFF)
F_USERPTR = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR) & 0xFFFF_FFFF)
F_DOORBELL = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL) & 0xFFFF_FFFF)
F_MMIO_REMAP = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP) & 0xFFFF_FFFF)
F_WRITABLE = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE) & 0xFFFF_FFFF)
F_EXECUTABLE = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE) & 0xFFFF_FFFF)
F_PUBLIC = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC) & 0xFFFF_FFFF)
F_AQL_QUEUE_MEM = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_AQL_QUEUE_MEM) & 0xFFFF_FFFF)
F_COHERENT = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_COHERENT) & 0xFFFF_FFFF)
F_UNCACHED = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED) & 0xFFFF_FFFF)


def page_align(x: int) -> int:
    return (x + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class DriverError(Exception):
    """An errno the simulated driver returns from an ioctl (internal control flow)."""

    def __init__(self, errno: int, why: str = "") -> None:
        super().__init__(f"{E.errorcode.get(errno, errno)}: {why}")
        self.errno = errno
        self.why = why


class VMFault(Exception):
    """A GPU access to an address the process has not mapped (or not with that permission).

    `reason` is "not_present", "read_only" or "no_execute"; `address` is the faulting byte.
    """

    def __init__(self, address: int, write: bool, reason: str, *, gpu_id: int | None = None,
                 size: int = 0) -> None:
        what = "write" if write else "read"
        where = f" on gpu {gpu_id:#x}" if gpu_id is not None else ""
        super().__init__(f"GPU VM fault{where}: {what} of {size or '?'} byte(s) at "
                         f"{address:#x} ({reason})")
        self.address = address
        self.write = write
        self.reason = reason
        self.gpu_id = gpu_id
        self.size = size


# -- the caller's memory (copy_from_user / copy_to_user) -----------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


class _iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc.process_vm_readv.restype = ctypes.c_ssize_t
_libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.POINTER(_iovec), ctypes.c_ulong,
                                   ctypes.POINTER(_iovec), ctypes.c_ulong, ctypes.c_ulong]
_libc.process_vm_writev.restype = ctypes.c_ssize_t
_libc.process_vm_writev.argtypes = _libc.process_vm_readv.argtypes
_libc.mincore.restype = ctypes.c_int
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def read_user(addr: int, size: int) -> bytes | None:
    """Copy `size` bytes from this process's address `addr`; None where copy_from_user fails.

    process_vm_readv on ourselves faults like the kernel's copy_from_user (EFAULT) instead of
    crashing the interpreter on a bad pointer.
    """
    if size == 0:
        return b""
    if addr <= 0 or addr + size > TASK_SIZE_MAX + PAGE_SIZE:
        return None
    buf = ctypes.create_string_buffer(size)
    local = _iovec(ctypes.addressof(buf), size)
    remote = _iovec(addr, size)
    n = _libc.process_vm_readv(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n == size:
        return buf.raw
    if n < 0 and ctypes.get_errno() in (E.EPERM, E.ENOSYS):   # no process_vm_* (seccomp)
        return ctypes.string_at(addr, size) if host_range_mapped(addr, size) else None
    return None


def write_user(addr: int, data: bytes) -> bool:
    """copy_to_user: False where the destination is not writable memory of this process."""
    size = len(data)
    if size == 0:
        return True
    if addr <= 0 or addr + size > TASK_SIZE_MAX + PAGE_SIZE:
        return False
    buf = ctypes.create_string_buffer(bytes(data), size)
    local = _iovec(ctypes.addressof(buf), size)
    remote = _iovec(addr, size)
    n = _libc.process_vm_writev(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n < 0 and ctypes.get_errno() in (E.EPERM, E.ENOSYS):   # no process_vm_* (seccomp)
        if not host_range_mapped(addr, size):
            return False
        ctypes.memmove(addr, buf, size)
        return True
    return n == size


def host_range_mapped(addr: int, size: int) -> bool:
    """Whether every page of [addr, addr+size) is mapped in this process (mincore)."""
    if size <= 0:
        return True
    start = addr & ~(PAGE_SIZE - 1)
    end = page_align(addr + size)
    if end > TASK_SIZE_MAX + PAGE_SIZE or start <= 0:
        return False
    chunk = 1 << 30
    vec = ctypes.create_string_buffer(min(end - start, chunk) // PAGE_SIZE)
    while start < end:
        n = min(end - start, chunk)
        if _libc.mincore(ctypes.c_void_p(start), n, vec) != 0:
            return False
        start += n
    return True


def access_ok(addr: int, size: int) -> bool:
    """x86-64 access_ok(): a range check only (the pages need not be mapped)."""
    return addr + size <= TASK_SIZE_MAX and addr + size >= addr


# -- backing pages ---------------------------------------------------------------------------------

class Backing:
    """The pages of a BO: a memfd (shareable with the process by mmap) or host memory.

    `array` is a uint8 view of the `size` bytes.
    """

    def __init__(self, size: int, *, name: str = "bo", host_addr: int | None = None,
                 fill: int = 0) -> None:
        self.size = size
        self.host_addr = host_addr
        self.fd: int | None = None
        self._mm: mmap.mmap | None = None
        self.closed = False
        if host_addr is not None:
            from ..kfd.abi import ffi

            buf = ffi.buffer(ffi.cast("char *", host_addr), size)
            self.array = np.frombuffer(buf, dtype=np.uint8)
            return
        fd = os.memfd_create(f"sim-{name}", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self._mm = mm
        self.array = np.frombuffer(mm, dtype=np.uint8)
        if fill:
            self.array[:size] = fill

    @property
    def is_host(self) -> bool:
        return self.host_addr is not None

    def close(self) -> None:
        """Release our fd and view. Views still held elsewhere keep the pages alive."""
        if self.closed:
            return
        self.closed = True
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        mm, self._mm = self._mm, None
        self.array = np.zeros(0, dtype=np.uint8)
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                pass  # a GPU thread still holds a view: unmapped when the last one goes


# -- buffer objects and mappings -------------------------------------------------------------------

class BufferObject:
    """A KFD memory object (struct kgd_mem): one allocation on one device."""

    def __init__(self, *, process, device: SimDevice, idr: int, size: int, bo_size: int,
                 va: int, flags: int, kind: str, backing: Backing, aql: bool = False,
                 user_addr: int = 0, kernel: bool = False) -> None:
        self.process = process
        self.device = device
        self.gpu_id = device.gpu_id
        self.idr = idr
        self.handle = (device.gpu_id << 32) | idr   # MAKE_HANDLE (kfd_priv.h)
        self.size = size              # as requested
        self.bo_size = bo_size        # allocated (page aligned; half for AQL_QUEUE_MEM)
        self.va = va
        self.flags = flags
        self.kind = kind              # "vram" | "gtt" | "userptr" | "doorbell" | "mmio"
        self.backing = backing
        self.aql = aql
        self.user_addr = user_addr
        self.kernel = kernel          # allocated by the driver itself (IB, CWSR pages)
        self.drm_offset = 0
        self.vram_charge = 0          # bytes counted in the device's vram_used
        self.sys_charge = 0           # bytes counted in the machine's system memory use
        self.ttm_charge = 0           # bytes counted in the machine's TTM (GTT) use
        # gpu_id -> the BO's mapped attachments in that device's VM (two for AQL_QUEUE_MEM)
        self.mappings: dict[int, tuple[Mapping, ...]] = {}
        self.freed = False
        self.on_gpu_write: Callable[[int, int], None] | None = None

    @property
    def attachment_vas(self) -> tuple[int, ...]:
        """GPU VAs of the BO's attachments: an AQL_QUEUE_MEM BO is mapped twice, back to back,
        over the same pages (kfd_mem_attach, the AQL ring wrap-around workaround)."""
        return (self.va, self.va + self.bo_size) if self.aql else (self.va,)

    @property
    def writable(self) -> bool:
        return bool(self.flags & F_WRITABLE)

    @property
    def executable(self) -> bool:
        return bool(self.flags & F_EXECUTABLE)

    def __repr__(self) -> str:
        return (f"<BO {self.kind} handle={self.handle:#x} va={self.va:#x} size={self.size:#x} "
                f"mapped={sorted(self.mappings)}>")


class Mapping:
    """One attachment of a BO in one device's VM (an amdgpu_bo_va mapping): the BO's pages at
    GPU VA [start, start + bo_size)."""

    __slots__ = ("_windows", "address", "array", "bo", "end", "executable", "fast_write", "host",
                 "mv", "queue_refcount", "start", "start64", "writable")

    def __init__(self, bo: BufferObject, start: int | None = None) -> None:
        self.bo = bo
        self.start = bo.va if start is None else start
        self.start64 = np.int64(self.start)
        self.end = self.start + bo.bo_size
        self.writable = bo.writable
        self.executable = bo.executable
        self.host = bo.backing.is_host
        self.fast_write = self.writable and not self.host   # GPUVM's lock-free store path
        self.array = bo.backing.array[:bo.bo_size]
        self.address = self.array.ctypes.data   # host address of the first byte (atomics)
        self.mv = memoryview(self.array)   # small accesses: a memoryview copy is ~10x numpy's
        self.queue_refcount = 0       # amdgpu_bo_va.queue_refcount (kfd_queue_buffer_get)
        self._windows: dict[int, np.ndarray] = {}

    def window(self, nbytes: int) -> np.ndarray:
        """(span - nbytes + 1, nbytes) overlapping rows of the memory: row i = bytes i..i+n-1,
        so one fancy index gathers or scatters every lane."""
        w = self._windows.get(nbytes)
        if w is None:
            a = self.array
            w = np.lib.stride_tricks.as_strided(a, shape=(max(a.shape[0] - nbytes + 1, 0),
                                                          nbytes), strides=(1, 1))
            self._windows[nbytes] = w
        return w

    def __repr__(self) -> str:
        perm = ("w" if self.writable else "-") + ("x" if self.executable else "-")
        return f"<Mapping {self.start:#x}-{self.end:#x} {perm} {self.bo.kind}>"


class _Table:
    __slots__ = ("ends", "maps", "np_ends", "np_starts", "starts")

    def __init__(self, maps: list[Mapping]) -> None:
        self.maps = maps
        self.starts = [m.start for m in maps]
        self.ends = [m.end for m in maps]
        self.np_starts = np.array(self.starts, dtype=np.uint64)
        self.np_ends = np.array(self.ends, dtype=np.uint64)


_EMPTY = _Table([])
_U8 = np.uint8


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class GPUVM:
    """One process's GPU virtual address space on one device (its page tables).

    Every access is checked against the mappings; see the module docstring. After a GPU write
    the machine is told (`machine.memory_written()`), so engines waiting on memory re-check.
    Writers that go through `view(..., write=True)` call `notify_write()` when done.
    """

    def __init__(self, process, device: SimDevice, on_write: Callable[[], None]) -> None:
        self.process = process
        self.device = device
        self.gpu_id = device.gpu_id
        self._table = _EMPTY
        self._last: Mapping | None = None
        self._prev: Mapping | None = None       # the mapping used before _last
        self._on_write = on_write
        # notify_write is the machine's hook itself: one call less per CP / shader store
        self.notify_write = on_write

    # -- page-table updates (driver side, under the process lock) ---------------------------
    def insert(self, m: Mapping) -> None:
        """Add a mapping; raises DriverError(EINVAL) on overlap (amdgpu_vm_bo_map)."""
        t = self._table
        i = bisect.bisect_left(t.starts, m.start)
        if i > 0 and t.ends[i - 1] > m.start:
            raise DriverError(E.EINVAL, f"VA {m.start:#x}-{m.end:#x} overlaps {t.maps[i - 1]}")
        if i < len(t.maps) and t.starts[i] < m.end:
            raise DriverError(E.EINVAL, f"VA {m.start:#x}-{m.end:#x} overlaps {t.maps[i]}")
        maps = list(t.maps)
        maps.insert(i, m)
        self._table = _Table(maps)

    def remove(self, m: Mapping) -> None:
        maps = [x for x in self._table.maps if x is not m]
        self._table = _Table(maps)
        self._last = self._prev = None

    def mappings(self) -> list[Mapping]:
        return list(self._table.maps)

    def lookup(self, addr: int) -> Mapping | None:
        """The mapping holding byte `addr`, or None."""
        m = self._last
        if m is not None and m.start <= addr < m.end:
            return m
        p = self._prev
        if p is not None and p.start <= addr < p.end:
            # two mappings used in turn (a descriptor and a signal, a ring and a buffer)
            self._prev, self._last = m, p
            return p
        t = self._table
        i = bisect.bisect_right(t.starts, addr) - 1
        if i >= 0 and addr < t.ends[i]:
            found = t.maps[i]
            self._prev, self._last = m, found
            return found
        return None

    def notify_write(self) -> None:
        """Tell waiting engines that GPU memory changed (after writes through a view)."""
        self._on_write()

    # -- checked access ---------------------------------------------------------------------
    # The per-packet paths (read, write, read_u32/u64, write_u32/u64) first try the mapping of
    # the previous access (`_last`) inline: one bounds test and a memoryview copy or struct
    # unpack. Everything else (other mappings, several mappings, userptr pages that must be
    # checked for presence, faults) goes through the checked slow path.
    def _fault(self, addr: int, write: bool, reason: str, size: int) -> VMFault:
        return VMFault(addr, write, reason, gpu_id=self.gpu_id, size=size)

    def _span(self, addr: int, size: int, write: bool) -> Mapping:
        """The single mapping holding [addr, addr+size) with the right permission."""
        m = self.lookup(addr)
        if m is None:
            raise self._fault(addr, write, "not_present", size)
        if addr + size > m.end:
            raise _Spans
        if write and not m.writable:
            raise self._fault(addr, write, "read_only", size)
        if m.host and not host_range_mapped(addr - m.start + m.bo.user_addr, size):
            raise self._fault(addr, write, "not_present", size)
        return m

    def _pieces(self, addr: int, size: int, write: bool) -> list[tuple[Mapping, int, int]]:
        """Split [addr, addr+size) over adjacent mappings: (mapping, offset, length)."""
        out = []
        cur, end = addr, addr + size
        while cur < end:
            m = self.lookup(cur)
            if m is None:
                raise self._fault(cur, write, "not_present", size)
            if write and not m.writable:
                raise self._fault(cur, write, "read_only", size)
            n = min(end, m.end) - cur
            if m.host and not host_range_mapped(cur - m.start + m.bo.user_addr, n):
                raise self._fault(cur, write, "not_present", size)
            out.append((m, cur - m.start, n))
            cur += n
        return out

    def read(self, addr: int, size: int) -> bytes:
        """Read `size` bytes at GPU VA `addr`."""
        m = self._last
        if m is not None and m.start <= addr and addr + size <= m.end and not m.host:
            o = addr - m.start
            return m.mv[o:o + size].tobytes()
        m = self._recent(addr, size, False)
        if m is not None:
            o = addr - m.start
            return m.mv[o:o + size].tobytes()
        return self._read(addr, size)

    def _recent(self, addr: int, size: int, write: bool) -> Mapping | None:
        """The mapping used before the last one, made the last, when it holds [addr,
        addr+size) for a lock-free access (two mappings used in turn: a ring and a signal,
        code and a buffer); None otherwise."""
        p = self._prev
        if p is not None and p.start <= addr and addr + size <= p.end and (
                p.fast_write if write else not p.host):
            self._prev, self._last = self._last, p
            return p
        return None

    def _read(self, addr: int, size: int) -> bytes:
        if size <= 0:
            return b""
        try:
            m = self._span(addr, size, False)
        except _Spans:
            return b"".join(m.mv[o:o + n].tobytes() for m, o, n in
                            self._pieces(addr, size, False))
        o = addr - m.start
        return m.mv[o:o + size].tobytes()

    def write(self, addr: int, data) -> None:
        """Write bytes (bytes, memoryview or numpy array) at GPU VA `addr`."""
        if type(data) is bytes:
            m = self._last
            if m is None or not m.fast_write or not m.start <= addr \
                    or addr + len(data) > m.end:
                m = self._recent(addr, len(data), True)
            if m is not None:
                o = addr - m.start
                m.mv[o:o + len(data)] = data
                self._written(m, o, len(data))
                return
        self._write(addr, data)

    def _write(self, addr: int, data) -> None:
        src = np.frombuffer(data, dtype=_U8) if not isinstance(data, np.ndarray) \
            else data.reshape(-1).view(_U8)
        size = src.size
        if size == 0:
            return
        try:
            m = self._span(addr, size, True)
        except _Spans:
            touched = self._pieces(addr, size, True)
            pos = 0
            for m, o, n in touched:
                m.array[o:o + n] = src[pos:pos + n]
                pos += n
            for m, o, n in touched:
                self._written(m, o, n)
            return
        o = addr - m.start
        m.array[o:o + size] = src
        self._written(m, o, size)

    def _written(self, m: Mapping, offset: int, size: int) -> None:
        """After a GPU store: the BO's own hook (doorbell pages), then wake waiting engines."""
        hook = m.bo.on_gpu_write
        if hook is not None:
            hook(offset, size)
        self._on_write()

    def read_u32(self, addr: int) -> int:
        m = self._last
        if m is not None and m.start <= addr and addr + 4 <= m.end and not m.host:
            return _U32.unpack_from(m.mv, addr - m.start)[0]
        m = self._recent(addr, 4, False)
        if m is not None:
            return _U32.unpack_from(m.mv, addr - m.start)[0]
        return int.from_bytes(self._read(addr, 4), "little")

    def read_u64(self, addr: int) -> int:
        m = self._last
        if m is not None and m.start <= addr and addr + 8 <= m.end and not m.host:
            return _U64.unpack_from(m.mv, addr - m.start)[0]
        m = self._recent(addr, 8, False)
        if m is not None:
            return _U64.unpack_from(m.mv, addr - m.start)[0]
        return int.from_bytes(self._read(addr, 8), "little")

    def write_u32(self, addr: int, value: int) -> None:
        value &= 0xFFFF_FFFF
        m = self._last
        if m is None or not m.fast_write or not m.start <= addr or addr + 4 > m.end:
            m = self._recent(addr, 4, True)
            if m is None:
                self._write(addr, value.to_bytes(4, "little"))
                return
        o = addr - m.start
        _U32.pack_into(m.mv, o, value)
        self._written(m, o, 4)

    def write_u64(self, addr: int, value: int) -> None:
        value &= 0xFFFF_FFFF_FFFF_FFFF
        m = self._last
        if m is None or not m.fast_write or not m.start <= addr or addr + 8 > m.end:
            m = self._recent(addr, 8, True)
            if m is None:
                self._write(addr, value.to_bytes(8, "little"))
                return
        o = addr - m.start
        _U64.pack_into(m.mv, o, value)
        self._written(m, o, 8)

    def atomic(self, addr: int, op: str, src: int, cmp: int = 0, size: int = 4) -> int:
        """An L2 atomic: returns the old value (unsigned; raw bits for the float ops).

        Ops: add sub and or xor swap cmpswap (src replaces when old == cmp) umin umax smin smax
        (min/max = signed) inc dec (wrap at src, as the ISA's *_INC/*_DEC) fadd fmin fmax
        (IEEE minNum/maxNum: a NaN operand loses).
        """
        if size not in (4, 8):
            raise ValueError(f"atomic size must be 4 or 8, not {size}")
        mask = (1 << (size * 8)) - 1
        m = self._last
        if m is None or not m.fast_write or not m.start <= addr or addr + size > m.end:
            m = self._recent(addr, size, True) or self._span_checked(addr, size, True)
        o = addr - m.start
        host_addr = m.address + o
        if op == "add" or op == "sub":
            # one locked add in C (a completion signal's decrement is one per dispatch)
            s = src & mask if op == "add" else -src & mask
            old = (_syscall.fetch_add64 if size == 8 else _syscall.fetch_add32)(host_addr, s)
            if s:
                self._written(m, o, size)
            return old
        cas = _syscall.cas64 if size == 8 else _syscall.cas32
        load = _syscall.load64 if size == 8 else _syscall.load32
        s = src & mask
        # A compare-and-swap loop on the real backing memory: atomic against other GPU engines
        # and against CPU atomics on the same address (KFDTest "Atomics" races the two).
        old = load(host_addr)
        while True:
            new = combine_scalar(op, old, s, cmp & mask, size)
            if new == old:
                return old            # nothing changes: a failed cmpswap writes nothing
            found = cas(host_addr, old, new)
            if found == old:
                break
            old = found
        self._written(m, o, size)
        return old

    def _span_checked(self, addr: int, size: int, write: bool) -> Mapping:
        try:
            return self._span(addr, size, write)
        except _Spans:
            m = self.lookup(addr)
            raise self._fault(m.end if m else addr, write, "not_present", size) from None

    def view(self, addr: int, size: int, write: bool) -> np.ndarray:
        """A uint8 numpy view of [addr, addr+size) inside one mapping (aliases the memory).

        A range over several BOs gives a read-only copy when `write` is False and raises
        ValueError when True (use `write()` for that). Call `notify_write()` after writing.
        """
        try:
            m = self._span(addr, size, write)
        except _Spans:
            if write:
                raise ValueError(f"GPUVM.view({addr:#x}, {size}): range spans several buffer "
                                 "objects; use GPUVM.write for such a range") from None
            return np.frombuffer(self._read(addr, size), dtype=_U8)
        o = addr - m.start
        v = m.array[o:o + size]
        if not write:
            v = v.view()
            v.flags.writeable = False
        return v

    def check_exec(self, addr: int, size: int) -> None:
        """Instruction fetch of [addr, addr+size): present and executable, else VMFault at
        the first byte that is not."""
        m = self.lookup(addr)
        if m is None:
            raise self._fault(addr, False, "not_present", size)
        if addr + size <= m.end:
            if not m.executable:
                raise self._fault(addr, False, "no_execute", size)
            return
        for mm, o, _n in self._pieces(addr, size, False):
            if not mm.executable:
                raise self._fault(mm.start + o, False, "no_execute", size)

    def gather(self, addrs: np.ndarray, nbytes: int, mask: np.ndarray | None = None
               ) -> np.ndarray:
        """Per-lane loads: (n, nbytes) uint8; inactive lanes read as zero."""
        addrs = np.asarray(addrs, dtype=np.uint64)
        n = addrs.shape[0]
        act = addrs if mask is None else addrs[mask]
        if act.size == 0:
            return np.zeros((n, nbytes), dtype=_U8)
        m = self._one_mapping(act, nbytes, False)
        if m is not None:          # the common case: one min/max check, one fancy index
            off = addrs.view(np.int64) - m.start64
            if mask is None:
                return m.window(nbytes)[off]
            out = m.window(nbytes)[np.where(mask, off, 0)]
            np.multiply(out, mask[:, None], out=out)
            return out
        out = np.zeros((n, nbytes), dtype=_U8)
        sel = np.arange(n) if mask is None else np.flatnonzero(mask)
        groups, straddling = self._by_mapping(sel, act, nbytes, False)
        for m, rows, off in groups:
            out[rows] = m.window(nbytes)[off]
        for row, addr in straddling:
            out[row] = np.frombuffer(self._read(addr, nbytes), dtype=_U8)
        return out

    def scatter(self, addrs: np.ndarray, data: np.ndarray, mask: np.ndarray | None = None
                ) -> None:
        """Per-lane stores of `data` (n, nbytes) uint8; inactive lanes store nothing.
        Lanes storing to the same address: the highest lane wins."""
        addrs = np.asarray(addrs, dtype=np.uint64)
        data = np.asarray(data).view(_U8).reshape(addrs.shape[0], -1)
        nbytes = data.shape[1]
        if mask is None:
            act, dact = addrs, data
        else:
            act, dact = addrs[mask], data[mask]
        if act.size == 0:
            return
        m = self._one_mapping(act, nbytes, True)
        if m is not None:
            off = act.view(np.int64) - m.start64
            m.window(nbytes)[off] = dact
            lo = int(off.min())
            self._written(m, lo, int(off.max()) - lo + nbytes)
            return
        sel = np.arange(addrs.shape[0]) if mask is None else np.flatnonzero(mask)
        groups, straddling = self._by_mapping(sel, act, nbytes, True)
        if straddling:             # rare: keep lane order exactly, one store per lane
            for row in sel:
                self._write(int(addrs[row]), data[row])
            return
        for m, rows, off in groups:
            m.window(nbytes)[off] = data[rows]
        for m, _rows, off in groups:
            lo = int(off.min())
            self._written(m, lo, int(off.max()) - lo + nbytes)

    def _one_mapping(self, act: np.ndarray, nbytes: int, write: bool) -> Mapping | None:
        """The common case: every active lane inside one mapping (one min/max check)."""
        lo = int(act.min())
        hi = int(act.max()) + nbytes
        m = self.lookup(lo)
        if m is None or hi > m.end:
            return None
        if write and not m.writable:
            raise self._fault(int(act[0]), True, "read_only", nbytes)
        if m.host and not host_range_mapped(lo - m.start + m.bo.user_addr, hi - lo):
            return None
        return m

    def _by_mapping(self, sel: np.ndarray, act: np.ndarray, nbytes: int, write: bool):
        """Group lanes by mapping. Returns (groups, straddling): groups of (mapping, rows,
        offsets); (row, addr) of lanes whose access runs on into the next, adjacent mapping.
        Faults at the first (lowest) lane that is not covered."""
        t = self._table
        idx = np.searchsorted(t.np_starts, act, side="right").astype(np.intp) - 1
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        if t.maps:
            ok &= (act + np.uint64(nbytes)) <= t.np_ends[safe]
        else:
            ok[:] = False
        straddling = []
        for lane in np.flatnonzero(~ok):
            addr = int(act[lane])
            self._pieces(addr, nbytes, write)       # raises the lane's fault if not covered
            straddling.append((int(sel[lane]), addr))
        groups = []
        for k in np.unique(safe[ok]):
            m = t.maps[int(k)]
            lanes = ok & (safe == k)
            rows = sel[lanes]
            a = act[lanes]
            if write and not m.writable:
                raise self._fault(int(a[0]), True, "read_only", nbytes)
            if m.host and not host_range_mapped(int(a.min()) - m.start + m.bo.user_addr,
                                                int(a.max()) - int(a.min()) + nbytes):
                raise self._fault(int(a[0]), write, "not_present", nbytes)
            groups.append((m, rows, (a - np.uint64(m.start)).astype(np.intp)))
        return groups, straddling

    def __repr__(self) -> str:
        return f"<GPUVM gpu {self.gpu_id:#x}: {len(self._table.maps)} mappings>"


class _Spans(Exception):
    """Internal: the access crosses the end of its first mapping."""


# -- ALLOC / FREE / MAP / UNMAP ---------------------------------------------------------------------

class MemoryManager:
    """The process's memory objects (pdd->alloc_idr on each device) and the ioctl logic."""

    def __init__(self, process) -> None:
        self.process = process
        self.machine = process.machine

    # handles ---------------------------------------------------------------------------------
    @staticmethod
    def _new_idr(pdd) -> int:
        """idr_alloc(&pdd->alloc_idr, mem, 0, 0): the lowest free id from 0."""
        i = 0
        while i in pdd.bos:
            i += 1
        return i

    def translate(self, pdd, handle: int) -> BufferObject | None:
        """kfd_process_device_translate_handle: the BO of the handle's IDR index, or None."""
        return pdd.bos.get(handle & 0xFFFF_FFFF)

    def all_bos(self) -> list[BufferObject]:
        return [bo for pdd in self.process.pdds for bo in pdd.bos.values()]

    # ALLOC_MEMORY_OF_GPU ---------------------------------------------------------------------
    def alloc(self, *, gpu_id: int, va: int, size: int, flags: int, mmap_offset: int,
              kernel: bool = False) -> BufferObject:
        """kfd_ioctl_alloc_memory_of_gpu + amdgpu_amdkfd_gpuvm_alloc_memory_of_gpu."""
        p = self.process
        if size == 0:                                        # §2.3 row 1 (CHR)
            raise DriverError(E.EINVAL, "size is 0")
        svm = p.svm_overlaps
        if not (va == 0 and flags & F_VRAM) and svm(va, size):   # row 2 (CHR, SVM)
            raise DriverError(E.EADDRINUSE, f"[{va:#x}, +{size:#x}) overlaps an SVM range")
        if flags & F_USERPTR and svm(mmap_offset, size):     # row 3 (CHR, SVM)
            raise DriverError(E.EADDRINUSE, "userptr range overlaps an SVM range")
        pdd = p.pdd_by_id(gpu_id)
        if pdd is None:                                      # row 4 (CHR)
            raise DriverError(E.EINVAL, f"gpu_id {gpu_id:#x} is not a device of the process")
        dev = pdd.device
        if flags & F_PUBLIC and flags & F_VRAM and not dev.large_bar:   # row 5 (CHR)
            raise DriverError(E.EINVAL, "host-visible VRAM on a small-BAR device")
        p.bind(pdd, E.ENODEV)                                # row 6 (kfd_bind_process_to_device)
        if flags & F_DOORBELL:                               # row 7 (CHR; DBL)
            if size != dev.doorbell_slice_size:
                raise DriverError(E.EINVAL, f"doorbell size {size:#x} != slice "
                                            f"{dev.doorbell_slice_size:#x}")
            pdd.ensure_doorbells()
        elif flags & F_MMIO_REMAP and size != PAGE_SIZE:     # row 8 (CHR)
            raise DriverError(E.EINVAL, f"MMIO_REMAP size {size:#x} != PAGE_SIZE")
        # row 9: domain, first match wins (amdgpu_amdkfd_gpuvm_alloc_memory_of_gpu)
        aql = bool(flags & F_AQL_QUEUE_MEM)
        if flags & F_VRAM:
            kind = "vram"
        elif flags & F_GTT:
            kind = "gtt"
        elif flags & F_USERPTR:
            kind = "userptr"
            if not mmap_offset:                              # "!offset || !*offset" -> EINVAL
                raise DriverError(E.EINVAL, "USERPTR needs the host address in mmap_offset")
        elif flags & (F_DOORBELL | F_MMIO_REMAP):
            kind = "doorbell" if flags & F_DOORBELL else "mmio"
            if size > 0xFFFF_FFFF:                           # SG BO size > UINT_MAX
                raise DriverError(E.EINVAL, "SG BO larger than 4 GiB")
        else:
            raise DriverError(E.EINVAL, "no domain flag (VRAM, GTT, USERPTR, DOORBELL, "
                                        "MMIO_REMAP) set")
        real = size >> 1 if aql else size                    # row 10: AQL halves the BO
        bo_size = page_align(real)
        if bo_size == 0:
            # GAP: AQL_QUEUE_MEM of 1 byte asks amdgpu_bo_create for 0 bytes; what that returns
            # was not read. The simulator refuses the empty BO with EINVAL.
            raise DriverError(E.EINVAL, f"AQL_QUEUE_MEM BO of {size} byte(s) is empty once halved")
        # row 11: accounting. amdgpu_amdkfd_reserve_mem_limit tests the flags in its own order,
        # GTT before VRAM, so a VRAM|GTT BO lives in VRAM but is charged as GTT (system + TTM).
        vram_charge = sys_charge = ttm_charge = 0
        if flags & F_GTT:
            sys_charge = ttm_charge = bo_size
        elif flags & F_VRAM:
            vram_charge = bo_size
        elif flags & F_USERPTR:
            sys_charge = bo_size
        if kind == "userptr":
            # GAP (facts §7): the errno of init_user_pages for an unmapped host range was not
            # read; amdgpu_ttm_tt_get_user_pages fails with EFAULT when no VMA covers it.
            # Unaligned host addresses are refused with EINVAL (simulator choice).
            if mmap_offset & (PAGE_SIZE - 1):
                raise DriverError(E.EINVAL, f"USERPTR address {mmap_offset:#x} not page aligned")
            if not host_range_mapped(mmap_offset, bo_size):
                raise DriverError(E.EFAULT, f"USERPTR range {mmap_offset:#x}+{bo_size:#x} is "
                                            "not mapped in the process")
        self.machine.reserve_memory(dev, vram_charge, sys_charge, ttm_charge)  # ENOMEM (row 11)
        try:
            backing = self._make_backing(pdd, kind, bo_size, mmap_offset)
        except OSError as exc:                               # row 12: BO creation failure
            self.machine.unreserve_memory(dev, vram_charge, sys_charge, ttm_charge)
            raise DriverError(E.ENOMEM, f"backing pages: {exc}") from None
        idr = self._new_idr(pdd)                             # row 13 cannot fail here
        bo = BufferObject(process=p, device=dev, idr=idr, size=size, bo_size=bo_size, va=va,
                          flags=flags, kind=kind, backing=backing, aql=aql,
                          user_addr=mmap_offset if kind == "userptr" else 0, kernel=kernel)
        bo.vram_charge, bo.sys_charge, bo.ttm_charge = vram_charge, sys_charge, ttm_charge
        if kind == "doorbell":
            bo.on_gpu_write = pdd.doorbell_written
        dev.register_drm_object(bo)          # the BO's DRM mmap offset on the render node
        pdd.bos[idr] = bo
        return bo

    @staticmethod
    def _make_backing(pdd, kind: str, bo_size: int, host: int) -> Backing:
        if kind == "userptr":
            return Backing(bo_size, host_addr=host)
        if kind == "doorbell":
            return pdd.doorbell_backing
        if kind == "mmio":
            return pdd.device.mmio_backing
        return Backing(bo_size, name=f"{kind}-{pdd.gpu_id:x}")

    # FREE_MEMORY_OF_GPU ----------------------------------------------------------------------
    def free(self, handle: int) -> None:
        """kfd_ioctl_free_memory_of_gpu (§2.4)."""
        p = self.process
        if p.events.signal_handle and p.events.signal_handle == handle:   # row 1 (CHR)
            raise DriverError(E.EPERM, "the event page cannot be freed")
        pdd = p.pdd_by_id(handle >> 32)
        if pdd is None:                                      # row 2
            raise DriverError(E.EINVAL, f"no device {handle >> 32:#x} for handle {handle:#x}")
        bo = self.translate(pdd, handle)
        if bo is None:                                       # row 3
            raise DriverError(E.EINVAL, f"unknown handle {handle:#x}")
        if bo.mappings:                                      # row 4 (GPUVM): handle kept
            raise DriverError(E.EBUSY, f"{bo} is still mapped")
        self.release(pdd, bo)                                # row 5

    def release(self, pdd, bo: BufferObject) -> None:
        """Drop a BO that has no GPU mapping left: handle, accounting, pages."""
        pdd.bos.pop(bo.idr, None)
        bo.freed = True
        bo.device.unregister_drm_object(bo)
        self.machine.unreserve_memory(bo.device, bo.vram_charge, bo.sys_charge, bo.ttm_charge)
        bo.vram_charge = bo.sys_charge = bo.ttm_charge = 0
        if bo.kind in ("vram", "gtt", "userptr"):
            bo.backing.close()

    # MAP / UNMAP ------------------------------------------------------------------------------
    def _lookup(self, handle: int, *, bind: bool) -> tuple[object, BufferObject]:
        p = self.process
        pdd = p.pdd_by_id(handle >> 32)
        if pdd is None:                                      # §2.5 row 4
            raise DriverError(E.EINVAL, f"no device {handle >> 32:#x} for handle {handle:#x}")
        if bind:
            p.bind(pdd, E.ENODEV)                            # row 5 (MAP only)
        bo = self.translate(pdd, handle)
        if bo is None:                                       # row 6: ENOMEM (CHR)
            raise DriverError(E.ENOMEM, f"unknown handle {handle:#x}")
        return pdd, bo

    def map(self, handle: int, device_ids: list[int], state: dict) -> None:
        """kfd_ioctl_map_memory_to_gpu loop from state['n_success'] (rows 4-8)."""
        p = self.process
        _pdd, bo = self._lookup(handle, bind=True)
        for i in range(state["n_success"], len(device_ids)):
            peer = p.pdd_by_id(device_ids[i])
            if peer is None:                                 # row 7: unknown peer
                raise DriverError(E.EINVAL, f"device_ids[{i}] = {device_ids[i]:#x} unknown")
            p.bind(peer, E.ENODEV)                           # peer VM not acquired
            self.map_one(bo, peer)
            state["n_success"] = i + 1

    def map_one(self, bo: BufferObject, peer) -> None:
        """amdgpu_amdkfd_gpuvm_map_memory_to_gpu for one VM (row 8): each attachment not yet
        mapped is mapped (amdgpu_vm_bo_map); already mapped ones are a silent success, and on
        a failure the attachments mapped before it stay mapped, as in the kernel's loop."""
        have = bo.mappings.get(peer.gpu_id, ())
        for va in bo.attachment_vas:
            if any(m.start == va for m in have):
                continue
            self._check_va(va, bo.bo_size)
            m = Mapping(bo, va)
            peer.vm.insert(m)                                # overlap -> EINVAL
            have = (*have, m)
            bo.mappings[peer.gpu_id] = have

    @staticmethod
    def _check_va(va: int, size: int) -> None:
        """amdgpu_vm_verify_parameters: alignment, overflow, VM size."""
        if va & (PAGE_SIZE - 1) or size & (PAGE_SIZE - 1) or size == 0:
            raise DriverError(E.EINVAL, f"VA {va:#x} / size {size:#x} not page aligned")
        if va + size <= va or va + size > (1 << 64):
            raise DriverError(E.EINVAL, f"VA {va:#x} + {size:#x} overflows")
        if (va + size - 1) >> 12 >= MAX_PFN:
            raise DriverError(E.EINVAL, f"VA {va:#x}+{size:#x} beyond the {GPU_VA_BITS}-bit VM")

    def unmap(self, handle: int, device_ids: list[int], state: dict) -> None:
        """kfd_ioctl_unmap_memory_from_gpu (rows 4, 6, 7; no bind)."""
        p = self.process
        _pdd, bo = self._lookup(handle, bind=False)
        for i in range(state["n_success"], len(device_ids)):
            peer = p.pdd_by_id(device_ids[i])
            if peer is None:
                raise DriverError(E.EINVAL, f"device_ids[{i}] = {device_ids[i]:#x} unknown")
            self.unmap_one(bo, peer)
            state["n_success"] = i + 1

    @staticmethod
    def unmap_one(bo: BufferObject, peer) -> None:
        """amdgpu_amdkfd_gpuvm_unmap_memory_from_gpu for one VM: every mapped attachment in
        turn; one that a user queue still uses stops the loop with EBUSY."""
        ms = bo.mappings.get(peer.gpu_id)
        if not ms:                    # no VM reserved: "BO wasn't actually mapped" -> EINVAL
            raise DriverError(E.EINVAL, f"{bo} is not mapped on gpu {peer.gpu_id:#x}")
        left = list(ms)
        for m in ms:
            if m.queue_refcount:      # unmap_bo_from_gpuvm: a queue uses it -> EBUSY
                bo.mappings[peer.gpu_id] = tuple(left)
                raise DriverError(E.EBUSY, f"{m} is in use by a user queue")
            peer.vm.remove(m)
            left.remove(m)
        del bo.mappings[peer.gpu_id]

    # teardown ----------------------------------------------------------------------------------
    def teardown(self) -> None:
        """kfd_process_free_outstanding_kfd_bos: unmap and free everything."""
        for pdd in self.process.pdds:
            for bo in list(pdd.bos.values()):
                for gid in list(bo.mappings):
                    ms = bo.mappings.pop(gid)
                    peer = self.process.pdd_by_id(gid)
                    if peer is not None:
                        for m in ms:
                            peer.vm.remove(m)
                self.release(pdd, bo)
