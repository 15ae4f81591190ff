"""Memory: ALLOC / FREE / MAP / UNMAP of VRAM, GTT and USERPTR buffers, GPU and CPU access,
zero initialisation, contents across unmap/map, available-memory accounting, and the errno of
every bad request with nothing leaked afterwards (KFDMemoryTest)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pytest_amdgpu.kfd.abi import lib
from pytest_amdgpu.kfd.errors import KFDError
from pytest_amdgpu.packets import pm4

from ._helpers import (
    ALLOC_DOORBELL,
    ALLOC_GTT,
    ALLOC_MMIO_REMAP,
    ALLOC_USERPTR,
    ALLOC_VRAM,
    ALLOC_WRITABLE,
    DOORBELL_SLICE,
    EBUSY,
    EINVAL,
    ENOMEM,
    EPERM,
    drain,
    kfd_errno,
    needs_cpu_visible_vram,
)

pytestmark = pytest.mark.amdgpu_area("memory")

PAGE = 4096
_ANON = int(lib.MAP_PRIVATE | lib.MAP_ANONYMOUS | lib.MAP_NORESERVE)
_RW = int(lib.PROT_READ | lib.PROT_WRITE)
_NONE = int(lib.PROT_NONE)


class _Reservation:
    """A CPU address range reserved PROT_NONE (as the thunk does) to give raw BOs a free VA."""

    def __init__(self, device, size: int, prot: int = _NONE) -> None:
        self.port = device.port
        self.size = size
        self.addr = self.port.mmap(0, size, prot, _ANON, -1, 0)

    def __enter__(self) -> _Reservation:
        return self

    def __exit__(self, *exc) -> None:
        self.port.munmap(self.addr, self.size)


def _flags(location: str) -> int:
    return {"vram": ALLOC_VRAM, "gtt": ALLOC_GTT, "userptr": ALLOC_USERPTR}[location] \
        | ALLOC_WRITABLE


def _gpu_read(queue, src: int, dst: int, dwords: int) -> None:
    """COPY_DATA memory -> memory, one dword at a time (TC_L2 selects, facts-pm4.md §3.9)."""
    queue.submit(*[pm4.CopyData(src_sel=2, dst_sel=2, src_addr=src + 4 * i,
                                dst_addr=dst + 4 * i, wr_confirm=1) for i in range(dwords)])


LOCATIONS = [
    pytest.param({"location": "vram"}, id="vram"),
    pytest.param({"location": "gtt"}, id="gtt"),
    pytest.param({"location": "gtt", "uncached": True}, id="gtt_uncached"),
    pytest.param({"location": "gtt", "coherent": True}, id="gtt_coherent"),
    pytest.param({"location": "userptr"}, id="userptr"),
]


@pytest.mark.parametrize("kind", LOCATIONS)
def test_gpu_and_cpu_access(amdgpu_device, amdgpu_queue, amdgpu_buffer, amdgpu_signal, kind):
    """KFDMemoryTest.MapMemoryToGPU / AccessLocalMem / MemoryRegister: a mapped buffer is written
    by the GPU (WRITE_DATA) and seen by the CPU, and data the CPU wrote is read by the GPU
    (COPY_DATA into a second buffer)."""
    kw = dict(kind)
    if kw["location"] == "vram":
        needs_cpu_visible_vram(amdgpu_device)
    buf = amdgpu_buffer(2 * PAGE, kw.pop("location"), **kw)
    out = amdgpu_buffer(PAGE, "gtt")
    pattern = np.array([0x11111111, 0x22222222, 0xDEADBEEF, 0xFFFFFFFF], np.uint32)
    buf.view(np.uint32)[1024:1028] = pattern
    amdgpu_queue.write_data(buf.gpu_address + 16, [7, 8, 9])
    _gpu_read(amdgpu_queue, buf.gpu_address + 4096, out.gpu_address, 4)
    drain(amdgpu_queue, amdgpu_signal)
    assert list(buf.view(np.uint32)[4:7]) == [7, 8, 9]
    assert np.array_equal(out.view(np.uint32)[:4], pattern)


@pytest.mark.parametrize("location", ["vram", "gtt"])
def test_new_memory_is_zeroed(amdgpu_device, amdgpu_buffer, location):
    """KFDMemoryTest.CheckZeroInitializationVram / CheckZeroInitializationSysMem: a fresh buffer
    reads as zeros, also after another buffer was filled and freed."""
    if location == "vram":
        needs_cpu_visible_vram(amdgpu_device)
    first = amdgpu_buffer(64 * 1024, location)
    first.fill(0xA5)
    first.free()
    buf = amdgpu_buffer(64 * 1024, location)
    assert not buf.view(np.uint8).any()


def test_non_cpu_visible_vram_gpu_round_trip(amdgpu_buffer, amdgpu_sdma_queue, amdgpu_signal):
    """KFDMemoryTest.AccessLocalMem: VRAM without a CPU mapping (no PUBLIC flag) is still GPU
    memory: SDMA copies data in and back out unchanged."""
    src = amdgpu_buffer(PAGE, "gtt")
    hidden = amdgpu_buffer(PAGE, "vram", cpu_access=False)
    back = amdgpu_buffer(PAGE, "gtt")
    data = np.arange(1024, dtype=np.uint32) * 2654435761 & 0xFFFFFFFF
    src.view(np.uint32)[:] = data
    amdgpu_sdma_queue.copy(hidden, src, PAGE)
    amdgpu_sdma_queue.copy(back, hidden.gpu_address, PAGE)
    drain(amdgpu_sdma_queue, amdgpu_signal)
    assert hidden.cpu_address is None
    assert np.array_equal(back.view(np.uint32), data.astype(np.uint32))


def test_handle_encodes_gpu_id(amdgpu_buffer, amdgpu_device):
    """KFDMemoryTest.MapMemoryToGPU (handles): ALLOC_MEMORY_OF_GPU returns handle = gpu_id << 32
    | idr index (MAKE_HANDLE, facts-kfd.md §2.3)."""
    a = amdgpu_buffer(PAGE, "gtt")
    b = amdgpu_buffer(PAGE, "vram", cpu_access=False)
    assert a.handle >> 32 == amdgpu_device.gpu_id
    assert b.handle >> 32 == amdgpu_device.gpu_id
    assert a.handle != b.handle


@pytest.mark.parametrize("location", ["vram", "gtt", "userptr"])
def test_zero_size_alloc_is_einval(amdgpu_device, location):
    """KFDMemoryTest.ZeroMemorySizeAlloc: ALLOC_MEMORY_OF_GPU with size 0 fails with EINVAL
    before anything else is looked at (facts-kfd.md §2.3 row 1)."""
    with _Reservation(amdgpu_device, PAGE) as r:
        code = kfd_errno(amdgpu_device.kfd.alloc_memory, gpu_id=amdgpu_device.gpu_id, size=0,
                         flags=_flags(location), va_addr=r.addr, mmap_offset=r.addr)
    assert code == EINVAL


def test_alloc_without_domain_is_einval(amdgpu_device):
    """KFDMemoryTest.InvalidMemoryPointerAlloc (bad flags): ALLOC_MEMORY_OF_GPU with none of VRAM
    / GTT / USERPTR / DOORBELL / MMIO_REMAP is EINVAL (facts-kfd.md §2.3 row 9)."""
    with _Reservation(amdgpu_device, PAGE) as r:
        code = kfd_errno(amdgpu_device.kfd.alloc_memory, gpu_id=amdgpu_device.gpu_id,
                         size=PAGE, flags=ALLOC_WRITABLE, va_addr=r.addr)
    assert code == EINVAL


def test_userptr_without_host_address_is_einval(amdgpu_device):
    """KFDMemoryTest.InvalidMemoryPointerAlloc: a USERPTR allocation whose host address
    (mmap_offset) is 0 is EINVAL (facts-kfd.md §2.3 row 9)."""
    with _Reservation(amdgpu_device, PAGE) as r:
        code = kfd_errno(amdgpu_device.kfd.alloc_memory, gpu_id=amdgpu_device.gpu_id,
                         size=PAGE, flags=_flags("userptr"), va_addr=r.addr, mmap_offset=0)
    assert code == EINVAL


def test_oversize_vram_is_enomem_and_leaks_nothing(amdgpu_device, amdgpu_buffer):
    """KFDMemoryTest.MemoryAllocAll / LargestVramBufferTest: asking for more VRAM than the GPU
    has fails with ENOMEM (the accounting limit, facts-kfd.md §2.3 row 11), through the raw ioctl
    and through Device.alloc, and afterwards available memory and the device's objects are
    exactly as before."""
    vram = amdgpu_device.node.mem_banks[0]["size_in_bytes"]
    size = (vram * 2 + (2 << 20)) & ~((2 << 20) - 1)
    before = amdgpu_device.available_memory()
    live = len(amdgpu_device.live_objects())
    with _Reservation(amdgpu_device, PAGE) as r:
        code = kfd_errno(amdgpu_device.kfd.alloc_memory, gpu_id=amdgpu_device.gpu_id,
                         size=size, flags=_flags("vram"), va_addr=r.addr)
    assert code == ENOMEM
    with pytest.raises(KFDError) as info:
        amdgpu_buffer(size, "vram", cpu_access=False)
    assert info.value.errno == ENOMEM
    assert amdgpu_device.available_memory() == before
    assert len(amdgpu_device.live_objects()) == live


def test_available_memory_tracks_vram(amdgpu_device, amdgpu_buffer):
    """KFDMemoryTest (available-memory query): allocating 4 MiB of VRAM lowers AVAILABLE_MEMORY
    by at least 4 MiB (and by less than 4 MiB + 2 MiB of alignment bookkeeping); freeing it gives
    the memory back (facts-kfd.md §2.10)."""
    size = 4 << 20
    before = amdgpu_device.available_memory()
    buf = amdgpu_buffer(size, "vram", cpu_access=False)
    during = amdgpu_device.available_memory()
    assert size <= before - during < size + (2 << 20)
    buf.free()
    assert amdgpu_device.available_memory() == before


def _raw_alloc(device, location: str, va: int, size: int = PAGE) -> int:
    return device.kfd.alloc_memory(gpu_id=device.gpu_id, size=size, flags=_flags(location),
                                   va_addr=va, mmap_offset=va if location == "userptr" else 0
                                   ).handle


def test_double_free_is_einval(amdgpu_device):
    """KFDMemoryTest (double free): freeing a handle a second time fails with EINVAL, the IDR
    index being gone (facts-kfd.md §2.4 row 3)."""
    with _Reservation(amdgpu_device, PAGE) as r:
        handle = _raw_alloc(amdgpu_device, "gtt", r.addr)
        amdgpu_device.kfd.free_memory(handle=handle)
        assert kfd_errno(amdgpu_device.kfd.free_memory, handle=handle) == EINVAL


def test_free_while_mapped_is_ebusy(amdgpu_device):
    """KFDMemoryTest.MapUnmapToNodes (free order): FREE_MEMORY_OF_GPU of a buffer still mapped on
    a GPU fails with EBUSY and keeps the handle: unmapping then freeing works (facts-kfd.md §2.4
    row 4)."""
    kfd, gpu = amdgpu_device.kfd, amdgpu_device.gpu_id
    with _Reservation(amdgpu_device, PAGE) as r:
        handle = _raw_alloc(amdgpu_device, "gtt", r.addr)
        try:
            assert kfd.map_memory(handle=handle, gpu_ids=[gpu]) == 1
            assert kfd_errno(kfd.free_memory, handle=handle) == EBUSY
            assert kfd.unmap_memory(handle=handle, gpu_ids=[gpu]) == 1
        finally:
            kfd.free_memory(handle=handle)


def test_map_after_free_is_enomem(amdgpu_device):
    """KFDMemoryTest (map after free): MAP_MEMORY_TO_GPU of a freed handle of a known GPU fails
    with ENOMEM, the driver's answer to an unknown IDR index (facts-kfd.md §2.5 row 6)."""
    with _Reservation(amdgpu_device, PAGE) as r:
        handle = _raw_alloc(amdgpu_device, "gtt", r.addr)
        amdgpu_device.kfd.free_memory(handle=handle)
        code = kfd_errno(amdgpu_device.kfd.map_memory, handle=handle,
                         gpu_ids=[amdgpu_device.gpu_id])
    assert code == ENOMEM


