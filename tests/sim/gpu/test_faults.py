"""The fault model: VM faults, malformed packets, hangs, destroying busy or hung queues.

Each fault is observed the way a user-space driver sees it: the MEMORY or HW_EXCEPTION event
(WAIT_EVENTS and its data), queues that stop, other processes that keep working.
"""

from __future__ import annotations

import struct

import pytest

from pytest_amdgpu.packets import aql as A
from pytest_amdgpu.packets import pm4 as P
from pytest_amdgpu.packets import sdma as S

from .rig import EV_HW_EXCEPTION, EV_MEMORY, Rig, poll
from .test_aql import Signals

PAGE = 4096


def unmapped(rig) -> int:
    """An address inside the GPUVM aperture that no BO of the rig covers."""
    return rig._next_va + 0x5000 + 0x120


def fault_of(rig, ev):
    res = rig.wait_events([ev.event_id])
    assert res.status == "complete"
    return res.data[0].memory


FAULTING = {
    "pm4_write": lambda rig, bad, buf: rig.queue("pm4").submit(
        P.WriteData(addr=bad, data=(1,))),
    "pm4_wait_read": lambda rig, bad, buf: rig.queue("pm4").submit(
        P.WaitRegMem(addr=bad & ~3, reference=0, function=3)),
    "pm4_indirect_buffer_fetch": lambda rig, bad, buf: rig.queue("pm4").submit(
        P.IndirectBuffer(addr=bad & ~3, ib_size=8)),
    "sdma_copy_source": lambda rig, bad, buf: rig.queue("sdma").submit(
        S.SdmaCopyLinear(src_addr=bad, dst_addr=buf.gpu, size=64)),
    "sdma_fence": lambda rig, bad, buf: rig.queue("sdma").submit(
        S.SdmaFence(addr=bad & ~3, data=1)),
    "aql_completion_signal": lambda rig, bad, buf: rig.queue("aql").submit_aql(
        A.BarrierAndPacket(completion_signal=bad & ~63)),
}


@pytest.mark.parametrize("kind", sorted(FAULTING))
def test_vm_fault_event_and_queue_halt(rig, kind):
    bad = unmapped(rig)
    buf = rig.alloc(PAGE)
    ev = rig.event(EV_MEMORY)
    survivor = rig.queue("pm4")          # another queue of the same process on the device
    FAULTING[kind](rig, bad, buf)
    mem = fault_of(rig, ev)
    assert mem.gpu_id == rig.gpu_id
    assert mem.va == bad & ~(PAGE - 1)
    assert mem.not_present and not mem.read_only
    # I6: every queue of the faulting process on that device is evicted
    survivor.submit(P.WriteData(addr=buf.gpu, data=(1,)))
    assert not poll(lambda: buf.u32(0) == 1, timeout=0.1)


def test_write_to_read_only_memory(rig):
    ro = rig.alloc(PAGE, writable=False)
    ev = rig.event(EV_MEMORY)
    rig.queue("pm4").submit(P.WriteData(addr=ro.gpu + 8, data=(1,)))
    mem = fault_of(rig, ev)
    assert mem.va == ro.gpu and mem.read_only
    assert ro.u32(8) == 0


def test_other_process_keeps_working(rig):
    """A second KFD process (second SimPort on the same machine) is untouched by a fault."""
    other = Rig(machine=rig.machine)
    try:
        q_other = other.queue("pm4")
        buf_other = other.alloc(PAGE)
        ev = rig.event(EV_MEMORY)
        rig.queue("pm4").submit(P.WriteData(addr=unmapped(rig), data=(1,)))
        fault_of(rig, ev)
        for i in range(1, 5):
            q_other.submit(P.WriteData(addr=buf_other.gpu, data=(i,)))
            assert poll(lambda i=i: buf_other.u32(0) == i)
    finally:
        other.close()


