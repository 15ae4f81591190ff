"""Two SimPorts on one SimMachine are two OS processes: separate KFD processes (facts §1)."""

from __future__ import annotations

import errno as E

import pytest

from pytest_amdgpu.sim.machine import SimMachine
from pytest_amdgpu.sim.memory import VMFault
from pytest_amdgpu.sim.port import SimPort

from .helpers import PAGE, Q_SDMA, Env, StubEngine


@pytest.fixture
def two():
    m = SimMachine("gfx1100", engine_factory=StubEngine)
    a, b = Env(SimPort(m)), Env(SimPort(m))
    yield a, b
    a.port.close_port()
    b.port.close_port()
    m.close()


def test_handles_queues_and_events_are_per_process(two):
    a, b = two
    ba = a.alloc(PAGE)
    bb = b.alloc(PAGE)
    assert ba.handle == bb.handle                    # same idr in each process, no clash
    assert a.process is not b.process
    qa, _ = a.create_queue(Q_SDMA)
    qb, _ = b.create_queue(Q_SDMA)
    assert qa.queue_id == qb.queue_id == 0           # queue ids are per process
    ea = a.kfd.create_event(event_type=0)
    eb = b.kfd.create_event(event_type=0)
    assert ea.event_id == eb.event_id == 1
    a.kfd.set_event(event_id=ea.event_id)
    assert not b.kfd.wait_events(event_ids=[eb.event_id], timeout_ms=0).complete


def test_one_process_cannot_reach_the_others_memory(two):
    a, b = two
    buf = a.alloc(PAGE, cpu=True)
    b.acquire()
    # B's handle table has nothing at A's index beyond its own kernel pages: ENOMEM (§2.5 r6)
    with pytest.raises(OSError) as ei:
        b.kfd.map_memory(handle=buf.handle + 5, gpu_ids=[b.gpu_id()])
    assert ei.value.errno == E.ENOMEM
    with pytest.raises(VMFault):                      # A's VA is not mapped in B's VM
        b.process.pdd_by_id(b.gpu_id()).vm.read(buf.va, 4)
    # A's render fd is not a file of B (fget in B): EINVAL
    a_fd = a.render[a.gpu_id()]
    assert a_fd not in b.render.values()
    b2 = Env(SimPort(b.port.machine))
    try:
        with pytest.raises(OSError) as ei:
            b2.kfd.acquire_vm(drm_fd=a_fd, gpu_id=b2.gpu_id())
        assert ei.value.errno == E.EINVAL
        with pytest.raises(OSError) as ei:           # mmap A's BO through B's render file
            b2.acquire()
            b2.port.mmap(0, PAGE, 3, 1, b2.render[b2.gpu_id()], buf.mmap_offset)
        assert ei.value.errno == E.EACCES
    finally:
        b2.port.close_port()


def test_vram_is_shared_and_sdma_slots_are_device_wide(two):
    a, b = two
    gid = a.gpu_id()
    before = b.kfd.available_memory(gpu_id=gid)
    a.alloc(16 << 20)
    assert b.kfd.available_memory(gpu_id=gid) == before - (16 << 20)
    kw_a = dict(a.queue_buffers(Q_SDMA)["kwargs"])
    kw_b = dict(b.queue_buffers(Q_SDMA)["kwargs"])
    for _ in range(6):
        a.kfd.create_queue(**kw_a)
        b.kfd.create_queue(**kw_b)
    with pytest.raises(OSError) as ei:               # 12 SDMA queues on the device (TG)
        b.kfd.create_queue(**kw_b)
    assert ei.value.errno == E.ENOMEM


def test_ending_one_process_leaves_the_other_intact(two):
    a, b = two
    buf = b.alloc(PAGE, cpu=True)
    b.process.pdd_by_id(buf.gpu_id).vm.write(buf.va, b"keep")
    a.alloc(PAGE)
    a.create_queue(Q_SDMA)
    a.port.close_port()
    assert b.process.pdd_by_id(buf.gpu_id).vm.read(buf.va, 4) == b"keep"
    b.process.check_invariants()
    assert len(b.port.machine.processes) == 1
