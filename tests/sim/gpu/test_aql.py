"""AQL packet processor: ordering, barriers, completion signals, PM4-IB, invalid packets.

Signal and queue layouts are part D's (amd_signal_t / amd_queue_t from ROCR headers, offsets
checked with offsetof in the facts sheet); packets are D's builders.
"""

from __future__ import annotations

import struct

import pytest

from pytest_amdgpu.packets import aql as A
from pytest_amdgpu.packets import pm4 as P

from .rig import EV_HW_EXCEPTION, EV_MEMORY, poll

SIG = A.AMD_SIGNAL


class Signals:
    """amd_signal_t objects (64 B each) in one GTT buffer."""

    def __init__(self, rig, n: int = 16) -> None:
        self.buf = rig.alloc(64 * n)
        self.n = 0

    def new(self, value: int, *, mailbox: int = 0, event_id: int = 0) -> int:
        off = 64 * self.n
        self.n += 1
        self.buf.write(off, SIG.pack(kind=1, value=value, event_mailbox_ptr=mailbox,
                                     event_id=event_id))
        return self.buf.gpu + off

    def value(self, handle: int) -> int:
        return struct.unpack("<q", self.buf.read(handle - self.buf.gpu + SIG.value, 8))[0]

    def set(self, handle: int, value: int) -> None:
        self.buf.write(handle - self.buf.gpu + SIG.value, struct.pack("<q", value))


def header(q, slot: int) -> int:
    return struct.unpack("<H", q.ring.read(64 * slot, 2))[0]


def test_barrier_and_completion_read_index_and_header(rig):
    q = rig.queue("aql")
    s = Signals(rig)
    dep1, dep2, done = s.new(1), s.new(1), s.new(1)
    q.submit_aql(A.BarrierAndPacket(dep_signal=(dep1, 0, dep2), completion_signal=done))
    assert not poll(lambda: s.value(done) == 0, timeout=0.05)
    s.set(dep1, 0)
    assert not poll(lambda: s.value(done) == 0, timeout=0.05)     # AND: dep2 still 1
    s.set(dep2, 0)
    assert poll(lambda: s.value(done) == 0)
    assert poll(lambda: q.rptr() == 1)
    assert header(q, 0) & 0xFF == A.AqlPacketType.INVALID          # consumed slot invalidated


def test_barrier_and_all_null_completes(rig942):
    q = rig942.queue("aql")
    s = Signals(rig942)
    done = s.new(5)
    q.submit_aql(A.BarrierAndPacket(completion_signal=done))
    assert poll(lambda: s.value(done) == 4)                       # decremented by exactly 1


def test_barrier_or(rig942):
    q = rig942.queue("aql")
    s = Signals(rig942)
    a, b, done = s.new(1), s.new(1), s.new(1)
    q.submit_aql(A.BarrierOrPacket(dep_signal=(0, a, b), completion_signal=done))
    assert not poll(lambda: s.value(done) == 0, timeout=0.05)     # a null handle never satisfies
    s.set(b, 0)
    assert poll(lambda: s.value(done) == 0)


def test_barrier_or_all_null_never_completes(rig942):
    q = rig942.queue("aql")
    s = Signals(rig942)
    done = s.new(1)
    q.submit_aql(A.BarrierOrPacket(completion_signal=done))
    assert not poll(lambda: s.value(done) == 0, timeout=0.1)
    assert q.rptr() == 0


def test_in_order_processing(rig942):
    """A packet after a blocked barrier does not run (AQL processes in order)."""
    q = rig942.queue("aql")
    s = Signals(rig942)
    dep, first, second = s.new(1), s.new(1), s.new(1)
    q.submit_aql(A.BarrierAndPacket(dep_signal=(dep,), completion_signal=first),
                 A.BarrierAndPacket(completion_signal=second, barrier=1))
    assert not poll(lambda: s.value(second) == 0, timeout=0.05)
    s.set(dep, 0)
    assert poll(lambda: s.value(second) == 0)
    assert s.value(first) == 0
    assert poll(lambda: q.rptr() == 2)


def test_invalid_header_stops_until_published(rig942):
    q = rig942.queue("aql")
    s = Signals(rig942)
    done = s.new(1)
    pkt = A.BarrierAndPacket(completion_signal=done).encode()
    q.ring.write(4, pkt[4:])                     # body written, header still INVALID
    q.wptr = 1
    q._publish()                                 # doorbell rung too early
    assert not poll(lambda: s.value(done) == 0, timeout=0.05)
    q.ring.write(0, pkt[:4])                     # header published: the next doorbell runs it
    q._publish()
    assert poll(lambda: s.value(done) == 0)


def test_completion_signal_mailbox_interrupt(rig):
    q = rig.queue("aql")
    s = Signals(rig)
    ev = rig.event()
    done = s.new(1, mailbox=rig.slot_addr(ev), event_id=ev.event_id)
    q.submit_aql(A.BarrierAndPacket(completion_signal=done))
    assert rig.wait_events([ev.event_id]).status == "complete"
    assert s.value(done) == 0


