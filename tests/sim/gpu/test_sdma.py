"""SDMA engine: every packet of the target's SDMA version, byte pointers, wrap-around."""

from __future__ import annotations

import struct

import pytest

from pytest_amdgpu.packets import sdma as S

from .rig import EV_HW_EXCEPTION, poll


def test_copy_fence_trap_golden_pointers(rig):
    """facts-sdma §6.2: COPY_LINEAR (28 B) + FENCE (16 B) + TRAP (8 B) = wptr 52."""
    q = rig.queue("sdma")
    buf = rig.alloc(3 * 4096)
    ev = rig.event()
    src = bytes((i * 7) & 0xFF for i in range(4096))
    buf.write(0, src)
    buf.set_u64(8 * 0 + 8192, 0)
    q.submit(S.SdmaCopyLinear(src_addr=buf.gpu, dst_addr=buf.gpu + 4096, size=4096),
             S.SdmaFence(addr=rig.slot_addr(ev), data=ev.event_id),
             S.SdmaTrap(int_context=ev.event_id))
    assert q.wptr == 52
    assert rig.wait_events([ev.event_id]).status == "complete"
    assert buf.read(4096, 4096) == src
    assert poll(lambda: q.rptr() == 52)


def test_copy_broadcast_and_unaligned(rig942):
    q = rig942.queue("sdma")
    buf = rig942.alloc(4 * 4096)
    src = bytes(range(256)) * 2
    buf.write(3, src[:301])
    q.submit(S.SdmaCopyLinearBroadcast(src_addr=buf.gpu + 3, dst1_addr=buf.gpu + 4096 + 1,
                                       dst2_addr=buf.gpu + 8192 + 5, size=301),
             S.SdmaFence(addr=buf.gpu + 12288, data=1))
    assert poll(lambda: buf.u32(12288) == 1)
    assert buf.read(4096 + 1, 301) == src[:301]
    assert buf.read(8192 + 5, 301) == src[:301]
    assert buf.read(4096, 1) == b"\0" and buf.read(4096 + 302, 1) == b"\0"


def test_write_linear_and_const_fill(rig):
    q = rig.queue("sdma")
    buf = rig.alloc(4096)
    q.submit(S.SdmaWriteLinear(dst_addr=buf.gpu, data=(1, 2, 3)),
             S.SdmaConstFill(dst_addr=buf.gpu + 64, data=0xDEADBEEF, size=64),
             S.SdmaConstFill(dst_addr=buf.gpu + 256, data=0x5A, size=7, fillsize=0),
             S.SdmaFence(addr=buf.gpu + 1024, data=9))
    assert poll(lambda: buf.u32(1024) == 9)
    assert buf.words(0, 4) == [1, 2, 3, 0]
    assert buf.words(64, 17) == [0xDEADBEEF] * 16 + [0]
    assert buf.read(256, 8) == b"\x5a" * 7 + b"\0"


def test_const_fill_dword_count_rocr_style(rig942):
    """ROCR encodes a dword fill's count as (dwords-1)*4 (facts-sdma §1.4): whole dwords."""
    q = rig942.queue("sdma")
    buf = rig942.alloc(4096)
    words = S.SdmaConstFill(dst_addr=buf.gpu, data=7, size=16).encode(rig942.target)
    words[4] = (4 - 1) * 4                          # instead of 16 - 1
    q.submit(words, S.SdmaFence(addr=buf.gpu + 512, data=1))
    assert poll(lambda: buf.u32(512) == 1)
    assert buf.words(0, 5) == [7, 7, 7, 7, 0]


@pytest.mark.parametrize("retry", [0xFFF, 2])
def test_poll_regmem(rig942, retry):
    q = rig942.queue("sdma")
    buf = rig942.alloc(4096)
    q.submit(S.SdmaPollRegmem(addr=buf.gpu, reference=0x10, mask=0xF0, function=5,
                              retry_count=retry),
             S.SdmaFence(addr=buf.gpu + 8, data=1))
    if retry == 0xFFF:                              # polls forever until satisfied
        assert not poll(lambda: buf.u32(8) == 1, timeout=0.1)
        buf.set_u32(0, 0x1F)
    # a finite retry count gives up and the engine moves on
    assert poll(lambda: buf.u32(8) == 1)


def test_timestamps(rig):
    q = rig.queue("sdma")
    buf = rig.alloc(4096)
    before = rig.kfd.get_clock_counters(gpu_id=rig.gpu_id).gpu
    q.submit(S.SdmaTimestampGetGlobal(addr=buf.gpu),
             S.SdmaTimestampSet(value=1 << 40),
             S.SdmaTimestampGet(addr=buf.gpu + 32),
             S.SdmaFence(addr=buf.gpu + 64, data=1))
    assert poll(lambda: buf.u32(64) == 1)
    after = rig.kfd.get_clock_counters(gpu_id=rig.gpu_id).gpu
    assert before <= buf.u64(0) <= after
    local = buf.u64(32)
    assert 1 << 40 <= local <= (1 << 40) + (after - before) + 1


