// fill_id(uint *out, uint count): out[i] = i + global_offset_x for i = global id x < count.
// The work-group size and the global offset come from the code object v5 hidden arguments
// (hidden_group_size_x @28, hidden_global_offset_x @56 in this kernel's kernarg segment), so
// the runtime's hidden-argument layout is exercised. Kernarg: out @0, count @8, hidden block @16.
.include "amdhsa.inc"

KERNEL fill_id
.if .amdgcn.gfx_generation_number == 9
  // s[0:1] kernarg ptr, s2 work-group id x
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  s_load_dword s6, s[0:1], 0x8
  s_load_dword s7, s[0:1], 0x1c
  s_load_dword s8, s[0:1], 0x38
  v_and_b32 v0, 0x3ff, v0
  s_waitcnt lgkmcnt(0)
  s_and_b32 s7, s7, 0xffff
  s_mul_i32 s7, s7, s2
  v_add_u32 v1, s7, v0
  v_cmp_gt_u32 vcc, s6, v1
  s_and_saveexec_b64 s[10:11], vcc
  s_cbranch_execz .Lfill_done
  v_lshlrev_b32 v2, 2, v1
  v_add_u32 v3, s8, v1
  global_store_dword v2, v3, s[4:5]
.else
  s_load_b64 s[4:5], s[0:1], 0x0
  s_load_b32 s6, s[0:1], 0x8
  s_load_b32 s7, s[0:1], 0x1c
  s_load_b32 s8, s[0:1], 0x38
  v_and_b32 v0, 0x3ff, v0
  s_waitcnt lgkmcnt(0)
  s_and_b32 s7, s7, 0xffff
  s_mul_i32 s7, s7, s2
  v_add_nc_u32 v1, s7, v0
  v_cmp_gt_u32 vcc_lo, s6, v1
  s_and_saveexec_b32 s10, vcc_lo
  s_cbranch_execz .Lfill_done
  v_lshlrev_b32 v2, 2, v1
  v_add_nc_u32 v3, s8, v1
  global_store_b32 v2, v3, s[4:5]
.endif
.Lfill_done:
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
    .args:
      - { .name: out, .type_name: 'uint*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
      - { .name: count, .type_name: uint, .offset: 8, .size: 4, .value_kind: by_value }
      - { .offset: 16, .size: 4, .value_kind: hidden_block_count_x }
      - { .offset: 20, .size: 4, .value_kind: hidden_block_count_y }
      - { .offset: 24, .size: 4, .value_kind: hidden_block_count_z }
      - { .offset: 28, .size: 2, .value_kind: hidden_group_size_x }
      - { .offset: 30, .size: 2, .value_kind: hidden_group_size_y }
      - { .offset: 32, .size: 2, .value_kind: hidden_group_size_z }
      - { .offset: 34, .size: 2, .value_kind: hidden_remainder_x }
      - { .offset: 36, .size: 2, .value_kind: hidden_remainder_y }
      - { .offset: 38, .size: 2, .value_kind: hidden_remainder_z }
      - { .offset: 56, .size: 8, .value_kind: hidden_global_offset_x }
      - { .offset: 64, .size: 8, .value_kind: hidden_global_offset_y }
      - { .offset: 72, .size: 8, .value_kind: hidden_global_offset_z }
      - { .offset: 80, .size: 2, .value_kind: hidden_grid_dims }
...
.end_amdgpu_metadata
.endm

KERNEL_END fill_id, kernarg_size=272, vgprs=4, sgprs=12
