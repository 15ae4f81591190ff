"""The simulated KFD process: per-device data, user queues, and the hooks the hardware calls.

The real driver keys a KFD process by the caller's address space; here one SimPort is one OS
process, so the port owns exactly one `KFDProcess`, created by its first open of /dev/kfd and
released by `SimPort.close_port()` (closing /dev/kfd frees nothing while the process lives:
facts-kfd.md §1, rules 1.3 and 1.7). At creation the process gets one `ProcessDevice` (pdd) per
GPU of the machine (1.4); ACQUIRE_VM binds a render-node file to one of them (1.A).

Queue creation follows kfd_chardev.c `kfd_ioctl_create_queue`, kfd_queue.c
`kfd_queue_acquire_buffers` and kfd_process_queue_manager.c `pqm_create_queue` in the order of
facts-kfd.md §2.6; the hooks `signal_interrupt`, `vm_fault` and `hw_exception` follow §4.
"""

from __future__ import annotations

import errno as E
import itertools
import logging
import struct
import threading
from dataclasses import dataclass

from ..kfd.abi import lib
from .events import EV_HW_EXCEPTION, EV_MEMORY, EventManager
from .memory import (
    F_EXECUTABLE,
    F_GTT,
    F_WRITABLE,
    GPUVM,
    PAGE_SIZE,
    Backing,
    BufferObject,
    DriverError,
    MemoryManager,
    VMFault,
    host_range_mapped,
)

log = logging.getLogger("pytest_amdgpu.sim")

__all__ = ["KFDProcess", "ProcessDevice", "SimQueue", "QueueProps"]

MAX_QUEUES_PER_PROCESS = 1024          # KFD_MAX_NUM_OF_QUEUES_PER_PROCESS (kfd_priv.h)
DOORBELL_MIRROR_OFFSET = 512           # KFD_QUEUE_DOORBELL_MIRROR_OFFSET
# Doorbell ids reserved for SDMA/IH/VCN in every process bitmap (init_doorbell_bitmap), and the
# static SDMA doorbell bases (adev->doorbell_index.sdma_engine[]): NOT SOURCED — the Vega20/
# Navi10 layout (SDMA engine 0 at 0x100, 0x0A ids per engine). Only the values matter, not
# which hardware routes them.
NON_CP_DOORBELLS = (0x100, 0x1FF)
SDMA_DOORBELL_BASE = 0x100
SDMA_DOORBELL_STRIDE = 0x0A
KFD_MMAP_TYPE_DOORBELL = 0x3 << 62     # kfd_priv.h KFD_MMAP_TYPE_*
KFD_MMAP_TYPE_EVENTS = 0x2 << 62
KFD_MMAP_TYPE_RESERVED_MEM = 0x1 << 62
KFD_MMAP_TYPE_MMIO = 0x0 << 62
KFD_MMAP_GPU_ID_SHIFT = 46
# Apertures of the GFX9+ layout (kfd_flat_memory.c kfd_init_apertures_v9; facts §2.2).
LDS_BASE_V9 = 1 << 48
SCRATCH_BASE_V9 = 2 << 48
SVM_USER_BASE = 0x100_0000
GPUVM_SIZE = 1 << 47                   # min(max_pfn << 12, AMDGPU_GMC_HOLE_START)
# The driver's own pages below SVM_USER_BASE, allocated at ACQUIRE_VM on dGPUs
# (kfd_process_device_reserve_ib_mem, kfd_process_device_init_cwsr_dgpu: DERIVED, facts 1.8).
KFD_CWSR_TBA_TMA_SIZE = 2 * PAGE_SIZE
SVM_CWSR_BASE = SVM_USER_BASE - KFD_CWSR_TBA_TMA_SIZE
SVM_IB_BASE = SVM_CWSR_BASE - PAGE_SIZE

Q_COMPUTE = int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE)
Q_SDMA = int(lib.KFD_IOC_QUEUE_TYPE_SDMA)
Q_COMPUTE_AQL = int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL)
Q_SDMA_XGMI = int(lib.KFD_IOC_QUEUE_TYPE_SDMA_XGMI)
Q_SDMA_BY_ENG_ID = int(lib.KFD_IOC_QUEUE_TYPE_SDMA_BY_ENG_ID)
QUEUE_KINDS = {Q_COMPUTE: "pm4", Q_COMPUTE_AQL: "aql", Q_SDMA: "sdma", Q_SDMA_XGMI: "sdma",
               Q_SDMA_BY_ENG_ID: "sdma"}

SVM_ATTR_PREFERRED_LOC = int(lib.KFD_IOCTL_SVM_ATTR_PREFERRED_LOC)
SVM_ATTR_PREFETCH_LOC = int(lib.KFD_IOCTL_SVM_ATTR_PREFETCH_LOC)
SVM_ATTR_ACCESS = int(lib.KFD_IOCTL_SVM_ATTR_ACCESS)
SVM_ATTR_ACCESS_IN_PLACE = int(lib.KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE)
SVM_ATTR_NO_ACCESS = int(lib.KFD_IOCTL_SVM_ATTR_NO_ACCESS)
SVM_ATTR_SET_FLAGS = int(lib.KFD_IOCTL_SVM_ATTR_SET_FLAGS)
SVM_ATTR_CLR_FLAGS = int(lib.KFD_IOCTL_SVM_ATTR_CLR_FLAGS)
SVM_ATTR_GRANULARITY = int(lib.KFD_IOCTL_SVM_ATTR_GRANULARITY)
SVM_LOCATION_SYSMEM = int(lib.KFD_IOCTL_SVM_LOCATION_SYSMEM)
SVM_LOCATION_UNDEFINED = int(lib.KFD_IOCTL_SVM_LOCATION_UNDEFINED)
SVM_FLAG_GPU_ALWAYS_MAPPED = int(lib.KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED)
SVM_OP_SET_ATTR = int(lib.KFD_IOCTL_SVM_OP_SET_ATTR)
SVM_OP_GET_ATTR = int(lib.KFD_IOCTL_SVM_OP_GET_ATTR)


