// Element-wise float and integer math, 64-bit address arithmetic, conversions.
// Enqueued workgroup size from the hidden kernel arguments (code object v5 implicit args):
// __builtin_amdgcn_workgroup_size_x() is the size of *this* (possibly partial) group.
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())

__kernel void saxpy(__global float *y, __global const float *x, float a, int n) {
  int i = GID;
  if (i < n) y[i] = a * x[i] + y[i];
}

__kernel void fmath(__global float *out, __global const float *a, __global const float *b, int n) {
  int i = GID;
  if (i >= n) return;
  float x = a[i], y = b[i];
  out[8 * i + 0] = x * y - x / (y + 3.0f);
  out[8 * i + 1] = __builtin_fmaf(x, y, 0.25f);
  out[8 * i + 2] = __builtin_fabsf(x) + __builtin_fminf(x, y) * __builtin_fmaxf(x, y);
  out[8 * i + 3] = __builtin_sqrtf(__builtin_fabsf(y));
  out[8 * i + 4] = __builtin_floorf(x) + __builtin_ceilf(y) * 2.0f + __builtin_truncf(x * 3.5f);
  out[8 * i + 5] = __builtin_rintf(y * 10.0f) - __builtin_copysignf(1.5f, x);
  out[8 * i + 6] = x > y ? x - y : y * 0.5f;
  out[8 * i + 7] = (float)(int)(x * 100.0f) + (float)(unsigned)(__builtin_fabsf(y) * 1000.0f);
}

__kernel void imath(__global int *out, __global const int *a, __global const int *b, int n) {
  int i = GID;
  if (i >= n) return;
  int x = a[i], y = b[i];
  unsigned ux = (unsigned)x, uy = (unsigned)y;
  out[12 * i + 0] = x + y * 7 - (x >> 3);
  out[12 * i + 1] = x * y;
  out[12 * i + 2] = y != 0 ? x / y : -1;
  out[12 * i + 3] = y != 0 ? x % y : -2;
  out[12 * i + 4] = uy != 0 ? (int)(ux / uy) : -3;
  out[12 * i + 5] = uy != 0 ? (int)(ux % uy) : -4;
  out[12 * i + 6] = (x & y) ^ (x | 0x5a5a) ^ ~y;
  out[12 * i + 7] = (int)(ux >> (uy & 31)) + (x << (y & 15));
  out[12 * i + 8] = x < y ? x : y;
  out[12 * i + 9] = __builtin_popcount(ux) + __builtin_clz(ux | 1) * 100 + __builtin_ctz(uy | 0x80000000) * 10000;
  out[12 * i + 10] = (int)(((long)x * (long)y) >> 32);
  out[12 * i + 11] = (int)(((unsigned long)ux * (unsigned long)uy) >> 32) ^ __builtin_bitreverse32(ux);
}

__kernel void i64math(__global long *out, __global const long *a, __global const long *b, int n) {
  int i = GID;
  if (i >= n) return;
  long x = a[i], y = b[i];
  out[6 * i + 0] = x + y;
  out[6 * i + 1] = x * y;
  out[6 * i + 2] = y != 0 ? x / y : 0;
  out[6 * i + 3] = y != 0 ? x % y : 0;
  out[6 * i + 4] = (x >> 5) ^ (y << 7) ^ (long)((unsigned long)x >> 17);
  out[6 * i + 5] = x < y ? x : y;
}

__kernel void dmath(__global double *out, __global const double *a, __global const double *b, int n) {
  int i = GID;
  if (i >= n) return;
  double x = a[i], y = b[i];
  out[5 * i + 0] = x * y + x;
  out[5 * i + 1] = x / (__builtin_fabs(y) + 1.0);
  out[5 * i + 2] = __builtin_sqrt(__builtin_fabs(x));
  out[5 * i + 3] = __builtin_fma(x, y, -2.5) + __builtin_floor(y);
  out[5 * i + 4] = (double)(long)(x * 1000.0) + (double)(float)y;
}

__kernel void convert(__global float *f, __global int *iout, __global const int *in, __global const float *fin, int n) {
  int i = GID;
  if (i >= n) return;
  f[3 * i + 0] = (float)in[i];
  f[3 * i + 1] = (float)(unsigned)in[i];
  f[3 * i + 2] = (float)(long)in[i] * 0.5f;
  iout[3 * i + 0] = (int)fin[i];
  iout[3 * i + 1] = (int)(unsigned)__builtin_fabsf(fin[i]);
  iout[3 * i + 2] = (int)(long)(fin[i] * 3.0f);
}

__kernel void addr64(__global int *base, long stride, int n) {
  int i = GID;
  if (i >= n) return;
  __global int *p = base + (long)i * stride;
  p[0] = p[0] * 2 + i;
}

__kernel void subdword(__global uchar *b, __global short *s, __global const char *cb, __global const ushort *us, int n) {
  int i = GID;
  if (i >= n) return;
  b[i] = (uchar)(cb[i] * 3 + 1);
  s[i] = (short)(us[i] >> 1) - (short)cb[i];
}
