"""Dispatch state as the CP programs it: from SH registers (PM4) or an AQL packet + descriptor.

`DispatchState` is the register-level description of one dispatch that both front ends build:
the PM4 engine from the COMPUTE_* registers a queue set with SET_SH_REG before
DISPATCH_DIRECT, the AQL packet processor from the kernel dispatch packet, the 64-byte kernel
descriptor it points at and the queue's amd_queue_t (what the CP firmware does for AQL).
`to_shader_regs` turns it into the shader core's `DispatchRegs` (part F's type).

Register fields (facts-pm4.md §4): COMPUTE_PGM_LO/HI hold the code address >> 8;
NUM_THREAD_X/Y/Z: NUM_THREAD_FULL [15:0], NUM_THREAD_PARTIAL [31:16];
DISPATCH_INITIATOR: COMPUTE_SHADER_EN 0, PARTIAL_TG_EN 1, FORCE_START_AT_000 2,
USE_THREAD_DIMENSIONS 5, CS_W32_EN 15 (gfx10+).
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field

from ...packets.aql import decode_tmpring_size
from .common import QueueError

# DISPATCH_INITIATOR bits (gc_9_4_2 / gc_11_0_0 sh_mask; facts-pm4.md §4.2)
INIT_COMPUTE_SHADER_EN = 1 << 0
INIT_PARTIAL_TG_EN = 1 << 1
INIT_FORCE_START_AT_000 = 1 << 2
INIT_USE_THREAD_DIMENSIONS = 1 << 5

# Exception codes the CP reports for bad dispatch packets (kfd_ioctl.h enum
# kfd_dbg_trap_exception_code, KFD 1.13+). Reasons start with the code's name.
EC_DIM_INVALID = "EC_QUEUE_PACKET_DISPATCH_DIM_INVALID"
EC_GROUP_SEGMENT_SIZE_INVALID = "EC_QUEUE_PACKET_DISPATCH_GROUP_SEGMENT_SIZE_INVALID"
EC_CODE_INVALID = "EC_QUEUE_PACKET_DISPATCH_CODE_INVALID"
EC_RESERVED = "EC_QUEUE_PACKET_RESERVED"
EC_UNSUPPORTED = "EC_QUEUE_PACKET_UNSUPPORTED"
EC_WORK_GROUP_SIZE_INVALID = "EC_QUEUE_PACKET_DISPATCH_WORK_GROUP_SIZE_INVALID"
EC_REGISTER_INVALID = "EC_QUEUE_PACKET_DISPATCH_REGISTER_INVALID"
EC_VENDOR_UNSUPPORTED = "EC_QUEUE_PACKET_VENDOR_UNSUPPORTED"
EC_ILLEGAL_INSTRUCTION = "EC_QUEUE_WAVE_ILLEGAL_INSTRUCTION"

MAX_WORKGROUP_SIZE = 1024       # work-items per workgroup on every target here (HSA limit)
MAX_USER_SGPRS = 16             # COMPUTE_USER_DATA_0..15


@dataclass
class DispatchState:
    """One dispatch, register level. Sizes are in work-items; ids in workgroups."""

    pgm_addr: int                      # byte address of the first instruction
    rsrc1: int
    rsrc2: int
    rsrc3: int
    user_data: list[int]               # COMPUTE_USER_DATA_0..15
    grid: tuple[int, int, int]         # work-items per dimension (incl. partial groups)
    workgroup: tuple[int, int, int]    # work-items per full workgroup
    start: tuple[int, int, int] = (0, 0, 0)   # first workgroup id (COMPUTE_START_*)
    wave32: bool = False
    scratch_base: int = 0              # DISPATCH_SCRATCH_BASE (architected flat scratch)
    tmpring_size: int = 0              # COMPUTE_TMPRING_SIZE register value
    scratch_wave_bytes: int = 0        # bytes of scratch per wave (TMPRING WAVESIZE * unit)
    scratch_waves: int = 0             # TMPRING WAVES
    private_segment_size: int = 0      # bytes per work-item (AQL packet)
    lds_bytes: int = 0                 # LDS per workgroup
    dispatch_id: int = 0
    dispatch_ptr: int = 0              # AQL packet address (0 for PM4)
    queue_ptr: int = 0                 # amd_queue_t address (0 for PM4)
    kernarg_ptr: int = 0
    initiator: int = 0
    source: str = ""                   # "PM4 DISPATCH_DIRECT at …" for messages
    kernel_code_properties: int | None = None   # AQL: the descriptor's enable bits
    lds_aperture: int = 1 << 48        # SH_MEM_BASES shared / private apertures (the KFD
    private_aperture: int = 2 << 48    # process's v9 layout, from its process-device data)
    extra: dict = field(default_factory=dict)

    @property
    def workgroup_counts(self) -> tuple[int, int, int]:
        return tuple(-(-g // w) for g, w in zip(self.grid, self.workgroup, strict=True))


def _split_threads(value: int) -> tuple[int, int]:
    return value & 0xFFFF, (value >> 16) & 0xFFFF


def state_from_sh_regs(target, regs: dict[int, int], dims: tuple[int, int, int],
                       initiator: int, *, source: str) -> DispatchState:
    """The dispatch DISPATCH_DIRECT starts, from the queue's SH registers (SH offsets)."""
    r = target.reg

    def get(name: str) -> int:
        return regs.get(r(name), 0)

    if not initiator & INIT_COMPUTE_SHADER_EN:
        raise QueueError(f"{EC_REGISTER_INVALID}: {source}: DISPATCH_INITIATOR 0x{initiator:x} "
                         "has COMPUTE_SHADER_EN (bit 0) clear")
    pgm = ((get("COMPUTE_PGM_HI") & 0xFF) << 40) | (get("COMPUTE_PGM_LO") << 8)
    wg = []
    grid = []
    partial_en = bool(initiator & INIT_PARTIAL_TG_EN)
    thread_dims = bool(initiator & INIT_USE_THREAD_DIMENSIONS)
    for axis, name in enumerate("XYZ"):
        full, partial = _split_threads(get(f"COMPUTE_NUM_THREAD_{name}"))
        if full == 0:
            raise QueueError(f"{EC_WORK_GROUP_SIZE_INVALID}: {source}: COMPUTE_NUM_THREAD_{name} "
                             "NUM_THREAD_FULL is 0")
        d = dims[axis]
        if thread_dims:
            # DIM_* counts threads; the CP derives the groups and the partial last group.
            total = d
        elif partial_en and partial:
            total = (d - 1) * full + partial if d else 0
        else:
            total = d * full
        wg.append(full)
        grid.append(total)
    size = wg[0] * wg[1] * wg[2]
    if size > MAX_WORKGROUP_SIZE:
        raise QueueError(f"{EC_WORK_GROUP_SIZE_INVALID}: {source}: workgroup {wg[0]}x{wg[1]}x"
                         f"{wg[2]} = {size} work-items exceeds {MAX_WORKGROUP_SIZE}")
    if initiator & INIT_FORCE_START_AT_000:
        start = (0, 0, 0)
    else:
        start = (get("COMPUTE_START_X"), get("COMPUTE_START_Y"), get("COMPUTE_START_Z"))
    tmpring = get("COMPUTE_TMPRING_SIZE")
    waves, wave_bytes = decode_tmpring_size(target, tmpring)
    scratch = ((get("COMPUTE_DISPATCH_SCRATCH_BASE_HI") & 0xFF) << 40) | (
        get("COMPUTE_DISPATCH_SCRATCH_BASE_LO") << 8)
    rsrc2 = get("COMPUTE_PGM_RSRC2")
    return DispatchState(
        pgm_addr=pgm, rsrc1=get("COMPUTE_PGM_RSRC1"), rsrc2=rsrc2,
        rsrc3=get("COMPUTE_PGM_RSRC3"),
        user_data=[get(f"COMPUTE_USER_DATA_{i}") for i in range(16)],
        grid=tuple(grid), workgroup=tuple(wg), start=start,
        wave32=bool(target.dispatch_initiator_wave32
                    and initiator & target.dispatch_initiator_wave32),
        scratch_base=scratch, tmpring_size=tmpring, scratch_wave_bytes=wave_bytes,
        scratch_waves=waves,
        lds_bytes=((rsrc2 >> 15) & 0x1FF) * target.lds_alloc_granule,
        dispatch_id=get("COMPUTE_DISPATCH_ID"), initiator=initiator, source=source,
    )


