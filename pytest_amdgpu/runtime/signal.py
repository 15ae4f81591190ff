"""`Signal`: an HSA-style completion signal — an ``amd_signal_t`` in GPU-visible memory with a
64-bit value that GPU packets write and wait on and the CPU waits for with a deadline.

Layout (amd_hsa_signal.h, facts-sdma-aql-codeobj.md §3.1; offsets from `packets.aql`): kind
(USER = 1) at +0, the value at +8, ``event_mailbox_ptr`` at +16 and ``event_id`` at +24. The
signal's handle is its address. GPU producers: PM4 RELEASE_MEM (64-bit data), SDMA FENCE or
ATOMIC, AQL completion (the packet processor decrements the value). GPU consumers: PM4
WAIT_REG_MEM, SDMA POLL_REGMEM (both compare 32 bits), AQL barrier-AND (value == 0).

A CPU wait polls the value with short, growing sleeps (the simulator's GPU thread needs the
GIL), or — for ``interrupt=True`` signals — sleeps in WAIT_EVENTS on the signal's event, which
the producer's interrupt wakes (the producer writes ``event_id`` to the mailbox slot first,
facts-kfd.md §4 I4). Every wait has a deadline and watches the process's exception events: a
GPU fault ends it with GPUFaultError, a timeout raises GPUTimeoutError naming the queues the
signal was last used on, their read/write pointers and the decoded packets at each read
pointer.
"""

from __future__ import annotations

import operator
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import GPUTimeoutError, UsageError
from ..kfd import _syscall
from ..packets import aql as _aql
from ._util import backoff, check_int, load64, resolve_timeout, store64, write_bytes
from .event import Event
from .process import WAIT_SLICE

if TYPE_CHECKING:
    from .device import Device
    from .process import Process
    from .queue import Queue

__all__ = ["CONDITIONS", "Signal", "wait_until"]

CONDITIONS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
    "==": operator.eq, "!=": operator.ne,
}
# Comparison codes of _syscall.wait_value (the C poll that runs without the GIL).
_C_CONDITIONS = {"<": 1, "<=": 2, "==": 3, "!=": 4, ">=": 5, ">": 6}
_MASK64 = 0xFFFFFFFFFFFFFFFF
SPIN_FIRST = 200e-6               # a polling wait first polls in C this long, GIL released
EXCEPTION_CHECK_INTERVAL = 2e-3   # first exception poll of a polling wait (seconds) …
EXCEPTION_CHECK_MAX = 50e-3       # … growing to this, so long waits do not flood the trace
MAX_REMEMBERED_QUEUES = 4
_MIN_S64 = -(1 << 63)


_SIG = _aql.AMD_SIGNAL
SIGNAL_SIZE = _SIG.sizeof
_KIND = _SIG.kind
_VALUE = _SIG.value
_MAILBOX = _SIG.event_mailbox_ptr
_EVENT_ID = _SIG.event_id
AMD_SIGNAL_KIND_USER = int(_aql.SignalKind.USER)


def _image_struct() -> tuple[struct.Struct, Callable[[tuple[int, int, int, int]], tuple]]:
    """The whole amd_signal_t as one struct — kind, value, event_mailbox_ptr (64-bit each) and
    event_id (32-bit) at their layout offsets, every other byte 0 — so a new signal's slot is
    written with one copy instead of a store per field; and the function that orders
    (kind, value, mailbox, event_id) as the struct packs them."""
    fields = [(_KIND, "Q"), (_VALUE, "Q"), (_MAILBOX, "Q"), (_EVENT_ID, "I")]
    order = sorted(range(len(fields)), key=lambda i: fields[i][0])
    fmt, pos = "<", 0
    for offset, code in (fields[i] for i in order):
        if offset < pos:
            raise AssertionError("amd_signal_t fields overlap")
        fmt += f"{offset - pos}x{code}" if offset > pos else code
        pos = offset + struct.calcsize("<" + code)
    return struct.Struct(fmt + f"{SIGNAL_SIZE - pos}x"), operator.itemgetter(*order)


_IMAGE, _IMAGE_ORDER = _image_struct()
_USER_IMAGES: dict[int, bytes] = {}


def _user_image(initial: int) -> bytes:
    """The slot image of a signal without event holding `initial` (the small values
    completion signals start at are kept)."""
    image = _USER_IMAGES.get(initial)
    if image is None:
        image = _IMAGE.pack(*_IMAGE_ORDER((AMD_SIGNAL_KIND_USER, initial & _MASK64, 0, 0)))
        if -16 <= initial <= 16:
            _USER_IMAGES[initial] = image
    return image


def _signed64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >> 63 else value


