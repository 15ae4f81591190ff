// bit_ops: out[8i..8i+7] = popcount(a), clz(a) (32 for 0), ctz(a) (32 for 0),
//   bitreverse(a), rotl(a, b & 31), bitfield (a >> (b & 15)) & 0x3ff, a & ~b | (a ^ b) >> 7,
//   byte swap of a.
#include "ids.h"

__kernel void bit_ops(__global const uint *a, __global const uint *b, __global uint *out,
                      uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  uint x = a[i], y = b[i], r = y & 31;
  out[8 * i + 0] = __builtin_popcount(x);
  out[8 * i + 1] = x ? __builtin_clz(x) : 32;
  out[8 * i + 2] = x ? __builtin_ctz(x) : 32;
  out[8 * i + 3] = __builtin_bitreverse32(x);
  out[8 * i + 4] = r ? (x << r) | (x >> (32 - r)) : x;
  out[8 * i + 5] = (x >> (y & 15)) & 0x3ff;
  out[8 * i + 6] = (x & ~y) | ((x ^ y) >> 7);
  out[8 * i + 7] = __builtin_bswap32(x);
}