@pytest.mark.parametrize("case", ["no_devices", "unknown_peer", "unmap_unmapped"])
def test_bad_map_requests_are_einval(amdgpu_device, case):
    """KFDMemoryTest.MapUnmapToNodes (negatives): n_devices = 0, an unknown peer gpu_id, and
    unmapping a buffer that is not mapped are EINVAL; a failed MAP reports how many devices
    succeeded in n_success (facts-kfd.md §2.5 rows 1, 7)."""
    kfd, gpu = amdgpu_device.kfd, amdgpu_device.gpu_id
    with _Reservation(amdgpu_device, PAGE) as r:
        handle = _raw_alloc(amdgpu_device, "gtt", r.addr)
        try:
            if case == "no_devices":
                assert kfd_errno(kfd.map_memory, handle=handle, gpu_ids=[]) == EINVAL
            elif case == "unknown_peer":
                with pytest.raises(KFDError) as info:
                    kfd.map_memory(handle=handle, gpu_ids=[gpu, 0xFFFF0000])
                assert info.value.errno == EINVAL
                assert info.value.n_success == 1
                kfd.unmap_memory(handle=handle, gpu_ids=[gpu])
            else:
                assert kfd_errno(kfd.unmap_memory, handle=handle, gpu_ids=[gpu]) == EINVAL
        finally:
            kfd.free_memory(handle=handle)


