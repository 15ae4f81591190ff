// relocated(out, count): reads global data through pointers stored in global data, which the
// linker leaves as dynamic R_AMDGPU_RELATIVE64 relocations: the loader must patch them for the
// address the image is loaded at. For i < count:
//   out[i] = table[i & 7] + *pick * 1000 + (slots[i & 3] - &counts[0]) * 100000
// where pick = &table[3] and slots[k] = &counts[k] (so the last term is (i & 3) * 100000).
#include "ids.h"

__constant uint table[8] = {11, 12, 13, 14, 15, 16, 17, 18};
__constant uint *__constant pick = &table[3];
__global uint counts[4] = {0, 0, 0, 0};
__global uint *__global slots[4] = {&counts[0], &counts[1], &counts[2], &counts[3]};

__kernel void relocated(__global uint *out, uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  out[i] = table[i & 7] + *pick * 1000 + (uint)(slots[i & 3] - &counts[0]) * 100000;
}
