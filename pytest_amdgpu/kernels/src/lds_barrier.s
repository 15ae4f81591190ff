// lds_barrier(uint *out): each work-item writes its global id x to LDS[local id], waits at
// s_barrier, then stores LDS[size - 1 - local id] to out[global id]: out is the global ids
// reversed within each work-group. Needs grid % block == 0 (full work-groups) and a 1-D
// work-group of at most 1024 items (4096 bytes of static LDS). The work-group size comes from
// the dispatch packet. Kernarg: out @0.
.include "amdhsa.inc"

KERNEL lds_barrier
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
...
.end_amdgpu_metadata
.endm

KERNEL_END lds_barrier, kernarg_size=8, vgprs=6, sgprs=10, lds=4096, dispatch_ptr=1
