// wait_flag(uint *flag, uint *out): every wave polls *flag (scalar loads that bypass the
// scalar cache) until it is non-zero, then stores the flag value to out[0]. The host releases
// the kernel by writing the flag: tests of asynchronous execution and of waits that time out.
// Kernarg: flag @0, out @8.
.include "amdhsa.inc"

KERNEL wait_flag
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
      - { .name: flag, .type_name: 'uint*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: read_only, .is_volatile: true }
      - { .name: out, .type_name: 'uint*', .offset: 8, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
...
.end_amdgpu_metadata
.endm

KERNEL_END wait_flag, kernarg_size=16, vgprs=3, sgprs=9
