"""Lifecycle of a simulated KFD process, driven only through the Port (facts-kfd.md §1-§3)."""

from __future__ import annotations

import ctypes
import errno

import numpy as np
import pytest

from pytest_amdgpu.kfd import (
    KFD,
    KFDBusy,
    KFDInvalidArgument,
    KFDNoDevice,
    KFDNoProcess,
)
from pytest_amdgpu.kfd.abi import lib
from pytest_amdgpu.sim.port import SimPort

from .helpers import (
    AQL_MEM,
    DOORBELL,
    GTT,
    MMIO,
    PAGE,
    PROT_RW,
    Q_AQL,
    Q_ENG,
    Q_PM4,
    Q_SDMA,
    Q_XGMI,
    USERPTR,
    VRAM,
    WRITABLE,
    Env,
    StubEngine,
    make_env,
)

DOORBELL_TYPE = 0x3 << 62       # KFD_MMAP_TYPE_DOORBELL (kfd_priv.h, facts §3 M1)
EVENTS_TYPE = 0x2 << 62
MMIO_TYPE = 0x0 << 62


def test_version_and_ioctls_newer_than_the_driver():
    env = make_env(kfd_version=(1, 11))
    try:
        assert env.kfd.version == (1, 11)
        err, _ = env.raw("RUNTIME_ENABLE", mode_mask=1)      # 1.14 ioctl on a 1.11 driver
        assert err == errno.ENOTTY
    finally:
        env.port.close_port()
    env = make_env()
    try:
        err, s = env.raw("GET_VERSION")
        assert (err, s.major_version, s.minor_version) == (0, 1, 17)
    finally:
        env.port.close_port()


def test_apertures_of_every_gpu_before_acquire_vm():
    env = make_env("gfx942x2,gfx1100")
    try:
        aps = env.kfd.get_process_apertures()
        assert [a.gpu_id for a in aps] == [g.gpu_id for g in env.gpus]
        for a in aps:     # kfd_init_apertures_v9 (facts §2.2)
            assert a.lds_base == 1 << 48 and a.lds_limit == (1 << 48) | 0xFFFFFFFF
            assert a.scratch_base == 2 << 48 and a.scratch_limit == (2 << 48) | 0xFFFFFFFF
            assert a.gpuvm_base == 0x1000000 and a.gpuvm_limit == (1 << 47) - 1
        err, s = env.raw("GET_PROCESS_APERTURES_NEW", num_of_nodes=0)
        assert (err, s.num_of_nodes) == (0, 3)
    finally:
        env.port.close_port()


def test_acquire_vm_rules(kfd_env):
    env = kfd_env
    gid = env.gpu_id()
    fd = env.open_render()
    with pytest.raises(KFDInvalidArgument):                 # not a DRM file
        env.kfd.acquire_vm(drm_fd=env.kfd.fd, gpu_id=gid)
    with pytest.raises(KFDInvalidArgument):                 # fget fails
        env.kfd.acquire_vm(drm_fd=9999, gpu_id=gid)
    with pytest.raises(KFDInvalidArgument):                 # unknown gpu
        env.kfd.acquire_vm(drm_fd=fd, gpu_id=gid ^ 0x1)
    env.kfd.acquire_vm(drm_fd=fd, gpu_id=gid)
    env.kfd.acquire_vm(drm_fd=fd, gpu_id=gid)               # same file: idempotent
    other = env.open_render()
    with pytest.raises(KFDBusy):                            # another file: EBUSY
        env.kfd.acquire_vm(drm_fd=other, gpu_id=gid)


def test_acquire_vm_with_the_render_node_of_another_gpu():
    env = make_env("gfx942,gfx1100")
    try:
        fd1100 = env.open_render(1)
        with pytest.raises(KFDInvalidArgument):             # GAP choice: EINVAL
            env.kfd.acquire_vm(drm_fd=fd1100, gpu_id=env.gpu_id(0))
        env.kfd.acquire_vm(drm_fd=fd1100, gpu_id=env.gpu_id(1))
    finally:
        env.port.close_port()


