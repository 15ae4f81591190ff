"""PM4 engine: every packet's memory effect, read pointer, wrap-around, asynchrony.

Packets are built with part D's builders (their encodings are checked against published
facts by tests/packets); expected values come from the packet semantics in facts-pm4.md, not
from the engine.
"""

from __future__ import annotations

import operator
import struct
import time

import pytest

from pytest_amdgpu.packets import pm4 as P

from .rig import EV_HW_EXCEPTION, poll

# WAIT_REG_MEM FUNCTION (facts-pm4.md §3.2): (value & mask) FUNCTION reference
FUNCTIONS = {0: lambda a, b: True, 1: operator.lt, 2: operator.le, 3: operator.eq,
             4: operator.ne, 5: operator.ge, 6: operator.gt}


def marker(q, buf, off, value):
    """Submit a WRITE_DATA of `value` at buf+off and wait for it: everything before ran."""
    q.submit(P.WriteData(addr=buf.gpu + off, data=(value,)))
    assert poll(lambda: buf.u32(off) == value), "queue did not reach the marker"


def test_write_data_memory_and_read_pointer(rig):
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    q.submit(P.WriteData(addr=buf.gpu + 16, data=(1, 2, 3, 0xDEADBEEF), wr_confirm=1))
    assert poll(lambda: buf.u32(28) == 0xDEADBEEF)
    assert buf.words(16, 4) == [1, 2, 3, 0xDEADBEEF]
    assert poll(lambda: q.rptr() == q.wptr)
    assert q.wptr == 3 + 1 + 4                 # header + control + addr lo/hi + 4 data dwords


def test_write_data_one_address(rig942):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    q.submit(P.WriteData(addr=buf.gpu, data=(7, 8, 9), wr_one_addr=1))
    marker(q, buf, 64, 1)
    assert buf.words(0, 3) == [9, 0, 0]       # every dword to the same address: the last wins


@pytest.mark.parametrize("data_sel", [1, 2])
def test_release_mem_data(rig, data_sel):
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    buf.set_u64(8, 0xAAAAAAAAAAAAAAAA)
    q.submit(P.ReleaseMem(addr=buf.gpu + 8, data=0x1122334455667788, data_sel=data_sel))
    if data_sel == 1:     # low 32 bits only; the high dword is untouched
        assert poll(lambda: buf.u64(8) == 0xAAAAAAAA55667788)
    else:
        assert poll(lambda: buf.u64(8) == 0x1122334455667788)


def test_release_mem_timestamp_matches_clock_counters(rig):
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    before = rig.kfd.get_clock_counters(gpu_id=rig.gpu_id)
    q.submit(P.ReleaseMem(addr=buf.gpu, data_sel=3))
    assert poll(lambda: buf.u64(0) != 0)
    after = rig.kfd.get_clock_counters(gpu_id=rig.gpu_id)
    assert before.gpu <= buf.u64(0) <= after.gpu


def test_gpu_clock_counter_runs_at_100_mhz(rig):
    """The GPU counter of GET_CLOCK_COUNTERS is the 100 MHz reference clock: over a 200 ms sleep
    it advances 1 tick per 10 CPU nanoseconds (the interval is long so that scheduling noise
    between the two clock reads stays far below the 2 % tolerance)."""
    before = rig.kfd.get_clock_counters(gpu_id=rig.gpu_id)
    time.sleep(0.2)
    after = rig.kfd.get_clock_counters(gpu_id=rig.gpu_id)
    dt_cpu = after.cpu - before.cpu
    dt_gpu = after.gpu - before.gpu
    assert abs(dt_gpu * 10 - dt_cpu) <= 0.02 * dt_cpu


def test_release_mem_interrupt_reaches_wait_events(rig):
    q = rig.queue("pm4")
    ev = rig.event()
    pending = rig.wait_events([ev.event_id], timeout_ms=0)
    assert pending.status == "timeout"
    # ROCR's protocol: write the event id into the event's mailbox slot, then interrupt.
    q.submit(P.ReleaseMem(addr=rig.slot_addr(ev), data=ev.event_id, data_sel=1, int_sel=2,
                          int_ctxid=ev.event_id))
    res = rig.wait_events([ev.event_id], timeout_ms=5000)
    assert res.status == "complete"


