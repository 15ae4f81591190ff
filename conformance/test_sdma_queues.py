"""SDMA queues: create / destroy, byte-counted 64-bit read and write pointers, wrap-around,
disabling through UPDATE_QUEUE, queues on a chosen engine (KFD 1.17) and the engine's queue
slots running out (KFDQMTest, KFDSDMATest)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_amdgpu.kfd.errors import KFDError

from ._helpers import (
    EINVAL,
    ENOMEM,
    MMAP_TYPE_DOORBELL,
    drain,
    kfd_errno,
    queue_buffers,
    raw_sdma_fence,
    raw_sdma_write,
    stays,
    u32,
    wait_for,
)

pytestmark = pytest.mark.amdgpu_area("sdma_queues")


def test_create_destroy_sdma_queue(amdgpu_device):
    """KFDQMTest.CreateDestroySdmaQueue: CREATE_QUEUE of type SDMA gives a DOORBELL-type doorbell
    offset naming the GPU; DESTROY_QUEUE removes it (a second destroy is EINVAL)."""
    q = amdgpu_device.create_queue("sdma", owner="sdma create")
    try:
        qid, off = q.queue_id, q.doorbell_offset
        assert off >> 62 == MMAP_TYPE_DOORBELL
        assert (off >> 46) & 0xFFFF == amdgpu_device.gpu_id & 0xFFFF
        assert (off & ((1 << 46) - 1)) < 8192
    finally:
        q.destroy()
    assert kfd_errno(amdgpu_device.kfd.destroy_queue, queue_id=qid) == EINVAL


@pytest.mark.parametrize("ndw", [1, 3, 16])
def test_sdma_nop_is_consumed(amdgpu_sdma_queue, ndw):
    """KFDQMTest.SubmitNopSdmaQueue: an SDMA NOP of 1, 3 and 16 dwords (COUNT [29:16] = extra
    dwords) is consumed; the engine's read pointer counts bytes up to the write pointer."""
    before = amdgpu_sdma_queue.write_pointer
    amdgpu_sdma_queue.submit([(ndw - 1) << 16] + [0] * (ndw - 1))
    assert amdgpu_sdma_queue.write_pointer == before + 4 * ndw
    wait_for(lambda: amdgpu_sdma_queue.raw_read_pointer, lambda r: r == before + 4 * ndw,
             what="the SDMA read pointer")


def test_write_linear_packet(amdgpu_sdma_queue, amdgpu_buffer):
    """KFDQMTest.SubmitPacketSdmaQueue: a WRITE_LINEAR packet built from the published layout
    (count = dwords - 1) writes its dwords and nothing else."""
    buf = amdgpu_buffer(4096, "gtt")
    amdgpu_sdma_queue.submit(raw_sdma_write(buf.gpu_address + 16, [5, 6, 7]))
    wait_for(lambda: list(buf.view(np.uint32)[4:7]), lambda v: v == [5, 6, 7],
             what="the WRITE_LINEAR destination")
    words = buf.view(np.uint32)
    assert not words[:4].any() and not words[7:].any()


def test_read_pointer_counts_bytes(amdgpu_sdma_queue, amdgpu_buffer):
    """KFDQMTest.SubmitNopSdmaQueue (pointer units): SDMA read and write pointers are 64-bit byte
    offsets (facts-sdma-aql-codeobj.md §1.5): a 16-byte FENCE and a 20-byte WRITE_LINEAR move the
    read pointer by 36."""
    buf = amdgpu_buffer(4096, "gtt")
    start = amdgpu_sdma_queue.write_pointer
    amdgpu_sdma_queue.submit(raw_sdma_fence(buf.gpu_address, 1),
                             raw_sdma_write(buf.gpu_address + 4, [2]))
    assert amdgpu_sdma_queue.write_pointer == start + 36
    wait_for(lambda: u32(buf, 1), lambda v: v == 2, what="the WRITE_LINEAR")
    wait_for(lambda: amdgpu_sdma_queue.raw_read_pointer, lambda r: r == start + 36,
             what="the SDMA read pointer")


@pytest.mark.parametrize("amdgpu_sdma_queue", [{"ring_size": 1024}, {"ring_size": 4096}],
                         ids=["ring1k", "ring4k"], indirect=True)
