// global_atomics: a histogram and global reductions with device-scope atomics:
//   hist[data[i] % nbins] += 1; stats[0] = max(data); stats[1] = min(data);
//   stats[2] ^= data (xor of all); stats[3] += 1 (system-scope add: may become a CAS loop)
#include "ids.h"

__kernel void global_atomics(__global const uint *data, __global uint *hist,
                             __global uint *stats, uint nbins, uint count) {
  uint i = global_id(0);
  if (i >= count)
    return;
  uint v = data[i];
  __opencl_atomic_fetch_add((volatile __global atomic_uint *)&hist[v % nbins], 1u,
                            memory_order_relaxed, memory_scope_device);
  __opencl_atomic_fetch_max((volatile __global atomic_uint *)&stats[0], v,
                            memory_order_relaxed, memory_scope_device);
  __opencl_atomic_fetch_min((volatile __global atomic_uint *)&stats[1], v,
                            memory_order_relaxed, memory_scope_device);
  __opencl_atomic_fetch_xor((volatile __global atomic_uint *)&stats[2], v,
                            memory_order_relaxed, memory_scope_device);
  __atomic_fetch_add(&stats[3], 1u, __ATOMIC_RELAXED);
}