def test_device_ioctls_before_acquire_vm(kfd_env):
    env = kfd_env
    gid = env.gpu_id()
    va = env.reserve_va(PAGE)
    with pytest.raises(KFDNoDevice):                        # ALLOC: bind fails, ENODEV
        env.kfd.alloc_memory(gpu_id=gid, size=PAGE, flags=VRAM, va_addr=va)
    with pytest.raises(KFDNoProcess):                       # CREATE_QUEUE: ESRCH
        env.kfd.create_queue(gpu_id=gid, queue_type=Q_SDMA, ring_base=va, ring_size=4096,
                             write_pointer=va, read_pointer=va)


def test_open_twice_reaches_the_same_process_and_close_frees_nothing(kfd_env):
    env = kfd_env
    b = env.alloc(PAGE)
    kfd2 = KFD(env.port)
    assert env.port.process is env.process
    kfd2.unmap_memory(handle=b.handle, gpu_ids=[b.gpu_id])   # the other fd sees the handle
    kfd2.map_memory(handle=b.handle, gpu_ids=[b.gpu_id])
    before = env.snapshot()
    env.kfd.close()
    kfd2.close()
    kfd3 = KFD(env.port)                                     # 1.7: the old state is found
    env.kfd = kfd3
    assert env.snapshot() == before


def test_close_port_releases_everything():
    from pytest_amdgpu.sim.machine import SimMachine

    m = SimMachine("gfx942", engine_factory=StubEngine)
    try:
        watcher = Env(SimPort(m))
        gid = watcher.gpu_id()
        idle = watcher.kfd.available_memory(gpu_id=gid)
        env = Env(SimPort(m))
        env.alloc(64 << 20)
        env.create_queue(Q_SDMA)
        env.kfd.create_event(event_type=0)
        assert watcher.kfd.available_memory(gpu_id=gid) < idle
        proc = env.process
        env.port.close_port()
        assert watcher.kfd.available_memory(gpu_id=gid) == idle
        assert proc.live_bos(include_kernel=True) == [] and proc.live_queues() == []
        assert proc.live_events() == []
        assert [c[0] for c in m.devices[0].engine.calls].count("remove") == 1
        with pytest.raises(OSError):
            env.port.open("/dev/kfd")
        watcher.port.close_port()
    finally:
        m.close()


def test_alloc_map_and_cpu_gpu_aliasing(kfd_env):
    env = kfd_env
    b = env.alloc(3 * PAGE, VRAM | WRITABLE, cpu=True)
    vm = env.process.pdd_by_id(b.gpu_id).vm
    assert vm.read(b.va, 3 * PAGE) == bytes(3 * PAGE)                  # zero-initialised
    ctypes.memmove(b.cpu + 100, b"through the CPU", 15)
    assert vm.read(b.va + 100, 15) == b"through the CPU"
    vm.write(b.va + 2 * PAGE + 5, b"through the GPU")
    assert ctypes.string_at(b.cpu + 2 * PAGE + 5, 15) == b"through the GPU"
    assert b.cpu == b.va                                               # CPU VA == GPU VA
    v = vm.view(b.va, 16, write=True)
    v[:] = 7
    assert ctypes.string_at(b.cpu, 16) == bytes([7] * 16)


def test_gtt_and_aql_double_mapping(kfd_env):
    env = kfd_env
    g = env.alloc(2 * PAGE, GTT | WRITABLE, cpu=True)
    vm = env.process.pdd_by_id(g.gpu_id).vm
    ctypes.memmove(g.cpu, b"gtt", 3)
    assert vm.read(g.va, 3) == b"gtt"
    a = env.alloc(4 * PAGE, GTT | WRITABLE | AQL_MEM)
    vm.write(a.va + 10, b"x")                   # the BO is half the size, mapped twice
    assert vm.read(a.va + 2 * PAGE + 10, 1) == b"x"
    vm.write(a.va + 2 * PAGE - 2, b"wrap")      # a store across the seam lands at 0 again
    assert vm.read(a.va, 2) == b"ap" and vm.read(a.va + 2 * PAGE, 2) == b"ap"