def test_release_mem_interrupt_without_data(rig942):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    ev = rig942.event()
    rig942.event_page.set_u64(8 * ev.event_id, 1)     # slot signaled by "someone" earlier
    q.submit(P.ReleaseMem(int_sel=1, int_ctxid=ev.event_id), P.WriteData(addr=buf.gpu,
                                                                          data=(5,)))
    assert rig942.wait_events([ev.event_id]).status == "complete"
    assert poll(lambda: buf.u32(0) == 5)


@pytest.mark.parametrize("function", range(7))
def test_wait_reg_mem_memory_every_function(rig942, function):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    ref, mask = 0x50, 0xF0
    values = [0x0F, 0x40, 0x5F, 0x60, 0x1F0]      # masked: 0x00, 0x40, 0x50, 0x60, 0xF0
    buf.set_u32(0, values[0])
    q.submit(P.WaitRegMem(addr=buf.gpu, reference=ref, mask=mask, function=function),
             P.WriteData(addr=buf.gpu + 8, data=(1,)))
    for v in values:
        buf.set_u32(0, v)
        expect = FUNCTIONS[function](v & mask, ref)
        if expect:
            assert poll(lambda: buf.u32(8) == 1), f"value {v:#x} should pass"
            return
        assert not poll(lambda: buf.u32(8) == 1, timeout=0.05), f"value {v:#x} passed"
    pytest.fail("no value satisfied the compare")


def test_wait_reg_mem_on_register(rig942):
    """Register space: the queue's own SH register state is what WAIT_REG_MEM compares."""
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    t = rig942.target
    reg = 0x2C00 + t.reg("COMPUTE_USER_DATA_3")          # absolute dword address
    q.submit(P.SetShReg.of(t, "COMPUTE_USER_DATA_3", 0x77),
             P.WaitRegMem(addr=reg, mem_space=0, reference=0x77, function=3),
             P.WriteData(addr=buf.gpu, data=(1,)),
             P.WaitRegMem(addr=reg, mem_space=0, reference=0x78, function=3),
             P.WriteData(addr=buf.gpu + 4, data=(2,)))
    assert poll(lambda: buf.u32(0) == 1)
    assert not poll(lambda: buf.u32(4) == 2, timeout=0.05)   # 0x77 != 0x78: waits


def test_indirect_buffer_chain_and_nesting(rig):
    t = rig.target
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    ibs = rig.alloc(4 * 4096)

    def put_ib(off, *packets):
        words = []
        for p in packets:
            words += p.encode(t)
        ibs.write(off, struct.pack(f"<{len(words)}I", *words))
        return ibs.gpu + off, len(words)

    ib2 = put_ib(0x3000, P.WriteData(addr=buf.gpu + 8, data=(2,)))
    chained = put_ib(0x2000, P.WriteData(addr=buf.gpu + 12, data=(3,)))
    # IB1: write 1, call IB2, then CHAIN to `chained`; the dword after the chain never runs
    ib1 = put_ib(0x1000, P.WriteData(addr=buf.gpu + 4, data=(1,)),
                 P.IndirectBuffer(addr=ib2[0], ib_size=ib2[1]),
                 P.IndirectBuffer(addr=chained[0], ib_size=chained[1], chain=1),
                 P.WriteData(addr=buf.gpu + 16, data=(99,)))
    q.submit(P.IndirectBuffer(addr=ib1[0], ib_size=ib1[1]),
             P.WriteData(addr=buf.gpu + 20, data=(4,)))
    assert poll(lambda: buf.u32(20) == 4)
    assert buf.words(4, 4) == [1, 2, 3, 0]


