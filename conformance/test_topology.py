"""Device and topology: /dev/kfd open/close, GET_VERSION, the sysfs node properties, memory
banks, caches and io-links, the process apertures, clock counters, and the ioctl dispatcher's
answers to unknown requests and unknown GPUs (KFDOpenCloseKFDTest, KFDTopologyTest)."""

from __future__ import annotations

import errno
import itertools
import time

import pytest

from pytest_amdgpu.kfd.abi import IOCTLS, address_of, ffi
from pytest_amdgpu.kfd.port import TOPOLOGY_PATH

from ._helpers import (
    EINVAL,
    ENOTTY,
    EPERM,
    GFX_TARGET_VERSION,
    WAVE_SIZE,
    kfd_errno,
)

pytestmark = pytest.mark.amdgpu_area("topology")

BAD_GPU_ID = 0xFFFF0000      # not a 16-bit gpu_id hash (facts-kfd.md §6.1 gpu_id)


def _ioc(direction: int, nr: int, size: int) -> int:
    """Linux _IOC for type 'K' (asm-generic/ioctl.h: dir 30, size 16, type 8, nr 0)."""
    return direction << 30 | size << 16 | ord("K") << 8 | nr


def test_get_version_major_is_1(amdgpu_device):
    """KFDOpenCloseKFDTest.OpenAndClose / KFDTopologyTest.BasicTest: GET_VERSION never fails and
    reports major version 1 and a minor version of at least 1.11 (the 6.1 UAPI header)."""
    v = amdgpu_device.kfd.get_version()
    assert v.major == 1
    assert v.minor >= 11


def test_second_open_shares_the_process(amdgpu_device, amdgpu_queue, amdgpu_buffer,
                                        amdgpu_signal):
    """KFDOpenCloseKFDTest (double open, close): a second open of /dev/kfd in the same process
    works and answers GET_VERSION; closing it does not tear the KFD process down, so queues made
    through the first fd keep running (facts-kfd.md §1.3, §1.7)."""
    port = amdgpu_device.port
    fd = port.open("/dev/kfd")
    try:
        arg = ffi.new("struct kfd_ioctl_get_version_args *")
        assert port.ioctl(fd, IOCTLS["GET_VERSION"].request, address_of(arg)) == 0
        assert arg.major_version == 1
    finally:
        port.close(fd)
    buf = amdgpu_buffer(4096, "gtt")
    sig = amdgpu_signal(0)
    amdgpu_queue.write_data(buf.gpu_address, [0x600DF00D])
    amdgpu_queue.signal(sig, 1)
    sig.wait(1, timeout=10)
    assert int(buf.view("u4")[0]) == 0x600DF00D


def test_ioctl_on_closed_fd_is_ebadf(amdgpu_device):
    """KFDOpenCloseKFDTest.InvalidHandle: an ioctl on a closed /dev/kfd fd fails with EBADF and
    closing it a second time fails with EBADF too."""
    port = amdgpu_device.port
    fd = port.open("/dev/kfd")
    port.close(fd)
    arg = ffi.new("struct kfd_ioctl_get_version_args *")
    assert port.ioctl(fd, IOCTLS["GET_VERSION"].request, address_of(arg)) == errno.EBADF
    with pytest.raises(OSError) as info:
        port.close(fd)
    assert info.value.errno == errno.EBADF


@pytest.mark.parametrize("nr", [0x00, 0xC0, 0xFF], ids=["nr00", "nrC0", "nrFF"])
def test_unknown_ioctl_is_enotty(amdgpu_device, nr):
    """KFDOpenCloseKFDTest.InvalidHandle (bad requests): KFD dispatcher (kfd_chardev.c
    kfd_ioctl): request number 0 (below AMDKFD_COMMAND_START) and numbers past the ioctl table
    (0xC0, 0xFF: past the upstream table and the DKMS one with its 0x80-0x86 additions) are
    ENOTTY (facts-kfd.md §2.0)."""
    arg = ffi.new("uint8_t[64]")
    request = _ioc(3, nr, 8)
    assert amdgpu_device.port.ioctl(amdgpu_device.kfd.fd, request, address_of(arg)) == ENOTTY


@pytest.mark.parametrize("nr", [0x0D, 0x0E, 0x0F, 0x10])
def test_deprecated_debug_ioctls_are_eperm(amdgpu_device, nr):
    """KFDDBGTest (deprecated debugger interface): The deprecated DBG_REGISTER / DBG_UNREGISTER /
    DBG_ADDRESS_WATCH / DBG_WAVE_CONTROL ioctls (0x0D-0x10) answer EPERM (facts-kfd.md §2.0)."""
    arg = ffi.new("uint8_t[64]")
    request = _ioc(1, nr, 8)
    assert amdgpu_device.port.ioctl(amdgpu_device.kfd.fd, request, address_of(arg)) == EPERM


