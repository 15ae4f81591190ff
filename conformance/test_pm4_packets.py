"""PM4 packets, each checked through its memory side effect: NOP, WRITE_DATA, RELEASE_MEM (every
data select), WAIT_REG_MEM (every compare function and the mask), INDIRECT_BUFFER (nested and
chained), EVENT_WRITE, ACQUIRE_MEM, SET_SH_REG, COPY_DATA, DMA_DATA and ATOMIC_MEM. Several
are written as raw dwords from the published layouts (facts-pm4.md) next to the builders, so
the builders, the ring and the command processor are checked against the same source
(KFDQMTest.SubmitPacketCpQueue, KFDCWSRTest / PM4 packet tests of libdrm amdgpu)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_amdgpu.packets import pm4

from ._helpers import (
    ACQUIRE_MEM_BODY,
    CS_PARTIAL_FLUSH,
    PM4_ACQUIRE_MEM,
    PM4_COPY_DATA,
    PM4_EVENT_WRITE,
    drain,
    pm4_header,
    raw_indirect_buffer,
    raw_release_mem,
    raw_wait_reg_mem,
    raw_write_data,
    stays,
    u32,
    u64,
    wait_for,
)

pytestmark = pytest.mark.amdgpu_area("pm4_packets")

SENTINEL = 0xA5A5A5A5


def _buf(make, fill: int = 0):
    b = make(4096, "gtt")
    if fill:
        b.view(np.uint32)[:] = fill
    return b


# -- WRITE_DATA ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["one_dword", "many_dwords", "one_address", "dst_tc_l2"])
def test_write_data(amdgpu_queue, amdgpu_buffer, amdgpu_signal, case):
    """KFDQMTest.SubmitPacketCpQueue / libdrm amdgpu_command_submission_write_linear_helper:
    WRITE_DATA (0x37): one data dword; 64 dwords to consecutive addresses; WR_ONE_ADDR (every
    dword to the same address, the last one stays); DST_SEL 2 (through L2) (facts-pm4.md §3.1)."""
    buf = _buf(amdgpu_buffer, SENTINEL)
    words = buf.view(np.uint32)
    base = buf.gpu_address + 64
    if case == "one_dword":
        amdgpu_queue.write_data(base, [0x01234567])
        expect = {16: 0x01234567}
    elif case == "many_dwords":
        data = [(i * 0x01010101) ^ 0x5A5A0000 for i in range(64)]
        amdgpu_queue.write_data(base, data)
        expect = {16 + i: v for i, v in enumerate(data)}
    elif case == "one_address":
        amdgpu_queue.submit(raw_write_data(base, [1, 2, 3, 4], one_addr=True))
        expect = {16: 4}
    else:
        amdgpu_queue.write_data(base, [0x7733], dst_sel=2)
        expect = {16: 0x7733}
    drain(amdgpu_queue, amdgpu_signal)
    want = np.full(1024, SENTINEL, np.uint32)
    for k, v in expect.items():
        want[k] = v
    assert np.array_equal(words, want)


# -- RELEASE_MEM ----------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["builder", "raw"])
@pytest.mark.parametrize("data_sel", ["none", "32bit", "64bit"])
def test_release_mem_data_select(amdgpu_queue, amdgpu_buffer, amdgpu_signal, data_sel,
                                 encoding):
    """KFDQMTest.SubmitPacketCpQueue (RELEASE_MEM fences): RELEASE_MEM (0x49) DATA_SEL: 0 writes
    nothing, 1 writes only the low dword, 2 the 64-bit value (facts-pm4.md §3.3), built by the
    packet builder with the target's cache actions and as raw dwords."""
    buf = _buf(amdgpu_buffer, SENTINEL)
    value = 0x1122334455667788
    sel = {"none": 0, "32bit": 1, "64bit": 2}[data_sel]
    if encoding == "raw":
        amdgpu_queue.submit(raw_release_mem(buf.gpu_address + 8, value, sel))
    else:
        amdgpu_queue.release_mem(buf.gpu_address + 8, value, data_sel=data_sel)
    drain(amdgpu_queue, amdgpu_signal)
    lo, hi = u32(buf, 2), u32(buf, 3)
    if data_sel == "none":
        assert (lo, hi) == (SENTINEL, SENTINEL)
    elif data_sel == "32bit":
        assert (lo, hi) == (0x55667788, SENTINEL)
    else:
        assert (lo, hi) == (0x55667788, 0x11223344)
    assert u32(buf, 1) == SENTINEL and u32(buf, 4) == SENTINEL


