"""Lifecycle of the runtime objects on both ports: open/close, memory of every location,
peer mappings, queues of every kind, doorbells, events, leak accounting and rollback.

Expected values come from the driver (AVAILABLE_MEMORY, errno of a repeated ioctl, the port's
record of the ioctl arguments), from the KFD header constants (via the C compiler, `abi.lib`)
and from facts-kfd.md — not from the runtime under test.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest

from pytest_amdgpu.errors import BackendUnavailable, LeakError, UsageError
from pytest_amdgpu.kfd import KFDError, KFDInvalidArgument
from pytest_amdgpu.kfd.abi import lib
from pytest_amdgpu.runtime import (
    AQLQueue,
    Buffer,
    Event,
    PM4Queue,
    SDMAQueue,
    open_device,
    open_devices,
)

from .conftest import needs_cpu_visible_vram, open_on

MiB = 1 << 20
KFD_MMAP_TYPE_DOORBELL = 3 << 62          # facts-kfd.md §3 M1 (kfd_priv.h KFD_MMAP_TYPE_*)
KFD_MMAP_GPU_ID_SHIFT = 46                # facts-kfd.md §3 M1 (bits [61:46])
DOORBELL_SLICE = 8192                     # facts-kfd.md §3 M4 (SOC15, 8-byte doorbells)


def ioctl_calls(device, name):
    return [c for c in device.port.trace if c.op == "ioctl" and c.name == name]


# -- open / close --------------------------------------------------------------------------------

def test_open_close(backend):
    dev = open_on(backend)
    node_ids = [n.gpu_id for n in dev.process.topology.gpus]
    assert dev.gpu_id in node_ids
    assert dev.target.gfx_target_version == dev.node.properties["gfx_target_version"]
    if backend == "sim":
        assert dev.name == "gfx942"
    # ACQUIRE_VM went to the driver with a render node fd for this GPU
    acquired = [c.args["gpu_id"] for c in ioctl_calls(dev, "ACQUIRE_VM") if c.errno == 0]
    if dev.port.recording and acquired:      # a reused hardware process acquired it earlier
        assert dev.gpu_id in acquired
    dev.close()
    dev.close()                                  # double close is safe
    assert dev.closed
    with pytest.raises(UsageError, match="closed"):
        dev.alloc(4096, "gtt")


def test_context_manager_closes():
    with open_device("sim", target="gfx90a") as dev:
        buf = dev.alloc(4096, "gtt")
        assert dev.name == "gfx90a"
    assert dev.closed and buf.freed


@pytest.mark.parametrize("target", ["gfx90a", "gfx942", "gfx1100"])
def test_sim_target_defines_machine(target):
    with open_device("sim", target=target) as dev:
        assert dev.name == target
        assert dev.node.gfx_target_version == dev.target.gfx_target_version


def test_target_selects_gpu_in_mixed_machine():
    devs = open_devices("sim", sim="gfx942,gfx1100")
    try:
        assert [d.name for d in devs] == ["gfx942", "gfx1100"]
        assert devs[0].process is devs[1].process
    finally:
        for d in devs:
            d.close()
    with open_device("sim", sim="gfx942,gfx1100", target="gfx1100") as dev:
        assert dev.name == "gfx1100"
    with pytest.raises(BackendUnavailable, match="gfx90a"):
        open_device("sim", sim="gfx942", target="gfx90a")
    with pytest.raises(BackendUnavailable, match="index=2"):
        open_device("sim", sim="gfx942x2", index=2)


def test_port_given_by_caller_shares_one_process():
    from pytest_amdgpu.backends import get_backend

    port = get_backend("sim").make_port(sim="gfx942x2")
    try:
        a = open_device(port=port, index=0)
        b = open_device(port=port, index=1)
        assert a.process is b.process
        assert a.gpu_id != b.gpu_id
        a.close()
        b.close()
        # the process outlives its devices on a port the caller owns: reopening reuses it
        c = open_device(port=port)
        assert c.process is a.process
        c.close()
    finally:
        port.close_port()


# -- memory -------------------------------------------------------------------------------------

@pytest.mark.parametrize("location", ["vram", "gtt", "userptr"])
def test_alloc_round_trip(backend, location):
    with open_on(backend) as dev:
        if location == "vram":
            needs_cpu_visible_vram(dev)
        buf = dev.alloc(3 * 4096 + 100, location, owner="test")
        assert isinstance(buf, Buffer)
        assert buf.cpu_address == buf.gpu_address
        assert buf.size == 3 * 4096 + 100
        pattern = (np.arange(buf.size // 4, dtype=np.uint32) * 2654435761) & 0xFFFFFFFF
        buf.view(np.uint32)[:] = pattern
        assert buf.read(0, buf.size // 4 * 4) == pattern.astype("<u4").tobytes()
        buf.write(8, b"\xaa\xbb\xcc\xdd")
        assert buf.view(np.uint8, 4, offset=8).tolist() == [0xAA, 0xBB, 0xCC, 0xDD]
        buf.fill(0x5A)
        assert set(buf.read()) == {0x5A}
        buf.fill(0x01020304, np.uint32)
        assert buf.read(0, 8) == bytes([4, 3, 2, 1, 4, 3, 2, 1])
        # the driver saw the location's domain flag (kfd_ioctl.h values)
        flag = {"vram": lib.KFD_IOC_ALLOC_MEM_FLAGS_VRAM, "gtt": lib.KFD_IOC_ALLOC_MEM_FLAGS_GTT,
                "userptr": lib.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR}[location]
        allocs = [c for c in ioctl_calls(dev, "ALLOC_MEMORY_OF_GPU")
                  if c.args.get("va_addr") == buf.gpu_address]
        if dev.port.recording:
            assert allocs and allocs[-1].args["flags"] & flag
            if location == "userptr":
                assert allocs[-1].args["mmap_offset"] == buf.gpu_address
        buf.free()
        buf.free()
        assert buf.freed
        assert dev.live_objects() == []
        # the handle is gone from the driver: freeing it again is EINVAL (facts-kfd.md §2.4)
        with pytest.raises(KFDInvalidArgument):
            dev.kfd.free_memory(handle=buf.handle)


def test_vram_accounting_restored(backend):
    with open_on(backend) as dev:
        before = dev.available_memory()
        buf = dev.alloc(8 * MiB, "vram", cpu_access=dev.large_bar)
        assert dev.available_memory() <= before - 8 * MiB
        buf.free()
        assert dev.available_memory() == before


def test_vram_without_cpu_access(backend):
    with open_on(backend) as dev:
        buf = dev.alloc(4096, "vram", cpu_access=False)
        assert buf.cpu_address is None
        with pytest.raises(UsageError, match="cpu_access=False"):
            buf.view()
        buf.free()


def test_alloc_argument_errors(device):
    with pytest.raises(UsageError, match="size"):
        device.alloc(0)
    with pytest.raises(UsageError, match="location"):
        device.alloc(4096, "lds")
    with pytest.raises(UsageError, match="size"):
        device.alloc(-1)
    buf = device.alloc(4096, "gtt")
    with pytest.raises(UsageError, match="outside"):
        buf.read(4000, 200)
    with pytest.raises(UsageError, match="outside"):
        buf.write(4095, b"ab")
    buf.free()
    with pytest.raises(UsageError, match="freed"):
        buf.view()


def test_alloc_too_large_leaks_nothing(backend):
    with open_on(backend) as dev:
        before = dev.available_memory()
        with pytest.raises(KFDError) as err:
            dev.alloc(before + 64 * MiB, "vram", cpu_access=False)
        assert err.value.errno == errno.ENOMEM
        assert dev.available_memory() == before
        assert dev.live_objects() == []


def test_alloc_rollback_when_map_fails(monkeypatch):
    with open_device("sim") as dev:
        before = dev.available_memory()
        kfd = dev.process.kfd

        def failing_map(**kw):
            raise KFDInvalidArgument("MAP_MEMORY_TO_GPU", errno.EINVAL, "injected", kw)

        monkeypatch.setattr(kfd, "map_memory", failing_map)
        with pytest.raises(KFDInvalidArgument, match="injected"):
            dev.alloc(2 * MiB, "vram")
        monkeypatch.undo()
        assert dev.available_memory() == before
        frees = ioctl_calls(dev, "FREE_MEMORY_OF_GPU")
        allocs = [c for c in ioctl_calls(dev, "ALLOC_MEMORY_OF_GPU") if c.args["size"] == 2 * MiB]
        assert allocs and frees and frees[-1].errno == 0
        assert frees[-1].args["handle"] == allocs[-1].out["handle"]
        unmapped = [c for c in dev.port.trace if c.op == "munmap"
                    and c.args["addr"] == allocs[-1].args["va_addr"]]
        assert unmapped
        assert dev.live_objects() == []


def test_peer_map_two_gpus():
    devs = open_devices("sim", sim="gfx942x2")
    try:
        a, b = devs
        buf = a.alloc(64 * 1024, "vram")
        assert buf.mapped_gpus == [a.gpu_id]
        buf.map_to(b)
        buf.map_to(b)                     # already mapped: no second ioctl effect
        assert buf.mapped_gpus == [a.gpu_id, b.gpu_id]
        buf.unmap_from(b)
        # the driver agrees it is no longer mapped on b: UNMAP is EINVAL (facts-kfd.md §2.5)
        with pytest.raises(KFDInvalidArgument):
            a.kfd.unmap_memory(handle=buf.handle, gpu_ids=[b.gpu_id])
        buf.map_to(b)
        buf.free()                        # unmaps from both, then frees
        maps = [c for c in ioctl_calls(a, "UNMAP_MEMORY_FROM_GPU") if c.errno == 0
                and c.args["handle"] == buf.handle]
        assert maps
        other = a.alloc(4096, "gtt")
        with pytest.raises(UsageError, match="not mapped"):
            other.unmap_from(b)
        other.free()
    finally:
        for d in devs:
            d.close()


def test_peer_map_refuses_other_process():
    with open_device("sim") as a, open_device("sim") as b:
        buf = a.alloc(4096, "gtt")
        with pytest.raises(UsageError, match="another KFD process"):
            buf.map_to(b)


# -- queues -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,cls", [("pm4", PM4Queue), ("aql", AQLQueue), ("sdma", SDMAQueue)])
def test_queue_create_destroy(backend, kind, cls):
    with open_on(backend) as dev:
        q = dev.create_queue(kind, ring_size=4096)
        assert isinstance(q, cls)
        assert q.queue_id >= 0
        # doorbell offset: DOORBELL mmap type, gpu_id in [61:46], 8-byte slot in the slice
        assert q.doorbell_offset >> 62 == KFD_MMAP_TYPE_DOORBELL >> 62
        assert (q.doorbell_offset >> KFD_MMAP_GPU_ID_SHIFT) & 0xFFFF == dev.gpu_id & 0xFFFF
        in_slice = q.doorbell_offset & (DOORBELL_SLICE - 1)
        assert in_slice % 8 == 0
        base = dev.process.gpu(dev.gpu_id).doorbell_base        # the mmapped slice
        assert q.doorbell_address - base == in_slice
        assert q.read_pointer == q.write_pointer == 0
        assert dev.live_objects()[0].kind == "queue"
        q.destroy()
        q.destroy()
        assert dev.live_objects() == []
        # the driver no longer knows the queue (DESTROY of an unknown id is EINVAL, §2.7)
        with pytest.raises(KFDInvalidArgument):
            dev.kfd.destroy_queue(queue_id=q.queue_id)


def test_queue_sizes_per_target(sim_device):
    """CREATE_QUEUE on every target: the simulated driver checks EOP / CWSR sizes as KFD
    does (facts-kfd.md §2.6 row 14), so creation itself is the check."""
    for kind in ("pm4", "aql"):
        q = sim_device.create_queue(kind, ring_size=1024)
        creates = [c for c in ioctl_calls(sim_device, "CREATE_QUEUE") if c.errno == 0]
        assert creates[-1].args["eop_buffer_size"] == 4096          # facts-kfd.md §5
        q.destroy()


def test_doorbell_slice_mapped_once(device):
    qs = [device.create_queue(k, ring_size=4096) for k in ("pm4", "pm4", "sdma", "aql")]
    base = device.process.gpu(device.gpu_id).doorbell_base
    offsets = [q.doorbell_address - base for q in qs]
    assert offsets == [q.doorbell_offset & (DOORBELL_SLICE - 1) for q in qs]
    assert all(0 <= off < DOORBELL_SLICE for off in offsets)
    assert len(set(offsets)) == len(qs)
    doorbell_mmaps = [c for c in device.port.trace if c.op == "mmap"
                      and c.args["length"] == DOORBELL_SLICE
                      and c.args["offset"] >> 62 == KFD_MMAP_TYPE_DOORBELL >> 62]
    if device.port.recording:
        assert len(doorbell_mmaps) == 1
    for q in qs:
        q.destroy()


def test_queue_argument_errors(device):
    with pytest.raises(UsageError, match="power of two"):
        device.create_queue("pm4", ring_size=3000)
    with pytest.raises(UsageError, match="power of two"):
        device.create_queue("pm4", ring_size=512)
    with pytest.raises(UsageError, match="queue kind"):
        device.create_queue("gfx")
    with pytest.raises(UsageError, match="sdma_engine"):
        device.create_queue("pm4", sdma_engine=0)


@pytest.mark.parametrize("field,value", [("priority", 16), ("percentage", 101)])
def test_queue_create_failure_rolls_back(backend, field, value):
    with open_on(backend) as dev:
        before = dev.available_memory()
        with pytest.raises(KFDInvalidArgument) as err:
            dev.create_queue("pm4", **{field: value})
        assert err.value.ioctl == "CREATE_QUEUE"
        assert dev.available_memory() == before
        assert dev.live_objects() == []


def test_queue_update_and_cu_mask(device):
    q = device.create_queue("pm4", ring_size=4096)
    q.disable()
    assert not q.enabled and q.percentage == 0
    q.enable()
    assert q.enabled and q.percentage == 100
    q.update(ring=0)
    assert not q.enabled
    q.update(ring=q.ring, priority=3)
    assert q.enabled and q.priority == 3
    q.set_cu_mask((1 << device.cu_count) - 1)
    assert len(q.cu_mask) == (device.cu_count + 31) // 32
    q.destroy()
    with pytest.raises(UsageError, match="destroyed"):
        q.update(priority=1)


# -- events -------------------------------------------------------------------------------------

def test_event_set_wait_timeout(device):
    ev = device.create_event("signal", auto_reset=True)
    assert ev.event_id > 0 and ev.slot_index == ev.event_id   # facts-kfd.md §2.8 E3
    assert ev.mailbox_address == device.process.event_page.gpu_address + 8 * ev.slot_index
    ev.set()
    assert ev.wait(timeout=1.0) is True
    assert ev.wait(timeout=0.05) is False            # auto-reset: consumed by the first wait
    manual = device.create_event("signal", auto_reset=False)
    manual.set()
    assert manual.wait(1.0) and manual.wait(1.0)
    manual.reset()
    assert manual.wait(0.02) is False
    ev.set()
    assert Event.wait_any([ev, manual], timeout=1.0)
    manual.set()
    ev.set()
    assert Event.wait_all([ev, manual], timeout=1.0)
    assert Event.wait_all([ev, manual], timeout=0.02) is False
    ev.destroy()
    manual.destroy()
    with pytest.raises(KFDInvalidArgument):
        device.kfd.set_event(event_id=ev.event_id)
    assert device.live_objects() == []


def test_event_kinds(device):
    mem = device.create_event("memory")
    assert mem.slot_index is None and mem.mailbox_address is None
    with pytest.raises(KFDInvalidArgument):         # SET of a non-signal event (§2.8 SET)
        mem.set()
    assert mem.wait(0.01) is False
    mem.destroy()
    with pytest.raises(UsageError, match="event kind"):
        device.create_event("bogus")


# -- accounting ---------------------------------------------------------------------------------

def test_live_objects_and_close_reports_leaks():
    with open_device("sim") as dev:
        buf = dev.alloc(4096, "gtt", owner="alice")
        q = dev.create_queue("sdma", ring_size=4096, owner="bob")
        sig = dev.create_signal(5, owner="carol")
        ev = dev.create_event(owner="dave")
        live = dev.live_objects()
        assert [(o.kind, o.owner) for o in live] == [
            ("buffer", "alice"), ("queue", "bob"), ("signal", "carol"), ("event", "dave")]
        assert all(o.description for o in live)
        leaks = dev.close()
        assert {o.kind for o in leaks} == {"buffer", "queue", "signal", "event"}
        assert buf.freed and q.destroyed and sig.freed and ev.destroyed
        assert dev.close() == []


def test_close_releases_in_the_driver():
    a, b = open_devices("sim", sim="gfx942x2")
    try:
        before = b.kfd.available_memory(gpu_id=a.gpu_id)
        a.alloc(4 * MiB, "vram")
        q = a.create_queue("pm4", ring_size=4096)
        with pytest.raises(LeakError, match="buffer") as err:
            a.close(check_leaks=True)
        assert "queue" in str(err.value)
        # the process lives on (b is open): a's memory and queue are really gone
        assert b.kfd.available_memory(gpu_id=a.gpu_id) == before
        with pytest.raises(KFDInvalidArgument):
            b.kfd.destroy_queue(queue_id=q.queue_id)
    finally:
        a.close()
        b.close()


def test_hardware_style_backend_shares_one_process():
    """A non-simulated backend stands for the one OS process (facts-kfd.md §1.2-1.3): every
    open_device reaches the same Process, which outlives its devices, so the render-node
    files bound by ACQUIRE_VM and the event page are set up once (§1.A, §2.8 E1)."""
    from pytest_amdgpu import backends

    sim = backends.get_backend("sim")
    name = "test-shared-process"
    backends.register_backend(backends.Backend(
        name, lambda **opts: sim.make_port(sim="gfx942x2", record=True),
        lambda: (True, "test backend"), simulated=False), replace=True)
    try:
        a = open_device(name)
        b = open_device(name, index=1)
        assert a.process is b.process and not a.process.owns_port
        proc = a.process
        a.close()
        b.close()
        assert not proc.closed                     # dormant, not torn down
        c = open_device(name)
        assert c.process is proc
        acquires = [call for call in proc.port.trace
                    if call.op == "ioctl" and call.name == "ACQUIRE_VM"]
        page_events = [call for call in proc.port.trace if call.op == "ioctl"
                       and call.name == "CREATE_EVENT" and call.args["event_page_offset"]]
        assert len(acquires) == 2 and len(page_events) == 1
        buf = c.alloc(4096, "gtt", owner="leak")
        leaks = proc.terminate()
        assert [leak.obj for leak in leaks] == [buf]
        assert proc.closed and c.closed
        d = open_device(name)                      # a new port: a new process
        assert d.process is not proc
        d.process.terminate()
    finally:
        backends._BACKENDS.pop(name, None)