def test_indirect_buffer_third_level_is_a_hw_exception(rig942):
    t = rig942.target
    q = rig942.queue("pm4")
    ibs = rig942.alloc(4096)
    ev = rig942.event(EV_HW_EXCEPTION)
    # each IB calls the next one: ring -> IB1 -> IB2 -> IB3 (not allowed)
    addrs = [ibs.gpu + 0x100 * i for i in range(4)]
    for i in range(3):
        w = P.IndirectBuffer(addr=addrs[i + 1], ib_size=4).encode(t)
        ibs.write(0x100 * i, struct.pack("<4I", *w))
    ibs.write(0x300, struct.pack("<I", P.PM4_NOP_1DW) * 4)
    q.submit(P.IndirectBuffer(addr=addrs[0], ib_size=4))
    assert rig942.wait_events([ev.event_id]).status == "complete"


def test_event_write_and_acquire_mem_forms(rig):
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    q.submit(P.EventWrite(event_type=P.EventType.CS_PARTIAL_FLUSH, event_index=4),
             P.AcquireMem(coher_size=0xFFFFFFFF),
             P.WriteData(addr=buf.gpu, data=(1,)))
    assert poll(lambda: buf.u32(0) == 1)


def test_acquire_mem_wrong_form_is_malformed(rig):
    """The gfx9 form has 6 body dwords, gfx10+ 7: the other length is a bad packet."""
    q = rig.queue("pm4")
    ev = rig.event(EV_HW_EXCEPTION)
    other = "gfx10" if rig.target.acquire_mem_form == "gfx9" else "gfx9"
    words = P.AcquireMem(coher_size=0xFFFFFFFF).layouts(other)[0].encode(
        P.AcquireMem(coher_size=0xFFFFFFFF))
    q.submit(words)
    assert rig.wait_events([ev.event_id]).status == "complete"


def test_set_sh_reg_then_copy_data_from_register(rig):
    t = rig.target
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    rsrc3 = 0x2C00 + t.reg("COMPUTE_PGM_RSRC3")
    q.submit(P.SetShReg.of(t, "COMPUTE_PGM_RSRC3", 0x1234),
             P.SetUconfigReg(reg_offset=0x10, values=(0xABCD, 0x5678)),
             P.CopyData(src_sel=0, dst_sel=5, src_addr=rsrc3, dst_addr=buf.gpu),
             P.CopyData(src_sel=0, dst_sel=5, src_addr=0xC011, dst_addr=buf.gpu + 4),
             P.WriteData(addr=rsrc3 + 1, dst_sel=0, data=(0x99,)),
             P.CopyData(src_sel=0, dst_sel=5, src_addr=rsrc3 + 1, dst_addr=buf.gpu + 8))
    assert poll(lambda: buf.u32(8) == 0x99)
    assert buf.words(0, 2) == [0x1234, 0x5678]


def test_copy_data_sources(rig):
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    buf.set_u64(0x100, 0x0102030405060708)
    q.submit(P.CopyData(src_sel=5, dst_sel=5, src_addr=0xCAFEF00D, dst_addr=buf.gpu),
             P.CopyData(src_sel=5, dst_sel=5, count_sel=1, src_addr=0x1_2345_6789_ABCD,
                        dst_addr=buf.gpu + 8),
             P.CopyData(src_sel=2, dst_sel=5, count_sel=1, src_addr=buf.gpu + 0x100,
                        dst_addr=buf.gpu + 16),
             P.CopyData(src_sel=9, dst_sel=5, count_sel=1, dst_addr=buf.gpu + 24))
    assert poll(lambda: buf.u64(24) != 0)
    assert buf.u32(0) == 0xCAFEF00D
    assert buf.u64(8) == 0x1_2345_6789_ABCD
    assert buf.u64(16) == 0x0102030405060708
    assert buf.u64(24) <= rig.kfd.get_clock_counters(gpu_id=rig.gpu_id).gpu