# Shader-core adapter ----------------------------------------------------------------------

def apply_apertures(state: DispatchState, queue) -> DispatchState:
    """Take the LDS / private (scratch) aperture bases from the queue's process-device data
    (what KFD programs into SH_MEM_BASES for the process's VMID)."""
    pdd = getattr(queue, "pdd", None)
    if pdd is not None:
        state.lds_aperture = getattr(pdd, "lds_base", state.lds_aperture)
        state.private_aperture = getattr(pdd, "scratch_base", state.private_aperture)
    return state


_REG_FIELDS: tuple | None = None


def _reg_fields(source: str) -> tuple:
    """(DispatchRegs, state fields it declares, its field names, positional getter or None)."""
    global _REG_FIELDS
    if _REG_FIELDS is None:
        try:
            from ..shader import DispatchRegs
        except ImportError:
            raise QueueError(f"{EC_ILLEGAL_INSTRUCTION}: {source}: the simulated shader "
                             "core (pytest_amdgpu.sim.shader) is not available, so no kernel "
                             "can run") from None
        order = tuple(f.name for f in dataclasses.fields(DispatchRegs) if f.init)
        names = frozenset(order)
        # positional construction when every DispatchRegs field comes from a state field
        getter = operator.attrgetter(*order) if set(order) <= set(_STATE_FIELDS) else None
        _REG_FIELDS = (DispatchRegs, tuple(n for n in _STATE_FIELDS if n in names), names,
                       getter, order == _STATE_FIELDS)
    return _REG_FIELDS


