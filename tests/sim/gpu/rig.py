"""A low-level rig for the engine tests: a KFD process on a SimPort, driven by real ioctls.

Everything goes through the Port exactly as a user-space driver would: KFD typed wrappers
(part A), topology from sysfs, ACQUIRE_VM on the render node, buffer objects allocated, mapped
and mmapped, queues created with the exact buffer sizes the driver checks, packets built with
part D's builders, doorbells rung through `port.doorbell`. No test reaches into the engine.
"""

from __future__ import annotations

import ctypes
import os
import struct
import time
from dataclasses import dataclass

from pytest_amdgpu.kfd.abi import lib
from pytest_amdgpu.kfd.ioctl import KFD
from pytest_amdgpu.kfd.port import KFD_PATH
from pytest_amdgpu.kfd.topology import read_topology
from pytest_amdgpu.packets import aql as A
from pytest_amdgpu.sim.machine import SimMachine
from pytest_amdgpu.sim.port import SimPort
from pytest_amdgpu.targets.cwsr import queue_sizes

PAGE = 4096
F_VRAM = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_VRAM)
F_GTT = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_GTT)
F_WRITABLE = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE)
F_EXECUTABLE = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE)
F_AQL_QUEUE_MEM = int(lib.KFD_IOC_ALLOC_MEM_FLAGS_AQL_QUEUE_MEM)
Q_COMPUTE = int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE)
Q_SDMA = int(lib.KFD_IOC_QUEUE_TYPE_SDMA)
Q_AQL = int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL)
EV_SIGNAL = int(lib.KFD_IOC_EVENT_SIGNAL)
EV_HW_EXCEPTION = int(lib.KFD_IOC_EVENT_HW_EXCEPTION)
EV_MEMORY = int(lib.KFD_IOC_EVENT_MEMORY)
DOORBELL_MMAP = 3 << 62           # KFD_MMAP_TYPE_DOORBELL (kfd_priv.h)
EVENTS_MMAP = 2 << 62             # KFD_MMAP_TYPE_EVENTS
GPU_ID_SHIFT = 46                 # KFD_MMAP_GPU_ID(id) = id << 46
VA_BASE = 0x1_0000_0000           # where this rig places GPU VAs (inside the GPUVM aperture)
EVENT_PAGE_BYTES = 4096 * 8       # KFD_SIGNAL_EVENT_LIMIT slots of 8 bytes


def poll(pred, timeout: float = 5.0) -> bool:
    """Poll `pred` until true or timeout, yielding the CPU (the GPU thread needs the GIL)."""
    end = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > end:
            return False
        os.sched_yield()


@dataclass
class Buffer:
    """A BO mapped to the GPU (gpu = cpu VA for GTT here) and, when CPU-visible, mmapped."""

    rig: Rig
    handle: int
    gpu: int
    size: int
    cpu: int | None

    def read(self, off: int, n: int) -> bytes:
        return ctypes.string_at(self.cpu + off, n)

    def write(self, off: int, data: bytes) -> None:
        ctypes.memmove(self.cpu + off, data, len(data))

    def u32(self, off: int = 0) -> int:
        return struct.unpack("<I", self.read(off, 4))[0]

    def u64(self, off: int = 0) -> int:
        return struct.unpack("<Q", self.read(off, 8))[0]

    def set_u32(self, off: int, v: int) -> None:
        self.write(off, struct.pack("<I", v & 0xFFFFFFFF))

    def set_u64(self, off: int, v: int) -> None:
        self.write(off, struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF))

    def words(self, off: int, n: int) -> list[int]:
        return list(struct.unpack(f"<{n}I", self.read(off, 4 * n)))


