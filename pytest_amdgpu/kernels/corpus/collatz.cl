// collatz: a loop with a data-dependent trip count (divergent across lanes):
//   steps[i] = number of Collatz steps from start[i] (>= 1) to 1, capped at limit.
#include "ids.h"

__kernel void collatz(__global const uint *start, __global uint *steps, uint limit,
                      uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  ulong v = start[i];
  uint n = 0;
  while (v != 1 && n < limit) {
    v = (v & 1) ? 3 * v + 1 : v >> 1;
    n++;
  }
  steps[i] = n;
}
