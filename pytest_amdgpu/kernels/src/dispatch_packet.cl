// dispatch_packet(out): work-item (0,0,0) of work-group (0,0,0) copies the 64-byte AQL kernel
// dispatch packet its dispatch pointer names into out[0..15]. Through AQL that is the packet
// in the ring; through PM4 it is the packet image the runtime writes for the kernel.
#include "ids.h"

__kernel void dispatch_packet(__global uint *out) {
  if (local_id(0) | local_id(1) | local_id(2) | group_id(0) | group_id(1) | group_id(2))
    return;
  __constant uint *packet = (__constant uint *)__builtin_amdgcn_dispatch_ptr();
  for (int k = 0; k < 16; k++)
    out[k] = packet[k];
}
