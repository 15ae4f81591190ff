"""Context-save (CWSR), control-stack and EOP sizes that CREATE_QUEUE insists on.

KFD computes these per node (amdkfd/kfd_queue.c, kfd_queue_ctx_save_restore_size) and
rejects a compute queue whose sizes differ; they are not exported in sysfs, so user space
computes the same numbers from the node properties. The runtime uses this to size the
buffers, the simulated driver to validate them, and tests check it against the values worked
out in the facts sheet (facts-kfd.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass

from .table import Target

PAGE_SIZE = 4096
SGPR_BYTES_PER_CU = 0x4000
LDS_BYTES_PER_CU = 0x10000
HWREG_BYTES_PER_CU = 0x1000


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


@dataclass(frozen=True)
class QueueSizes:
    ctl_stack_size: int
    wg_data_size: int
    cwsr_size: int               # the value ctx_save_restore_size must equal
    debug_memory_size: int
    ctx_save_bo_size: int        # size of the BO the ctx-save address must start
    eop_buffer_size: int


def queue_sizes(target: Target, *, simd_count: int, simd_per_cu: int, num_xcc: int,
                array_count: int, simd_arrays_per_engine: int) -> QueueSizes:
    """CWSR/EOP sizes for a node with these sysfs properties (kfd_queue.c)."""
    xcc = max(num_xcc, 1)
    cu_num = simd_count // max(simd_per_cu, 1) // xcc
    # the driver's own tests are on gfx_target_version: before GFX_VERSION_NAVI10 (100100) the
    # wave count is also bounded by 512 waves per shader engine
    gfxv = target.gfx_target_version
    if gfxv < 100100:
        engines = array_count // max(simd_arrays_per_engine, 1)
        wave_num = min(cu_num * target.cwsr_wave_limit_per_cu, engines * 512)
    else:
        wave_num = cu_num * target.cwsr_wave_limit_per_cu
    wg_per_cu = target.cwsr_vgpr_bytes_per_cu + SGPR_BYTES_PER_CU + LDS_BYTES_PER_CU \
        + HWREG_BYTES_PER_CU
    wg_data_size = _align(cu_num * wg_per_cu, PAGE_SIZE)
    ctl_stack = _align(40 + wave_num * target.cwsr_ctl_stack_entry + 8, PAGE_SIZE)
    if gfxv // 10000 == 10:   # GFX10: the hardware limits the control stack to 0x7000
        ctl_stack = min(ctl_stack, 0x7000)
    debug = _align(wave_num * 32, 64)
    cwsr = ctl_stack + wg_data_size
    bo = _align((cwsr + debug) * xcc, PAGE_SIZE)
    return QueueSizes(ctl_stack, wg_data_size, cwsr, debug, bo, target.eop_buffer_size)
