// empty: a kernel that does nothing (s_endpgm). Dispatch round trips, queue plumbing.
// Arguments: none. Uses no user SGPRs.
.include "amdhsa.inc"

KERNEL empty
  s_endpgm

.macro KERNEL_METADATA name, wave, target, kernarg_size, lds, sgprs, vgprs
.amdgpu_metadata
---
amdhsa.version: [ 1, 2 ]
amdhsa.target: \target
amdhsa.kernels:
  - .name: \name
    .symbol: \name\().kd
    .kernarg_segment_size: \kernarg_size
    .kernarg_segment_align: 8
    .group_segment_fixed_size: \lds
    .private_segment_fixed_size: 0
    .wavefront_size: \wave
    .sgpr_count: \sgprs
    .vgpr_count: \vgprs
    .max_flat_workgroup_size: 1024
    .args: []
...
.end_amdgpu_metadata
.endm

KERNEL_END empty, kernarg_size=0, vgprs=1, sgprs=1, kernarg_ptr=0
