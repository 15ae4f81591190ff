"""Simulated KFD events (amdkfd/kfd_events.c): signal page, CREATE/SET/RESET/DESTROY, WAIT.

One `EventManager` per KFD process. Its lock is the kernel's `p->event_mutex` and the events'
spinlocks in one; its condition variable is every event's wait queue: a waiting thread really
sleeps (`Condition.wait`) until SET_EVENT, an interrupt from a simulated engine, a destroy or
its timeout wakes it. Rules follow ../shared/reference/facts-kfd.md §2.8, §2.9 and §4 in the
kernel's order; each names its source.
"""

from __future__ import annotations

import errno as E
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..kfd.abi import ffi, lib
from .memory import Backing, DriverError

log = logging.getLogger("pytest_amdgpu.sim")

UNSIGNALED = 0xFFFF_FFFF_FFFF_FFFF          # UNSIGNALED_EVENT_SLOT (kfd_events.h)
SIGNAL_EVENT_LIMIT = int(lib.KFD_SIGNAL_EVENT_LIMIT)   # 4096 slots of 8 bytes
FIRST_NONSIGNAL_ID = 0x40000000             # KFD_FIRST_NONSIGNAL_EVENT_ID ((INT_MAX >> 1) + 1)
LAST_NONSIGNAL_ID = 0xFFFF_FFFF             # (uint32_t)KFD_LAST_NONSIGNAL_EVENT_ID + 1 wraps
DEFAULT_MAPPED_SLOTS = 256                  # "Oldest user mode expects 256 event slots"
TIMEOUT_IMMEDIATE = 0                       # KFD_EVENT_TIMEOUT_IMMEDIATE
TIMEOUT_INFINITE = 0xFFFF_FFFF              # KFD_EVENT_TIMEOUT_INFINITE

EV_SIGNAL = int(lib.KFD_IOC_EVENT_SIGNAL)
EV_HW_EXCEPTION = int(lib.KFD_IOC_EVENT_HW_EXCEPTION)
EV_DEBUG = int(lib.KFD_IOC_EVENT_DEBUG_EVENT)
EV_MEMORY = int(lib.KFD_IOC_EVENT_MEMORY)
WAIT_COMPLETE = int(lib.KFD_IOC_WAIT_RESULT_COMPLETE)
WAIT_TIMEOUT = int(lib.KFD_IOC_WAIT_RESULT_TIMEOUT)
WAIT_FAIL = int(lib.KFD_IOC_WAIT_RESULT_FAIL)

EVENT_DATA_SIZE = ffi.sizeof("struct kfd_event_data")   # 48 (C compiler)
EVENT_ID_OFFSET = ffi.offsetof("struct kfd_event_data", "event_id")
MEM_DATA_SIZE = ffi.sizeof("struct kfd_hsa_memory_exception_data")   # 32
HW_DATA_SIZE = ffi.sizeof("struct kfd_hsa_hw_exception_data")        # 16


def _gpu_signalable(t: int) -> bool:
    return t in (EV_SIGNAL, EV_DEBUG)          # event_can_be_gpu_signaled


def _cpu_signalable(t: int) -> bool:
    return t == EV_SIGNAL                      # event_can_be_cpu_signaled


@dataclass
class Event:
    """struct kfd_event."""

    event_id: int
    type: int
    auto_reset: bool
    signaled: bool = False
    age: int = 1                               # event_age starts at 1 (kfd_event_create)
    waiters: list = field(default_factory=list)
    memory_data: bytes = bytes(MEM_DATA_SIZE)  # struct kfd_hsa_memory_exception_data
    hw_data: bytes = bytes(HW_DATA_SIZE)       # struct kfd_hsa_hw_exception_data


class WaitOutcome(NamedTuple):
    """What WAIT_EVENTS returns: errno, wait_result, the timeout to copy back (the remaining
    milliseconds after a signal), and the exception of the interrupting signal handler."""

    errno: int
    result: int
    timeout_ms: int
    signal: BaseException | None


class _Waiter:
    __slots__ = ("activated", "age_enabled", "event")

    def __init__(self) -> None:
        self.event: Event | None = None
        self.activated = False
        self.age_enabled = False


class SignalPage:
    """The process's signal page: 8-byte slots, UNSIGNALED (all 0xFF) when idle."""

    def __init__(self, backing: Backing, size: int, *, handle: int = 0, owned: bool) -> None:
        self.backing = backing
        self.size = size
        self.handle = handle
        self.owned = owned     # the kernel's own page (E2), freed with the process
        n = min(size, SIGNAL_EVENT_LIMIT * 8) // 8
        self.slots = backing.array[:n * 8].view(np.uint64)

    def slot(self, i: int) -> int:
        return int(self.slots[i]) if i < self.slots.shape[0] else UNSIGNALED

    def ack(self, i: int) -> None:
        if i < self.slots.shape[0]:
            self.slots[i] = UNSIGNALED


