// illegal: the first instruction is 0xBFFF0000, a SOPP encoding with opcode 0x7F, which no
// target here defines (llvm-objdump-19 prints it as <unknown> on gfx90a, gfx942 and gfx1100).
// The wave must raise an illegal-instruction exception. Arguments: none.
.include "amdhsa.inc"

KERNEL illegal
.if .amdgcn.gfx_generation_number == 9
  .long 0xBFFF0000
  s_endpgm
.else
  .long 0xBFFF0000
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

KERNEL_END illegal, kernarg_size=0, vgprs=1, sgprs=1, kernarg_ptr=0