class Queue:
    """A user queue created by CREATE_QUEUE; `submit` writes packets and rings the doorbell."""

    def __init__(self, rig: Rig, kind: str, ring_size: int) -> None:
        self.rig = rig
        self.kind = kind
        self.ring_size = ring_size
        t = rig.target
        self.ring = rig.alloc(ring_size)
        if kind == "aql":
            # amd_queue_t: rptr = &read_dispatch_id (+128), wptr = &write_dispatch_id (+56),
            # both in the first page of one 4 KiB BO (facts-sdma-aql §3.3).
            self.amd_queue = rig.alloc(PAGE)
            self.rptr_addr = self.amd_queue.gpu + A.AMD_QUEUE.read_dispatch_id
            self.wptr_addr = self.amd_queue.gpu + A.AMD_QUEUE.write_dispatch_id
            for i in range(ring_size // 64):        # every slot starts INVALID
                self.ring.write(64 * i, struct.pack("<H", int(A.AqlPacketType.INVALID)))
        else:
            self.rptr_buf = rig.alloc(PAGE)
            self.wptr_buf = rig.alloc(PAGE)
            self.rptr_addr = self.rptr_buf.gpu
            self.wptr_addr = self.wptr_buf.gpu
        extra = {}
        if kind in ("pm4", "aql"):
            sizes = rig.sizes
            self.eop = rig.alloc(sizes.eop_buffer_size, vram=True)
            self.ctx = rig.alloc(sizes.ctx_save_bo_size, vram=True)
            extra = dict(eop_buffer_address=self.eop.gpu, eop_buffer_size=sizes.eop_buffer_size,
                         ctx_save_restore_address=self.ctx.gpu,
                         ctx_save_restore_size=sizes.cwsr_size,
                         ctl_stack_size=sizes.ctl_stack_size)
        qtype = {"pm4": Q_COMPUTE, "aql": Q_AQL, "sdma": Q_SDMA}[kind]
        self.info = rig.kfd.create_queue(
            gpu_id=rig.gpu_id, queue_type=qtype, ring_base=self.ring.gpu, ring_size=ring_size,
            write_pointer=self.wptr_addr, read_pointer=self.rptr_addr, **extra)
        self.queue_id = self.info.queue_id
        self.doorbell = rig.doorbell_base + (self.info.doorbell_offset
                                             & (t.doorbell_slice_size - 1))
        self.wptr = 0          # pm4: dwords, sdma: bytes, aql: packets
        self.destroyed = False

    # -- pointers -----------------------------------------------------------------------------
    def rptr(self) -> int:
        if self.kind == "aql":
            return self.amd_queue.u64(A.AMD_QUEUE.read_dispatch_id)
        return self.rptr_buf.u64(0)

    def _publish(self) -> None:
        if self.kind == "aql":
            self.amd_queue.set_u64(A.AMD_QUEUE.write_dispatch_id, self.wptr)
            self.rig.port.doorbell(self.doorbell, self.wptr - 1)
        else:
            self.wptr_buf.set_u64(0, self.wptr)
            self.rig.port.doorbell(self.doorbell, self.wptr)

    # -- PM4 / SDMA -----------------------------------------------------------------------------
    def put_words(self, words: list[int], *, ring: bool = True) -> None:
        """Copy dwords into the ring at the write pointer (wrapping at the end)."""
        step = 1 if self.kind == "pm4" else 4          # wptr units per dword
        for w in words:
            self.ring.set_u32(4 * self.dw_pos(), w)
            self.wptr += step
        if ring:
            self._publish()

    def submit(self, *packets) -> None:
        """Encode packets for the rig's target and publish them (one doorbell)."""
        words: list[int] = []
        for p in packets:
            words += p if isinstance(p, list) else p.encode(self.rig.target)
        self.put_words(words)

    def dw_pos(self) -> int:
        """Ring offset (dwords) of the write pointer."""
        per = 1 if self.kind == "pm4" else 4
        return (self.wptr // per) % (self.ring_size // 4)

    # -- AQL ------------------------------------------------------------------------------------
    def submit_aql(self, *packets) -> None:
        slots = self.ring_size // 64
        for p in packets:
            data = p.encode() if not isinstance(p, bytes) else p
            slot = self.wptr % slots
            self.ring.write(64 * slot + 4, data[4:])
            self.ring.write(64 * slot, data[:4])          # header last
            self.wptr += 1
        self._publish()

    def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            self.rig.kfd.destroy_queue(queue_id=self.queue_id)


class Rig:
    """One simulated KFD process on `machine` (or a new machine of `target`, a SimMachine spec
    such as "gfx942" or "gfx942x2"), working on one of its GPUs (`on_gpu` gives the others)."""

    def __init__(self, target: str = "gfx942", machine: SimMachine | None = None, *,
                 _parent: Rig | None = None, _gpu: int = 0) -> None:
        if _parent is None:
            self.port = SimPort(machine, sim=target) if machine is not None \
                else SimPort(sim=target)
            self.kfd = KFD(self.port, KFD_PATH)
            self.topology = read_topology(self.port)
            self.state = {"va": VA_BASE, "event_page": None}
        else:
            self.port, self.kfd = _parent.port, _parent.kfd
            self.topology, self.state = _parent.topology, _parent.state
        self.machine = self.port.machine
        self.node = self.topology.gpus[_gpu]
        self.target = self.node.target
        self.gpu_id = self.node.gpu_id
        self.render_fd = self.port.open(self.node.render_node)
        self.kfd.acquire_vm(drm_fd=self.render_fd, gpu_id=self.gpu_id)
        self.sizes = queue_sizes(self.target, simd_count=self.node.simd_count,
                                 simd_per_cu=self.node.simd_per_cu, num_xcc=self.node.num_xcc,
                                 array_count=self.node.array_count,
                                 simd_arrays_per_engine=self.node.simd_arrays_per_engine)
        self.buffers: list[Buffer] = []
        slice_size = self.target.doorbell_slice_size
        self.doorbell_base = self.kfd.mmap(
            offset=DOORBELL_MMAP | (self.gpu_id << GPU_ID_SHIFT), length=slice_size)
        self.queues: list[Queue] = []
        self.siblings: list[Rig] = []
        self.owner = _parent is None

    def on_gpu(self, index: int) -> Rig:
        """The same KFD process working on GPU `index` of the machine."""
        r = Rig(_parent=self, _gpu=index)
        self.siblings.append(r)
        return r

    @property
    def event_page(self) -> Buffer | None:
        return self.state["event_page"]

    @property
    def _next_va(self) -> int:
        return self.state["va"]

    def alloc(self, size: int, *, vram: bool = False, writable: bool = True,
              executable: bool = False, peers: tuple[int, ...] | list[int] = ()) -> Buffer:
        """A BO at the next free VA, mapped to this GPU (and `peers`, gpu ids); GTT ones are
        mmapped for the CPU."""
        size = (size + PAGE - 1) & ~(PAGE - 1)
        va = self.state["va"]
        self.state["va"] = va + size + (1 << 20)     # leave an unmapped gap after each BO
        flags = (F_VRAM if vram else F_GTT) | (F_WRITABLE if writable else 0) \
            | (F_EXECUTABLE if executable else 0)
        a = self.kfd.alloc_memory(gpu_id=self.gpu_id, size=size, flags=flags, va_addr=va)
        self.kfd.map_memory(handle=a.handle, gpu_ids=[self.gpu_id, *peers])
        cpu = None
        if not vram:
            cpu = self.port.mmap(0, size, int(lib.PROT_READ | lib.PROT_WRITE),
                                 int(lib.MAP_SHARED), self.render_fd, a.mmap_offset)
        buf = Buffer(self, a.handle, va, size, cpu)
        self.buffers.append(buf)
        return buf

    def queue(self, kind: str, ring_size: int = 4096) -> Queue:
        q = Queue(self, kind, ring_size)
        self.queues.append(q)
        return q

    def event(self, event_type: int = EV_SIGNAL, *, auto_reset: bool = True):
        """CREATE_EVENT. The first signal event also hands KFD this rig's event page: a GTT BO
        the GPU can write (as ROCR does), so `slot_addr(event)` is a GPU address."""
        page = 0
        if self.event_page is None and event_type == EV_SIGNAL:
            self.state["event_page"] = self.alloc(EVENT_PAGE_BYTES)
            page = self.event_page.handle
        return self.kfd.create_event(event_type=event_type, auto_reset=auto_reset,
                                     event_page_handle=page)

    def slot_addr(self, event) -> int:
        """GPU address of a signal event's mailbox slot (page + 8 * id, facts-kfd §4 I1)."""
        return self.event_page.gpu + 8 * event.event_id

    def wait_events(self, ids, timeout_ms: int = 5000, wait_for_all: bool = False):
        return self.kfd.wait_events(event_ids=list(ids), timeout_ms=timeout_ms,
                                    wait_for_all=wait_for_all)

    def close(self) -> None:
        """Destroy the queues (all GPUs) and end the process (frees everything)."""
        for r in [self, *self.siblings]:
            for q in r.queues:
                if not q.destroyed:
                    try:
                        q.destroy()
                    except Exception:  # best-effort teardown of a failed test
                        pass
        if self.owner:
            self.port.close_port()