def test_map_twice_to_one_gpu_succeeds(amdgpu_device):
    """KFDMemoryTest.MapUnmapToNodes: mapping a buffer again to a GPU it is mapped on is a silent
    success; one unmap then removes it (facts-kfd.md §2.5 row 8)."""
    kfd, gpu = amdgpu_device.kfd, amdgpu_device.gpu_id
    with _Reservation(amdgpu_device, PAGE) as r:
        handle = _raw_alloc(amdgpu_device, "gtt", r.addr)
        try:
            assert kfd.map_memory(handle=handle, gpu_ids=[gpu]) == 1
            assert kfd.map_memory(handle=handle, gpu_ids=[gpu]) == 1
            assert kfd.unmap_memory(handle=handle, gpu_ids=[gpu]) == 1
        finally:
            kfd.free_memory(handle=handle)


def test_overlapping_va_is_caught_at_map(amdgpu_device):
    """KFDMemoryTest.MapUnmapToNodes (VA overlap): Two buffers at the same GPU VA both allocate
    (the VA is not checked at ALLOC), but mapping the second fails with EINVAL (facts-kfd.md
    §2.3, §2.5 row 8)."""
    kfd, gpu = amdgpu_device.kfd, amdgpu_device.gpu_id
    with _Reservation(amdgpu_device, PAGE) as r:
        first = _raw_alloc(amdgpu_device, "gtt", r.addr)
        second = _raw_alloc(amdgpu_device, "gtt", r.addr)
        try:
            assert kfd.map_memory(handle=first, gpu_ids=[gpu]) == 1
            assert kfd_errno(kfd.map_memory, handle=second, gpu_ids=[gpu]) == EINVAL
            kfd.unmap_memory(handle=first, gpu_ids=[gpu])
        finally:
            kfd.free_memory(handle=first)
            kfd.free_memory(handle=second)