def test_sdma_wraparound(amdgpu_sdma_queue, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.SdmaQueueWraparound: four rings' worth of FENCE packets run in order; the 64-bit
    byte read pointer the engine writes back counts past the ring size up to the write pointer
    (kfdtest SDMAQueue::RptrWhenConsumed: from Vega10 on, read and write pointer are the same
    64-bit byte value once everything is consumed)."""
    q = amdgpu_sdma_queue
    buf = amdgpu_buffer(4096, "gtt")
    count = q.ring_size // 4 + 5
    for i in range(count):
        q.fence(buf.gpu_address + 4 * (i % 64), i)
    drain(q, amdgpu_signal)
    expected = np.zeros(64, np.uint32)
    for i in range(count):
        expected[i % 64] = i
    assert np.array_equal(buf.view(np.uint32)[:64], expected)
    assert q.write_pointer > 3 * q.ring_size
    wait_for(lambda: q.raw_read_pointer, lambda r: r == q.write_pointer,
             what="the SDMA read pointer")


@pytest.mark.parametrize("how", ["null_ring", "zero_percentage"])
def test_sdma_disable_and_reenable(amdgpu_sdma_queue, amdgpu_buffer, how):
    """KFDQMTest.DisableSdmaQueueByUpdateWithNullAddress / ...WithZeroPercentage: an SDMA queue
    made inactive by UPDATE_QUEUE does not run a submitted FENCE until it is updated back."""
    buf = amdgpu_buffer(4096, "gtt")
    if how == "null_ring":
        amdgpu_sdma_queue.update(ring=0)
    else:
        amdgpu_sdma_queue.update(percentage=0)
    amdgpu_sdma_queue.fence(buf.gpu_address, 0x5D3A)
    stays(lambda: u32(buf), 0, seconds=0.3, what="memory behind a disabled SDMA queue")
    amdgpu_sdma_queue.enable()
    wait_for(lambda: u32(buf), lambda v: v == 0x5D3A, what="the re-enabled SDMA queue's FENCE")


def test_sdma_queue_slots_run_out(amdgpu_device, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.AllSdmaQueues: SDMA queues can be created up to the engines' queue slots
    (num_sdma_engines x num_sdma_queues_per_engine), each one runs its FENCE, one more is ENOMEM
    (no free SDMA queue, facts-kfd.md §2.6 row 19), and a slot freed by DESTROY is usable again."""
    node = amdgpu_device.node
    total = node.prop("num_sdma_engines") * node.prop("num_sdma_queues_per_engine")
    buf = amdgpu_buffer(4096, "gtt")
    queues = []
    failure = None
    try:
        for _ in range(total + 1):
            try:
                queues.append(amdgpu_device.create_queue("sdma", owner="all sdma"))
            except KFDError as exc:
                failure = exc
                break
        assert failure is not None, f"{total + 1} SDMA queues were created; slots: {total}"
        assert failure.errno == ENOMEM
        assert 1 <= len(queues) <= total
        for i, q in enumerate(queues):
            q.fence(buf.gpu_address + 4 * i, i + 1)
        wait_for(lambda: buf.view(np.uint32)[:len(queues)].copy(),
                 lambda v: np.array_equal(v, np.arange(1, len(queues) + 1)),
                 what="every SDMA queue's FENCE")
        queues.pop().destroy()
        queues.append(amdgpu_device.create_queue("sdma", owner="all sdma"))
        drain(queues[-1], amdgpu_signal)
    finally:
        for q in queues:
            q.destroy()


def _needs_engine_ids(device) -> None:
    if not device.kfd.has(17):
        pytest.skip(f"SDMA queues by engine id need KFD 1.17; this KFD is {device.kfd.version}")


@pytest.mark.parametrize("engine", [0, 1])
def test_sdma_queue_on_engine(amdgpu_device, amdgpu_buffer, amdgpu_signal, engine):
    """KFDSDMATest (engine selection, KFD 1.17 SDMA_BY_ENG_ID): a queue created on PCIe SDMA
    engine 0 and on engine 1 runs its work."""
    _needs_engine_ids(amdgpu_device)
    if engine >= amdgpu_device.node.prop("num_sdma_engines"):
        pytest.skip(f"{amdgpu_device.name} has {amdgpu_device.node.prop('num_sdma_engines')} "
                    "PCIe SDMA engine(s)")
    buf = amdgpu_buffer(4096, "gtt")
    q = amdgpu_device.create_queue("sdma", sdma_engine=engine, owner="sdma engine")
    try:
        q.fence(buf.gpu_address, 0xE0 + engine)
        drain(q, amdgpu_signal)
        assert u32(buf) == 0xE0 + engine
    finally:
        q.destroy()


def test_sdma_engine_id_out_of_range(amdgpu_device, amdgpu_buffer):
    """KFDSDMATest (engine selection negatives): CREATE_QUEUE of type SDMA_BY_ENG_ID with an
    engine id past the PCIe and XGMI engines is EINVAL (facts-kfd.md §2.6 row 11)."""
    _needs_engine_ids(amdgpu_device)
    node = amdgpu_device.node
    bad = node.prop("num_sdma_engines") + node.prop("num_sdma_xgmi_engines")
    kw = queue_buffers(amdgpu_device, amdgpu_buffer, compute=False)
    kw.pop("buffers")
    code = kfd_errno(amdgpu_device.kfd.create_queue, queue_type=4, sdma_engine_id=bad, **kw)
    assert code == EINVAL


@pytest.mark.amdgpu_requires("sdma_xgmi")
def test_xgmi_sdma_queue_driven_raw(amdgpu_device, amdgpu_buffer):
    """KFDSDMATest (XGMI engines) / KFDQMTest.SubmitPacketSdmaQueue at the raw interface: a queue
    of type SDMA_XGMI (3) made with CREATE_QUEUE and driven by hand — a FENCE written at ring
    offset 0, the 64-bit byte write pointer stored, the doorbell written with the same byte value
    — runs, and the engine writes its byte read pointer back (facts-sdma §1.5)."""
    kw = queue_buffers(amdgpu_device, amdgpu_buffer, compute=False)
    bufs = kw.pop("buffers")
    out = amdgpu_buffer(4096, "gtt")
    info = amdgpu_device.kfd.create_queue(queue_type=3, **kw)
    try:
        packet = np.array(raw_sdma_fence(out.gpu_address, 0x7E57), np.uint32)
        bufs["ring"].view(np.uint32)[:4] = packet
        bufs["wptr"].view(np.uint64)[0] = 16
        doorbell = amdgpu_device.process.doorbell_address(amdgpu_device.gpu_id,
                                                          info.doorbell_offset)
        amdgpu_device.port.doorbell(doorbell, 16)
        wait_for(lambda: u32(out), lambda v: v == 0x7E57, what="the raw queue's FENCE")
        wait_for(lambda: int(bufs["rptr"].view(np.uint64)[0]), lambda r: r == 16,
                 what="the raw queue's read pointer")
    finally:
        amdgpu_device.kfd.destroy_queue(queue_id=info.queue_id)
