// lds_barrier(uint *out): each work-item writes its global id x to LDS[local id], waits at
// s_barrier, then stores LDS[size - 1 - local id] to out[global id]: out is the global ids
// reversed within each work-group. Needs grid % block == 0 (full work-groups) and a 1-D
// work-group of at most 1024 items (4096 bytes of static LDS). The work-group size comes from
// the dispatch packet. Kernarg: out @0.
.amdhsa_code_object_version 5

.text
.globl lds_barrier
.p2align 8
.type lds_barrier,@function
lds_barrier:
.if .amdgcn.gfx_generation_number == 9
  // s[0:1] dispatch ptr, s[2:3] kernarg ptr, s4 work-group id x
  s_load_dword s5, s[0:1], 0x4
  s_load_dwordx2 s[8:9], s[2:3], 0x0
  v_and_b32 v0, 0x3ff, v0
  s_waitcnt lgkmcnt(0)
  s_and_b32 s5, s5, 0xffff
  s_mul_i32 s6, s5, s4
  v_add_u32 v1, s6, v0
  v_lshlrev_b32 v2, 2, v0
  ds_write_b32 v2, v1
  s_waitcnt lgkmcnt(0)
  s_barrier
  v_sub_u32 v3, s5, v0
  v_add_u32 v3, -1, v3
  v_lshlrev_b32 v3, 2, v3
  ds_read_b32 v4, v3
  v_lshlrev_b32 v5, 2, v1
  s_waitcnt lgkmcnt(0)
  global_store_dword v5, v4, s[8:9]
.else
  s_load_b32 s5, s[0:1], 0x4
  s_load_b64 s[8:9], s[2:3], 0x0
  v_and_b32 v0, 0x3ff, v0
  s_waitcnt lgkmcnt(0)
  s_and_b32 s5, s5, 0xffff
  s_mul_i32 s6, s5, s4
  v_add_nc_u32 v1, s6, v0
  v_lshlrev_b32 v2, 2, v0
  ds_store_b32 v2, v1
  s_waitcnt lgkmcnt(0)
  s_barrier
  v_sub_nc_u32 v3, s5, v0
  v_add_nc_u32 v3, -1, v3
  v_lshlrev_b32 v3, 2, v3
  ds_load_b32 v4, v3
  v_lshlrev_b32 v5, 2, v1
  s_waitcnt lgkmcnt(0)
  global_store_b32 v5, v4, s[8:9]
.endif
  s_endpgm
.Llds_barrier_end:
.size lds_barrier, .Llds_barrier_end-lds_barrier

.rodata
.p2align 6
.if .amdgcn.gfx_generation_number == 9
.amdhsa_kernel lds_barrier
  .amdhsa_group_segment_fixed_size 4096
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 8
  .amdhsa_user_sgpr_dispatch_ptr 1
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 6
  .amdhsa_next_free_sgpr 10
  .amdhsa_accum_offset 8
.end_amdhsa_kernel
.else
.amdhsa_kernel lds_barrier
  .amdhsa_group_segment_fixed_size 4096
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 8
  .amdhsa_user_sgpr_dispatch_ptr 1
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 6
  .amdhsa_next_free_sgpr 10
  .amdhsa_wavefront_size32 1
.end_amdhsa_kernel
.endif

.macro KERNEL_METADATA wave, target
.amdgpu_metadata
---
amdhsa.version: [ 1, 2 ]
amdhsa.target: \target
amdhsa.kernels:
  - .name: lds_barrier
    .symbol: lds_barrier.kd
    .kernarg_segment_size: 8
    .kernarg_segment_align: 8
    .group_segment_fixed_size: 4096
    .private_segment_fixed_size: 0
    .wavefront_size: \wave
    .sgpr_count: 10
    .vgpr_count: 6
    .max_flat_workgroup_size: 1024
    .args:
      - { .name: out, .type_name: 'uint*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
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
