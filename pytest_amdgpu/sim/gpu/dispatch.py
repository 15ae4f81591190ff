"""Dispatch state as the CP programs it: from SH registers (PM4) or an AQL packet + descriptor.

`DispatchState` is the register-level description of one dispatch that both front ends build:
the PM4 engine from the COMPUTE_* registers a queue set with SET_SH_REG before
DISPATCH_DIRECT, the AQL packet processor from the kernel dispatch packet, the 64-byte kernel
descriptor it points at and the queue's amd_queue_t (what the CP firmware does for AQL).
`to_shader_regs` turns it into the shader core's `DispatchRegs` (part F's type). Once per
dispatch, both front ends skip the DispatchState: they compute its fields as a tuple
(`sh_dispatch_values` for PM4, the AQL processor's own) and `shader_regs` builds the registers
from it directly when DispatchRegs has the same fields.

Register fields (facts-pm4.md §4): COMPUTE_PGM_LO/HI hold the code address >> 8;
NUM_THREAD_X/Y/Z: NUM_THREAD_FULL [15:0], NUM_THREAD_PARTIAL [31:16];
DISPATCH_INITIATOR: COMPUTE_SHADER_EN 0, PARTIAL_TG_EN 1, FORCE_START_AT_000 2,
USE_THREAD_DIMENSIONS 5, CS_W32_EN 15 (gfx10+).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence
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


# The registers DISPATCH_DIRECT reads besides COMPUTE_USER_DATA_0..15, in the order
# sh_dispatch_values unpacks them.
_SH_READ_NAMES = ("COMPUTE_PGM_LO", "COMPUTE_PGM_HI", "COMPUTE_PGM_RSRC1", "COMPUTE_PGM_RSRC2",
                  "COMPUTE_PGM_RSRC3", "COMPUTE_NUM_THREAD_X", "COMPUTE_NUM_THREAD_Y",
                  "COMPUTE_NUM_THREAD_Z", "COMPUTE_START_X", "COMPUTE_START_Y",
                  "COMPUTE_START_Z", "COMPUTE_TMPRING_SIZE", "COMPUTE_DISPATCH_SCRATCH_BASE_LO",
                  "COMPUTE_DISPATCH_SCRATCH_BASE_HI", "COMPUTE_DISPATCH_ID")


class ShReads:
    """What DISPATCH_DIRECT reads from the SH registers of one target, resolved once: the
    register offsets (one itemgetter over the register file, a slice for the user data when
    its registers are consecutive) and the target constants it uses. `values` starts a
    dispatch from a register file (sh_dispatch_values without the look-ups)."""

    __slots__ = ("get", "lds_granule", "size", "target", "tmpring", "user", "wave32_bit")

    def __init__(self, target) -> None:
        self.target = target
        offsets = [target.reg(n) for n in _SH_READ_NAMES]
        user = [target.reg(f"COMPUTE_USER_DATA_{i}") for i in range(MAX_USER_SGPRS)]
        self.get = operator.itemgetter(*offsets)
        if user == list(range(user[0], user[0] + MAX_USER_SGPRS)):    # one slice: a list
            self.user = operator.itemgetter(slice(user[0], user[0] + MAX_USER_SGPRS))
        else:
            get_user = operator.itemgetter(*user)
            self.user = lambda regs: list(get_user(regs))
        self.size = max(*offsets, *user) + 1        # a register file must cover these
        self.wave32_bit = target.dispatch_initiator_wave32
        self.lds_granule = target.lds_alloc_granule
        self.tmpring = (0, *decode_tmpring_size(target, 0))   # last (value, waves, bytes)

    def values(self, regs: list[int], dx: int, dy: int, dz: int, initiator: int,
               source: object) -> tuple:
        """sh_dispatch_values for a register file that is a list covering `size` registers
        and the DIM_X/Y/Z of the packet."""
        (pgm_lo, pgm_hi, rsrc1, rsrc2, rsrc3, ntx, nty, ntz, sx, sy, sz, tmpring, scratch_lo,
         scratch_hi, dispatch_id) = self.get(regs)
        user = self.user(regs)
        if not initiator & INIT_COMPUTE_SHADER_EN:
            raise QueueError(f"{EC_REGISTER_INVALID}: {source}: DISPATCH_INITIATOR "
                             f"0x{initiator:x} has COMPUTE_SHADER_EN (bit 0) clear")
        # NUM_THREAD_FULL [15:0], NUM_THREAD_PARTIAL [31:16]
        wx, wy, wz = ntx & 0xFFFF, nty & 0xFFFF, ntz & 0xFFFF
        if not (wx and wy and wz):
            name = "X" if not wx else "Y" if not wy else "Z"
            raise QueueError(f"{EC_WORK_GROUP_SIZE_INVALID}: {source}: "
                             f"COMPUTE_NUM_THREAD_{name} NUM_THREAD_FULL is 0")
        if initiator & INIT_USE_THREAD_DIMENSIONS:
            # DIM_* counts threads; the CP derives the groups and the partial last group.
            grid = (dx, dy, dz)
        elif initiator & INIT_PARTIAL_TG_EN and (ntx | nty | ntz) & 0xFFFF0000:
            grid = (_partial(dx, wx, (ntx >> 16) & 0xFFFF),
                    _partial(dy, wy, (nty >> 16) & 0xFFFF),
                    _partial(dz, wz, (ntz >> 16) & 0xFFFF))
        else:
            grid = (dx * wx, dy * wy, dz * wz)
        if wx * wy * wz > MAX_WORKGROUP_SIZE:
            raise QueueError(f"{EC_WORK_GROUP_SIZE_INVALID}: {source}: workgroup {wx}x{wy}x"
                             f"{wz} = {wx * wy * wz} work-items exceeds {MAX_WORKGROUP_SIZE}")
        memo = self.tmpring
        if memo[0] != tmpring:
            memo = self.tmpring = (tmpring, *decode_tmpring_size(self.target, tmpring))
        w32 = self.wave32_bit
        # in VALUE_FIELDS order: pgm_addr, rsrc1-3, user_data, grid, workgroup, start, wave32,
        # scratch_base, tmpring_size, scratch_wave_bytes, scratch_waves, private_segment_size,
        # lds_bytes, dispatch_id, dispatch_ptr, queue_ptr, kernarg_ptr, initiator, source,
        # kernel_code_properties
        return (((pgm_hi & 0xFF) << 40) | (pgm_lo << 8), rsrc1, rsrc2, rsrc3, user, grid,
                (wx, wy, wz),
                (0, 0, 0) if initiator & INIT_FORCE_START_AT_000 else (sx, sy, sz),
                bool(w32 and initiator & w32),
                ((scratch_hi & 0xFF) << 40) | (scratch_lo << 8), tmpring, memo[2], memo[1], 0,
                ((rsrc2 >> 15) & 0x1FF) * self.lds_granule, dispatch_id, 0, 0, 0, initiator,
                source, None)


_SH_READS: dict[int, ShReads] = {}
GRID_INDEX = 5      # where the grid is in sh_dispatch_values' tuple (DispatchState's order)


def sh_reads(target) -> ShReads:
    """The ShReads of `target`, made once per target."""
    r = _SH_READS.get(id(target))
    if r is None or r.target is not target:
        r = _SH_READS[id(target)] = ShReads(target)
    return r


class ShDispatch:
    """DISPATCH_DIRECT for one queue: the shader registers (part F's DispatchRegs) of a
    dispatch from the queue's SH register file and the packet, through ShReads.values and
    shader_regs, with the queue's apertures read once (fixed for a process-device's life).

    It remembers the last dispatch: one with the same registers, dimensions and initiator
    as the one before (a kernel launched again) passed the same checks and has the same
    registers but for its user data and source, which are taken anew."""

    __slots__ = ("apertures", "args", "key", "queue", "reads")

    def __init__(self, target, queue) -> None:
        self.reads = sh_reads(target)
        self.queue = queue
        self.apertures: tuple[int, int] | None = None
        self.key: tuple | None = None        # (registers read, packet) of the last dispatch
        self.args: list | None = None        # its DispatchRegs arguments; None: empty grid

    def regs(self, regs: list[int], packet: tuple[int, int, int, int], source: object):
        """The DispatchRegs for the packet's (DIM_X, DIM_Y, DIM_Z, DISPATCH_INITIATOR), None
        for an empty grid (no wave is launched). Raises the CP's QueueError for a bad one."""
        sr = self.reads
        key = (sr.get(regs), packet)
        if key == self.key:
            args = self.args
            if args is None:
                return None
            args[_USER] = sr.user(regs)
            args[_SOURCE] = source
            return _REG_FIELDS[0](*args)
        values = sr.values(regs, *packet, source)
        self.key = None
        if 0 in values[GRID_INDEX]:
            self.key, self.args = key, None
            return None
        cls, _fields, _names, _getter, same = _REG_FIELDS or _reg_fields(str(source))
        if not same:
            return shader_regs(values, {}, self.queue)
        if self.apertures is None:
            self.apertures = queue_apertures(self.queue)
        self.key, self.args = key, [*values, *self.apertures]
        return cls(*self.args)