def test_aql_double_mapped_memory_is_two_attachments(kfd_env):
    """kfd_mem_attach maps an AQL_QUEUE_MEM BO as two attachments of the halved BO: a queue
    ring must start a mapping of exactly ring_size (kfd_queue_buffer_get), so a 2 x 4 KiB
    double-mapped ring is a 4 KiB ring on gfx9+ (only gfx7/8 count it twice)."""
    env = kfd_env
    kw = dict(env.queue_buffers(Q_AQL)["kwargs"])
    ring = env.alloc(2 * PAGE, GTT | WRITABLE | AQL_MEM)
    info = env.kfd.create_queue(**dict(kw, ring_base=ring.va, ring_size=4096))
    assert env.process.queues[info.queue_id].ring_base == ring.va
    with pytest.raises(KFDInvalidArgument):
        env.kfd.create_queue(**dict(kw, ring_base=ring.va, ring_size=8192))
    with pytest.raises(KFDBusy):                # the first attachment holds the queue's ring
        env.kfd.unmap_memory(handle=ring.handle, gpu_ids=[ring.gpu_id])


def test_userptr_aql_memory_aliases_the_first_half(kfd_env):
    env = kfd_env
    host = env.port.mmap(0, 2 * PAGE, PROT_RW, int(lib.MAP_PRIVATE | lib.MAP_ANONYMOUS), -1, 0)
    va = env.reserve_va(2 * PAGE)
    b = env.alloc(2 * PAGE, USERPTR | WRITABLE | AQL_MEM, va=va, mmap_offset=host)
    vm = env.process.pdd_by_id(b.gpu_id).vm
    ctypes.memmove(host, b"first", 5)
    assert vm.read(va + PAGE, 5) == b"first"    # the second attachment is the same page
    vm.write_u32(va + PAGE + 8, 0x11223344)
    assert ctypes.c_uint32.from_address(host + 8).value == 0x11223344


def test_vram_accounting_follows_the_kernel_order_of_flags(kfd_env):
    """amdgpu_amdkfd_reserve_mem_limit tests GTT before VRAM: a VRAM|GTT BO is placed in VRAM
    but charged to system memory, so AVAILABLE_MEMORY does not move; a VRAM BO costs its size
    rounded up to 2 MiB (vram_used_aligned), AQL_QUEUE_MEM half of it."""
    env = kfd_env
    gid = env.acquire()
    before = env.kfd.available_memory(gpu_id=gid)
    env.alloc(PAGE, VRAM | GTT | WRITABLE)
    assert env.kfd.available_memory(gpu_id=gid) == before
    env.alloc(PAGE, VRAM | WRITABLE)
    assert env.kfd.available_memory(gpu_id=gid) == before - (2 << 20)
    env.alloc((4 << 20) + 2 * PAGE, VRAM | WRITABLE | AQL_MEM)   # 2 MiB + 1 page of VRAM
    assert env.kfd.available_memory(gpu_id=gid) == before - (2 << 20) - (4 << 20)


def test_userptr_aliases_host_memory(kfd_env):
    env = kfd_env
    host = env.port.mmap(0, 2 * PAGE, PROT_RW, int(lib.MAP_PRIVATE | lib.MAP_ANONYMOUS), -1, 0)
    arr = np.frombuffer((ctypes.c_uint8 * (2 * PAGE)).from_address(host), dtype=np.uint8)
    arr[:4] = [1, 2, 3, 4]
    b = env.alloc(2 * PAGE, USERPTR | WRITABLE, va=host, mmap_offset=host)
    vm = env.process.pdd_by_id(b.gpu_id).vm
    assert vm.read(host, 4) == b"\x01\x02\x03\x04"
    vm.write(host + PAGE, b"gpu")
    assert bytes(arr[PAGE:PAGE + 3]) == b"gpu"
    with pytest.raises(OSError) as ei:                        # userptr BOs have no CPU mmap
        env.port.mmap(0, PAGE, PROT_RW, int(lib.MAP_SHARED), env.render[b.gpu_id],
                      b.mmap_offset)
    assert ei.value.errno == errno.EPERM


