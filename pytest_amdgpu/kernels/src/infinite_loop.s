// infinite_loop: every wave branches to itself forever. Only queue destruction (or the
// caller's timeout) ends it: the hang tests. Arguments: none.
.amdhsa_code_object_version 5

.text
.globl infinite_loop
.p2align 8
.type infinite_loop,@function
infinite_loop:
.if .amdgcn.gfx_generation_number == 9
.Lspin9:
  s_branch .Lspin9
  s_endpgm
.else
.Lspin11:
  s_branch .Lspin11
  s_endpgm
.endif
.Linfinite_loop_end:
.size infinite_loop, .Linfinite_loop_end-infinite_loop

.rodata
.p2align 6
.if .amdgcn.gfx_generation_number == 9
.amdhsa_kernel infinite_loop
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 0
  .amdhsa_user_sgpr_kernarg_segment_ptr 0
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 1
  .amdhsa_next_free_sgpr 1
  .amdhsa_accum_offset 4
.end_amdhsa_kernel
.else
.amdhsa_kernel infinite_loop
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 0
  .amdhsa_user_sgpr_kernarg_segment_ptr 0
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 1
  .amdhsa_next_free_sgpr 1
  .amdhsa_wavefront_size32 1
.end_amdhsa_kernel
.endif

.macro KERNEL_METADATA wave, target
.amdgpu_metadata
---
amdhsa.version: [ 1, 2 ]
amdhsa.target: \target
amdhsa.kernels:
  - .name: infinite_loop
    .symbol: infinite_loop.kd
    .kernarg_segment_size: 0
    .kernarg_segment_align: 8
    .group_segment_fixed_size: 0
    .private_segment_fixed_size: 0
    .wavefront_size: \wave
    .sgpr_count: 1
    .vgpr_count: 1
    .max_flat_workgroup_size: 1024
    .args: []
...
.end_amdgpu_metadata
.endm

.if .amdgcn.gfx_generation_number == 11
KERNEL_METADATA 32, amdgcn-amd-amdhsa--gfx1100
.elseif .amdgcn.gfx_generation_minor == 4
KERNEL_METADATA 64, amdgcn-amd-amdhsa--gfx942
.else
KERNEL_METADATA 64, amdgcn-amd-amdhsa--gfx90a
.endif
