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


def test_atomics_across_two_mappings_in_turn(env):
    """Add/sub wrap at the width (64-bit too) and keep their permission checks when the VM
    alternates between two mappings (the last two used are remembered)."""
    a, b = env.alloc(PAGE), env.alloc(PAGE)
    ro = env.alloc(PAGE, VRAM)
    vm = _vm(env, a)
    vm.write_u64(a.va, 0)
    vm.write_u64(b.va, 5)
    for _ in range(3):
        vm.atomic(a.va, "sub", 1, size=8)
        vm.atomic(b.va, "add", 1 << 64 | 2, size=8)     # bits past the width are dropped
    assert vm.read_u64(a.va) == (-3) & (2 ** 64 - 1)
    assert vm.read_u64(b.va) == 11
    assert vm.atomic(b.va + 8, "sub", 1, size=4) == 0
    assert vm.read_u32(b.va + 8) == 0xFFFFFFFF
    vm.read_u64(ro.va)                                  # the read-only mapping is remembered
    vm.atomic(a.va, "add", 1, size=8)
    with pytest.raises(VMFault) as ei:
        vm.atomic(ro.va, "add", 1, size=8)
    assert ei.value.reason == "read_only"
    for store in (vm.write_u32, vm.write_u64, lambda va, v: vm.write(va, bytes(8))):
        vm.read_u64(ro.va)
        vm.read_u64(a.va)                               # ro is the one used before the last
        with pytest.raises(VMFault) as ei:
            store(ro.va, 1)
        assert ei.value.reason == "read_only"
    vm.write_u64(b.va, 7)
    vm.read_u32(a.va)
    vm.write_u64(b.va + 16, 9)                          # b again, through the remembered pair
    assert (vm.read_u64(b.va), vm.read_u64(b.va + 16)) == (7, 9)


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


def test_queues_created_after_a_fault_stay_evicted():
    """kfd_dqm_evict_pasid leaves qpd->evicted raised for good after a VM fault, and
    create_queue_cpsch gives every later queue is_evicted = qpd->evicted: work submitted on
    that GPU after the fault never runs. The other GPU is not affected (facts §4 I6)."""
    env = make_env("gfx942x2")
    try:
        env.create_queue(Q_SDMA, gpu=0)
        b = env.alloc(PAGE, gpu=0)
        with pytest.raises(VMFault) as ei:
            _vm(env, b).read(b.va + PAGE, 4)
        dev0 = env.process.pdds[0].device
        env.process.vm_fault(dev0, ei.value)
        info, bufs = env.create_queue(Q_AQL, gpu=0)         # created after the fault
        env.create_queue(Q_SDMA, gpu=1)
        q = env.process.queues[info.queue_id]
        assert q.evicted and not q.active
        assert ("add", q) in dev0.engine.calls               # the engine has it, not runnable
        # neither UPDATE_QUEUE nor destroying every queue lifts the eviction
        env.kfd.update_queue(queue_id=info.queue_id, ring_base=bufs["ring"].va,
                             ring_size=4096, percentage=100, priority=7)
        assert not q.active
        for qid in list(env.process.queues):
            if env.process.queues[qid].gpu_id == b.gpu_id:
                env.kfd.destroy_queue(queue_id=qid)
        info2, _ = env.create_queue(Q_SDMA, gpu=0)
        assert not env.process.queues[info2.queue_id].active
        assert all(q.active for q in env.process.live_queues() if q.gpu_id == env.gpu_id(1))
    finally:
        env.port.close_port()


