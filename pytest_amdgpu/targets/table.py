"""The target table: everything that differs between GPU families, as data.

Code asks a `Target` (wave size, packet forms, register offsets, SDMA version, scratch model, …)
instead of testing `family ==`. Sources of the values are cited per field; the facts sheets in
../shared/reference/ list them with their primary sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# SET_SH_REG register offsets (absolute dword address - 0x2C00), common to gfx9 and gfx11.
# Source: gc_9_4_2/gc_9_4_3/gc_11_0_0 *_offset.h (facts-pm4.md §4.1), cross-checked by the
# kfdtest gfx_7_2_d.h absolute addresses and Mesa radv byte addresses.
_COMPUTE_REGS_COMMON = {
    "COMPUTE_DISPATCH_INITIATOR": 0x200,
    "COMPUTE_DIM_X": 0x201,
    "COMPUTE_DIM_Y": 0x202,
    "COMPUTE_DIM_Z": 0x203,
    "COMPUTE_START_X": 0x204,
    "COMPUTE_START_Y": 0x205,
    "COMPUTE_START_Z": 0x206,
    "COMPUTE_NUM_THREAD_X": 0x207,
    "COMPUTE_NUM_THREAD_Y": 0x208,
    "COMPUTE_NUM_THREAD_Z": 0x209,
    "COMPUTE_PIPELINESTAT_ENABLE": 0x20A,
    "COMPUTE_PERFCOUNT_ENABLE": 0x20B,
    "COMPUTE_PGM_LO": 0x20C,
    "COMPUTE_PGM_HI": 0x20D,
    "COMPUTE_DISPATCH_PKT_ADDR_LO": 0x20E,
    "COMPUTE_DISPATCH_PKT_ADDR_HI": 0x20F,
    "COMPUTE_DISPATCH_SCRATCH_BASE_LO": 0x210,
    "COMPUTE_DISPATCH_SCRATCH_BASE_HI": 0x211,
    "COMPUTE_PGM_RSRC1": 0x212,
    "COMPUTE_PGM_RSRC2": 0x213,
    "COMPUTE_VMID": 0x214,
    "COMPUTE_RESOURCE_LIMITS": 0x215,
    "COMPUTE_STATIC_THREAD_MGMT_SE0": 0x216,
    "COMPUTE_STATIC_THREAD_MGMT_SE1": 0x217,
    "COMPUTE_TMPRING_SIZE": 0x218,
    "COMPUTE_STATIC_THREAD_MGMT_SE2": 0x219,
    "COMPUTE_STATIC_THREAD_MGMT_SE3": 0x21A,
    "COMPUTE_RESTART_X": 0x21B,
    "COMPUTE_RESTART_Y": 0x21C,
    "COMPUTE_RESTART_Z": 0x21D,
    "COMPUTE_THREAD_TRACE_ENABLE": 0x21E,
    "COMPUTE_DISPATCH_ID": 0x220,
    **{f"COMPUTE_USER_DATA_{i}": 0x240 + i for i in range(16)},
}

# COMPUTE_PGM_RSRC3 is the one common compute register whose offset differs: 0x2E2D on gfx9
# (gc_9_4_2_offset.h mmCOMPUTE_PGM_RSRC3 0x0E2D + GC base 0x2000; kfdtest Dispatch.cpp uses it
# for gfx90a/gfx942 only) and 0x2E28 on gfx11 (gc_11_0_0_offset.h 0x1BC8 + base 0x1260; Mesa
# radv R_00B8A0 for GFX10+).
_GFX9_REGS = {**_COMPUTE_REGS_COMMON, "COMPUTE_PGM_RSRC3": 0x22D, "COMPUTE_SHADER_CHKSUM": 0x22C}
_GFX11_REGS = {**_COMPUTE_REGS_COMMON, "COMPUTE_PGM_RSRC3": 0x228, "COMPUTE_SHADER_CHKSUM": 0x22A,
               "COMPUTE_DISPATCH_TUNNEL": 0x27D}


@dataclass(frozen=True)
class Target:
    """One GPU target (an LLVM processor name) and the facts code needs about it."""

    name: str                       # LLVM processor, e.g. "gfx942"
    gfx_target_version: int         # KFD topology encoding, e.g. 90402
    family: str                     # "gfx9" or "gfx11": the ISA encoding family
    gc_version: tuple[int, int, int]
    elf_mach: int                   # ELF e_flags EF_AMDGPU_MACH (amd_hsa_elf.h / AMDGPUUsage)
    wave_size: int                  # default wavefront size
    wave_sizes: tuple[int, ...]     # sizes a kernel may select
    sdma_version: tuple[int, int, int]
    sdma_copy_max_bytes: int        # one COPY_LINEAR / CONST_FILL at most (facts-sdma §1.4)
    sdma_count_bits: int            # width of the COPY_LINEAR / CONST_FILL count field
    release_mem_form: str           # "gfx9" (TC_* cache bits) or "gfx10" (GCR bits)
    acquire_mem_form: str           # "gfx9" (6 body dwords) or "gfx10" (7, GCR_CNTL)
    compute_regs: dict[str, int] = field(repr=False)
    dispatch_initiator_wave32: int  # CS_W32_EN bit, 0 where wave32 does not exist
    architected_flat_scratch: bool  # gfx942, gfx11: HW sets FLAT_SCRATCH (AMDGPUUsage table)
    private_segment_buffer: bool    # gfx90a: scratch through the V# in s[0:3]
    has_agprs: bool                 # MAI targets with an accumulation VGPR file
    vgpr_granule_wave64: int        # rsrc1 VGPR granule (AMDGPUUsage compute_pgm_rsrc1)
    vgpr_granule_wave32: int
    sgpr_granule_encoded: bool      # gfx9 encodes SGPRs in rsrc1 [9:6]; gfx10+ leaves it 0
    max_vgprs: int                  # architected VGPRs per lane (+ AGPRs on MAI targets)
    tmpring_wavesize_unit: int      # COMPUTE_TMPRING_SIZE.WAVESIZE unit in bytes
    tmpring_wavesize_bits: int
    lds_alloc_granule: int          # rsrc2 LDS_SIZE unit in bytes
    cwsr_vgpr_bytes_per_cu: int     # kfd_queue.c VGPR size per CU
    cwsr_ctl_stack_entry: int       # bytes per wave in the control stack (8 < GC 10.1 ≤ 12)
    cwsr_wave_limit_per_cu: int     # 40 before GC 10.1, 32 after (kfd_queue.c)
    eop_buffer_size: int            # 4096 on gfx8+ except Tonga
    doorbell_slice_size: int        # process doorbell slice (8 KiB on SOC15 with 8-byte doorbells)
    max_queues_per_device: int      # per process (127; 255 on GC 9.4.3 / MI300)
    cu_mask_in_pairs: bool          # SET_CU_MASK requires WGP pairs on GC 10.0 ≤ v < 12.1
    xnack_supported: bool
    sramecc_supported: bool
    # LDS a workgroup may allocate: 64 KiB on gfx9/gfx11 (AMDGPUUsage "Memory Spaces"; the
    # AQL CP rejects a larger group segment with EC_QUEUE_PACKET_DISPATCH_GROUP_SEGMENT_SIZE_INVALID).
    lds_bytes_per_workgroup: int = 65536
    # Kernel descriptor kernarg_preload (bytes 58-59) exists on GFX90A and GFX940 only
    # (AMDGPUUsage "Kernel Descriptor"; reserved, must be 0, elsewhere).
    kernarg_preload: bool = False
    # CDNA3 (GFX940 family) memory-instruction encoding: cache-policy bits SC0/SC1/NT in place of
    # GLC/SLC/SCC, and bit 13 of SCRATCH instructions is SVE (VGPR address present) rather than
    # LDS (AMD "CDNA3" ISA, FLAT/SCRATCH/GLOBAL; confirmed with llvm-mc-19 -show-encoding).
    gfx940_memory_encoding: bool = False
    # The private segment buffer V# a runtime gives kernels (amd_queue_t
    # scratch_resource_descriptor, COMPUTE_USER_DATA for PM4): ROCR amd_aql_queue.cpp
    # FillBufRsrcWord1/3 with the registers.h SQ_BUF_RSRC_WORD1/WORD3 layouts. gfx9: WORD1
    # SWIZZLE_ENABLE bit 31; WORD3 DST_SEL_XYZW = X,Y,Z,W (4..7), NUM_FORMAT UINT (4) [14:12],
    # DATA_FORMAT 32 (4) [18:15], ELEMENT_SIZE 4 B (1) [20:19], INDEX_STRIDE 64 (3) [22:21],
    # ADD_TID_ENABLE 23 = 0x00EA4FAC. gfx11 (WORD1_GFX11/WORD3_GFX11): SWIZZLE_ENABLE [31:30] = 1;
    # DST_SEL_XYZW, FORMAT 32_UINT (20) [17:12], ADD_TID_ENABLE 23, OOB_SELECT 2 [29:28]
    # = 0x20814FAC.
    scratch_rsrc_word1_flags: int = 1 << 31
    scratch_rsrc_word3: int = 0x00EA4FAC
    # COMPUTE_TMPRING_SIZE.WAVES counts waves per shader engine on gfx11 (ROCR
    # FillComputeTmpRingSize_Gfx11 divides by NumShaderBanks), the whole device on gfx9.
    tmpring_waves_per_se: bool = False
    # FENCE header MTYPE a producer sets so the write is uncached: 3 (UC) from SDMA 5.0 on
    # (sdma_v5_0/v5_2/v6_0_ring_emit_fence: SDMA_PKT_FENCE_HEADER_MTYPE(0x3)); SDMA 4.x FENCE
    # has no MTYPE field (sdma_v4_0_ring_emit_fence writes the bare opcode).
    sdma_fence_mtype: int = 0

    @property
    def is_wave32_default(self) -> bool:
        return self.wave_size == 32

    def reg(self, name: str) -> int:
        """SH register offset (for SET_SH_REG) of a compute register."""
        return self.compute_regs[name]


def _gfx9(name: str, version: int, gc: tuple[int, int, int], mach: int, sdma: tuple[int, int, int],
          *, architected: bool, max_queues: int, sramecc: bool, gfx940: bool = False) -> Target:
    return Target(
        name=name, gfx_target_version=version, family="gfx9", gc_version=gc, elf_mach=mach,
        wave_size=64, wave_sizes=(64,), sdma_version=sdma,
        sdma_copy_max_bytes=0x400000, sdma_count_bits=22,
        release_mem_form="gfx9", acquire_mem_form="gfx9", compute_regs=dict(_GFX9_REGS),
        dispatch_initiator_wave32=0, architected_flat_scratch=architected,
        private_segment_buffer=not architected, has_agprs=True,
        vgpr_granule_wave64=8, vgpr_granule_wave32=8, sgpr_granule_encoded=True, max_vgprs=512,
        tmpring_wavesize_unit=1024, tmpring_wavesize_bits=13, lds_alloc_granule=512,
        cwsr_vgpr_bytes_per_cu=0x80000, cwsr_ctl_stack_entry=8, cwsr_wave_limit_per_cu=40,
        eop_buffer_size=4096, doorbell_slice_size=8192, max_queues_per_device=max_queues,
        cu_mask_in_pairs=False, xnack_supported=True, sramecc_supported=sramecc,
        kernarg_preload=True, gfx940_memory_encoding=gfx940,
    )


TARGETS: dict[str, Target] = {
    # gfx90a: MI200 (GC 9.4.2), SDMA 4.4.0, absolute flat scratch + private segment buffer.
    "gfx90a": _gfx9("gfx90a", 90010, (9, 4, 2), 0x03F, (4, 4, 0), architected=False,
                    max_queues=127, sramecc=True),
    # gfx942: MI300 (GC 9.4.3), SDMA 4.4.2, architected flat scratch, 255 queues per device.
    "gfx942": _gfx9("gfx942", 90402, (9, 4, 3), 0x04C, (4, 4, 2), architected=True,
                    max_queues=255, sramecc=True, gfx940=True),
    # gfx1100: Navi 31 (GC 11.0.0), SDMA 6.0.0, wave32 by default, architected flat scratch.
    "gfx1100": Target(
        name="gfx1100", gfx_target_version=110000, family="gfx11", gc_version=(11, 0, 0),
        elf_mach=0x041, wave_size=32, wave_sizes=(32, 64), sdma_version=(6, 0, 0),
        sdma_copy_max_bytes=0x3FFFFFFF, sdma_count_bits=30,
        release_mem_form="gfx10", acquire_mem_form="gfx10", compute_regs=dict(_GFX11_REGS),
        dispatch_initiator_wave32=1 << 15, architected_flat_scratch=True,
        private_segment_buffer=False, has_agprs=False,
        vgpr_granule_wave64=4, vgpr_granule_wave32=8, sgpr_granule_encoded=False, max_vgprs=256,
        tmpring_wavesize_unit=256, tmpring_wavesize_bits=15, lds_alloc_granule=512,
        cwsr_vgpr_bytes_per_cu=0x60000, cwsr_ctl_stack_entry=12, cwsr_wave_limit_per_cu=32,
        eop_buffer_size=4096, doorbell_slice_size=8192, max_queues_per_device=127,
        cu_mask_in_pairs=True, xnack_supported=False, sramecc_supported=False,
        scratch_rsrc_word1_flags=1 << 30, scratch_rsrc_word3=0x20814FAC,
        tmpring_waves_per_se=True, sdma_fence_mtype=3,
    ),
}


def target_name_from_version(gfx_target_version: int) -> str:
    """gfx target name from KFD's gfx_target_version (major*10000 + minor*100 + stepping).

    Minor and stepping print as hex digits: 90010 → gfx90a, 90402 → gfx942, 110000 → gfx1100.
    """
    if gfx_target_version <= 0:
        raise ValueError(f"gfx_target_version {gfx_target_version} is not a GPU version")
    major, rest = divmod(gfx_target_version, 10000)
    minor, step = divmod(rest, 100)
    if minor > 15 or step > 15:
        raise ValueError(f"gfx_target_version {gfx_target_version}: minor {minor} or stepping "
                         f"{step} does not fit one hex digit")
    return f"gfx{major}{minor:x}{step:x}"


def get_target(name: str) -> Target:
    """The Target for an LLVM processor name; a clear error names the known ones."""
    try:
        return TARGETS[name]
    except KeyError:
        known = ", ".join(sorted(TARGETS))
        raise KeyError(f"unknown GPU target {name!r}; known targets: {known}") from None


def target_for_version(gfx_target_version: int) -> Target:
    return get_target(target_name_from_version(gfx_target_version))