class EventManager:
    """A process's events (p->event_idr and its signal page)."""

    def __init__(self, process) -> None:
        self.process = process
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.events: dict[int, Event] = {}
        # kfd_event_init_process: ID 0 reserved, signal_event_count starts at 1.
        self.signal_event_count = 1
        self.page: SignalPage | None = None
        self.mapped_size = 0                   # p->signal_mapped_size
        self.signal_handle = 0                 # p->signal_handle (user event-page BO)
        self.age_tracking = process.machine.kfd_version >= (1, 14)

    # -- signal page ------------------------------------------------------------------------
    def set_user_page(self, backing: Backing, size: int, handle: int) -> None:
        """kfd_event_page_set: the user's BO becomes the signal page, filled with 0xFF."""
        with self.lock:
            n = min(size, SIGNAL_EVENT_LIMIT * 8)
            backing.array[:n] = 0xFF
            self.page = SignalPage(backing, size, handle=handle, owned=False)
            self.mapped_size = size
            self.signal_handle = handle

    def _ensure_kernel_page(self) -> None:
        """allocate_signal_page: the kernel's own 32 KiB page, 256 slots until mmap grows it."""
        if self.page is None:
            backing = Backing(SIGNAL_EVENT_LIMIT * 8, name="events", fill=0xFF)
            self.page = SignalPage(backing, SIGNAL_EVENT_LIMIT * 8, owned=True)
            self.mapped_size = DEFAULT_MAPPED_SLOTS * 8

    def mmap_page(self, length: int) -> Backing:
        """kfd_event_mmap: length <= 32 KiB (EINVAL), needs a page (EINVAL); grows the slots."""
        with self.lock:
            if _order(length) > _order(SIGNAL_EVENT_LIMIT * 8):
                raise DriverError(E.EINVAL, f"event page mmap of {length:#x} bytes > 32 KiB")
            if self.page is None:
                raise DriverError(E.EINVAL, "no signal page yet (create a signal event first)")
            self.mapped_size = length
            return self.page.backing

    # -- CREATE / DESTROY / SET / RESET -----------------------------------------------------
    def create(self, event_type: int, auto_reset: bool) -> Event:
        """kfd_event_create (rules E2-E5)."""
        with self.lock:
            if _gpu_signalable(event_type):
                if self.mapped_size and self.signal_event_count == self.mapped_size // 8:
                    raise DriverError(E.ENOSPC, "all signal event slots are in use")   # E3
                self._ensure_kernel_page()                                             # E2
                limit = self.mapped_size // 8
                eid = next((i for i in range(1, limit) if i not in self.events), None)
                if eid is None:
                    raise DriverError(E.ENOSPC, "no free signal slot")
                self.page.ack(eid)          # page_slots(...)[id] = UNSIGNALED
                self.signal_event_count += 1
            else:                                                                      # E4
                eid = FIRST_NONSIGNAL_ID
                while eid in self.events:
                    eid += 1
                if eid > LAST_NONSIGNAL_ID:
                    raise DriverError(E.ENOSPC, "no free event id")
            ev = Event(eid, event_type, auto_reset)
            self.events[eid] = ev
            return ev

    def destroy(self, event_id: int) -> None:
        """kfd_event_destroy: unknown -> EINVAL; waiters woken, their wait fails (EIO)."""
        with self.lock:
            ev = self.events.get(event_id)
            if ev is None:
                raise DriverError(E.EINVAL, f"unknown event id {event_id}")
            self._destroy_locked(ev)

    def _destroy_locked(self, ev: Event) -> None:
        for w in ev.waiters:
            w.event = None
        ev.waiters.clear()
        if _gpu_signalable(ev.type):
            self.signal_event_count -= 1
        del self.events[ev.event_id]
        self.cond.notify_all()

    def set(self, event_id: int) -> None:
        """kfd_set_event: unknown or not a SIGNAL event -> EINVAL."""
        with self.lock:
            ev = self.events.get(event_id)
            if ev is None or not _cpu_signalable(ev.type):
                raise DriverError(E.EINVAL, f"event {event_id} is unknown or not a signal event")
            self._set_locked(ev)

    def _set_locked(self, ev: Event) -> None:
        """set_event: stays signaled unless auto-reset with a waiter; age++; wake all."""
        ev.signaled = (not ev.auto_reset) or not ev.waiters
        ev.age += 1
        if ev.age > 0xFFFF_FFFF_FFFF_FFFF:
            ev.age = 2                           # never wrap back to 0/1
        for w in ev.waiters:
            w.activated = True
        self.cond.notify_all()

    def reset(self, event_id: int) -> None:
        """kfd_reset_event: unknown or not SIGNAL -> EINVAL."""
        with self.lock:
            ev = self.events.get(event_id)
            if ev is None or not _cpu_signalable(ev.type):
                raise DriverError(E.EINVAL, f"event {event_id} is unknown or not a signal event")
            ev.signaled = False

    # -- WAIT_EVENTS ------------------------------------------------------------------------
    def wait(self, read_entry, write_data, num_events: int, wait_all: bool, timeout_ms: int
             ) -> WaitOutcome:
        """kfd_wait_on_events.

        `read_entry(i)` returns the 48 bytes of entry i or None (EFAULT); `write_data(i, off,
        data)` copies data into entry i at byte `off` and returns False on EFAULT. A Python
        signal handler that raises while the thread sleeps is the simulator's signal: the wait
        ends as the kernel's does on ERESTARTSYS (EINTR to a handler without SA_RESTART, the
        remaining timeout, consumed auto-reset events set again) and the handler's exception
        is handed back in the outcome for the caller to raise after the ioctl's copy-out.
        """
        deadline = _deadline(timeout_ms)
        waiters = [_Waiter() for _ in range(num_events)]
        ret = 0
        result = WAIT_TIMEOUT
        signal: BaseException | None = None
        self.lock.acquire()
        try:
            for i in range(num_events):
                raw = read_entry(i)
                if raw is None:                                          # W2: EFAULT
                    ret = E.EFAULT
                    break
                eid = int.from_bytes(raw[EVENT_ID_OFFSET:EVENT_ID_OFFSET + 4], "little")
                ev = self.events.get(eid)
                if ev is None:                                           # W2: EINVAL
                    ret = E.EINVAL
                    break
                self._init_waiter(waiters[i], ev, int.from_bytes(raw[0:8], "little"))  # W3
            if not ret:
                result = _test(wait_all, waiters)                        # W4: check once
                if result == WAIT_COMPLETE:
                    ret = self._copy_data(waiters, write_data)
                elif result == WAIT_TIMEOUT:
                    while True:
                        result = _test(wait_all, waiters)
                        if result != WAIT_TIMEOUT:
                            break
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            break
                        try:
                            self.cond.wait(left)
                        except BaseException as exc:    # a signal handler raised (W6)
                            signal = exc
                            ret = E.EINTR
                            break
                    if not ret and result == WAIT_COMPLETE:
                        ret = self._copy_data(waiters, write_data)       # W7
        finally:
            self._free_waiters(waiters, undo_auto_reset=signal is not None)
            self.lock.release()
        if ret:                                                          # W5
            result = WAIT_FAIL
        elif result == WAIT_FAIL:
            ret = E.EIO
        if signal is not None and timeout_ms not in (TIMEOUT_IMMEDIATE, TIMEOUT_INFINITE):
            timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))
        return WaitOutcome(ret, result, timeout_ms, signal)

    def _free_waiters(self, waiters: list[_Waiter], *, undo_auto_reset: bool) -> None:
        """free_waiters: leave the wait queues. A wait ended by a signal (ERESTARTSYS; here an
        exception raised by a Python signal handler while sleeping) gives back what it
        consumed: every activated auto-reset event is set again (W6). A timeout does not."""
        for w in waiters:
            ev = w.event
            if ev is None:
                continue
            if w in ev.waiters:
                ev.waiters.remove(w)
            if undo_auto_reset and w.activated and ev.auto_reset:
                self._set_locked(ev)

    def _init_waiter(self, w: _Waiter, ev: Event, last_age: int) -> None:
        """init_event_waiter: activated if signaled; auto-reset consumed here (W3)."""
        w.event = ev
        w.activated = ev.signaled
        ev.signaled = ev.signaled and not ev.auto_reset
        if self.age_tracking and ev.type == EV_SIGNAL and last_age:
            w.age_enabled = True
            if ev.age != last_age:
                w.activated = True
        if not w.activated:
            ev.waiters.append(w)

    def _copy_data(self, waiters: list[_Waiter], write_data) -> int:
        """copy_signaled_event_data: only activated entries; MEMORY/HW data, SIGNAL age."""
        for i, w in enumerate(waiters):
            ev = w.event
            if ev is None:
                return E.EINVAL                  # destroyed after signaling
            if not w.activated:
                continue
            if ev.type == EV_MEMORY:
                data = ev.memory_data
            elif ev.type == EV_HW_EXCEPTION:
                data = ev.hw_data
            elif ev.type == EV_SIGNAL and w.age_enabled:
                data = ev.age.to_bytes(8, "little")
            else:
                continue
            if not write_data(i, 0, data):
                return E.EFAULT
        return 0

    # -- from the simulated hardware ----------------------------------------------------------
    def signal_interrupt(self, partial_id: int, valid_bits: int) -> None:
        """kfd_signal_event_interrupt (facts §4 I4)."""
        with self.lock:
            page = self.page
            ev = None
            if valid_bits:
                ev = self._lookup_partial(partial_id, valid_bits)
            if ev is not None:
                self._set_from_interrupt(ev)
            elif page is not None:
                if self.signal_event_count < SIGNAL_EVENT_LIMIT // 64:
                    for eid in sorted(self.events):      # idr_for_each_entry
                        if eid >= SIGNAL_EVENT_LIMIT:
                            break
                        if page.slot(eid) != UNSIGNALED:
                            self._set_from_interrupt(self.events[eid])
                else:
                    for eid in range(1, SIGNAL_EVENT_LIMIT):
                        if page.slot(eid) != UNSIGNALED:
                            self._set_from_interrupt(self.events.get(eid))

    def _lookup_partial(self, eid: int, bits: int) -> Event | None:
        """lookup_signaled_event_by_partial_id."""
        page = self.page
        if page is None or eid >= SIGNAL_EVENT_LIMIT:
            return None
        if bits > 31 or (1 << bits) >= SIGNAL_EVENT_LIMIT:
            if page.slot(eid) == UNSIGNALED:
                return None
            return self.events.get(eid)
        ev = None
        while eid < SIGNAL_EVENT_LIMIT and ev is None:
            if page.slot(eid) != UNSIGNALED:
                ev = self.events.get(eid)
            eid += 1 << bits
        return ev

    def _set_from_interrupt(self, ev: Event | None) -> None:
        """set_event_from_interrupt: SIGNAL/DEBUG only; ack the slot, then set_event."""
        if ev is not None and _gpu_signalable(ev.type):
            self.page.ack(ev.event_id)
            self._set_locked(ev)

    def signal_type(self, event_type: int, *, memory_data: bytes | None = None,
                    hw_data: bytes | None = None) -> int:
        """Set every event of a type (kfd_signal_vm_fault_event / reset / HW exception).

        The data is stored before waking waiters. Returns how many events were set.
        """
        n = 0
        with self.lock:
            for eid in sorted(self.events):
                if eid < FIRST_NONSIGNAL_ID:
                    continue
                ev = self.events[eid]
                if ev.type != event_type:
                    continue
                if memory_data is not None:
                    ev.memory_data = memory_data
                if hw_data is not None:
                    ev.hw_data = hw_data
                self._set_locked(ev)
                n += 1
        return n

    # -- lifetime -------------------------------------------------------------------------------
    def teardown(self) -> None:
        """kfd_event_free_process: destroy every event (waiters fail), free the kernel page."""
        with self.lock:
            for ev in list(self.events.values()):
                self._destroy_locked(ev)
            page, self.page = self.page, None
            if page is not None and page.owned:
                page.backing.close()
            self.cond.notify_all()

    def snapshot(self) -> dict[int, Event]:
        with self.lock:
            return dict(self.events)


def _order(size: int) -> int:
    """get_order(): log2 of the number of pages, rounded up."""
    pages = max((size + 4095) // 4096, 1)
    return (pages - 1).bit_length()


def _deadline(timeout_ms: int) -> float | None:
    """user_timeout_to_jiffies (W1): 0 = poll, 0xFFFFFFFF = infinite, else capped at 2^31-1."""
    if timeout_ms == TIMEOUT_INFINITE:
        return None
    if timeout_ms == TIMEOUT_IMMEDIATE:
        return time.monotonic()
    return time.monotonic() + min(timeout_ms, 0x7FFF_FFFF) / 1000.0


def _test(wait_all: bool, waiters: list[_Waiter]) -> int:
    """test_event_condition (W4)."""
    activated = 0
    for w in waiters:
        if w.event is None:
            return WAIT_FAIL
        if w.activated:
            if not wait_all:
                return WAIT_COMPLETE
            activated += 1
    return WAIT_COMPLETE if activated == len(waiters) else WAIT_TIMEOUT
