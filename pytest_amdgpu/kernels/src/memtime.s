// memtime(ulong *out): work-item 0 of work-group 0 stores three clock readings:
//   out[0] = the shader clock (gfx9: s_memtime, 64-bit; gfx11: s_getreg HW_REG_SHADER_CYCLES,
//            20 bits, zero-extended),
//   out[1], out[2] = the constant-rate "real time" counter read twice (gfx9: s_memrealtime;
//            gfx11: s_sendmsg_rtn_b64 MSG_RTN_GET_REALTIME), so out[1] <= out[2].
// Kernarg: out @0.
.amdhsa_code_object_version 5

.text
.globl memtime
.p2align 8
.type memtime,@function
memtime:
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
.Lmemtime_end:
.size memtime, .Lmemtime_end-memtime

.rodata
.p2align 6
.if .amdgcn.gfx_generation_number == 9
.amdhsa_kernel memtime
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 8
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 8
  .amdhsa_next_free_sgpr 14
  .amdhsa_accum_offset 8
.end_amdhsa_kernel
.else
.amdhsa_kernel memtime
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 8
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 8
  .amdhsa_next_free_sgpr 14
  .amdhsa_wavefront_size32 1
.end_amdhsa_kernel
.endif

.macro KERNEL_METADATA wave, target
.amdgpu_metadata
---
amdhsa.version: [ 1, 2 ]
amdhsa.target: \target
amdhsa.kernels:
  - .name: memtime
    .symbol: memtime.kd
    .kernarg_segment_size: 8
    .kernarg_segment_align: 8
    .group_segment_fixed_size: 0
    .private_segment_fixed_size: 0
    .wavefront_size: \wave
    .sgpr_count: 14
    .vgpr_count: 8
    .max_flat_workgroup_size: 1024
    .args:
      - { .name: out, .type_name: 'ulong*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
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
