// trap: every wave executes s_trap 2 (the debugger/assert trap id) and would then end.
// Without a trap handler this is a hardware exception the runtime must report (naming s_trap).
// Arguments: none.
.include "amdhsa.inc"

KERNEL trap
.if .amdgcn.gfx_generation_number == 9
  s_trap 2
  s_endpgm
.else
  s_trap 2
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

KERNEL_END trap, kernarg_size=0, vgprs=1, sgprs=1, kernarg_ptr=0
