"""SimDevice: one simulated GPU (a KFD topology node with its amdgpu device behind it).

It carries the target (`targets.get_target`), the topology identity (gpu_id, node index, render
minor, sysfs properties), the VRAM capacity and what KFD has charged against it, the device-wide
SDMA queue slots, the DRM mmap-offset space of its render node, the MMIO-remap page, and its
`engine` — the command processors and SDMA engines (sim/gpu/engine.py) that execute queues.
"""

from __future__ import annotations

import errno as E
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..targets import QueueSizes, Target, get_target, queue_sizes
from .memory import PAGE_SIZE, VM_RESERVED_VRAM, VRAM_AVAILABILITY_ALIGN, Backing, DriverError

if TYPE_CHECKING:  # pragma: no cover
    from .machine import SimMachine
    from .memory import BufferObject
    from .presets import GPUPreset

__all__ = ["SimDevice", "DRM_FILE_PAGE_OFFSET_START"]

# DRM_FILE_PAGE_OFFSET_START on 64-bit: ((0xFFFFFFFF >> PAGE_SHIFT) + 1) pages, as a byte offset.
DRM_FILE_PAGE_OFFSET_START = 0x1_0000_0000
GPU_CLOCK_HZ = 100_000_000


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


class SimDevice:
    """One GPU of a SimMachine. Created by the machine; not used directly by the runtime."""

    def __init__(self, machine: SimMachine, *, index: int, node_index: int, preset: GPUPreset,
                 gpu_id: int, properties: dict[str, int], vram_size: int,
                 engine_factory: Callable[[SimDevice], object] | None) -> None:
        self.machine = machine
        self.index = index                      # GPU index (render minor 128 + index)
        self.node_index = node_index            # KFD topology node
        self.preset = preset
        self.target: Target = get_target(preset.target)
        self.name = preset.name
        self.gpu_id = gpu_id
        self.properties = properties            # node properties, sysfs key order
        self.render_minor = properties["drm_render_minor"]
        self.vram_size = vram_size
        self.vram_used = 0                      # kfd.vram_used: PAGE_ALIGNed sizes
        self.vram_used_aligned = 0              # kfd.vram_used_aligned: 2 MiB-aligned sizes
        # reserved_for_pt = ESTIMATE_PT_SIZE(host RAM): max(RAM >> 14, AMDGPU_VM_RESERVED_VRAM)
        # (amdgpu_amdkfd_gpuvm.c); RAS-reserved and pinned VRAM are 0 here.
        self.vram_reserved = max(machine.system_memory >> 14, VM_RESERVED_VRAM)
        self.large_bar = True                   # MI200/MI300/7900 XTX with resizable BAR
        self.doorbell_slice_size = self.target.doorbell_slice_size
        self.num_sdma_engines = properties["num_sdma_engines"]
        self.num_xgmi_sdma_engines = properties["num_sdma_xgmi_engines"]
        self.sdma_queues_per_engine = properties["num_sdma_queues_per_engine"]
        n_pcie = self.num_sdma_engines * self.sdma_queues_per_engine
        n_xgmi = self.num_xgmi_sdma_engines * self.sdma_queues_per_engine
        self.sdma_free = set(range(n_pcie))     # dqm->sdma_bitmap (device-wide)
        self.xgmi_sdma_free = set(range(n_xgmi))  # dqm->xgmi_sdma_bitmap
        self.lock = threading.Lock()
        self._drm_next = DRM_FILE_PAGE_OFFSET_START
        self._drm_objects: dict[int, BufferObject] = {}
        self.mmio_backing = Backing(PAGE_SIZE, name=f"mmio-{gpu_id:x}")
        self.queue_sizes: QueueSizes = queue_sizes(
            self.target, simd_count=properties["simd_count"],
            simd_per_cu=properties["simd_per_cu"], num_xcc=properties["num_xcc"],
            array_count=properties["array_count"],
            simd_arrays_per_engine=properties["simd_arrays_per_engine"])
        self.closed = False
        self.engine = self._make_engine(engine_factory)

    def _make_engine(self, factory):
        if factory is None:
            from .gpu.engine import GPUEngine

            factory = GPUEngine
        return factory(self)

    # -- VRAM accounting (amdgpu_amdkfd_reserve_mem_limit, device-wide) ----------------------
    def reserve_vram(self, size: int) -> None:
        """ENOMEM when vram_used + size exceeds the VRAM less the page-table reserve."""
        with self.lock:
            if self.vram_used + size > self.vram_size - self.vram_reserved:
                raise DriverError(E.ENOMEM, f"VRAM exhausted on gpu {self.gpu_id:#x}: "
                                            f"{self.vram_used:#x} used + {size:#x} > "
                                            f"{self.vram_size - self.vram_reserved:#x}")
            self.vram_used += size
            self.vram_used_aligned += _align(size, VRAM_AVAILABILITY_ALIGN)

    def unreserve_vram(self, size: int) -> None:
        with self.lock:
            self.vram_used -= size
            self.vram_used_aligned -= _align(size, VRAM_AVAILABILITY_ALIGN)

    def available_memory(self) -> int:
        """amdgpu_amdkfd_get_available_memory: capacity less 2 MiB-aligned use, 2 MiB floor."""
        with self.lock:
            avail = self.vram_size - self.vram_used_aligned - self.vram_reserved
        avail = max(avail, 0)
        return avail - avail % VRAM_AVAILABILITY_ALIGN

    # -- DRM mmap offsets of the render node ----------------------------------------------------
    def register_drm_object(self, bo: BufferObject) -> None:
        with self.lock:
            bo.drm_offset = self._drm_next
            self._drm_next += max(bo.bo_size, PAGE_SIZE)
            self._drm_objects[bo.drm_offset] = bo

    def unregister_drm_object(self, bo: BufferObject) -> None:
        with self.lock:
            if self._drm_objects.get(bo.drm_offset) is bo:
                del self._drm_objects[bo.drm_offset]

    def drm_object(self, offset: int) -> BufferObject | None:
        """drm_vma_offset_exact_lookup: the BO whose mmap offset starts exactly here."""
        with self.lock:
            return self._drm_objects.get(offset)

    # -- SDMA queue slots (DQM allocate_sdma_queue / deallocate_sdma_queue) ---------------------
    def allocate_sdma(self, kind: str, engine_id: int) -> tuple[int, int, int]:
        """Returns (sdma_id, engine, queue_on_engine); ENOMEM when no slot is free.

        SDMA: lowest free id over the PCIe engines, engine = id % engines (ids alternate
        between engines); SDMA_XGMI: same over the XGMI engines, numbered after the PCIe ones;
        SDMA_BY_ENG_ID: the lowest free queue of that engine.
        """
        n_pcie, n_xgmi = self.num_sdma_engines, self.num_xgmi_sdma_engines
        with self.lock:
            if kind == "sdma":
                if not self.sdma_free:
                    raise DriverError(E.ENOMEM, "no free SDMA queue")
                sid = min(self.sdma_free)
                self.sdma_free.discard(sid)
                return sid, sid % n_pcie, sid // n_pcie
            if kind == "xgmi":
                if not self.xgmi_sdma_free:
                    raise DriverError(E.ENOMEM, "no free XGMI SDMA queue")
                sid = min(self.xgmi_sdma_free)
                self.xgmi_sdma_free.discard(sid)
                return (1 << 16) | sid, n_pcie + sid % n_xgmi, sid // n_xgmi
            if engine_id < n_pcie:
                pool, n, base, tag = self.sdma_free, n_pcie, engine_id, 0
            else:
                pool, n, base, tag = self.xgmi_sdma_free, n_xgmi, engine_id - n_pcie, 1 << 16
            for sid in range(base, n * self.sdma_queues_per_engine, n):
                if sid in pool:
                    pool.discard(sid)
                    return tag | sid, engine_id, sid // n
            raise DriverError(E.ENOMEM, f"no free queue on SDMA engine {engine_id}")

    def free_sdma(self, sdma_id: int) -> None:
        with self.lock:
            if sdma_id >> 16:
                self.xgmi_sdma_free.add(sdma_id & 0xFFFF)
            else:
                self.sdma_free.add(sdma_id)

    # -- clocks -----------------------------------------------------------------------------------
    def gpu_clock(self) -> int:
        """The 100 MHz GPU counter (GET_CLOCK_COUNTERS), read from the engine."""
        return int(self.engine.clock())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.engine.shutdown()
        finally:
            self.mmio_backing.close()

    def __repr__(self) -> str:
        return (f"<SimDevice {self.target.name} gpu_id={self.gpu_id:#x} node={self.node_index} "
                f"renderD{self.render_minor}>")