def sh_dispatch_values(target, regs: Sequence[int] | Mapping[int, int],
                       dims: tuple[int, int, int], initiator: int, source: object) -> tuple:
    """The dispatch DISPATCH_DIRECT starts, as DispatchState's fields in order up to
    kernel_code_properties (VALUE_FIELDS), from the queue's SH registers.

    `regs` is the SH register file indexed by SH offset (a list covering the compute
    registers, as PM4Executor keeps it), or a mapping offset -> value where absent registers
    read 0. `source` names the packet in messages: a str, or an object that formats it when
    str() is called. Raises the CP's QueueError for a bad initiator or thread count.
    """
    sr = sh_reads(target)
    if type(regs) is not list:
        regs = [regs.get(off, 0) for off in range(sr.size)] if isinstance(regs, Mapping) \
            else list(regs)
    return sr.values(regs, *dims, initiator, source)


def _partial(d: int, full: int, partial: int) -> int:
    """Work-items of a dimension of `d` groups whose last group has `partial` items
    (PARTIAL_TG_EN with NUM_THREAD_PARTIAL set; 0 means the last group is full too)."""
    if not partial:
        return d * full
    return (d - 1) * full + partial if d else 0


def state_from_sh_regs(target, regs: Sequence[int] | Mapping[int, int],
                       dims: tuple[int, int, int], initiator: int, *,
                       source: str) -> DispatchState:
    """The dispatch DISPATCH_DIRECT starts, from the queue's SH registers (SH offsets; see
    sh_dispatch_values)."""
    return DispatchState(*sh_dispatch_values(target, regs, dims, initiator, source))


