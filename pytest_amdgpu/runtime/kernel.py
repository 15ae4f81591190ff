"""Kernels: code-object loading, kernarg segments, scratch, and dispatch through AQL and PM4.

`load_kernel(device, code_object, name)` (what `Device.load_kernel` calls) places the code
object's PT_LOAD segments in one executable GPU buffer, applies the dynamic relocations for
that address and returns a `Kernel` bound to the kernel descriptor in it. One image is loaded
per (device, code object) and shared by the Kernels made from it.

`dispatch(queue, kernel, grid, block, args)` (what `Queue.dispatch` calls) builds the kernarg
segment from the metadata (`pytest_amdgpu.codeobj.kernarg`), sets up scratch when the kernel
has a private segment, and submits:

- on an AQL queue: one kernel dispatch packet (`Kernel.aql_packet`) whose completion signal
  the packet processor decrements; scratch lives in the queue's amd_queue_t fields
  (scratch_resource_descriptor, scratch_backing_memory_location, compute_tmpring_size,
  scratch_wave64_lane_byte_size), as ROCR fills them;
- on a PM4 queue: ACQUIRE_MEM, the SET_SH_REG sequence `Kernel.pm4_dispatch` derives from the
  descriptor for the target (facts-pm4.md §4, §7), DISPATCH_DIRECT, a CS_PARTIAL_FLUSH, then a
  RELEASE_MEM that sets the completion signal. The dispatch pointer user SGPR points at an
  AQL-format dispatch packet written to memory, as the CP would expose it, and the queue
  pointer at a shadow amd_queue_t.

Kernarg segments, packet images and the shadow queue live in a per-queue ring of GTT memory
whose regions are reused once the dispatch that used them has completed.
"""

from __future__ import annotations

import os
import struct
import threading
import weakref
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..codeobj import CodeObject, KernelInfo, load_code_object
from ..codeobj.kernarg import (
    Geometry,
    Kernargs,
    KernargTemplate,
    build_kernargs,
    make_geometry,
    pack_kernargs,
)
from ..errors import CodeObjectError, UsageError
from ..packets import aql as _aql
from ..packets import pm4 as _pm4
from ._util import align_up, check_int, store32, store64
from .queue import Completion

if TYPE_CHECKING:
    from ..targets import Target
    from .device import Device
    from .memory import Buffer
    from .queue import Queue
    from .signal import Signal

__all__ = ["Kernel", "ScratchConfig", "dispatch", "load_kernel", "scratch_config",
           "scratch_rsrc"]

KERNARG_ALIGN = 64                # kernarg segments: >= 16 B (AMDGPUUsage); a cache line here
KERNARG_RING_SIZE = 256 * 1024
SCRATCH_LANE_ALIGN = 16           # per-work-item private segment rounding
DEFAULT_DYNAMIC_STACK = 1024      # bytes per work-item added for kernels with a dynamic stack
KERNARG_PRELOAD_ENTRY_SKIP = 256  # the CP skips this much of the entry when preloading kernargs

# DISPATCH_INITIATOR bits (gc_9_4_2 / gc_11_0_0 sh_mask, facts-pm4.md §4.2).
INITIATOR_COMPUTE_SHADER_EN = 1 << 0
INITIATOR_PARTIAL_TG_EN = 1 << 1
INITIATOR_FORCE_START_AT_000 = 1 << 2

# ACQUIRE_MEM before a PM4 dispatch: invalidate the instruction, scalar and vector caches so
# code, kernargs and data the host wrote are seen (kfdtest's values, facts-pm4.md §3.4, G12):
# gfx9 COHER_CNTL = SH_ICACHE | SH_KCACHE | TC | TCL1; gfx10+ GCR_CNTL = GL2_INV | GL1_INV |
# GLV_INV | GLK_INV | GLI_INV=ALL. Keyed by Target.acquire_mem_form.
ACQUIRE_FIELDS: dict[str, dict[str, int]] = {
    "gfx9": {"coher_cntl": 0x28C00000},
    "gfx10": {"gcr_cntl": 0x4381},
}


# -- scratch ---------------------------------------------------------------------------------

def scratch_rsrc(target: Target, base: int, size: int) -> tuple[int, int, int, int]:
    """The private segment buffer V# for scratch at `base` of `size` bytes (swizzled, stride
    from the CP, ROCR's layout; target.scratch_rsrc_word1_flags / scratch_rsrc_word3)."""
    return (base & 0xFFFFFFFF,
            ((base >> 32) & 0xFFFF) | target.scratch_rsrc_word1_flags,
            size & 0xFFFFFFFF,
            target.scratch_rsrc_word3)


@dataclass(frozen=True)
class ScratchConfig:
    """One queue's scratch (private segment) backing and the register values describing it.

    On a node of several XCCs (gfx942) every XCC has a slice of its own, the slices end to end
    from `base`: the buffer descriptor, ``scratch_backing_memory_byte_size`` and
    COMPUTE_TMPRING_SIZE.WAVES describe one slice (ROCR FillBufRsrcWord2 / InitScratchSRD
    "report size per XCC", FillComputeTmpRingSize divides by NumXcc), and a PM4 dispatch gives
    each XCC the base of its slice in COMPUTE_DISPATCH_SCRATCH_BASE under PRED_EXEC
    (facts-pm4.md §7).
    """

    base: int                      # GPU address of the backing memory
    size: int                      # bytes, all XCCs
    lane_bytes: int                # private segment bytes per work-item (aligned)
    wave_lanes: int                # lanes of the waves it was sized for
    wave_bytes: int                # scratch per wave, rounded to the TMPRING unit
    waves: int                     # waves one XCC's slice holds
    tmpring_size: int              # COMPUTE_TMPRING_SIZE / amd_queue_t.compute_tmpring_size
    rsrc: tuple[int, int, int, int]
    num_xcc: int = 1

    @property
    def xcc_size(self) -> int:
        """Bytes of one XCC's slice."""
        return self.size // self.num_xcc

    def xcc_base(self, xcc: int) -> int:
        """GPU address of XCC `xcc`'s slice."""
        return self.base + xcc * self.xcc_size

    @property
    def wave64_lane_bytes(self) -> int:
        """amd_queue_t.scratch_wave64_lane_byte_size: per-lane bytes of a 64-lane wave."""
        return self.lane_bytes * self.wave_lanes // 64

    def covers(self, lane_bytes: int, wave_lanes: int, waves: int) -> bool:
        return (lane_bytes * wave_lanes <= self.wave_bytes and waves <= self.waves)


