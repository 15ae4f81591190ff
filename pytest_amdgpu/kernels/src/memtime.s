// memtime(ulong *out): work-item 0 of work-group 0 stores three clock readings:
//   out[0] = the shader clock (gfx9: s_memtime, 64-bit; gfx11: s_getreg HW_REG_SHADER_CYCLES,
//            20 bits, zero-extended),
//   out[1], out[2] = the constant-rate "real time" counter read twice (gfx9: s_memrealtime;
//            gfx11: s_sendmsg_rtn_b64 MSG_RTN_GET_REALTIME), so out[1] <= out[2].
// Kernarg: out @0.
.include "amdhsa.inc"

KERNEL memtime
.if .amdgcn.gfx_generation_number == 9
  // s[0:1] kernarg ptr, s2 work-group id x
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  s_memtime s[6:7]
  s_memrealtime s[8:9]
  s_waitcnt lgkmcnt(0)
  s_memrealtime s[10:11]
  s_waitcnt lgkmcnt(0)
  v_and_b32 v0, 0x3ff, v0
  s_cmp_eq_u32 s2, 0
  s_cbranch_scc0 .Lmt_done
  v_cmp_eq_u32 vcc, 0, v0
  s_and_saveexec_b64 s[12:13], vcc
  s_cbranch_execz .Lmt_done
  v_mov_b32 v1, 0
  v_mov_b32 v2, s6
  v_mov_b32 v3, s7
  v_mov_b32 v4, s8
  v_mov_b32 v5, s9
  v_mov_b32 v6, s10
  v_mov_b32 v7, s11
  global_store_dwordx2 v1, v[2:3], s[4:5]
  global_store_dwordx4 v1, v[4:7], s[4:5] offset:8
.else
  s_load_b64 s[4:5], s[0:1], 0x0
  s_getreg_b32 s6, hwreg(HW_REG_SHADER_CYCLES, 0, 20)
  s_mov_b32 s7, 0
  s_sendmsg_rtn_b64 s[8:9], sendmsg(MSG_RTN_GET_REALTIME)
  s_waitcnt lgkmcnt(0)
  s_sendmsg_rtn_b64 s[10:11], sendmsg(MSG_RTN_GET_REALTIME)
  s_waitcnt lgkmcnt(0)
  v_and_b32 v0, 0x3ff, v0
  s_cmp_eq_u32 s2, 0
  s_cbranch_scc0 .Lmt_done
  v_cmp_eq_u32 vcc_lo, 0, v0
  s_and_saveexec_b32 s12, vcc_lo
  s_cbranch_execz .Lmt_done
  v_mov_b32 v1, 0
  v_mov_b32 v2, s6
  v_mov_b32 v3, s7
  v_mov_b32 v4, s8
  v_mov_b32 v5, s9
  v_mov_b32 v6, s10
  v_mov_b32 v7, s11
  global_store_b64 v1, v[2:3], s[4:5]
  global_store_b128 v1, v[4:7], s[4:5] offset:8
.endif
.Lmt_done:
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
      - { .name: out, .type_name: 'ulong*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
...
.end_amdgpu_metadata
.endm

KERNEL_END memtime, kernarg_size=8, vgprs=8, sgprs=14
