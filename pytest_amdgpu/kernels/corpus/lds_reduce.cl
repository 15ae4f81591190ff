// lds_reduce: sums[g] = sum of in[i] over work-group g (i < count), a tree reduction in LDS
// with barriers; 1-D work-groups of a power-of-two size up to 256.
#include "ids.h"

__kernel void lds_reduce(__global const uint *in, __global uint *sums, uint count) {
  __local uint part[256];
  uint l = local_id(0), n = enqueued_group_size(0), i = global_id(0);
  part[l] = i < count ? in[i] : 0;
  workgroup_barrier();
  for (uint s = n / 2; s > 0; s >>= 1) {
    if (l < s)
      part[l] += part[l + s];
    workgroup_barrier();
  }
  if (l == 0)
    sums[group_id(0)] = part[0];
}