def test_unaligned_va_is_caught_at_map(amdgpu_device):
    """KFDMemoryTest.MapUnmapToNodes (VA alignment): A buffer whose VA is not 4 KiB aligned
    allocates but cannot be mapped: EINVAL (amdgpu_vm_verify_parameters, facts-kfd.md §2.5 row
    8)."""
    kfd, gpu = amdgpu_device.kfd, amdgpu_device.gpu_id
    with _Reservation(amdgpu_device, 2 * PAGE) as r:
        handle = _raw_alloc(amdgpu_device, "gtt", r.addr + 256)
        try:
            assert kfd_errno(kfd.map_memory, handle=handle, gpu_ids=[gpu]) == EINVAL
        finally:
            kfd.free_memory(handle=handle)


def test_contents_survive_unmap_and_map(amdgpu_device, amdgpu_queue, amdgpu_buffer,
                                        amdgpu_signal):
    """KFDMemoryTest.VerifyContentsAfterUnmapAndMap: data the GPU wrote stays in the buffer
    across UNMAP and MAP, and the GPU reads it back after the new mapping."""
    needs_cpu_visible_vram(amdgpu_device)
    buf = amdgpu_buffer(PAGE, "vram")
    out = amdgpu_buffer(PAGE, "gtt")
    amdgpu_queue.write_data(buf.gpu_address, [0xCAFE0001, 0xCAFE0002])
    drain(amdgpu_queue, amdgpu_signal)
    buf.unmap_from(amdgpu_device)
    buf.map_to(amdgpu_device)
    _gpu_read(amdgpu_queue, buf.gpu_address, out.gpu_address, 2)
    drain(amdgpu_queue, amdgpu_signal)
    assert list(out.view(np.uint32)[:2]) == [0xCAFE0001, 0xCAFE0002]
    assert list(buf.view(np.uint32)[:2]) == [0xCAFE0001, 0xCAFE0002]