class DispatchSource:
    """A dispatch's `source` ("AQL packet 3 (slot 3 at 0x…) (kernel dispatch)",
    "DISPATCH_DIRECT (PM4 packet at ring dword 0x10 …)") formatted only when a message uses
    it: every dispatch carries one, few make a message. It equals its text."""

    __slots__ = ("_args", "_text")

    def __init__(self, text: Callable[..., str], *args: object) -> None:
        self._text = text
        self._args = args

    def __str__(self) -> str:
        return self._text(*self._args)

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


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
    return cls(*values, *queue_apertures(queue))


def queue_apertures(queue) -> tuple[int, int]:
    """(LDS, private) aperture bases of the queue's process-device data (what KFD programs
    into SH_MEM_BASES for the process's VMID); DispatchState's defaults without one."""
    pdd = getattr(queue, "pdd", None)
    if pdd is None:
        return _LDS_APERTURE, _PRIVATE_APERTURE
    return (getattr(pdd, "lds_base", _LDS_APERTURE),
            getattr(pdd, "scratch_base", _PRIVATE_APERTURE))


_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(DispatchState) if f.name != "extra")
# the fields a front end computes (shader_regs adds the apertures), in DispatchState's order
VALUE_FIELDS = _STATE_FIELDS[:-2]
assert VALUE_FIELDS[GRID_INDEX] == "grid" and len(VALUE_FIELDS) == 22
assert _STATE_FIELDS[-2:] == ("lds_aperture", "private_aperture")
_SOURCE = VALUE_FIELDS.index("source")
_USER = VALUE_FIELDS.index("user_data")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DispatchState)}
_LDS_APERTURE, _PRIVATE_APERTURE = _DEFAULTS["lds_aperture"], _DEFAULTS["private_aperture"]