def test_node_properties(amdgpu_device):
    """KFDTopologyTest.BasicTest: the GPU node's properties describe the target: the
    gfx_target_version of its processor, its wave size, AMD's PCI vendor id, SIMDs and a render
    node; local_mem_size is always printed as 0 (facts-kfd.md §6.1, §6.3)."""
    node = amdgpu_device.node
    name = amdgpu_device.name
    assert node.prop("gfx_target_version") == GFX_TARGET_VERSION[name]
    assert node.prop("wave_front_size") == WAVE_SIZE[name]
    assert node.prop("vendor_id") == 0x1002
    assert node.prop("cpu_cores_count") == 0
    assert node.prop("simd_count") > 0
    assert node.prop("simd_count") % node.prop("simd_per_cu") == 0
    assert node.prop("local_mem_size") == 0
    assert node.prop("drm_render_minor") >= 128
    assert node.gpu_id != 0 and node.gpu_id < 1 << 16
    assert node.prop("num_sdma_engines") >= 1
    assert node.prop("num_cp_queues") >= 1


def test_node_files_agree(amdgpu_device):
    """KFDTopologyTest.BasicTest: nodes/N/gpu_id holds the gpu_id in decimal, and the counts in
    properties match the mem_banks / caches / io_links directories (facts-kfd.md §6)."""
    node = amdgpu_device.node
    port = amdgpu_device.port
    base = f"{TOPOLOGY_PATH}/nodes/{node.index}"
    assert int(port.read_sysfs(f"{base}/gpu_id").strip()) == node.gpu_id
    assert len(port.list_sysfs(f"{base}/mem_banks")) == node.prop("mem_banks_count")
    assert len(node.mem_banks) == node.prop("mem_banks_count")
    assert len(node.caches) == node.prop("caches_count")
    assert len(node.io_links) == node.prop("io_links_count")
    gen = int(port.read_sysfs(f"{TOPOLOGY_PATH}/generation_id").strip())
    assert gen == amdgpu_device.process.topology.generation_id


def test_invalid_node_is_absent(amdgpu_device):
    """KFDTopologyTest (invalid node ids): a node index past the last one has no sysfs directory."""
    port = amdgpu_device.port
    count = len(port.list_sysfs(f"{TOPOLOGY_PATH}/nodes"))
    with pytest.raises(OSError) as info:
        port.read_sysfs(f"{TOPOLOGY_PATH}/nodes/{count}/properties")
    assert info.value.errno == errno.ENOENT


def test_memory_bank_is_vram(amdgpu_device):
    """KFDTopologyTest (memory-bank properties): a dGPU's first bank is frame buffer (heap_type 1
    public or 2 private) with a non-zero size (facts-kfd.md §6.1)."""
    bank = amdgpu_device.node.mem_banks[0]
    assert bank["heap_type"] in (1, 2)
    assert bank["size_in_bytes"] > 0
    assert bank["size_in_bytes"] % 4096 == 0


def test_caches_describe_gpu_caches(amdgpu_device):
    """KFDTopologyTest (cache properties): every GPU cache has a level, a non-zero size, a line
    size that is a power of two, and a HSACU type bit (facts-kfd.md §6.1)."""
    caches = amdgpu_device.node.caches
    if not caches:
        pytest.skip("the node lists no caches")
    for c in caches:
        assert c["level"] >= 1
        assert c["size"] > 0
        line = c["cache_line_size"]
        assert line > 0 and line & (line - 1) == 0
        assert c["type"] & 8, f"cache {c} lacks the HSACU type bit"


def test_io_links_start_at_the_node(amdgpu_device):
    """KFDTopologyTest (io-link properties): every io_link of a GPU starts at that node, ends at
    another existing node and has a known type (2 PCIe, 11 XGMI)."""
    node = amdgpu_device.node
    indices = {n.index for n in amdgpu_device.process.topology.nodes}
    assert node.io_links, "a GPU node has at least its link to the CPU"
    for link in node.io_links:
        assert link["node_from"] == node.index
        assert link["node_to"] in indices and link["node_to"] != node.index
        assert link["type"] in (2, 11)


def test_apertures_valid_and_disjoint(amdgpu_device):
    """KFDTopologyTest (apertures): GET_PROCESS_APERTURES_NEW gives the v9 layout used by gfx9,
    gfx10 and gfx11: LDS at 1 << 48, scratch at 2 << 48, each 4 GiB, GPUVM from 16 MiB; the three
    do not overlap (facts-kfd.md §2.2, kfd_flat_memory.c)."""
    ap = {a.gpu_id: a for a in amdgpu_device.kfd.get_process_apertures()}[amdgpu_device.gpu_id]
    assert ap.lds_base == 1 << 48 and ap.lds_limit == (1 << 48) | 0xFFFFFFFF
    assert ap.scratch_base == 2 << 48 and ap.scratch_limit == (2 << 48) | 0xFFFFFFFF
    assert ap.gpuvm_base == 0x1000000
    assert ap.gpuvm_limit > ap.gpuvm_base
    spans = sorted([(ap.lds_base, ap.lds_limit), (ap.scratch_base, ap.scratch_limit),
                    (ap.gpuvm_base, ap.gpuvm_limit)])
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end < start


