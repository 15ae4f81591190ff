// int_math: element-wise 32-bit integer math on a, b with wrap-around (done in unsigned
// arithmetic, where C defines it):
//   out[6i+0] = a + b, [1] = a - b, [2] = a * b, [3] = high 32 bits of (long)a * (long)b,
//   [4] = min(a, b) ^ (max(a, b) << 1), [5] = (a >> 3) + ((uint)b >> 5)   (a >> 3 arithmetic)
#include "ids.h"

__kernel void int_math(__global const int *a, __global const int *b, __global int *out,
                       uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  int x = a[i], y = b[i];
  uint ux = (uint)x, uy = (uint)y;
  out[6 * i + 0] = (int)(ux + uy);
  out[6 * i + 1] = (int)(ux - uy);
  out[6 * i + 2] = (int)(ux * uy);
  out[6 * i + 3] = (int)(((long)x * (long)y) >> 32);
  out[6 * i + 4] = (int)((uint)(x < y ? x : y) ^ ((uint)(x > y ? x : y) << 1));
  out[6 * i + 5] = (int)((uint)(x >> 3) + (uy >> 5));
}
