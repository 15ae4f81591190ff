"""Synchronisation and events: CREATE / SET / RESET / DESTROY / WAIT_EVENTS with their ids, errno,
auto-reset and manual-reset semantics, wait-any / wait-all, event age, interrupts from PM4
RELEASE_MEM, SDMA TRAP and AQL completion through the event page, and timeline signals waited on
by the CPU and by other queues of every kind (KFDEventTest, rocrtst signal tests)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_amdgpu.runtime import EVENT_TYPES

from ._helpers import (
    EINVAL,
    ENOSPC,
    EVENT_HW_EXCEPTION,
    EVENT_MEMORY,
    EVENT_SIGNAL,
    EVENT_SLOTS,
    FIRST_NONSIGNAL_EVENT_ID,
    SDMA_FENCE_MTYPE,
    UNSIGNALED_SLOT,
    kfd_errno,
    raw_release_mem,
    raw_sdma_fence,
    raw_sdma_trap,
    raw_write_data,
    stays,
    u32,
    wait_for,
)

pytestmark = pytest.mark.amdgpu_area("sync_events")

EVENTS_PAGE_OFFSET = 2 << 62          # KFD_MMAP_TYPE_EVENTS (facts-kfd.md §3 M1, §2.8 E3)


class _Events:
    """Raw KFD events made for one test and destroyed at its end."""

    def __init__(self, device) -> None:
        self.device = device
        self.kfd = device.kfd
        self.ids: list[int] = []

    def create(self, event_type: int = EVENT_SIGNAL, auto_reset: bool = True):
        info = self.kfd.create_event(event_type=event_type, auto_reset=auto_reset,
                                     node_id=self.device.node.index)
        self.ids.append(info.event_id)
        return info

    def destroy(self, event_id: int) -> None:
        self.kfd.destroy_event(event_id=event_id)
        self.ids.remove(event_id)

    def wait(self, ids, timeout_ms: int, *, all_: bool = False, ages=None) -> bool:
        r = self.kfd.wait_events(event_ids=list(ids), timeout_ms=timeout_ms, wait_for_all=all_,
                                 last_event_ages=ages)
        return r.complete

    def slot(self, event_id: int) -> int:
        base = self.device.process.event_page
        return int(base.view(np.uint64)[event_id])

    def mailbox(self, event_id: int) -> int:
        return self.device.process.mailbox_address(event_id)

    def close(self) -> None:
        for eid in list(self.ids):
            self.destroy(eid)


@pytest.fixture
def events(amdgpu_device):
    ev = _Events(amdgpu_device)
    yield ev
    ev.close()


@pytest.mark.parametrize("kind", list(EVENT_TYPES))
def test_create_event_ids(events, kind):
    """KFDEventTest.CreateDestroyEvent: SIGNAL and DEBUG events get ids in the event page's slot
    range, event_slot_index = id and the EVENTS mmap offset; every other type gets an id from
    0x40000000 up and offset 0; trigger data is the id (facts-kfd.md §2.8 E3-E5)."""
    t = EVENT_TYPES[kind]
    info = events.create(t)
    assert info.trigger_data == info.event_id
    if kind in ("signal", "debug"):
        assert 1 <= info.event_id < EVENT_SLOTS
        assert info.slot_index == info.event_id
        assert info.page_offset == EVENTS_PAGE_OFFSET
    else:
        assert info.event_id >= FIRST_NONSIGNAL_EVENT_ID
        assert info.page_offset == 0


def test_set_wait_auto_reset(events):
    """KFDEventTest.SignalEvent: SET_EVENT then WAIT_EVENTS completes; an auto-reset event is
    consumed by that wait, so the next wait times out (facts-kfd.md §2.8 SET, §2.9 W3)."""
    e = events.create(auto_reset=True).event_id
    events.kfd.set_event(event_id=e)
    assert events.wait([e], 1000)
    assert not events.wait([e], 30)


def test_manual_reset_event(events):
    """KFDEventTest.SignalEvent (manual reset): A manual-reset event stays signaled through
    several waits until RESET_EVENT."""
    e = events.create(auto_reset=False).event_id
    events.kfd.set_event(event_id=e)
    assert events.wait([e], 1000)
    assert events.wait([e], 1000)
    events.kfd.reset_event(event_id=e)
    assert not events.wait([e], 30)


def test_wait_times_out(events):
    """KFDEventTest.SignalEvent (timeouts): WAIT_EVENTS on an unsignaled event returns TIMEOUT
    (not an error) after its timeout in milliseconds; timeout 0 polls (facts-kfd.md §2.9 W1,
    W5)."""
    e = events.create().event_id
    r = events.kfd.wait_events(event_ids=[e], timeout_ms=20)
    assert r.status == "timeout"
    assert events.kfd.wait_events(event_ids=[e], timeout_ms=0).status == "timeout"


@pytest.mark.parametrize("op", ["set", "reset", "destroy", "wait"])
@pytest.mark.parametrize("which", ["signal_range", "nonsignal_range"])
def test_invalid_event_id_is_einval(events, op, which):
    """KFDEventTest.SignalInvalidEvent: SET / RESET / DESTROY / WAIT_EVENTS on an id that no
    event has are EINVAL (facts-kfd.md §2.8, §2.9 W2)."""
    bad = 4000 if which == "signal_range" else FIRST_NONSIGNAL_EVENT_ID + 0xFFFF
    kfd = events.kfd
    call = {"set": lambda: kfd.set_event(event_id=bad),
            "reset": lambda: kfd.reset_event(event_id=bad),
            "destroy": lambda: kfd.destroy_event(event_id=bad),
            "wait": lambda: kfd.wait_events(event_ids=[bad], timeout_ms=0)}[op]
    assert kfd_errno(call) == EINVAL


@pytest.mark.parametrize("kind", ["memory", "hw_exception"])
def test_cpu_cannot_set_exception_events(events, kind):
    """KFDEventTest.SignalInvalidEvent (wrong event type): SET_EVENT and RESET_EVENT are for
    SIGNAL events only: a MEMORY or HW_EXCEPTION event is EINVAL (facts-kfd.md §2.8)."""
    e = events.create(EVENT_MEMORY if kind == "memory" else EVENT_HW_EXCEPTION).event_id
    assert kfd_errno(events.kfd.set_event, event_id=e) == EINVAL
    assert kfd_errno(events.kfd.reset_event, event_id=e) == EINVAL


def test_wait_for_all(events):
    """KFDEventTest.SignalMultipleEventsWaitForAll: with eight manual-reset events a wait-all
    times out while one is unsignaled and completes once all are set (facts-kfd.md §2.9 W4)."""
    ids = [events.create(auto_reset=False).event_id for _ in range(8)]
    for e in ids[:7]:
        events.kfd.set_event(event_id=e)
    assert not events.wait(ids, 30, all_=True)
    events.kfd.set_event(event_id=ids[7])
    assert events.wait(ids, 1000, all_=True)


def test_wait_any_consumes_only_the_signaled(events):
    """KFDEventTest.SignalMultipleEventsWaitForAny: a wait-any over eight auto-reset events
    completes when one is set and consumes only that one; the others still time out."""
    ids = [events.create().event_id for _ in range(8)]
    events.kfd.set_event(event_id=ids[5])
    assert events.wait(ids, 1000)
    assert not events.wait(ids, 30)


@pytest.mark.parametrize("auto_reset", [True, False], ids=["auto", "manual"])
def test_set_before_wait_is_remembered(events, auto_reset):
    """KFDEventTest (signal before wait): an event set while nobody waits stays signaled until a
    wait sees it (SET: signaled = !auto_reset || no waiter, facts-kfd.md §2.8); the polling
    wait that sees it consumes an auto-reset event (two SETs do not count twice) and leaves a
    manual-reset one signaled (§2.9 W3)."""
    e = events.create(auto_reset=auto_reset).event_id
    events.kfd.set_event(event_id=e)
    events.kfd.set_event(event_id=e)
    assert events.wait([e], 0)
    assert events.wait([e], 0) == (not auto_reset)


def test_event_age(events):
    """KFDEventTest.SignalEvent (event age): WAIT_EVENTS with last_event_age (KFD >= 1.14): each
    SET bumps the event's age; a wait that passes an older age completes at once and reports the
    current age, one with the current age waits (facts-kfd.md §2.8 SET, §2.9 W3, W7)."""
    if not events.kfd.has(14):
        pytest.skip(f"event age tracking needs KFD 1.14; this KFD is {events.kfd.version}")
    e = events.create(auto_reset=True).event_id
    events.kfd.set_event(event_id=e)
    r = events.kfd.wait_events(event_ids=[e], timeout_ms=1000, last_event_ages=[1])
    assert r.complete
    age = r.data[0].last_event_age
    assert age == 2
    assert events.wait([e], 0, ages=[1])
    assert not events.wait([e], 20, ages=[2])


def test_create_max_events(amdgpu_device):
    """KFDEventTest.CreateMaxEvents: signal events can be created until the 4096-slot event page
    is full (slot 0 is reserved), then CREATE_EVENT is ENOSPC; destroying one makes room for
    exactly one more (facts-kfd.md §2.8 E3)."""
    kfd = amdgpu_device.kfd
    codes: list[int] = []
    create = kfd.prepared("CREATE_EVENT", event_type=EVENT_SIGNAL, auto_reset=1,
                          node_id=amdgpu_device.node.index, on_error=codes.append)
    destroy = kfd.prepared("DESTROY_EVENT", on_error=codes.append)
    args = create.args
    ids: list[int] = []
    try:
        for _ in range(EVENT_SLOTS + 1):
            args.event_page_offset = 0
            create()
            if codes:
                break
            ids.append(int(args.event_id))
        assert codes == [ENOSPC]
        assert 0 < len(ids) < EVENT_SLOTS
        assert 0 not in ids and max(ids) < EVENT_SLOTS and len(set(ids)) == len(ids)
        freed = ids.pop(len(ids) // 2)
        destroy.args.event_id = freed
        destroy()
        args.event_page_offset = 0
        codes.clear()
        create()
        assert not codes and int(args.event_id) == freed
        ids.append(freed)
        assert kfd_errno(kfd.create_event, event_type=EVENT_SIGNAL) == ENOSPC
    finally:
        codes.clear()
        for e in ids:
            destroy.args.event_id = e
            destroy()
        assert not codes, f"DESTROY_EVENT failed: {codes[:3]}"


# -- interrupts --------------------------------------------------------------------------------

def test_pm4_interrupt_signals_the_event(events, amdgpu_queue):
    """KFDEventTest.PM4EventInterrupt: RELEASE_MEM writes the event id into the event's slot of
    the event page and raises an interrupt carrying the id (INT_SEL 2); WAIT_EVENTS completes,
    and the driver put the slot back to UNSIGNALED (facts-kfd.md §4 I1, I3, I4)."""
    e = events.create().event_id
    assert events.slot(e) == UNSIGNALED_SLOT
    amdgpu_queue.submit(raw_release_mem(events.mailbox(e), e, 1, int_sel=2, ctxid=e))
    assert events.wait([e], 5000)
    wait_for(lambda: events.slot(e), lambda v: v == UNSIGNALED_SLOT, what="the event slot")


def test_sdma_trap_signals_the_event(events, amdgpu_sdma_queue, amdgpu_device):
    """KFDEventTest.SdmaEventInterrupt: an SDMA FENCE of the event id into its slot, then a TRAP
    with int_context = id, completes WAIT_EVENTS (facts-sdma §6.2, facts-kfd.md §4 I3)."""
    e = events.create().event_id
    mtype = SDMA_FENCE_MTYPE[amdgpu_device.name]
    amdgpu_sdma_queue.submit(raw_sdma_fence(events.mailbox(e), e, mtype), raw_sdma_trap(e))
    assert events.wait([e], 5000)
    wait_for(lambda: events.slot(e), lambda v: v == UNSIGNALED_SLOT, what="the event slot")


def test_aql_completion_interrupt(amdgpu_aql_queue, amdgpu_signal):
    """rocrtst signal tests (interrupt signals): an AQL packet whose completion signal has an
    event mailbox makes the packet processor write the event id there and interrupt; the signal's
    KFD event is signaled, not only its value decremented (facts-sdma §2.6)."""
    sig = amdgpu_signal(1, interrupt=True)
    amdgpu_aql_queue.barrier_and((), completion_signal=sig)
    assert sig.event.wait(timeout=5)
    assert sig.value == 0


def test_interrupt_with_unknown_id_scans_slots(events, amdgpu_queue):
    """KFDEventTest.MeasureInterruptConsumption / PM4EventInterrupt (slot scan): An interrupt
    whose id does not name a signaled slot (here 5000, past the page) makes the driver scan the
    page: every event whose slot is not UNSIGNALED is signaled — the one the GPU wrote 1 into —
    and the others stay unsignaled (facts-kfd.md §4 I4)."""
    hit = events.create().event_id
    miss = events.create().event_id
    amdgpu_queue.submit(raw_write_data(events.mailbox(hit), [1, 0]),
                        raw_release_mem(0, 0, 0, int_sel=1, ctxid=5000))
    assert events.wait([hit], 5000)
    assert not events.wait([miss], 20)


def test_interrupt_without_slot_write_signals_nothing(events, amdgpu_queue, amdgpu_buffer):
    """PM4EventInterrupt (negative): An interrupt carrying an event's id while its slot is still
    UNSIGNALED does not signal it (the driver trusts only a written slot, facts-kfd.md §4 I4)."""
    e = events.create().event_id
    buf = amdgpu_buffer(4096, "gtt")
    amdgpu_queue.submit(raw_release_mem(buf.gpu_address, 0x1D, 1, int_sel=2, ctxid=e))
    wait_for(lambda: u32(buf), lambda v: v == 0x1D, what="the RELEASE_MEM data")
    assert not events.wait([e], 50)


# -- signals and timelines -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["pm4", "sdma"])
def test_timeline_64bit_values(amdgpu_device, amdgpu_signal, kind):
    """rocrtst signal tests (64-bit timeline values): Timeline semantics: GPU producers write
    64-bit signal values (PM4 RELEASE_MEM DATA_SEL 2; SDMA two FENCEs, low then high) that rise
    above 2**32; CPU waits see each exact value."""
    q = amdgpu_device.create_queue(kind, owner="timeline")
    try:
        sig = amdgpu_signal(0)
        for v in (5, 0x1_0000_0005, 0x2_0000_0000, 0x7FFF_FFFF_FFFF_FFFF):
            q.signal(sig, v)
            assert sig.wait(v, cond="==", timeout=10) == v
    finally:
        q.destroy()


@pytest.mark.parametrize("interrupt", [False, True], ids=["polling", "interrupt"])
def test_cpu_wait_for_gpu(amdgpu_queue, amdgpu_buffer, amdgpu_signal, interrupt):
    """KFDEventTest / rocrtst signal wait: a CPU wait, by polling the value or by sleeping on the
    signal's event, returns once a PM4 queue released by the CPU has set the signal, and not
    before."""
    gate = amdgpu_buffer(4096, "gtt")
    sig = amdgpu_signal(0, interrupt=interrupt)
    amdgpu_queue.wait_reg_mem(gate.gpu_address, 1, function="==")
    amdgpu_queue.signal(sig, 3)
    stays(lambda: sig.value, 0, seconds=0.1, what="a signal behind a closed gate")
    gate.view(np.uint32)[0] = 1
    assert sig.wait(3, timeout=10) == 3


def test_ordering_across_pm4_aql_sdma(amdgpu_device, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.SyncBetweenQueues / rocrtst signal tests (ordering across queue kinds): Ordering
    across queue kinds with GPU-side waits only: a PM4 queue waits for a CPU flag and sets s1 to
    0; an AQL barrier-AND waits for s1 and decrements s2; an SDMA queue polls s2 for 0 and writes
    a marker. Nothing moves before the flag; afterwards all three do."""
    flag = amdgpu_buffer(4096, "gtt")
    s1, s2 = amdgpu_signal(1), amdgpu_signal(1)
    queues = [amdgpu_device.create_queue(k, owner="ordering") for k in ("sdma", "aql", "pm4")]
    sdma_q, aql_q, pm4_q = queues
    try:
        sdma_q.wait_for(s2, 0, cond="==")
        sdma_q.fence(flag.gpu_address + 8, 0x5D)
        aql_q.barrier_and((s1,), completion_signal=s2)
        pm4_q.wait_reg_mem(flag.gpu_address, 1, function="==")
        pm4_q.signal(s1, 0)
        stays(lambda: (s1.value, s2.value, u32(flag, 2)), (1, 1, 0), seconds=0.15,
              what="the chain before the CPU flag")
        flag.view(np.uint32)[0] = 1
        wait_for(lambda: u32(flag, 2), lambda v: v == 0x5D, what="the SDMA marker")
        assert (s1.value, s2.value) == (0, 0)
    finally:
        for q in queues:
            q.destroy()


def test_signal_waits_from_every_queue_kind(amdgpu_device, amdgpu_signal):
    """rocrtst signal tests / KFDQMTest.SyncBetweenQueues (GPU-side waits): A signal set from the
    CPU releases GPU-side waits of a PM4 (WAIT_REG_MEM), an SDMA (POLL_REGMEM) and an AQL
    (BARRIER_VALUE) queue at once."""
    gate = amdgpu_signal(0)
    outs = [amdgpu_signal(0) for _ in range(2)]
    aql_done = amdgpu_signal(1)
    queues = [amdgpu_device.create_queue(k, owner="waits") for k in ("pm4", "sdma", "aql")]
    try:
        for q, out in zip(queues[:2], outs):
            q.wait_for(gate, 7, cond=">=")
            q.signal(out, 1)
        queues[2].wait_for(gate, 7, cond=">=")
        queues[2].signal(aql_done)
        stays(lambda: (outs[0].value, outs[1].value, aql_done.value), (0, 0, 1), seconds=0.1,
              what="waits on an unset signal")
        gate.set(7)
        for out in outs:
            out.wait(1, timeout=10)
        aql_done.wait(0, cond="==", timeout=10)
    finally:
        for q in queues:
            q.destroy()
