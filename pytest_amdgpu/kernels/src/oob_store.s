// oob_store(uint *base, ulong offset, uint value): work-item 0 of work-group 0 stores `value`
// at the byte address base + offset. With an offset past the end of base's buffer (into
// unmapped GPU memory) this is the VM-fault test: the memory exception must name exactly
// base + offset. Kernarg: base @0, offset @8, value @16.
.amdhsa_code_object_version 5

.text
.globl oob_store
.p2align 8
.type oob_store,@function
oob_store:
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
.Loob_store_end:
.size oob_store, .Loob_store_end-oob_store

.rodata
.p2align 6
.if .amdgcn.gfx_generation_number == 9
.amdhsa_kernel oob_store
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 20
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 3
  .amdhsa_next_free_sgpr 12
  .amdhsa_accum_offset 4
.end_amdhsa_kernel
.else
.amdhsa_kernel oob_store
  .amdhsa_group_segment_fixed_size 0
  .amdhsa_private_segment_fixed_size 0
  .amdhsa_kernarg_size 20
  .amdhsa_user_sgpr_kernarg_segment_ptr 1
  .amdhsa_system_sgpr_workgroup_id_x 1
  .amdhsa_system_vgpr_workitem_id 0
  .amdhsa_next_free_vgpr 3
  .amdhsa_next_free_sgpr 12
  .amdhsa_wavefront_size32 1
.end_amdhsa_kernel
.endif

.macro KERNEL_METADATA wave, target
.amdgpu_metadata
---
amdhsa.version: [ 1, 2 ]
amdhsa.target: \target
amdhsa.kernels:
  - .name: oob_store
    .symbol: oob_store.kd
    .kernarg_segment_size: 20
    .kernarg_segment_align: 8
    .group_segment_fixed_size: 0
    .private_segment_fixed_size: 0
    .wavefront_size: \wave
    .sgpr_count: 12
    .vgpr_count: 3
    .max_flat_workgroup_size: 1024
    .args:
      - { .name: base, .type_name: 'uint*', .offset: 0, .size: 8, .value_kind: global_buffer, .address_space: global, .access: write_only }
      - { .name: offset, .type_name: ulong, .offset: 8, .size: 8, .value_kind: by_value }
      - { .name: value, .type_name: uint, .offset: 16, .size: 4, .value_kind: by_value }
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
