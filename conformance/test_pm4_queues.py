"""PM4 compute queues: CREATE / DESTROY / UPDATE_QUEUE and SET_CU_MASK, the ring's read and write
pointers and doorbell, wrap-around with NOP padding, disabling and re-enabling, many queues at
once, and the errno of every bad request (KFDQMTest)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_amdgpu.kfd.abi import IOCTLS, address_of, ffi
from pytest_amdgpu.kfd.errors import KFDError

from ._helpers import (
    EFAULT,
    EINVAL,
    ENOTSUPP,
    MMAP_TYPE_DOORBELL,
    QUEUE_TYPE_COMPUTE,
    drain,
    kfd_errno,
    queue_buffers,
    raw_write_data,
    same_ring_position,
    stays,
    u32,
    wait_for,
)

pytestmark = pytest.mark.amdgpu_area("pm4_queues")


def test_create_destroy(amdgpu_device):
    """KFDQMTest.CreateDestroyCpQueue: CREATE_QUEUE gives a queue id below 1024 and a doorbell
    offset of mmap type DOORBELL (bits 63:62 = 3) naming the GPU (bits 61:46) with an 8-byte slot
    inside the 8 KiB process slice; after DESTROY_QUEUE the id is unknown (EINVAL) (facts-kfd.md
    §2.6 outputs, §2.7, §3 M1/M5)."""
    q = amdgpu_device.create_queue("pm4", owner="create_destroy")
    try:
        qid, off = q.queue_id, q.doorbell_offset
        assert 0 <= qid < 1024
        assert off >> 62 == MMAP_TYPE_DOORBELL
        assert (off >> 46) & 0xFFFF == amdgpu_device.gpu_id & 0xFFFF
        slot = off & ((1 << 46) - 1)
        assert slot % 8 == 0 and slot < 8192
    finally:
        q.destroy()
    assert kfd_errno(amdgpu_device.kfd.destroy_queue, queue_id=qid) == EINVAL


@pytest.mark.parametrize("ndw", [1, 2, 17, 1000])
def test_nop_packets_are_consumed(amdgpu_queue, ndw):
    """KFDQMTest.SubmitNopCpQueue: NOP packets of 1 (the 0xFFFF1000 form), 2, 17 and 1000 dwords
    are fetched; the read pointer the CP writes back reaches the write pointer, both counting
    dwords."""
    before = amdgpu_queue.write_pointer
    amdgpu_queue.nop(ndw)
    assert amdgpu_queue.write_pointer == before + ndw
    wait_for(lambda: amdgpu_queue.raw_read_pointer, lambda r: r == before + ndw,
             what="the CP read pointer")


def test_write_data_packet(amdgpu_queue, amdgpu_buffer):
    """KFDQMTest.SubmitPacketCpQueue: a WRITE_DATA packet written raw into the ring (encoded from
    the published layout) lands in memory."""
    buf = amdgpu_buffer(4096, "gtt")
    amdgpu_queue.submit(raw_write_data(buf.gpu_address + 8, [0x12345678, 0x9ABCDEF0]))
    wait_for(lambda: list(buf.view(np.uint32)[2:4]), lambda v: v == [0x12345678, 0x9ABCDEF0],
             what="the WRITE_DATA destination")
    assert not buf.view(np.uint32)[:2].any() and not buf.view(np.uint32)[4:].any()


def test_read_pointer_counts_fetched_dwords(amdgpu_queue, amdgpu_buffer):
    """KFDQMTest.CpuWriteCoherence: the read pointer the CP writes back counts the dwords
    fetched: a 5-dword WRITE_DATA, a 2-dword NOP and another WRITE_DATA move it by exactly 12
    (a fresh queue: far from the ring's end, where kfdtest's 32-bit read pointer wraps)."""
    buf = amdgpu_buffer(4096, "gtt")
    start = amdgpu_queue.write_pointer
    amdgpu_queue.submit(raw_write_data(buf.gpu_address, [1]), [0xC0001000, 0],
                        raw_write_data(buf.gpu_address + 4, [2]))
    wait_for(lambda: u32(buf, 1), lambda v: v == 2, what="the second WRITE_DATA")
    wait_for(lambda: amdgpu_queue.raw_read_pointer, lambda r: r == start + 12,
             what="the CP read pointer")


@pytest.mark.parametrize("amdgpu_queue", [{"ring_size": 1024}, {"ring_size": 4096}],
                         ids=["ring1k", "ring4k"], indirect=True)
def test_wraparound(amdgpu_queue, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.CpQueueWraparound: several times the ring's size of WRITE_DATA packets; packets
    never straddle the ring end (the tail is NOP-padded), every write lands in order, and the
    read pointer the CP writes back reaches the 64-bit write pointer modulo the ring size
    (kfdtest PM4Queue::Rptr: the CP's read pointer is 32-bit dwords and wraps at the queue size
    even where the write pointer is 64-bit; a 64-bit count is accepted too)."""
    ring_dw = amdgpu_queue.ring_size // 4
    buf = amdgpu_buffer(4096, "gtt")
    count = 4 * ring_dw // 5 + 7
    for i in range(count):
        amdgpu_queue.write_data(buf.gpu_address + 4 * (i % 64), [i])
    drain(amdgpu_queue, amdgpu_signal)
    expected = np.zeros(64, np.uint32)
    for i in range(count):
        expected[i % 64] = i
    assert np.array_equal(buf.view(np.uint32)[:64], expected)
    wptr = amdgpu_queue.write_pointer
    assert wptr > 3 * ring_dw
    wait_for(lambda: amdgpu_queue.raw_read_pointer,
             lambda r: same_ring_position(r, wptr, ring_dw), what="the CP read pointer")


