"""Faults and recovery. Every fault is made in a second KFD process (`amdgpu_process`), because
the driver keeps a faulting process's queues on that GPU evicted for the rest of its life: the
faulting process sees a MEMORY exception with the fault page and the access kind, and its
queues stop; this process sees nothing and keeps running work; a new process afterwards works.
Address faults from shaders, the CP and SDMA, read-only (permission) faults on VRAM, GTT and
USERPTR, a fault storm, an unmapped kernel object or program address, illegal instructions and
traps, and malformed PM4 / SDMA packets (KFDExceptionTest.*, IGT amd_deadlock /
amd_queue_reset, KFDQMTest.BasicPipeReset / BasicSDMAReset)."""

from __future__ import annotations

import ctypes
import struct

import numpy as np
import pytest

from pytest_amdgpu.errors import GPUError
from pytest_amdgpu.kfd.abi import lib

from ._helpers import (
    PM4_WRITE_DATA,
    drain,
    needs_cpu_visible_vram,
    raw_dispatch_packet,
    raw_release_mem,
    raw_sdma_fence,
    raw_sdma_write,
    raw_write_data,
    stays,
    u32,
    wait_for,
)

pytestmark = pytest.mark.amdgpu_area("faults")

PAGE = 4096
TIMEOUT = 30.0


# -- helpers that run in the other process ------------------------------------------------------

def _exceptions(device, timeout: float = 5.0) -> list[tuple]:
    """Wait for this process's first GPU exception; [(kind, gpu_id, address, reason), …]."""
    found = wait_for(device.pending_exceptions, lambda e: len(e) > 0, timeout=timeout,
                     what="a GPU exception in the faulting process")
    return [(e.kind, e.gpu_id, e.address, e.reason) for e in found]


def _unmapped_address(device) -> int:
    """An address no GPU mapping will ever use in this process: a CPU range reserved PROT_NONE
    (as the thunk reserves VA) and never given to ALLOC or MAP. It stays reserved until the
    process ends, so no later buffer lands on it."""
    return device.port.mmap(0, 2 * PAGE, int(lib.PROT_NONE),
                            int(lib.MAP_PRIVATE | lib.MAP_ANONYMOUS | lib.MAP_NORESERVE), -1, 0)


def _shader_store_fault(device, path: str, location: str, read_only: bool) -> dict:
    """oob_store writes through a pointer: into an unmapped page, or into a read-only buffer."""
    kernel = device.load_kernel("oob_store")
    base = device.alloc(PAGE, "gtt")
    keep = None
    if read_only:
        keep = device.alloc(PAGE, location, read_only=True)
        target = keep.gpu_address + 0x40
    else:
        target = _unmapped_address(device) + 0x124
    queue = device.create_queue(path)
    offset = (target - base.gpu_address) & 0xFFFFFFFFFFFFFFFF
    queue.dispatch(kernel, 64, 64, [base, offset, 0xBAD])
    return {"target": target, "exceptions": _exceptions(device),
            "untouched": keep is None or int(keep.view(np.uint32)[0x10]) == 0}


def _cp_write_fault(device) -> dict:
    target = _unmapped_address(device) + 0x88
    queue = device.create_queue("pm4")
    queue.submit(raw_write_data(target, [1]))
    return {"target": target, "exceptions": _exceptions(device)}


def _sdma_write_fault(device) -> dict:
    target = _unmapped_address(device) + 0x10
    queue = device.create_queue("sdma")
    queue.submit(raw_sdma_write(target, [1, 2]))
    return {"target": target, "exceptions": _exceptions(device)}


def _check_fault(result: dict, device, reason: str) -> None:
    page = result["target"] & ~(PAGE - 1)
    memory = [e for e in result["exceptions"] if e[0] == "memory"]
    assert memory, f"no memory exception reported: {result['exceptions']}"
    _kind, gpu_id, address, why = memory[0]
    assert gpu_id == device.gpu_id
    assert address == page, f"fault address {address:#x}, expected the page {page:#x}"
    assert why == reason


def _this_process_is_fine(device, queue, buffer) -> None:
    assert device.pending_exceptions() == []
    out = buffer(PAGE, "gtt")
    queue.write_data(out.gpu_address, [0x0C0FFEE])
    wait_for(lambda: u32(out), lambda v: v == 0x0C0FFEE, what="this process's work")