def test_userptr_of_unmapped_host_memory(kfd_env):
    env = kfd_env
    env.acquire()
    hole = env.reserve_va(PAGE)
    env.port.munmap(hole, PAGE)
    with pytest.raises(OSError) as ei:
        env.kfd.alloc_memory(gpu_id=env.gpu_id(), size=PAGE, flags=USERPTR,
                             va_addr=hole, mmap_offset=hole)
    assert ei.value.errno == errno.EFAULT


def test_mmap_of_a_bo_through_another_render_file_is_refused(kfd_env):
    env = kfd_env
    b = env.alloc(PAGE)
    other = env.open_render()
    with pytest.raises(OSError) as ei:
        env.port.mmap(0, PAGE, PROT_RW, int(lib.MAP_SHARED), other, b.mmap_offset)
    assert ei.value.errno == errno.EACCES
    with pytest.raises(OSError) as ei:                        # longer than the BO
        env.port.mmap(0, 2 * PAGE, PROT_RW, int(lib.MAP_SHARED), env.render[b.gpu_id],
                      b.mmap_offset)
    assert ei.value.errno == errno.EINVAL


def test_free_and_handles(kfd_env):
    env = kfd_env
    b = env.alloc(PAGE)
    assert b.handle >> 32 == b.gpu_id
    env.free(b)
    assert all(bo.handle != b.handle for bo in env.process.live_bos())


def test_doorbell_and_mmio_bos(kfd_env):
    env = kfd_env
    gid = env.acquire()
    d = env.alloc(8192, DOORBELL | WRITABLE, cpu=True)                   # one 8 KiB slice
    assert d.cpu
    a = env.kfd.alloc_memory(gpu_id=gid, size=PAGE, flags=MMIO | WRITABLE,
                             va_addr=env.reserve_va(PAGE))
    assert a.mmap_offset == MMIO_TYPE | (gid << 46)
    addr = env.kfd.mmap(offset=a.mmap_offset, length=PAGE)
    assert addr
    with pytest.raises(OSError) as ei:
        env.kfd.mmap(offset=a.mmap_offset, length=2 * PAGE)
    assert ei.value.errno == errno.EINVAL


@pytest.mark.parametrize("spec,kind,extra", [
    ("gfx942", Q_PM4, {}), ("gfx942", Q_AQL, {}), ("gfx942", Q_SDMA, {}),
    ("gfx942", Q_XGMI, {}), ("gfx942", Q_ENG, {"sdma_engine_id": 15}),
    ("gfx90a", Q_AQL, {}), ("gfx1100", Q_AQL, {}), ("gfx1100", Q_PM4, {}),
    ("gfx1100", Q_SDMA, {}),
])
def test_queue_create_and_destroy(spec, kind, extra):
    env = make_env(spec)
    try:
        info, bufs = env.create_queue(kind, **extra)
        gid = env.gpu_id()
        assert info.queue_id == 0
        assert info.doorbell_offset >> 62 == 3                         # DOORBELL type
        assert (info.doorbell_offset >> 46) & 0xFFFF == gid
        assert (info.doorbell_offset & ((1 << 46) - 1)) % 8 == 0
        (q,) = env.process.live_queues()
        assert q.kind == {Q_PM4: "pm4", Q_AQL: "aql"}.get(kind, "sdma")
        assert q.ring_base == bufs["ring"].va and q.ring_size == 4096
        assert q.wptr_addr == bufs["ptrs"].va and q.rptr_addr == bufs["ptrs"].va + 8
        assert q.active and q.vm is env.process.pdd_by_id(gid).vm
        engine = env.process.pdd_by_id(gid).device.engine
        assert ("add", q) in engine.calls
        env.kfd.destroy_queue(queue_id=info.queue_id)
        assert ("remove", q) in engine.calls and env.process.live_queues() == []
        env.process.check_invariants()
    finally:
        env.port.close_port()


