"""Suite-local helpers: waiting on memory, errno capture, and the published facts the tests
compare against (raw packet encodings, driver constants), kept apart from the code under test.

Every constant here comes from a primary source named beside it (kernel headers, the HSA
headers, LLVM AMDGPUUsage), as gathered in the project's fact sheets (facts-kfd.md,
facts-pm4.md, facts-sdma-aql-codeobj.md); none is read from the runtime or the simulator.
"""

from __future__ import annotations

import errno
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from pytest_amdgpu.kfd.abi import lib
from pytest_amdgpu.kfd.errors import KFDError

# --- errno values the driver returns (facts-kfd.md §2) -------------------------------------
EINVAL = errno.EINVAL
ENOMEM = errno.ENOMEM
EBUSY = errno.EBUSY
EFAULT = errno.EFAULT
EPERM = errno.EPERM
ENOSPC = errno.ENOSPC
ENOTTY = errno.ENOTTY
ENOTSUPP = 524              # kernel-internal ENOTSUPP (not EOPNOTSUPP), facts-kfd.md §2.6 row 8

# --- kfd_ioctl.h constants, through the C compiler's view of the header ---------------------
ALLOC_VRAM = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_VRAM)
ALLOC_GTT = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_GTT)
ALLOC_USERPTR = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR)
ALLOC_DOORBELL = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL)
ALLOC_MMIO_REMAP = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP)
ALLOC_WRITABLE = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE) & 0xFFFFFFFF
ALLOC_PUBLIC = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC)
QUEUE_TYPE_COMPUTE = int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE)
QUEUE_TYPE_SDMA = int(lib.KFD_IOC_QUEUE_TYPE_SDMA)
QUEUE_TYPE_COMPUTE_AQL = int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL)
EVENT_SIGNAL = int(lib.KFD_IOC_EVENT_SIGNAL)
EVENT_MEMORY = int(lib.KFD_IOC_EVENT_MEMORY)
EVENT_HW_EXCEPTION = int(lib.KFD_IOC_EVENT_HW_EXCEPTION)
EVENT_SLOTS = int(lib.KFD_SIGNAL_EVENT_LIMIT)           # 4096
FIRST_NONSIGNAL_EVENT_ID = 0x40000000                   # (INT_MAX >> 1) + 1, kfd_events.h
UNSIGNALED_SLOT = 0xFFFFFFFFFFFFFFFF                    # facts-kfd.md §4 I1
MMAP_TYPE_DOORBELL = 3                                  # offset bits [63:62], §3 M1
DOORBELL_SLICE = 8192                                   # §3 M4: 8 KiB on SOC15 / MES

# --- per-target facts (facts-kfd.md §6.3, LLVM AMDGPUUsage processor table) ------------------
GFX_TARGET_VERSION = {"gfx90a": 90010, "gfx942": 90402, "gfx1100": 110000}
WAVE_SIZE = {"gfx90a": 64, "gfx942": 64, "gfx1100": 32}
# SDMA COPY_LINEAR per-packet byte limits: 22-bit count on SDMA 4.x, 30-bit on 6.0
# (facts-sdma-aql-codeobj.md §1.4)
SDMA_COUNT_BITS = {"gfx90a": 22, "gfx942": 22, "gfx1100": 30}
# FENCE header MTYPE a producer sets for an uncached write: SDMA 6.0 has the field and the
# kernel's fences set 3 (UC, sdma_v6_0_ring_emit_fence); SDMA 4.x FENCE has none (§1.4, §6.2)
SDMA_FENCE_MTYPE = {"gfx90a": 0, "gfx942": 0, "gfx1100": 3}
# ACQUIRE_MEM of the whole address range that invalidates the caches before CP / shader reads
# (kfdtest values, facts-pm4.md §6 G12): gfx9 COHER_CNTL form (6 body dwords), gfx10+ GCR_CNTL
# form (7 body dwords)
ACQUIRE_MEM_BODY = {
    "gfx90a": [0x28C00000, 0xFFFFFFFF, 0, 0, 0, 4],
    "gfx942": [0x28C00000, 0xFFFFFFFF, 0, 0, 0, 4],
    "gfx1100": [0, 0xFFFFFFFF, 0, 0, 0, 4, 0x4381],
}

