// write_value(uint *out, uint value): work-item 0 of work-group 0 stores `value` to *out.
// Every other work-item does nothing. Kernarg: out @0 (8 B), value @8 (4 B).
.include "amdhsa.inc"

KERNEL write_value
.if .amdgcn.gfx_generation_number == 9
  // s[0:1] kernarg ptr, s2 work-group id x, v0 packed work-item id
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  s_load_dword s6, s[0:1], 0x8
  v_and_b32 v0, 0x3ff, v0
  s_cmp_eq_u32 s2, 0
  s_cbranch_scc0 .Lwv_done
  v_cmp_eq_u32 vcc, 0, v0
  s_and_saveexec_b64 s[8:9], vcc
  s_cbranch_execz .Lwv_done
  v_mov_b32 v1, 0
  s_waitcnt lgkmcnt(0)
  v_mov_b32 v2, s6
  global_store_dword v1, v2, s[4:5]
.else
  s_load_b64 s[4:5], s[0:1], 0x0
  s_load_b32 s6, s[0:1], 0x8
  v_and_b32 v0, 0x3ff, v0
  s_cmp_eq_u32 s2, 0
  s_cbranch_scc0 .Lwv_done
  v_cmp_eq_u32 vcc_lo, 0, v0
  s_and_saveexec_b32 s8, vcc_lo
  s_cbranch_execz .Lwv_done
  v_mov_b32 v1, 0
  s_waitcnt lgkmcnt(0)
  v_mov_b32 v2, s6
  global_store_b32 v1, v2, s[4:5]
.endif
.Lwv_done:
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
      - { .name: value, .type_name: uint, .offset: 8, .size: 4, .value_kind: by_value }
...
.end_amdgpu_metadata
.endm

KERNEL_END write_value, kernarg_size=12, vgprs=3, sgprs=10
