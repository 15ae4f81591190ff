"""GPUVM: the memory door of the engines and the shader core, and the VM-fault path (§4 I6).

Buffers are allocated and mapped through the Port; the GPUVM of the process on that device is
then used as the command processors and shader core use it. Expected values come from numpy
references or the bytes the test wrote through the CPU mapping.
"""

from __future__ import annotations

import ctypes
import struct

import numpy as np
import pytest

from pytest_amdgpu.sim.memory import VMFault

from .helpers import EXECUTABLE, GTT, PAGE, Q_AQL, Q_SDMA, VRAM, WRITABLE, make_env


@pytest.fixture
def env():
    e = make_env()
    yield e
    e.port.close_port()


def _vm(env, b):
    return env.process.pdd_by_id(b.gpu_id).vm


def test_scalar_access_and_bounds(env):
    b = env.alloc(2 * PAGE, cpu=True)
    vm = _vm(env, b)
    vm.write_u32(b.va + 4, 0xDEADBEEF)
    vm.write_u64(b.va + 8, 0x0123456789ABCDEF)
    assert ctypes.c_uint32.from_address(b.cpu + 4).value == 0xDEADBEEF
    assert vm.read_u64(b.va + 8) == 0x0123456789ABCDEF
    with pytest.raises(VMFault) as ei:                   # last byte past the BO
        vm.read(b.va + 2 * PAGE - 4, 8)
    assert ei.value.address == b.va + 2 * PAGE and ei.value.reason == "not_present"
    with pytest.raises(VMFault) as ei:
        vm.write(b.va - 16, b"x")
    assert ei.value.address == b.va - 16 and ei.value.write


def test_accesses_across_adjacent_buffers(env):
    a = env.alloc(PAGE)
    env.alloc(PAGE, va=a.va + PAGE)
    vm = _vm(env, a)
    vm.write(a.va + PAGE - 2, b"abcd")                    # spans both BOs
    assert vm.read(a.va + PAGE - 2, 4) == b"abcd"
    assert bytes(vm.view(a.va + PAGE - 2, 4, write=False)) == b"abcd"
    with pytest.raises(ValueError):
        vm.view(a.va + PAGE - 2, 4, write=True)


def test_read_only_and_execute_permissions(env):
    ro = env.alloc(PAGE, VRAM, cpu=True)                  # no WRITABLE flag
    code = env.alloc(PAGE, VRAM | EXECUTABLE)
    vm = _vm(env, ro)
    ctypes.memmove(ro.cpu, b"cpu", 3)
    assert vm.read(ro.va, 3) == b"cpu"
    with pytest.raises(VMFault) as ei:
        vm.write(ro.va, b"gpu")
    assert ei.value.reason == "read_only" and ei.value.address == ro.va
    with pytest.raises(VMFault):
        vm.atomic(ro.va, "add", 1)
    with pytest.raises(VMFault):
        vm.view(ro.va, 4, write=True)
    with pytest.raises(VMFault) as ei:
        vm.check_exec(ro.va, 4)
    assert ei.value.reason == "no_execute"
    vm.check_exec(code.va, 64)
    with pytest.raises(VMFault) as ei:
        vm.check_exec(code.va + PAGE, 4)
    assert ei.value.reason == "not_present"


def test_unmapped_buffer_faults_and_remapped_works(env):
    b = env.alloc(PAGE, cpu=True)
    vm = _vm(env, b)
    env.kfd.unmap_memory(handle=b.handle, gpu_ids=[b.gpu_id])
    with pytest.raises(VMFault):
        vm.read(b.va, 4)
    env.kfd.map_memory(handle=b.handle, gpu_ids=[b.gpu_id])
    ctypes.memmove(b.cpu, b"back", 4)
    assert vm.read(b.va, 4) == b"back"


def test_gather_scatter_against_numpy(env):
    b = env.alloc(4 * PAGE, cpu=True)
    vm = _vm(env, b)
    host = np.frombuffer((ctypes.c_uint8 * (4 * PAGE)).from_address(b.cpu), dtype=np.uint8)
    host[:] = np.arange(4 * PAGE) % 251
    rng = np.random.default_rng(1)
    offs = rng.integers(0, 4 * PAGE - 4, 64)
    mask = rng.random(64) < 0.7
    got = vm.gather(np.uint64(b.va) + offs.astype(np.uint64), 4, mask)
    ref = np.stack([host[o:o + 4] for o in offs])
    assert np.array_equal(got[mask], ref[mask])
    assert not got[~mask].any()
    data = rng.integers(0, 256, (64, 4)).astype(np.uint8)
    lanes = np.arange(64) * 8
    before = host.copy()
    vm.scatter(np.uint64(b.va) + lanes.astype(np.uint64), data, mask)
    for i in range(64):
        expect = data[i] if mask[i] else before[lanes[i]:lanes[i] + 4]
        assert np.array_equal(host[lanes[i]:lanes[i] + 4], expect)


def test_gather_over_two_buffers_and_fault_lane(env):
    a = env.alloc(PAGE)
    b = env.alloc(PAGE)
    vm = _vm(env, a)
    vm.write(a.va, b"AAAA")
    vm.write(b.va, b"BBBB")
    addrs = np.array([a.va, b.va, a.va], dtype=np.uint64)
    got = vm.gather(addrs, 4, np.array([True, True, True]))
    assert [bytes(r) for r in got] == [b"AAAA", b"BBBB", b"AAAA"]
    bad = np.array([a.va, b.va + PAGE + 64, a.va], dtype=np.uint64)
    with pytest.raises(VMFault) as ei:
        vm.gather(bad, 4, np.array([True, True, True]))
    assert ei.value.address == b.va + PAGE + 64
    vm.gather(bad, 4, np.array([True, False, True]))     # the faulting lane is inactive