def test_pm4_ib_packet(rig):
    t = rig.target
    q = rig.queue("aql")
    s = Signals(rig)
    buf = rig.alloc(4096)
    ib = rig.alloc(4096)
    words = P.WaitRegMem(addr=buf.gpu, reference=1, function=3).encode(t) + \
        P.WriteData(addr=buf.gpu + 8, data=(0x77,)).encode(t)
    ib.write(0, struct.pack(f"<{len(words)}I", *words))
    done = s.new(1)
    q.submit_aql(A.Pm4IbPacket.for_ib(ib.gpu, len(words), completion_signal=done))
    assert not poll(lambda: s.value(done) == 0, timeout=0.05)      # the IB waits in the CP
    buf.set_u32(0, 1)
    assert poll(lambda: s.value(done) == 0)
    assert buf.u32(8) == 0x77


# hsa_signal_condition_t: EQ 0, NE 1, LT 2, GTE 3 (hsa.h)
@pytest.mark.parametrize(("cond", "value", "start", "passes_at"),
                         [(0, 5, 6, 5), (1, 5, 5, 4), (2, 3, 3, 2), (3, 7, 6, 7), (2, 0, 0, -1)])
def test_barrier_value(rig942, cond, value, start, passes_at):
    q = rig942.queue("aql")
    s = Signals(rig942)
    sig, done = s.new(start), s.new(1)
    q.submit_aql(A.BarrierValuePacket(signal=sig, value=value, cond=cond,
                                      completion_signal=done))
    assert not poll(lambda: s.value(done) == 0, timeout=0.05)
    s.set(sig, passes_at)
    assert poll(lambda: s.value(done) == 0)


def test_wrap_around(rig):
    q = rig.queue("aql", ring_size=1024)            # 16 slots
    s = Signals(rig)
    done = s.new(100)
    for i in range(1, 61):
        q.submit_aql(A.BarrierAndPacket(completion_signal=done))
        assert poll(lambda i=i: s.value(done) == 100 - i)
    assert poll(lambda: q.rptr() == 60)
    assert all(header(q, k) & 0xFF == A.AqlPacketType.INVALID for k in range(16))


# -- invalid packets --------------------------------------------------------------------------

def kernel_descriptor(**over) -> bytes:
    """A 64-byte kernel descriptor (AMDGPUUsage layout) for a kernel 256 bytes after it."""
    f = dict(group=0, private=0, kernarg_size=16, res0=0, entry=256, res1=b"\0" * 20, rsrc3=0,
             rsrc1=0, rsrc2=(4 << 1), props=0x000A, preload=0, res3=0)
    f.update(over)
    return struct.pack("<IIIIq20sIIIHHI", f["group"], f["private"], f["kernarg_size"],
                       f["res0"], f["entry"], f["res1"], f["rsrc3"], f["rsrc1"], f["rsrc2"],
                       f["props"], f["preload"], f["res3"])


def dispatch(kd_addr, **over):
    args = dict(kernel_object=kd_addr, workgroup_size_x=64, grid_size_x=256)
    args.update(over)
    return A.KernelDispatchPacket(**args)


def raw_dispatch(kd_addr, *, dims=1, wg=(64, 1, 1), grid=(64, 1, 1), group=0) -> bytes:
    """A dispatch packet built by hand (D's builder refuses some of these on purpose)."""
    return struct.pack("<HHHHHHIIIIIQQQQ", 0x1502, dims, *wg, 0, *grid, 0, group, kd_addr, 0, 0,
                       0)


BAD = {
    "reserved_type": lambda kd: struct.pack("<H", 7) + bytes(62),
    "agent_dispatch": lambda kd: A.AgentDispatchPacket(type=1).encode(),
    "vendor_format": lambda kd: struct.pack("<HBB", 0x1500, 9, 0) + bytes(60),
    "zero_dims": lambda kd: raw_dispatch(kd, dims=0),
    "wg_zero": lambda kd: raw_dispatch(kd, wg=(0, 1, 1)),
    "wg_over_1024": lambda kd: raw_dispatch(kd, wg=(64, 32, 1), grid=(64, 32, 1), dims=2),
    "grid_zero": lambda kd: raw_dispatch(kd, grid=(0, 1, 1)),
    "unused_dim_not_1": lambda kd: raw_dispatch(kd, wg=(64, 2, 1), grid=(64, 2, 1), dims=1),
    "null_kernel_object": lambda kd: raw_dispatch(0),
    "group_segment_too_big": lambda kd: raw_dispatch(kd, group=65536 + 4),
    "kd_reserved_bytes": lambda kd: raw_dispatch(kd + 64),
    "kd_reserved_props": lambda kd: raw_dispatch(kd + 128),
}