def test_sdma_by_engine_id_selects_the_engine_and_xgmi_is_after_pcie():
    env = make_env("gfx942")
    try:
        env.create_queue(Q_ENG, sdma_engine_id=1)
        env.create_queue(Q_XGMI)
        env.create_queue(Q_SDMA)
        qs = env.process.live_queues()
        assert [q.sdma_engine for q in qs] == [1, 2, 0]
        assert len({q.doorbell_index for q in qs}) == 3
    finally:
        env.port.close_port()


def test_queue_ids_doorbells_and_ring_size_clamp(kfd_env):
    env = kfd_env
    a, _ = env.create_queue(Q_AQL)
    b, _ = env.create_queue(Q_AQL, ring_size=256)               # raised to 1024 (row 5)
    assert (a.queue_id, b.queue_id) == (0, 1)
    assert b.ring_size == 1024
    offs = {a.doorbell_offset & 0x1FFF, b.doorbell_offset & 0x1FFF}
    assert offs == {0, 8}                                        # ids 0 and 1, 8 bytes each
    env.kfd.destroy_queue(queue_id=0)
    c, _ = env.create_queue(Q_PM4)
    assert c.queue_id == 0 and c.doorbell_offset & 0x1FFF == 0   # lowest free again


def test_doorbell_mmap_and_ring(kfd_env):
    env = kfd_env
    info, _ = env.create_queue(Q_AQL)
    gid = env.gpu_id()
    slice_off = info.doorbell_offset & ~0x1FFF
    base = env.kfd.mmap(offset=slice_off, length=8192)
    addr = base + (info.doorbell_offset & 0x1FFF)
    env.port.doorbell(addr, 41)
    (q,) = env.process.live_queues()
    assert q.doorbell_value == 41
    assert ctypes.c_uint64.from_address(addr).value == 41
    engine = env.process.pdd_by_id(gid).device.engine
    assert ("notify", q) in engine.calls
    with pytest.raises(OSError) as ei:                  # length must equal the slice (M3)
        env.kfd.mmap(offset=slice_off, length=4096)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(OSError) as ei:                  # unknown gpu id in the offset (M2)
        env.kfd.mmap(offset=DOORBELL_TYPE | (((gid + 1) & 0xFFFF) << 46), length=8192)
    assert ei.value.errno == errno.ENODEV


def test_update_queue_disable_and_reenable(kfd_env):
    env = kfd_env
    info, bufs = env.create_queue(Q_AQL)
    (q,) = env.process.live_queues()
    ring = bufs["ring"]
    env.kfd.update_queue(queue_id=info.queue_id, ring_base=ring.va, ring_size=4096,
                         percentage=0, priority=7)
    assert not q.active
    env.kfd.update_queue(queue_id=info.queue_id, ring_base=0, ring_size=4096,
                         percentage=100, priority=7)
    assert not q.active
    env.kfd.update_queue(queue_id=info.queue_id, ring_base=ring.va, ring_size=4096,
                         percentage=100, priority=3)
    assert q.active and q.priority == 3


def test_cu_mask_pairs_on_gfx1100_only():
    env = make_env("gfx1100")
    try:
        info, _ = env.create_queue(Q_AQL)
        env.kfd.set_cu_mask(queue_id=info.queue_id, mask=[0xFFFFFFFF, 0x3])
        with pytest.raises(KFDInvalidArgument):
            env.kfd.set_cu_mask(queue_id=info.queue_id, mask=[0x1, 0])
    finally:
        env.port.close_port()
    env = make_env("gfx942")
    try:
        info, _ = env.create_queue(Q_AQL)
        env.kfd.set_cu_mask(queue_id=info.queue_id, mask=[0x1])
        assert env.process.live_queues()[0].cu_mask == [1]
    finally:
        env.port.close_port()


def test_events_create(kfd_env):
    env = kfd_env
    s1 = env.kfd.create_event(event_type=0)
    s2 = env.kfd.create_event(event_type=0, auto_reset=False)
    m = env.kfd.create_event(event_type=8)
    assert (s1.event_id, s2.event_id) == (1, 2)               # id 0 reserved (E3)
    assert s1.slot_index == 1 and s1.page_offset == EVENTS_TYPE
    assert s1.trigger_data == 1
    assert m.event_id == 0x40000000 and m.page_offset == 0    # E4
    page = env.kfd.mmap(offset=EVENTS_TYPE, length=32768)
    slots = (ctypes.c_uint64 * 4096).from_address(page)
    assert slots[1] == 0xFFFFFFFFFFFFFFFF                      # UNSIGNALED (I1)


