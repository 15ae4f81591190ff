// double_math: element-wise float64: out[2i] = a*b + c, out[2i+1] = a / b - sqrt(|c|).
#include "ids.h"

__kernel void double_math(__global const double *a, __global const double *b,
                          __global const double *c, __global double *out, uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  double x = a[i], y = b[i], z = c[i];
  out[2 * i + 0] = x * y + z;
  out[2 * i + 1] = x / y - __builtin_sqrt(__builtin_fabs(z));
}