def to_shader_regs(state: DispatchState):
    """Build part F's DispatchRegs from a DispatchState (the fields it declares)."""
    cls, fields, names, getter, _same = _reg_fields(state.source)
    extra = state.extra
    if getter is not None and not any(k in names for k in extra):
        return cls(*getter(state))
    values = {n: getattr(state, n) for n in fields}
    for k, v in extra.items():
        if k in names:
            values[k] = v
    return cls(**values)


def shader_regs(values: tuple, extra: dict, queue):
    """`to_shader_regs(apply_apertures(DispatchState(*values, extra=extra), queue))`.

    `values` are DispatchState's fields in order up to kernel_code_properties (VALUE_FIELDS).
    When DispatchRegs declares exactly DispatchState's fields in the same order, the registers
    are built directly (no DispatchState in between: this runs once per AQL dispatch).
    """
    cls, _fields, names, _getter, same = _REG_FIELDS or _reg_fields(values[_SOURCE])
    if not same or not names.isdisjoint(extra):
        return to_shader_regs(apply_apertures(DispatchState(*values, extra=extra), queue))
    lds_aperture, private_aperture = _LDS_APERTURE, _PRIVATE_APERTURE
    pdd = getattr(queue, "pdd", None)
    if pdd is not None:
        lds_aperture = getattr(pdd, "lds_base", lds_aperture)
        private_aperture = getattr(pdd, "scratch_base", private_aperture)
    return cls(*values, lds_aperture, private_aperture)


_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(DispatchState) if f.name != "extra")
# the fields a front end computes (shader_regs adds the apertures), in DispatchState's order
VALUE_FIELDS = _STATE_FIELDS[:-2]
assert _STATE_FIELDS[-2:] == ("lds_aperture", "private_aperture")
_SOURCE = VALUE_FIELDS.index("source")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DispatchState)}
_LDS_APERTURE, _PRIVATE_APERTURE = _DEFAULTS["lds_aperture"], _DEFAULTS["private_aperture"]
