// branches: a uniform branch on a kernel argument (mode) and divergent branches on data:
//   mode 0: out[i] = x odd ? 3x+1 : x/2;  mode 1: out[i] = x % 3 == 0 ? x : x % 3 == 1 ? ~x : -x;
//   other modes: out[i] = x
#include "ids.h"

__kernel void branches(__global const int *in, __global int *out, uint mode, uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  int x = in[i], r;
  if (mode == 0) {
    if (x & 1)
      r = 3 * x + 1;
    else
      r = x / 2;
  } else if (mode == 1) {
    switch ((uint)x % 3) {
    case 0: r = x; break;
    case 1: r = ~x; break;
    default: r = -x; break;
    }
  } else {
    r = x;
  }
  out[i] = r;
}