def test_dma_data_fill_and_copy(rig):
    q = rig.queue("pm4")
    buf = rig.alloc(3 * 4096)
    src = bytes(range(256)) * 4
    buf.write(0, src)
    q.submit(P.DmaData(dst_addr=buf.gpu + 4096, byte_count=1000, src_sel=2,
                       src_addr=0xA5A5A5A5, cp_sync=1),
             P.DmaData(dst_addr=buf.gpu + 8192, byte_count=1024, src_addr=buf.gpu, cp_sync=1),
             P.WriteData(addr=buf.gpu + 4096 + 2000, data=(1,)))
    assert poll(lambda: buf.u32(4096 + 2000) == 1)
    assert buf.read(4096, 1000) == b"\xa5" * 1000
    assert buf.read(4096 + 1000, 4) == b"\0" * 4
    assert buf.read(8192, 1024) == src


ATOMICS = [  # (TC_OP, operand bytes, initial, src, cmp, expected new value)
    (0x07, 4, 5, 9, 0, 9),                       # SWAP_RTN_32
    (0x08, 4, 5, 9, 5, 9),                       # CMPSWAP_RTN_32, compare hits
    (0x08, 4, 5, 9, 4, 5),                       # CMPSWAP_RTN_32, compare misses
    (0x0F, 4, 0xFFFFFFFF, 2, 0, 1),              # ADD_RTN_32 wraps
    (0x10, 4, 5, 7, 0, 0xFFFFFFFE),              # SUB_RTN_32
    (0x11, 4, 5, 0xFFFFFFFF, 0, 0xFFFFFFFF),     # SMIN_RTN_32: -1 < 5
    (0x12, 4, 5, 0xFFFFFFFF, 0, 5),              # UMIN_RTN_32
    (0x13, 4, 5, 0xFFFFFFFF, 0, 5),              # SMAX_RTN_32
    (0x14, 4, 5, 0xFFFFFFFF, 0, 0xFFFFFFFF),     # UMAX_RTN_32
    (0x15, 4, 0b1100, 0b1010, 0, 0b1000),        # AND_RTN_32
    (0x16, 4, 0b1100, 0b1010, 0, 0b1110),        # OR_RTN_32
    (0x17, 4, 0b1100, 0b1010, 0, 0b0110),        # XOR_RTN_32
    (0x18, 4, 3, 3, 0, 0),                       # INC_RTN_32: old >= src -> 0
    (0x19, 4, 0, 7, 0, 7),                       # DEC_RTN_32: old == 0 -> src
    (0x2F, 8, 2**64 - 1, 1, 0, 0),               # ADD_RTN_64 wraps
    (0x28, 8, 1 << 40, 3, 1 << 40, 3),           # CMPSWAP_RTN_64
    (0x6F, 8, 10, 5, 0, 15),                     # ADD_64 (no return)
    (0x4F, 4, 10, 5, 0, 15),                     # ADD_32 (no return)
]


@pytest.mark.parametrize(("op", "size", "init", "src", "cmp", "new"), ATOMICS)
def test_atomic_mem(rig942, op, size, init, src, cmp, new):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    (buf.set_u64 if size == 8 else buf.set_u32)(0, init)
    q.submit(P.AtomicMem(addr=buf.gpu, atomic=op, src_data=src, cmp_data=cmp),
             P.CopyData(src_sel=6, dst_sel=5, count_sel=1, dst_addr=buf.gpu + 16))
    marker(q, buf, 64, 1)
    assert (buf.u64(0) if size == 8 else buf.u32(0)) == new
    assert buf.u64(16) == init                    # COPY_DATA atomic-return data = old value


def test_atomic_mem_loop_until_compare(rig942):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    buf.set_u32(0, 1)
    q.submit(P.AtomicMem(addr=buf.gpu, atomic=0x08, src_data=100, cmp_data=2, command=1),
             P.WriteData(addr=buf.gpu + 8, data=(1,)))
    assert not poll(lambda: buf.u32(8) == 1, timeout=0.05)
    buf.set_u32(0, 2)
    assert poll(lambda: buf.u32(8) == 1)
    assert buf.u32(0) == 100


