"""SDMA golden packets: dwords from facts-sdma-aql-codeobj.md §6.1-6.3 (assembled from the
kernel's vega10_sdma_pkt_open.h / sdma_v6_0_0_pkt_open.h, ROCR and kfdtest), not from our
builder. Header arithmetic is re-derived from the header macros' shift/mask values
(``SDMA_PKT_HEADER_OP`` [7:0], ``SUB_OP`` [15:8], per-packet ``*_shift``)."""

from __future__ import annotations

import struct

import pytest

from pytest_amdgpu.errors import PacketError
from pytest_amdgpu.packets import sdma
from pytest_amdgpu.targets import get_target

V4 = ("gfx90a", "gfx942")      # SDMA 4.4.0 / 4.4.2
V6 = ("gfx1100",)              # SDMA 6.0.0
ALL = V4 + V6


def words(text: str) -> list[int]:
    return [int(x, 16) for x in text.split()]


# Opcodes from the *_sdma_pkt_open.h headers (SDMA_OP_*).
SDMA_OP_COPY, SDMA_OP_FENCE, SDMA_OP_TRAP, SDMA_OP_POLL_REGMEM = 1, 5, 6, 8
SDMA_OP_ATOMIC, SDMA_OP_CONST_FILL, SDMA_OP_TIMESTAMP = 10, 11, 13
SDMA_SUBOP_TIMESTAMP_GET_GLOBAL = 2


@pytest.mark.parametrize("target", ALL)
def test_copy_linear_4096(target):
    # §6.1: identical on 4.4 and 6.0; bytes listed in the fact sheet
    expected = words("00000001 00000FFF 00000000 00001000 00000000 00002000 00000000")
    p = sdma.SdmaCopyLinear(src_addr=0x1000, dst_addr=0x2000, size=4096)
    assert p.encode(target) == expected
    assert p.encode_bytes(target) == bytes.fromhex(   # the byte dump of §6.1
        "01 00 00 00 ff 0f 00 00 00 00 00 00 00 10 00 00 00 00 00 00 00 20 00 00 00 00 00 00")
    got, n = sdma.decode(expected, 0, target)
    assert n == 7 and got == p and got.size == 4096


def test_copy_linear_count_width_per_version():
    # §6.1: an 8 MiB copy is one SDMA 6.0 packet (DW1 = 0x007FFFFF) but two 4 MiB packets on 4.4
    # (22-bit count; kernel copy_max_bytes 0x400000).
    big = 8 << 20
    v6 = sdma.split_copy("gfx1100", 0x10000, 0x20000000, big)
    assert [p.encode("gfx1100")[1] for p in v6] == [0x007FFFFF]
    v4 = sdma.split_copy("gfx942", 0x10000, 0x20000000, big)
    assert [p.encode("gfx942")[1] for p in v4] == [0x003FFFFF, 0x003FFFFF]
    assert [p.src_addr for p in v4] == [0x10000, 0x10000 + (4 << 20)]
    with pytest.raises(PacketError, match="size"):
        sdma.SdmaCopyLinear(src_addr=0, dst_addr=0, size=big).encode("gfx942")


@pytest.mark.parametrize("target", V4)
def test_fence_v4(target):
    expected = words("00000005 00003000 00000000 00000001")
    p = sdma.SdmaFence(addr=0x3000, data=1)
    assert p.encode(target) == expected
    assert sdma.decode(expected, 0, target) == (p, 4)


def test_fence_v6_mtype():
    # §6.2: v6 producers set mtype = 3 (uncached): DW0 = 5 | 3 << 16 (MTYPE shift 16)
    assert sdma.SdmaFence(addr=0x3000, data=1, mtype=3).encode("gfx1100") == \
        words("00030005 00003000 00000000 00000001")
    # kfdtest gfx10+ variant: mtype 3, sys (bit 20), snp (bit 22): DW0 = 0x00530005
    p = sdma.SdmaFence(addr=0x3000, data=1, mtype=3, sys=1, snp=1)
    assert p.encode("gfx1100") == words("00530005 00003000 00000000 00000001")
    assert sdma.decode(words("00530005 00003000 00000000 00000001"), 0, "gfx1100")[0] == p


@pytest.mark.parametrize("target", ALL)
def test_trap_and_ring_bookkeeping(target):
    # §6.2: TRAP with event id 7; COPY (28 B) + FENCE (16 B) + TRAP (8 B) = 52 bytes
    assert sdma.SdmaTrap(int_context=7).encode(target) == words("00000006 00000007")
    ring = (sdma.SdmaCopyLinear(src_addr=0x1000, dst_addr=0x2000, size=4096).encode(target)
            + sdma.SdmaFence(addr=0x3000, data=1).encode(target)
            + sdma.SdmaTrap(int_context=7).encode(target))
    assert 4 * len(ring) == 52
    offsets = [off * 4 for off, _, _ in sdma.iter_packets(ring, target)]
    assert offsets == [0, 28, 44]


@pytest.mark.parametrize("target", ALL)
def test_poll_regmem_equal(target):
    expected = words("B0000008 00004000 00000000 00000001 FFFFFFFF 0FFF0004")
    p = sdma.SdmaPollRegmem(addr=0x4000, reference=1, function=3, mask=0xFFFFFFFF,
                            mem_poll=1, poll_interval=4, retry_count=0xFFF)
    assert p.encode(target) == expected
    # header: op 8 | func << 28 | mem_poll << 31 (POLL_REGMEM_HEADER_func/mem_poll shifts)
    assert expected[0] == SDMA_OP_POLL_REGMEM | (3 << 28) | (1 << 31)
    assert sdma.decode(expected, 0, target)[0] == p


