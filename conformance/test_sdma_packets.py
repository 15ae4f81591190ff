"""SDMA packets, each checked through its memory effect with guard bytes around the target range:
COPY_LINEAR (every direction between VRAM, GTT and USERPTR, unaligned, the per-packet maximum,
chunked), WRITE_LINEAR, CONST_FILL, FENCE, POLL_REGMEM, TIMESTAMP and ATOMIC, and concurrent
copies on every engine (KFDSDMATest, KFDQMTest.SdmaConcurrentCopies, libdrm amdgpu
sdma tests)."""

from __future__ import annotations

import numpy as np
import pytest

from ._helpers import (
    SDMA_ATOMIC,
    SDMA_ATOMIC_ADD64,
    SDMA_COUNT_BITS,
    SDMA_FENCE_MTYPE,
    SDMA_POLL_REGMEM,
    SDMA_TIMESTAMP,
    drain,
    needs_cpu_visible_vram,
    raw_sdma_copy_linear,
    raw_sdma_fence,
    stays,
    u32,
    u64,
    wait_for,
)

pytestmark = pytest.mark.amdgpu_area("sdma_packets")

GUARD = 0xEE


def _pattern(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


COPIES = [
    pytest.param(("vram", "gtt", 4096, 0, 0), id="vram_to_gtt"),
    pytest.param(("gtt", "vram", 4096, 0, 0), id="gtt_to_vram"),
    pytest.param(("vram", "vram", 65536, 0, 0), id="vram_to_vram_64k"),
    pytest.param(("gtt", "gtt", 100, 3, 5), id="gtt_unaligned_100"),
    pytest.param(("userptr", "gtt", 1, 7, 1), id="userptr_one_byte"),
    pytest.param(("gtt", "userptr", 12345, 1, 2), id="gtt_to_userptr_odd"),
]


@pytest.mark.parametrize("case", COPIES)
def test_copy_linear(amdgpu_device, amdgpu_sdma_queue, amdgpu_buffer, amdgpu_signal, case):
    """KFDSDMATest / KFDMemoryTest.MemoryCopy (SDMA): COPY_LINEAR moves exactly `size` bytes
    between any two of VRAM, GTT and USERPTR, at unaligned offsets too; the bytes before and
    after the destination range keep their guard value (count = bytes - 1,
    facts-sdma-aql-codeobj.md §1.4)."""
    src_loc, dst_loc, size, soff, doff = case
    if "vram" in (src_loc, dst_loc):
        needs_cpu_visible_vram(amdgpu_device)
    src = amdgpu_buffer(size + 64, src_loc)
    dst = amdgpu_buffer(size + 64, dst_loc)
    data = _pattern(size + 64)
    src.view(np.uint8)[:] = data
    dst.view(np.uint8)[:] = GUARD
    amdgpu_sdma_queue.copy(dst.gpu_address + doff, src.gpu_address + soff, size)
    drain(amdgpu_sdma_queue, amdgpu_signal)
    out = dst.view(np.uint8)
    assert np.array_equal(out[doff:doff + size], data[soff:soff + size])
    assert (out[:doff] == GUARD).all() and (out[doff + size:] == GUARD).all()


def test_copy_linear_raw_golden(amdgpu_sdma_queue, amdgpu_buffer, amdgpu_signal):
    """libdrm amdgpu_command_submission_copy_linear_helper (packet form): COPY_LINEAR written as
    the raw dwords of facts-sdma-aql-codeobj.md §6.1 (DW0 = 1, DW1 = bytes - 1, DW2 = 0, then
    source and destination addresses) copies 4096 bytes."""
    src = amdgpu_buffer(8192, "gtt")
    dst = amdgpu_buffer(8192, "gtt")
    data = _pattern(8192, 2)
    src.view(np.uint8)[:] = data
    dst.view(np.uint8)[:] = GUARD
    amdgpu_sdma_queue.submit(raw_sdma_copy_linear(src.gpu_address, dst.gpu_address, 4096))
    drain(amdgpu_sdma_queue, amdgpu_signal)
    assert np.array_equal(dst.view(np.uint8)[:4096], data[:4096])
    assert (dst.view(np.uint8)[4096:] == GUARD).all()


def test_copy_linear_largest_single_packet(amdgpu_device, amdgpu_sdma_queue, amdgpu_buffer,
                                           amdgpu_signal):
    """KFDSDMATest / libdrm amdgpu_command_submission_copy_linear_helper (largest packet): One
    COPY_LINEAR of 4 MiB (count 0x3FFFFF, the most a 22-bit count holds on SDMA 4.x and the
    kernel's copy_max_bytes) copies every byte and not one more (facts-sdma §1.4)."""
    needs_cpu_visible_vram(amdgpu_device)
    size = 1 << SDMA_COUNT_BITS["gfx90a"]
    src = amdgpu_buffer(size, "vram")
    dst = amdgpu_buffer(size + 4096, "vram")
    data = _pattern(size, 3)
    src.view(np.uint8)[:] = data
    dst.view(np.uint8)[size:] = GUARD
    amdgpu_sdma_queue.submit(raw_sdma_copy_linear(src.gpu_address, dst.gpu_address, size))
    drain(amdgpu_sdma_queue, amdgpu_signal)
    assert np.array_equal(dst.view(np.uint8)[:size], data)
    assert (dst.view(np.uint8)[size:] == GUARD).all()


def test_copy_linear_chunked(amdgpu_device, amdgpu_sdma_queue, amdgpu_buffer, amdgpu_signal):
    """KFDSDMATest (large copies): a copy larger than one packet's limit on SDMA 4.x (4 MiB + 12
    KiB + 3 bytes) is split into several COPY_LINEAR packets and arrives whole."""
    needs_cpu_visible_vram(amdgpu_device)
    size = (4 << 20) + 12 * 1024 + 3
    src = amdgpu_buffer(size, "gtt")
    dst = amdgpu_buffer(size + 64, "vram")
    data = _pattern(size, 4)
    src.view(np.uint8)[:] = data
    dst.view(np.uint8)[size:] = GUARD
    amdgpu_sdma_queue.copy(dst.gpu_address, src.gpu_address, size)
    drain(amdgpu_sdma_queue, amdgpu_signal)
    assert np.array_equal(dst.view(np.uint8)[:size], data)
    assert (dst.view(np.uint8)[size:] == GUARD).all()


@pytest.mark.parametrize("ndw", [1, 16])
def test_write_linear(amdgpu_sdma_queue, amdgpu_buffer, amdgpu_signal, ndw):
    """KFDQMTest.SubmitPacketSdmaQueue / libdrm amdgpu_command_submission_write_linear_helper:
    WRITE_LINEAR (op 2): 1 and 16 dwords land at the destination; the dwords around it keep their
    guard (count = dwords - 1)."""
    buf = amdgpu_buffer(4096, "gtt")
    buf.view(np.uint8)[:] = GUARD
    data = [0x10000000 + i for i in range(ndw)]
    amdgpu_sdma_queue.write(buf.gpu_address + 8, data)
    drain(amdgpu_sdma_queue, amdgpu_signal)
    words = buf.view(np.uint32)
    assert list(words[2:2 + ndw]) == data
    assert words[1] == 0xEEEEEEEE and words[2 + ndw] == 0xEEEEEEEE


@pytest.mark.parametrize("case", ["dword_4k", "dword_odd_count", "bytes_unaligned"])
def test_const_fill(amdgpu_device, amdgpu_sdma_queue, amdgpu_buffer, amdgpu_signal, case):
    """libdrm amdgpu_command_submission_const_fill_helper: CONST_FILL (op 11): a dword fill
    (FILLSIZE 2) of 4 KiB and of 13 dwords, and a byte fill (FILLSIZE 0) of 13 bytes at an odd
    address; exactly the range is filled."""
    needs_cpu_visible_vram(amdgpu_device)
    buf = amdgpu_buffer(8192, "vram")
    buf.view(np.uint8)[:] = GUARD
    if case == "dword_4k":
        off, size, value, byte = 64, 4096, 0x01020304, None
    elif case == "dword_odd_count":
        off, size, value, byte = 64, 52, 0xCAFEF00D, None
    else:
        off, size, value, byte = 65, 13, 0x5C, 0x5C
    amdgpu_sdma_queue.fill(buf.gpu_address + off, value, size)
    drain(amdgpu_sdma_queue, amdgpu_signal)
    raw = buf.view(np.uint8)
    if byte is None:
        assert (raw[off:off + size].view(np.uint32) == value).all()
    else:
        assert (raw[off:off + size] == byte).all()
    assert (raw[:off] == GUARD).all() and (raw[off + size:] == GUARD).all()


def test_fence_raw(amdgpu_device, amdgpu_sdma_queue, amdgpu_buffer):
    """KFDQMTest.SdmaEventInterrupt (FENCE part) / libdrm SDMA fences: FENCE (op 5) from the
    published layout writes exactly one 32-bit value (SDMA 6.0 producers set MTYPE 3, uncached;
    facts-sdma §1.4, §6.2)."""
    buf = amdgpu_buffer(4096, "gtt")
    buf.view(np.uint8)[:] = GUARD
    mtype = SDMA_FENCE_MTYPE[amdgpu_device.name]
    amdgpu_sdma_queue.submit(raw_sdma_fence(buf.gpu_address + 12, 0x0000FE4C, mtype))
    wait_for(lambda: u32(buf, 3), lambda v: v == 0xFE4C, what="the FENCE value")
    assert u32(buf, 2) == 0xEEEEEEEE and u32(buf, 4) == 0xEEEEEEEE


@pytest.mark.parametrize("function,block,release", [(3, 1, 2), (5, 1, 2)], ids=["eq", "ge"])
def test_poll_regmem(amdgpu_sdma_queue, amdgpu_buffer, function, block, release):
    """KFDQMTest (SDMA POLL_REGMEM waits) / libdrm amdgpu_sync_dependency_test: POLL_REGMEM (op
    8) on memory, raw per facts-sdma §6.3 (func in [30:28], MEM_POLL bit 31, retry 0xFFF =
    forever): the engine waits while (value & mask) func reference is false (== and >= against 2)
    and the FENCE after it runs once the CPU makes it true."""
    buf = amdgpu_buffer(4096, "gtt")
    words = buf.view(np.uint32)
    words[0] = block
    poll = [SDMA_POLL_REGMEM | function << 28 | 1 << 31, buf.gpu_address & 0xFFFFFFFF,
            buf.gpu_address >> 32, 2, 0xFFFFFFFF, 0xFFF << 16 | 4]
    amdgpu_sdma_queue.submit(poll, raw_sdma_fence(buf.gpu_address + 4, 0x90))
    stays(lambda: u32(buf, 1), 0, seconds=0.15, what="the FENCE behind POLL_REGMEM")
    words[0] = release
    wait_for(lambda: u32(buf, 1), lambda v: v == 0x90, what="the FENCE after the poll")


def test_timestamp(amdgpu_sdma_queue, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest (SDMA timestamps): TIMESTAMP GET_GLOBAL (op 13, sub 2) writes a 64-bit timestamp
    to an 8-byte aligned address; two taken in order are non-zero and do not go backwards
    (facts-sdma §1.4)."""
    buf = amdgpu_buffer(4096, "gtt")
    buf.view(np.uint8)[:] = GUARD
    for k in (0, 32):
        a = buf.gpu_address + k
        amdgpu_sdma_queue.submit([SDMA_TIMESTAMP | 2 << 8, a & 0xFFFFFFFF, a >> 32])
    drain(amdgpu_sdma_queue, amdgpu_signal)
    t1, t2 = u64(buf, 0), u64(buf, 4)
    assert 0 < t1 <= t2
    assert t1 != 0xEEEEEEEEEEEEEEEE
    assert u64(buf, 1) == 0xEEEEEEEEEEEEEEEE


@pytest.mark.parametrize("case", ["add64_minus_one", "add64_carry", "swap64"])
def test_atomic(amdgpu_sdma_queue, amdgpu_buffer, amdgpu_signal, case):
    """KFDQMTest.Atomics (SDMA atomics, ROCR signal decrement): ATOMIC (op 10, atomic_op in
    [31:25]): ADD64 (47) of -1 decrements a 64-bit value the way ROCR decrements an HSA signal;
    ADD64 carries into the high dword; SWAP_RTN_64 (0x27) replaces it (facts-sdma §1.4, §6.3)."""
    buf = amdgpu_buffer(4096, "gtt")
    buf.view(np.uint8)[:] = GUARD
    op, initial, src, expected = {
        "add64_minus_one": (SDMA_ATOMIC_ADD64, 5, 0xFFFFFFFFFFFFFFFF, 4),
        "add64_carry": (SDMA_ATOMIC_ADD64, 0xFFFFFFFF, 1, 0x100000000),
        "swap64": (0x27, 7, 0x0123456789ABCDEF, 0x0123456789ABCDEF),
    }[case]
    buf.view(np.uint64)[1] = initial
    a = buf.gpu_address + 8
    amdgpu_sdma_queue.submit([SDMA_ATOMIC | op << 25, a & 0xFFFFFFFF, a >> 32,
                              src & 0xFFFFFFFF, src >> 32, 0, 0, 0])
    drain(amdgpu_sdma_queue, amdgpu_signal)
    assert u64(buf, 1) == expected
    assert u64(buf, 0) == 0xEEEEEEEEEEEEEEEE and u64(buf, 2) == 0xEEEEEEEEEEEEEEEE


def test_concurrent_copies_on_every_engine(amdgpu_device, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.SdmaConcurrentCopies: one queue on each SDMA engine (by engine id on KFD 1.17,
    else as many plain SDMA queues), all copying 256 KiB at the same time; every copy is exact."""
    needs_cpu_visible_vram(amdgpu_device)
    engines = amdgpu_device.node.prop("num_sdma_engines")
    by_id = amdgpu_device.kfd.has(17)
    queues, pairs = [], []
    try:
        for e in range(engines):
            queues.append(amdgpu_device.create_queue(
                "sdma", sdma_engine=e if by_id else None, owner="concurrent copies"))
        size = 256 * 1024
        for i, q in enumerate(queues):
            src, dst = amdgpu_buffer(size, "vram"), amdgpu_buffer(size, "gtt")
            data = _pattern(size, 10 + i)
            src.view(np.uint8)[:] = data
            q.copy(dst, src, size)
            pairs.append((dst, data))
        for q in queues:
            drain(q, amdgpu_signal)
        for dst, data in pairs:
            assert np.array_equal(dst.view(np.uint8), data)
    finally:
        for q in queues:
            q.destroy()

