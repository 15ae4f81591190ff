// float_math: element-wise float32 operations on a, b, c:
//   out[4i+0] = a*b + c, out[4i+1] = fmin(a, b) - fmax(b, c), out[4i+2] = fabs(a - c) * 0.5f,
//   out[4i+3] = sqrt(fabs(b)) + a / (1.0f + fabs(c))
#include "ids.h"

__kernel void float_math(__global const float *a, __global const float *b,
                         __global const float *c, __global float *out, uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  float x = a[i], y = b[i], z = c[i];
  out[4 * i + 0] = x * y + z;
  out[4 * i + 1] = __builtin_fminf(x, y) - __builtin_fmaxf(y, z);
  out[4 * i + 2] = __builtin_fabsf(x - z) * 0.5f;
  out[4 * i + 3] = __builtin_sqrtf(__builtin_fabsf(y)) + x / (1.0f + __builtin_fabsf(z));
}