# --- PM4 type-3 encodings (facts-pm4.md §1, §2, §3) --------------------------------------------
PM4_NOP = 0x10
PM4_WRITE_DATA = 0x37
PM4_WAIT_REG_MEM = 0x3C
PM4_INDIRECT_BUFFER = 0x3F
PM4_COPY_DATA = 0x40
PM4_EVENT_WRITE = 0x46
PM4_RELEASE_MEM = 0x49
PM4_DMA_DATA = 0x50
PM4_ACQUIRE_MEM = 0x58
PM4_NOP_1DW = 0xFFFF1000
CACHE_FLUSH_AND_INV_TS_EVENT = 0x14
CS_PARTIAL_FLUSH = 0x07


def pm4_header(opcode: int, body_dwords: int) -> int:
    """Type-3 header: COUNT = body dwords - 1 (facts-pm4.md §1.1)."""
    return 0xC0000000 | ((body_dwords - 1) & 0x3FFF) << 16 | (opcode & 0xFF) << 8


def raw_write_data(addr: int, values: Sequence[int], *, one_addr: bool = False) -> list[int]:
    """WRITE_DATA, DST_SEL 5 (memory), WR_CONFIRM (facts-pm4.md §3.1)."""
    dw1 = 5 << 8 | 1 << 20 | (1 << 16 if one_addr else 0)
    return [pm4_header(PM4_WRITE_DATA, 3 + len(values)), dw1, addr & 0xFFFFFFFF, addr >> 32,
            *[v & 0xFFFFFFFF for v in values]]


def raw_wait_reg_mem(addr: int, reference: int, function: int, mask: int = 0xFFFFFFFF
                     ) -> list[int]:
    """WAIT_REG_MEM on memory (MEM_SPACE 1), poll interval 4 (facts-pm4.md §3.2)."""
    return [pm4_header(PM4_WAIT_REG_MEM, 6), (function & 7) | 1 << 4, addr & 0xFFFFFFFF,
            addr >> 32, reference & 0xFFFFFFFF, mask & 0xFFFFFFFF, 4]


def raw_release_mem(addr: int, data: int, data_sel: int, *, int_sel: int = 0,
                    ctxid: int = 0) -> list[int]:
    """RELEASE_MEM at end of pipe, CACHE_FLUSH_AND_INV_TS_EVENT index 5, no cache action bits
    (facts-pm4.md §3.3)."""
    dw1 = CACHE_FLUSH_AND_INV_TS_EVENT | 5 << 8
    dw2 = (int_sel & 7) << 24 | (data_sel & 7) << 29
    return [pm4_header(PM4_RELEASE_MEM, 7), dw1, dw2, addr & 0xFFFFFFFF, addr >> 32,
            data & 0xFFFFFFFF, (data >> 32) & 0xFFFFFFFF, ctxid & 0xFFFFFFFF]


def raw_indirect_buffer(addr: int, size_dw: int, *, chain: bool = False) -> list[int]:
    """INDIRECT_BUFFER with VALID (bit 23) set (facts-pm4.md §3.5)."""
    return [pm4_header(PM4_INDIRECT_BUFFER, 3), addr & 0xFFFFFFFC, addr >> 32,
            (size_dw & 0xFFFFF) | (1 << 20 if chain else 0) | 1 << 23]


# --- SDMA encodings (facts-sdma-aql-codeobj.md §1) ----------------------------------------------
SDMA_NOP = 0
SDMA_COPY = 1
SDMA_WRITE = 2
SDMA_FENCE = 5
SDMA_TRAP = 6
SDMA_POLL_REGMEM = 8
SDMA_ATOMIC = 10
SDMA_CONST_FILL = 11
SDMA_TIMESTAMP = 13
SDMA_ATOMIC_ADD64 = 47


def raw_sdma_copy_linear(src: int, dst: int, nbytes: int) -> list[int]:
    """COPY_LINEAR: count = bytes - 1 (§1.4, golden example §6.1)."""
    return [SDMA_COPY, nbytes - 1, 0, src & 0xFFFFFFFF, src >> 32, dst & 0xFFFFFFFF, dst >> 32]


