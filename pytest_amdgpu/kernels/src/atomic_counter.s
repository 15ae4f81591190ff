// atomic_counter(uint *counter, uint *old, uint count): every work-item i < count (global id x) does
// old[i] = atomic_add(counter, 1) (a returning global atomic). Afterwards *counter has grown
// by count and old[] is a permutation of its previous value + 0..count-1.
// The work-group size comes from the dispatch packet. Kernarg: counter @0, old @8, count @16.
.include "amdhsa.inc"

KERNEL atomic_counter
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
  s_cbranch_execz .Lac_done
  v_mov_b32 v2, 0
  v_mov_b32 v3, 1
  // returning atomic: the GLC bit, which gfx940+ assemblers call SC0
.if .amdgcn.gfx_generation_minor == 4
  global_atomic_add v4, v2, v3, s[8:9] sc0
.else
  global_atomic_add v4, v2, v3, s[8:9] glc
.endif
  v_lshlrev_b32 v5, 2, v1
  s_waitcnt vmcnt(0)
  global_store_dword v5, v4, s[10:11]
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
  s_cbranch_execz .Lac_done
  v_mov_b32 v2, 0
  v_mov_b32 v3, 1
  global_atomic_add_u32 v4, v2, v3, s[8:9] glc
  v_lshlrev_b32 v5, 2, v1
  s_waitcnt vmcnt(0)
  global_store_b32 v5, v4, s[10:11]
.endif
.Lac_done:
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
      - { .name: counter, .type_name: 'uint*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: read_write }
      - { .name: old, .type_name: 'uint*', .offset: 8, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
      - { .name: count, .type_name: uint, .offset: 16, .size: 4, .value_kind: by_value }
...
.end_amdgpu_metadata
.endm

KERNEL_END atomic_counter, kernarg_size=20, vgprs=6, sgprs=16, dispatch_ptr=1