def _descriptors(rig):
    """The descriptors BAD's packets point at: valid at +0, reserved bytes set at +64,
    reserved kernel_code_properties bits at +128."""
    code = rig.alloc(4096, executable=True)
    code.write(0, kernel_descriptor())
    code.write(64, kernel_descriptor(res0=1))
    code.write(128, kernel_descriptor(props=0x000A | 1 << 13))
    return code


@pytest.mark.parametrize("bad", sorted(BAD))
def test_invalid_packet_is_a_hw_exception_and_stops_the_queue(rig942, bad):
    rig = rig942
    q = rig.queue("aql")
    s = Signals(rig)
    code = _descriptors(rig)
    ev = rig.event(EV_HW_EXCEPTION)
    after = s.new(1)
    q.submit_aql(BAD[bad](code.gpu), A.BarrierAndPacket(completion_signal=after))
    assert rig.wait_events([ev.event_id]).status == "complete"
    assert not poll(lambda: s.value(after) == 0, timeout=0.05)     # the queue stopped
    reason = rig.port.process.queues[q.queue_id].hw_exception
    assert reason.startswith("EC_QUEUE_PACKET_"), reason


def test_kernel_descriptor_unmapped_is_a_vm_fault(rig942):
    q = rig942.queue("aql")
    ev = rig942.event(EV_MEMORY)
    kd = rig942._next_va + 0x10000                      # never mapped
    q.submit_aql(dispatch(kd))
    res = rig942.wait_events([ev.event_id])
    assert res.status == "complete"
    mem = res.data[0].memory
    assert mem.va == kd & ~0xFFF and mem.not_present and mem.gpu_id == rig942.gpu_id


# The error code the CP stores into amd_queue_t.queue_inactive_signal when it stops an AQL
# queue, as ROCR's AqlQueue::DynamicScratchHandler (amd_aql_queue.cpp) decodes it: 2 invalid
# dimension, 4 invalid group memory, 8 invalid (or NULL) code object, 32 invalid packet format
# (generic), 64 group too large, 256 invalid vendor-specific packet.
QUEUE_ERROR_CODE = {
    "zero_dims": 2, "grid_zero": 2, "unused_dim_not_1": 2,
    "group_segment_too_big": 4,
    "null_kernel_object": 8, "kd_reserved_bytes": 8, "kd_reserved_props": 8,
    "reserved_type": 32,
    "wg_over_1024": 64,
    "vendor_format": 256,
}


@pytest.mark.parametrize("bad", sorted(QUEUE_ERROR_CODE))
def test_queue_inactive_signal_gets_the_error_code(rig942, bad):
    """The stopped queue's queue_inactive_signal (amd_queue_t + 192) holds the CP error code and
    its event mailbox interrupt fires, which is how ROCR learns why the queue stopped."""
    rig = rig942
    q = rig.queue("aql")
    s = Signals(rig)
    code = _descriptors(rig)
    ev = rig.event()
    inactive = s.new(0, mailbox=rig.slot_addr(ev), event_id=ev.event_id)
    q.amd_queue.set_u64(A.AMD_QUEUE.queue_inactive_signal, inactive)
    q.submit_aql(BAD[bad](code.gpu))
    assert rig.wait_events([ev.event_id]).status == "complete"
    assert s.value(inactive) == QUEUE_ERROR_CODE[bad]


def test_bad_pm4_in_a_vendor_ib_is_an_invalid_vendor_packet(rig942):
    """A PM4-IB whose IB holds an undecodable PM4 packet stops the queue with error 256."""
    rig = rig942
    q = rig.queue("aql")
    s = Signals(rig)
    ib = rig.alloc(4096)
    ib.write(0, struct.pack("<2I", 0xC0000100, 0))      # PM4 opcode 0x01: not a packet
    ev = rig.event()
    inactive = s.new(0, mailbox=rig.slot_addr(ev), event_id=ev.event_id)
    q.amd_queue.set_u64(A.AMD_QUEUE.queue_inactive_signal, inactive)
    q.submit_aql(A.Pm4IbPacket.for_ib(ib.gpu, 2))
    assert rig.wait_events([ev.event_id]).status == "complete"
    assert s.value(inactive) == 256


def test_slots_at_or_past_the_write_index_do_not_run(rig942):
    """The processor runs the packets below write_dispatch_id: a valid-looking slot past it
    (a stale or early header) waits until the write index covers it."""
    q = rig942.queue("aql")
    s = Signals(rig942)
    first, early = s.new(1), s.new(1)
    q.ring.write(64, A.BarrierAndPacket(completion_signal=early).encode())   # slot 1, unreserved
    q.submit_aql(A.BarrierAndPacket(completion_signal=first))                # slot 0
    assert poll(lambda: s.value(first) == 0)
    assert not poll(lambda: s.value(early) == 0, timeout=0.05)
    assert q.rptr() == 1
    q.wptr = 2                                     # now reserve and publish slot 1
    q._publish()
    assert poll(lambda: s.value(early) == 0)
    assert poll(lambda: q.rptr() == 2)