def test_user_event_page(kfd_env):
    env = kfd_env
    gid = env.acquire()
    page = env.alloc(32768, GTT | WRITABLE, cpu=True)
    e = env.kfd.create_event(event_type=0, event_page_handle=page.handle)
    assert e.event_id == 1
    assert ctypes.string_at(page.cpu, 16) == b"\xff" * 16      # filled with UNSIGNALED
    with pytest.raises(KFDInvalidArgument):                      # already set
        env.kfd.create_event(event_type=0, event_page_handle=page.handle)
    env.kfd.unmap_memory(handle=page.handle, gpu_ids=[gid])
    with pytest.raises(OSError) as ei:                           # the signal BO: EPERM
        env.kfd.free_memory(handle=page.handle)
    assert ei.value.errno == errno.EPERM


def test_clock_counters_and_misc_ioctls(kfd_env):
    env = kfd_env
    gid = env.acquire()
    c = env.kfd.get_clock_counters(gpu_id=gid)
    assert c.system_freq == 10 ** 9 and c.gpu > 0 and c.cpu > 0
    err, s = env.raw("GET_CLOCK_COUNTERS", gpu_id=0)          # unknown gpu: counter 0
    assert (err, s.gpu_clock_counter) == (0, 0)
    err, _ = env.raw("SET_TRAP_HANDLER", gpu_id=gid, tba_addr=0x1000, tma_addr=0x2000)
    assert err == 0 and env.process.pdd_by_id(gid).tba_addr == 0x1000
    err, _ = env.raw("SET_MEMORY_POLICY", gpu_id=gid, default_policy=2)
    assert err == errno.EINVAL
    err, _ = env.raw("SET_SCRATCH_BACKING_VA", gpu_id=gid, va_addr=0x5000)
    assert err == 0
    err, s = env.raw("SET_XNACK_MODE", xnack_enabled=-1)
    assert (err, s.xnack_enabled) == (0, 0)
    err, _ = env.raw("RUNTIME_ENABLE", mode_mask=3)
    assert err == 0 and env.process.ttmp_setup
    err, _ = env.raw("RUNTIME_ENABLE", mode_mask=1)
    assert err == errno.EBUSY
    err, s = env.raw("SMI_EVENTS", gpuid=gid)
    assert err == 0 and s.anon_fd > 0
    import os
    os.close(s.anon_fd)


@pytest.mark.parametrize("spec", ["gfx942", "gfx1100"])
def test_queues_on_the_real_engine_without_packets(spec):
    """The default engine (sim.gpu.GPUEngine) takes and releases queues of every kind; an
    empty ring (write pointer 0) executes nothing. No packet is written."""
    env = Env(SimPort(sim=spec))
    try:
        kinds = [Q_PM4, Q_AQL, Q_SDMA]
        infos = [env.create_queue(k)[0] for k in kinds]
        qs = env.process.live_queues()
        assert [q.kind for q in qs] == ["pm4", "aql", "sdma"]
        base = env.kfd.mmap(offset=infos[0].doorbell_offset & ~0x1FFF, length=8192)
        env.port.doorbell(base + (infos[1].doorbell_offset & 0x1FFF), 0)
        for info in infos:
            env.kfd.destroy_queue(queue_id=info.queue_id)
        assert env.process.live_queues() == []
        env.process.check_invariants()
    finally:
        env.port.close_port()


def test_close_port_frees_cpu_mappings_of_buffers():
    env = make_env()
    b = env.alloc(2 * PAGE, GTT | WRITABLE, cpu=True)
    ctypes.memmove(b.cpu, b"data", 4)
    env.port.close_port()
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= b.cpu < hi:
                assert "memfd:sim-" not in line       # the BO's pages are gone
    assert ctypes.string_at(b.cpu, 4) == bytes(4)     # a stray pointer reads zeros