@pytest.mark.parametrize("target", ALL)
def test_atomic_decrement_signal(target):
    expected = words("5E00000A 00005008 00000000 FFFFFFFF FFFFFFFF 00000000 00000000 00000000")
    p = sdma.SdmaAtomic(addr=0x5008, atomic_op=47, src_data=0xFFFFFFFFFFFFFFFF)
    assert p.encode(target) == expected
    assert expected[0] == SDMA_OP_ATOMIC | (47 << 25)   # ATOMIC_HEADER_atomic_op shift 25
    assert sdma.decode(expected, 0, target)[0] == p


@pytest.mark.parametrize("target", ALL)
def test_timestamp_get_global(target):
    expected = words("0000020D 00006000 00000000")
    p = sdma.SdmaTimestampGetGlobal(addr=0x6000)
    assert p.encode(target) == expected
    assert expected[0] == SDMA_OP_TIMESTAMP | (SDMA_SUBOP_TIMESTAMP_GET_GLOBAL << 8)
    got, n = sdma.decode(expected, 0, target)
    assert n == 3 and type(got) is sdma.SdmaTimestampGetGlobal and got == p


@pytest.mark.parametrize("target", ALL)
def test_timestamp_set_and_get(target):
    dw = [SDMA_OP_TIMESTAMP | (0 << 8), 0x89ABCDEF, 0x01234567]
    got, _ = sdma.decode(dw, 0, target)
    assert got == sdma.SdmaTimestampSet(value=0x0123456789ABCDEF)
    dw = [SDMA_OP_TIMESTAMP | (1 << 8), 0x7020, 0x7F]
    got, _ = sdma.decode(dw, 0, target)
    assert type(got) is sdma.SdmaTimestampGet and got.addr == 0x7F_00007020


@pytest.mark.parametrize("target", ALL)
def test_const_fill_dword(target):
    # §6.3: DW0 = 11 | 2 << 30 (fillsize dword)
    p = sdma.SdmaConstFill(dst_addr=0x8000, data=0xA5A5A5A5, size=256, fillsize=2)
    w = p.encode(target)
    assert w[0] == 0x8000000B
    assert w[1:] == [0x8000, 0, 0xA5A5A5A5, 255]   # COUNT = bytes - 1 (kernel)
    assert sdma.decode(w, 0, target)[0] == p


@pytest.mark.parametrize("target", ALL)
def test_nop_padding(target):
    expected = words("00020000 00000000 00000000")   # §6.3: 3-dword NOP pad
    assert sdma.SdmaNop.of_size(3).encode(target) == expected
    got, n = sdma.decode(expected, 0, target)
    assert n == 3 and got.body == (0, 0)
    assert sdma.decode([0], 0, target) == (sdma.SdmaNop(), 1)   # an all-zero dword is a NOP


@pytest.mark.parametrize("target", ALL)
def test_write_linear(target):
    # WRITE_UNTILED: DW3 count [19:0] = N - 1 (kfdtest SDMA_COUNT, tinygrad writes 1 for two)
    dw = [2, 0x9000, 0x1, 1, 0xAAAA, 0xBBBB]
    got, n = sdma.decode(dw, 0, target)
    assert n == 6 and got == sdma.SdmaWriteLinear(dst_addr=0x1_00009000, data=[0xAAAA, 0xBBBB])
    assert got.encode(target) == dw


@pytest.mark.parametrize("target", ALL)
def test_indirect(target):
    # INDIRECT: vmid [19:16], IB base (32-byte aligned), IB size [19:0] dwords, CSA address
    dw = [4 | (3 << 16), 0x20000, 0x1, 64, 0, 0]
    got, n = sdma.decode(dw, 0, target)
    assert n == 6 and got == sdma.SdmaIndirect(addr=0x1_00020000, ib_size=64, vmid=3)
    assert got.encode(target) == dw
    with pytest.raises(PacketError, match="32-byte"):
        sdma.SdmaIndirect(addr=0x1_00020010, ib_size=64).encode(target)


def test_v6_only_fields_rejected_on_v4():
    with pytest.raises(PacketError, match="mtype"):
        sdma.SdmaFence(addr=0x3000, data=1, mtype=3).encode("gfx942")
    with pytest.raises(PacketError, match="cache_policy"):
        sdma.SdmaCopyLinear(src_addr=0, dst_addr=0, size=4, src_cache_policy=1).encode("gfx90a")
    # and on v4 the same header bits are not decoded as v6 fields
    got, _ = sdma.decode([0x00030005, 0x3000, 0, 1], 0, "gfx942")
    assert got.mtype == 0


def test_split_fill_uses_dword_or_byte_fill():
    t = get_target("gfx942")
    parts = sdma.split_fill(t, 0x1000, 0xDEADBEEF, 10 << 20)
    assert [p.size for p in parts] == [4 << 20, 4 << 20, 2 << 20]
    assert all(p.fillsize == 2 and p.data == 0xDEADBEEF for p in parts)
    odd = sdma.split_fill(t, 0x1001, 0x7F, 5)
    assert len(odd) == 1 and odd[0].fillsize == 0 and odd[0].data == 0x7F7F7F7F
    raw = b"".join(struct.pack("<5I", *p.encode(t)) for p in parts)
    assert len(raw) == 3 * 20


def test_fence_for_target_and_fence64():
    # §6.2: v6 producers set mtype 3; SDMA 4.4 has no such field
    assert sdma.SdmaFence.for_target("gfx1100", 0x3000, 1).encode("gfx1100")[0] == 0x00030005
    assert sdma.SdmaFence.for_target("gfx942", 0x3000, 1).encode("gfx942")[0] == 0x00000005
    lo, hi = sdma.fence64("gfx942", 0x3000, 0x1122334455667788)
    assert (lo.addr, lo.data, hi.addr, hi.data) == (0x3000, 0x55667788, 0x3004, 0x11223344)
