// Packed 16-bit float atomics (two adds per dword): global_atomic_pk_add_f16 (gfx90a, gfx942),
// global_atomic_pk_add_bf16 and ds_pk_add_bf16 (gfx942); gfx1100 has none of them.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define LID __builtin_amdgcn_workitem_id_x()
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + LID)
typedef half __attribute__((ext_vector_type(2))) half2_t;
typedef short __attribute__((ext_vector_type(2))) bf16x2_t;

__kernel void pk_add(__global half2_t *acc, __global half2_t *old, __global const half2_t *v,
                     __global bf16x2_t *bacc, __global bf16x2_t *bold, __global const bf16x2_t *bv, int n) {
  int i = GID;
  if (i >= n) return;
#if defined(__gfx90a__) || defined(__gfx942__)
  old[i] = __builtin_amdgcn_global_atomic_fadd_v2f16(&acc[i % 4], v[i]);
#endif
#if defined(__gfx942__)
  bold[i] = __builtin_amdgcn_global_atomic_fadd_v2bf16(&bacc[i % 4], bv[i]);
  __local bf16x2_t l[4];
  if (LID < 4) l[LID] = (bf16x2_t)(0, 0);
  __builtin_amdgcn_s_barrier();
  __builtin_amdgcn_ds_atomic_fadd_v2bf16(&l[i % 4], bv[i]);
  __builtin_amdgcn_s_barrier();
  if (LID < 4) bacc[4 + __builtin_amdgcn_workgroup_id_x() * 4 + LID] = l[LID];
#endif
}
