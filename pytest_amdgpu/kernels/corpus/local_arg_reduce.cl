// local_arg_reduce: like lds_reduce but the LDS comes from a __local pointer argument
// (dynamic LDS, value kind dynamic_shared_pointer): maxes[g] = max of in[i] in work-group g.
#include "ids.h"

__kernel void local_arg_reduce(__global const int *in, __global int *maxes,
                               __local int *part, uint count) {
  uint l = local_id(0), n = enqueued_group_size(0), i = global_id(0);
  part[l] = i < count ? in[i] : (int)0x80000000;
  workgroup_barrier();
  for (uint s = n / 2; s > 0; s >>= 1) {
    if (l < s)
      part[l] = part[l] > part[l + s] ? part[l] : part[l + s];
    workgroup_barrier();
  }
  if (l == 0)
    maxes[group_id(0)] = part[0];
}