def test_atomic_decrements_signal(rig):
    """ROCR's SDMA signal decrement: ATOMIC ADD_RTN_64 of -1 (facts-sdma §1.4)."""
    q = rig.queue("sdma")
    buf = rig.alloc(4096)
    buf.set_u64(8, 3)
    q.submit(S.SdmaAtomic(addr=buf.gpu + 8, atomic_op=47, src_data=2**64 - 1),
             S.SdmaAtomic(addr=buf.gpu + 16, atomic_op=0x0F, src_data=5),   # ADD_RTN_32
             S.SdmaFence(addr=buf.gpu + 64, data=1))
    assert poll(lambda: buf.u32(64) == 1)
    assert buf.u64(8) == 2
    assert buf.u32(16) == 5


def test_atomic_cmpswap_loop(rig942):
    q = rig942.queue("sdma")
    buf = rig942.alloc(4096)
    buf.set_u64(0, 1)
    q.submit(S.SdmaAtomic(addr=buf.gpu, atomic_op=0x28, src_data=50, cmp_data=2, loop=1),
             S.SdmaFence(addr=buf.gpu + 64, data=1))
    assert not poll(lambda: buf.u32(64) == 1, timeout=0.05)
    buf.set_u64(0, 2)
    assert poll(lambda: buf.u32(64) == 1)
    assert buf.u64(0) == 50


def test_indirect_buffer(rig):
    t = rig.target
    q = rig.queue("sdma")
    buf = rig.alloc(4096)
    ib = rig.alloc(4096)
    words = S.SdmaWriteLinear(dst_addr=buf.gpu, data=(11, 12)).encode(t) + \
        S.SdmaFence(addr=buf.gpu + 16, data=13).encode(t)
    ib.write(0, struct.pack(f"<{len(words)}I", *words))
    # the dword after INDIRECT must be 8-dword aligned in the ring: pad with NOPs first
    pad = (2 - q.dw_pos()) % 8
    if pad:
        q.put_words(S.SdmaNop.of_size(pad).encode(t), ring=False)
    q.submit(S.SdmaIndirect(addr=ib.gpu, ib_size=len(words)),
             S.SdmaFence(addr=buf.gpu + 32, data=14))
    assert poll(lambda: buf.u32(32) == 14)
    assert buf.words(0, 5) == [11, 12, 0, 0, 13]


def test_unknown_opcode_is_a_hw_exception(rig942):
    q = rig942.queue("sdma")
    buf = rig942.alloc(4096)
    ev = rig942.event(EV_HW_EXCEPTION)
    q.submit([0x0000003F, 0], S.SdmaFence(addr=buf.gpu, data=1))
    assert rig942.wait_events([ev.event_id]).status == "complete"
    assert not poll(lambda: buf.u32(0) == 1, timeout=0.05)     # the queue stopped


@pytest.mark.parametrize("pad", [True, False], ids=["nop-padding", "packet-across-end"])
def test_wrap_around(rig, pad):
    t = rig.target
    q = rig.queue("sdma", ring_size=1024)
    buf = rig.alloc(4096)
    for i in range(1, 150):
        pkt = S.SdmaFence(addr=buf.gpu, data=i).encode(t) + S.SdmaNop.of_size(3).encode(t)
        room = 256 - q.dw_pos()
        if pad and room < len(pkt):
            q.put_words(S.SdmaNop.of_size(room).encode(t), ring=False)
        q.put_words(pkt)
        assert poll(lambda i=i: buf.u32(0) == i)
    assert q.wptr > 4 * 1024
    assert poll(lambda: q.rptr() == q.wptr)


@pytest.mark.parametrize(("target", "high_bit"), [("gfx942", 22), ("gfx1100", 30)])
def test_copy_count_width_per_sdma_version(target, high_bit):
    """COPY_LINEAR COUNT is [21:0] on SDMA 4.4 and [29:0] on SDMA 6.0 (the pkt_open headers'
    SDMA_PKT_COPY_LINEAR_COUNT_count_mask 0x003FFFFF / 0x3FFFFFFF): a bit above the field is
    reserved and ignored, so the copy is COUNT + 1 = 64 bytes either way."""
    from .rig import Rig

    rig = Rig(target)
    try:
        q = rig.queue("sdma")
        buf = rig.alloc(3 * 4096)
        buf.write(0, bytes(range(128)))
        # op 1 sub 0 | COUNT | PARAMETER | SRC_ADDR_LO/HI | DST_ADDR_LO/HI (facts-sdma §1.4)
        words = [1, (1 << high_bit) | 63, 0, buf.gpu & 0xFFFFFFFF, buf.gpu >> 32,
                 (buf.gpu + 4096) & 0xFFFFFFFF, (buf.gpu + 4096) >> 32]
        q.submit(words, S.SdmaFence(addr=buf.gpu + 8192, data=1))
        assert poll(lambda: buf.u32(8192) == 1)
        assert buf.read(4096, 65) == bytes(range(64)) + b"\0"
    finally:
        rig.close()