# -- address and permission faults -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["aql", "pm4"])
def test_shader_address_fault(amdgpu_device, amdgpu_process, amdgpu_queue, amdgpu_buffer,
                              path):
    """KFDExceptionTest.AddressFault: a kernel store to an unmapped address is a GPU VM fault:
    the faulting process gets a MEMORY exception naming its GPU, the fault page (va = page << 12)
    and NotPresent (facts-kfd.md §4 I6); this process is not affected."""
    result = amdgpu_process.run(_shader_store_fault, path, "gtt", False, timeout=TIMEOUT)
    _check_fault(result, amdgpu_device, "NotPresent")
    _this_process_is_fine(amdgpu_device, amdgpu_queue, amdgpu_buffer)


@pytest.mark.parametrize("location", ["gtt", "vram", "userptr"])
def test_read_only_fault(amdgpu_device, amdgpu_process, amdgpu_queue, amdgpu_buffer,
                         location):
    """KFDExceptionTest.PermissionFault / UserptrPermissionFault: a kernel store into a buffer
    allocated without WRITABLE (read-only GPU mapping) faults with ReadOnly at that page and the
    memory keeps its contents."""
    if location == "vram":
        needs_cpu_visible_vram(amdgpu_device)
    result = amdgpu_process.run(_shader_store_fault, "aql", location, True, timeout=TIMEOUT)
    _check_fault(result, amdgpu_device, "ReadOnly")
    assert result["untouched"]
    _this_process_is_fine(amdgpu_device, amdgpu_queue, amdgpu_buffer)


def test_cp_address_fault(amdgpu_device, amdgpu_process, amdgpu_queue, amdgpu_buffer):
    """KFDExceptionTest (CP fault): a PM4 WRITE_DATA to an unmapped address is a VM fault of the
    command processor, reported like a shader fault."""
    result = amdgpu_process.run(_cp_write_fault, timeout=TIMEOUT)
    _check_fault(result, amdgpu_device, "NotPresent")
    _this_process_is_fine(amdgpu_device, amdgpu_queue, amdgpu_buffer)


def test_sdma_address_fault(amdgpu_device, amdgpu_process, amdgpu_queue, amdgpu_buffer):
    """KFDExceptionTest.SdmaQueueException / KFDQMTest.BasicSDMAReset: an SDMA WRITE_LINEAR to an
    unmapped address faults the SDMA engine's access; the process gets the MEMORY exception."""
    result = amdgpu_process.run(_sdma_write_fault, timeout=TIMEOUT)
    _check_fault(result, amdgpu_device, "NotPresent")
    _this_process_is_fine(amdgpu_device, amdgpu_queue, amdgpu_buffer)


def _fault_storm(device) -> dict:
    kernel = device.load_kernel("oob_store")
    base = device.alloc(PAGE, "gtt")
    pages = [_unmapped_address(device) for _ in range(4)]
    queues = [device.create_queue("aql") for _ in pages]
    for q, page in zip(queues, pages):
        q.dispatch(kernel, 256, 64, [base, (page - base.gpu_address) & (2**64 - 1), 1])
    excs = _exceptions(device)
    return {"pages": pages, "exceptions": excs}


def test_fault_storm(amdgpu_device, amdgpu_process, amdgpu_queue, amdgpu_buffer):
    """KFDExceptionTest.FaultStorm: four queues fault at once on four unmapped pages; the process
    gets memory exceptions for pages it touched only, and every other process carries on."""
    result = amdgpu_process.run(_fault_storm, timeout=TIMEOUT)
    memory = [e for e in result["exceptions"] if e[0] == "memory"]
    assert memory
    assert all(e[2] in result["pages"] and e[1] == amdgpu_device.gpu_id for e in memory)
    _this_process_is_fine(amdgpu_device, amdgpu_queue, amdgpu_buffer)


def _queues_stay_evicted(device) -> dict:
    _cp_write_fault(device)
    out = device.alloc(PAGE, "gtt")
    queue = device.create_queue("pm4")
    queue.write_data(out.gpu_address, [0x2])
    try:
        stays(lambda: int(out.view(np.uint32)[0]), 0, seconds=0.3,
              what="work queued after the fault")
        ran = False
    except AssertionError:
        ran = True
    return {"ran": ran}


def test_queues_stay_evicted_after_fault(amdgpu_process):
    """KFDExceptionTest.AddressFault (queue state after the fault): After a VM fault the driver
    evicts the process's queues on that GPU and never restores them: a queue created afterwards
    in that process does not run its work either (facts-kfd.md §4 I6, kfd_dqm_evict_pasid)."""
    result = amdgpu_process.run(_queues_stay_evicted, timeout=TIMEOUT)
    assert not result["ran"]