def test_lanes_running_into_the_next_buffer(env):
    """A lane whose 8-byte access starts in one BO and ends in the adjacent one reads and
    writes both, as the page tables allow; a lane running into unmapped memory faults at the
    first unmapped byte."""
    a = env.alloc(PAGE)
    env.alloc(PAGE, va=a.va + PAGE)
    vm = _vm(env, a)
    vm.write(a.va + PAGE - 4, bytes(range(1, 9)))
    addrs = np.array([a.va, a.va + PAGE - 4], dtype=np.uint64)
    got = vm.gather(addrs, 8)
    assert bytes(got[1]) == bytes(range(1, 9))
    vm.scatter(addrs, np.array([[0xAA] * 8, [0xBB] * 8], dtype=np.uint8))
    assert vm.read(a.va + PAGE - 4, 8) == b"\xbb" * 8 and vm.read(a.va, 8) == b"\xaa" * 8
    with pytest.raises(VMFault) as ei:
        vm.gather(np.array([a.va, a.va + 2 * PAGE - 4], dtype=np.uint64), 8)
    assert ei.value.address == a.va + 2 * PAGE and ei.value.reason == "not_present"


def test_instruction_fetch_into_a_non_executable_buffer(env):
    """An instruction fetch over two BOs faults at the first byte of the one that is not
    executable, whichever side it is on."""
    data = env.alloc(PAGE, VRAM)
    code = env.alloc(PAGE, VRAM | EXECUTABLE, va=data.va + PAGE)
    env.alloc(PAGE, VRAM, va=code.va + PAGE)               # more data after the code
    vm = _vm(env, code)
    vm.check_exec(code.va + PAGE - 8, 8)
    with pytest.raises(VMFault) as ei:                     # code running into data
        vm.check_exec(code.va + PAGE - 8, 16)
    assert ei.value.reason == "no_execute" and ei.value.address == code.va + PAGE
    with pytest.raises(VMFault) as ei:                     # data running into code
        vm.check_exec(code.va - 8, 16)
    assert ei.value.reason == "no_execute" and ei.value.address == code.va - 8


def test_stores_to_read_only_memory_after_a_read_fault(env):
    """The per-packet store paths see the permission of the mapping they hit last."""
    ro = env.alloc(PAGE, VRAM)
    vm = _vm(env, ro)
    assert vm.read_u64(ro.va) == 0                       # zero-initialised, and now cached
    for store in (lambda: vm.write_u32(ro.va, 1), lambda: vm.write_u64(ro.va, 1),
                  lambda: vm.write(ro.va, b"\x01")):
        with pytest.raises(VMFault) as ei:
            store()
        assert ei.value.reason == "read_only"
    assert vm.read_u64(ro.va) == 0


def test_userptr_pages_unmapped_by_the_process_fault(env):
    import ctypes as C

    from pytest_amdgpu.kfd.abi import lib

    from .helpers import PROT_RW, USERPTR
    host = env.port.mmap(0, 2 * PAGE, PROT_RW, int(lib.MAP_PRIVATE | lib.MAP_ANONYMOUS), -1, 0)
    C.memmove(host, b"host", 4)
    b = env.alloc(2 * PAGE, USERPTR | WRITABLE, va=host, mmap_offset=host)
    vm = _vm(env, b)
    assert vm.read_u32(host) == int.from_bytes(b"host", "little")
    env.port.munmap(host + PAGE, PAGE)                   # the process drops the second page
    assert vm.read(host, 4) == b"host"
    with pytest.raises(VMFault) as ei:
        vm.read_u32(host + PAGE)
    assert ei.value.reason == "not_present"
    with pytest.raises(VMFault):
        vm.write_u64(host + PAGE + 8, 1)


@pytest.mark.parametrize("op,a,b,expect", [
    ("fadd", 3.0e38, 3.0e38, float("inf")),               # overflows to +inf, as IEEE
    ("fadd", 1.5, -1.5, 0.0),
    ("fmin", float("nan"), 2.0, 2.0),                       # minNum: the NaN loses
    ("fmin", 2.0, float("nan"), 2.0),
    ("fmax", -1.0, -2.0, -1.0),
])
def test_float_atomics(env, op, a, b, expect):
    buf = env.alloc(PAGE)
    vm = _vm(env, buf)
    vm.write(buf.va, struct.pack("<f", a))
    old = vm.atomic(buf.va, op, struct.unpack("<I", struct.pack("<f", b))[0])
    assert old == struct.unpack("<I", struct.pack("<f", a))[0]
    assert struct.unpack("<f", vm.read(buf.va, 4))[0] == expect
