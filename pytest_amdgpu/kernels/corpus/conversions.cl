// conversions: int <-> float conversions, rounding toward zero for float -> int:
//   fi[i] = (int)f[i]; fu[i] = (uint)fabs(f[i]); if_[i] = (float)n[i]; uf[i] = (float)(uint)n[i];
//   d[i] = (double)f[i] * 3.0 + (double)n[i]; l[i] = (long)((double)f[i] * 1e6)
#include "ids.h"

__kernel void conversions(__global const float *f, __global const int *n, __global int *fi,
                          __global uint *fu, __global float *if_, __global float *uf,
                          __global double *d, __global long *l, uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  float x = f[i];
  int k = n[i];
  fi[i] = (int)x;
  fu[i] = (uint)__builtin_fabsf(x);
  if_[i] = (float)k;
  uf[i] = (float)(uint)k;
  d[i] = (double)x * 3.0 + (double)k;
  l[i] = (long)((double)x * 1e6);
}
