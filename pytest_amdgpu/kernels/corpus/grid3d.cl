// grid3d: 3-D grid with partial work-groups: out[(z * ny + y) * nx + x] = x | y << 10 | z << 20
// and groups[same] = group_id(0) | group_id(1) << 10 | group_id(2) << 20, for the work-items
// of the grid (sizes nx, ny, nz from the grid itself).
#include "ids.h"

__kernel void grid3d(__global uint *out, __global uint *groups) {
  uint x = global_id(0), y = global_id(1), z = global_id(2);
  uint nx = global_size(0), ny = global_size(1);
  uint k = (z * ny + y) * nx + x;
  out[k] = x | y << 10 | z << 20;
  groups[k] = group_id(0) | group_id(1) << 10 | group_id(2) << 20;
}