def check_condition(cond: str) -> Callable[[int, int], bool]:
    try:
        return CONDITIONS[cond]
    except KeyError:
        raise UsageError(f"cond must be one of {', '.join(map(repr, CONDITIONS))}, got "
                         f"{cond!r}") from None


def wait_until(read: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float,
               process: Process, gpu_ids: Iterable[int] = (), event_id: int | None = None,
               on_timeout: Callable[[Any, float], Exception],
               context: Callable[[], str] | None = None) -> Any:
    """Wait until ``done(read())``; return the last value read.

    Polls with backoff, or sleeps in WAIT_EVENTS on `event_id` (in slices of WAIT_SLICE so a
    producer without an interrupt is still seen). Exceptions of the process end the wait
    (GPUFaultError / HWExceptionError); at the deadline ``on_timeout(value, timeout)`` is
    raised — after one last exception check, so a fault wins over a timeout. `context`
    gives the queue state appended to a fault's message.
    """
    value = read()
    if done(value):
        return value
    gpus = list(gpu_ids)
    process.raise_if_faulted(gpus, context)
    deadline = time.monotonic() + timeout
    if event_id is not None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            process.wait_events([event_id], min(left, WAIT_SLICE), gpu_ids=gpus,
                                context=context)
            value = read()
            if done(value):
                return value
    else:
        interval = EXCEPTION_CHECK_INTERVAL
        next_check = time.monotonic() + interval
        for left in backoff(deadline):
            value = read()
            if done(value):
                return value
            if left <= 0:
                break
            now = time.monotonic()
            if now >= next_check:
                process.check_exceptions(gpus, context)
                interval = min(interval * 2, EXCEPTION_CHECK_MAX)
                next_check = now + interval
    process.check_exceptions(gpus, context)
    value = read()
    if done(value):
        return value
    raise on_timeout(value, timeout)


def _queue_context(queues: list[Queue]) -> str:
    if not queues:
        return ""
    return "queues the wait depended on:\n" + "\n".join(q.state_report() for q in queues)


