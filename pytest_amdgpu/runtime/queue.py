"""User-mode queues: `PM4Queue` (compute, PM4), `AQLQueue` (compute, AQL) and `SDMAQueue`.

`create_queue` allocates what CREATE_QUEUE insists on (facts-kfd.md §2.6 row 13/14, §5): a ring
BO of exactly ``ring_size`` bytes, the read/write pointers in a page-sized GTT BO of their own
(for AQL, inside the ``amd_queue_t``: read_dispatch_id at +128, write_dispatch_id at +56),
and for compute queues an EOP buffer and a context-save area of the sizes the driver computes
for the node (`targets.queue_sizes`). The process's doorbell slice of the GPU is mapped once
(§3 M3-M5) and the queue's doorbell sits at ``doorbell_offset & (slice - 1)`` in it.

The ring writer never overwrites packets the engine has not consumed: it computes the free
space from the read pointer the engine writes back (one slot is kept free, so full and empty
differ) and waits, with a deadline, for room. Packets are never split at the ring's end: the
rest of the ring is padded with NOPs (PM4 NOP packets; SDMA NOP packets) first. AQL rings need
no padding (64-byte slots). Doorbell values (CONTRACTS part E, facts-sdma-aql-codeobj §1.5,
§2.6): PM4 — the 64-bit monotonic write pointer in dwords; SDMA — the same in bytes; AQL — the
index of the last packet published, after its header was stored with release semantics.
"""

from __future__ import annotations

import bisect
import errno as _errno
import itertools
import logging
import threading
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import GPUTimeoutError, PacketError, UsageError
from ..kfd import _syscall
from ..kfd.abi import lib
from ..kfd.errors import KFDError
from ..packets import aql as _aql
from ..packets import pm4 as _pm4
from ..packets import sdma as _sdma
from ..targets import queue_sizes
from ._util import (
    PAGE_SIZE,
    check_int,
    is_pow2,
    load64,
    read_bytes,
    resolve_timeout,
    store64,
)
from .memory import Buffer
from .signal import CONDITIONS, Signal, check_condition, wait_until

if TYPE_CHECKING:
    from .device import Device

__all__ = [
    "AQLQueue", "Completion", "DEFAULT_RING_SIZE", "PM4Queue", "QUEUE_KINDS", "Queue",
    "SDMAQueue", "create_queue",
]

log = logging.getLogger("pytest_amdgpu.runtime")

DEFAULT_RING_SIZE = 64 * 1024
MIN_RING_SIZE = int(lib.KFD_MIN_QUEUE_RING_SIZE)        # 1024 (kfd_ioctl.h)
RPTR_OFFSET = 0                                          # in the PM4/SDMA pointer page
WPTR_OFFSET = 64                                         # own cache line

# The cache actions of a signal-writing RELEASE_MEM, per RELEASE_MEM form: what the kernel's
# fence emits (gfx_v9_0_ring_emit_fence: TCL1 | TC | TC_WB | TC_MD at CACHE_FLUSH_AND_INV_TS
# EOP; gfx_v11_0_ring_emit_fence: GCR SEQ | GL2_WB | GLM_INV | GLM_WB, cache policy 3;
# facts-pm4.md §3.3). Data keyed by Target.release_mem_form.
RELEASE_CACHE_FIELDS: dict[str, dict[str, int]] = {
    "gfx9": {"tcl1_action_en": 1, "tc_action_en": 1, "tc_wb_action_en": 1,
             "tc_md_action_en": 1},
    "gfx10": {"gcr_seq": 1, "gcr_gl2_wb": 1, "gcr_glm_inv": 1, "gcr_glm_wb": 1,
              "cache_policy": 3},
}
_COND_FUNCTION = {"<": 1, "<=": 2, "==": 3, "!=": 4, ">=": 5, ">": 6}   # WAIT_REG_MEM FUNCTION
if array("I").itemsize != 4:                                # ring dwords are written as array("I")
    raise ImportError("pytest_amdgpu needs a 4-byte C unsigned int")
_kernel_module: Any = None                                  # runtime.kernel, imported on first use
_MIN_S64, _MAX_U64 = -(1 << 63), (1 << 64) - 1               # what a signal value may be
SPARE_SIGNALS = 4            # completion signals a queue keeps for its next dispatches


def _u32_reference(what: str, value: int) -> int:
    value = check_int("value", value)
    if not 0 <= value <= 0xFFFFFFFF:
        raise UsageError(f"{what} compares 32 bits (the low dword of the signal value); value "
                         f"{value:#x} does not fit — use values below 2**32 for GPU waits")
    return value


class Completion:
    """What `Queue.dispatch` returns: `wait` until the GPU finished the dispatch."""

    def __init__(self, queue: Queue, signal: Signal, value: int, cond: str, *,
                 owns_signal: bool, what: str = "") -> None:
        self.queue = queue
        self._signal: Signal | None = signal
        self.value = value
        self.cond = cond
        self.owns_signal = owns_signal
        self.what = what
        self._done = False

    @property
    def signal(self) -> Signal:
        """The completion signal. A completion's own signal is handed back to its queue for
        the next dispatch once `wait` saw it complete; it cannot be used after that."""
        sig = self._signal
        if sig is None:
            raise UsageError(f"Completion.signal: the own signal of {self!r} went back to its "
                             "queue after wait(); pass signal= to dispatch to keep a signal")
        return sig

    @property
    def done(self) -> bool:
        """Whether the completion condition holds now (does not wait; True once its signal
        was released)."""
        sig = self._signal
        if self._done or sig is None or sig.freed:
            return True
        return CONDITIONS[self.cond](sig.value, self.value)

    def wait(self, timeout: float | None = None) -> Completion:
        """Wait (default 10 s) until the work completed; raises GPUTimeoutError /
        GPUFaultError like `Signal.wait`. Releases the completion's own signal afterwards."""
        if not self._done:
            self._signal.wait(self.value, cond=self.cond, timeout=timeout)
            self._done = True
            self.release()
        return self

    def release(self) -> None:
        """Let go of the completion's own signal: back to the queue when the work is known
        complete (nothing on the GPU writes it any more), freed otherwise."""
        sig = self._signal
        if self.owns_signal and sig is not None and not sig.freed:
            if self._done:
                self._signal = None
                self.queue._recycle_signal(sig)
            else:
                sig.free()
        self.queue._completions.discard(self)

    def __repr__(self) -> str:
        return (f"<Completion {self.what or 'work'} on {self.queue.describe()}: signal "
                f"{self.cond} {self.value}{' done' if self._done else ''}>")


