// addr64: 64-bit address and integer arithmetic. For i < count:
//   out[i] = src[base + (ulong)i * stride]      (a 64-bit element index)
//   wide[i] = ((ulong)i << 33) + mix * (ulong)(i + 1)   (64-bit shifts, multiplies, adds)
#include "ids.h"

__kernel void addr64(__global const uint *src, __global uint *out, __global ulong *wide,
                     ulong base, ulong stride, ulong mix, uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  out[i] = src[base + (ulong)i * stride];
  wide[i] = ((ulong)i << 33) + mix * (ulong)(i + 1);
}
