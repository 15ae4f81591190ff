"""Register-level dispatch state handed to the shader core (`DispatchRegs`).

The command processor (sim/gpu, part E) builds this from the COMPUTE_* SH registers a PM4 queue
programmed, or from an AQL kernel-dispatch packet plus the kernel descriptor (what the CP
firmware does). The shader core reads only these registers, as the SPI does: it never looks at
the kernel descriptor itself.

Bit fields (AMDGPUUsage "compute_pgm_rsrc1/2/3", facts-sdma-aql-codeobj.md §4.3):
  RSRC1: VGPRS [5:0], SGPRS [9:6], FLOAT_MODE [19:12], DX10_CLAMP 21, IEEE_MODE 23
  RSRC2: SCRATCH_EN 0, USER_SGPR [5:1], TRAP_PRESENT 6, TGID_X_EN 7, TGID_Y_EN 8, TGID_Z_EN 9,
         TG_SIZE_EN 10, TIDIG_COMP_CNT [12:11], EXCP_EN_MSB.. , LDS_SIZE [23:15]
  RSRC3 (gfx90a/gfx942): ACCUM_OFFSET [5:0] (units of 4 VGPRs, minus 1), TG_SPLIT 16
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class DispatchRegs:
    """One dispatch as the SPI sees it.  Sizes are in work-items; ids are workgroup ids."""

    pgm_addr: int                              # byte address of the first instruction
    rsrc1: int = 0
    rsrc2: int = 0
    rsrc3: int = 0
    user_data: Sequence[int] = field(default_factory=lambda: [0] * 16)  # COMPUTE_USER_DATA_0..15
    grid: tuple[int, int, int] = (1, 1, 1)     # work-items per dimension (partial groups allowed)
    workgroup: tuple[int, int, int] = (1, 1, 1)  # work-items per full workgroup
    start: tuple[int, int, int] = (0, 0, 0)    # first workgroup id (COMPUTE_START_*)
    wave32: bool = False                       # CS_W32_EN / kernel descriptor wave32 bit
    scratch_base: int = 0                      # COMPUTE_DISPATCH_SCRATCH_BASE (architected)
    tmpring_size: int = 0                      # COMPUTE_TMPRING_SIZE (raw register)
    scratch_wave_bytes: int = 0                # scratch bytes per wave slot (TMPRING WAVESIZE)
    scratch_waves: int = 0                     # wave slots (TMPRING WAVES)
    private_segment_size: int = 0              # bytes per work-item (AQL packet), informative
    lds_bytes: int = 0                         # LDS bytes per workgroup (static + dynamic)
    dispatch_id: int = 0
    dispatch_ptr: int = 0                      # informative: the AQL packet (0 for PM4)
    queue_ptr: int = 0
    kernarg_ptr: int = 0
    initiator: int = 0
    source: str = ""                           # "AQL packet at …" / "PM4 DISPATCH_DIRECT at …"
    kernel_code_properties: int | None = None  # informative, when the CP read a descriptor
    lds_aperture: int = 1 << 48                # SH_MEM_BASES shared aperture (KFD v9 layout)
    private_aperture: int = 2 << 48            # SH_MEM_BASES private aperture

    # -- RSRC fields ---------------------------------------------------------------------------
    @property
    def user_sgpr_count(self) -> int:
        return (self.rsrc2 >> 1) & 0x1F

    @property
    def scratch_en(self) -> bool:
        return bool(self.rsrc2 & 1)

    @property
    def tgid_enable(self) -> tuple[bool, bool, bool]:
        return bool(self.rsrc2 >> 7 & 1), bool(self.rsrc2 >> 8 & 1), bool(self.rsrc2 >> 9 & 1)

    @property
    def tg_size_en(self) -> bool:
        return bool(self.rsrc2 >> 10 & 1)

    @property
    def tidig_comp_cnt(self) -> int:
        return (self.rsrc2 >> 11) & 3

    def lds_size_rsrc2(self, granule: int) -> int:
        """LDS bytes from RSRC2.LDS_SIZE, in units of the target's `lds_alloc_granule`."""
        return ((self.rsrc2 >> 15) & 0x1FF) * granule

    def vgpr_count(self, wave32: bool, granule_w64: int, granule_w32: int) -> int:
        """Architected VGPRs allocated per lane, from RSRC1.VGPRS."""
        g = granule_w32 if wave32 else granule_w64
        return ((self.rsrc1 & 0x3F) + 1) * g

    def accum_offset(self) -> int:
        """gfx90a/gfx942: first AGPR-aliased register (RSRC3.ACCUM_OFFSET)."""
        return ((self.rsrc3 & 0x3F) + 1) * 4

    def workgroup_counts(self) -> tuple[int, int, int]:
        return tuple(-(-g // w) if w else 0 for g, w in zip(self.grid, self.workgroup))