@dataclass(frozen=True)
class InterruptClass:
    """One KFD interrupt handler (kfd_int_process_v9.c / v10 / v11, chosen by the GC major
    version as kfd_interrupt_init does): how many event-ID bits each source carries (facts §4
    I3), and from which GC version the ISR drops a CP END_OF_PIPE whose context_id0 is 0
    (v9 `context_id_expected`; I2). Versions read: v9 (gfx90a, gfx942), v10, v11 (gfx1100).
    Not modelled: v12.1, whose CP EOP trusts the id without looking at the slot (I5)."""

    id_bits: dict[str, int]
    drops_zero_eop_from: tuple[int, int, int] | None


INTERRUPT_CLASSES = {
    9: InterruptClass({"cp_eop": 32, "sdma_trap": 28, "sq_msg": 24}, (9, 4, 1)),
    10: InterruptClass({"cp_eop": 32, "sdma_trap": 28, "sq_msg": 23}, None),
    11: InterruptClass({"cp_eop": 32, "sdma_trap": 28, "sq_msg": 24}, None),
}


@dataclass
class QueueProps:
    """struct queue_properties as set_queue_properties_from_user fills it."""

    queue_type: int
    gpu_id: int
    ring_base: int
    ring_size: int
    rptr: int
    wptr: int
    percentage: int
    pm4_target_xcc: int
    priority: int
    eop_address: int
    eop_size: int
    ctx_save_address: int
    ctx_save_size: int
    ctl_stack_size: int
    sdma_engine_id: int


class SimQueue:
    """A user-mode queue as the hardware sees it (what E's processors execute).

    Pointer units are the engine's (CONTRACTS.md §E). `active` is KFD's QUEUE_IS_ACTIVE (ring
    size and address non-zero, percentage non-zero) and not evicted.
    """

    def __init__(self, process: KFDProcess, pdd: ProcessDevice, queue_id: int,
                 props: QueueProps) -> None:
        self.process = process
        self.pdd = pdd
        self.device = pdd.device
        self.vm: GPUVM = pdd.vm
        self.gpu_id = pdd.gpu_id
        self.queue_id = queue_id
        self.queue_type = props.queue_type
        self.kind = QUEUE_KINDS[props.queue_type]
        self.ring_base = props.ring_base
        self.ring_size = props.ring_size            # bytes
        self.rptr_addr = props.rptr
        self.wptr_addr = props.wptr
        self.eop_address = props.eop_address
        self.eop_size = props.eop_size
        self.ctx_save_address = props.ctx_save_address
        self.ctx_save_size = props.ctx_save_size
        self.ctl_stack_size = props.ctl_stack_size
        self.priority = props.priority
        self.percentage = props.percentage
        self.pm4_target_xcc = props.pm4_target_xcc
        self.cu_mask: list[int] | None = None       # u32 words, None = all CUs
        self.sdma_engine: int | None = None
        self.sdma_queue: int | None = None
        self.sdma_id: int | None = None
        self.doorbell_index = 0                     # doorbell id inside the process slice
        self.doorbell_offset = 0                    # CREATE_QUEUE's doorbell_offset
        self.doorbell_value = 0                     # last value stored to the doorbell
        self.evicted = False
        self.hw_exception: str | None = None        # reason of the last HW exception
        self.gws = False
        self.buffers: list = []                     # mappings referenced (queue_refcount)
        self.destroyed = False

    @property
    def active(self) -> bool:
        return (self.ring_size > 0 and self.ring_base != 0 and self.percentage > 0
                and not self.evicted)

    def __repr__(self) -> str:
        return (f"<SimQueue {self.kind} id={self.queue_id} gpu={self.gpu_id:#x} "
                f"ring={self.ring_base:#x}+{self.ring_size:#x} doorbell={self.doorbell_index}>")


