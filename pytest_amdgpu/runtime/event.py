"""`Event`: a KFD event (CREATE_EVENT) — set and reset from the CPU, signalled by GPU
interrupts through its slot in the process's event page, waited on with WAIT_EVENTS.

Signal events get a slot in the event page the process registered (facts-kfd.md §2.8 E1/E3):
``mailbox_address`` is where a GPU writes before raising the interrupt (RELEASE_MEM with an
interrupt, SDMA TRAP), so the driver signals exactly this event (§4 I4). MEMORY and
HW_EXCEPTION events carry the exception data of the last wait that saw them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..kfd.ioctl import HWExceptionData, MemoryExceptionData, WaitResult
from ._util import resolve_timeout
from .process import EVENT_TYPES

if TYPE_CHECKING:
    from .device import Device

__all__ = ["Event", "EVENT_TYPES"]

_SLOTTED = (EVENT_TYPES["signal"], EVENT_TYPES["debug"])
_EXCEPTION_TYPES = (EVENT_TYPES["memory"], EVENT_TYPES["hw_exception"])


class Event:
    """A KFD event made by `Device.create_event`."""

    kind = "event"

    def __init__(self, device: Device, kind: str | int = "signal", *, auto_reset: bool = True,
                 owner: object = None, internal: bool = False) -> None:
        if isinstance(kind, str):
            try:
                event_type = EVENT_TYPES[kind]
            except KeyError:
                raise UsageError(f"event kind must be one of {', '.join(EVENT_TYPES)}, got "
                                 f"{kind!r}") from None
            self.event_kind = kind
        elif isinstance(kind, int) and not isinstance(kind, bool):
            event_type = kind
            names = {v: k for k, v in EVENT_TYPES.items()}
            self.event_kind = names.get(kind, f"type{kind}")
        else:
            raise UsageError(f"event kind must be a name or a KFD_IOC_EVENT_* number, got "
                             f"{kind!r}")
        self.device = device
        self.process = device.process
        self.owner = owner
        self.internal = internal
        self.auto_reset = bool(auto_reset)
        self.event_type = event_type
        info = self.process.kfd.create_event(event_type=event_type, auto_reset=auto_reset,
                                              node_id=device.node.index)
        self.event_id = info.event_id
        self.trigger_data = info.trigger_data
        self.slot_index: int | None = info.slot_index if event_type in _SLOTTED else None
        self.mailbox_address: int | None = (
            self.process.mailbox_address(self.slot_index) if self.slot_index is not None
            else None)
        self.data: MemoryExceptionData | HWExceptionData | None = None
        self._lock = threading.Lock()
        self._destroyed = False

    def __repr__(self) -> str:
        state = " destroyed" if self._destroyed else ""
        return f"<Event {self.event_kind} id={self.event_id}{state}>"

    def describe(self) -> str:
        slot = f" slot {self.slot_index}" if self.slot_index is not None else ""
        return f"{self.event_kind} event {self.event_id}{slot}"

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    closed = destroyed

    def _check(self, what: str) -> None:
        if self._destroyed:
            raise UsageError(f"Event.{what}: {self.describe()} was destroyed")

    # -- CPU operations -----------------------------------------------------------------------
    def set(self) -> None:
        """SET_EVENT (signal events only; the driver refuses other kinds with EINVAL)."""
        self._check("set")
        self.process.kfd.set_event(event_id=self.event_id)

    def reset(self) -> None:
        """RESET_EVENT (signal events only)."""
        self._check("reset")
        self.process.kfd.reset_event(event_id=self.event_id)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the event is signalled: True, or False after `timeout` seconds (default
        10 s). An auto-reset event is consumed by the wait. A GPU fault in the process raises
        GPUFaultError (unless this is itself a MEMORY / HW_EXCEPTION event)."""
        return Event.wait_any([self], timeout)

    @staticmethod
    def wait_any(events: Sequence[Event], timeout: float | None = None) -> bool:
        """Wait until at least one of `events` is signalled (True) or `timeout` passes."""
        return _wait(events, timeout, wait_all=False)

    @staticmethod
    def wait_all(events: Sequence[Event], timeout: float | None = None) -> bool:
        """Wait until every one of `events` is signalled (True) or `timeout` passes. One
        WAIT_EVENTS with wait_for_all, so faults are checked before and after, not during."""
        return _wait(events, timeout, wait_all=True)

    # -- lifetime ---------------------------------------------------------------------------
    def destroy(self) -> None:
        """DESTROY_EVENT (idempotent)."""
        with self._lock:
            if self._destroyed:
                return
            if not self.process.kfd.closed:
                self.process.kfd.destroy_event(event_id=self.event_id)
            self._destroyed = True
        if not self.internal:
            self.device._forget(self)

    close = destroy

    def __enter__(self) -> Event:
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


def _wait(events: Sequence[Event], timeout: float | None, *, wait_all: bool) -> bool:
    events = list(events)
    if not events:
        raise UsageError("Event.wait_any / wait_all: no events given")
    for e in events:
        if not isinstance(e, Event):
            raise UsageError(f"Event.wait_any / wait_all: {e!r} is not an Event")
        e._check("wait")
    process = events[0].process
    if any(e.process is not process for e in events):
        raise UsageError("Event.wait_any / wait_all: the events belong to different KFD "
                         "processes (one WAIT_EVENTS can only wait on one process's events)")
    seconds = resolve_timeout(timeout)
    watch = not any(e.event_type in _EXCEPTION_TYPES for e in events)
    if wait_all and watch:
        process.check_exceptions()
    result = process.wait_events([e.event_id for e in events], seconds, wait_all=wait_all,
                                 watch=watch)
    _store_data(events, result)
    return result.complete


def _store_data(events: list[Event], result: WaitResult) -> None:
    if not result.complete:
        return
    by_id = {d.event_id: d for d in result.data}
    for e in events:
        d = by_id.get(e.event_id)
        if d is None:
            continue
        if d.memory is not None and d.memory.gpu_id:
            e.data = d.memory
        elif d.hw_exception is not None and d.hw_exception.gpu_id:
            e.data = d.hw_exception