def _victim(device, link) -> dict:
    kernel = device.load_kernel("oob_store")
    base = device.alloc(PAGE, "gtt")
    target = _unmapped_address(device) + 4
    queue = device.create_queue("aql")
    link.send("ready")
    link.recv(timeout=TIMEOUT)
    queue.dispatch(kernel, 64, 64, [base, (target - base.gpu_address) & (2**64 - 1), 3])
    return {"target": target, "exceptions": _exceptions(device)}


def _healthy(device) -> list[int]:
    kernel = device.load_kernel("fill_id")
    out = device.alloc(PAGE, "gtt")
    queue = device.create_queue("aql")
    try:
        queue.dispatch(kernel, 100, 64, [out, 100]).wait(TIMEOUT)
        return [int(x) for x in out.view(np.uint32)[:100]]
    finally:
        queue.destroy()
        out.free()
        kernel.free()


def test_fault_is_isolated_to_its_process(amdgpu_device, amdgpu_process, amdgpu_event,
                                          amdgpu_aql_queue, amdgpu_kernel, amdgpu_buffer):
    """KFDQMTest.BasicPipeReset / KFDExceptionTest (isolation): while this process has a queue
    and a MEMORY event of its own, another process faults; that process sees its exception, this
    process's MEMORY event stays unsignaled, its queue runs a dispatch correctly, and a third
    process started afterwards on the same GPU works too."""
    mine = amdgpu_event("memory")
    task = amdgpu_process.start(_victim)
    assert task.recv(timeout=TIMEOUT) == "ready"
    task.send("go")
    result = task.result(timeout=TIMEOUT)
    _check_fault(result, amdgpu_device, "NotPresent")
    assert not mine.wait(timeout=0.05)
    assert amdgpu_device.pending_exceptions() == []
    k = amdgpu_kernel("fill_id")
    out = amdgpu_buffer(PAGE, "gtt")
    amdgpu_aql_queue.dispatch(k, 200, 64, [out, 200]).wait(TIMEOUT)
    assert np.array_equal(out.view(np.uint32)[:200], np.arange(200, dtype=np.uint32))
    assert amdgpu_process.run(_healthy, timeout=TIMEOUT) == list(range(100))


# -- invalid program addresses ---------------------------------------------------------------------

def _bad_program(device, case: str) -> dict:
    kernel = device.load_kernel("empty")
    queue = device.create_queue("aql")
    done = device.create_signal(1)
    if case == "kernel_object_unmapped":
        target = _unmapped_address(device)
        kobj = target
    else:
        target = _unmapped_address(device) + 0x100
        kd = device.alloc(PAGE, "gtt")
        raw = bytearray(ctypes.string_at(kernel.kd_address, 64))
        struct.pack_into("<q", raw, 16, target - kd.gpu_address)
        kd.write(0, bytes(raw))
        kobj = kd.gpu_address
    queue.submit(raw_dispatch_packet(kernel_object=kobj, kernarg=0, grid=(64,), block=(64,),
                                     signal=done.handle))
    excs = _exceptions(device)
    return {"target": target, "exceptions": excs, "signal": done.value}


@pytest.mark.parametrize("case", ["kernel_object_unmapped", "code_unmapped"])
def test_invalid_program_address(amdgpu_device, amdgpu_process, amdgpu_queue, amdgpu_buffer,
                                 case):
    """IGT amd_deadlock (invalid program address): a dispatch whose kernel descriptor is at an
    unmapped address faults the CP's descriptor fetch; one whose descriptor is readable but whose
    code entry points into an unmapped page faults the instruction fetch. Either way the process
    gets a MEMORY exception for that page and the dispatch never completes."""
    result = amdgpu_process.run(_bad_program, case, timeout=TIMEOUT)
    _check_fault(result, amdgpu_device, "NotPresent")
    assert result["signal"] == 1
    _this_process_is_fine(amdgpu_device, amdgpu_queue, amdgpu_buffer)


def _bad_kernel(device, name: str) -> dict:
    kernel = device.load_kernel(name)
    queue = device.create_queue("aql")
    done = queue.dispatch(kernel, 64, 64)
    after = device.create_signal(1)
    queue.barrier_and((), completion_signal=after)
    error = ""
    try:
        done.wait(0.5)
        completed = True
    except GPUError as exc:
        completed = False
        error = type(exc).__name__
    stays(lambda: after.value, 1, seconds=0.1, what="the packet after a failed dispatch")
    return {"completed": completed, "error": error, "after": after.value}


