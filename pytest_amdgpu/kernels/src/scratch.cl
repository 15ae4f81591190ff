// scratch(idx, out, count): each work-item fills a volatile private array (so it lives in
// scratch memory: the private segment) and reads back one element chosen by idx[i]:
//   out[i] = i * ((idx[i] & 63) + 1)    for i < count.
// Exercises the private segment set-up: the buffer resource / flat scratch init on gfx90a,
// architected flat scratch on gfx942 and gfx1100.
#include "ids.h"

__kernel void scratch(__global const uint *idx, __global uint *out, uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  volatile uint tmp[64];
  for (int k = 0; k < 64; k++)
    tmp[k] = i * (k + 1);
  out[i] = tmp[idx[i] & 63];
}
