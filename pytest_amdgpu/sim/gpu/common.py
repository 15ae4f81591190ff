"""What the queue processors (PM4, AQL, SDMA) share: run status, the processor bases, compares,
the TC atomics.

A processor executes packets of one queue when the engine (engine.py) gives it a turn. It
never blocks on a condition: a packet that has to wait (WAIT_REG_MEM, POLL_REGMEM, an AQL
barrier) leaves the queue's position unchanged and returns `WAIT`; the engine re-runs it when
memory is written or a poll timer fires. Errors are raised (VMFault, PacketError,
ShaderException, QueueError) and turned into the fault model by the engine.
"""

from __future__ import annotations

import enum
import operator
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ...packets.common import TC_OP_NAMES
from ...packets.pm4 import COMPARE_FUNCTION_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from .engine import GPUEngine

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
PREFETCH_DW = 1024        # dwords fetched from a ring or an indirect buffer per read


class Status(enum.Enum):
    """Result of one turn of a queue processor."""

    IDLE = "idle"          # nothing left to do until the next doorbell
    PROGRESS = "progress"  # used its budget; more work may be ready
    WAIT = "wait"          # blocked on a memory condition; re-check on write or poll
    HALTED = "halted"      # stopped for good (set by the engine after an error)


class QueueError(Exception):
    """A queue-level error the CP reports as a HW exception (bad packet, bad dispatch).

    `reason` names the packet and field, e.g. "AQL kernel dispatch at index 3: workgroup_size_x
    is 0".
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# WAIT_REG_MEM FUNCTION / SDMA POLL_REGMEM func: 0 always, 1 <, 2 <=, 3 ==, 4 !=, 5 >=, 6 >
# (soc15d.h / nvd.h WAIT_REG_MEM_FUNCTION; facts-pm4.md §3.2). 7 is undefined in every source;
# the packet decoders reject it as a reserved value (a malformed packet).
COMPARE_FUNCTIONS: dict[int, Callable[[int, int], bool]] = {
    0: lambda a, b: True,
    1: operator.lt,
    2: operator.le,
    3: operator.eq,
    4: operator.ne,
    5: operator.ge,
    6: operator.gt,
}
COMPARE_NAMES = COMPARE_FUNCTION_NAMES


def compare(function: int, value: int, mask: int, reference: int) -> bool:
    """`(value & mask) FUNCTION reference`, unsigned, as WAIT_REG_MEM / POLL_REGMEM test it."""
    try:
        fn = COMPARE_FUNCTIONS[function]
    except KeyError:
        raise QueueError(f"compare function {function} is reserved (valid 0..6)") from None
    return fn(value & mask, reference)


# -- TC atomics (PM4 ATOMIC_MEM, SDMA ATOMIC) --------------------------------------------------
# The integer TC_OP codes part D names (vega10_enum.h / soc21_enum.h, facts-pm4.md §3.11):
# "ADD_RTN_64" -> the GPUVM op "add" on 8 bytes, returning; the non-returning forms (+0x40)
# carry the same operation.
TC_OPS: dict[int, tuple[str, int, bool]] = {
    code: (name.split("_")[0].lower(), 8 if name.endswith("_64") else 4, "_RTN_" in name)
    for code, name in TC_OP_NAMES.items()
}


def tc_atomic(vm, addr: int, tc_op: int, src: int, cmp: int, what: str) -> tuple[int, int]:
    """Run TC_OP `tc_op` at `addr` through the VM; returns (old value, operand bytes)."""
    try:
        op, size, _ = TC_OPS[tc_op]
    except KeyError:
        raise QueueError(f"{what}: atomic op 0x{tc_op:x} is not an integer TC_OP the simulator "
                         "executes (float and cache-control ops are not modelled)") from None
    if addr % size:
        raise QueueError(f"{what}: address 0x{addr:x} is not {size}-byte aligned")
    mask = MASK32 if size == 4 else MASK64
    return vm.atomic(addr, op, src & mask, cmp & mask, size), size


def atomic_packet(owner, addr: int, tc_op: int, src: int, cmp: int, loop: bool,
                  what: str) -> int | None:
    """One ATOMIC_MEM / SDMA ATOMIC through `owner.vm`: the old value, or None when a looping
    compare-swap (ATOMIC_MEM COMMAND 1, SDMA LOOP) has to wait for the compare to hit (the
    reason is left in `owner.wait_reason`).

    A looping compare-swap reads first and only tries the atomic when the compare can hit: a
    failed try would otherwise be a write (waking every waiter, itself included) and the loop
    would spin; the read also gives a racing CPU write a chance to land."""
    entry = TC_OPS.get(tc_op)
    looping = loop and entry is not None and entry[0] == "cmpswap"
    if looping and not addr % entry[1]:
        mask = MASK32 if entry[1] == 4 else MASK64
        value = owner.vm.read_u32(addr) if entry[1] == 4 else owner.vm.read_u64(addr)
        if value != cmp & mask:
            owner.wait_reason = (f"{what} compare-swap loop at 0x{addr:x}: value 0x{value:x} "
                                f"!= compare 0x{cmp & mask:x}")
            return None
    old, size = tc_atomic(owner.vm, addr, tc_op, src, cmp, what)
    if looping and old != cmp & (MASK32 if size == 4 else MASK64):
        owner.wait_reason = (f"{what} compare-swap loop at 0x{addr:x}: value 0x{old:x} != "
                            f"compare 0x{cmp:x}")
        return None
    return old


def read_words(vm, addr: int, ndw: int) -> list[int]:
    """`ndw` dwords at GPU address `addr` (a CP or SDMA fetch: faults like any GPU read)."""
    return memoryview(vm.read(addr, 4 * ndw)).cast("I").tolist()


class Region:
    """A cached byte view of a queue buffer the CP keeps mapped (ring, read pointer).

    CREATE_QUEUE pins these buffers (KFD's queue_refcount makes UNMAP fail while the queue
    lives), so the translation is done once, checked by the VM (a bad address is a VMFault),
    and reused; a changed address or size (UPDATE_QUEUE) makes a new Region. Writes through
    it tell the machine memory changed, as every GPU write does.
    """

    __slots__ = ("addr", "mv", "size", "vm")

    def __init__(self, vm, addr: int, size: int, write: bool) -> None:
        self.vm = vm
        self.addr = addr
        self.size = size
        self.mv = memoryview(vm.view(addr, size, write)).cast("B")

    def words(self, off: int, n: int) -> list[int]:
        """`n` dwords at byte offset `off`, wrapping at the end of the region."""
        end = off + 4 * n
        if end <= self.size:
            return self.mv[off:end].cast("I").tolist()
        first = self.mv[off:].cast("I").tolist()
        return first + self.mv[:end - self.size].cast("I").tolist()

    def store(self, off: int, data: bytes) -> None:
        self.mv[off:off + len(data)] = data
        self.vm.notify_write()

    def store_u64(self, off: int, value: int) -> None:
        """A 64-bit little-endian store (a read pointer report)."""
        _U64.pack_into(self.mv, off, value & MASK64)
        self.vm.notify_write()

    def store_u32(self, off: int, value: int) -> None:
        """A 32-bit little-endian store (the CP's read pointer report)."""
        _U32.pack_into(self.mv, off, value & MASK32)
        self.vm.notify_write()


def region(cached: Region | None, vm, addr: int, size: int, write: bool) -> Region:
    """`cached` if it still covers [addr, addr+size), else a new Region."""
    if cached is not None and cached.addr == addr and cached.size == size and cached.vm is vm:
        return cached
    return Region(vm, addr, size, write)


class QueueProcessor:
    """Base class: one hardware queue's front end (the CP's HQD or the SDMA RLC queue)."""

    kind = "?"

    def __init__(self, engine: GPUEngine, queue) -> None:
        self.engine = engine
        self.queue = queue
        self.device = engine.device
        self.target = engine.target
        self.vm = queue.vm
        self.wait_reason = ""   # what a WAIT is waiting for (shown in dumps and logs)
        self.completed = 0      # packets completed so far (the engine tells new waits apart)

    def run(self, budget: int) -> Status:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        """One line of state for logs: pointers and what the queue waits on."""
        return f"{self.kind} queue {getattr(self.queue, 'queue_id', '?')}"


Location = tuple[Callable[[int], str], int]   # (formatter, position): formatted on demand


class RingProcessor(QueueProcessor):
    """A queue whose packets lie in a ring buffer: PM4 (pointers in dwords) and SDMA (bytes).

    The write pointer is the doorbell value (64-bit, monotonic); the ring offset of a pointer
    is `pointer * UNIT mod ring_size`, and packets may wrap around the end of the ring. A turn
    fetches a batch of complete packets, runs them and writes the read pointer past the fetched
    batch to rptr_addr once, like the CP's block-wise RPTR reporting: SDMA a 64-bit count of
    bytes, the PM4 CP a 32-bit dword offset that wraps at the ring size (RPTR_WRAPS).
    A packet only partly published waits for the rest; a write pointer further ahead than the
    ring holds, or a packet longer than the ring, is a queue error.
    """

    ENGINE = "?"            # "PM4" / "SDMA", for messages
    UNIT = 4                # bytes per pointer unit
    UNIT_NAME = "dword"
    RPTR_WRAPS = False      # the report is a 32-bit ring offset, not a 64-bit count

    def __init__(self, engine: GPUEngine, queue) -> None:
        super().__init__(engine, queue)
        self.rptr = 0                       # pointer after the last fetched packet
        self.reported = 0                   # read pointer last written to rptr_addr
        self.pending: deque = deque()       # fetched, not yet executed: (packet, Location, …)
        self.ib_frames: list = []           # indirect buffers in progress (run_ib runs them)
        self._ring: Region | None = None
        self._rptr: Region | None = None

    # -- what the engine kinds provide ---------------------------------------------------------
    def parse(self, words: list[int], limit: int, rptr: int) -> tuple[list[tuple], int]:
        """Up to `limit` complete packets at the start of `words` (ring dwords from pointer
        `rptr`): ([(packet, location, …)], dwords consumed)."""
        raise NotImplementedError  # pragma: no cover

    def packet_dwords(self, words: list[int], off: int) -> int:
        """Length of the packet at `words[off]` (at least what tells its length)."""
        raise NotImplementedError  # pragma: no cover

    def run_ib(self, budget: int) -> tuple[Status, int]:
        """Continue the indirect buffers in `ib_frames`: (status, packets run); IDLE when
        they are done."""
        raise NotImplementedError  # pragma: no cover

    def execute(self, packet: Any, loc: Location) -> bool:
        """Execute one fetched packet; False = it must wait (it runs again later)."""
        raise NotImplementedError  # pragma: no cover

    # -- the ring --------------------------------------------------------------------------------
    def where_ring(self, pos: int) -> str:
        """Location text of the packet at ring pointer `pos`."""
        units = self.queue.ring_size // self.UNIT
        return (f"{self.ENGINE} packet at ring {self.UNIT_NAME} {pos % units:#x} "
                f"(rptr {pos:#x})")

    def run(self, budget: int) -> Status:
        try:
            return self._run(budget)
        finally:
            if self.rptr != self.reported:
                self._report_rptr()

    def _run(self, budget: int) -> Status:
        pending = self.pending
        ibs = self.ib_frames
        q = self.queue
        done = 0
        while done < budget:
            if ibs:
                status, k = self.run_ib(budget - done)
                done += k
                self.completed += k
                if status is not Status.IDLE:
                    return status
                continue
            if pending:
                item = pending[0]              # (packet, location, ...) as `parse` made it
                if not self.execute(item[0], item[1]):
                    return Status.WAIT
                pending.popleft()
                done += 1
                self.completed += 1
                continue
            if q.doorbell_value <= self.rptr or not self._fetch(budget - done):
                return Status.IDLE
        return Status.PROGRESS

    def _fetch(self, limit: int) -> bool:
        """Fetch up to `limit` complete packets into `pending`. False when nothing is
        available (ring empty or a packet only partly published)."""
        got = self._ring_words()
        if got is None:
            return False
        words, avail_dw = got
        rptr = self.rptr
        pkts, used = self.parse(words, limit, rptr)
        if used == 0:
            words = self._whole_packet(words, avail_dw)
            if words is None:
                return False
            pkts, used = self.parse(words, 1, rptr)
            if used == 0:
                return False
        self.rptr = rptr + (used << 2) // self.UNIT
        self.pending.extend(pkts)
        return True

    def _ring_words(self) -> tuple[list[int], int] | None:
        """(the dwords at the read pointer, at most PREFETCH_DW; the dwords published there),
        None when the ring is empty. A write pointer the ring cannot hold is a QueueError."""
        q = self.queue
        unit = self.UNIT
        avail = (q.doorbell_value - self.rptr) * unit          # bytes published
        if avail <= 0:
            return None
        size = q.ring_size
        if avail > size or avail & 3:
            self._bad_wptr(avail)
        ring = self._ring = region(self._ring, self.vm, q.ring_base, size, False)
        avail >>= 2
        return ring.words((self.rptr * unit) % size, min(avail, PREFETCH_DW)), avail

    def _bad_wptr(self, avail: int) -> NoReturn:
        """Raise the QueueError for a write pointer `avail` bytes ahead of the read pointer
        that the ring cannot hold or that is not dword aligned."""
        q = self.queue
        wptr, rptr, unit, size = q.doorbell_value, self.rptr, self.UNIT, q.ring_size
        if avail > size:
            raise QueueError(f"{self.ENGINE} queue {q.queue_id}: write pointer {wptr:#x} is "
                             f"{avail // unit} {self.UNIT_NAME}s ahead of the read pointer "
                             f"{rptr:#x}, more than the {size // unit}-{self.UNIT_NAME} ring "
                             "holds")
        raise QueueError(f"{self.ENGINE} queue {q.queue_id}: write pointer {wptr:#x} is not "
                         f"dword aligned (packets are whole dwords)")

    def _whole_packet(self, words: list[int], avail_dw: int) -> list[int] | None:
        """The first packet of `words` (ring dwords at the read pointer, `avail_dw` of them
        published) when it is longer than `words`: all its dwords, or None while some are not
        published. A packet longer than the ring is a QueueError."""
        size = self.queue.ring_size
        need = self.packet_dwords(words, 0)
        if need > size >> 2:
            raise QueueError(f"{self.where_ring(self.rptr)}: packet (header 0x{words[0]:08x}) "
                             f"of {need} dwords is longer than the {size >> 2}-dword ring")
        if need > avail_dw:
            return None                  # the rest of the packet is not published yet
        return self._ring.words((self.rptr * self.UNIT) % size, need)

    def _report_rptr(self) -> None:
        """Write the read pointer to rptr_addr: a 64-bit count of units consumed, or (where
        the hardware reports a ring offset) the 32-bit offset wrapping at the ring size."""
        self.reported = self.rptr
        rp = self._rptr = region(self._rptr, self.vm, self.queue.rptr_addr, 8, True)
        if self.RPTR_WRAPS:
            rp.store_u32(0, self.rptr % (self.queue.ring_size // self.UNIT))
        else:
            rp.store_u64(0, self.rptr)

    def describe(self) -> str:
        return (f"{self.ENGINE} queue {getattr(self.queue, 'queue_id', '?')} "
                f"(rptr {self.rptr:#x} {self.UNIT_NAME}s)")
