// Operations LLVM compiles to sequences whose result IEEE 754 defines exactly: correctly
// rounded f32 division and square root (-cl-fp32-correctly-rounded-divide-sqrt: the
// v_div_scale / v_div_fmas / v_div_fixup macro and the scaled v_sqrt with neighbour fix-up),
// f64 division and square root (always correctly rounded) and the fused multiply-adds.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())

__kernel void div_sqrt_f32(__global float *out, __global const float *a, __global const float *b, int n) {
  int i = GID;
  if (i >= n) return;
  out[2 * i] = a[i] / b[i];
  out[2 * i + 1] = __builtin_sqrtf(a[i]);
}

__kernel void div_sqrt_f64(__global double *out, __global const double *a, __global const double *b, int n) {
  int i = GID;
  if (i >= n) return;
  out[2 * i] = a[i] / b[i];
  out[2 * i + 1] = __builtin_sqrt(a[i]);
}

__kernel void fma_all(__global float *f, __global double *d, __global half *h, __global const float *fa,
                      __global const double *da, __global const half *ha, int n) {
  int i = GID;
  if (i >= n) return;
  f[i] = __builtin_fmaf(fa[3 * i], fa[3 * i + 1], fa[3 * i + 2]);
  d[i] = __builtin_fma(da[3 * i], da[3 * i + 1], da[3 * i + 2]);
  h[i] = __builtin_fmaf16(ha[3 * i], ha[3 * i + 1], ha[3 * i + 2]);
}
