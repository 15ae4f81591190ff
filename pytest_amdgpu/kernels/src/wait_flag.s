// wait_flag(uint *flag, uint *out): every wave polls *flag (scalar loads that bypass the
// scalar cache) until it is non-zero, then stores the flag value to out[0]. The host releases
// the kernel by writing the flag: tests of asynchronous execution and of waits that time out.
// Kernarg: flag @0, out @8.
.amdhsa_code_object_version 5

.text
.globl wait_flag
.p2align 8
.type wait_flag,@function
wait_flag:
.if .amdgcn.gfx_generation_number == 9
  // s[0:1] kernarg ptr, s2 work-group id x
  s_load_dwordx4 s[4:7], s[0:1], 0x0
  s_waitcnt lgkmcnt(0)
.Lpoll9:
  s_load_dword s8, s[4:5], 0x0 glc
  s_waitcnt lgkmcnt(0)
  s_cmp_eq_u32 s8, 0
  s_cbranch_scc1 .Lpoll9
  v_mov_b32 v1, 0
  v_mov_b32 v2, s8
  global_store_dword v1, v2, s[6:7]
.else
  s_load_b128 s[4:7], s[0:1], 0x0
  s_waitcnt lgkmcnt(0)
.Lpoll11:
  s_load_b32 s8, s[4:5], 0x0 glc dlc
  s_waitcnt lgkmcnt(0)
  s_cmp_eq_u32 s8, 0
  s_cbranch_scc1 .Lpoll11
  v_mov_b32 v1, 0
  v_mov_b32 v2, s8
  global_store_b32 v1, v2, s[6:7]
.endif
  s_endpgm
.Lwait_flag_end:
.size wait_flag, .Lwait_flag_end-wait_flag

.rodata
.p2align 6
.if .amdgcn.gfx_generation_number == 9
.amdhsa_kernel wait_flag
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 16
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 3
  .amdhsa_next_free_sgpr 9
  .amdhsa_accum_offset 4
.end_amdhsa_kernel
.else
.amdhsa_kernel wait_flag
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 16
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 3
  .amdhsa_next_free_sgpr 9
  .amdhsa_wavefront_size32 1
.end_amdhsa_kernel
.endif

.macro KERNEL_METADATA wave, target
.amdgpu_metadata
---
amdhsa.version: [ 1, 2 ]
amdhsa.target: \target
amdhsa.kernels:
  - .name: wait_flag
    .symbol: wait_flag.kd
    .kernarg_segment_size: 16
    .kernarg_segment_align: 8
    .group_segment_fixed_size: 0
    .private_segment_fixed_size: 0
    .wavefront_size: \wave
    .sgpr_count: 9
    .vgpr_count: 3
    .max_flat_workgroup_size: 1024
    .args:
      - { .name: flag, .type_name: 'uint*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: read_only, .is_volatile: true }
      - { .name: out, .type_name: 'uint*', .offset: 8, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
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