def test_userptr_same_pointer_twice(amdgpu_device):
    """KFDMemoryTest.MemoryRegisterSamePtr: the same host range can be registered twice (two
    USERPTR buffer objects); the second GPU mapping at the same VA is refused with EINVAL while
    the first is mapped, and is accepted once the first is unmapped."""
    kfd, gpu = amdgpu_device.kfd, amdgpu_device.gpu_id
    with _Reservation(amdgpu_device, PAGE, _RW) as r:
        first = _raw_alloc(amdgpu_device, "userptr", r.addr)
        second = _raw_alloc(amdgpu_device, "userptr", r.addr)
        try:
            assert kfd.map_memory(handle=first, gpu_ids=[gpu]) == 1
            assert kfd_errno(kfd.map_memory, handle=second, gpu_ids=[gpu]) == EINVAL
            kfd.unmap_memory(handle=first, gpu_ids=[gpu])
            assert kfd.map_memory(handle=second, gpu_ids=[gpu]) == 1
            kfd.unmap_memory(handle=second, gpu_ids=[gpu])
        finally:
            kfd.free_memory(handle=first)
            kfd.free_memory(handle=second)


def test_userptr_registered_from_threads(amdgpu_device, amdgpu_queue, amdgpu_signal):
    """KFDMemoryTest.MultiThreadRegisterUserptrTest: four threads register host memory at the
    same time; the GPU then writes each buffer and each thread's host memory shows it."""
    results: list = [None] * 4

    def register(i: int) -> None:
        try:
            results[i] = amdgpu_device.alloc(PAGE, "userptr", owner="userptr thread")
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=register, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        errors = [r for r in results if not hasattr(r, "gpu_address")]
        assert not errors, errors
        for i, buf in enumerate(results):
            amdgpu_queue.write_data(buf.gpu_address, [0x1000 + i])
        drain(amdgpu_queue, amdgpu_signal)
        assert [int(b.view(np.uint32)[0]) for b in results] == [0x1000 + i for i in range(4)]
        assert len({b.gpu_address for b in results}) == 4
    finally:
        for r in results:
            if hasattr(r, "free"):
                r.free()