class Signal:
    """A completion signal made by `Device.create_signal` (see the module docstring)."""

    kind = "signal"

    def __init__(self, device: Device, initial: int = 0, *, interrupt: bool = False,
                 owner: object = None, internal: bool = False) -> None:
        if type(initial) is not int or not _MIN_S64 <= initial <= _MASK64:
            initial = check_int("initial", initial, minimum=_MIN_S64, maximum=_MASK64)
        self.device = device
        self.process = device.process
        self.owner = owner
        self.internal = internal
        self.interrupt = bool(interrupt)
        self._queues: list[weakref.ref[Queue]] = []
        self._lock = threading.Lock()
        self._freed = False
        self.event: Event | None = None
        self.address = self.process.alloc_signal_slot()
        try:
            if interrupt:
                self.event = Event(device, "signal", auto_reset=True, internal=True,
                                   owner=self)
                assert self.event.mailbox_address is not None
                image = _IMAGE.pack(*_IMAGE_ORDER((AMD_SIGNAL_KIND_USER, initial & _MASK64,
                                                   self.event.mailbox_address,
                                                   self.event.event_id)))
            else:
                image = _user_image(initial)
            # the whole slot in one copy; packets that use the signal are published after it
            # with a release store, which orders this write before them
            write_bytes(self.address, image)
        except BaseException:
            if self.event is not None:
                self.event.destroy()
            self.process.free_signal_slot(self.address)
            raise

    # -- identity ---------------------------------------------------------------------------
    @property
    def handle(self) -> int:
        """The HSA signal handle: the address of the amd_signal_t."""
        return self.address

    @property
    def value_address(self) -> int:
        """GPU/CPU address of the 64-bit value (what packets write and poll)."""
        return self.address + _VALUE

    @property
    def mailbox_address(self) -> int | None:
        return self.event.mailbox_address if self.event is not None else None

    @property
    def event_id(self) -> int | None:
        return self.event.event_id if self.event is not None else None

    @property
    def freed(self) -> bool:
        return self._freed

    closed = freed

    def __repr__(self) -> str:
        if self._freed:
            return f"<Signal {self.address:#x} freed>"
        return f"<Signal {self.address:#x} value={self.value}{' interrupt' if self.interrupt else ''}>"

    def describe(self) -> str:
        irq = f", event {self.event_id}" if self.event is not None else ""
        return f"signal {self.address:#x}{irq}"

    # -- value ------------------------------------------------------------------------------
    def _check(self, what: str) -> None:
        if self._freed:
            raise UsageError(f"Signal.{what}: {self.describe()} was freed")

    @property
    def value(self) -> int:
        """The current value (signed 64-bit, as hsa_signal_value_t)."""
        self._check("value")
        return _signed64(load64(self.address + _VALUE))

    def set(self, value: int) -> None:
        """Store `value` from the CPU (release store); wakes interrupt waiters too."""
        self._check("set")
        value = check_int("value", value, minimum=-(1 << 63), maximum=(1 << 64) - 1)
        store64(self.address + _VALUE, value)
        if self.event is not None:
            self.event.set()

    def wait(self, value: int, *, cond: str = ">=", timeout: float | None = None) -> int:
        """Wait until ``signal_value cond value``; returns the value seen.

        timeout in seconds (default 10). Raises GPUTimeoutError (naming the queues this signal
        was last submitted on, with their pointers and decoded rings) or GPUFaultError /
        HWExceptionError when the GPU reports an exception meanwhile.
        """
        if self._freed:
            self._check("wait")
        if value.__class__ is not int or not -(1 << 63) <= value <= _MASK64:
            value = check_int("value", value, minimum=-(1 << 63), maximum=_MASK64)
        target = value if value < (1 << 63) else value - (1 << 64)     # signed 64-bit
        test = CONDITIONS.get(cond) or check_condition(cond)
        if (type(timeout) is int or type(timeout) is float) and timeout >= 0:
            seconds = timeout
        else:
            seconds = resolve_timeout(timeout)
        if self.event is None:
            # First poll in C with the GIL released: the common fast answer costs no Python
            # work, and a simulated GPU thread can run meanwhile.
            seen = _signed64(_syscall.wait_value(
                self.address + _VALUE, 8, _MASK64, value & _MASK64, _C_CONDITIONS[cond],
                int((SPIN_FIRST if seconds > SPIN_FIRST else seconds) * 1e9)))
            if test(seen, target):
                return seen
        queues = self.queues
        return wait_until(
            lambda: _signed64(load64(self.address + _VALUE)),
            lambda v: test(v, target),
            timeout=seconds, process=self.process,
            gpu_ids={q.device.gpu_id for q in queues},
            event_id=self.event.event_id if self.event is not None else None,
            on_timeout=lambda v, t: self._timeout_error(v, cond, target, t, queues),
            context=lambda: _queue_context(queues))

    def wait_eq(self, value: int, *, timeout: float | None = None) -> int:
        return self.wait(value, cond="==", timeout=timeout)

    # -- bookkeeping --------------------------------------------------------------------------
    def _submitted_on(self, queue: Queue) -> None:
        """Remember `queue` as one this signal was used on (for timeout reports)."""
        queues = self._queues
        if queues:
            if queues[-1]() is queue:
                return          # already the most recent one: nothing would change
        else:
            with self._lock:
                if not self._queues:
                    self._queues.append(weakref.ref(queue))
                    return
        with self._lock:
            self._queues = [r for r in self._queues if r() is not None and r() is not queue]
            self._queues.append(weakref.ref(queue))
            del self._queues[:-MAX_REMEMBERED_QUEUES]

    @property
    def queues(self) -> list[Queue]:
        """The queues this signal was last submitted on, most recent last."""
        with self._lock:
            return [q for q in (r() for r in self._queues) if q is not None]

    def _timeout_error(self, seen: int, cond: str, target: int, timeout: float,
                       queues: list[Queue]) -> GPUTimeoutError:
        msg = (f"{self.describe()} did not reach value {cond} {target} ({target:#x}) within "
               f"{timeout:g} s; its value is {seen} ({seen & 0xFFFFFFFFFFFFFFFF:#x})")
        if not queues:
            msg += "; it was not submitted on any queue (nothing on the GPU will change it)"
            return GPUTimeoutError(msg)
        msg += "; last submitted on " + ", ".join(q.describe() for q in queues)
        details = "\n".join(q.state_report() for q in queues)
        return GPUTimeoutError(msg, queue=queues[-1], details=details)

    def _rearm(self, initial: int) -> None:
        """Use this completion signal again (its queue's own, no event, so its queue history
        is that queue): value `initial`. Its packet is published after this release store."""
        store64(self.address + _VALUE, initial)

    # -- lifetime ---------------------------------------------------------------------------
    def free(self) -> None:
        """Release the signal's memory slot (and its event). Idempotent."""
        with self._lock:
            if self._freed:
                return
            self._freed = True
        try:
            if self.event is not None:
                self.event.destroy()
        finally:
            self.process.free_signal_slot(self.address)
            if not self.internal:
                self.device._forget(self)

    close = free

    def __enter__(self) -> Signal:
        return self

    def __exit__(self, *exc) -> None:
        self.free()