def test_other_process_does_not_see_the_fault(rig942):
    other = Rig(machine=rig942.machine)
    try:
        ev_other = other.event(EV_MEMORY)
        ev = rig942.event(EV_MEMORY)
        rig942.queue("pm4").submit(P.WriteData(addr=unmapped(rig942), data=(1,)))
        fault_of(rig942, ev)
        assert other.wait_events([ev_other.event_id], timeout_ms=50).status == "timeout"
    finally:
        other.close()


MALFORMED = {
    "unknown_opcode": [0xC0000100, 0],                       # opcode 0x01
    "type1_header": [0x40000000],
    "type0_register_write": [0x00002E00, 0],
    "wrong_length": [0xC0013C00, 0x15, 0],                   # WAIT_REG_MEM with 2 body dwords
    "reserved_compare_function": None,                       # WAIT_REG_MEM FUNCTION 7
    "reserved_data_sel": None,                               # RELEASE_MEM DATA_SEL 7
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_pm4_is_a_hw_exception(rig, kind):
    buf = rig.alloc(PAGE)
    words = MALFORMED[kind]
    if kind == "reserved_compare_function":
        words = P.WaitRegMem(addr=buf.gpu, reference=0).encode(rig.target)
        words[1] |= 7
    elif kind == "reserved_data_sel":
        words = P.ReleaseMem(addr=buf.gpu, data_sel=1).encode(rig.target)
        words[2] |= 7 << 29
    q = rig.queue("pm4")
    other = rig.queue("pm4")
    ev = rig.event(EV_HW_EXCEPTION)
    q.submit(words, P.WriteData(addr=buf.gpu, data=(1,)))
    res = rig.wait_events([ev.event_id])
    assert res.status == "complete"
    assert res.data[0].hw_exception.gpu_id == rig.gpu_id
    assert not poll(lambda: buf.u32(0) == 1, timeout=0.05)     # that queue stopped
    other.submit(P.WriteData(addr=buf.gpu + 4, data=(2,)))    # the process's others run on
    assert poll(lambda: buf.u32(4) == 2)
    reason = rig.port.process.queues[q.queue_id].hw_exception
    assert "PM4 packet at ring dword 0x0" in reason


def test_hang_is_a_timeout_and_destroy_frees_the_queue(rig):
    q = rig.queue("pm4")
    buf = rig.alloc(PAGE)
    ev = rig.event()
    q.submit(P.WaitRegMem(addr=buf.gpu, reference=1, function=3),
             P.ReleaseMem(addr=rig.slot_addr(ev), data=1, data_sel=1, int_sel=2,
                          int_ctxid=ev.event_id))
    assert rig.wait_events([ev.event_id], timeout_ms=100).status == "timeout"
    q.destroy()                                   # DESTROY_QUEUE on a waiting queue works
    buf.set_u32(0, 1)                             # nothing runs for it any more
    assert rig.wait_events([ev.event_id], timeout_ms=100).status == "timeout"
    q2 = rig.queue("pm4")                         # and its resources can be reused
    q2.submit(P.WriteData(addr=buf.gpu + 8, data=(3,)))
    assert poll(lambda: buf.u32(8) == 3)


def test_destroy_queue_in_an_atomic_loop_and_sdma_poll(rig942):
    buf = rig942.alloc(PAGE)
    pm4 = rig942.queue("pm4")
    sdma = rig942.queue("sdma")
    pm4.submit(P.AtomicMem(addr=buf.gpu, atomic=0x08, src_data=1, cmp_data=5, command=1))
    sdma.submit(S.SdmaPollRegmem(addr=buf.gpu + 8, reference=1))
    pm4.destroy()
    sdma.destroy()
    q = rig942.queue("sdma")
    q.submit(S.SdmaFence(addr=buf.gpu + 16, data=7))
    assert poll(lambda: buf.u32(16) == 7)


def test_engine_survives_many_faulting_processes(rig942):
    for _ in range(3):
        other = Rig(machine=rig942.machine)
        try:
            ev = other.event(EV_HW_EXCEPTION)
            other.queue("sdma").submit([0xFF, 0])
            assert other.wait_events([ev.event_id]).status == "complete"
        finally:
            other.close()
    q = rig942.queue("pm4")
    buf = rig942.alloc(PAGE)
    q.submit(P.WriteData(addr=buf.gpu, data=(1,)))
    assert poll(lambda: buf.u32(0) == 1)


def test_aql_read_of_unmapped_ring_slot_after_update_queue(rig942):
    """UPDATE_QUEUE with ring address 0 deactivates the queue: nothing runs until restored."""
    q = rig942.queue("pm4")
    buf = rig942.alloc(PAGE)
    rig942.kfd.update_queue(queue_id=q.queue_id, ring_base=0, ring_size=0, percentage=100,
                            priority=7)
    q.submit(P.WriteData(addr=buf.gpu, data=(1,)))
    assert not poll(lambda: buf.u32(0) == 1, timeout=0.05)
    rig942.kfd.update_queue(queue_id=q.queue_id, ring_base=q.ring.gpu, ring_size=q.ring_size,
                            percentage=100, priority=7)
    assert poll(lambda: buf.u32(0) == 1)


def test_fault_reason_names_the_packet(rig942):
    q = rig942.queue("sdma")
    ev = rig942.event(EV_HW_EXCEPTION)
    q.submit([0x0000003F, 0])
    assert rig942.wait_events([ev.event_id]).status == "complete"
    reason = rig942.port.process.queues[q.queue_id].hw_exception
    assert "SDMA packet at ring byte 0x0" in reason and "0x0000003f" in reason


def test_kernel_code_fetch_fault(rig942):
    """A dispatch whose descriptor is fine but whose code address is unmapped faults (when a
    shader core runs it) or raises the illegal-instruction exception (without one)."""
    q = rig942.queue("aql")
    code = rig942.alloc(PAGE, executable=True)
    from .test_aql import kernel_descriptor
    code.write(0, kernel_descriptor(entry=0x10_0000))            # code far outside the BO
    ev_mem = rig942.event(EV_MEMORY)
    ev_hw = rig942.event(EV_HW_EXCEPTION)
    s = Signals(rig942)
    q.submit_aql(A.KernelDispatchPacket(kernel_object=code.gpu, workgroup_size_x=64,
                                        grid_size_x=64, completion_signal=s.new(1)))
    res = rig942.wait_events([ev_mem.event_id, ev_hw.event_id])
    assert res.status == "complete"


def test_ring_wptr_beyond_ring_is_a_hw_exception(rig942):
    q = rig942.queue("pm4", ring_size=1024)
    ev = rig942.event(EV_HW_EXCEPTION)
    q.wptr = 5000                                  # more than the 256-dword ring holds
    q._publish()
    assert rig942.wait_events([ev.event_id]).status == "complete"


def test_pm4_register_write_outside_user_windows(rig942):
    q = rig942.queue("pm4")
    ev = rig942.event(EV_HW_EXCEPTION)
    q.submit(P.WriteData(addr=0x1234, dst_sel=0, data=(1,)))    # not an SH/UCONFIG register
    assert rig942.wait_events([ev.event_id]).status == "complete"
    assert "privileged" in rig942.port.process.queues[q.queue_id].hw_exception


def test_struct_sizes_used_by_these_tests():
    assert struct.calcsize("<IIIIq20sIIIHHI") == 64              # kernel descriptor


def test_packet_longer_than_the_ring_is_a_hw_exception(rig942):
    """A header whose COUNT makes the packet longer than the whole ring can never be fetched:
    the queue stops with a HW exception naming it instead of waiting forever."""
    q = rig942.queue("pm4", ring_size=1024)                 # 256 dwords
    ev = rig942.event(EV_HW_EXCEPTION)
    q.submit([0xC0FF1000])                                  # NOP with COUNT 0xFF: 257 dwords
    assert rig942.wait_events([ev.event_id]).status == "complete"
    reason = rig942.port.process.queues[q.queue_id].hw_exception
    assert "257 dwords" in reason and "256-dword ring" in reason
