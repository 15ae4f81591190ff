// Math builtins LLVM expands inline (no device library), half precision, small integer types,
// vector types and select patterns: they reach v_exp/v_log/v_ldexp/v_frexp, 16-bit VALU ops,
// SDWA (GFX9), op_sel, v_perm/v_alignbit/v_bfe and friends.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())

__kernel void transcendental(__global float *out, __global const float *a, int n) {
  int i = GID;
  if (i >= n) return;
  float x = a[i];
  out[8 * i + 0] = __builtin_expf(x);
  out[8 * i + 1] = __builtin_exp2f(x);
  out[8 * i + 2] = __builtin_logf(__builtin_fabsf(x) + 0.5f);
  out[8 * i + 3] = __builtin_log2f(__builtin_fabsf(x) + 0.5f);
  out[8 * i + 4] = __builtin_ldexpf(x, i % 40 - 20);
  int e;
  out[8 * i + 5] = __builtin_frexpf(x, &e) + (float)e;
  out[8 * i + 6] = __builtin_fmodf(x, 1.75f);
  out[8 * i + 7] = x / 3.0f + __builtin_fmaf(x, x, -1.0f);
}

__kernel void halfmath(__global half *out, __global const half *a, __global const half *b, int n) {
  int i = GID;
  if (i >= n) return;
  half x = a[i], y = b[i];
  out[4 * i + 0] = x + y;
  out[4 * i + 1] = x * y - (half)1.5f;
  out[4 * i + 2] = x > y ? x : y;
  out[4 * i + 3] = (half)((float)x * 0.25f);
}

__kernel void smallint(__global uchar *u8, __global short *s16, __global const uchar *a, __global const char *b,
                       __global const short *c, __global const ushort *d, int n) {
  int i = GID;
  if (i >= n) return;
  uchar x = a[i];
  char y = b[i];
  short z = c[i];
  ushort w = d[i];
  u8[4 * i + 0] = x + (uchar)y;
  u8[4 * i + 1] = x > (uchar)y ? x : (uchar)y;
  u8[4 * i + 2] = (uchar)(x * 3) ^ (uchar)(y >> 1);
  u8[4 * i + 3] = (uchar)((x & 0xF0) | ((uchar)y & 0x0F));
  s16[4 * i + 0] = z + (short)w;
  s16[4 * i + 1] = z * (short)y;
  s16[4 * i + 2] = (short)(w >> (x & 7)) - (short)(z >> 3);
  s16[4 * i + 3] = z < (short)w ? z : (short)w;
}

__kernel void vectors(__global int4 *out, __global const int4 *a, __global const float4 *f, int n) {
  int i = GID;
  if (i >= n) return;
  int4 v = a[i];
  float4 g = f[i];
  int4 r;
  r.x = v.x + v.y * v.z - v.w;
  r.y = (int)(g.x * g.y) + (v.x < v.y ? v.z : v.w);
  r.z = ((uint)v.x >> 3 | (uint)v.y << 29) ^ (int)(g.z + g.w);
  r.w = (v.z & 0xFF00FF) | ((uint)v.w >> 24 << 24);
  out[i] = r.wzyx;
}

__kernel void bitfield(__global uint *out, __global const uint *a, __global const uint *b, int n) {
  int i = GID;
  if (i >= n) return;
  uint x = a[i], y = b[i];
  uint s = y & 31;
  out[8 * i + 0] = (x << s) | (x >> ((32 - s) & 31));           // rotate
  out[8 * i + 1] = (x >> 7) & 0x3FF;                            // bfe
  out[8 * i + 2] = (uint)(((int)x << 5) >> 20);                 // signed bfe
  out[8 * i + 3] = (x & 0xFF) << 24 | (x >> 8 & 0xFF) << 16 | (x >> 16 & 0xFF) << 8 | x >> 24;   // bswap
  out[8 * i + 4] = __builtin_popcount(x ^ y) + __builtin_clz(y | 1);
  out[8 * i + 5] = (uint)(((ulong)x * y) >> 32) + x * y;
  out[8 * i + 6] = (x & 0xFFFFFF) * (y & 0xFFFFFF);             // mul24
  out[8 * i + 7] = x > y ? x - y : y - x;                       // absdiff
}

// saturating integer arithmetic: LLVM selects the VALU clamp bit (v_add_u32 ... clamp, v_pk_add_u16 clamp)
__kernel void satmath(__global const uint *a, __global const uint *b, __global uint *o,
                      __global const ushort2 *va, __global const ushort2 *vb, __global ushort2 *vo, uint n) {
  uint i = __builtin_amdgcn_workgroup_id_x() * __builtin_amdgcn_workgroup_size_x() + __builtin_amdgcn_workitem_id_x();
  if (i >= n) return;
  uint x = a[i], y = b[i];
  o[6 * i + 0] = __builtin_elementwise_add_sat(x, y);
  o[6 * i + 1] = __builtin_elementwise_sub_sat(x, y);
  o[6 * i + 2] = (uint)__builtin_elementwise_add_sat((int)x, (int)y);
  o[6 * i + 3] = (uint)__builtin_elementwise_sub_sat((int)x, (int)y);
  o[6 * i + 4] = (uint)__builtin_elementwise_add_sat((ushort)x, (ushort)y);
  o[6 * i + 5] = (uint)(ushort)__builtin_elementwise_sub_sat((short)x, (short)y);
  vo[2 * i] = __builtin_elementwise_add_sat(va[i], vb[i]);
  vo[2 * i + 1] = as_ushort2(__builtin_elementwise_sub_sat(as_short2(va[i]), as_short2(vb[i])));
}
