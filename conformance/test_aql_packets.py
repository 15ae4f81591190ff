"""AQL packets: the barrier bit, barrier-AND and barrier-OR with dependency signals (null handles
included), completion-signal decrement (64-bit, below zero), AMD BARRIER_VALUE and PM4-IB vendor
packets, and the malformed packets rocrtst sends — invalid dimensions, too much group memory, a
null kernel object, an undefined packet type, an oversized work-group — which stop their queue
with the CP's error code, must not complete nor let later packets run, and must stay inside
their process (rocrtst aql_barrier_bit, aql_barrier_and / _or, queue_validation negative tests;
hsa.h packet rules)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from ._helpers import (
    AQL_TYPE_BARRIER_AND,
    AQL_TYPE_BARRIER_OR,
    aql_header,
    pm4_header,
    raw_barrier_packet,
    raw_dispatch_packet,
    raw_indirect_buffer,
    raw_write_data,
    stays,
    u32,
    wait_for,
)

pytestmark = pytest.mark.amdgpu_area("aql_packets")

TIMEOUT = 30.0


def test_barrier_bit_orders_dispatches(amdgpu_aql_queue, amdgpu_kernel, amdgpu_buffer):
    """rocrtst aql_barrier_bit: a dispatch with the barrier bit does not start before the earlier
    dispatch (here a kernel waiting for a CPU flag) has completed; once the flag is written both
    complete."""
    wait = amdgpu_kernel("wait_flag")
    write = amdgpu_kernel("write_value")
    flag = amdgpu_buffer(4096, "gtt")
    out = amdgpu_buffer(4096, "gtt")
    first = amdgpu_aql_queue.dispatch(wait, 64, 64, [flag, out.gpu_address + 64], barrier=False)
    second = amdgpu_aql_queue.dispatch(write, 1, 1, [out, 0xB1], barrier=True)
    stays(lambda: (u32(out), second.done), (0, False), seconds=0.2,
          what="a barrier-bit dispatch behind a running one")
    flag.view(np.uint32)[0] = 1
    first.wait(TIMEOUT)
    second.wait(TIMEOUT)
    assert (u32(out), u32(out, 16)) == (0xB1, 1)


@pytest.mark.parametrize("ndeps", [2, 5])
def test_barrier_and(amdgpu_aql_queue, amdgpu_signal, ndeps):
    """rocrtst aql_barrier_and: a BARRIER_AND with 2 and with all 5 dependency signals completes
    (decrementing its completion signal) only when every dependency is 0 (hsa.h, facts-sdma-aql-
    codeobj.md §2.3)."""
    deps = [amdgpu_signal(1) for _ in range(ndeps)]
    done = amdgpu_signal(1)
    amdgpu_aql_queue.barrier_and(deps, completion_signal=done)
    for d in deps[:-1]:
        d.set(0)
        stays(lambda: done.value, 1, seconds=0.05, what="BARRIER_AND with a dependency left")
    deps[-1].set(0)
    done.wait(0, cond="==", timeout=TIMEOUT)


def test_barrier_and_null_handles_are_satisfied(amdgpu_aql_queue, amdgpu_signal):
    """rocrtst aql_barrier_and (null dependency handles): BARRIER_AND: a null dependency handle
    counts as satisfied, so a packet with handles [0, 0, s, 0, 0] completes as soon as s is 0
    (hsa.h)."""
    s = amdgpu_signal(0)
    done = amdgpu_signal(1)
    amdgpu_aql_queue.submit(raw_barrier_packet(AQL_TYPE_BARRIER_AND, [0, 0, s.handle, 0, 0],
                                               done.handle))
    done.wait(0, cond="==", timeout=TIMEOUT)


def test_barrier_or(amdgpu_aql_queue, amdgpu_signal):
    """rocrtst aql_barrier_or: a BARRIER_OR completes as soon as any dependency is 0; while they
    are 1 and -1 (non-zero values, negative too) it waits; null handles never satisfy it."""
    a, b = amdgpu_signal(1), amdgpu_signal(-1)
    done = amdgpu_signal(1)
    amdgpu_aql_queue.submit(raw_barrier_packet(AQL_TYPE_BARRIER_OR, [0, a.handle, 0, b.handle],
                                               done.handle))
    stays(lambda: done.value, 1, seconds=0.15, what="BARRIER_OR with no dependency at 0")
    b.set(0)
    done.wait(0, cond="==", timeout=TIMEOUT)


@pytest.mark.parametrize("initial", [1, 0, 1 << 40], ids=["one", "zero", "above_32_bits"])
def test_completion_signal_decrement(amdgpu_aql_queue, amdgpu_signal, initial):
    """rocrtst signal tests (AQL completion): AQL completion: the packet processor subtracts
    exactly 1 from the 64-bit signed signal value — 1 -> 0, 0 -> -1, 2**40 -> 2**40 - 1 (hsa.h,
    facts-sdma- aql-codeobj.md §2.6)."""
    done = amdgpu_signal(initial)
    marker = amdgpu_signal(1)
    amdgpu_aql_queue.barrier_and((), completion_signal=done)
    amdgpu_aql_queue.barrier_and((), completion_signal=marker)
    marker.wait(0, cond="==", timeout=TIMEOUT)
    assert done.value == initial - 1


def test_dispatch_completion_decrements_user_signal(amdgpu_aql_queue, amdgpu_kernel,
                                                    amdgpu_signal):
    """rocrtst aql_barrier_bit / KFDQMTest.SimpleWriteDispatch (completion): A kernel dispatch
    packet's completion signal is decremented once when the kernel has finished: 5 -> 4 for one
    dispatch, 4 -> 2 after two more."""
    k = amdgpu_kernel("empty")
    sig = amdgpu_signal(5)
    amdgpu_aql_queue.dispatch(k, 128, 64, signal=sig).wait(TIMEOUT)
    assert sig.value == 4
    amdgpu_aql_queue.dispatch(k, 128, 64, signal=sig)
    amdgpu_aql_queue.dispatch(k, 128, 64, signal=sig).wait(TIMEOUT)
    wait_for(lambda: sig.value, lambda v: v == 2, what="the completion signal")


@pytest.mark.parametrize("cond,block,release", [("==", 3, 7), ("!=", 7, 8), ("<", 7, 6),
                                                (">=", 6, 7)], ids=["eq", "ne", "lt", "ge"])
def test_barrier_value(amdgpu_aql_queue, amdgpu_signal, cond, block, release):
    """rocrtst signal tests (hsa_amd BARRIER_VALUE, as ROCR's hsa_amd_signal_wait_*): AMD
    BARRIER_VALUE vendor packet (format 2): waits until (signal & mask) cond value with the
    hsa_signal_condition_t conditions EQ, NE, LT, GTE against 7 (hsa_ext_amd.h,
    facts-sdma-aql-codeobj.md §2.5)."""
    s = amdgpu_signal(block)
    done = amdgpu_signal(1)
    amdgpu_aql_queue.barrier_value(s, 7, cond=cond, completion_signal=done)
    stays(lambda: done.value, 1, seconds=0.1, what=f"BARRIER_VALUE {block} {cond} 7")
    s.set(release)
    done.wait(0, cond="==", timeout=TIMEOUT)


def test_pm4_ib_vendor_packet(amdgpu_aql_queue, amdgpu_buffer, amdgpu_signal):
    """KFDQMTest.SubmitPacketCpQueue through AQL (ROCR AqlQueue::ExecutePM4): AMD PM4-IB vendor
    packet (format 1, as ROCR's ExecutePM4): the packet processor runs the INDIRECT_BUFFER held
    in bytes 4..19 — here two WRITE_DATA packets — and then decrements the completion signal
    (facts-sdma-aql- codeobj.md §2.5)."""
    ib = amdgpu_buffer(4096, "gtt")
    out = amdgpu_buffer(4096, "gtt")
    words = raw_write_data(out.gpu_address, [0x1B1]) + raw_write_data(out.gpu_address + 4,
                                                                      [0x1B2])
    ib.view(np.uint32)[:len(words)] = words
    done = amdgpu_signal(1)
    jump = raw_indirect_buffer(ib.gpu_address, len(words))
    packet = struct.pack("<HBB4II4QQ", aql_header(0), 1, 0, *jump, 0xA, 0, 0, 0, 0,
                         done.handle)
    assert len(packet) == 64 and jump[0] == pm4_header(0x3F, 3)
    amdgpu_aql_queue.submit(packet)
    done.wait(0, cond="==", timeout=TIMEOUT)
    assert (u32(out), u32(out, 1)) == (0x1B1, 0x1B2)


# -- malformed packets, in another process ---------------------------------------------------------

# rocrtst negative/queue_validation.cc: each malformed dispatch packet it sends and the queue
# error it expects, as the CP's error bits in the queue's queue_inactive_signal (ROCR
# AqlQueue::DynamicScratchHandler maps 0x2 -> INCOMPATIBLE_ARGUMENTS, 0x4 -> INVALID_ALLOCATION,
# 0x8 -> INVALID_CODE_OBJECT, 0x20 | 0x100 -> INVALID_PACKET_FORMAT, 0x40 -> INVALID_ARGUMENT)
BAD_PACKETS = {
    "invalid_dimension": 0x2,        # setup = 4: DIMENSIONS [1:0] = 0 and a reserved bit
    "invalid_group_memory": 0x4,     # group_segment_size = 0xFFFFFFFF
    "invalid_kernel_object": 0x8,    # kernel_object = 0
    "invalid_packet_type": 0x120,    # header = 0xFFFF: type 0xFF
    "invalid_workgroup_size": 0x40,  # workgroup_size_x = 0xFFFF
}


def _bad_packet_in_child(device, case: str) -> dict:
    """Runs in the other KFD process: publish one malformed packet then a good BARRIER_AND;
    report whether either completed, the queue's error code and the process's exceptions."""
    kernel = device.load_kernel("empty")
    queue = device.create_queue("aql")
    bad, after = device.create_signal(1), device.create_signal(1)
    karg = device.alloc(4096, "gtt")
    try:
        kw = {"kernel_object": kernel.kd_address, "kernarg": karg.gpu_address,
              "grid": (64,), "block": (64,), "signal": bad.handle}
        if case == "invalid_dimension":
            kw["dims"] = 4
        elif case == "invalid_group_memory":
            kw["group"] = 0xFFFFFFFF
        elif case == "invalid_kernel_object":
            kw["kernel_object"] = 0
        elif case == "invalid_packet_type":
            kw["header"] = 0xFFFF
        else:
            kw["block"] = (0xFFFF,)
        queue.submit(raw_dispatch_packet(**kw),
                     raw_barrier_packet(AQL_TYPE_BARRIER_AND, [], after.handle))
        code = wait_for(lambda: queue.inactive_signal.value, lambda v: v != 0,
                        what=f"the queue error code after a {case} packet")
        values = []
        for _ in range(3):
            stays(lambda: (bad.value, after.value), (1, 1), seconds=0.1,
                  what=f"signals around a {case} packet")
            values.append((bad.value, after.value))
        return {"values": values, "code": code & 0xFFFFFFFFFFFFFFFF,
                "exceptions": [(e.kind, e.reason) for e in device.pending_exceptions()]}
    finally:
        queue.destroy()
        for obj in (bad, after, karg, kernel):
            obj.free()


@pytest.mark.parametrize("case", [
    *[c for c in BAD_PACKETS if c != "invalid_workgroup_size"],
    pytest.param("invalid_workgroup_size", marks=pytest.mark.amdgpu_sim_only(
        reason="rocrtst disables its InvalidWorkGroupSize case "
               "(DISABLED_Queue_Validation_InvalidWorkGroupSize): the CP's answer to a "
               "work-group of 65535 items is not established on hardware"))])
def test_malformed_packet_stops_its_queue(amdgpu_device, amdgpu_process, amdgpu_pm4_queue,
                                          amdgpu_buffer, case):
    """rocrtst Queue_Validation_InvalidDimension / _InvalidGroupMemory / _InvalidKernelObject /
    _InvalidPacket (and the disabled _InvalidWorkGroupSize) / IGT amd_queue_reset: in another
    KFD process a kernel dispatch packet with setup 4 (no valid dimension count), a group
    segment of 0xFFFFFFFF bytes, a null kernel object, header 0xFFFF (packet type 0xFF), or a
    work-group of 65535 items stops its queue with the CP error rocrtst expects in
    queue_inactive_signal; it never completes, the good packet behind it never runs, no
    memory fault is reported for it, and this process sees no exception and keeps running
    work."""
    result = amdgpu_process.run(_bad_packet_in_child, case, timeout=TIMEOUT)
    assert result["code"] & BAD_PACKETS[case], f"queue error code {result['code']:#x}"
    assert result["values"] == [(1, 1)] * 3
    assert all(kind != "memory" for kind, _ in result["exceptions"]), result["exceptions"]
    assert amdgpu_device.pending_exceptions() == []
    out = amdgpu_buffer(4096, "gtt")
    amdgpu_pm4_queue.write_data(out.gpu_address, [0xA11CE])
    wait_for(lambda: u32(out), lambda v: v == 0xA11CE, what="this process's work")
