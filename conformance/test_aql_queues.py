"""AQL queues: the amd_queue_t read / write dispatch ids, INVALID slot headers, publishing a
packet (body, then header, then doorbell), wrap-around of the packet ring, disabling through
UPDATE_QUEUE, many queues at once, and destroying a queue that waits (KFDQMTest.CreateAqlCpQueue,
rocrtst queue tests)."""

from __future__ import annotations

import numpy as np
import pytest

from ._helpers import (
    AMD_QUEUE_READ_DISPATCH_ID,
    AMD_QUEUE_WRITE_DISPATCH_ID,
    AQL_TYPE_BARRIER_AND,
    AQL_TYPE_INVALID,
    raw_barrier_packet,
    stays,
    wait_for,
)

pytestmark = pytest.mark.amdgpu_area("aql_queues")


def _read_index(q) -> int:
    return int(q.amd_queue.view(np.uint64)[AMD_QUEUE_READ_DISPATCH_ID // 8])


def _headers(q) -> np.ndarray:
    return q.ring.view(np.uint16).reshape(q.ring_size // 64, 32)[:, 0] & 0xFF


def test_create_and_run_aql_queue(amdgpu_aql_queue, amdgpu_signal):
    """KFDQMTest.CreateAqlCpQueue: a new AQL queue has read_dispatch_id = write_dispatch_id = 0
    and every slot INVALID; after three barrier-AND packets complete, read_dispatch_id
    (amd_queue_t + 128) is 3, the completion signal went 3 -> 0 (one decrement per packet) and
    the consumed slots are INVALID again (hsa.h, facts-sdma-aql-codeobj.md §2.6)."""
    q = amdgpu_aql_queue
    assert _read_index(q) == 0
    assert int(q.amd_queue.view(np.uint64)[AMD_QUEUE_WRITE_DISPATCH_ID // 8]) == 0
    assert (_headers(q) == AQL_TYPE_INVALID).all()
    sig = amdgpu_signal(3)
    for _ in range(3):
        q.barrier_and((), completion_signal=sig)
    sig.wait(0, cond="==", timeout=10)
    wait_for(lambda: _read_index(q), lambda r: r == 3, what="read_dispatch_id")
    assert (_headers(q) == AQL_TYPE_INVALID).all()


@pytest.mark.parametrize("amdgpu_aql_queue", [{"ring_size": 1024}, {"ring_size": 4096}],
                         ids=["16slots", "64slots"], indirect=True)
def test_aql_wraparound(amdgpu_aql_queue, amdgpu_signal):
    """KFDQMTest.CpQueueWraparound (AQL): more than twice the ring's slots of packets run; the
    dispatch ids keep counting past the ring size (they never wrap) and every packet decrements
    the shared completion signal once."""
    q = amdgpu_aql_queue
    n = 2 * q.ring_size // 64 + 7
    sig = amdgpu_signal(n)
    for _ in range(n):
        q.barrier_and((), completion_signal=sig)
    sig.wait(0, cond="==", timeout=20)
    wait_for(lambda: _read_index(q), lambda r: r == n, what="read_dispatch_id")
    assert sig.value == 0


def test_packet_runs_only_once_its_header_is_valid(amdgpu_aql_queue, amdgpu_signal):
    """rocrtst / hsa.h publication rule: the packet processor does not process a slot whose
    header type is INVALID, even after write_dispatch_id moved and the doorbell rang; storing the
    header (then ringing the doorbell with the packet's index) makes it run."""
    q = amdgpu_aql_queue
    sig = amdgpu_signal(1)
    index = q.write_pointer
    packet = np.frombuffer(raw_barrier_packet(AQL_TYPE_BARRIER_AND, [], sig.handle), np.uint32)
    slot = q.ring.view(np.uint32).reshape(q.ring_size // 64, 16)[index % (q.ring_size // 64)]
    slot[1:] = packet[1:]
    q.amd_queue.view(np.uint64)[AMD_QUEUE_WRITE_DISPATCH_ID // 8] = index + 1
    q.process.port.doorbell(q.doorbell_address, index)
    stays(lambda: sig.value, 1, seconds=0.3, what="the signal of an unpublished packet")
    assert _read_index(q) == index
    slot[0] = packet[0]
    q.process.port.doorbell(q.doorbell_address, index)
    sig.wait(0, cond="==", timeout=10)
    wait_for(lambda: _read_index(q), lambda r: r == index + 1, what="read_dispatch_id")


@pytest.mark.parametrize("how", ["null_ring", "zero_percentage"])
def test_aql_disable_and_reenable(amdgpu_aql_queue, amdgpu_signal, how):
    """KFDQMTest.DisableCpQueueByUpdateWithNullAddress / ...ZeroPercentage on an AQL queue: an
    inactive queue leaves a published packet alone until it is updated back."""
    q = amdgpu_aql_queue
    sig = amdgpu_signal(1)
    if how == "null_ring":
        q.update(ring=0)
    else:
        q.update(percentage=0)
    q.barrier_and((), completion_signal=sig)
    stays(lambda: sig.value, 1, seconds=0.3, what="the signal behind a disabled AQL queue")
    q.enable()
    sig.wait(0, cond="==", timeout=10)


def test_many_aql_queues(amdgpu_device, amdgpu_signal):
    """KFDQMTest.MultipleCpQueuesStressDispatch (queue side): eight AQL queues at once, each with
    its own doorbell, all process their packets."""
    queues = []
    try:
        for _ in range(8):
            queues.append(amdgpu_device.create_queue("aql", owner="many aql"))
        assert len({q.doorbell_offset for q in queues}) == 8
        sigs = [amdgpu_signal(2) for _ in queues]
        for q, s in zip(queues, sigs):
            q.barrier_and((), completion_signal=s)
            q.barrier_and((), completion_signal=s)
        for s in sigs:
            s.wait(0, cond="==", timeout=10)
    finally:
        for q in queues:
            q.destroy()


def test_destroy_queue_blocked_on_a_barrier(amdgpu_device, amdgpu_signal):
    """KFDQMTest (destroy a busy queue): a queue whose barrier-AND waits on a signal that never
    reaches 0 is destroyed without error; the packet never completed."""
    blocker = amdgpu_signal(1)
    done = amdgpu_signal(1)
    q = amdgpu_device.create_queue("aql", owner="blocked")
    try:
        q.barrier_and((blocker,), completion_signal=done)
        stays(lambda: done.value, 1, seconds=0.2, what="a blocked barrier's signal")
    finally:
        q.destroy()
    assert done.value == 1
    assert blocker.value == 1