@pytest.mark.parametrize("kernel", ["illegal", "trap"])
def test_illegal_instruction_and_trap(amdgpu_device, amdgpu_process, amdgpu_queue,
                                      amdgpu_buffer, kernel):
    """KFDExceptionTest (wave exceptions): a kernel whose first instruction is an undefined
    encoding, and one that executes s_trap 2 without a debugger, do not complete: the process's
    wait ends in a GPU error or a timeout, and the packet after it does not run."""
    result = amdgpu_process.run(_bad_kernel, kernel, timeout=TIMEOUT)
    assert not result["completed"]
    assert result["error"] in ("GPUTimeoutError", "HWExceptionError", "GPUFaultError")
    assert result["after"] == 1
    _this_process_is_fine(amdgpu_device, amdgpu_queue, amdgpu_buffer)


# -- malformed packets --------------------------------------------------------------------------

def _bad_packet(device, case: str) -> dict:
    kind = "sdma" if case.startswith("sdma") else "pm4"
    queue = device.create_queue(kind, ring_size=1024 if case == "pm4_bad_length" else None)
    out = device.alloc(PAGE, "gtt")
    sink = device.alloc(128 * 1024, "gtt")
    marker = out.gpu_address
    if case == "pm4_bad_type":
        bad = [0x40000000]
    elif case == "pm4_bad_opcode":
        bad = [0xC000FF00, 0]
    elif case == "pm4_bad_length":
        # WRITE_DATA whose COUNT (0x3FFF: 16385 dwords) is longer than the whole ring
        bad = [0xC0000000 | 0x3FFF << 16 | PM4_WRITE_DATA << 8, 5 << 8,
               sink.gpu_address & 0xFFFFFFFF, sink.gpu_address >> 32]
    else:
        bad = [3]                                 # SDMA op 3: unused in every SDMA version
    if kind == "pm4":
        queue.submit(bad, raw_write_data(marker, [0x3A]),
                     raw_release_mem(marker + 8, 0x3B, 1))
    else:
        queue.submit(bad, raw_sdma_fence(marker, 0x3A))
    stays(lambda: (int(out.view(np.uint32)[0]), int(out.view(np.uint32)[2])), (0, 0),
          seconds=0.3, what=f"the packets after a {case} packet")
    return {"exceptions": [(e.kind, e.reason) for e in device.pending_exceptions()]}


@pytest.mark.parametrize("case", ["pm4_bad_type", "pm4_bad_opcode", "pm4_bad_length",
                                  "sdma_bad_opcode"])
def test_malformed_packet(amdgpu_device, amdgpu_process, amdgpu_queue, amdgpu_buffer, case):
    """IGT amd_deadlock / amd_queue_reset (bad packet header, opcode, length): in another process
    a PM4 type-1 header, a type-3 packet with the undefined opcode 0xFF, a WRITE_DATA longer than
    the ring, and an SDMA packet with the unused opcode 3 stop their queue: the packets behind
    them never run and no memory fault is reported; this process keeps working."""
    result = amdgpu_process.run(_bad_packet, case, timeout=TIMEOUT)
    assert all(kind != "memory" for kind, _ in result["exceptions"]), result["exceptions"]
    _this_process_is_fine(amdgpu_device, amdgpu_queue, amdgpu_buffer)


def test_process_survives_a_hung_queue(amdgpu_device, amdgpu_buffer, amdgpu_signal):
    """IGT amd_deadlock (a queue that never finishes): a PM4 queue stuck in a WAIT_REG_MEM that
    can never pass is destroyed; the process's other queues ran meanwhile and keep running."""
    gate = amdgpu_buffer(PAGE, "gtt")
    stuck = amdgpu_device.create_queue("pm4", owner="hung")
    other = amdgpu_device.create_queue("pm4", owner="other")
    try:
        stuck.wait_reg_mem(gate.gpu_address, 1, function="==")
        stuck.write_data(gate.gpu_address + 4, [0xBAD])
        other.write_data(gate.gpu_address + 8, [0x600D])
        drain(other, amdgpu_signal)
        assert u32(gate, 2) == 0x600D
    finally:
        stuck.destroy()
    assert u32(gate, 1) == 0
    other.write_data(gate.gpu_address + 12, [0x601D])
    try:
        drain(other, amdgpu_signal)
    finally:
        other.destroy()
    assert u32(gate, 3) == 0x601D
