// hidden_args(out): work-item (0,0,0) of work-group (0,0,0) copies the hidden arguments it
// sees into out[]: [0..2] block counts, [3..5] group sizes, [6..8] remainders,
// [9..11] global offsets (low 32 bits), [12] grid dims. Checks the runtime's hidden-argument
// values for any grid.
#include "ids.h"

__kernel void hidden_args(__global uint *out) {
  if (local_id(0) | local_id(1) | local_id(2) | group_id(0) | group_id(1) | group_id(2))
    return;
  for (int d = 0; d < 3; d++) {
    out[d] = block_count(d);
    out[3 + d] = enqueued_group_size(d);
    out[6 + d] = group_remainder(d);
    out[9 + d] = (uint)global_offset(d);
  }
  out[12] = work_dim();
}