def scratch_config(target: Target, *, lane_bytes: int, wave_lanes: int, waves: int,
                   shader_engines: int = 1, num_xcc: int = 1, base: int = 0) -> ScratchConfig:
    """Scratch layout for `waves` waves per XCC of `wave_lanes` lanes with `lane_bytes` each on
    `num_xcc` XCCs of `shader_engines` shader engines each (the caller allocates `size` bytes
    at `base`). COMPUTE_TMPRING_SIZE: WAVESIZE in the target's unit, WAVES for one XCC (gfx9)
    or per shader engine (gfx11), as ROCR programs it."""
    lane_bytes = align_up(max(lane_bytes, 0), SCRATCH_LANE_ALIGN)
    unit = target.tmpring_wavesize_unit
    wave_bytes = align_up(lane_bytes * wave_lanes, unit)
    ses = max(shader_engines, 1)
    xcc = max(num_xcc, 1)
    waves = align_up(max(waves, 1), ses)
    field_waves = waves // ses if target.tmpring_waves_per_se else waves
    if field_waves > 0xFFF:
        field_waves = 0xFFF
        waves = field_waves * ses if target.tmpring_waves_per_se else field_waves
    size = waves * wave_bytes * xcc
    tmpring = _aql.encode_tmpring_size(target, field_waves, wave_bytes)
    return ScratchConfig(base=base, size=size, lane_bytes=lane_bytes, wave_lanes=wave_lanes,
                         wave_bytes=wave_bytes, waves=waves, tmpring_size=tmpring,
                         rsrc=scratch_rsrc(target, base, size // xcc), num_xcc=xcc)


# -- loaded images ---------------------------------------------------------------------------

class _LoadedImage:
    """One code object placed in GPU memory on one device; shared by its Kernels."""

    def __init__(self, device: Device, co: CodeObject) -> None:
        self.device = device
        self.code_object = co
        self.refs = 0
        align = co.image_align
        size = align_up(co.image_size, 4096)
        # the image is written by the CPU: VRAM where the CPU can map it, else system memory
        self.buffer = device._alloc_internal(
            size + (align - 4096 if align > 4096 else 0),
            "vram" if device.large_bar else "gtt",
            f"code object {co.name} ({co.processor})", executable=True,
            read_only=not co.has_writable_segment)
        self.base = align_up(self.buffer.gpu_address, align)
        image = co.image(self.base)
        self.buffer.write(self.base - self.buffer.gpu_address, image)
        self.size = len(image)

    def free(self) -> None:
        if not self.buffer.freed:
            self.buffer.free()


_IMAGES: weakref.WeakKeyDictionary[Any, dict[str, _LoadedImage]] = weakref.WeakKeyDictionary()
_IMAGES_LOCK = threading.Lock()


def _acquire_image(device: Device, co: CodeObject) -> _LoadedImage:
    with _IMAGES_LOCK:
        per_device = _IMAGES.setdefault(device, {})
        image = per_device.get(co.sha256)
        if image is None or image.buffer.freed:
            image = _LoadedImage(device, co)
            per_device[co.sha256] = image
        image.refs += 1
        return image


def _release_image(image: _LoadedImage) -> None:
    with _IMAGES_LOCK:
        image.refs -= 1
        if image.refs > 0:
            return
        per_device = _IMAGES.get(image.device, {})
        if per_device.get(image.code_object.sha256) is image:
            del per_device[image.code_object.sha256]
    image.free()


@dataclass(frozen=True)
class _Placement:
    """Where an unbound Kernel pretends its image is."""

    base: int


def _resolve_code_object(device: Device, code_object: Any) -> CodeObject:
    if isinstance(code_object, str) and not os.path.exists(code_object):
        from .. import kernels

        if kernels.is_kernel_name(code_object):
            return kernels.load(code_object, device.target.name)
        if "/" not in code_object and not code_object.endswith((".co", ".hsaco")):
            raise UsageError(f"load_kernel: {code_object!r} is neither a file nor a kernel "
                             f"shipped in pytest_amdgpu.kernels ({', '.join(kernels.all_names())})")
    return load_code_object(code_object)


def load_kernel(device: Device, code_object: Any, name: str | None = None, *,
                owner: object = None, xnack: str | None = None,
                sramecc: str | None = None) -> Kernel:
    """Load kernel `name` of `code_object` (path, bytes, CodeObject, or the name of a kernel
    shipped in `pytest_amdgpu.kernels`) onto `device`; refuses a code object built for another
    target, or for an xnack / sramecc mode other than the one the device runs (`xnack` /
    `sramecc`: "on" / "off", default `Device.xnack` / `Device.sramecc`), with a
    CodeObjectError."""
    co = _resolve_code_object(device, code_object)
    co.check_target(device.target, xnack=device.xnack if xnack is None else xnack,
                    sramecc=device.sramecc if sramecc is None else sramecc)
    if name is None:
        if len(co.kernels) != 1:
            raise UsageError(f"{co.name} has {len(co.kernels)} kernels "
                             f"({', '.join(sorted(co.kernels)) or 'none'}); pass name=")
        name = next(iter(co.kernels))
    info = co.kernel(name)
    image = _acquire_image(device, co)
    return Kernel(device, image, info, owner=owner)


# -- Kernel ---------------------------------------------------------------------------------

class Kernel:
    """A kernel loaded on a device: its descriptor address, code address and metadata, and the
    builders of its dispatch packets."""

    kind = "kernel"

    def __init__(self, device: Device, image: _LoadedImage, info: KernelInfo, *,
                 owner: object = None) -> None:
        self.device = device
        self.target = device.target
        self._image = image
        self.info = info
        self.owner = owner
        self._freed = False

    @classmethod
    def unbound(cls, info: KernelInfo, target: Target, image_base: int) -> Kernel:
        """A Kernel view of `info` as if its image were loaded at `image_base` on a `target`
        device, with no device or memory behind it: for building and checking packets."""
        kernel = cls.__new__(cls)
        kernel.device = None  # type: ignore[assignment]
        kernel.target = target
        kernel._image = _Placement(image_base)  # type: ignore[assignment]
        kernel.info = info
        kernel.owner = None
        kernel._freed = False
        return kernel

    # -- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def code_object(self) -> CodeObject:
        return self.info.code_object

    @property
    def descriptor(self):
        return self.info.descriptor

    @property
    def metadata(self):
        return self.info.metadata

    @property
    def args(self):
        return self.info.args

    @property
    def image_base(self) -> int:
        return self._image.base

    @property
    def kd_address(self) -> int:
        """GPU address of the 64-byte kernel descriptor (AQL kernel_object)."""
        return self._image.base + self.info.kd_offset

    @property
    def code_address(self) -> int:
        """GPU address of the first instruction (descriptor + entry byte offset)."""
        return self._image.base + self.info.entry_offset

    @property
    def pgm_address(self) -> int:
        """What COMPUTE_PGM_LO/HI must hold: the entry, plus 256 bytes when the descriptor
        preloads kernargs (the CP skips the compatibility prologue)."""
        skip = KERNARG_PRELOAD_ENTRY_SKIP if self.descriptor.kernarg_preload_length else 0
        return self.code_address + skip

    @property
    def wave32(self) -> bool:
        return self.descriptor.wavefront_size == 32

    @property
    def kernarg_size(self) -> int:
        return self.info.kernarg_size

    @property
    def group_segment_size(self) -> int:
        return self.info.group_segment_size

    @property
    def private_segment_size(self) -> int:
        return self.info.private_segment_size

    @property
    def freed(self) -> bool:
        return self._freed

    def __repr__(self) -> str:
        state = " freed" if self._freed else ""
        where = self.device.describe() if self.device is not None else f"{self.target.name} " \
            "(unbound)"
        return (f"<Kernel {self.name} ({self.code_object.name}) kd={self.kd_address:#x} on "
                f"{where}{state}>")

    def describe(self) -> str:
        return (f"kernel {self.name} from {self.code_object.name} at {self.kd_address:#x} "
                f"({self.target.name})")

    def free(self) -> None:
        """Release this kernel; the image is freed with the last Kernel using it. Idempotent."""
        if self._freed:
            return
        self._freed = True
        if self.device is not None:
            _release_image(self._image)
            self.device._forget(self)

    destroy = free
    close = free

    def _check(self, what: str) -> None:
        if self._freed:
            raise UsageError(f"Kernel.{what}: {self.describe()} was freed")

    # -- kernargs ---------------------------------------------------------------------------
    def geometry(self, grid, block, global_offset=(0, 0, 0)) -> Geometry:
        """Validated grid/block for this kernel (work-group size limit, required size)."""
        md = self.metadata
        limit = md.max_flat_workgroup_size if md and md.max_flat_workgroup_size else 1024
        geom = make_geometry(grid, block, global_offset, max_workgroup_size=limit)
        if md is not None and md.reqd_workgroup_size:
            want = tuple(md.reqd_workgroup_size) + (1,) * (3 - len(md.reqd_workgroup_size))
            if tuple(geom.block) != want:
                raise UsageError(f"kernel {self.name!r} requires work-groups of {want} "
                                 f"(.reqd_workgroup_size); got block {geom.block}")
        return geom

    def build_kernargs(self, args: Sequence | Mapping = (), *, grid, block,
                       global_offset=(0, 0, 0), hidden: Mapping[str, int] | None = None
                       ) -> Kernargs:
        """The kernarg segment for `args` and the dispatch geometry (see codeobj.kernarg)."""
        self.geometry(grid, block, global_offset)
        return build_kernargs(self.info, args, grid=grid, block=block,
                              global_offset=global_offset, hidden=hidden)

    # -- AQL --------------------------------------------------------------------------------
    def aql_packet(self, grid, block, kernarg_address: int, completion_signal: Any = 0, *,
                   group_segment_size: int | None = None,
                   private_segment_size: int | None = None, barrier: bool = True,
                   acquire_fence_scope: int = _aql.FenceScope.SYSTEM,
                   release_fence_scope: int = _aql.FenceScope.SYSTEM,
                   geometry: Geometry | None = None) -> _aql.KernelDispatchPacket:
        """The AQL kernel dispatch packet (`.encode()` gives its 64 bytes). `grid` counts
        work-items per dimension, `block` is the work-group size."""
        self._check("aql_packet")
        geom = geometry or self.geometry(grid, block)
        signal = getattr(completion_signal, "handle", completion_signal)
        return _aql.KernelDispatchPacket(
            barrier=int(barrier), acquire_fence_scope=acquire_fence_scope,
            release_fence_scope=release_fence_scope, dimensions=geom.dims,
            workgroup_size_x=geom.block[0], workgroup_size_y=geom.block[1],
            workgroup_size_z=geom.block[2], grid_size_x=geom.grid[0],
            grid_size_y=geom.grid[1], grid_size_z=geom.grid[2],
            private_segment_size=(self.private_segment_size if private_segment_size is None
                                  else private_segment_size),
            group_segment_size=(self.group_segment_size if group_segment_size is None
                                else group_segment_size),
            kernel_object=self.kd_address, kernarg_address=kernarg_address,
            completion_signal=int(signal or 0))

    # -- PM4 --------------------------------------------------------------------------------
    def user_sgprs(self, *, kernarg_address: int, dispatch_ptr: int = 0, queue_ptr: int = 0,
                   dispatch_id: int = 0, scratch: ScratchConfig | None = None,
                   private_segment_size: int | None = None,
                   kernarg_data: bytes | None = None) -> list[int]:
        """COMPUTE_USER_DATA values: exactly the user SGPRs the descriptor enables, in the ABI
        order (AMDGPUUsage "Initial Kernel Execution State")."""
        return [v for _, values in self._user_sgpr_groups(
            kernarg_address=kernarg_address, dispatch_ptr=dispatch_ptr, queue_ptr=queue_ptr,
            dispatch_id=dispatch_id, scratch=scratch, private_segment_size=private_segment_size,
            kernarg_data=kernarg_data) for v in values]

    def _user_sgpr_groups(self, *, kernarg_address: int, dispatch_ptr: int, queue_ptr: int,
                          dispatch_id: int, scratch: ScratchConfig | None,
                          private_segment_size: int | None,
                          kernarg_data: bytes | None) -> list[tuple[str, list[int]]]:
        """`user_sgprs` per enabled user SGPR: (name, its values)."""
        groups: list[tuple[str, list[int]]] = []
        kd = self.descriptor
        for sgpr in kd.user_sgprs():
            values: list[int] = []
            if sgpr.name == "private_segment_buffer":
                values += list(scratch.rsrc if scratch else scratch_rsrc(self.target, 0, 0))
            elif sgpr.name == "dispatch_ptr":
                values += [dispatch_ptr & 0xFFFFFFFF, dispatch_ptr >> 32]
            elif sgpr.name == "queue_ptr":
                values += [queue_ptr & 0xFFFFFFFF, queue_ptr >> 32]
            elif sgpr.name == "kernarg_segment_ptr":
                values += [kernarg_address & 0xFFFFFFFF, kernarg_address >> 32]
            elif sgpr.name == "dispatch_id":
                values += [dispatch_id & 0xFFFFFFFF, (dispatch_id >> 32) & 0xFFFFFFFF]
            elif sgpr.name == "flat_scratch_init":
                base = scratch.base if scratch else 0
                values += [base & 0xFFFFFFFF, base >> 32]
            elif sgpr.name == "kernarg_preload":
                values += _preloaded(kernarg_data, 4 * kd.kernarg_preload_offset, sgpr.count)
            elif sgpr.name == "private_segment_size":
                size = (scratch.lane_bytes if scratch else 0) if private_segment_size is None \
                    else private_segment_size
                values.append(size)
            groups.append((sgpr.name, values))
        return groups

    def pm4_dispatch(self, grid, block, kernarg_address: int, *, dispatch_ptr: int = 0,
                     queue_ptr: int = 0, dispatch_id: int = 0,
                     scratch: ScratchConfig | None = None,
                     group_segment_size: int | None = None,
                     private_segment_size: int | None = None,
                     kernarg_data: bytes | None = None, acquire: bool = True,
                     partial_flush: bool = True,
                     geometry: Geometry | None = None) -> list[_pm4.Pm4Packet]:
        """The PM4 packets of one dispatch (`[dw for p in packets for dw in p.encode(target)]`):
        ACQUIRE_MEM, SET_SH_REG of COMPUTE_PGM_LO/HI, RSRC1/2, RSRC3 (at the target's offset),
        TMPRING_SIZE and DISPATCH_SCRATCH_BASE when scratch is used, RESTART_X..Z, USER_DATA_*,
        RESOURCE_LIMITS, START_X..NUM_THREAD_Z, DISPATCH_DIRECT and CS_PARTIAL_FLUSH."""
        return self._pm4_packets(
            grid, block, kernarg_address, dispatch_ptr=dispatch_ptr, queue_ptr=queue_ptr,
            dispatch_id=dispatch_id, scratch=scratch, group_segment_size=group_segment_size,
            private_segment_size=private_segment_size, kernarg_data=kernarg_data,
            acquire=acquire, partial_flush=partial_flush, geometry=geometry)[0]

    def _pm4_packets(self, grid, block, kernarg_address: int, *, dispatch_ptr: int,
                     queue_ptr: int, dispatch_id: int, scratch: ScratchConfig | None,
                     group_segment_size: int | None, private_segment_size: int | None,
                     kernarg_data: bytes | None, acquire: bool, partial_flush: bool,
                     geometry: Geometry | None
                     ) -> tuple[list[_pm4.Pm4Packet], int, list[tuple[str, list[int]]]]:
        """`pm4_dispatch`, with the index of the COMPUTE_USER_DATA packet in it (-1: none)
        and the user SGPR values it holds, per SGPR (`_user_sgpr_groups`)."""
        self._check("pm4_dispatch")
        t = self.target
        geom = geometry or self.geometry(grid, block)
        kd = self.descriptor
        lds = self.group_segment_size if group_segment_size is None else group_segment_size
        if lds > t.lds_bytes_per_workgroup:
            raise UsageError(f"kernel {self.name!r}: {lds} bytes of LDS per work-group exceed "
                             f"the {t.lds_bytes_per_workgroup} a {t.name} work-group can have")
        gran = t.lds_alloc_granule
        rsrc2 = (kd.compute_pgm_rsrc2 & ~(0x1FF << 15)) | (((lds + gran - 1) // gran) << 15)
        pgm = self.pgm_address
        if pgm % 256:
            raise CodeObjectError(f"kernel {self.name!r}: entry {pgm:#x} is not 256-byte "
                                  "aligned; COMPUTE_PGM_LO cannot address it")
        groups = self._user_sgpr_groups(
            kernarg_address=kernarg_address, dispatch_ptr=dispatch_ptr, queue_ptr=queue_ptr,
            dispatch_id=dispatch_id, scratch=scratch, private_segment_size=private_segment_size,
            kernarg_data=kernarg_data)
        user = [v for _, values in groups for v in values]
        user_index = -1
        sh = _pm4.SetShReg.of
        packets: list[_pm4.Pm4Packet] = []
        if acquire:
            packets.append(_pm4.AcquireMem(**ACQUIRE_FIELDS[t.acquire_mem_form]))
        packets += [
            sh(t, "COMPUTE_PGM_LO", (pgm >> 8) & 0xFFFFFFFF, (pgm >> 40) & 0xFF),
            sh(t, "COMPUTE_PGM_RSRC1", kd.compute_pgm_rsrc1, rsrc2),
            sh(t, "COMPUTE_PGM_RSRC3", kd.compute_pgm_rsrc3),
        ]
        if scratch is not None:
            packets.append(sh(t, "COMPUTE_TMPRING_SIZE", scratch.tmpring_size))
            if t.architected_flat_scratch:
                packets += _scratch_base_packets(t, scratch)
        else:
            packets.append(sh(t, "COMPUTE_TMPRING_SIZE", 0))
        # where a dispatch resumes after a context save: a new dispatch starts at 0, whatever a
        # preempted one left in the queue's registers (facts-pm4.md §7 sequence)
        packets.append(sh(t, "COMPUTE_RESTART_X", 0, 0, 0))
        if user:
            user_index = len(packets)
            packets.append(sh(t, "COMPUTE_USER_DATA_0", *user))
        packets.append(sh(t, "COMPUTE_RESOURCE_LIMITS", 0))
        threads = [b | ((g % b) << 16) for g, b in zip(geom.grid, geom.block)]
        packets.append(sh(t, "COMPUTE_START_X", 0, 0, 0, *threads))
        initiator = INITIATOR_COMPUTE_SHADER_EN | INITIATOR_FORCE_START_AT_000
        if any(geom.remainders):
            initiator |= INITIATOR_PARTIAL_TG_EN
        if self.wave32:
            initiator |= t.dispatch_initiator_wave32
        wg = geom.workgroups
        packets.append(_pm4.DispatchDirect(dim_x=wg[0], dim_y=wg[1], dim_z=wg[2],
                                           initiator=initiator))
        if partial_flush:
            packets.append(_pm4.EventWrite(event_type=_pm4.EventType.CS_PARTIAL_FLUSH,
                                           event_index=4))
        return packets, user_index, groups

    def pm4_dwords(self, *args: Any, **kwargs: Any) -> list[int]:
        """`pm4_dispatch` encoded for the device's target."""
        return [dw for p in self.pm4_dispatch(*args, **kwargs) for dw in p.encode(self.target)]


def _preloaded(kernarg_data: bytes | None, start: int, count: int) -> list[int]:
    """The `count` kernarg dwords from byte `start` (0 past the segment's end) that the CP
    preloads into user SGPRs."""
    data = (kernarg_data or b"")[start:start + 4 * count]
    data = data + bytes(4 * count - len(data))
    return list(struct.unpack(f"<{count}I", data))


def _scratch_base_packets(t: Target, scratch: ScratchConfig) -> list[_pm4.Pm4Packet]:
    """SET_SH_REG COMPUTE_DISPATCH_SCRATCH_BASE: with one XCC the base; with several, each
    XCC's slice under a PRED_EXEC selecting that XCC (facts-pm4.md §7)."""
    def base(address: int) -> _pm4.SetShReg:
        return _pm4.SetShReg.of(t, "COMPUTE_DISPATCH_SCRATCH_BASE_LO",
                                (address >> 8) & 0xFFFFFFFF, (address >> 40) & 0xFF)

    if scratch.num_xcc == 1:
        return [base(scratch.base)]
    out: list[_pm4.Pm4Packet] = []
    for xcc in range(scratch.num_xcc):
        packet = base(scratch.xcc_base(xcc))
        out += [_pm4.PredExec(exec_count=len(packet.encode(t)), virtual_xcc_id_select=1 << xcc),
                packet]
    return out


# -- per-queue state --------------------------------------------------------------------------

class _ArgRing:
    """GTT memory for kernargs and packet images; a region is reused once the dispatch that
    used it completed."""

    def __init__(self, queue: Queue, size: int) -> None:
        self.queue = queue
        self.buffer = queue._internal(size, "gtt", "kernarg ring")
        self.size = size
        self.head = 0
        self.live: deque[list[Any]] = deque()    # [start, end, completion or None]

    def _reclaim(self) -> None:
        live = self.live
        while live:
            completion = live[0][2]
            if completion is None or not (getattr(completion, "_done", False)
                                          or _is_done(completion)):
                return
            live.popleft()
        self.head = 0

    def alloc(self, nbytes: int, align: int = KERNARG_ALIGN) -> tuple[int, list[Any]]:
        """(offset, entry) of `nbytes`; attach the dispatch's completion to entry[2]."""
        nbytes = -(-max(nbytes, 1) // align) * align
        if nbytes > self.size:
            raise UsageError(f"{nbytes} bytes of kernargs do not fit the {self.size}-byte ring")
        live = self.live
        while True:
            if live:
                self._reclaim()
            start = 0 if not live else self._fit(nbytes, align)
            if start is not None:
                entry = [start, start + nbytes, None]
                self.live.append(entry)
                self.head = start + nbytes
                return start, entry
            oldest = self.live[0][2]
            if oldest is None:
                raise UsageError(f"{self.queue.describe()}: the kernarg ring is full")
            oldest.wait()       # the oldest dispatch must finish before its memory is reused

    def _fit(self, n: int, align: int) -> int | None:
        if not self.live:
            return 0 if n <= self.size else None
        tail = self.live[0][0]
        head = align_up(self.head, align)
        if self.head > tail:
            # the live regions run from tail to head: room after head, or from 0 to tail
            if head + n <= self.size:
                return head
            return 0 if n <= tail else None
        # wrapped (head == tail: full): room only between head and tail
        return head if head + n <= tail else None


def _is_done(completion: Completion) -> bool:
    try:
        return bool(completion.done)
    except Exception:
        return True


class _QueueState:
    """A queue's kernel-dispatch state: kernarg ring, scratch, dispatch ids, shadow queue, and
    the dispatch plans (`_Plan`) of the kernels and geometries dispatched on it."""

    def __init__(self, queue: Queue) -> None:
        self.ring = _ArgRing(queue, KERNARG_RING_SIZE)
        self.ring_base = self.ring.buffer.gpu_address
        self.ring_bytes = self.ring.buffer._bytes()
        self.scratch: ScratchConfig | None = None
        self.dispatch_id = 0
        self.shadow_queue: int = 0
        self.plans: dict[tuple, _Plan] = {}
        self.lock = threading.Lock()


_STATES_LOCK = threading.Lock()


def _state(queue: Queue) -> _QueueState:
    """The queue's state (kept on the queue, made on its first dispatch)."""
    st = queue._dispatch_state
    if st is None:
        with _STATES_LOCK:
            st = queue._dispatch_state
            if st is None:
                st = queue._dispatch_state = _QueueState(queue)
    return st


def _num_xcc(device: Device) -> int:
    return max(device.node.num_xcc, 1)


def _shader_engines(device: Device) -> int:
    """Shader engines of one XCC (sysfs array_count counts every XCC's, facts-kfd.md §6.1)."""
    node = device.node
    per = node.simd_arrays_per_engine or 1
    return max((node.array_count or per) // per // _num_xcc(device), 1)


def _max_waves(device: Device) -> int:
    """Waves one XCC can hold (sysfs counts the CUs of every XCC)."""
    node = device.node
    return max(node.cu_count * node.simd_per_cu * node.max_waves_per_simd // _num_xcc(device), 1)


def _write_amd_queue_scratch(queue: Queue, address: int, cfg: ScratchConfig) -> None:
    """The scratch fields of an amd_queue_t (ROCR AqlQueue::InitScratchSRD)."""
    q = _aql.AMD_QUEUE
    for i, word in enumerate(cfg.rsrc):
        store32(address + q.scratch_resource_descriptor + 4 * i, word)
    store64(address + q.scratch_backing_memory_location, cfg.base)
    store64(address + q.scratch_backing_memory_byte_size, cfg.xcc_size)
    store32(address + q.scratch_wave64_lane_byte_size, cfg.wave64_lane_bytes)
    store32(address + q.compute_tmpring_size, cfg.tmpring_size)


def _ensure_scratch(queue: Queue, st: _QueueState, kernel: Kernel, geom: Geometry,
                    lane_bytes: int) -> ScratchConfig:
    lanes = kernel.descriptor.wavefront_size
    waves_per_group = -(-geom.workgroup_size // lanes)
    wg = geom.workgroups
    waves = min(waves_per_group * wg[0] * wg[1] * wg[2], _max_waves(queue.device))
    ses = _shader_engines(queue.device)
    # every shader engine can host a work-group: on gfx11, where WAVES counts per engine, give
    # each engine room for one whole work-group at least
    if queue.target.tmpring_waves_per_se:
        waves = max(waves, waves_per_group * ses)
    cur = st.scratch
    if cur is not None and cur.covers(align_up(lane_bytes, SCRATCH_LANE_ALIGN), lanes, waves):
        return cur
    if cur is not None:
        lane_bytes = max(lane_bytes, cur.lane_bytes * cur.wave_lanes // lanes)
        waves = max(waves, cur.waves)
    xcc = _num_xcc(queue.device)
    probe = scratch_config(queue.target, lane_bytes=lane_bytes, wave_lanes=lanes, waves=waves,
                           shader_engines=ses, num_xcc=xcc)
    buf: Buffer = queue._internal(align_up(probe.size, 4096), "vram", "scratch backing",
                                  cpu_access=False)
    cfg = scratch_config(queue.target, lane_bytes=lane_bytes, wave_lanes=lanes, waves=waves,
                         shader_engines=ses, num_xcc=xcc, base=buf.gpu_address)
    st.scratch = cfg
    if queue.kind == "aql":
        _write_amd_queue_scratch(queue, queue.amd_queue.gpu_address, cfg)
    elif st.shadow_queue:
        _write_amd_queue_scratch(queue, st.shadow_queue, cfg)
    return cfg


def _aperture_hidden_values(device: Device) -> dict[str, int]:
    """hidden_private_base / hidden_shared_base: the high 32 bits of the flat private
    (scratch) and shared (LDS) aperture bases (AMDGPUUsage; read by code for targets without
    aperture registers)."""
    ap = device.apertures
    if ap is None:
        return {}
    return {"private_base": ap.scratch_base >> 32, "shared_base": ap.lds_base >> 32}


def _shadow_queue(queue: Queue, st: _QueueState) -> int:
    """A persistent amd_queue_t image for a PM4 queue (the queue pointer user SGPR)."""
    if not st.shadow_queue:
        buf = queue._internal(4096, "gtt", "shadow amd_queue_t")
        node = queue.device.node
        ap = queue.device.apertures
        buf.write(0, _aql.AMD_QUEUE.pack(
            type=0, features=1, size=0, id=queue.queue_id,
            group_segment_aperture_base_hi=(ap.lds_base >> 32) if ap else 0,
            private_segment_aperture_base_hi=(ap.scratch_base >> 32) if ap else 0,
            max_cu_id=max(node.cu_count - 1, 0),
            max_wave_id=max(node.max_waves_per_simd * node.simd_per_cu - 1, 0),
            read_dispatch_id_field_base_byte_offset=_aql.AMD_QUEUE.read_dispatch_id,
            queue_properties=int(_aql.QueueProperty.IS_PTR64)))
        st.shadow_queue = buf.gpu_address
        if st.scratch is not None:
            _write_amd_queue_scratch(queue, st.shadow_queue, st.scratch)
    return st.shadow_queue


# -- dispatch plans --------------------------------------------------------------------------

PLAN_CACHE_SIZE = 64              # plans kept per queue (cleared when full)
_NO_OFFSET = (0, 0, 0)


def _plain_shape(value: Any) -> bool:
    """Is `value` an int or a tuple of ints (exact types)? Only such grids, blocks and offsets
    key the plan cache: equal keys then mean equal shapes, and values that merely compare
    equal (1.0, True, numpy ints) take the checks of an uncached plan every time."""
    if type(value) is int:
        return True
    return type(value) is tuple and all(type(v) is int for v in value)


_RENDERED = ("dispatch_ptr", "kernarg_segment_ptr", "dispatch_id")   # _Pm4Template.render's


class _Pm4Template:
    """The dwords of one PM4 dispatch (`Kernel.pm4_dispatch`) encoded once, and where the user
    SGPRs that change between dispatches sit in them (dispatch pointer, kernarg pointer,
    dispatch id, preloaded kernarg dwords): `render` patches only those."""

    def __init__(self, kernel: Kernel, geom: Geometry, *, queue_ptr: int,
                 scratch: ScratchConfig | None, lds: int, private: int, barrier: Any) -> None:
        t = kernel.target
        packets, user_index, groups = kernel._pm4_packets(
            geom.grid, geom.block, 0, dispatch_ptr=0, queue_ptr=queue_ptr, dispatch_id=0,
            scratch=scratch, group_segment_size=lds, private_segment_size=private,
            kernarg_data=None, acquire=True, partial_flush=barrier, geometry=geom)
        words = array("I")
        starts = []
        user_at = -1
        for i, packet in enumerate(packets):
            starts.append(len(words))
            encoded = packet.encode(t)
            words.extend(encoded)
            if i == user_index:
                # SET_SH_REG: the register values are the packet's last dwords
                user_at = len(words) - sum(len(values) for _, values in groups)
        self.words = words
        self.starts = tuple(starts)
        # (dword, which): render's dispatch_ptr (0), kernarg_segment_ptr (1), dispatch_id (2)
        self.pointers: list[tuple[int, int]] = []
        self.preload: tuple[int, int, int] | None = None   # (dword, kernarg byte, count)
        at = user_at
        for name, values in groups:
            if name in _RENDERED:
                self.pointers.append((at, _RENDERED.index(name)))
            elif name == "kernarg_preload":
                self.preload = (at, 4 * kernel.descriptor.kernarg_preload_offset, len(values))
            at += len(values)

    def render(self, dispatch_ptr: int, kernarg_address: int, dispatch_id: int,
               kernarg_data: bytes) -> array:
        words = self.words[:]
        values = (dispatch_ptr, kernarg_address, dispatch_id)
        for at, which in self.pointers:
            value = values[which]
            words[at] = value & 0xFFFFFFFF
            words[at + 1] = (value >> 32) & 0xFFFFFFFF
        if self.preload is not None:
            at, start, count = self.preload
            words[at:at + count] = array("I", _preloaded(kernarg_data, start, count))
        return words


class _Plan:
    """What the dispatches of one kernel over one geometry on one queue share, worked out on
    the first: the validated geometry, the kernarg image with the queue's hidden arguments
    (`KernargTemplate`), the AQL dispatch packet encoded once (`DispatchTemplate`) and the
    PM4 dword sequence per LDS size and scratch (`_Pm4Template`). Everything per dispatch —
    arguments, LDS and scratch checks, kernarg placement, completion signal — is still done
    on every dispatch."""

    def __init__(self, queue: Queue, st: _QueueState, kernel: Kernel, grid: Any, block: Any,
                 global_offset: Any, barrier: Any) -> None:
        self.geom = geom = kernel.geometry(grid, block, global_offset)
        self.kernel = kernel
        self.barrier = barrier
        info = kernel.info
        self.static_lds = kernel.group_segment_size
        self.private = kernel.private_segment_size
        self.uses_dynamic_stack = info.uses_dynamic_stack
        self.needs_scratch = info.needs_scratch
        self.what = f"dispatch of {kernel.name}"
        self.queue_ptr = queue.amd_queue.gpu_address if queue.kind == "aql" else 0
        if queue.kind == "pm4" and kernel.descriptor.has("ENABLE_SGPR_QUEUE_PTR"):
            self.queue_ptr = _shadow_queue(queue, st)
        self.hidden = {"queue_ptr": self.queue_ptr, **_aperture_hidden_values(queue.device)}
        self.kernargs = KernargTemplate(info, geom, hidden=self.hidden)
        self.aql: _aql.DispatchTemplate | None = None
        self.pm4: dict[tuple[int, int, int], tuple[_Pm4Template, ScratchConfig | None]] = {}
        self.pm4_last: tuple | None = None       # (lds, private, scratch, template) used last

    def aql_template(self) -> _aql.DispatchTemplate:
        if self.aql is None:
            geom = self.geom
            self.aql = _aql.DispatchTemplate(self.kernel.aql_packet(
                geom.grid, geom.block, 0, 0, group_segment_size=self.static_lds,
                private_segment_size=self.private, barrier=self.barrier, geometry=geom))
        return self.aql

    def pm4_template(self, scratch: ScratchConfig | None, lds: int, private: int
                     ) -> _Pm4Template:
        last = self.pm4_last
        if last is not None and last[0] == lds and last[1] == private and last[2] is scratch:
            return last[3]
        key = (lds, private, id(scratch))
        hit = self.pm4.get(key)
        if hit is not None and hit[1] is scratch:
            self.pm4_last = (lds, private, scratch, hit[0])
            return hit[0]
        if len(self.pm4) >= 8:
            self.pm4.clear()
        tpl = _Pm4Template(self.kernel, self.geom, queue_ptr=self.queue_ptr, scratch=scratch,
                           lds=lds, private=private, barrier=self.barrier)
        self.pm4[key] = (tpl, scratch)
        self.pm4_last = (lds, private, scratch, tpl)
        return tpl


def _plan(queue: Queue, st: _QueueState, kernel: Kernel, grid: Any, block: Any,
          global_offset: Any, barrier: Any) -> _Plan:
    """The cached plan for these inputs, or a new one (cached when the inputs key safely)."""
    if (type(barrier) is bool and _plain_shape(grid) and _plain_shape(block)
            and (global_offset is _NO_OFFSET or _plain_shape(global_offset))):
        key = (kernel, grid, block, global_offset, barrier)
        plan = st.plans.get(key)
        if plan is None:
            plan = _Plan(queue, st, kernel, grid, block, global_offset, barrier)
            if len(st.plans) >= PLAN_CACHE_SIZE:
                st.plans.clear()
            st.plans[key] = plan
        return plan
    return _Plan(queue, st, kernel, grid, block, global_offset, barrier)


# -- dispatch ---------------------------------------------------------------------------------

def dispatch(queue: Queue, kernel: Kernel, grid, block, args: Any = (), *,
             signal: Signal | None = None, wait_value: int | None = None,
             signal_value: int = 0, global_offset=_NO_OFFSET,
             hidden: Mapping[str, int] | None = None, barrier: bool = True,
             dynamic_stack: int = DEFAULT_DYNAMIC_STACK) -> Completion:
    """Launch `kernel` on `queue` (AQL or PM4) and return a Completion.

    `args`: the explicit arguments (sequence or mapping by name), or the raw kernarg bytes.
    `signal`: a completion signal of the caller's; AQL decrements it by one (wait_value
    defaults to its current value - 1), PM4 sets it to `signal_value` (default 0). Without
    one, the Completion uses a signal of its own.

    What depends only on the kernel, the geometry and the queue comes from a plan made on the
    first such dispatch (`_Plan`); the arguments, the LDS and scratch checks and the packets'
    addresses are handled on every dispatch.
    """
    if not isinstance(kernel, Kernel):
        raise UsageError(f"Queue.dispatch: expected a Kernel (Device.load_kernel), got "
                         f"{type(kernel).__name__}")
    if kernel._freed:
        kernel._check("dispatch")
    if kernel.device is not queue.device:
        raise UsageError(f"{kernel.describe()} is loaded on {kernel.device.describe()}, not on "
                         f"{queue.device.describe()}: load it on the queue's device")
    kind = queue.kind
    if kind != "aql" and kind != "pm4":
        raise UsageError(f"{queue.describe()}: kernels dispatch on 'aql' or 'pm4' queues, not "
                         f"{queue.kind!r}")
    st = queue._dispatch_state or _state(queue)
    with st.lock:
        if type(grid) is int and type(block) is int and global_offset is _NO_OFFSET \
                and barrier is True:
            plan = st.plans.get((kernel, grid, block, global_offset, barrier))   # the usual
            if plan is None:
                plan = _plan(queue, st, kernel, grid, block, global_offset, barrier)
        else:
            plan = _plan(queue, st, kernel, grid, block, global_offset, barrier)
        geom = plan.geom
        if type(args) is not list and type(args) is not tuple and \
                isinstance(args, bytes | bytearray | memoryview):
            data = bytes(args)
            dynamic, lds = 0, plan.static_lds
        elif hidden:
            values = dict(plan.hidden)
            values.update(hidden)
            kargs = pack_kernargs(kernel.info, args, geom, hidden=values)
            data, dynamic, lds = kargs.data, kargs.dynamic_lds_size, kargs.group_segment_size
        else:
            data, dynamic, lds = plan.kernargs.pack_parts(args)
        target = queue.target
        if lds > target.lds_bytes_per_workgroup:
            raise UsageError(f"kernel {kernel.name!r}: {lds} bytes of LDS per work-group "
                             f"(static {kernel.group_segment_size} + dynamic "
                             f"{dynamic}) exceed the "
                             f"{target.lds_bytes_per_workgroup} of {target.name}")
        lane_bytes = plan.private + (
            check_int("dynamic_stack", dynamic_stack, minimum=0)
            if plan.uses_dynamic_stack else 0)
        scratch = None
        if plan.needs_scratch or lane_bytes:
            scratch = _ensure_scratch(queue, st, kernel, geom, lane_bytes)
            lane_bytes = scratch.lane_bytes
        ring = st.ring
        karg_size = len(data) if len(data) > 16 else 16
        karg_region = -(-karg_size // KERNARG_ALIGN) * KERNARG_ALIGN
        offset, entry = ring.alloc(karg_region + 64 if kind == "pm4" else karg_region)
        kernarg_address = st.ring_base + offset
        st.ring_bytes[offset:offset + len(data)] = data
        sig, owns = queue._completion_signal(signal, 1)
        completion: Completion | None = None
        # the Completion is made before the doorbell: after it, the GPU thread is waiting for
        # this thread to reach its wait
        try:
            if kind == "aql":
                if wait_value is None:
                    wait_value = 0 if owns else sig.value - 1
                header, body = (plan.aql or plan.aql_template()).parts(
                    lane_bytes, lds, kernarg_address, sig.address)
                completion = _track(queue, entry, Completion(
                    queue, sig, wait_value, "==" if owns else "<=", owns_signal=owns,
                    what=plan.what))
                sig._submitted_on(queue)
                queue._publish(header, body)
            else:
                packet_offset = offset + karg_region
                dispatch_ptr = st.ring_base + packet_offset
                st.ring_bytes[packet_offset:packet_offset + _aql.PACKET_BYTES] = \
                    (plan.aql or plan.aql_template()).encode(lane_bytes, lds, kernarg_address,
                                                             sig.address)
                st.dispatch_id += 1
                pm4 = plan.pm4_template(scratch, lds, lane_bytes)
                words = pm4.render(dispatch_ptr, kernarg_address, st.dispatch_id - 1, data)
                final = 0 if owns else signal_value
                completion = _track(queue, entry, Completion(
                    queue, sig, final if wait_value is None else wait_value, "==",
                    owns_signal=owns, what=plan.what))
                queue._submit_with_signal(words, pm4.starts, sig, final)
        except BaseException:
            ring.live.remove(entry)
            if completion is not None:
                queue._completions.discard(completion)
            if owns:
                sig.free()
            raise
        return completion


def _track(queue: Queue, entry: list[Any], completion: Completion) -> Completion:
    """Tie `completion` to its kernarg region (`entry`) and to the queue."""
    entry[2] = completion
    queue._completions.add(completion)
    return completion