@pytest.mark.parametrize("how", ["null_ring", "zero_percentage"])
def test_disable_and_reenable(amdgpu_queue, amdgpu_buffer, how):
    """KFDQMTest.DisableCpQueueByUpdateWithNullAddress /
    DisableCpQueueByUpdateWithZeroPercentage: after UPDATE_QUEUE with a null ring or 0 % the
    queue is inactive and a submitted packet does not run; UPDATE_QUEUE back to the ring and 100
    % runs it (facts-kfd.md §2.7)."""
    buf = amdgpu_buffer(4096, "gtt")
    if how == "null_ring":
        amdgpu_queue.update(ring=0)
    else:
        amdgpu_queue.update(percentage=0)
    amdgpu_queue.write_data(buf.gpu_address, [0xD15AB1ED])
    stays(lambda: u32(buf), 0, seconds=0.3, what="memory behind a disabled queue")
    amdgpu_queue.enable()
    wait_for(lambda: u32(buf), lambda v: v == 0xD15AB1ED, what="the re-enabled queue's write")


@pytest.mark.parametrize("field,value,errno", [
    ("percentage", 101, EINVAL), ("priority", 16, EINVAL), ("queue_type", 5, ENOTSUPP),
    ("ring_size", 3000, EINVAL)])
def test_create_queue_bad_arguments(amdgpu_device, field, value, errno):
    """KFDQMTest.UserQueueBufValidation (argument checks): percentage > 100 and priority > 15 are
    EINVAL, a queue type outside 0..4 is ENOTSUPP (524), a ring size that is not a power of two
    is EINVAL — all before any buffer is looked at (facts-kfd.md §2.6 rows 1, 2, 4, 8)."""
    kw = {"gpu_id": amdgpu_device.gpu_id, "queue_type": QUEUE_TYPE_COMPUTE, "ring_base": 0,
          "ring_size": 4096, "write_pointer": 0, "read_pointer": 0}
    kw[field] = value
    assert kfd_errno(amdgpu_device.kfd.create_queue, **kw) == errno


def _needs_buffer_validation(device) -> None:
    if not device.kfd.has(17):
        pytest.skip("CREATE_QUEUE validates its buffers since the 2024 kernels ('validate user "
                    f"queue buffers'); this KFD is {device.kfd.version}")


VALIDATION = ["valid", "null_ring", "ring_bo_too_small", "eop_size", "ctl_stack_size",
              "ctx_save_size", "unmapped_wptr"]