def test_apertures_count_query(amdgpu_device):
    """KFDTopologyTest (apertures): GET_PROCESS_APERTURES_NEW with num_of_nodes = 0 returns the
    number of the process's GPUs and copies nothing; with room for one entry it fills exactly one
    (facts- kfd.md §2.2)."""
    spec = IOCTLS["GET_PROCESS_APERTURES_NEW"]
    port, fd = amdgpu_device.port, amdgpu_device.kfd.fd
    arg = ffi.new("struct kfd_ioctl_get_process_apertures_new_args *")
    arg.num_of_nodes = 0
    assert port.ioctl(fd, spec.request, address_of(arg)) == 0
    gpus = len(amdgpu_device.process.topology.gpus)
    assert arg.num_of_nodes == gpus
    entries = ffi.new("struct kfd_process_device_apertures[2]")
    entries[1].gpu_id = 0xDEAD
    arg.kfd_process_device_apertures_ptr = address_of(entries)
    arg.num_of_nodes = 1
    assert port.ioctl(fd, spec.request, address_of(arg)) == 0
    assert arg.num_of_nodes == 1
    assert entries[0].gpu_id in {n.gpu_id for n in amdgpu_device.process.topology.gpus}
    assert entries[1].gpu_id == 0xDEAD


def test_clock_counters(amdgpu_device):
    """KFDTopologyTest / KFDPerfCountersTest (clock counters): GET_CLOCK_COUNTERS: the GPU
    counter and CLOCK_MONOTONIC_RAW advance, the system clock frequency is 1 GHz (ns); an unknown
    gpu_id gives GPU counter 0, not an error (facts-kfd.md §2.10)."""
    a = amdgpu_device.clock_counters()
    b = amdgpu_device.clock_counters()
    assert b.gpu >= a.gpu > 0
    assert b.cpu > a.cpu
    assert a.system_freq == 1_000_000_000
    assert abs(a.cpu - time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)) < 60 * 10**9
    other = amdgpu_device.kfd.get_clock_counters(gpu_id=BAD_GPU_ID)
    assert other.gpu == 0


def _bad_gpu_calls(kfd):
    return {
        "ALLOC_MEMORY_OF_GPU": lambda: kfd.alloc_memory(gpu_id=BAD_GPU_ID, size=4096,
                                                        flags=0x2 | 0x80000000),
        "AVAILABLE_MEMORY": lambda: kfd.available_memory(gpu_id=BAD_GPU_ID),
        "CREATE_QUEUE": lambda: kfd.create_queue(gpu_id=BAD_GPU_ID, queue_type=0, ring_base=0,
                                                 ring_size=4096, write_pointer=0,
                                                 read_pointer=0),
        "ACQUIRE_VM": lambda: kfd.acquire_vm(drm_fd=0, gpu_id=BAD_GPU_ID),
        "SET_MEMORY_POLICY": lambda: kfd.set_memory_policy(gpu_id=BAD_GPU_ID, default_policy=0,
                                                           alternate_policy=0),
        "SET_SCRATCH_BACKING_VA": lambda: kfd.set_scratch_backing_va(gpu_id=BAD_GPU_ID,
                                                                     va_addr=0x10000),
        "SET_TRAP_HANDLER": lambda: kfd.set_trap_handler(gpu_id=BAD_GPU_ID, tba_addr=0,
                                                         tma_addr=0),
        "SMI_EVENTS": lambda: kfd.smi_events(gpu_id=BAD_GPU_ID),
    }


@pytest.mark.parametrize("ioctl", ["ALLOC_MEMORY_OF_GPU", "AVAILABLE_MEMORY", "CREATE_QUEUE",
                                   "ACQUIRE_VM", "SET_MEMORY_POLICY", "SET_SCRATCH_BACKING_VA",
                                   "SET_TRAP_HANDLER", "SMI_EVENTS"])
def test_unknown_gpu_id_is_einval(amdgpu_device, ioctl):
    """KFDTopologyTest (invalid node ids): ioctls naming a gpu_id that is not one of the
    process's devices fail with EINVAL (facts-kfd.md §1.A, §2.3 row 4, §2.6 row 9, §2.10)."""
    if ioctl == "ACQUIRE_VM":
        # order matters: fget(drm_fd) is checked first (EINVAL too), so hand it this GPU's own
        # render-node file: only the unknown gpu_id can be refused
        fd = amdgpu_device.process.render_fd(amdgpu_device.gpu_id)
        code = kfd_errno(amdgpu_device.kfd.acquire_vm, drm_fd=fd, gpu_id=BAD_GPU_ID)
    else:
        code = kfd_errno(_bad_gpu_calls(amdgpu_device.kfd)[ioctl])
    assert code == EINVAL