def test_pred_exec(rig942):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    skipped = P.WriteData(addr=buf.gpu, data=(1,)).encode(rig942.target)
    run = P.WriteData(addr=buf.gpu + 4, data=(2,)).encode(rig942.target)
    q.submit(P.PredExec(exec_count=len(skipped), virtual_xcc_id_select=0b10), skipped,
             P.PredExec(exec_count=len(run), virtual_xcc_id_select=0b11), run)
    marker(q, buf, 64, 1)
    assert buf.words(0, 2) == [0, 2]


def test_type2_filler_and_nops(rig):
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    q.submit([P.TYPE2_FILLER, P.PM4_NOP_1DW], P.Nop.of_size(5),
             P.WriteData(addr=buf.gpu, data=(1,)))
    assert poll(lambda: buf.u32(0) == 1)
    assert poll(lambda: q.rptr() == q.wptr)


@pytest.mark.parametrize("pad", [True, False], ids=["nop-padding", "packet-across-end"])
def test_wrap_around(rig, pad):
    q = rig.queue("pm4", ring_size=1024)          # 256 dwords, the driver's minimum
    buf = rig.alloc(4096)
    t = rig.target
    for i in range(1, 200):
        pkt = P.ReleaseMem(addr=buf.gpu, data=i, data_sel=1).encode(t)
        room = 256 - q.dw_pos()
        if pad and room < len(pkt):
            q.put_words(P.Nop.of_size(room).encode(t), ring=False)
        q.put_words(pkt)
        assert poll(lambda i=i: buf.u32(0) == i)
    assert q.wptr > 5 * 256                        # went around the ring several times
    # the CP reports a 32-bit dword offset into the ring, wrapping at its size, while the
    # write pointer is a 64-bit count (kfdtest PM4Queue::Rptr vs Wptr64 % ring dwords)
    assert poll(lambda: q.rptr() == q.wptr % 256)


def test_submit_returns_before_completion(rig942):
    """Asynchrony: the doorbell returns while the GPU still waits; the host sees it later."""
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    q.submit(P.WaitRegMem(addr=buf.gpu, reference=1, function=3),
             P.WriteData(addr=buf.gpu + 4, data=(42,)))
    assert buf.u32(4) == 0                         # submit returned; nothing ran past the wait
    buf.set_u32(0, 1)
    assert poll(lambda: buf.u32(4) == 42)


def test_partial_packet_waits_for_the_rest(rig942):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    words = P.WriteData(addr=buf.gpu, data=(5, 6)).encode(rig942.target)
    q.put_words(words[:3])                         # doorbell with half a packet published
    assert not poll(lambda: buf.u32(0) == 5, timeout=0.05)
    assert q.rptr() == 0
    q.put_words(words[3:])
    assert poll(lambda: buf.words(0, 2) == [5, 6])


def test_two_queues_run_concurrently(rig942):
    """Round-robin: a queue blocked forever does not stop another queue of the device."""
    blocked = rig942.queue("pm4")
    other = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    blocked.submit(P.WaitRegMem(addr=buf.gpu, reference=1, function=3))
    for i in range(1, 50):
        other.submit(P.WriteData(addr=buf.gpu + 8, data=(i,)))
    assert poll(lambda: buf.u32(8) == 49)


def test_release_mem_discard_and_data_without_interrupt(rig942):
    """DATA_SEL 0 discards (nothing is written, soc15d.h DATA_SEL comment); INT_SEL 3 sends the
    data after write confirmation but raises no interrupt; INT_SEL 0 raises none either."""
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    ev = rig942.event()
    buf.set_u64(0, 0x5555)
    q.submit(P.ReleaseMem(addr=buf.gpu, data=0x1234, data_sel=0, int_sel=0,
                          int_ctxid=ev.event_id),
             P.ReleaseMem(addr=rig942.slot_addr(ev), data=ev.event_id, data_sel=1, int_sel=3,
                          int_ctxid=ev.event_id))
    marker(q, buf, 64, 1)
    assert buf.u64(0) == 0x5555
    assert rig942.event_page.u32(8 * ev.event_id) == ev.event_id       # the data was written
    assert rig942.wait_events([ev.event_id], timeout_ms=50).status == "timeout"