def raw_sdma_fence(addr: int, value: int, mtype: int = 0) -> list[int]:
    """FENCE: one 32-bit value (§1.4; mtype only exists on SDMA 6.0)."""
    return [SDMA_FENCE | (mtype & 7) << 16, addr & 0xFFFFFFFF, addr >> 32, value & 0xFFFFFFFF]


def raw_sdma_trap(int_context: int) -> list[int]:
    """TRAP: raise an interrupt carrying INT_CONTEXT [27:0] in DW1 (§1.4)."""
    return [SDMA_TRAP, int_context & 0x0FFFFFFF]


def raw_sdma_write(addr: int, values: Sequence[int]) -> list[int]:
    """WRITE_LINEAR: count = dwords - 1 (§1.4)."""
    return [SDMA_WRITE, addr & 0xFFFFFFFF, addr >> 32, len(values) - 1,
            *[v & 0xFFFFFFFF for v in values]]


# --- AQL (HSA hsa.h, facts-sdma-aql-codeobj.md §2) -----------------------------------------------
AQL_TYPE_VENDOR = 0
AQL_TYPE_INVALID = 1
AQL_TYPE_KERNEL_DISPATCH = 2
AQL_TYPE_BARRIER_AND = 3
AQL_TYPE_AGENT_DISPATCH = 4
AQL_TYPE_BARRIER_OR = 5
AQL_BARRIER_BIT = 1 << 8
AQL_SYSTEM_SCOPES = 2 << 9 | 2 << 11
AMD_QUEUE_WRITE_DISPATCH_ID = 56
AMD_QUEUE_READ_DISPATCH_ID = 128
SIGNAL_VALUE_OFFSET = 8


def aql_header(ptype: int, *, barrier: bool = True) -> int:
    return ptype | (AQL_BARRIER_BIT if barrier else 0) | AQL_SYSTEM_SCOPES


def raw_dispatch_packet(*, kernel_object: int, kernarg: int, grid: Sequence[int],
                        block: Sequence[int], dims: int | None = None, group: int = 0,
                        private: int = 0, signal: int = 0, header: int | None = None) -> bytes:
    """A 64-byte kernel dispatch packet laid out from hsa.h (§2.2)."""
    g = list(grid) + [1] * (3 - len(grid))
    b = list(block) + [1] * (3 - len(block))
    d = len(grid) if dims is None else dims
    h = aql_header(AQL_TYPE_KERNEL_DISPATCH) if header is None else header
    return struct.pack("<HHHHHHIIIIIQQQQ", h, d, b[0], b[1], b[2], 0, g[0], g[1], g[2],
                       private, group, kernel_object, kernarg, 0, signal)


def raw_barrier_packet(ptype: int, deps: Sequence[int], signal: int = 0, *,
                       barrier: bool = True) -> bytes:
    """A barrier-AND / barrier-OR packet (§2.3): five dependency handles."""
    d = list(deps) + [0] * (5 - len(deps))
    return struct.pack("<HHI5QQQ", aql_header(ptype, barrier=barrier), 0, 0, *d, 0, signal)