@pytest.mark.parametrize("case", VALIDATION)
def test_create_queue_buffer_validation(amdgpu_device, amdgpu_buffer, case):
    """KFDQMTest.UserQueueBufValidation: CREATE_QUEUE accepts a compute queue only when the ring,
    read / write pointers, EOP buffer and context-save area are GPU-mapped buffers of exactly the
    sizes the driver computes for the node, and refuses a null ring, a ring buffer smaller than
    ring_size, a wrong EOP size, control-stack size or save-area size, or an unmapped write
    pointer with EINVAL (facts-kfd.md §2.6 rows 13-14, §5)."""
    _needs_buffer_validation(amdgpu_device)
    kw = queue_buffers(amdgpu_device, amdgpu_buffer, ring_size=8192,
                       ring_bo_size=4096 if case == "ring_bo_too_small" else None)
    kw.pop("buffers")
    if case == "null_ring":
        kw["ring_base"] = 0
    elif case == "eop_size":
        kw["eop_buffer_size"] *= 2
    elif case == "ctl_stack_size":
        kw["ctl_stack_size"] += 4096
    elif case == "ctx_save_size":
        kw["ctx_save_restore_size"] += 4096
    elif case == "unmapped_wptr":
        stray = amdgpu_buffer(4096, "gtt")
        kw["write_pointer"] = stray.gpu_address
        stray.unmap_from(amdgpu_device)
    try:
        info = amdgpu_device.kfd.create_queue(queue_type=QUEUE_TYPE_COMPUTE, **kw)
    except KFDError as exc:
        assert case != "valid", f"a valid CREATE_QUEUE failed: {exc}"
        assert exc.errno == EINVAL
        return
    amdgpu_device.kfd.destroy_queue(queue_id=info.queue_id)
    assert case == "valid", f"CREATE_QUEUE accepted the {case} case"


@pytest.mark.parametrize("case,errno", [("unknown_queue", EFAULT), ("percentage", EINVAL),
                                        ("priority", EINVAL), ("ring_size", EINVAL)])
def test_update_queue_errors(amdgpu_device, amdgpu_queue, case, errno):
    """KFDQMTest.DisableCpQueueByUpdateWithNullAddress (UPDATE_QUEUE negatives): UPDATE_QUEUE: an
    unknown queue id is EFAULT (not EINVAL), percentage > 100 and priority > 15 are EINVAL, a
    ring size that is not a power of two is EINVAL (facts-kfd.md §2.7)."""
    q = amdgpu_queue
    kw = {"queue_id": q.queue_id, "ring_base": q.ring.gpu_address, "ring_size": q.ring_size,
          "percentage": 100, "priority": 7}
    if case == "unknown_queue":
        kw["queue_id"] = 1023 if q.queue_id != 1023 else 1022
    elif case == "percentage":
        kw["percentage"] = 101
    elif case == "priority":
        kw["priority"] = 16
    else:
        kw["ring_size"] = q.ring_size - 4
    assert kfd_errno(amdgpu_device.kfd.update_queue, **kw) == errno


