// oob_store(uint *base, ulong offset, uint value): work-item 0 of work-group 0 stores `value`
// at the byte address base + offset. With an offset past the end of base's buffer (into
// unmapped GPU memory) this is the VM-fault test: the memory exception must name exactly
// base + offset. Kernarg: base @0, offset @8, value @16.
.include "amdhsa.inc"

KERNEL oob_store
.if .amdgcn.gfx_generation_number == 9
  // s[0:1] kernarg ptr, s2 work-group id x
  s_load_dwordx4 s[4:7], s[0:1], 0x0
  s_load_dword s8, s[0:1], 0x10
  v_and_b32 v0, 0x3ff, v0
  s_cmp_eq_u32 s2, 0
  s_cbranch_scc0 .Loob_done
  v_cmp_eq_u32 vcc, 0, v0
  s_and_saveexec_b64 s[10:11], vcc
  s_cbranch_execz .Loob_done
  s_waitcnt lgkmcnt(0)
  s_add_u32 s4, s4, s6
  s_addc_u32 s5, s5, s7
  v_mov_b32 v1, 0
  v_mov_b32 v2, s8
  global_store_dword v1, v2, s[4:5]
  s_waitcnt vmcnt(0)
.else
  s_load_b128 s[4:7], s[0:1], 0x0
  s_load_b32 s8, s[0:1], 0x10
  v_and_b32 v0, 0x3ff, v0
  s_cmp_eq_u32 s2, 0
  s_cbranch_scc0 .Loob_done
  v_cmp_eq_u32 vcc_lo, 0, v0
  s_and_saveexec_b32 s10, vcc_lo
  s_cbranch_execz .Loob_done
  s_waitcnt lgkmcnt(0)
  s_add_u32 s4, s4, s6
  s_addc_u32 s5, s5, s7
  v_mov_b32 v1, 0
  v_mov_b32 v2, s8
  global_store_b32 v1, v2, s[4:5]
  s_waitcnt vmcnt(0)
.endif
.Loob_done:
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
      - { .name: base, .type_name: 'uint*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
      - { .name: offset, .type_name: ulong, .offset: 8, .size: 8, .value_kind: by_value }
      - { .name: value, .type_name: uint, .offset: 16, .size: 4, .value_kind: by_value }
...
.end_amdgpu_metadata
.endm

KERNEL_END oob_store, kernarg_size=20, vgprs=3, sgprs=12