# --- code object v5 hidden arguments (LLVM AMDGPUUsage, facts-sdma-aql-codeobj.md §5.1) --------
def hsa_hidden_args(grid: Sequence[int], block: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """What the hidden arguments must hold for a dispatch of `grid` work-items in work-groups of
    `block` (HSA rules: full groups, sizes, remainders of the partial group, dims)."""
    dims = len(grid)
    g = list(grid) + [1] * (3 - dims)
    b = list(block) + [1] * (3 - dims)
    return {"block_count": tuple(gi // bi for gi, bi in zip(g, b)),
            "group_size": tuple(b),
            "remainder": tuple(gi % bi for gi, bi in zip(g, b)),
            "global_offset": (0, 0, 0),
            "grid_dims": (dims,)}


# --- waiting and observing ----------------------------------------------------------------------
def wait_for(read: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float = 10.0,
             what: str = "the value") -> Any:
    """Poll `read()` until `done(value)`; AssertionError with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    sleep = 1e-4
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not reach the expected state within {timeout:g} s; "
                                 f"last value {value!r}")
        time.sleep(sleep)
        sleep = min(sleep * 2, 5e-3)


def stays(read: Callable[[], Any], expected: Any, *, seconds: float = 0.2,
          what: str = "the value") -> None:
    """Assert `read()` keeps returning `expected` for `seconds` (work that must not run)."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if isinstance(value, np.ndarray):
            same = np.array_equal(value, expected)
        else:
            same = value == expected
        assert same, f"{what} changed to {value!r} (expected it to stay {expected!r})"
        if time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def same_ring_position(read_pointer: int, write_pointer: int, ring_units: int) -> bool:
    """Whether a PM4 read pointer the CP wrote back has caught up with `write_pointer` (both
    in dwords). The CP's read pointer is 32-bit and wraps at the queue size even where the
    write pointer is 64-bit (kfdtest PM4Queue::Rptr / RptrWhenConsumed); a 64-bit count of
    dwords consumed is accepted too."""
    return (read_pointer <= write_pointer
            and read_pointer % ring_units == write_pointer % ring_units
            and (read_pointer == write_pointer or read_pointer < ring_units))


def needs_cpu_visible_vram(device: Any) -> None:
    """Skip unless the CPU can map the device's VRAM: on a small-BAR board the driver refuses
    VRAM with the PUBLIC flag (facts-kfd.md §2.3 row 5), so a test that reads or writes VRAM
    from the CPU cannot run there."""
    if not device.large_bar:
        pytest.skip(f"{device.describe()} is a small-BAR board (no FB_PUBLIC heap): its VRAM "
                    "cannot be CPU-mapped")


def kfd_errno(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Call a KFD wrapper; the errno it failed with, or 0 if it succeeded."""
    try:
        fn(*args, **kwargs)
    except KFDError as exc:
        return exc.errno
    return 0


def u32(buf: Any, index: int = 0) -> int:
    return int(buf.view(np.uint32)[index])


def u64(buf: Any, index: int = 0) -> int:
    return int(buf.view(np.uint64)[index])


def drain(queue: Any, make_signal: Callable[..., Any], timeout: float = 10.0) -> None:
    """Wait until every packet submitted to `queue` so far has completed (a fence signal)."""
    if queue.kind == "aql":
        sig = make_signal(1)
        queue.signal(sig)
        sig.wait(0, cond="==", timeout=timeout)
    else:
        sig = make_signal(0)
        queue.signal(sig, 1)
        sig.wait(1, cond="==", timeout=timeout)


def sizes_of(device: Any):
    """The CWSR / EOP sizes CREATE_QUEUE insists on for `device` (facts-kfd.md §5 formulas)."""
    from pytest_amdgpu.targets import queue_sizes

    n = device.node
    return queue_sizes(device.target, simd_count=n.simd_count, simd_per_cu=n.simd_per_cu,
                       num_xcc=n.num_xcc, array_count=n.array_count,
                       simd_arrays_per_engine=n.simd_arrays_per_engine)


def queue_buffers(device: Any, make_buffer: Any, *, ring_size: int = 4096,
                  ring_bo_size: int | None = None, compute: bool = True) -> dict:
    """Keyword arguments of `KFD.create_queue` with buffers of the exact sizes CREATE_QUEUE
    validates (facts-kfd.md §2.6 rows 13-14, §5): a ring BO of ring_size bytes, one page each
    for the read and write pointers, and for compute queues an EOP buffer and a context-save
    area sized for the node. The buffers themselves are under the key "buffers"; pop it before
    passing the rest to create_queue."""
    ring = make_buffer(ring_bo_size or ring_size, "gtt")
    rptr = make_buffer(4096, "gtt")
    wptr = make_buffer(4096, "gtt")
    kw = {"gpu_id": device.gpu_id, "ring_base": ring.gpu_address, "ring_size": ring_size,
          "read_pointer": rptr.gpu_address, "write_pointer": wptr.gpu_address,
          "buffers": {"ring": ring, "rptr": rptr, "wptr": wptr}}
    if compute:
        s = sizes_of(device)
        eop = make_buffer(s.eop_buffer_size, "vram", cpu_access=False)
        ctx = make_buffer(s.ctx_save_bo_size, "gtt", cpu_access=False)
        kw.update(eop_buffer_address=eop.gpu_address, eop_buffer_size=s.eop_buffer_size,
                  ctx_save_restore_address=ctx.gpu_address,
                  ctx_save_restore_size=s.cwsr_size, ctl_stack_size=s.ctl_stack_size)
    return kw