class ProcessDevice:
    """struct kfd_process_device: the process on one GPU."""

    def __init__(self, process: KFDProcess, device) -> None:
        self.process = process
        self.device = device
        self.gpu_id = device.gpu_id
        self.vm = GPUVM(process, device, process.machine.memory_written)
        self.drm_file = None                        # the render file given to ACQUIRE_VM
        self.bos: dict[int, BufferObject] = {}      # alloc_idr
        self.doorbell_backing: Backing | None = None
        self.doorbell_ids: set[int] = set()         # qpd->doorbell_bitmap (used ids)
        self.doorbell_queues: dict[int, SimQueue] = {}
        self.queue_count = 0                        # qpd->queue_count
        self.lds_base = LDS_BASE_V9
        self.lds_limit = LDS_BASE_V9 | 0xFFFF_FFFF
        self.scratch_base = SCRATCH_BASE_V9
        self.scratch_limit = SCRATCH_BASE_V9 | 0xFFFF_FFFF
        self.gpuvm_base = SVM_USER_BASE
        self.gpuvm_limit = GPUVM_SIZE - 1
        self.tba_addr = 0                           # SET_TRAP_HANDLER
        self.tma_addr = 0
        self.scratch_backing_va = 0                 # SET_SCRATCH_BACKING_VA
        self.default_policy = 0                     # SET_MEMORY_POLICY
        self.alternate_policy = 0
        self.gws_queue: SimQueue | None = None
        # qpd->evicted: set by a VM fault (kfd_dqm_evict_pasid) and never restored for it;
        # create_queue_cpsch marks queues created meanwhile is_evicted too.
        self.evicted = False

    def ensure_doorbells(self) -> Backing:
        """kfd_alloc_process_doorbells: the process's doorbell slice on this device."""
        if self.doorbell_backing is None:
            self.doorbell_backing = Backing(self.device.doorbell_slice_size,
                                            name=f"doorbell-{self.gpu_id:x}")
        return self.doorbell_backing

    def doorbell_written(self, offset: int, size: int, value: int | None = None) -> None:
        """Stores to the doorbell page (CPU through the port, or GPU through its VM); `value`
        is the 64-bit value of an aligned 8-byte store when the caller knows it."""
        backing = self.doorbell_backing
        if backing is None:
            return
        if value is not None and size == 8 and offset % 8 == 0:
            q = self.doorbell_queues.get(offset // 8)
            if q is not None:
                q.doorbell_value = value & 0xFFFF_FFFF_FFFF_FFFF
                self.device.engine.notify(q)
            return
        first, last = offset // 8, (offset + max(size, 1) - 1) // 8
        for did in range(first, last + 1):
            q = self.doorbell_queues.get(did)
            if q is not None:
                raw = backing.array[did * 8:did * 8 + 8].tobytes()
                q.doorbell_value = int.from_bytes(raw, "little")
                self.device.engine.notify(q)

    def __repr__(self) -> str:
        return f"<pdd gpu {self.gpu_id:#x} bound={self.drm_file is not None}>"


@dataclass
class SVMRange:
    start: int
    end: int
    attrs: dict


class KFDProcess:
    """One simulated KFD process (struct kfd_process)."""

    def __init__(self, machine, port) -> None:
        self.machine = machine
        self.port = port
        self.lock = threading.RLock()               # p->mutex
        self.pdds = [ProcessDevice(self, d) for d in machine.devices]   # 1.4
        self._pdd_by_id = {p.gpu_id: p for p in self.pdds}
        self.memory = MemoryManager(self)
        self.events = EventManager(self)
        self.queues: dict[int, SimQueue] = {}       # pqm, by queue id
        self.xnack_enabled = False
        self.runtime_enabled = False
        self.ttmp_setup = False
        self.r_debug = 0
        self.svm_ranges: list[SVMRange] = []
        self.faults: list[VMFault] = []             # VM faults reported (introspection)
        self.alive = True

    # -- lookups ----------------------------------------------------------------------------
    def pdd_by_id(self, gpu_id: int) -> ProcessDevice | None:
        """kfd_process_device_data_by_id."""
        return self._pdd_by_id.get(gpu_id)

    def bind(self, pdd: ProcessDevice, errno: int) -> ProcessDevice:
        """kfd_bind_process_to_device: the VM must have been acquired (else `errno`)."""
        if pdd.drm_file is None:
            raise DriverError(errno, f"call ACQUIRE_VM for gpu {pdd.gpu_id:#x} first")
        return pdd

    # -- ACQUIRE_VM (facts 1.A) ---------------------------------------------------------------
    def acquire_vm(self, drm_file, gpu_id: int) -> None:
        if drm_file is None:                                  # 1: fget fails
            raise DriverError(E.EINVAL, "drm_fd is not an open file")
        with self.lock:
            pdd = self.pdd_by_id(gpu_id)
            if pdd is None:                                   # 2
                raise DriverError(E.EINVAL, f"gpu_id {gpu_id:#x} unknown")
            if pdd.drm_file is not None:                      # 3: same file ok, else EBUSY
                if pdd.drm_file is drm_file:
                    return
                raise DriverError(E.EBUSY, "the VM was acquired through another DRM file")
            device = getattr(drm_file, "device", None)
            if device is None:                                # 4: not an amdgpu DRM file
                raise DriverError(E.EINVAL, "drm_fd is not an amdgpu render node")
            # GAP (facts 1.A/§7): the real driver's check of a render node of another GPU was
            # not read. The simulator refuses it with EINVAL, as amdgpu refuses a VM that is
            # already a compute VM ("VM already acquired", amdgpu_amdkfd_gpuvm.c).
            if device is not pdd.device:
                raise DriverError(E.EINVAL, f"drm_fd is the render node of gpu "
                                            f"{device.gpu_id:#x}, not of {gpu_id:#x}")
            if getattr(drm_file, "vm_owner", None) is not None:
                raise DriverError(E.EINVAL, "this DRM file's VM is already a compute VM")
            drm_file.vm_owner = pdd
            pdd.drm_file = drm_file                           # 5: the pdd keeps the file
            self._init_vm(pdd)

    def _init_vm(self, pdd: ProcessDevice) -> None:
        """kfd_process_device_init_vm: reserve the IB page and the CWSR trap pages (dGPU)."""
        for va, size in ((SVM_IB_BASE, PAGE_SIZE), (SVM_CWSR_BASE, KFD_CWSR_TBA_TMA_SIZE)):
            flags = F_GTT | F_WRITABLE | F_EXECUTABLE
            bo = self.memory.alloc(gpu_id=pdd.gpu_id, va=va, size=size, flags=flags,
                                   mmap_offset=0, kernel=True)
            self.memory.map_one(bo, pdd)

    # -- CREATE_QUEUE (§2.6 rows 9-20) --------------------------------------------------------
    def create_queue(self, props: QueueProps) -> SimQueue:
        with self.lock:
            pdd = self.pdd_by_id(props.gpu_id)
            if pdd is None:                                   # row 9
                raise DriverError(E.EINVAL, f"gpu_id {props.gpu_id:#x} unknown")
            self.bind(pdd, E.ESRCH)                           # row 10
            dev = pdd.device
            if props.queue_type == Q_SDMA_BY_ENG_ID:          # row 11
                max_id = dev.num_sdma_engines + dev.num_xgmi_sdma_engines - 1
                if props.sdma_engine_id > max_id:
                    raise DriverError(E.EINVAL, f"sdma_engine_id {props.sdma_engine_id} > "
                                                f"{max_id}")
            pdd.ensure_doorbells()                            # row 12
            refs = self._acquire_buffers(pdd, props)          # rows 13-14
            try:
                q = self._pqm_create(pdd, props)              # rows 15-20
            except BaseException:
                self._release_buffers(refs)
                raise
            q.buffers = refs
            self.queues[q.queue_id] = q
            if pdd.evicted:                 # create_queue_cpsch: is_evicted = qpd->evicted
                q.evicted = True
            pdd.doorbell_queues[q.doorbell_index] = q
            pdd.queue_count += 1
        dev.engine.add_queue(q)
        return q

    def _acquire_buffers(self, pdd: ProcessDevice, props: QueueProps) -> list:
        """kfd_queue_acquire_buffers (QUE): each buffer must start a GPU mapping of its size."""
        refs: list = []
        try:
            refs.append(self._buffer_get(pdd, props.wptr, PAGE_SIZE, "write pointer"))
            refs.append(self._buffer_get(pdd, props.rptr, PAGE_SIZE, "read pointer"))
            # AQL rings on gfx7/8 appear twice their size; none of our targets is gfx7/8.
            refs.append(self._buffer_get(pdd, props.ring_base, props.ring_size, "ring"))
            if props.queue_type not in (Q_COMPUTE, Q_COMPUTE_AQL):
                return refs
            sizes = pdd.device.queue_sizes
            if props.eop_address:
                if props.eop_size != sizes.eop_buffer_size:
                    raise DriverError(E.EINVAL, f"eop_buffer_size {props.eop_size:#x} != "
                                                f"{sizes.eop_buffer_size:#x}")
                refs.append(self._buffer_get(pdd, props.eop_address, props.eop_size, "EOP"))
            if props.ctl_stack_size != sizes.ctl_stack_size:
                raise DriverError(E.EINVAL, f"ctl_stack_size {props.ctl_stack_size:#x} != "
                                            f"{sizes.ctl_stack_size:#x}")
            if props.ctx_save_size != sizes.cwsr_size:
                raise DriverError(E.EINVAL, f"ctx_save_restore_size {props.ctx_save_size:#x} "
                                            f"!= {sizes.cwsr_size:#x}")
            try:
                refs.append(self._buffer_get(pdd, props.ctx_save_address,
                                             sizes.ctx_save_bo_size, "context save"))
            except DriverError:
                if not self._svm_always_mapped(pdd, props.ctx_save_address,
                                               sizes.ctx_save_bo_size):
                    raise
            return refs
        except BaseException:
            self._release_buffers(refs)
            raise

    @staticmethod
    def _buffer_get(pdd: ProcessDevice, addr: int, expected: int, what: str):
        """kfd_queue_buffer_get: the page of `addr` starts a mapping of `expected` bytes
        (expected sizes below one page skip the size test)."""
        page = addr >> 12
        pages = expected >> 12
        m = pdd.vm.lookup(page << 12)
        if m is None or (m.start >> 12) != page or \
                (pages and ((m.end >> 12) - 1) != page + pages - 1):
            got = f"mapping {m.start:#x}-{m.end:#x}" if m is not None else "no mapping"
            raise DriverError(E.EINVAL, f"{what} address {addr:#x} must start a GPU-mapped "
                                        f"buffer of {expected:#x} bytes ({got})")
        m.queue_refcount += 1
        return m

    @staticmethod
    def _release_buffers(refs: list) -> None:
        for m in refs:
            if m.queue_refcount:
                m.queue_refcount -= 1
        refs.clear()

    def _pqm_create(self, pdd: ProcessDevice, props: QueueProps) -> SimQueue:
        """pqm_create_queue + DQM create_queue: limits, queue id, SDMA slot, doorbell."""
        dev = pdd.device
        if pdd.queue_count >= dev.target.max_queues_per_device:          # row 15
            raise DriverError(E.ENOSPC, f"{pdd.queue_count} queues on gpu {pdd.gpu_id:#x} "
                                        f"(limit {dev.target.max_queues_per_device})")
        qid = next((i for i in range(MAX_QUEUES_PER_PROCESS) if i not in self.queues), None)
        if qid is None:                                                  # row 16
            raise DriverError(E.ENOMEM, "all 1024 queue ids of the process are in use")
        q = SimQueue(self, pdd, qid, props)
        kind = {Q_SDMA: "sdma", Q_SDMA_XGMI: "xgmi", Q_SDMA_BY_ENG_ID: "eng"}.get(
            props.queue_type)
        if kind is not None:                                             # row 19
            sid, engine, queue = dev.allocate_sdma(kind, props.sdma_engine_id)
            q.sdma_id, q.sdma_engine, q.sdma_queue = sid, engine, queue
            # Static SDMA doorbell (DQM allocate_doorbell): odd queues in the mirror page.
            q.doorbell_index = (SDMA_DOORBELL_BASE + SDMA_DOORBELL_STRIDE * engine
                                + (queue & 1) * DOORBELL_MIRROR_OFFSET + (queue >> 1))
        else:
            did = next((i for i in range(MAX_QUEUES_PER_PROCESS)
                        if i not in pdd.doorbell_ids and not _reserved_doorbell(i)), None)
            if did is None:                                              # row 20
                raise DriverError(E.EBUSY, "no free doorbell id")
            q.doorbell_index = did
        pdd.doorbell_ids.add(q.doorbell_index)
        # doorbell_offset = KFD_MMAP_TYPE_DOORBELL | gpu_id << 46 | in-slice byte offset (M5)
        q.doorbell_offset = (KFD_MMAP_TYPE_DOORBELL | (pdd.gpu_id << KFD_MMAP_GPU_ID_SHIFT)
                             | (q.doorbell_index * 8))
        return q

    # -- DESTROY / UPDATE / CU mask / wave state / GWS (§2.7) ---------------------------------
    def destroy_queue(self, queue_id: int) -> int:
        """pqm_destroy_queue: unknown -> EINVAL. A queue that the engine cannot take off the
        hardware in time is still torn down and its id freed, and ETIME is returned (as KFD
        does for a hung HW unmap)."""
        with self.lock:
            q = self.queues.get(queue_id)
            if q is None:
                raise DriverError(E.EINVAL, f"unknown queue id {queue_id}")
            ok = self._teardown_queue(q)
        if not ok:
            return E.ETIME
        return 0

    def _teardown_queue(self, q: SimQueue) -> bool:
        ok = True
        try:
            ok = q.device.engine.remove_queue(q) is not False
        finally:
            pdd = q.pdd
            q.destroyed = True
            self.queues.pop(q.queue_id, None)
            pdd.doorbell_queues.pop(q.doorbell_index, None)
            pdd.doorbell_ids.discard(q.doorbell_index)
            pdd.queue_count -= 1
            if q.sdma_id is not None:
                q.device.free_sdma(q.sdma_id)
            if pdd.gws_queue is q:
                pdd.gws_queue = None
            self._release_buffers(q.buffers)
        return ok

    def update_queue(self, queue_id: int, ring_base: int, ring_size: int, percentage: int,
                     pm4_target_xcc: int, priority: int) -> None:
        """pqm_update_queue_properties: unknown -> EFAULT; a new ring must start a mapping of
        exactly ring_size bytes (else EFAULT); address 0 or percentage 0 disables the queue."""
        with self.lock:
            q = self.queues.get(queue_id)
            if q is None:
                raise DriverError(E.EFAULT, f"unknown queue id {queue_id}")
            if ring_base and ring_size:
                try:
                    m = self._buffer_get(q.pdd, ring_base, ring_size, "ring")
                except DriverError as exc:
                    raise DriverError(E.EFAULT, exc.why) from None
                old = q.buffers[2] if len(q.buffers) > 2 else None
                if old is not None:
                    old.queue_refcount -= 1
                    q.buffers[2] = m
                else:
                    q.buffers.append(m)
            q.ring_base = ring_base
            q.ring_size = ring_size
            q.percentage = percentage
            q.pm4_target_xcc = pm4_target_xcc
            q.priority = priority
        q.device.engine.queue_changed(q)

    def set_cu_mask(self, queue_id: int, words: list[int], count: int) -> None:
        """pqm_update_mqd: unknown -> EFAULT; CU pairs on GC 10.0 <= v < 12.1 (EINVAL)."""
        with self.lock:
            q = self.queues.get(queue_id)
            if q is None:
                raise DriverError(E.EFAULT, f"unknown queue id {queue_id}")
            if q.device.target.cu_mask_in_pairs:
                for i in range(0, count, 2):
                    pair = (words[i // 32] >> (i % 32)) & 0x3
                    if pair not in (0, 3):
                        raise DriverError(E.EINVAL, f"CUs {i} and {i + 1} must be enabled in "
                                                    "pairs on this target")
            q.cu_mask = list(words)
        q.device.engine.queue_changed(q)

    def get_wave_state(self, queue_id: int) -> tuple[int, int]:
        """pqm_get_wave_state: unknown -> EFAULT; compute queue, inactive, else EINVAL.
        Returns (ctl_stack_used_size, save_area_used_size): the simulator never saves waves,
        so both are 0, as the MQD of a queue that was never preempted with waves reports."""
        with self.lock:
            q = self.queues.get(queue_id)
            if q is None:
                raise DriverError(E.EFAULT, f"unknown queue id {queue_id}")
            if q.kind == "sdma" or q.active:
                raise DriverError(E.EINVAL, "wave state needs an inactive compute queue")
            return 0, 0

    def alloc_queue_gws(self, queue_id: int, num_gws: int) -> None:
        """kfd_ioctl_alloc_queue_gws + pqm_set_gws."""
        with self.lock:
            q = self.queues.get(queue_id)
            if q is None:
                raise DriverError(E.EINVAL, f"unknown queue id {queue_id}")
            if not q.device.properties.get("num_gws"):
                raise DriverError(E.ENODEV, "the device has no GWS")
            pdd = q.pdd
            if num_gws:
                if pdd.gws_queue is not None:    # one GWS queue per process and device
                    raise DriverError(E.EBUSY, "another queue of the process holds the GWS")
                pdd.gws_queue, q.gws = q, True
            else:
                if pdd.gws_queue is None:
                    raise DriverError(E.EINVAL, "no GWS to release")
                pdd.gws_queue.gws = False
                pdd.gws_queue = None

    # -- event page (E1) ------------------------------------------------------------------------
    def kmap_event_page(self, handle: int) -> None:
        """kfd_kmap_event_page: the user's BO becomes the signal page."""
        with self.lock:
            if self.events.page is not None:
                raise DriverError(E.EINVAL, "the event page is already set")
            pdd = self.pdd_by_id(handle >> 32)
            if pdd is None:
                raise DriverError(E.EINVAL, f"no device {handle >> 32:#x} for handle")
            self.bind(pdd, E.ENODEV)
            bo = self.memory.translate(pdd, handle)
            if bo is None:
                raise DriverError(E.EINVAL, f"unknown handle {handle:#x}")
            # map_gtt_bo_to_kernel: userptr -> EINVAL; doorbell/MMIO pages cannot be pinned in
            # GTT (simulator choice: EINVAL).
            if bo.kind not in ("gtt", "vram"):
                raise DriverError(E.EINVAL, f"a {bo.kind} BO cannot be the event page")
            self.events.set_user_page(bo.backing, bo.bo_size, handle)

    # -- SET_XNACK_MODE / RUNTIME_ENABLE / SVM --------------------------------------------------
    def set_xnack(self, enabled: int) -> int:
        with self.lock:
            if enabled < 0:
                return int(self.xnack_enabled)
            if self.queues:
                raise DriverError(E.EBUSY, "the process has queues")
            if bool(enabled) == self.xnack_enabled:
                return enabled
            if enabled and not all(p.device.target.xnack_supported for p in self.pdds):
                raise DriverError(E.EPERM, "a device of the process does not support XNACK")
            self.xnack_enabled = bool(enabled)
            return enabled

    def runtime_enable(self, enable: bool, r_debug: int, ttmp: bool) -> None:
        """runtime_enable / runtime_disable (kfd_chardev.c): EBUSY twice, EEXIST with queues."""
        with self.lock:
            if enable:
                if self.runtime_enabled:
                    raise DriverError(E.EBUSY, "runtime already enabled")
                if any(p.queue_count for p in self.pdds):
                    raise DriverError(E.EEXIST, "queues exist")
                self.runtime_enabled, self.r_debug, self.ttmp_setup = True, r_debug, ttmp
            else:
                self.runtime_enabled, self.r_debug, self.ttmp_setup = False, 0, False

    def svm_overlaps(self, start: int, size: int) -> bool:
        end = start + size
        return any(r.start < end and start < r.end for r in self.svm_ranges)

    def svm(self, op: int, start: int, size: int, attrs: list[tuple[int, int]]
            ) -> list[tuple[int, int]]:
        """svm_ioctl: attribute validation (svm_range_check_attr), host range validity
        (svm_range_is_valid -> EFAULT) and bookkeeping of the ranges' attributes.
        GPU access to SVM ranges is not simulated."""
        with self.lock:
            if op not in (SVM_OP_SET_ATTR, SVM_OP_GET_ATTR):
                raise DriverError(E.EINVAL, f"unknown SVM op {op}")
            for t, v in attrs:
                gpu = None
                if t == SVM_ATTR_PREFERRED_LOC:
                    if v not in (SVM_LOCATION_SYSMEM, SVM_LOCATION_UNDEFINED):
                        gpu = v
                elif t == SVM_ATTR_PREFETCH_LOC:
                    if v != SVM_LOCATION_SYSMEM:
                        gpu = v
                elif t in (SVM_ATTR_ACCESS, SVM_ATTR_ACCESS_IN_PLACE, SVM_ATTR_NO_ACCESS):
                    gpu = v
                elif t not in (SVM_ATTR_SET_FLAGS, SVM_ATTR_CLR_FLAGS, SVM_ATTR_GRANULARITY):
                    raise DriverError(E.EINVAL, f"unknown SVM attribute type {t}")
                if op == SVM_OP_SET_ATTR and gpu is not None and self.pdd_by_id(gpu) is None:
                    raise DriverError(E.EINVAL, f"SVM attribute names unknown gpu {gpu:#x}")
            if not host_range_mapped(start, size):
                raise DriverError(E.EFAULT, "the SVM range is not mapped in the process")
            if op == SVM_OP_GET_ATTR:
                return self._svm_get(start, size, attrs)
            self._svm_set(start, size, attrs)
            return attrs

    def _svm_set(self, start: int, size: int, attrs: list[tuple[int, int]]) -> None:
        end = start + size
        keep: list[SVMRange] = []
        inside: list[SVMRange] = []
        for r in self.svm_ranges:
            if r.end <= start or r.start >= end:
                keep.append(r)
                continue
            if r.start < start:
                keep.append(SVMRange(r.start, start, dict(r.attrs)))
            if r.end > end:
                keep.append(SVMRange(end, r.end, dict(r.attrs)))
            inside.append(SVMRange(max(r.start, start), min(r.end, end), dict(r.attrs)))
        covered = sorted(inside, key=lambda r: r.start)
        cur = start
        for r in list(covered):
            if r.start > cur:
                inside.append(SVMRange(cur, r.start, {}))
            cur = max(cur, r.end)
        if cur < end:
            inside.append(SVMRange(cur, end, {}))
        for r in inside:
            a = r.attrs
            for t, v in attrs:
                if t == SVM_ATTR_SET_FLAGS:
                    a[SVM_ATTR_SET_FLAGS] = a.get(SVM_ATTR_SET_FLAGS, 0) | v
                elif t == SVM_ATTR_CLR_FLAGS:
                    a[SVM_ATTR_SET_FLAGS] = a.get(SVM_ATTR_SET_FLAGS, 0) & ~v
                elif t in (SVM_ATTR_ACCESS, SVM_ATTR_ACCESS_IN_PLACE, SVM_ATTR_NO_ACCESS):
                    a.setdefault("access", {})[v] = t
                else:
                    a[t] = v
        self.svm_ranges = sorted(keep + inside, key=lambda r: r.start)

    def _svm_get(self, start: int, size: int, attrs: list[tuple[int, int]]
                 ) -> list[tuple[int, int]]:
        end = start + size
        rs = [r for r in self.svm_ranges if r.start < end and start < r.end]
        out = []
        for t, v in attrs:
            if t in (SVM_ATTR_PREFERRED_LOC, SVM_ATTR_PREFETCH_LOC):
                vals = {r.attrs.get(t, SVM_LOCATION_UNDEFINED) for r in rs}
                out.append((t, vals.pop() if len(vals) == 1 else SVM_LOCATION_UNDEFINED))
            elif t == SVM_ATTR_SET_FLAGS:
                flags = ~0 & 0xFFFF_FFFF
                for r in rs:
                    flags &= r.attrs.get(SVM_ATTR_SET_FLAGS, 0)
                out.append((t, flags if rs else 0))
            elif t == SVM_ATTR_GRANULARITY:
                out.append((t, min((r.attrs.get(t, 9) for r in rs), default=9)))
            elif t in (SVM_ATTR_ACCESS, SVM_ATTR_ACCESS_IN_PLACE, SVM_ATTR_NO_ACCESS):
                kinds = {r.attrs.get("access", {}).get(v, SVM_ATTR_NO_ACCESS) for r in rs}
                out.append((kinds.pop() if len(kinds) == 1 else SVM_ATTR_NO_ACCESS, v))
            else:
                out.append((t, v))
        return out

    def _svm_always_mapped(self, pdd: ProcessDevice, addr: int, size: int) -> bool:
        """kfd_queue_buffer_svm_get: SVM ranges with GPU_ALWAYS_MAPPED and access cover it."""
        end = addr + size
        cur = addr
        for r in sorted(self.svm_ranges, key=lambda r: r.start):
            if r.end <= cur or r.start > cur:
                continue
            acc = r.attrs.get("access", {}).get(pdd.gpu_id)
            if acc not in (SVM_ATTR_ACCESS, SVM_ATTR_ACCESS_IN_PLACE):
                return False
            if not r.attrs.get(SVM_ATTR_SET_FLAGS, 0) & SVM_FLAG_GPU_ALWAYS_MAPPED:
                return False
            cur = r.end
            if cur >= end:
                return True
        return False

    # -- hooks called by the simulated hardware (facts §4) -----------------------------------
    def signal_interrupt(self, device, source: str, ctx_id: int) -> None:
        """An interrupt from `device` for this process: CP EOP (RELEASE_MEM int_sel), SDMA
        TRAP or SQ s_sendmsg, carrying `ctx_id` (I2-I4)."""
        if not self.alive:
            return
        gc = device.target.gc_version
        ih = INTERRUPT_CLASSES.get(gc[0])
        if ih is None:
            raise ValueError(f"no KFD interrupt handler modelled for GC {gc} "
                             f"(known: v{', v'.join(map(str, INTERRUPT_CLASSES))})")
        bits = ih.id_bits.get(source)
        if bits is None:
            raise ValueError(f"unknown interrupt source {source!r} "
                             f"(expected one of {', '.join(ih.id_bits)})")
        if (source == "cp_eop" and ctx_id == 0 and ih.drops_zero_eop_from is not None
                and gc >= ih.drops_zero_eop_from):
            return                                    # I2: dropped in the ISR
        self.events.signal_interrupt(ctx_id & ((1 << bits) - 1), bits)

    def vm_fault(self, device, fault: VMFault) -> None:
        """I6: evict the process's queues on `device` for good (kfd_dqm_evict_pasid; queues
        created later on it start evicted too), set every MEMORY event with the data.

        Called from an engine thread, so it takes no process lock (DESTROY_QUEUE holds it
        while waiting for that engine); create_queue re-reads pdd.evicted after publishing
        the queue (and only ever sets the flag), so a queue created concurrently is evicted by
        one side or the other."""
        if not self.alive:
            return
        self.faults.append(fault)
        self.pdd_by_id(device.gpu_id).evicted = True
        for q in list(self.queues.values()):
            if q.device is device:
                q.evicted = True
        device.engine.evict(self)
        not_present = fault.reason == "not_present"
        read_only = fault.reason == "read_only"
        # kfd_int_process_v9/v11: NotPresent = prot_valid, ReadOnly = prot_write, NoExecute =
        # prot_exec (never set by these handlers, so an execute fault has no reason bit;
        # VERSION: a 2026 patch reads prot_exec in the v10 handler only), imprecise 0,
        # ErrorType 0; va = the fault page.
        data = struct.pack("<4IQII", int(not_present), int(read_only), 0, 0,
                           fault.address & ~(PAGE_SIZE - 1), device.gpu_id, 0)
        self.events.signal_type(EV_MEMORY, memory_data=data)

    def hw_exception(self, device, queue, reason: str) -> None:
        """A queue-level hardware exception (bad packet, illegal instruction, trap): the queue
        stops; every HW_EXCEPTION event is set. KFD's kfd_signal_hw_exception_event passes no
        data; the simulator fills {reset_type PER_ENGINE, reset_cause GPU_HANG, memory_lost 0,
        gpu_id} so the runtime can name the GPU (simulator choice)."""
        if not self.alive:
            return
        if queue is not None:
            queue.hw_exception = reason
        log.info("HW exception on gpu %#x queue %s: %s", device.gpu_id,
                 getattr(queue, "queue_id", "?"), reason)
        data = struct.pack("<4I", int(lib.KFD_HW_EXCEPTION_PER_ENGINE_RESET),
                           int(lib.KFD_HW_EXCEPTION_GPU_HANG), 0, device.gpu_id)
        self.events.signal_type(EV_HW_EXCEPTION, hw_data=data)

    # -- lifetime -------------------------------------------------------------------------------
    def teardown(self) -> None:
        """kfd_process_wq_release: queues, events, BOs, VMs, doorbells (1.8)."""
        with self.lock:
            if not self.alive:
                return
            self.alive = False
            for q in list(self.queues.values()):
                try:
                    self._teardown_queue(q)
                except Exception:  # keep tearing down; the engine logs its own errors
                    log.exception("tearing down queue %s", q)
            self.events.teardown()
            self.memory.teardown()
            for pdd in self.pdds:
                if pdd.doorbell_backing is not None:
                    pdd.doorbell_backing.close()
                    pdd.doorbell_backing = None
                if pdd.drm_file is not None:
                    pdd.drm_file.vm_owner = None
                    pdd.drm_file = None
            self.svm_ranges.clear()

    # -- introspection (tests and invariants) ---------------------------------------------------
    def live_bos(self, *, include_kernel: bool = False) -> list[BufferObject]:
        """The process's memory objects (by default without the driver's own IB/CWSR pages)."""
        with self.lock:
            return [bo for bo in self.memory.all_bos() if include_kernel or not bo.kernel]

    def live_queues(self) -> list[SimQueue]:
        with self.lock:
            return list(self.queues.values())

    def live_events(self) -> list:
        return list(self.events.snapshot().values())

    def check_invariants(self) -> None:
        """Raise AssertionError if the driver's bookkeeping is inconsistent."""
        with self.lock:
            for pdd in self.pdds:
                vm_maps = {id(m) for m in pdd.vm.mappings()}
                bo_maps = set()
                for bo in self.memory.all_bos():
                    ms = bo.mappings.get(pdd.gpu_id, ())
                    assert pdd.gpu_id not in bo.mappings or ms, f"{bo}: empty attachment list"
                    assert {m.start for m in ms} <= set(bo.attachment_vas), f"{bo} mapped at {ms}"
                    for m in ms:
                        bo_maps.add(id(m))
                        assert m.bo is bo and not bo.freed, f"{m} points at a freed BO"
                assert vm_maps == bo_maps, f"VM of {pdd} and BO mappings disagree"
                ms = sorted(pdd.vm.mappings(), key=lambda m: m.start)
                for a, b in itertools.pairwise(ms):
                    assert a.end <= b.start, f"{a} overlaps {b}"
                for idr, bo in pdd.bos.items():
                    assert bo.idr == idr and bo.handle == (pdd.gpu_id << 32 | idr)
                qs = [q for q in self.queues.values() if q.pdd is pdd]
                assert pdd.queue_count == len(qs), "queue_count disagrees with the queues"
                assert set(pdd.doorbell_queues.values()) == set(qs)
                assert pdd.doorbell_ids == {q.doorbell_index for q in qs}
                refs: dict[int, int] = {}
                for q in qs:
                    for m in q.buffers:
                        refs[id(m)] = refs.get(id(m), 0) + 1
                for m in pdd.vm.mappings():
                    assert m.queue_refcount == refs.get(id(m), 0), f"{m} queue refcount"
            for qid, q in self.queues.items():
                assert q.queue_id == qid and not q.destroyed
            ev = self.events.snapshot()
            n_signal = sum(1 for e in ev.values() if e.type in (0, 5))
            assert self.events.signal_event_count == n_signal + 1, "signal_event_count"


def _reserved_doorbell(i: int) -> bool:
    lo, hi = NON_CP_DOORBELLS
    j = i % DOORBELL_MIRROR_OFFSET
    return lo <= j <= hi