def test_release_mem_timestamp(amdgpu_queue, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest (timestamps) / KFDPerfCountersTest: RELEASE_MEM DATA_SEL 3 writes the 64-bit GPU
    clock counter: two timestamps taken in order on one queue are non-zero and do not go
    backwards (KFDPerfCounters / timestamp tests)."""
    buf = _buf(amdgpu_buffer, SENTINEL)
    amdgpu_queue.release_mem(buf.gpu_address, 0, data_sel="gpu_clock")
    amdgpu_queue.nop(64)
    amdgpu_queue.timestamp(buf.gpu_address + 8)
    drain(amdgpu_queue, amdgpu_signal)
    t1, t2 = u64(buf, 0), u64(buf, 1)
    assert t1 != 0xA5A5A5A5A5A5A5A5 and t2 != 0xA5A5A5A5A5A5A5A5
    assert 0 < t1 <= t2


# -- WAIT_REG_MEM ----------------------------------------------------------------------------------

REF = 100
# function -> (values relative to REF for which (value & mask) function REF is false, true)
TRUTH = {
    "<": ([0, 1], [-1]),
    "<=": ([1], [0, -1]),
    "==": ([-1, 1], [0]),
    "!=": ([0], [1, -1]),
    ">=": ([-1], [0, 1]),
    ">": ([-1, 0], [1]),
}
FUNCTION_CODE = {"always": 0, "<": 1, "<=": 2, "==": 3, "!=": 4, ">=": 5, ">": 6}


@pytest.mark.parametrize("function", list(TRUTH))
def test_wait_reg_mem_compare(amdgpu_queue, amdgpu_buffer, function):
    """KFDQMTest.SyncBetweenQueues-style waits / libdrm amdgpu_sync_dependency_test: WAIT_REG_MEM
    (0x3C) on memory, every compare function (1 <, 2 <=, 3 ==, 4 !=, 5 >=, 6 >, facts-pm4.md
    §3.2) at the boundary: the CP stays blocked while the polled value makes the condition false
    (REF-1, REF, REF+1 as they apply), and the WRITE_DATA behind it runs once the CPU stores a
    value that makes it true; a value that is already true passes at once."""
    falses, trues = TRUTH[function]
    buf = _buf(amdgpu_buffer)
    words = buf.view(np.uint32)
    poll, marker = buf.gpu_address, buf.gpu_address + 64
    words[0] = REF + falses[0]
    amdgpu_queue.submit(raw_wait_reg_mem(poll, REF, FUNCTION_CODE[function]),
                        raw_write_data(marker, [1]))
    for f in falses:
        words[0] = REF + f
        stays(lambda: u32(buf, 16), 0, seconds=0.1,
              what=f"the WRITE_DATA behind WAIT_REG_MEM (value {REF + f} {function} {REF})")
    words[0] = REF + trues[0]
    wait_for(lambda: u32(buf, 16), lambda v: v == 1, what="the WRITE_DATA after release")
    for i, t in enumerate(trues, start=2):
        words[0] = REF + t
        amdgpu_queue.wait_reg_mem(poll, REF, function=FUNCTION_CODE[function])
        amdgpu_queue.write_data(marker, [i])
        wait_for(lambda i=i: u32(buf, 16), lambda v, i=i: v == i,
                 what=f"a WAIT_REG_MEM already true ({REF + t} {function} {REF})")


def test_wait_reg_mem_always(amdgpu_queue, amdgpu_buffer):
    """libdrm amdgpu_sync_dependency_test (WAIT_REG_MEM): WAIT_REG_MEM function 0 (always) passes
    whatever the memory holds."""
    buf = _buf(amdgpu_buffer)
    buf.view(np.uint32)[0] = 12345
    amdgpu_queue.submit(raw_wait_reg_mem(buf.gpu_address, 0, 0), raw_write_data(
        buf.gpu_address + 4, [9]))
    wait_for(lambda: u32(buf, 1), lambda v: v == 9, what="the write after WAIT(always)")


def test_wait_reg_mem_mask(amdgpu_queue, amdgpu_buffer):
    """libdrm amdgpu_sync_dependency_test (WAIT_REG_MEM mask): WAIT_REG_MEM compares (value &
    MASK) with the reference: with mask 0xFF00 and reference 0x1200, 0x13FF blocks and 0x12FF
    passes (facts-pm4.md §3.2)."""
    buf = _buf(amdgpu_buffer)
    words = buf.view(np.uint32)
    words[0] = 0x13FF
    amdgpu_queue.submit(raw_wait_reg_mem(buf.gpu_address, 0x1200, 3, mask=0xFF00),
                        raw_write_data(buf.gpu_address + 4, [1]))
    stays(lambda: u32(buf, 1), 0, seconds=0.1, what="the write behind a masked WAIT_REG_MEM")
    words[0] = 0x12FF
    wait_for(lambda: u32(buf, 1), lambda v: v == 1, what="the write after the masked wait")


def test_wait_reg_mem_across_queues(amdgpu_device, amdgpu_queue, amdgpu_buffer, amdgpu_signal):
    """A WAIT_REG_MEM on one queue is released by a WRITE_DATA from another queue (GPU-side
    synchronisation between queues, KFDQMTest.SyncBetweenQueues)."""
    buf = _buf(amdgpu_buffer)
    amdgpu_queue.wait_reg_mem(buf.gpu_address, 0xAB, function="==")
    amdgpu_queue.write_data(buf.gpu_address + 4, [0xCD])
    stays(lambda: u32(buf, 1), 0, seconds=0.1, what="the waiting queue's write")
    other = amdgpu_device.create_queue("pm4", owner="releaser")
    try:
        other.write_data(buf.gpu_address, [0xAB])
        wait_for(lambda: u32(buf, 1), lambda v: v == 0xCD, what="the released queue's write")
    finally:
        other.destroy()


# -- INDIRECT_BUFFER ------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["builder", "raw"])
def test_indirect_buffer(amdgpu_queue, amdgpu_buffer, amdgpu_signal, encoding):
    """KFDQMTest.SubmitPacketCpQueue through an IB / libdrm amdgpu_command_submission_compute
    (IBs): INDIRECT_BUFFER (0x3F): the CP runs the IB's packets, then returns to the ring (a
    WRITE_DATA after the IB packet runs after the IB's writes) (facts-pm4.md §3.5)."""
    ib = amdgpu_buffer(4096, "gtt")
    out = _buf(amdgpu_buffer)
    words = raw_write_data(out.gpu_address, [1, 2, 3]) + raw_write_data(out.gpu_address + 64,
                                                                        [4])
    ib.view(np.uint32)[:len(words)] = words
    if encoding == "raw":
        amdgpu_queue.submit(raw_indirect_buffer(ib.gpu_address, len(words)))
    else:
        amdgpu_queue.indirect_buffer(ib.gpu_address, len(words))
    amdgpu_queue.write_data(out.gpu_address + 64, [5])
    drain(amdgpu_queue, amdgpu_signal)
    assert list(out.view(np.uint32)[:3]) == [1, 2, 3]
    assert u32(out, 16) == 5


def test_indirect_buffer_nested(amdgpu_queue, amdgpu_buffer, amdgpu_signal):
    """libdrm amdgpu_command_submission_compute (IB levels): INDIRECT_BUFFER inside an IB (IB2):
    IB1 writes a, runs IB2 (writes b), writes c; the order is a, b, c (a shared slot ends with
    c's value)."""
    ib1 = amdgpu_buffer(4096, "gtt")
    ib2 = amdgpu_buffer(4096, "gtt")
    out = _buf(amdgpu_buffer)
    last = out.gpu_address + 128
    w2 = raw_write_data(out.gpu_address + 4, [0xB]) + raw_write_data(last, [0xB])
    ib2.view(np.uint32)[:len(w2)] = w2
    w1 = (raw_write_data(out.gpu_address, [0xA]) + raw_write_data(last, [0xA])
          + raw_indirect_buffer(ib2.gpu_address, len(w2))
          + raw_write_data(out.gpu_address + 8, [0xC]) + raw_write_data(last, [0xC]))
    ib1.view(np.uint32)[:len(w1)] = w1
    amdgpu_queue.submit(raw_indirect_buffer(ib1.gpu_address, len(w1)))
    drain(amdgpu_queue, amdgpu_signal)
    assert list(out.view(np.uint32)[:3]) == [0xA, 0xB, 0xC]
    assert u32(out, 32) == 0xC


def test_indirect_buffer_chain(amdgpu_queue, amdgpu_buffer, amdgpu_signal):
    """libdrm amdgpu_command_submission_compute (chained IBs): INDIRECT_BUFFER with CHAIN (bit
    20) inside an IB replaces the rest of that IB: the packet after the chain in IB1 does not
    run, IB2's does, and the ring continues after IB1."""
    ib1 = amdgpu_buffer(4096, "gtt")
    ib2 = amdgpu_buffer(4096, "gtt")
    out = _buf(amdgpu_buffer)
    w2 = raw_write_data(out.gpu_address + 4, [0x22])
    ib2.view(np.uint32)[:len(w2)] = w2
    w1 = (raw_write_data(out.gpu_address, [0x11])
          + raw_indirect_buffer(ib2.gpu_address, len(w2), chain=True)
          + raw_write_data(out.gpu_address + 8, [0xBAD]))
    ib1.view(np.uint32)[:len(w1)] = w1
    amdgpu_queue.submit(raw_indirect_buffer(ib1.gpu_address, len(w1)))
    amdgpu_queue.write_data(out.gpu_address + 12, [0x33])
    drain(amdgpu_queue, amdgpu_signal)
    assert list(out.view(np.uint32)[:4]) == [0x11, 0x22, 0, 0x33]


# -- EVENT_WRITE, ACQUIRE_MEM, SET_SH_REG ----------------------------------------------------------

def test_event_write_partial_flush(amdgpu_queue, amdgpu_buffer):
    """KFDQMTest.SimpleWriteDispatch (the dispatch's partial flush): EVENT_WRITE (0x46)
    CS_PARTIAL_FLUSH, the 2-dword form (type 7, index 4: body 0x407), is accepted and the queue
    goes on (facts-pm4.md §3.6)."""
    out = _buf(amdgpu_buffer)
    amdgpu_queue.submit([pm4_header(PM4_EVENT_WRITE, 1), CS_PARTIAL_FLUSH | 4 << 8],
                        raw_write_data(out.gpu_address, [0xF1]))
    wait_for(lambda: u32(out), lambda v: v == 0xF1, what="the write after EVENT_WRITE")


def test_acquire_mem(amdgpu_device, amdgpu_queue, amdgpu_buffer):
    """KFDQMTest.SimpleWriteDispatch (the dispatch's ACQUIRE_MEM): ACQUIRE_MEM (0x58) in the
    target's form — gfx9: 6 body dwords with COHER_CNTL 0x28C00000; gfx10+: 7 body dwords with
    GCR_CNTL 0x4381 — invalidates the caches and the queue goes on: data the CPU wrote is then
    copied by the CP (facts-pm4.md §3.4)."""
    out = _buf(amdgpu_buffer)
    src = _buf(amdgpu_buffer)
    src.view(np.uint32)[0] = 0xAC0123
    body = ACQUIRE_MEM_BODY[amdgpu_device.name]
    acquire = [pm4_header(PM4_ACQUIRE_MEM, len(body)), *body]
    copy = [pm4_header(PM4_COPY_DATA, 5), 2 | 2 << 8 | 1 << 20, src.gpu_address & 0xFFFFFFFF,
            src.gpu_address >> 32, out.gpu_address & 0xFFFFFFFF, out.gpu_address >> 32]
    amdgpu_queue.submit(acquire, copy)
    wait_for(lambda: u32(out), lambda v: v == 0xAC0123, what="the copy after ACQUIRE_MEM")


def test_set_sh_reg_then_copy_register(amdgpu_queue, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.SimpleWriteDispatch (SET_SH_REG state): SET_SH_REG (0x76) writes
    COMPUTE_USER_DATA_0 and _1 (SH offset 0x240, absolute 0x2E40 on gfx9 and gfx11, facts-pm4.md
    §3.7, §4.1); COPY_DATA from the register (SRC_SEL 0) to memory reads the values back."""
    out = _buf(amdgpu_buffer, SENTINEL)
    amdgpu_queue.submit([pm4_header(0x76, 3), 0x240, 0x51515151, 0x52525252])
    for i in range(2):
        amdgpu_queue.submit(pm4.CopyData(src_sel=0, dst_sel=2, src_addr=0x2E40 + i,
                                         dst_addr=out.gpu_address + 4 * i, wr_confirm=1))
    drain(amdgpu_queue, amdgpu_signal)
    assert list(out.view(np.uint32)[:3]) == [0x51515151, 0x52525252, SENTINEL]


# -- COPY_DATA, DMA_DATA ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["imm32", "imm64", "mem64", "gpu_clock"])
def test_copy_data(amdgpu_queue, amdgpu_buffer, amdgpu_signal, case):
    """libdrm amdgpu_command_submission_compute (COPY_DATA): COPY_DATA (0x40): an immediate
    (SRC_SEL 5) of 32 and 64 bits (COUNT_SEL), memory to memory 64-bit, and the GPU clock counter
    (SRC_SEL 9) to memory (facts-pm4.md §3.9)."""
    src = _buf(amdgpu_buffer)
    out = _buf(amdgpu_buffer, SENTINEL)
    dst = out.gpu_address + 8
    if case == "imm32":
        p = pm4.CopyData(src_sel=5, dst_sel=2, src_addr=0xFEEDFACE, dst_addr=dst, wr_confirm=1)
    elif case == "imm64":
        p = pm4.CopyData(src_sel=5, dst_sel=2, src_addr=0x0102030405060708, dst_addr=dst,
                         count_sel=1, wr_confirm=1)
    elif case == "mem64":
        src.view(np.uint64)[0] = 0x8877665544332211
        p = pm4.CopyData(src_sel=2, dst_sel=2, src_addr=src.gpu_address, dst_addr=dst,
                         count_sel=1, wr_confirm=1)
    else:
        p = pm4.CopyData(src_sel=9, dst_sel=2, dst_addr=dst, count_sel=1, wr_confirm=1)
    amdgpu_queue.submit(p)
    drain(amdgpu_queue, amdgpu_signal)
    got = u64(out, 1)
    if case == "imm32":
        assert got == SENTINEL << 32 | 0xFEEDFACE
    elif case == "imm64":
        assert got == 0x0102030405060708
    elif case == "mem64":
        assert got == 0x8877665544332211
    else:
        assert got not in (0, 0xA5A5A5A5A5A5A5A5)
    assert u32(out, 1) == SENTINEL and u32(out, 4) == SENTINEL


@pytest.mark.parametrize("case", ["copy_4k", "copy_100_bytes", "fill"])
def test_dma_data(amdgpu_queue, amdgpu_buffer, amdgpu_signal, case):
    """libdrm amdgpu_command_submission_copy_linear_helper / const_fill_helper on the CP:
    DMA_DATA (0x50) with CP_SYNC: a 4 KiB and a 100-byte memory-to-memory copy, and a fill with
    the DATA dword (SRC_SEL 2); the bytes after the range are untouched (facts-pm4.md §3.10)."""
    src = amdgpu_buffer(8192, "gtt")
    dst = amdgpu_buffer(8192, "gtt")
    data = (np.arange(2048, dtype=np.uint32) * 0x9E3779B9).astype(np.uint32)
    src.view(np.uint32)[:] = data
    dst.view(np.uint32)[:] = SENTINEL
    if case == "fill":
        n = 256
        amdgpu_queue.submit(pm4.DmaData(dst_addr=dst.gpu_address, byte_count=n, src_sel=2,
                                        src_addr=0x0BADF00D, cp_sync=1))
        want = np.full(n // 4, 0x0BADF00D, np.uint32)
    else:
        n = 4096 if case == "copy_4k" else 100
        amdgpu_queue.submit(pm4.DmaData(dst_addr=dst.gpu_address, src_addr=src.gpu_address,
                                        byte_count=n, cp_sync=1))
        want = data[:n // 4]
    drain(amdgpu_queue, amdgpu_signal)
    words = dst.view(np.uint32)
    assert np.array_equal(words[:n // 4], want)
    assert (words[n // 4:] == SENTINEL).all()


# -- ATOMIC_MEM ------------------------------------------------------------------------------------

M32 = 0xFFFFFFFF
# name -> (TC_OP, bytes, initial, src, cmp, expected result); TC_OP codes from vega10_enum.h /
# soc21_enum.h (facts-pm4.md §3.11); 0x40 added = the non-returning form
ATOMICS = {
    "add_rtn_32": (0x0F, 4, 0xFFFFFFF0, 0x20, 0, 0x00000010),
    "add_32": (0x4F, 4, 5, 7, 0, 12),
    "sub_rtn_32": (0x10, 4, 5, 7, 0, (5 - 7) & M32),
    "swap_rtn_32": (0x07, 4, 0x1111, 0x2222, 0, 0x2222),
    "cmpswap_hit_32": (0x08, 4, 0x33, 0x44, 0x33, 0x44),
    "cmpswap_miss_32": (0x08, 4, 0x33, 0x44, 0x34, 0x33),
    "umax_rtn_32": (0x14, 4, 0x80000000, 0x7FFFFFFF, 0, 0x80000000),
    "and_rtn_32": (0x15, 4, 0xF0F0F0F0, 0x0FF00FF0, 0, 0x00F000F0),
    "or_rtn_32": (0x16, 4, 0xF0000000, 0x0000000F, 0, 0xF000000F),
    "add_rtn_64": (0x2F, 8, 0xFFFFFFFF, 1, 0, 0x100000000),
    "sub_rtn_64": (0x30, 8, 0x100000000, 1, 0, 0xFFFFFFFF),
    "swap_rtn_64": (0x27, 8, 1, 0xDEADBEEF00C0FFEE, 0, 0xDEADBEEF00C0FFEE),
    "cmpswap_hit_64": (0x28, 8, 0x123456789, 7, 0x123456789, 7),
}


@pytest.mark.parametrize("name", list(ATOMICS))
def test_atomic_mem(amdgpu_queue, amdgpu_buffer, amdgpu_signal, name):
    """KFDQMTest.Atomics (CP atomics): ATOMIC_MEM (0x1E) with the TC_OP codes: add, sub, swap,
    compare- swap (hit and miss), umax, and, or on 32 bits, add / sub with carry, swap and
    compare-swap on 64 bits; memory holds the operation's result and the neighbouring dwords are
    untouched (facts- pm4.md §3.11)."""
    op, size, initial, src, cmp, expected = ATOMICS[name]
    buf = _buf(amdgpu_buffer, SENTINEL)
    if size == 8:
        buf.view(np.uint64)[1] = initial
    else:
        buf.view(np.uint32)[2] = initial
    amdgpu_queue.submit(pm4.AtomicMem(addr=buf.gpu_address + 8, atomic=op, src_data=src,
                                      cmp_data=cmp))
    drain(amdgpu_queue, amdgpu_signal)
    got = u64(buf, 1) if size == 8 else u32(buf, 2)
    assert got == expected
    assert u32(buf, 1) == SENTINEL
    assert u32(buf, 3 if size == 4 else 4) == SENTINEL


def test_atomic_return_value(amdgpu_queue, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.Atomics (returning CP atomics): A returning ATOMIC_MEM leaves the old value for
    COPY_DATA SRC_SEL 6 (atomic return data), which copies it to memory (facts-pm4.md §3.9,
    §3.11)."""
    buf = _buf(amdgpu_buffer)
    buf.view(np.uint32)[0] = 41
    amdgpu_queue.submit(pm4.AtomicMem(addr=buf.gpu_address, atomic=0x0F, src_data=1),
                        pm4.CopyData(src_sel=6, dst_sel=2, dst_addr=buf.gpu_address + 4,
                                     wr_confirm=1))
    drain(amdgpu_queue, amdgpu_signal)
    assert (u32(buf, 0), u32(buf, 1)) == (42, 41)


def test_packets_run_in_order(amdgpu_queue, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.SubmitPacketCpQueue (ordering): The CP executes a queue's packets in order: 200
    WRITE_DATA packets to one address leave the last value, and a RELEASE_MEM after them sees all
    earlier writes done."""
    buf = _buf(amdgpu_buffer)
    for i in range(200):
        amdgpu_queue.write_data(buf.gpu_address, [i])
    amdgpu_queue.release_mem(buf.gpu_address + 8, 0xD0E, data_sel="32bit")
    drain(amdgpu_queue, amdgpu_signal)
    assert (u32(buf, 0), u32(buf, 2)) == (199, 0xD0E)