def test_alloc_free_loop_leaks_nothing(amdgpu_device):
    """KFDMemoryTest.MMBench / MemoryAllocAll (leak side): 48 allocations of mixed kinds freed
    again leave available VRAM and the device's live objects exactly as before."""
    before = amdgpu_device.available_memory()
    live = len(amdgpu_device.live_objects())
    for i in range(16):
        bufs = [amdgpu_device.alloc(PAGE * (1 + i % 3), loc, owner="loop",
                                    cpu_access=loc != "vram" or amdgpu_device.large_bar)
                for loc in ("vram", "gtt", "userptr")]
        for b in bufs:
            b.free()
    assert amdgpu_device.available_memory() == before
    assert len(amdgpu_device.live_objects()) == live


def test_event_page_cannot_be_freed(amdgpu_device):
    """KFDEventTest (event page) / KFDMemoryTest (free negatives): FREE_MEMORY_OF_GPU of the
    process's event page (the signal BO handed to CREATE_EVENT) is EPERM (facts-kfd.md §2.4 row
    1, §2.8 E1)."""
    handle = amdgpu_device.process.event_page.handle
    assert kfd_errno(amdgpu_device.kfd.free_memory, handle=handle) == EPERM


@pytest.mark.parametrize("size,expect", [(DOORBELL_SLICE, 0), (PAGE, EINVAL)],
                         ids=["slice", "wrong_size"])
def test_doorbell_allocation_size(amdgpu_device, size, expect):
    """KFDMemoryTest.MapMemoryToGPU (doorbell BO, conformance-map area 2): ALLOC_MEMORY_OF_GPU
    with the DOORBELL flag: the size must be the process doorbell slice (8 KiB on SOC15 / MES),
    else EINVAL (facts-kfd.md §2.3 row 7, §3 M4)."""
    kfd = amdgpu_device.kfd
    with _Reservation(amdgpu_device, DOORBELL_SLICE) as r:
        try:
            handle = kfd.alloc_memory(gpu_id=amdgpu_device.gpu_id, size=size,
                                      flags=ALLOC_DOORBELL | ALLOC_WRITABLE, va_addr=r.addr)
        except KFDError as exc:
            assert exc.errno == expect and expect
            return
        assert expect == 0
        kfd.free_memory(handle=handle.handle)


def test_mmio_remap_size_must_be_a_page(amdgpu_device):
    """KFDMemoryTest (MMIO-remap BO, conformance-map area 2): ALLOC_MEMORY_OF_GPU with MMIO_REMAP
    and a size other than one page is EINVAL (facts-kfd.md §2.3 row 8)."""
    with _Reservation(amdgpu_device, 2 * PAGE) as r:
        code = kfd_errno(amdgpu_device.kfd.alloc_memory, gpu_id=amdgpu_device.gpu_id,
                         size=2 * PAGE, flags=ALLOC_MMIO_REMAP | ALLOC_WRITABLE, va_addr=r.addr)
    assert code == EINVAL


def test_large_buffer_fill_and_check(amdgpu_device, amdgpu_buffer, amdgpu_sdma_queue,
                                     amdgpu_signal):
    """KFDMemoryTest.BigBufferStressTest (small form): an 8 MiB VRAM buffer filled by SDMA reads
    back the fill pattern everywhere, and the byte after it is untouched."""
    needs_cpu_visible_vram(amdgpu_device)
    size = 8 << 20
    buf = amdgpu_buffer(size + PAGE, "vram")
    buf.view(np.uint32)[size // 4:] = 0x5A5A5A5A
    amdgpu_sdma_queue.fill(buf, 0x01020304, size)
    drain(amdgpu_sdma_queue, amdgpu_signal)
    words = buf.view(np.uint32)
    assert (words[:size // 4] == 0x01020304).all()
    assert (words[size // 4:] == 0x5A5A5A5A).all()
