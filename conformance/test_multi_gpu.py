"""Multi-GPU: several GPUs in one KFD process — distinct ids and apertures, a buffer object mapped
on a peer GPU and written by it, peer-to-peer SDMA copies between VRAM of two GPUs, a queue on one
GPU waiting for a signal another GPU sets, and partial MAP_MEMORY_TO_GPU failures
(KFDMemoryTest.MapVramToGPUNodesTest, mGPUShareBO, P2PTest)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from pytest_amdgpu.kfd.errors import KFDError
from pytest_amdgpu.packets import pm4

from ._helpers import EINVAL, drain, needs_cpu_visible_vram, stays, u32, wait_for

pytestmark = [pytest.mark.amdgpu_area("multi_gpu"), pytest.mark.amdgpu_min_devices(2)]

TIMEOUT = 30.0


def _pair(device, devices):
    """(this test's device, a peer): the next GPU of the process after it, so each target's run
    exercises a different pair."""
    i = next(k for k, d in enumerate(devices) if d.gpu_id == device.gpu_id)
    return device, devices[(i + 1) % len(devices)]


@contextlib.contextmanager
def _queues(*specs):
    made = []
    try:
        for dev, kind in specs:
            made.append(dev.create_queue(kind, owner="multi gpu"))
        yield made
    finally:
        for q in made:
            q.destroy()


def test_gpus_are_distinct(amdgpu_devices):
    """KFDTopologyTest (several GPUs): each GPU of the process has its own gpu_id, render node
    and a GPUVM aperture entry in GET_PROCESS_APERTURES_NEW."""
    devs = amdgpu_devices
    assert len({d.gpu_id for d in devs}) == len(devs)
    assert len({d.node.prop("drm_render_minor") for d in devs}) == len(devs)
    ap = {a.gpu_id: a for a in devs[0].kfd.get_process_apertures()}
    for d in devs:
        assert d.gpu_id in ap
        assert ap[d.gpu_id].gpuvm_limit > ap[d.gpu_id].gpuvm_base


@pytest.mark.parametrize("location", ["vram", "gtt"])
def test_buffer_shared_with_peer(amdgpu_device, amdgpu_devices, amdgpu_buffer, amdgpu_signal,
                                 location):
    """mGPUShareBO / KFDMemoryTest.MapVramToGPUNodesTest: a buffer of this GPU mapped on the peer
    GPU is written by the peer and read back by this GPU (COPY_DATA into a GTT buffer) at the
    same address."""
    d0, d1 = _pair(amdgpu_device, amdgpu_devices)
    if location == "vram":
        needs_cpu_visible_vram(d0)
    shared = amdgpu_buffer(4096, location, device=d0)
    shared.map_to(d1)
    out = amdgpu_buffer(4096, "gtt", device=d0)
    with _queues((d0, "pm4"), (d1, "pm4")) as (q0, q1):
        q1.write_data(shared.gpu_address + 16, [0x9E111])
        drain(q1, lambda v: amdgpu_signal(v, device=d1))
        q0.submit(pm4.CopyData(src_sel=2, dst_sel=2, src_addr=shared.gpu_address + 16,
                               dst_addr=out.gpu_address, wr_confirm=1))
        drain(q0, lambda v: amdgpu_signal(v, device=d0))
    assert u32(out) == 0x9E111
    assert u32(shared, 4) == 0x9E111
    shared.unmap_from(d1)


def test_p2p_sdma_copy(amdgpu_device, amdgpu_devices, amdgpu_buffer, amdgpu_signal):
    """P2PTest: the peer GPU's SDMA engine copies 1 MiB from this GPU's VRAM (mapped on the peer)
    into its own VRAM, exactly."""
    d0, d1 = _pair(amdgpu_device, amdgpu_devices)
    needs_cpu_visible_vram(d0)
    needs_cpu_visible_vram(d1)
    size = 1 << 20
    src = amdgpu_buffer(size, "vram", device=d0)
    dst = amdgpu_buffer(size + 4096, "vram", device=d1)
    data = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8)
    src.view(np.uint8)[:] = data
    dst.view(np.uint8)[size:] = 0xEE
    src.map_to(d1)
    with _queues((d1, "sdma")) as (q,):
        q.copy(dst.gpu_address, src.gpu_address, size)
        drain(q, lambda v: amdgpu_signal(v, device=d1))
    assert np.array_equal(dst.view(np.uint8)[:size], data)
    assert (dst.view(np.uint8)[size:] == 0xEE).all()
    src.unmap_from(d1)


def test_cross_device_wait(amdgpu_device, amdgpu_devices, amdgpu_buffer, amdgpu_signal):
    """P2PTest / mGPUShareBO (cross-device waits, conformance-map area 10): A queue on the peer
    GPU waits (WAIT_REG_MEM) for a signal that a queue on this GPU sets (RELEASE_MEM) once the
    CPU opens this GPU's gate; the peer's marker appears only after that."""
    d0, d1 = _pair(amdgpu_device, amdgpu_devices)
    gate = amdgpu_buffer(4096, "gtt", device=d0)
    marker = amdgpu_buffer(4096, "gtt", device=d1)
    sig = amdgpu_signal(0, device=d0)
    with _queues((d0, "pm4"), (d1, "pm4")) as (q0, q1):
        q1.wait_for(sig, 1, cond="==")
        q1.write_data(marker.gpu_address, [0xD1])
        q0.wait_reg_mem(gate.gpu_address, 1, function="==")
        q0.signal(sig, 1)
        stays(lambda: u32(marker), 0, seconds=0.1, what="the peer GPU's marker before the gate")
        gate.view(np.uint32)[0] = 1
        wait_for(lambda: u32(marker), lambda v: v == 0xD1, what="the peer GPU's marker")


def test_partial_map_reports_n_success(amdgpu_device, amdgpu_devices, amdgpu_buffer):
    """KFDMemoryTest.MapVramToGPUNodesTest (partial map): MAP_MEMORY_TO_GPU over [the peer GPU,
    an unknown gpu_id] maps the peer, then fails with EINVAL and n_success = 1, so the caller can
    resume; UNMAP of the peer then works (facts-kfd.md §2.5 row 7)."""
    d0, d1 = _pair(amdgpu_device, amdgpu_devices)
    buf = amdgpu_buffer(4096, "gtt", device=d0)
    kfd = d0.kfd
    with pytest.raises(KFDError) as info:
        kfd.map_memory(handle=buf.handle, gpu_ids=[d1.gpu_id, 0xFFFF0000])
    assert info.value.errno == EINVAL
    assert info.value.n_success == 1
    assert kfd.unmap_memory(handle=buf.handle, gpu_ids=[d1.gpu_id]) == 1
