"""GPUEngine: the scheduler of one simulated device's queues (the MEC pipes and SDMA engines).

One GPU thread per device runs the queues round-robin, a budget of packets per turn, so one
busy or hung queue does not starve the others. The host never waits for it: a doorbell
(`notify`) only marks the queue ready and wakes the thread. When nothing is ready after a turn
that ran packets, the thread polls for the next doorbell for `SPIN_AFTER_WORK` (yielding the
CPU; a futex wake-up per doorbell would dominate a submit-and-wait loop) and then sleeps on a
condition variable; a re-check of a wait that is still unsatisfied is no work and does not
spin. After a doorbell the thread lets the host reach its wait before it takes the GIL, and a
host whose wait succeeded lets the thread finish its turn first (the GIL hand-off of
kfd/_syscall.c: each avoided GIL contention saves a futex sleep and wake-up).
Queues blocked on a memory condition are re-checked when any engine of the machine writes
memory (`memory_written`) and by a backed-off timer (CPU writes make no notification), capped
at `MAX_POLL_INTERVAL`, or `LONG_POLL_INTERVAL` once a wait has lasted `LONG_WAIT` (a hang
should not cost a core). While the engine has work, `sys.setswitchinterval` is lowered so the
GPU thread gets the GIL quickly from a host thread that spins.

A kernel dispatch can run for long (or forever). While an executor thread is inside the shader
core, another executor serves the remaining queues, so the "one thread per device" becomes
"one thread not inside a shader per device"; spare executors retire when idle. A dispatch is
cancelled through its queue's cancel event when the queue is removed or evicted.

Errors never kill the engine: a VMFault becomes `process.vm_fault`, a malformed packet or
invalid dispatch `process.hw_exception` (for an AQL queue also the CP's error code in its
amd_queue_t.queue_inactive_signal), anything unexpected is logged and reported as a HW
exception of that queue.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import sys
import threading
import time

import numpy as np

from ...errors import PacketError
from ...kfd import _syscall
from ...packets.aql import AMD_QUEUE, AMD_SIGNAL
from .clock import GPUClock
from .common import QueueError, QueueProcessor, Status

log = logging.getLogger("pytest_amdgpu.sim.gpu")

BUDGET = 64                     # packets per turn before the next queue gets one
MIN_POLL_INTERVAL = 20e-6       # first re-check of a waiting queue (seconds)
MAX_POLL_INTERVAL = 1e-3        # cap of the backed-off poll of waiting queues
LONG_WAIT = 1.0                 # a queue waiting longer than this is probably hung ...
LONG_POLL_INTERVAL = 25e-3      # ... and is polled this often (engine writes still wake it)
SPIN_AFTER_WORK = 300e-6       # poll for the next doorbell this long after work before parking
REMOVE_GRACE = 2.0              # seconds remove_queue waits for a busy queue to let go
BUSY_SWITCH_INTERVAL = 50e-6    # sys.setswitchinterval while the engine has work

_executor_ids = itertools.count()
# Status members as globals: an Enum attribute lookup costs ~0.2 µs on Python 3.11
_PROGRESS, _WAIT, _HALTED = Status.PROGRESS, Status.WAIT, Status.HALTED

# ShaderException.kind -> the exception code KFD reports for it (kfd_ioctl.h
# enum kfd_dbg_trap_exception_code, per-queue wave exceptions).
_WAVE_EXCEPTION_CODES = {
    "illegal_instruction": "EC_QUEUE_WAVE_ILLEGAL_INSTRUCTION",
    "trap": "EC_QUEUE_WAVE_TRAP",
    "memory_violation": "EC_QUEUE_WAVE_MEMORY_VIOLATION",
    "math_error": "EC_QUEUE_WAVE_MATH_ERROR",
    "aperture_violation": "EC_QUEUE_WAVE_APERTURE_VIOLATION",
}


# The error code the CP stores into an AQL queue's queue_inactive_signal when it stops the
# queue (bits as ROCR's AqlQueue::DynamicScratchHandler decodes them: 2 invalid dimension,
# 4 invalid group memory, 8 invalid/NULL code object, 32 invalid packet format, 64 workgroup
# too large, 128 out of registers, 256 invalid vendor-specific packet, 0x20000000 memory
# violation, 0x40000000 illegal instruction, 0x80000000 debug trap / exception).
AQL_QUEUE_ERROR_CODES = {
    "EC_QUEUE_PACKET_DISPATCH_DIM_INVALID": 2,
    "EC_QUEUE_PACKET_DISPATCH_GROUP_SEGMENT_SIZE_INVALID": 4,
    "EC_QUEUE_PACKET_DISPATCH_CODE_INVALID": 8,
    "EC_QUEUE_PACKET_RESERVED": 32,
    "EC_QUEUE_PACKET_UNSUPPORTED": 32,
    "EC_QUEUE_PACKET_DISPATCH_WORK_GROUP_SIZE_INVALID": 64,
    "EC_QUEUE_PACKET_DISPATCH_REGISTER_INVALID": 128,
    "EC_QUEUE_PACKET_VENDOR_UNSUPPORTED": 256,
    "EC_QUEUE_WAVE_MEMORY_VIOLATION": 0x20000000,
    "EC_QUEUE_WAVE_APERTURE_VIOLATION": 0x20000000,
    "EC_QUEUE_WAVE_ILLEGAL_INSTRUCTION": 0x40000000,
    "EC_QUEUE_WAVE_TRAP": 0x80000000,
    "EC_QUEUE_WAVE_MATH_ERROR": 0x80000000,
    "EC_QUEUE_WAVE_ABORT": 0x80000000,
}


class _Entry:
    """Scheduler bookkeeping of one queue."""

    __slots__ = (
        "cancel",
        "halted",
        "kicked",
        "next_poll",
        "owner",
        "poll_interval",
        "proc",
        "queue",
        "ready",
        "removed",
        "stopped",
        "wait_epoch",
        "wait_since",
        "waiting",
    )

    def __init__(self, queue, proc: QueueProcessor) -> None:
        self.queue = queue
        self.proc = proc
        self.ready = True           # check the ring once at creation
        self.kicked = False         # doorbell while an executor owned the queue
        self.waiting = False        # blocked on a memory condition
        self.wait_epoch = -1        # memory epoch seen by the failed check
        self.wait_since = 0.0       # when the current wait began
        self.next_poll = 0.0
        self.poll_interval = MIN_POLL_INTERVAL
        self.owner: int | None = None
        self.removed = False
        self.stopped = False        # error: stopped for good (HW exception, VM fault)
        self.halted = False         # evicted by the driver; queue_changed may resume it
        self.cancel = threading.Event()

    def runnable(self) -> bool:
        if self.owner is not None or self.removed or self.stopped or self.halted:
            return False
        try:
            return bool(self.queue.active)
        except AttributeError:
            return True


class _SwitchInterval:
    """Lowers sys.setswitchinterval while any engine is busy, so the GPU thread gets the GIL
    quickly from a host thread that spins on memory; restores it when all engines are idle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0
        self._saved: float | None = None

    def enter(self) -> None:
        with self._lock:
            self._busy += 1
            if self._busy == 1:
                self._saved = sys.getswitchinterval()
                if self._saved > BUSY_SWITCH_INTERVAL:
                    sys.setswitchinterval(BUSY_SWITCH_INTERVAL)

    def leave(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy == 0 and self._saved is not None:
                sys.setswitchinterval(self._saved)
                self._saved = None


_SWITCH = _SwitchInterval()


class GPUEngine:
    """The command processors and SDMA engines of one simulated device.

    API used by the simulated driver (sim/device.py, sim/process.py): `add_queue`,
    `remove_queue`, `queue_changed`, `notify` (doorbell), `evict`, `clock`, `memory_written`
    (machine-wide memory-write notification) and `shutdown`.
    """

    def __init__(self, device) -> None:
        self.device = device
        self.target = device.target
        self.gpu_clock = GPUClock()
        self.sdma_timestamp_offset: dict[int, int] = {}   # SDMA engine -> TIMESTAMP SET offset
        self.name = f"gpu{getattr(device, 'gpu_id', '?')}"
        self._cv = threading.Condition(threading.Lock())
        self._entries: dict[int, _Entry] = {}     # id(queue) -> entry, insertion = RR order
        self._order: list[_Entry] = []
        self._rr = 0
        self._epoch = 0                            # bumped by memory_written
        self._nwaiting = 0
        self._executors = 0
        self._parked = 0
        self._in_shader = 0
        self._observers = 0                        # threads in wait_idle / remove_queue
        # bumped by every doorbell; a memory word so an executor spinning after work can poll
        # it in C without holding the GIL (kfd._syscall.device_poll)
        self._kick_word = np.zeros(1, dtype=np.uint64)
        self._kick_addr = self._kick_word.ctypes.data
        self._spinning = 0
        self._last_work = 0.0
        self._stop = False
        self._busy = False                         # holds a _SWITCH reference
        self._threads: list[threading.Thread] = []
        self._shader_core = None
        self._core_takes_interrupt = False
        self._spawn_locked()

    # -- driver API --------------------------------------------------------------------------
    def add_queue(self, q) -> None:
        """Start executing queue `q` (created by CREATE_QUEUE)."""
        proc = self._make_processor(q)
        with self._cv:
            entry = _Entry(q, proc)
            self._entries[id(q)] = entry
            self._order.append(entry)
            self._wake_locked()

    def remove_queue(self, q) -> bool:
        """Stop and forget `q` (DESTROY_QUEUE). Returns False if it was still busy (e.g. a
        shader that did not stop when cancelled) after the grace period; it is removed anyway
        and whatever still runs for it is discarded."""
        deadline = time.monotonic() + REMOVE_GRACE
        with self._cv:
            entry = self._entries.pop(id(q), None)
            if entry is None:
                return True
            entry.removed = True
            entry.cancel.set()
            if entry in self._order:
                self._order.remove(entry)
            if entry.waiting:
                entry.waiting = False
                self._nwaiting -= 1
            if entry.owner == threading.get_ident():
                return True                # called from its own executor: it stops on return
            self._observers += 1
            try:
                while entry.owner is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        log.warning("%s: queue %s still busy after %.1f s; removed anyway",
                                    self.name, getattr(q, "queue_id", "?"), REMOVE_GRACE)
                        return False
                    self._cv.wait(left)
            finally:
                self._observers -= 1
            self._wake_locked()
        return True

    def queue_changed(self, q) -> None:
        """UPDATE_QUEUE / SET_CU_MASK / restore after eviction: re-read the queue's state."""
        with self._cv:
            entry = self._entries.get(id(q))
            if entry is None:
                return
            if entry.halted and self._queue_active(q):
                entry.halted = False
                entry.cancel = threading.Event()
            entry.ready = True
            self._wake_locked()

    def notify(self, q) -> None:
        """Doorbell: `q`'s write pointer moved; wake the GPU thread."""
        with self._cv:
            entry = self._entries.get(id(q))
            if entry is None:
                return
            if entry.owner is not None:
                entry.kicked = True
            else:
                entry.ready = True
            if not self._busy:
                self._set_busy_locked(True)
            self._wake_locked()

    def evict(self, process) -> None:
        """Halt every queue of `process` on this device (VM fault, eviction). Does not wait:
        it may be called from an engine thread that is reporting the fault."""
        with self._cv:
            for entry in self._order:
                if getattr(entry.queue, "process", None) is process:
                    entry.halted = True
                    entry.cancel.set()
                    if entry.waiting:
                        entry.waiting = False
                        self._nwaiting -= 1
            self._cv.notify_all()

    def clock(self) -> int:
        """The device's 100 MHz GPU counter (GET_CLOCK_COUNTERS, timestamps)."""
        return self.gpu_clock()

    def memory_written(self) -> None:
        """Some engine of the machine wrote GPU memory: waiting queues re-check."""
        self._epoch += 1
        if self._nwaiting:
            with self._cv:
                self._wake_locked()

    def shutdown(self) -> None:
        """Stop the engine: cancel running dispatches and end the executor threads."""
        with self._cv:
            self._stop = True
            for entry in self._order:
                entry.cancel.set()
            self._cv.notify_all()
            threads = list(self._threads)
            self._set_busy_locked(False)
        for t in threads:
            if t is not threading.current_thread():
                t.join(timeout=REMOVE_GRACE)

    # -- introspection (tests, dumps) ----------------------------------------------------------
    def queue_state(self, q) -> str:
        """'ready' | 'waiting: <why>' | 'idle' | 'running' | 'stopped' | 'halted' | 'removed'."""
        with self._cv:
            entry = self._entries.get(id(q))
            if entry is None:
                return "removed"
            if entry.stopped:
                return "stopped"
            if entry.halted:
                return "halted"
            if entry.owner is not None:
                return "running"
            if entry.waiting:
                return f"waiting: {entry.proc.wait_reason}"
            return "ready" if entry.ready else "idle"

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no queue is ready or running (waiting queues count as idle)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            self._observers += 1
            try:
                while True:
                    busy = any(e.owner is not None or (e.ready and e.runnable())
                               for e in self._order)
                    if not busy:
                        return True
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cv.wait(min(left, 0.01))
            finally:
                self._observers -= 1

    # -- processors ------------------------------------------------------------------------------
    def _make_processor(self, q) -> QueueProcessor:
        kind = q.kind
        if kind == "pm4":
            from .pm4 import PM4Processor
            return PM4Processor(self, q)
        if kind == "aql":
            from .aql import AQLProcessor
            return AQLProcessor(self, q)
        if kind == "sdma":
            from .sdma import SDMAProcessor
            return SDMAProcessor(self, q)
        raise ValueError(f"unknown queue kind {kind!r} (expected 'pm4', 'aql' or 'sdma')")

    @staticmethod
    def _queue_active(q) -> bool:
        try:
            return bool(q.active)
        except AttributeError:
            return True

    # -- shader dispatch (called by processors on an executor thread) -------------------------
    def run_shader(self, proc: QueueProcessor, regs, *, interrupt=None) -> None:
        """Run one dispatch on the shader core for `proc`'s queue.

        While it runs, the executor counts as busy and another executor serves the other
        queues. Raises what the shader core raises (VMFault, ShaderException,
        DispatchCancelled); without a shader core, a QueueError for the illegal instruction.
        """
        core = self._shader_core or self._get_shader_core()
        with self._cv:
            entry = self._entries.get(id(proc.queue))
            cancel = entry.cancel if entry is not None else threading.Event()
            self._in_shader += 1
            if self._executors - self._in_shader <= 0 and self._other_work_locked(entry):
                self._spawn_locked()
        try:
            if cancel.is_set():
                from ..shader import DispatchCancelled
                raise DispatchCancelled("dispatch cancelled before it started")
            if interrupt is not None and self._core_takes_interrupt:
                core.run(proc.vm, regs, cancel=cancel, clock=self.gpu_clock,
                         interrupt=interrupt, fp_errors_ignored=True)
            else:
                core.run(proc.vm, regs, cancel=cancel, clock=self.gpu_clock,
                         fp_errors_ignored=True)
        finally:
            with self._cv:
                self._in_shader -= 1

    def _get_shader_core(self):
        core = self._shader_core
        if core is None:
            try:
                from ..shader import ShaderCore
            except ImportError:
                raise QueueError(
                    "EC_QUEUE_WAVE_ILLEGAL_INSTRUCTION: the simulated shader core "
                    "(pytest_amdgpu.sim.shader) is not available, so no kernel can run") from None
            core = self._shader_core = ShaderCore(self.target)
            try:
                params = inspect.signature(core.run).parameters
            except (TypeError, ValueError):
                params = {}
            # s_sendmsg interrupts reach the process when the core accepts a callback for them.
            self._core_takes_interrupt = "interrupt" in params
        return core

    # -- scheduler internals (call with self._cv held) ----------------------------------------
    def _wake_locked(self) -> None:
        addr = self._kick_addr
        _syscall.store64(addr, _syscall.load64(addr) + 1)   # seen by a spinning executor
        if self._parked:
            self._cv.notify()
        elif self._executors - self._in_shader <= 0 and not self._stop:
            self._spawn_locked()

    def _spawn_locked(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        n = next(_executor_ids)
        t = threading.Thread(target=self._executor, name=f"{self.name}-cp{n}", daemon=True)
        self._executors += 1
        self._threads.append(t)
        t.start()

    def _set_busy_locked(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            (_SWITCH.enter if busy else _SWITCH.leave)()

    def _other_work_locked(self, me: _Entry | None) -> bool:
        # a plain loop: any() over a generator costs a frame per dispatch
        for e in self._order:  # noqa: SIM110
            if e is not me and (e.ready or e.waiting) and e.runnable():
                return True
        return False

    def _pick_locked(self, now: float) -> tuple[_Entry | None, float | None]:
        """Next queue to run (round-robin) and, if none, when the next poll is due."""
        order = self._order
        n = len(order)
        next_due: float | None = None
        epoch = self._epoch
        for i in range(n):
            k = (self._rr + i) % n
            entry = order[k]
            if not (entry.ready or entry.waiting) or not entry.runnable():
                continue
            if entry.waiting:
                if entry.wait_epoch != epoch or now >= entry.next_poll or entry.ready:
                    self._rr = (k + 1) % n
                    return entry, None
                if next_due is None or entry.next_poll < next_due:
                    next_due = entry.next_poll
            elif entry.ready:
                self._rr = (k + 1) % n
                return entry, None
        return None, next_due

    # -- executor thread -----------------------------------------------------------------------
    def _executor(self) -> None:
        me = threading.get_ident()
        cv = self._cv
        _syscall.device_running(1)          # see _syscall.c "GIL hand-off"
        np.seterr(all="ignore")             # this thread's GPU arithmetic never raises
        cv.acquire()
        try:
            while not self._stop:
                now = time.monotonic()
                entry, due = self._pick_locked(now)
                if entry is None:
                    if self._parked and self._executors - self._in_shader > 1:
                        break                      # another free executor is parked: retire
                    spin_until = self._last_work + SPIN_AFTER_WORK
                    if due is None and now < spin_until and not self._spinning:
                        self._spin_locked(spin_until - now)
                        continue
                    if due is None and not any(e.owner is not None for e in self._order):
                        self._set_busy_locked(False)
                    self._parked += 1
                    _syscall.device_running(-1)
                    try:
                        cv.wait(None if due is None else max(due - now, 0.0))
                    finally:
                        _syscall.device_running(1)
                    self._parked -= 1
                    continue
                entry.owner = me
                was_waiting = entry.waiting
                if was_waiting:
                    entry.waiting = False
                    self._nwaiting -= 1
                entry.ready = False
                entry.kicked = False
                epoch = self._epoch
                completed = entry.proc.completed
                cv.release()
                try:
                    status = entry.proc.run(BUDGET)
                except Exception as exc:
                    status = self._report_error(entry, exc)
                finally:
                    cv.acquire()
                entry.owner = None
                if status is _PROGRESS or entry.proc.completed != completed:
                    # Work was done: the host may submit again at once, so poll for its next
                    # doorbell for a while (a fruitless re-check of a wait is no work: a hang
                    # must not keep a core spinning).
                    self._last_work = now
                if entry.removed:
                    cv.notify_all()
                    continue
                if status is _HALTED:
                    entry.stopped = True
                elif status is _WAIT:
                    entry.waiting = True
                    self._nwaiting += 1
                    entry.wait_epoch = epoch
                    now = time.monotonic()
                    if was_waiting and entry.proc.completed == completed:
                        cap = MAX_POLL_INTERVAL if now - entry.wait_since < LONG_WAIT \
                            else LONG_POLL_INTERVAL
                        entry.poll_interval = min(entry.poll_interval * 2, cap)
                    else:
                        entry.poll_interval = MIN_POLL_INTERVAL
                        entry.wait_since = now
                    entry.next_poll = now + entry.poll_interval
                    entry.ready = entry.kicked
                elif status is _PROGRESS:
                    entry.ready = True
                else:
                    entry.ready = entry.kicked
                if self._observers:
                    cv.notify_all()
        finally:
            self._executors -= 1
            cv.release()
            _syscall.device_running(-1)

    def _spin_locked(self, left: float) -> None:
        """Right after work, poll for the next doorbell for a short while instead of parking:
        a parked thread costs a futex wake-up per doorbell, which dominates the latency of a
        host that submits and waits in a loop. Yields the CPU (and the GIL) every iteration.

        The poll runs in C without the GIL (`_syscall.device_poll` on the doorbell counter),
        so a spinning executor never competes with the host thread for the interpreter; after a
        doorbell it lets the host reach its wait before taking the GIL (the hand-off in
        _syscall.c)."""
        self._spinning += 1
        kick = _syscall.load64(self._kick_addr)
        self._cv.release()
        try:
            if not self._stop:
                _syscall.device_poll(self._kick_addr, kick, int(left * 1e9))
        finally:
            self._cv.acquire()
            self._spinning -= 1

    def _report_error(self, entry: _Entry, exc: Exception) -> Status:
        """An error of a queue's turn becomes the fault model, never an engine crash."""
        try:
            return self._report(entry, exc)
        except Exception:
            log.exception("%s: reporting %r for queue %s failed; the queue stops",
                          self.name, exc, getattr(entry.queue, "queue_id", "?"))
            return Status.HALTED

    def _report(self, entry: _Entry, exc: BaseException) -> Status:
        q = entry.queue
        if entry.removed:
            # DESTROY_QUEUE already took it off the hardware: whatever its last fetch or
            # dispatch ran into is discarded, as the HW unmap discards the queue's state.
            log.info("%s: %s on destroyed queue %s discarded", self.name, type(exc).__name__,
                     getattr(q, "queue_id", "?"))
            return Status.IDLE
        process = getattr(q, "process", None)
        from ..memory import VMFault  # B's module; imported lazily (B imports us)
        try:
            from ..shader import DispatchCancelled, ShaderException
        except ImportError:  # pragma: no cover - shader core not present
            DispatchCancelled = ShaderException = ()
        if DispatchCancelled and isinstance(exc, DispatchCancelled):
            # Cancelled by remove_queue / evict / shutdown. An evicted queue keeps its state
            # (halted, not stopped): if the driver restores it, the dispatch runs again from
            # its packet, as the CP re-executes a preempted dispatch.
            log.info("%s: dispatch on queue %s cancelled", self.name, q.queue_id)
            return Status.IDLE
        if isinstance(exc, VMFault):
            log.warning("%s: VM fault on %s: %s", self.name, entry.proc.describe(), exc)
            with self._cv:
                entry.stopped = True
            if process is not None:
                process.vm_fault(self.device, exc)
            return Status.HALTED
        if isinstance(exc, (QueueError, PacketError)):
            reason = getattr(exc, "reason", None) or str(exc)
        elif ShaderException and isinstance(exc, ShaderException):
            code = _WAVE_EXCEPTION_CODES.get(getattr(exc, "kind", ""), "EC_QUEUE_WAVE_ABORT")
            reason = f"{code}: {exc}"
        else:
            log.exception("%s: internal error while executing %s", self.name,
                          entry.proc.describe())
            reason = f"internal simulator error ({type(exc).__name__}: {exc})"
        log.warning("%s: HW exception on %s: %s", self.name, entry.proc.describe(), reason)
        with self._cv:
            entry.stopped = True
        if getattr(q, "kind", "") == "aql":
            self._report_aql_queue_error(q, reason)
        if process is not None:
            process.hw_exception(self.device, q, reason)
        return Status.HALTED

    def _report_aql_queue_error(self, q, reason: str) -> None:
        """Store the CP's error code into amd_queue_t.queue_inactive_signal (and raise its
        mailbox interrupt), as the firmware does when it stops an AQL queue."""
        code = AQL_QUEUE_ERROR_CODES.get(reason.split(":", 1)[0].strip(), 0x80000000)
        vm = q.vm
        try:
            amd_queue = q.rptr_addr - AMD_QUEUE.read_dispatch_id
            signal = vm.read_u64(amd_queue + AMD_QUEUE.queue_inactive_signal)
            if not signal:
                return
            vm.write_u64(signal + AMD_SIGNAL.value, code)
            mailbox = vm.read_u64(signal + AMD_SIGNAL.event_mailbox_ptr)
            if mailbox:
                event_id = vm.read_u32(signal + AMD_SIGNAL.event_id)
                vm.write_u32(mailbox, event_id)
                q.process.signal_interrupt(self.device, "cp_eop", event_id)
        except Exception as exc:  # a bad amd_queue_t must not take the engine down
            log.info("%s: cannot report queue error %#x for queue %s: %s", self.name, code,
                     getattr(q, "queue_id", "?"), exc)
