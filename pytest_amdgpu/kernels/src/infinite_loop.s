// infinite_loop: every wave branches to itself forever. Only queue destruction (or the
// caller's timeout) ends it: the hang tests. Arguments: none.
.include "amdhsa.inc"

KERNEL infinite_loop
.if .amdgcn.gfx_generation_number == 9
.Lspin9:
  s_branch .Lspin9
  s_endpgm
.else
.Lspin11:
  s_branch .Lspin11
  s_endpgm
.endif

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

KERNEL_END infinite_loop, kernarg_size=0, vgprs=1, sgprs=1, kernarg_ptr=0