def test_priorities_run(amdgpu_device, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.QueuePriorityOnDifferentPipe / OnSamePipe: queues at priority 0 and 15 (the ends
    of the valid range) are created and both run their work."""
    buf = amdgpu_buffer(4096, "gtt")
    queues = [amdgpu_device.create_queue("pm4", priority=p, owner="priorities")
              for p in (0, 15)]
    try:
        for i, q in enumerate(queues):
            q.write_data(buf.gpu_address + 4 * i, [0x100 + i])
            drain(q, amdgpu_signal)
        assert list(buf.view(np.uint32)[:2]) == [0x100, 0x101]
    finally:
        for q in queues:
            q.destroy()


def _raw_cu_mask(device, queue_id: int, bits: int, words: list[int]) -> int:
    arr = ffi.new("uint32_t[]", max(len(words), 1))
    for i, w in enumerate(words):
        arr[i] = w
    arg = ffi.new("struct kfd_ioctl_set_cu_mask_args *")
    arg.queue_id = queue_id
    arg.num_cu_mask = bits
    arg.cu_mask_ptr = address_of(arr)
    return device.port.ioctl(device.kfd.fd, IOCTLS["SET_CU_MASK"].request, address_of(arg))


@pytest.mark.parametrize("case,errno", [("all_cus", 0), ("not_multiple_of_32", EINVAL),
                                        ("empty", EINVAL), ("unknown_queue", EFAULT)])
def test_set_cu_mask(amdgpu_device, amdgpu_queue, amdgpu_buffer, case, errno):
    """KFDQMTest.BasicCuMaskingEven / ExtendedCuMasking (argument rules): a mask covering every
    CU is accepted and the queue still runs; a bit count that is not a multiple of 32 or zero is
    EINVAL; an unknown queue is EFAULT (facts-kfd.md §2.7)."""
    words = [0xFFFFFFFF] * max((amdgpu_device.cu_count + 31) // 32, 1)
    qid, bits = amdgpu_queue.queue_id, 32 * len(words)
    if case == "not_multiple_of_32":
        bits = 16
    elif case == "empty":
        bits = 0
    elif case == "unknown_queue":
        qid = 1023 if qid != 1023 else 1022
    assert _raw_cu_mask(amdgpu_device, qid, bits, words) == errno
    if case == "all_cus":
        buf = amdgpu_buffer(4096, "gtt")
        amdgpu_queue.write_data(buf.gpu_address, [0xC0FFEE])
        wait_for(lambda: u32(buf), lambda v: v == 0xC0FFEE, what="work after SET_CU_MASK")


@pytest.mark.amdgpu_requires("cu_mask_pairs")
def test_cu_mask_must_cover_whole_wgps(amdgpu_device, amdgpu_queue):
    """KFDQMTest.BasicCuMaskingEven (gfx10-gfx11): a CU mask that enables one CU of a WGP pair is
    EINVAL; whole pairs are accepted (facts-kfd.md §2.7, GC 10.0 <= ver < 12.1)."""
    n = max((amdgpu_device.cu_count + 31) // 32, 1)
    assert _raw_cu_mask(amdgpu_device, amdgpu_queue.queue_id, 32 * n, [0x1] + [0] * (n - 1)) \
        == EINVAL
    assert _raw_cu_mask(amdgpu_device, amdgpu_queue.queue_id, 32 * n, [0x3] + [0] * (n - 1)) \
        == 0


def test_oversubscribed_queues_all_run(amdgpu_device, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.OverSubscribeCpQueues / AllCpQueues: more PM4 queues than the node's hardware
    queue slots (num_cp_queues + 2) are all created, with distinct ids and doorbells, and every
    one of them runs its work."""
    n = amdgpu_device.node.prop("num_cp_queues") + 2
    buf = amdgpu_buffer(4096, "gtt")
    queues = []
    try:
        for _ in range(n):
            queues.append(amdgpu_device.create_queue("pm4", owner="oversubscribe"))
        assert len({q.queue_id for q in queues}) == n
        assert len({q.doorbell_offset for q in queues}) == n
        for i, q in enumerate(queues):
            q.write_data(buf.gpu_address + 4 * i, [i + 1])
        wait_for(lambda: buf.view(np.uint32)[:n].copy(),
                 lambda v: np.array_equal(v, np.arange(1, n + 1)), what="the queues' writes")
    finally:
        for q in queues:
            q.destroy()


def test_lowest_free_queue_id_is_reused(amdgpu_device):
    """KFDQMTest.CreateDestroyCpQueue (queue ids): CREATE_QUEUE hands out the lowest free queue
    id of the process (facts-kfd.md §2.6 outputs): after destroying a queue, the next one gets
    its id back."""
    a = amdgpu_device.create_queue("pm4", owner="ids")
    b = amdgpu_device.create_queue("pm4", owner="ids")
    c = None
    try:
        freed = a.queue_id
        a.destroy()
        c = amdgpu_device.create_queue("pm4", owner="ids")
        assert c.queue_id == freed
        assert c.queue_id != b.queue_id
    finally:
        for q in (a, b, c):
            if q is not None:
                q.destroy()