def test_scatter_to_read_only_faults(env):
    ro = env.alloc(PAGE, VRAM)
    vm = _vm(env, ro)
    with pytest.raises(VMFault) as ei:
        vm.scatter(np.array([ro.va], dtype=np.uint64), np.zeros((1, 4), np.uint8))
    assert ei.value.reason == "read_only"


@pytest.mark.parametrize("op,old,src,cmp,new", [
    ("add", 5, 3, 0, 8), ("sub", 5, 7, 0, (5 - 7) & 0xFFFFFFFF), ("swap", 5, 9, 0, 9),
    ("cmpswap", 5, 9, 5, 9), ("cmpswap", 5, 9, 4, 5), ("and", 0b1100, 0b1010, 0, 0b1000),
    ("or", 0b1100, 0b1010, 0, 0b1110), ("xor", 0b1100, 0b1010, 0, 0b0110),
    ("umin", 5, 0xFFFFFFFF, 0, 5), ("smin", 5, 0xFFFFFFFF, 0, 0xFFFFFFFF),
    ("umax", 5, 0xFFFFFFFF, 0, 0xFFFFFFFF), ("smax", 5, 0xFFFFFFFF, 0, 5),
    ("inc", 5, 5, 0, 0), ("inc", 4, 5, 0, 5), ("dec", 0, 7, 0, 7), ("dec", 3, 7, 0, 2),
])
def test_atomics_32(env, op, old, src, cmp, new):
    b = env.alloc(PAGE, cpu=True)
    vm = _vm(env, b)
    vm.write_u32(b.va, old)
    assert vm.atomic(b.va, op, src, cmp, 4) == old
    assert ctypes.c_uint32.from_address(b.cpu).value == new


def test_atomic_64_and_float(env):
    b = env.alloc(PAGE)
    vm = _vm(env, b)
    vm.write_u64(b.va, (1 << 40) + 1)
    assert vm.atomic(b.va, "add", 1 << 40, size=8) == (1 << 40) + 1
    assert vm.read_u64(b.va) == (2 << 40) + 1
    vm.write(b.va + 8, struct.pack("<f", 1.5))
    vm.atomic(b.va + 8, "fadd", struct.unpack("<I", struct.pack("<f", 2.25))[0])
    assert struct.unpack("<f", vm.read(b.va + 8, 4))[0] == 3.75


def test_vm_fault_sets_memory_events_and_evicts_the_queues(env):
    mem = env.kfd.create_event(event_type=8)
    sig = env.kfd.create_event(event_type=0)
    env.create_queue(Q_AQL)
    (q,) = env.process.live_queues()
    b = env.alloc(PAGE)
    vm = _vm(env, b)
    with pytest.raises(VMFault) as ei:
        vm.write(b.va + PAGE + 0x123, b"x")
    env.process.vm_fault(env.process.pdds[0].device, ei.value)      # as the engine reports it
    assert q.evicted and not q.active
    assert ("evict", env.process) in env.process.pdds[0].device.engine.calls
    r = env.kfd.wait_events(event_ids=[sig.event_id, mem.event_id], timeout_ms=0)
    assert r.complete
    d = {e.event_id: e for e in r.data}
    m = d[mem.event_id].memory
    assert m.va == b.va + PAGE and m.gpu_id == b.gpu_id                 # page address
    assert m.not_present and not m.read_only and not m.no_execute
    assert d[sig.event_id].memory is None or d[sig.event_id].memory.va == 0   # not activated


def test_read_only_fault_data(env):
    mem = env.kfd.create_event(event_type=8)
    ro = env.alloc(PAGE, VRAM)
    with pytest.raises(VMFault) as ei:
        _vm(env, ro).write_u32(ro.va + 8, 1)
    env.process.vm_fault(env.process.pdds[0].device, ei.value)
    m = env.kfd.wait_events(event_ids=[mem.event_id], timeout_ms=0).data[0].memory
    assert m.read_only and not m.not_present and m.va == ro.va


def test_queue_on_another_gpu_is_not_evicted():
    env = make_env("gfx942x2")
    try:
        env.create_queue(Q_SDMA, gpu=0)
        env.create_queue(Q_SDMA, gpu=1)
        q0, q1 = env.process.live_queues()
        b = env.alloc(PAGE, gpu=1)
        with pytest.raises(VMFault) as ei:
            _vm(env, b).read(b.va + PAGE, 4)
        env.process.vm_fault(env.process.pdds[1].device, ei.value)
        assert q1.evicted and not q0.evicted
    finally:
        env.port.close_port()


def test_gtt_buffers_are_visible_to_every_gpu_they_are_mapped_on():
    env = make_env("gfx942,gfx1100")
    try:
        g0, g1 = env.acquire(0), env.acquire(1)
        b = env.alloc(PAGE, GTT | WRITABLE, gpu=0, cpu=True)
        env.kfd.map_memory(handle=b.handle, gpu_ids=[g1])
        vm1 = env.process.pdd_by_id(g1).vm
        vm1.write(b.va, b"peer")
        assert ctypes.string_at(b.cpu, 4) == b"peer"
        assert env.process.pdd_by_id(g0).vm.read(b.va, 4) == b"peer"
    finally:
        env.port.close_port()
