"""What the queue processors (PM4, AQL, SDMA) share: run status, the processor base, compares.

A processor executes packets of one queue when the engine (engine.py) gives it a turn. It
never blocks on a condition: a packet that has to wait (WAIT_REG_MEM, POLL_REGMEM, an AQL
barrier) leaves the queue's position unchanged and returns `WAIT`; the engine re-runs it when
memory is written or a poll timer fires. Errors are raised (VMFault, PacketError,
ShaderException, QueueError) and turned into the fault model by the engine.
"""

from __future__ import annotations

import enum
import operator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .engine import GPUEngine

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF


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
# the CP treats it as reserved, we report it as a malformed packet.
COMPARE_FUNCTIONS = {
    0: lambda a, b: True,
    1: operator.lt,
    2: operator.le,
    3: operator.eq,
    4: operator.ne,
    5: operator.ge,
    6: operator.gt,
}
COMPARE_NAMES = {0: "always", 1: "<", 2: "<=", 3: "==", 4: "!=", 5: ">=", 6: ">"}


def compare(function: int, value: int, mask: int, reference: int) -> bool:
    """`(value & mask) FUNCTION reference`, unsigned, as WAIT_REG_MEM / POLL_REGMEM test it."""
    try:
        fn = COMPARE_FUNCTIONS[function]
    except KeyError:
        raise QueueError(f"compare function {function} is reserved (valid 0..6)") from None
    return fn(value & mask, reference)


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
