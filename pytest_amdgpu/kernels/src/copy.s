// copy(const uint *src, uint *dst, uint count): dst[i] = src[i] for i = global id x < count.
// The work-group size comes from the dispatch packet (dispatch ptr + 4, workgroup_size_x), so
// the PM4 path must expose an AQL-format packet. Kernarg: src @0, dst @8, count @16.
.amdhsa_code_object_version 5

.text
.globl copy
.p2align 8
.type copy,@function
copy:
.if .amdgcn.gfx_generation_number == 9
  // s[0:1] dispatch ptr, s[2:3] kernarg ptr, s4 work-group id x
  s_load_dword s5, s[0:1], 0x4
  s_load_dwordx4 s[8:11], s[2:3], 0x0
  s_load_dword s12, s[2:3], 0x10
  v_and_b32 v0, 0x3ff, v0
  s_waitcnt lgkmcnt(0)
  s_and_b32 s5, s5, 0xffff
  s_mul_i32 s5, s5, s4
  v_add_u32 v1, s5, v0
  v_cmp_gt_u32 vcc, s12, v1
  s_and_saveexec_b64 s[14:15], vcc
  s_cbranch_execz .Lcopy_done
  v_lshlrev_b32 v2, 2, v1
  global_load_dword v3, v2, s[8:9]
  s_waitcnt vmcnt(0)
  global_store_dword v2, v3, s[10:11]
.else
  s_load_b32 s5, s[0:1], 0x4
  s_load_b128 s[8:11], s[2:3], 0x0
  s_load_b32 s12, s[2:3], 0x10
  v_and_b32 v0, 0x3ff, v0
  s_waitcnt lgkmcnt(0)
  s_and_b32 s5, s5, 0xffff
  s_mul_i32 s5, s5, s4
  v_add_nc_u32 v1, s5, v0
  v_cmp_gt_u32 vcc_lo, s12, v1
  s_and_saveexec_b32 s14, vcc_lo
  s_cbranch_execz .Lcopy_done
  v_lshlrev_b32 v2, 2, v1
  global_load_b32 v3, v2, s[8:9]
  s_waitcnt vmcnt(0)
  global_store_b32 v2, v3, s[10:11]
.endif
.Lcopy_done:
  s_endpgm
.Lcopy_end:
.size copy, .Lcopy_end-copy

.rodata
.p2align 6
.if .amdgcn.gfx_generation_number == 9
.amdhsa_kernel copy
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 20
  .amdhsa_user_sgpr_dispatch_ptr 1
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 4
  .amdhsa_next_free_sgpr 16
  .amdhsa_accum_offset 4
.end_amdhsa_kernel
.else
.amdhsa_kernel copy
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 20
  .amdhsa_user_sgpr_dispatch_ptr 1
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 4
  .amdhsa_next_free_sgpr 16
  .amdhsa_wavefront_size32 1
.end_amdhsa_kernel
.endif

.macro KERNEL_METADATA wave, target
.amdgpu_metadata
---
amdhsa.version: [ 1, 2 ]
amdhsa.target: \target
amdhsa.kernels:
  - .name: copy
    .symbol: copy.kd
    .kernarg_segment_size: 20
    .kernarg_segment_align: 8
    .group_segment_fixed_size: 0
    .private_segment_fixed_size: 0
    .wavefront_size: \wave
    .sgpr_count: 16
    .vgpr_count: 4
    .max_flat_workgroup_size: 1024
    .args:
      - { .name: src, .type_name: 'uint*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: read_only, .is_const: true }
      - { .name: dst, .type_name: 'uint*', .offset: 8, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
      - { .name: count, .type_name: uint, .offset: 16, .size: 4, .value_kind: by_value }
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