class Queue:
    """Base of the three queue kinds: creation, pointers, doorbell, lifetime, reports."""

    live_kind: ClassVar[str] = "queue"      # Device.live_objects() kind
    kind: ClassVar[str] = ""
    unit: ClassVar[str] = ""                 # pointer unit: "dwords", "bytes", "packets"
    compute: ClassVar[bool] = True
    reserve: ClassVar[int] = 1               # units kept free so a full ring != an empty one

    def __init__(self, device: Device, *, ring_size: int, priority: int, percentage: int,
                 sdma_engine: int | None, owner: object) -> None:
        self.device = device
        self.process = device.process
        self.target = device.target
        self.owner = owner
        self.ring_size = ring_size
        self.priority = priority
        self.percentage = percentage
        self.sdma_engine = sdma_engine
        self.submit_timeout: float | None = None
        self.queue_id = -1
        self.doorbell_offset = 0
        self.doorbell_address = 0
        self._lock = threading.RLock()
        self._destroyed = False
        self._disabled_percentage: int | None = None
        self._ring_attached = True
        self._wptr = 0
        self._consumed = 0          # read pointer (monotonic, in units) as last read back
        self._dispatch_state: Any = None    # runtime.kernel's per-queue state
        self._buffers: list[Buffer] = []
        self._signals: list[Signal] = []
        self._completions: set[Completion] = set()
        self._spare_signals: list[Signal] = []    # completion signals to use again
        self.eop: Buffer | None = None
        self.ctx_save: Buffer | None = None
        try:
            self.ring = self._internal(ring_size, "gtt", "ring", executable=True)
            self._setup_pointers()
            self._capacity = self.ring_units - self.reserve
            kw = self._compute_buffers() if self.compute else {}
            info = self.process.kfd.create_queue(
                gpu_id=device.gpu_id, queue_type=self._queue_type(), ring_base=self.ring.gpu_address,
                ring_size=ring_size, write_pointer=self.wptr_address,
                read_pointer=self.rptr_address, percentage=percentage, priority=priority,
                sdma_engine_id=sdma_engine, **kw)
            self.queue_id = info.queue_id
            self.doorbell_offset = info.doorbell_offset
            try:
                self.doorbell_address = self.process.doorbell_address(device.gpu_id,
                                                                      info.doorbell_offset)
                self._finish_setup()
            except BaseException:
                self.process.kfd.destroy_queue(queue_id=info.queue_id)
                raise
        except BaseException:
            self._free_buffers()
            raise

    def _finish_setup(self) -> None:
        """Hook run after CREATE_QUEUE succeeded."""

    # -- set-up ---------------------------------------------------------------------------
    def _internal(self, size: int, location: str, what: str, **kw: Any) -> Buffer:
        buf = self.device._alloc_internal(size, location, f"{self.kind} queue {what}", **kw)
        self._buffers.append(buf)
        return buf

    def _setup_pointers(self) -> None:
        page = self._internal(PAGE_SIZE, "gtt", "read/write pointers", uncached=True,
                              coherent=True)
        page.view(np.uint8)[:] = 0
        self.pointers = page
        self.rptr_address = page.gpu_address + RPTR_OFFSET
        self.wptr_address = page.gpu_address + WPTR_OFFSET

    def _compute_buffers(self) -> dict:
        n = self.device.node
        sizes = queue_sizes(self.target, simd_count=n.simd_count, simd_per_cu=n.simd_per_cu,
                            num_xcc=n.num_xcc, array_count=n.array_count,
                            simd_arrays_per_engine=n.simd_arrays_per_engine)
        self.sizes = sizes
        self.eop = self._internal(sizes.eop_buffer_size, "vram", "EOP buffer", cpu_access=False)
        self.ctx_save = self._internal(sizes.ctx_save_bo_size, "gtt", "context-save area",
                                       cpu_access=False)
        return {"eop_buffer_address": self.eop.gpu_address,
                "eop_buffer_size": sizes.eop_buffer_size,
                "ctx_save_restore_address": self.ctx_save.gpu_address,
                "ctx_save_restore_size": sizes.cwsr_size,
                "ctl_stack_size": sizes.ctl_stack_size}

    def _queue_type(self) -> int:
        raise NotImplementedError

    def _free_buffers(self) -> list[str]:
        """Free the queue's own signals and buffers; returns what failed."""
        failures = []
        while self._spare_signals:
            self._spare_signals.pop().free()
        for sig in self._signals:
            try:
                sig.free()
            except Exception as exc:
                failures.append(f"{sig.describe()}: {exc}")
        self._signals.clear()
        for buf in reversed(self._buffers):
            try:
                buf.free()
            except Exception as exc:
                failures.append(f"{buf.describe()}: {exc}")
        self._buffers.clear()
        return failures

    # -- description --------------------------------------------------------------------------
    def __repr__(self) -> str:
        state = " destroyed" if self._destroyed else ""
        return (f"<{type(self).__name__} id={self.queue_id} ring={self.ring_size:#x} bytes on "
                f"{self.device.describe()}{state}>")

    def describe(self) -> str:
        return f"{self.kind.upper()} queue {self.queue_id} on {self.device.describe()}"

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    closed = destroyed

    # -- pointers ---------------------------------------------------------------------------
    @property
    def ring_units(self) -> int:
        """Ring capacity in pointer units."""
        raise NotImplementedError

    @property
    def write_pointer(self) -> int:
        """The write pointer this runtime published (monotonic, in `unit`)."""
        return self._wptr

    @property
    def raw_read_pointer(self) -> int:
        """The read pointer as the engine wrote it back (PM4: 32-bit dwords, wrapping at the
        ring size, kfdtest PM4Queue::Rptr; SDMA: 64-bit bytes; AQL: read_dispatch_id)."""
        return load64(self.rptr_address)

    @property
    def read_pointer(self) -> int:
        """The engine's read pointer as a monotonic value in `unit` (consumed so far)."""
        return self._wptr - self._used()

    def _used(self) -> int:
        # right for the PM4 CP's 32-bit read pointer that wraps at the ring size and for a
        # 64-bit count alike: ring_units is a power of two dividing 2**32
        return (self._wptr - load64(self.rptr_address)) % self.ring_units

    @property
    def pending(self) -> int:
        """Units written but not yet consumed by the engine."""
        return self._used()

    @property
    def enabled(self) -> bool:
        return self._ring_attached and self.percentage > 0

    # -- reports ----------------------------------------------------------------------------
    def state_report(self, before: int = 8, after: int = 8) -> str:
        """Queue id, pointers, state and the decoded ring around the read pointer."""
        try:
            rptr = self.read_pointer
            raw = self.raw_read_pointer
        except Exception as exc:
            return f"{self.describe()}: pointers unreadable ({exc})"
        state = []
        if self._destroyed:
            state.append("destroyed")
        if not self.enabled:
            state.append(f"disabled (percentage {self.percentage}"
                         f"{', no ring' if not self._ring_attached else ''})")
        fault = self.process.faulted(self.device.gpu_id)
        if fault is not None:
            state.append("evicted after a GPU fault")
        state.extend(self._extra_state())
        pending = self._wptr - rptr
        head = (f"{self.describe()}: read pointer {rptr:#x} (raw {raw:#x}), write pointer "
                f"{self._wptr:#x} ({self.unit}), {pending} {self.unit} pending, ring "
                f"{self.ring_size:#x} bytes at {self.ring.gpu_address:#x}, doorbell "
                f"{self.doorbell_address:#x}")
        if state:
            head += " [" + ", ".join(state) + "]"
        if self._destroyed:
            return head
        return head + "\n" + self.dump_ring(before, after)

    def dump_ring(self, before: int = 8, after: int = 8) -> str:
        """The ring decoded around the read pointer (``=>`` marks it)."""
        raise NotImplementedError

    def _extra_state(self) -> list[str]:
        return []

    # -- space and publishing -------------------------------------------------------------------
    def _check_usable(self, what: str) -> None:
        if self._destroyed:
            raise UsageError(f"{type(self).__name__}.{what}: {self.describe()} was destroyed")

    def _wait_space(self, needed: int) -> None:
        """Wait until `needed` units are free (one unit always stays free).

        The read pointer only grows, so the free space the last read of it showed is a lower
        bound: the engine's pointer is read again only when that bound is not enough."""
        capacity = self._capacity
        if needed > capacity:
            raise UsageError(f"{self.describe()}: {needed} {self.unit} do not fit a ring of "
                             f"{capacity} usable {self.unit}; create the queue with a larger "
                             "ring_size")
        if capacity - (self._wptr - self._consumed) >= needed:
            return
        used = self._used()
        self._consumed = self._wptr - used
        if capacity - used >= needed:
            return
        seconds = resolve_timeout(self.submit_timeout)
        wait_until(self._used, lambda used: capacity - used >= needed, timeout=seconds,
                   process=self.process, gpu_ids=[self.device.gpu_id],
                   on_timeout=lambda used, t: GPUTimeoutError(
                       f"{self.describe()}: the ring stayed full for {t:g} s ({used} of "
                       f"{self.ring_units} {self.unit} unconsumed, {needed} needed); the engine "
                       "is not consuming packets", queue=self, details=self.state_report()),
                   context=self.state_report)

    # -- control ----------------------------------------------------------------------------
    def update(self, *, percentage: int | None = None, priority: int | None = None,
               ring: Buffer | int | None = None) -> None:
        """UPDATE_QUEUE: change percentage / priority; ``ring=0`` detaches the ring (the queue
        goes inactive, like ``percentage=0``), ``ring=queue.ring`` attaches it again."""
        self._check_usable("update")
        pct = self.percentage if percentage is None else percentage
        prio = self.priority if priority is None else priority
        if ring is None:
            attached = self._ring_attached
        elif isinstance(ring, Buffer):
            if ring is not self.ring:
                raise UsageError("Queue.update: ring must be None, 0 (detach) or this queue's "
                                 "own ring buffer (re-attach)")
            attached = True
        elif ring == 0:
            attached = False
        else:
            raise UsageError(f"Queue.update: ring must be None, 0 or queue.ring, got {ring!r}")
        base, size = (self.ring.gpu_address, self.ring_size) if attached else (0, 0)
        with self._lock:
            self.process.kfd.update_queue(queue_id=self.queue_id, ring_base=base, ring_size=size,
                                          percentage=pct, priority=prio)
            self.percentage, self.priority, self._ring_attached = pct, prio, attached

    def disable(self) -> None:
        """Make the queue inactive (UPDATE_QUEUE with percentage 0); `enable` restores it."""
        if self.percentage:
            self._disabled_percentage = self.percentage
        self.update(percentage=0)

    def enable(self) -> None:
        """Re-activate the queue after `disable` or a detached ring, and ring its doorbell."""
        self.update(percentage=self._disabled_percentage or self.percentage or 100,
                    ring=self.ring)
        self._disabled_percentage = None
        with self._lock:
            self._ring_doorbell()

    def set_cu_mask(self, mask: int | Sequence[int]) -> None:
        """SET_CU_MASK: an int (bit i = CU i) or u32 words; padded to whole 32-bit words
        covering every CU of the node."""
        self._check_usable("set_cu_mask")
        cus = max(self.device.node.cu_count, 1)
        nwords = (cus + 31) // 32
        if isinstance(mask, (int, np.integer)) and not isinstance(mask, bool):
            m = int(mask)
            if m < 0:
                raise UsageError(f"set_cu_mask: mask {m} is negative")
            nwords = max(nwords, (m.bit_length() + 31) // 32)
            words = [(m >> (32 * i)) & 0xFFFFFFFF for i in range(nwords)]
        else:
            words = [check_int("mask word", w, minimum=0, maximum=0xFFFFFFFF) for w in mask]
            if not words:
                raise UsageError("set_cu_mask: the mask is empty")
        self.process.kfd.set_cu_mask(queue_id=self.queue_id, mask=words)
        self.cu_mask = words

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until the engine consumed (fetched) everything written: read pointer == write
        pointer. Fetched is not finished — wait on a signal for that. GPUTimeoutError with the
        queue state otherwise."""
        self._check_usable("wait_idle")
        seconds = resolve_timeout(timeout)
        wait_until(self._used, lambda used: used == 0, timeout=seconds, process=self.process,
                   gpu_ids=[self.device.gpu_id],
                   on_timeout=lambda used, t: GPUTimeoutError(
                       f"{self.describe()} did not go idle within {t:g} s ({used} {self.unit} "
                       "unconsumed)", queue=self, details=self.state_report()),
                   context=self.state_report)

    def _ring_doorbell(self) -> None:
        raise NotImplementedError

    # -- kernels ----------------------------------------------------------------------------
    def dispatch(self, kernel: Any, grid: int | Sequence[int], block: int | Sequence[int],
                 args: Any = (), *, signal: Signal | None = None, **options: Any) -> Completion:
        """Launch `kernel` over `grid` work-items per dimension (the HSA convention: partial
        workgroups are allowed) in workgroups of `block`; returns a Completion to `wait` on.

        The kernarg segment and the packets (an AQL dispatch packet, or the PM4 register
        sequence) come from `pytest_amdgpu.runtime.kernel`.
        """
        if self._destroyed:
            self._check_usable("dispatch")
        global _kernel_module
        if _kernel_module is None:
            from . import kernel as _kernel_module
        if options:
            return _kernel_module.dispatch(self, kernel, grid, block, args, signal=signal,
                                           **options)
        return _kernel_module.dispatch(self, kernel, grid, block, args, signal=signal)

    def _completion_signal(self, signal: Signal | None, initial: int) -> tuple[Signal, bool]:
        if signal is not None:
            return signal, False
        spare = self._spare_signals
        if spare:
            sig = spare.pop()
            sig._rearm(initial)
            return sig, True
        return Signal(self.device, initial, owner=self, internal=True), True

    def _recycle_signal(self, sig: Signal) -> None:
        """Keep a completion signal whose work completed for the next dispatch (a new
        signal costs a slot allocation and an image write)."""
        if self._destroyed or len(self._spare_signals) >= SPARE_SIGNALS:
            sig.free()
        else:
            self._spare_signals.append(sig)

    # -- lifetime ---------------------------------------------------------------------------
    def destroy(self) -> None:
        """DESTROY_QUEUE and free the queue's buffers. Idempotent.

        A hung queue is torn down by the driver even when it reports ETIME/EIO (facts-kfd.md
        §2.7); that is logged, not raised.
        """
        with self._lock:
            if self._destroyed:
                return
            kfd = self.process.kfd
            if not kfd.closed:
                try:
                    kfd.destroy_queue(queue_id=self.queue_id)
                except KFDError as exc:
                    if exc.errno not in (_errno.ETIME, _errno.EIO, _errno.ETIMEDOUT):
                        raise
                    log.warning("%s: DESTROY_QUEUE reported %s; the queue is gone anyway",
                                self.describe(), exc.errno_name)
            self._destroyed = True
        for completion in list(self._completions):
            completion.release()
        failures = self._free_buffers()
        self.device._forget(self)
        if failures:
            raise UsageError(f"{self.describe()} destroyed, but freeing its buffers failed: "
                             + "; ".join(failures))

    close = destroy

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


# -- dword rings (PM4, SDMA) ------------------------------------------------------------------

def _as_dwords(items: Iterable[Any], target) -> tuple[list[int], list[int]]:
    """Concatenate packets (objects with encode(target)), ints and int sequences to dwords;
    also return each item's length in dwords (packet boundaries for ring dumps)."""
    words: list[int] = []
    lengths: list[int] = []
    for item in items:
        encode = getattr(item, "encode", None)
        if callable(encode):
            part = encode(target)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            part = [int(item) & 0xFFFFFFFF]
        elif isinstance(item, (bytes, bytearray, memoryview)):
            raw = bytes(item)
            if len(raw) % 4:
                raise UsageError(f"{len(raw)} bytes of packet data is not a whole number of "
                                 "dwords")
            part = np.frombuffer(raw, dtype=np.uint32).tolist()
        else:
            arr = np.asarray(item)
            if arr.dtype.kind not in "iu":
                raise UsageError(f"cannot submit {item!r}: pass packets, ints or arrays of "
                                 "dwords")
            part = (arr.astype(np.int64).reshape(-1) & 0xFFFFFFFF).tolist()
        if len(part):
            words.extend(part)
            lengths.append(len(part))
    return words, lengths


def _address_and_size(what: str, name: str, where: Buffer | int, size: int | None
                      ) -> tuple[int, int]:
    """(GPU address, byte count) of a Buffer or an address; `size` defaults to the Buffer's."""
    if size is None:
        if not isinstance(where, Buffer):
            raise UsageError(f"{what}: size is needed when {name} is an address")
        size = where.size
    address = where.gpu_address if isinstance(where, Buffer) else where
    return address, check_int("size", size, minimum=1)


class _ValueTemplate:
    """Encoded packets with a value patched into named fields on each use — the packets a
    queue emits to set a signal, built once per signal. The field positions come from the
    packets' own layouts (packets/*), so the patch cannot disagree with the encoder."""

    def __init__(self, packets: Sequence[Any], target, patches: Sequence[tuple[int, str, int]]):
        """`patches`: (packet index, field name, value shift): the field gets
        ``(value >> shift)`` masked to its width."""
        self.words = array("I")
        self.lengths: list[int] = []
        starts = []
        for p in packets:
            starts.append(len(self.words))
            w = p.encode(target)
            self.words.extend(w)
            self.lengths.append(len(w))
        self.starts = tuple(starts)          # packet starts, in dwords from the first
        self.points = []
        for index, name, shift in patches:
            field = packets[index]._layout(target).by_name[name]
            for part in field.parts:
                self.points.append((starts[index] + part.dw, part.lo, (1 << part.width) - 1,
                                    part.vshift, shift, field.bias))
        # whole dwords without bias (the usual 32/64-bit data fields): (dword, value shift)
        self.whole = [(dw, vshift + shift) for dw, lo, mask, vshift, shift, bias in self.points
                      if lo == 0 and mask == 0xFFFFFFFF and bias == 0]
        if len(self.whole) != len(self.points):
            self.whole = None
        self._last: tuple[int, array] | None = None     # (value, words) rendered last

    def render(self, value: int) -> array:
        """The packets' dwords with `value` patched in (the same array for the same value
        as the last call: callers copy, never modify it)."""
        last = self._last
        if last is not None and last[0] == value:
            return last[1]
        words = self._render(value)
        self._last = (value, words)
        return words

    def _render(self, value: int) -> array:
        words = self.words[:]
        if self.whole is not None:
            for dw, shift in self.whole:
                words[dw] = (value >> shift) & 0xFFFFFFFF
            return words
        for dw, lo, mask, vshift, shift, bias in self.points:
            v = (((value >> shift) - bias) >> vshift) & mask
            words[dw] = (words[dw] & ~(mask << lo)) | (v << lo)
        return words


class _DwordRing(Queue):
    """Shared ring writer of PM4 and SDMA queues (dword packets, monotonic pointers)."""

    bytes_per_unit: ClassVar[int] = 4
    HISTORY = 4096                       # packet start positions kept for ring dumps

    def _setup_pointers(self) -> None:
        super()._setup_pointers()
        self._words = self.ring.view(np.uint32)
        self._ring_u32 = self.ring._bytes().cast("I")     # the writer's view: plain memcpy
        self._ring_dw = self.ring_size // 4
        # packet starts for ring dumps, per submission: (monotonic dword position, the
        # packets' dword offsets from it)
        self._starts: deque[tuple[int, Sequence[int]]] = deque(maxlen=self.HISTORY)
        self._templates: dict[tuple[int, int | None], _ValueTemplate] = {}

    @property
    def ring_units(self) -> int:
        return self.ring_size // self.bytes_per_unit

    def _nop(self, ndw: int) -> list[int]:
        raise NotImplementedError

    def submit(self, *packets: Any) -> int:
        """Write packets (packet objects, dwords, arrays of dwords) to the ring and ring the
        doorbell; returns the write pointer after them (in `unit`)."""
        self._check_usable("submit")
        words, lengths = _as_dwords(packets, self.target)
        return self._submit_words(words, (0, tuple(itertools.accumulate(lengths[:-1],
                                                                        initial=0))))

    def _submit_words(self, words: list[int] | array,
                      *groups: tuple[int, Sequence[int]]) -> int:
        """Write `words` at the write pointer, padding the ring's end with NOPs first when they
        do not fit before it, and ring the doorbell. `groups`: (dword offset in `words`, the
        dword offsets of packets from there), for ring dumps."""
        n = len(words)
        if n == 0:
            return self._wptr
        if type(words) is not array:
            words = array("I", words)
        per_dw = 4 // self.bytes_per_unit            # units per dword
        with self._lock:
            wptr = self._wptr
            pos = (wptr // per_dw) % self._ring_dw
            if pos + n > self._ring_dw:
                pad = self._ring_dw - pos
                self._wait_space(pad * per_dw)
                self._write_nops(pos, pad)
                self._wptr += pad * per_dw
                self._ring_doorbell()
                wptr = self._wptr
                pos = 0
            if self._capacity - (wptr - self._consumed) < n * per_dw:
                self._wait_space(n * per_dw)
            self._ring_u32[pos:pos + n] = words
            base = wptr // per_dw
            for offset, starts in groups:
                self._starts.append((base + offset, starts))
            self._wptr = wptr = wptr + n * per_dw
            _syscall.store64(self.wptr_address, wptr)
            self.process.port.doorbell(self.doorbell_address, wptr)
            return wptr

    def _signal_template(self, signal: Signal) -> _ValueTemplate:
        event = signal.event
        key = (signal.address, None if event is None else event.event_id)
        tpl = self._templates.get(key)
        if tpl is None:
            if len(self._templates) >= 256:
                self._templates.clear()
            tpl = self._build_signal_template(signal)
            self._templates[key] = tpl
        return tpl

    def _build_signal_template(self, signal: Signal) -> _ValueTemplate:
        raise NotImplementedError

    def signal(self, signal: Signal, value: int) -> int:
        """Set `signal` to the 64-bit `value` once the preceding packets are done (PM4:
        RELEASE_MEM at end of pipe; SDMA: two FENCEs), interrupting for an interrupt signal."""
        self._check_usable("signal")
        tpl, words = self._signal_words(signal, value)
        return self._submit_words(words, (0, tpl.starts))

    def _signal_words(self, signal: Signal, value: int) -> tuple[_ValueTemplate, array]:
        """The checked packets `signal(signal, value)` submits, and their template."""
        if type(value) is not int or not _MIN_S64 <= value <= _MAX_U64:
            value = check_int("value", value, minimum=_MIN_S64, maximum=_MAX_U64)
        if signal._freed:
            raise UsageError(f"{type(self).__name__}.signal: {signal.describe()} was freed")
        tpl = self._signal_template(signal)
        signal._submitted_on(self)
        return tpl, tpl.render(value & _MAX_U64)

    def _submit_with_signal(self, words: array, starts: Sequence[int], signal: Signal,
                            value: int) -> int:
        """Submit `words` (packets starting at `starts`) followed by what `signal(signal,
        value)` submits — checked first, so nothing is written when it would fail — with one
        doorbell (a kernel dispatch and its completion)."""
        if self._destroyed:
            self._check_usable("submit")
        tpl, tail = self._signal_words(signal, value)
        return self._submit_words(words + tail, (0, starts), (len(words), tpl.starts))

    def _write_nops(self, pos: int, count: int) -> None:
        self._starts.append((self._wptr // (4 // self.bytes_per_unit),
                             tuple(range(0, count, 0x4000))))
        while count:
            chunk = min(count, 0x4000)
            self._words[pos:pos + chunk] = self._nop(chunk)
            pos += chunk
            count -= chunk

    def _ring_doorbell(self) -> None:
        store64(self.wptr_address, self._wptr)
        self.process.port.doorbell(self.doorbell_address, self._wptr)

    def _segments(self, before: int, after: int) -> tuple[list[tuple[int, np.ndarray]], int]:
        """Ring pieces [(ring dword offset, dwords)] from `before` packets before the read
        pointer to `after` packets after it (never past the write pointer), split where the
        ring wraps; and the read pointer's ring dword offset."""
        per_dw = 4 // self.bytes_per_unit
        r = self.read_pointer // per_dw
        w = self._wptr // per_dw
        oldest = max(w - self._ring_dw, 0)
        starts = [x for base, rel in self._starts for x in map(base.__add__, rel)
                  if x >= oldest]
        i = bisect.bisect_right(starts, r) - 1
        lo = max(r, oldest) if i < 0 else starts[max(i - before, 0)]
        hi = w
        if r < w and 0 <= i + 1 + after < len(starts):
            hi = min(starts[i + 1 + after], w)
        pieces = []
        while lo < hi:
            off = lo % self._ring_dw
            count = min(hi - lo, self._ring_dw - off)
            pieces.append((off, np.array(self._words[off:off + count])))
            lo += count
        return pieces, r % self._ring_dw

    def _format(self, words: np.ndarray, offset: int, mark: int | None) -> str:
        raise NotImplementedError

    def dump_ring(self, before: int = 8, after: int = 8) -> str:
        """The ring decoded from `before` packets before the read pointer (marked ``=>``) to
        `after` packets after it, up to the write pointer."""
        if self._wptr == 0:
            return "   (ring empty: nothing submitted yet)"
        pieces, mark = self._segments(before, after)
        if not pieces:
            return f"   (nothing to show around read pointer {mark:#x})"
        # the mark goes to the piece holding it, else to the last (it is then after it)
        marked = next((k for k, (o, ws) in enumerate(pieces) if o <= mark < o + len(ws)),
                      len(pieces) - 1)
        out = []
        for k, (off, words) in enumerate(pieces):
            try:
                out.append(self._format(words, off, mark if k == marked else None))
            except PacketError as exc:
                out.append(f"   (ring not decodable: {exc})")
        return "\n   -- ring wraps to offset 0 --\n".join(out)


class PM4Queue(_DwordRing):
    """A compute queue fed PM4 type-3 packets (KFD queue type COMPUTE)."""

    kind = "pm4"
    unit = "dwords"

    def _queue_type(self) -> int:
        return int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE)

    def _nop(self, ndw: int) -> list[int]:
        return _pm4.Nop.of_size(ndw, fill=_pm4.PM4_NOP_1DW).encode(self.target)

    def _format(self, words: np.ndarray, offset: int, mark: int | None) -> str:
        return _pm4.format_stream(words, self.target, start_offset=offset, mark=mark)

    # -- typed helpers --------------------------------------------------------------------------
    def nop(self, ndw: int = 1) -> int:
        """A NOP of `ndw` dwords."""
        return self.submit(_pm4.Nop.of_size(check_int("ndw", ndw, minimum=1)))

    def write_data(self, addr: int, data: int | Sequence[int], *, wr_confirm: bool = True,
                   **fields: Any) -> int:
        """WRITE_DATA of dwords to memory at `addr`."""
        values = (data,) if isinstance(data, (int, np.integer)) else tuple(data)
        return self.submit(_pm4.WriteData(addr=addr, data=values, wr_confirm=int(wr_confirm),
                                          **fields))

    def release_mem(self, addr: int = 0, data: int = 0, *, data_sel: int | str = "64bit",
                    int_sel: int | str = "none", int_ctxid: int = 0, **fields: Any) -> int:
        """RELEASE_MEM at end of pipe with this target's cache flush (write data, a timestamp
        with ``data_sel="gpu_clock"``, and/or an interrupt)."""
        return self.submit(self._release(addr, data, data_sel, int_sel, int_ctxid, **fields))

    def _release(self, addr: int, data: int, data_sel: int | str, int_sel: int | str,
                 int_ctxid: int, **fields: Any) -> _pm4.ReleaseMem:
        kw = dict(RELEASE_CACHE_FIELDS[self.target.release_mem_form])
        kw.update(fields)
        kw.setdefault("event_type", _pm4.EventType.CACHE_FLUSH_AND_INV_TS_EVENT)
        kw.setdefault("event_index", 5)
        return _pm4.ReleaseMem(addr=addr, data=data, data_sel=data_sel, int_sel=int_sel,
                               int_ctxid=int_ctxid, **kw)

    def wait_reg_mem(self, addr: int, reference: int, *, function: int | str = "==",
                     mask: int = 0xFFFFFFFF, **fields: Any) -> int:
        """WAIT_REG_MEM on memory: stall until ``(dword at addr & mask) function reference``."""
        return self.submit(_pm4.WaitRegMem(addr=addr, reference=reference, function=function,
                                           mask=mask, **fields))

    def indirect_buffer(self, ib: Buffer | int, ib_size: int | None = None, **fields: Any
                        ) -> int:
        """INDIRECT_BUFFER: run `ib_size` dwords (default: the whole Buffer) at `ib`."""
        if isinstance(ib, Buffer):
            address = ib.gpu_address
            size = ib.size // 4 if ib_size is None else ib_size
        else:
            if ib_size is None:
                raise UsageError("indirect_buffer: ib_size (dwords) is needed with an address")
            address, size = ib, ib_size
        return self.submit(_pm4.IndirectBuffer(addr=address, ib_size=size, **fields))

    def acquire_mem(self, **fields: Any) -> int:
        """ACQUIRE_MEM (this target's form)."""
        return self.submit(_pm4.AcquireMem(**fields))

    def timestamp(self, addr: int) -> int:
        """RELEASE_MEM writing the 64-bit GPU clock at `addr` (8-byte aligned)."""
        return self.release_mem(addr, 0, data_sel="gpu_clock")

    def _build_signal_template(self, signal: Signal) -> _ValueTemplate:
        """Set `signal` at end of pipe: RELEASE_MEM with 64-bit data; for an interrupt signal
        a second RELEASE_MEM writes the event id to its mailbox slot and interrupts with the
        id as context (facts-kfd.md §4 I3/I4: the driver then signals exactly that event)."""
        packets = [self._release(signal.value_address, 0, "64bit", "none", 0)]
        if signal.event is not None:
            ev = signal.event
            packets.append(self._release(ev.mailbox_address, ev.event_id, "32bit",
                                         "int_after_confirm", ev.event_id))
        return _ValueTemplate(packets, self.target, [(0, "data", 0)])

    def wait_for(self, signal: Signal, value: int, *, cond: str = ">=") -> int:
        """Stall the queue until ``signal cond value`` (WAIT_REG_MEM on the low 32 bits)."""
        check_condition(cond)
        ref = _u32_reference("WAIT_REG_MEM", value)
        signal._submitted_on(self)
        return self.wait_reg_mem(signal.value_address, ref, function=_COND_FUNCTION[cond])


class SDMAQueue(_DwordRing):
    """A DMA engine queue (KFD queue type SDMA, or SDMA_BY_ENG_ID with `sdma_engine`)."""

    kind = "sdma"
    unit = "bytes"
    compute = False
    bytes_per_unit = 1

    def _queue_type(self) -> int:
        if self.sdma_engine is not None:
            return int(lib.KFD_IOC_QUEUE_TYPE_SDMA_BY_ENG_ID)
        return int(lib.KFD_IOC_QUEUE_TYPE_SDMA)

    def _nop(self, ndw: int) -> list[int]:
        return _sdma.SdmaNop.of_size(ndw).encode(self.target)

    def _format(self, words: np.ndarray, offset: int, mark: int | None) -> str:
        return _sdma.format_stream(words, self.target, start_offset=4 * offset,
                                   mark=None if mark is None else 4 * mark)

    # -- typed helpers --------------------------------------------------------------------------
    def copy(self, dst: Buffer | int, src: Buffer | int, size: int | None = None) -> int:
        """COPY_LINEAR `size` bytes (default: the whole source Buffer), split at the
        target's per-packet limit."""
        s, size = _address_and_size("SDMAQueue.copy", "src", src, size)
        d = dst.gpu_address if isinstance(dst, Buffer) else dst
        return self.submit(*_sdma.split_copy(self.target, s, d, size))

    def fill(self, dst: Buffer | int, value: int, size: int | None = None) -> int:
        """CONST_FILL: a 32-bit pattern where address and size are dword aligned, else bytes."""
        d, size = _address_and_size("SDMAQueue.fill", "dst", dst, size)
        return self.submit(*_sdma.split_fill(self.target, d, value, size))

    def write(self, dst: Buffer | int, data: int | Sequence[int] | bytes) -> int:
        """WRITE_LINEAR dwords (or bytes, a multiple of 4) at `dst`."""
        d = dst.gpu_address if isinstance(dst, Buffer) else dst
        if isinstance(data, (bytes, bytearray, memoryview)):
            values = tuple(np.frombuffer(bytes(data), dtype=np.uint32).tolist())
        elif isinstance(data, (int, np.integer)):
            values = (int(data),)
        else:
            values = tuple(int(x) for x in data)
        return self.submit(_sdma.SdmaWriteLinear(dst_addr=d, data=values))

    def _fence(self, addr: int, value: int, **fields: Any) -> _sdma.SdmaFence:
        if self.target.sdma_fence_mtype:
            fields.setdefault("mtype", self.target.sdma_fence_mtype)
        return _sdma.SdmaFence(addr=addr, data=value & 0xFFFFFFFF, **fields)

    def fence(self, addr: int, value: int, **fields: Any) -> int:
        """FENCE: write the 32-bit `value` at `addr` once the preceding packets are done
        (uncached, as the kernel's fences, where the SDMA version has an MTYPE field)."""
        return self.submit(self._fence(addr, value, **fields))

    def trap(self, int_context: int = 0) -> int:
        """TRAP: raise an interrupt carrying `int_context` (a KFD event id)."""
        return self.submit(_sdma.SdmaTrap(int_context=int_context))

    def poll(self, addr: int, reference: int, *, function: int | str = "==",
             mask: int = 0xFFFFFFFF, **fields: Any) -> int:
        """POLL_REGMEM on memory: stall until ``(dword at addr & mask) function reference``."""
        return self.submit(_sdma.SdmaPollRegmem(addr=addr, reference=reference,
                                                function=function, mask=mask, **fields))

    def timestamp(self, addr: int, *, global_clock: bool = True) -> int:
        """TIMESTAMP GET (GET_GLOBAL by default): the 64-bit timestamp at `addr`."""
        cls = _sdma.SdmaTimestampGetGlobal if global_clock else _sdma.SdmaTimestampGet
        return self.submit(cls(addr=addr))

    def atomic(self, addr: int, op: int | str, src: int = 0, cmp: int = 0, **fields: Any) -> int:
        """ATOMIC with a TC_OP code or name (e.g. "ADD_RTN_64")."""
        return self.submit(_sdma.SdmaAtomic(addr=addr, atomic_op=op, src_data=src,
                                            cmp_data=cmp, **fields))

    def _build_signal_template(self, signal: Signal) -> _ValueTemplate:
        """Set `signal`: FENCE the low dword, then the high dword, as the kernel's 64-bit
        fences (sdma_v4_0_ring_emit_fence) — a rising timeline value never passes a waited-for
        value early; for an interrupt signal, FENCE the event id into the mailbox slot and
        TRAP with it."""
        packets: list[Any] = [
            self._fence(signal.value_address, 0),
            self._fence(signal.value_address + 4, 0),
        ]
        if signal.event is not None:
            ev = signal.event
            packets.append(self._fence(ev.mailbox_address, ev.event_id))
            packets.append(_sdma.SdmaTrap(int_context=ev.event_id))
        return _ValueTemplate(packets, self.target, [(0, "data", 0), (1, "data", 32)])

    def wait_for(self, signal: Signal, value: int, *, cond: str = ">=") -> int:
        """Stall the queue until ``signal cond value`` (POLL_REGMEM on the low 32 bits)."""
        check_condition(cond)
        ref = _u32_reference("POLL_REGMEM", value)
        signal._submitted_on(self)
        return self.poll(signal.value_address, ref, function=_COND_FUNCTION[cond])


# -- AQL --------------------------------------------------------------------------------------

_AQ = _aql.AMD_QUEUE
_SIG = _aql.AMD_SIGNAL
AQL_PACKET = _aql.PACKET_BYTES
DOORBELL_SIGNAL_OFFSET = 256          # the queue's doorbell amd_signal_t, after the amd_queue_t
# BARRIER_VALUE conditions (hsa_signal_condition_t); <= and > become < v+1 and >= v+1
_AQL_COND = {"==": (0, 0), "!=": (1, 0), "<": (2, 0), ">=": (3, 0), "<=": (2, 1), ">": (3, 1)}


# Error bits the CP stores into an AQL queue's queue_inactive_signal when it stops the queue,
# as ROCR's AqlQueue::DynamicScratchHandler decodes them (checked in that order).
AQL_QUEUE_ERRORS = (
    (0x401, "insufficient scratch (the kernel needs more private memory than the queue has)"),
    (2, "invalid dispatch dimensions (setup dims, grid or workgroup size)"),
    (4, "invalid group memory (group_segment_size above the LDS a workgroup may have)"),
    (8, "invalid or null code object (kernel_object / kernel descriptor)"),
    (32, "invalid packet format (header type or reserved fields)"),
    (256, "invalid vendor-specific packet"),
    (64, "workgroup too large"),
    (128, "out of registers (the kernel needs more VGPRs/SGPRs than a wave has)"),
    (0x20000000, "memory violation (an address beyond the GPU's 48-bit VA)"),
    (0x40000000, "illegal instruction in a wave"),
    (0x80000000, "debug trap (s_trap or a wave exception)"),
)


def describe_aql_queue_error(code: int) -> str:
    """Name the CP error bits of an AQL queue's queue_inactive_signal value."""
    for bits, text in AQL_QUEUE_ERRORS:
        if code & bits:
            return text
    return "undefined queue error"


class AQLQueue(Queue):
    """A compute queue fed 64-byte AQL packets (KFD queue type COMPUTE_AQL).

    The read/write pointers are the ``read_dispatch_id`` / ``write_dispatch_id`` fields of the
    queue's ``amd_queue_t`` (`amd_queue`), counted in packets. Every ring slot starts with an
    INVALID header; a packet is published by writing bytes 4..63, then its first dword with a
    release store, then the doorbell with the packet's index.
    """

    kind = "aql"
    unit = "packets"
    reserve = 0

    def _setup_pointers(self) -> None:
        page = self._internal(PAGE_SIZE, "gtt", "amd_queue_t", uncached=True, coherent=True)
        self.amd_queue = page
        self.pointers = page
        base = page.gpu_address
        self.rptr_address = base + _AQ.read_dispatch_id
        self.wptr_address = base + _AQ.write_dispatch_id
        self._signal_packets: dict[int, tuple[int, bytes]] = {}
        self.slots = self.ring_size // AQL_PACKET
        self._ring_base = self.ring.gpu_address
        self._ring_bytes = self.ring._bytes()       # the writer's view: plain memcpy
        ring = self.ring.view(np.uint32).reshape(self.slots, AQL_PACKET // 4)
        ring[:, 0] = int(_aql.INVALID_HEADER)
        ring[:, 1:] = 0
        node = self.device.node
        ap = self.device.apertures
        waves_per_cu = max(node.max_waves_per_simd * node.simd_per_cu, 1)
        # where the packet processor reports a queue error (ROCR queue_inactive_signal)
        self.inactive_signal = Signal(self.device, 0, owner=self, internal=True)
        self._signals.append(self.inactive_signal)
        page.write(0, _AQ.pack(
            type=0, features=1, base_address=self.ring.gpu_address,
            doorbell_signal=base + DOORBELL_SIGNAL_OFFSET, size=self.slots, id=0,
            write_dispatch_id=0, read_dispatch_id=0,
            read_dispatch_id_field_base_byte_offset=_AQ.read_dispatch_id,
            group_segment_aperture_base_hi=(ap.lds_base >> 32) if ap else 0,
            private_segment_aperture_base_hi=(ap.scratch_base >> 32) if ap else 0,
            max_cu_id=max(node.cu_count - 1, 0), max_wave_id=waves_per_cu - 1,
            queue_properties=int(_aql.QueueProperty.IS_PTR64),
            queue_inactive_signal=self.inactive_signal.handle))

    def _extra_state(self) -> list[str]:
        code = self.inactive_signal.value if not self.inactive_signal.freed else 0
        if not code:
            return []
        code &= 0xFFFFFFFFFFFFFFFF
        return [f"queue stopped by the packet processor: {describe_aql_queue_error(code)} "
                f"(queue_inactive_signal error code {code:#x})"]

    def _finish_setup(self) -> None:
        """After CREATE_QUEUE: the queue id and the doorbell signal (kind DOORBELL, value =
        the doorbell's address, queue_ptr = the amd_queue_t), as ROCR lays them out."""
        base = self.amd_queue.gpu_address
        store64(base + _AQ.id, self.queue_id)
        self.amd_queue.write(DOORBELL_SIGNAL_OFFSET, _SIG.pack(
            kind=int(_aql.SignalKind.DOORBELL), value=self.doorbell_address, queue_ptr=base))

    def _queue_type(self) -> int:
        return int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL)

    @property
    def ring_units(self) -> int:
        return self.slots

    def _used(self) -> int:
        return max(self._wptr - load64(self.rptr_address), 0)

    @property
    def read_pointer(self) -> int:
        """``read_dispatch_id``: packets the processor has consumed."""
        return load64(self.rptr_address)

    def _ring_doorbell(self) -> None:
        store64(self.wptr_address, self._wptr)
        if self._wptr:
            self.process.port.doorbell(self.doorbell_address, self._wptr - 1)

    def submit(self, *packets: Any) -> int:
        """Publish AQL packets (packet objects or 64-byte blocks) and ring the doorbell once;
        returns the index (dispatch id) of the last one."""
        self._check_usable("submit")
        blobs: list[bytes] = []
        for p in packets:
            raw = p.encode(self.target) if hasattr(p, "encode") else bytes(p)
            if not raw or len(raw) % AQL_PACKET:
                raise UsageError(f"AQL packets are {AQL_PACKET} bytes; got {len(raw)} bytes")
            blobs.extend(raw[i:i + AQL_PACKET] for i in range(0, len(raw), AQL_PACKET))
        if not blobs:
            return self._wptr - 1
        with self._lock:
            for blob in blobs:
                self._write_slot(*_aql.publish_parts(blob))
            self.process.port.doorbell(self.doorbell_address, self._wptr - 1)
            return self._wptr - 1

    def _write_slot(self, header: int, body: bytes | bytearray) -> None:
        """Put one packet (its first dword, bytes 4..63) in the next slot once there is room:
        publish the write index, write the body, then release-store the header. The caller
        holds the lock and rings the doorbell."""
        index = self._wptr
        if index - self._consumed >= self.slots:
            self._wait_space(1)
        off = (index % self.slots) * AQL_PACKET
        self._wptr = index + 1
        _syscall.store64(self.wptr_address, index + 1)
        self._ring_bytes[off + 4:off + AQL_PACKET] = body
        _syscall.store32(self._ring_base + off, header & 0xFFFFFFFF)

    def _publish(self, header: int, body: bytes | bytearray) -> int:
        """Submit one packet already split by `publish_parts` (what `submit` does for one
        packet, without re-encoding or re-checking it); returns its index."""
        if self._destroyed:
            self._check_usable("submit")
        with self._lock:
            self._write_slot(header, body)
            index = self._wptr - 1
            self.process.port.doorbell(self.doorbell_address, index)
            return index

    def dump_ring(self, before: int = 8, after: int = 8) -> str:
        """Packets from `before` before ``read_dispatch_id`` (marked ``=>``) to `after` after
        it, never past the write index; labels are ``[index @slot]``."""
        if self._wptr == 0:
            return "   (ring empty: nothing submitted yet)"
        rptr = self.read_pointer
        lo = max(rptr - before, self._wptr - self.slots, 0)
        hi = self._wptr if rptr >= self._wptr else min(self._wptr, rptr + after + 1)
        base = self.ring.gpu_address
        data = b"".join(
            read_bytes(base + (i % self.slots) * AQL_PACKET, AQL_PACKET) for i in range(lo, hi))
        try:
            return _aql.format_stream(data, self.target, start_slot=lo, mark=rptr,
                                      ring_slots=self.slots)
        except PacketError as exc:
            return f"   (ring not decodable: {exc})"

    # -- typed helpers --------------------------------------------------------------------------
    @staticmethod
    def _handles(deps: Sequence[Signal | int]) -> tuple[int, ...]:
        if len(deps) > 5:
            raise UsageError(f"a barrier packet takes at most 5 dependency signals, got "
                             f"{len(deps)}")
        return tuple(d.handle if isinstance(d, Signal) else int(d) for d in deps)

    def _note(self, *signals: Signal | int | None) -> None:
        for s in signals:
            if isinstance(s, Signal):
                s._submitted_on(self)

    def barrier_and(self, deps: Sequence[Signal | int] = (), *,
                    completion_signal: Signal | None = None, barrier: bool = True,
                    **fields: Any) -> int:
        """BARRIER_AND: wait until every dependency signal is 0 (null handles count as
        satisfied); decrement `completion_signal` when done."""
        self._note(*deps, completion_signal)
        return self.submit(_aql.BarrierAndPacket(
            dep_signal=self._handles(deps), barrier=int(barrier),
            completion_signal=completion_signal.handle if completion_signal else 0, **fields))

    def barrier_or(self, deps: Sequence[Signal | int], *,
                   completion_signal: Signal | None = None, barrier: bool = True,
                   **fields: Any) -> int:
        """BARRIER_OR: wait until any dependency signal is 0 (null handles never satisfy)."""
        self._note(*deps, completion_signal)
        return self.submit(_aql.BarrierOrPacket(
            dep_signal=self._handles(deps), barrier=int(barrier),
            completion_signal=completion_signal.handle if completion_signal else 0, **fields))

    def barrier_value(self, signal: Signal, value: int, *, cond: str = "==",
                      mask: int = 0xFFFFFFFFFFFFFFFF, completion_signal: Signal | None = None,
                      barrier: bool = True) -> int:
        """AMD BARRIER_VALUE vendor packet: wait until ``(signal & mask) cond value``."""
        check_condition(cond)
        code, bump = _AQL_COND[cond]
        self._note(signal, completion_signal)
        return self.submit(_aql.BarrierValuePacket(
            signal=signal.handle, value=check_int("value", value) + bump, mask=mask, cond=code,
            barrier=int(barrier),
            completion_signal=completion_signal.handle if completion_signal else 0))

    def signal(self, signal: Signal, value: int | None = None) -> int:
        """Decrement `signal` by one when the preceding packets completed (an empty
        BARRIER_AND with it as completion signal: AQL completion decrements)."""
        if value is not None:
            raise UsageError("AQLQueue.signal: AQL completion decrements the signal by 1 and "
                             "cannot store an arbitrary value; create the signal with the "
                             "count of completions to wait for, or use a PM4/SDMA queue")
        if signal.freed:
            raise UsageError(f"AQLQueue.signal: {signal.describe()} was freed")
        parts = self._signal_packets.get(signal.handle)
        if parts is None:
            if len(self._signal_packets) >= 256:
                self._signal_packets.clear()
            parts = _aql.publish_parts(_aql.BarrierAndPacket(
                completion_signal=signal.handle, barrier=1).encode(self.target))
            self._signal_packets[signal.handle] = parts
        signal._submitted_on(self)
        return self._publish(*parts)

    def wait_for(self, signal: Signal, value: int = 0, *, cond: str = "==") -> int:
        """Stall the queue until ``signal cond value``: a BARRIER_AND for ``== 0``, else the
        BARRIER_VALUE vendor packet."""
        check_condition(cond)
        if cond == "==" and value == 0:
            return self.barrier_and((signal,))
        return self.barrier_value(signal, value, cond=cond)


QUEUE_KINDS: dict[str, type[Queue]] = {"pm4": PM4Queue, "aql": AQLQueue, "sdma": SDMAQueue}


def create_queue(device: Device, kind: str, *, ring_size: int | None = None, priority: int = 7,
                 percentage: int = 100, sdma_engine: int | None = None,
                 owner: object = None) -> Queue:
    """Create a queue of `kind` ("pm4", "aql" or "sdma") on `device`; see the module doc."""
    try:
        cls = QUEUE_KINDS[kind]
    except (KeyError, TypeError):
        raise UsageError(f"queue kind must be one of {', '.join(map(repr, QUEUE_KINDS))}, got "
                         f"{kind!r}") from None
    size = DEFAULT_RING_SIZE if ring_size is None else check_int("ring_size", ring_size)
    if not is_pow2(size) or size < MIN_RING_SIZE:
        raise UsageError(f"ring_size must be a power of two of at least {MIN_RING_SIZE} bytes "
                         f"(CREATE_QUEUE rule), got {size}")
    priority = check_int("priority", priority)
    percentage = check_int("percentage", percentage)
    if sdma_engine is not None:
        if cls is not SDMAQueue:
            raise UsageError(f"sdma_engine is only meaningful for 'sdma' queues, not {kind!r}")
        sdma_engine = check_int("sdma_engine", sdma_engine, minimum=0)
    return cls(device, ring_size=size, priority=priority, percentage=percentage,
               sdma_engine=sdma_engine, owner=owner)

