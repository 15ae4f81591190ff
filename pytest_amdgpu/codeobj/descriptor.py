"""The 64-byte AMDHSA kernel descriptor (symbol `<kernel>.kd`) and its register fields.

Layout and bit fields: LLVM AMDGPUUsage "Kernel Descriptor" / llvm/Support/
AMDHSAKernelDescriptor.h (facts-sdma-aql-codeobj.md §4). Fields that exist only on some
families are tagged with the families that define them; decoding a descriptor for a processor
reports only the fields its family has, and keeps every raw word, so nothing is lost. Tests
check the decoding against llvm-objdump-19's descriptor disassembly and the `.amdhsa_*`
directives of our assembly sources.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from ..errors import CodeObjectError
from .elf import is_gfx90a_family, processor_family

KD_SIZE = 64
KD_ALIGN = 64
_KD_STRUCT = struct.Struct("<IIII q 20s III HH I")
assert _KD_STRUCT.size == KD_SIZE

_ALL = frozenset({"gfx6", "gfx7", "gfx8", "gfx9", "gfx10", "gfx11", "gfx12"})
_GFX9_PLUS = frozenset({"gfx9", "gfx10", "gfx11", "gfx12"})
_GFX10_PLUS = frozenset({"gfx10", "gfx11", "gfx12"})
_GFX6_11 = _ALL - {"gfx12"}


@dataclass(frozen=True)
class BitField:
    """A field [lo + width - 1 : lo] of a 32-bit register, defined on `families`."""

    name: str
    lo: int
    width: int = 1
    families: frozenset[str] = _ALL
    gfx90a_only: bool = False   # only gfx90a / gfx94x (MAI unified register file)

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lo

    def get(self, value: int) -> int:
        return (value >> self.lo) & ((1 << self.width) - 1)

    def put(self, value: int, field_value: int) -> int:
        if field_value >> self.width:
            raise CodeObjectError(f"{self.name} = {field_value} does not fit {self.width} bits")
        return (value & ~self.mask) | (field_value << self.lo)

    def defined_for(self, processor: str) -> bool:
        if self.gfx90a_only:
            return is_gfx90a_family(processor)
        return processor_family(processor) in self.families


RSRC1_FIELDS = (
    BitField("GRANULATED_WORKITEM_VGPR_COUNT", 0, 6),
    BitField("GRANULATED_WAVEFRONT_SGPR_COUNT", 6, 4),
    BitField("PRIORITY", 10, 2),
    BitField("FLOAT_ROUND_MODE_32", 12, 2),
    BitField("FLOAT_ROUND_MODE_16_64", 14, 2),
    BitField("FLOAT_DENORM_MODE_32", 16, 2),
    BitField("FLOAT_DENORM_MODE_16_64", 18, 2),
    BitField("PRIV", 20),
    BitField("ENABLE_DX10_CLAMP", 21, 1, _GFX6_11),
    BitField("ENABLE_WG_RR_EN", 21, 1, frozenset({"gfx12"})),
    BitField("DEBUG_MODE", 22),
    BitField("ENABLE_IEEE_MODE", 23, 1, _GFX6_11),
    BitField("BULKY", 24),
    BitField("CDBG_USER", 25),
    BitField("FP16_OVFL", 26, 1, _GFX9_PLUS),
    BitField("WGP_MODE", 29, 1, _GFX10_PLUS),
    BitField("MEM_ORDERED", 30, 1, _GFX10_PLUS),
    BitField("FWD_PROGRESS", 31, 1, _GFX10_PLUS),
)

RSRC2_FIELDS = (
    BitField("ENABLE_PRIVATE_SEGMENT", 0),
    BitField("USER_SGPR_COUNT", 1, 5),
    BitField("ENABLE_TRAP_HANDLER", 6),
    BitField("ENABLE_SGPR_WORKGROUP_ID_X", 7),
    BitField("ENABLE_SGPR_WORKGROUP_ID_Y", 8),
    BitField("ENABLE_SGPR_WORKGROUP_ID_Z", 9),
    BitField("ENABLE_SGPR_WORKGROUP_INFO", 10),
    BitField("ENABLE_VGPR_WORKITEM_ID", 11, 2),
    BitField("ENABLE_EXCEPTION_ADDRESS_WATCH", 13),
    BitField("ENABLE_EXCEPTION_MEMORY", 14),
    BitField("GRANULATED_LDS_SIZE", 15, 9),
    BitField("ENABLE_EXCEPTION_IEEE_754_FP_INVALID_OPERATION", 24),
    BitField("ENABLE_EXCEPTION_FP_DENORMAL_SOURCE", 25),
    BitField("ENABLE_EXCEPTION_IEEE_754_FP_DIVISION_BY_ZERO", 26),
    BitField("ENABLE_EXCEPTION_IEEE_754_FP_OVERFLOW", 27),
    BitField("ENABLE_EXCEPTION_IEEE_754_FP_UNDERFLOW", 28),
    BitField("ENABLE_EXCEPTION_IEEE_754_FP_INEXACT", 29),
    BitField("ENABLE_EXCEPTION_INT_DIVIDE_BY_ZERO", 30),
)

RSRC3_FIELDS = (
    # gfx90a / gfx94x
    BitField("ACCUM_OFFSET", 0, 6, gfx90a_only=True),
    BitField("TG_SPLIT", 16, 1, gfx90a_only=True),
    # gfx10+
    BitField("SHARED_VGPR_COUNT", 0, 4, _GFX10_PLUS),
    BitField("INST_PREF_SIZE", 4, 6, frozenset({"gfx11"})),
    BitField("INST_PREF_SIZE", 4, 8, frozenset({"gfx12"})),
    BitField("TRAP_ON_START", 10, 1, frozenset({"gfx11"})),
    BitField("TRAP_ON_END", 11, 1, frozenset({"gfx11"})),
    BitField("GLG_EN", 13, 1, frozenset({"gfx12"})),
    BitField("IMAGE_OP", 31, 1, frozenset({"gfx11", "gfx12"})),
)

# kernel_code_properties (uint16 at byte 56).
KERNEL_CODE_PROPERTIES = (
    BitField("ENABLE_SGPR_PRIVATE_SEGMENT_BUFFER", 0),
    BitField("ENABLE_SGPR_DISPATCH_PTR", 1),
    BitField("ENABLE_SGPR_QUEUE_PTR", 2),
    BitField("ENABLE_SGPR_KERNARG_SEGMENT_PTR", 3),
    BitField("ENABLE_SGPR_DISPATCH_ID", 4),
    BitField("ENABLE_SGPR_FLAT_SCRATCH_INIT", 5),
    BitField("ENABLE_SGPR_PRIVATE_SEGMENT_SIZE", 6),
    BitField("ENABLE_WAVEFRONT_SIZE32", 10, 1, _GFX10_PLUS),
    BitField("USES_DYNAMIC_STACK", 11),
)
_PROP = {f.name: f for f in KERNEL_CODE_PROPERTIES}
_R1 = {f.name: f for f in RSRC1_FIELDS}
_R2 = {f.name: f for f in RSRC2_FIELDS}
_R3_ACCUM = RSRC3_FIELDS[0]

# kernarg_preload (uint16 at byte 58): gfx90a / gfx94x.
KERNARG_PRELOAD_FIELDS = (
    BitField("KERNARG_PRELOAD_SPEC_LENGTH", 0, 7, gfx90a_only=True),
    BitField("KERNARG_PRELOAD_SPEC_OFFSET", 7, 9, gfx90a_only=True),
)

# User SGPRs in ABI order (AMDGPUUsage "Initial Kernel Execution State"): property bit name,
# our short name, SGPR count. Preloaded kernargs sit between flat scratch init and private
# segment size.
USER_SGPR_ORDER = (
    ("ENABLE_SGPR_PRIVATE_SEGMENT_BUFFER", "private_segment_buffer", 4),
    ("ENABLE_SGPR_DISPATCH_PTR", "dispatch_ptr", 2),
    ("ENABLE_SGPR_QUEUE_PTR", "queue_ptr", 2),
    ("ENABLE_SGPR_KERNARG_SEGMENT_PTR", "kernarg_segment_ptr", 2),
    ("ENABLE_SGPR_DISPATCH_ID", "dispatch_id", 2),
    ("ENABLE_SGPR_FLAT_SCRATCH_INIT", "flat_scratch_init", 2),
    ("<kernarg_preload>", "kernarg_preload", 0),
    ("ENABLE_SGPR_PRIVATE_SEGMENT_SIZE", "private_segment_size", 1),
)


def _decode(fields: tuple[BitField, ...], value: int, processor: str | None) -> dict[str, int]:
    out = {}
    for f in fields:
        if processor is None or f.defined_for(processor):
            out[f.name] = f.get(value)
    return out


@dataclass(frozen=True)
class UserSgpr:
    name: str
    first: int      # first SGPR number
    count: int


@dataclass
class KernelDescriptor:
    """The 64-byte kernel descriptor, raw words plus per-family decoded views."""

    group_segment_fixed_size: int = 0
    private_segment_fixed_size: int = 0
    kernarg_size: int = 0
    reserved0: int = 0
    kernel_code_entry_byte_offset: int = 0     # signed, from the KD's own address
    reserved1: bytes = field(default=b"\0" * 20, repr=False)
    compute_pgm_rsrc3: int = 0
    compute_pgm_rsrc1: int = 0
    compute_pgm_rsrc2: int = 0
    kernel_code_properties: int = 0
    kernarg_preload: int = 0
    reserved3: int = 0
    processor: str | None = None               # decoding context (family-specific fields)

    # -- (de)serialisation -----------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, processor: str | None = None) -> KernelDescriptor:
        if len(data) != KD_SIZE:
            raise CodeObjectError(f"a kernel descriptor is {KD_SIZE} bytes, got {len(data)}")
        (g, p, k, r0, entry, r1, rsrc3, rsrc1, rsrc2, props, preload,
         r3) = _KD_STRUCT.unpack(bytes(data))
        return cls(g, p, k, r0, entry, r1, rsrc3, rsrc1, rsrc2, props, preload, r3, processor)

    def to_bytes(self) -> bytes:
        return _KD_STRUCT.pack(self.group_segment_fixed_size, self.private_segment_fixed_size,
                               self.kernarg_size, self.reserved0,
                               self.kernel_code_entry_byte_offset, bytes(self.reserved1),
                               self.compute_pgm_rsrc3, self.compute_pgm_rsrc1,
                               self.compute_pgm_rsrc2, self.kernel_code_properties,
                               self.kernarg_preload, self.reserved3)

    # -- decoded views ---------------------------------------------------------------------
    @property
    def rsrc1(self) -> dict[str, int]:
        return _decode(RSRC1_FIELDS, self.compute_pgm_rsrc1, self.processor)

    @property
    def rsrc2(self) -> dict[str, int]:
        return _decode(RSRC2_FIELDS, self.compute_pgm_rsrc2, self.processor)

    @property
    def rsrc3(self) -> dict[str, int]:
        return _decode(RSRC3_FIELDS, self.compute_pgm_rsrc3, self.processor)

    @property
    def properties(self) -> dict[str, int]:
        return _decode(KERNEL_CODE_PROPERTIES, self.kernel_code_properties, self.processor)

    def has(self, prop: str) -> bool:
        """Is kernel_code_properties bit `prop` (e.g. "ENABLE_SGPR_DISPATCH_PTR") set?"""
        return bool(_PROP[prop].get(self.kernel_code_properties))

    @property
    def kernarg_preload_length(self) -> int:
        """Kernarg dwords preloaded into user SGPRs (gfx90a / gfx94x only)."""
        return KERNARG_PRELOAD_FIELDS[0].get(self.kernarg_preload)

    @property
    def kernarg_preload_offset(self) -> int:
        """Dword offset into the kernarg segment of the first preloaded dword."""
        return KERNARG_PRELOAD_FIELDS[1].get(self.kernarg_preload)

    @property
    def wavefront_size(self) -> int:
        return 32 if self.has("ENABLE_WAVEFRONT_SIZE32") else 64

    @property
    def user_sgpr_count(self) -> int:
        """USER_SGPR_COUNT from rsrc2 (where system SGPRs start; may exceed the enabled sum)."""
        return _R2["USER_SGPR_COUNT"].get(self.compute_pgm_rsrc2)

    @property
    def uses_private_segment(self) -> bool:
        return bool(self.compute_pgm_rsrc2 & 1) or self.private_segment_fixed_size > 0 \
            or self.has("USES_DYNAMIC_STACK")

    @property
    def workitem_id_dims(self) -> int:
        """Number of work-item id components the kernel receives in VGPRs (1..3)."""
        return _R2["ENABLE_VGPR_WORKITEM_ID"].get(self.compute_pgm_rsrc2) + 1

    @property
    def workgroup_id_enabled(self) -> tuple[bool, bool, bool]:
        r = self.compute_pgm_rsrc2
        return bool(r >> 7 & 1), bool(r >> 8 & 1), bool(r >> 9 & 1)

    def user_sgprs(self) -> list[UserSgpr]:
        """The enabled user SGPRs in ABI order, with their SGPR numbers."""
        out, sgpr = [], 0
        for prop, name, count in USER_SGPR_ORDER:
            if prop == "<kernarg_preload>":
                count = self.kernarg_preload_length
                if not count:
                    continue
            elif not self.has(prop):
                continue
            out.append(UserSgpr(name, sgpr, count))
            sgpr += count
        return out

    @property
    def enabled_user_sgpr_total(self) -> int:
        return sum(u.count for u in self.user_sgprs())

    def validate(self, name: str = "kernel") -> None:
        """Refuse descriptors the CP would mis-handle, naming the field."""
        if self.user_sgpr_count < self.enabled_user_sgpr_total:
            raise CodeObjectError(
                f"{name}.kd: COMPUTE_PGM_RSRC2.USER_SGPR_COUNT = {self.user_sgpr_count} is less "
                f"than the {self.enabled_user_sgpr_total} user SGPRs kernel_code_properties "
                f"enables ({', '.join(u.name for u in self.user_sgprs())})")
        if self.enabled_user_sgpr_total > 16:
            raise CodeObjectError(f"{name}.kd: {self.enabled_user_sgpr_total} user SGPRs "
                                  "enabled; at most 16 exist")

    # -- register counts -------------------------------------------------------------------
    def vgpr_granule(self) -> int:
        """VGPR allocation granule for the rsrc1 field (AMDGPUUsage compute_pgm_rsrc1)."""
        proc = self.processor or ""
        if is_gfx90a_family(proc):
            return 8
        if processor_family(proc) in _GFX10_PLUS:
            return 8 if self.wavefront_size == 32 else 4
        return 4

    @property
    def vgprs_allocated(self) -> int:
        """VGPRs (incl. AGPRs on gfx90a/gfx94x) per lane the hardware allocates."""
        g = _R1["GRANULATED_WORKITEM_VGPR_COUNT"].get(self.compute_pgm_rsrc1)
        return (g + 1) * self.vgpr_granule()

    @property
    def sgprs_allocated(self) -> int | None:
        """SGPRs the hardware allocates (gfx6-gfx9); None on gfx10+ (fixed allocation)."""
        fam = processor_family(self.processor or "gfx9")
        g = _R1["GRANULATED_WAVEFRONT_SGPR_COUNT"].get(self.compute_pgm_rsrc1)
        if fam in _GFX10_PLUS:
            return None
        if fam == "gfx9":
            return (g // 2 + 1) * 16
        return (g + 1) * 8

    @property
    def accum_offset(self) -> int | None:
        """First AGPR-overlapping VGPR index (gfx90a/gfx94x): (ACCUM_OFFSET + 1) * 4."""
        if not is_gfx90a_family(self.processor or ""):
            return None
        return (_R3_ACCUM.get(self.compute_pgm_rsrc3) + 1) * 4

    def lds_bytes(self, granule: int = 512) -> int:
        """LDS from rsrc2.GRANULATED_LDS_SIZE (usually 0: the dispatch supplies the size)."""
        return _R2["GRANULATED_LDS_SIZE"].get(self.compute_pgm_rsrc2) * granule

    def describe(self) -> str:
        """A multi-line, human-readable dump: every field for the processor's family."""
        lines = [
            f"group_segment_fixed_size   {self.group_segment_fixed_size}",
            f"private_segment_fixed_size {self.private_segment_fixed_size}",
            f"kernarg_size               {self.kernarg_size}",
            f"kernel_code_entry_byte_offset {self.kernel_code_entry_byte_offset:#x}",
            f"compute_pgm_rsrc1 {self.compute_pgm_rsrc1:#010x} "
            + " ".join(f"{k}={v}" for k, v in self.rsrc1.items()),
            f"compute_pgm_rsrc2 {self.compute_pgm_rsrc2:#010x} "
            + " ".join(f"{k}={v}" for k, v in self.rsrc2.items()),
            f"compute_pgm_rsrc3 {self.compute_pgm_rsrc3:#010x} "
            + " ".join(f"{k}={v}" for k, v in self.rsrc3.items()),
            f"kernel_code_properties {self.kernel_code_properties:#06x} "
            + " ".join(k for k, v in self.properties.items() if v),
            f"kernarg_preload length={self.kernarg_preload_length} "
            f"offset={self.kernarg_preload_offset}",
        ]
        return "\n".join(lines)


def lds_granules(nbytes: int, granule: int = 512) -> int:
    """COMPUTE_PGM_RSRC2.LDS_SIZE for `nbytes` of LDS."""
    return math.ceil(nbytes / granule)
