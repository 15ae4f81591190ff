// grid2d: 2-D grid with partial work-groups: out[y * width + x] = x * 65536 + y for
// x < width, y < height; also counts[y * width + x] = local size product of the item's
// work-group (so partial groups are visible).
#include "ids.h"

__kernel void grid2d(__global uint *out, __global uint *counts, uint width, uint height) {
  uint x = global_id(0), y = global_id(1);
  if (x >= width || y >= height)
    return;
  out[y * width + x] = x * 65536 + y;
  counts[y * width + x] = local_size(0) * local_size(1);
}
