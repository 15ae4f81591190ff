// lds_transpose: out = in^T for a rows x cols float matrix (row-major), through a 16x16 LDS
// tile with a barrier; 2-D grid of (cols, rows) work-items, 16x16 work-groups, partial tiles
// at the edges are handled.
#include "ids.h"

#define TILE 16

__kernel void lds_transpose(__global const float *in, __global float *out, uint rows,
                            uint cols) {
  __local float tile[TILE][TILE + 1];
  uint lx = local_id(0), ly = local_id(1);
  uint x = group_id(0) * TILE + lx, y = group_id(1) * TILE + ly;
  if (x < cols && y < rows)
    tile[ly][lx] = in[y * cols + x];
  workgroup_barrier();
  uint tx = group_id(1) * TILE + lx, ty = group_id(0) * TILE + ly;
  if (tx < rows && ty < cols)
    out[ty * rows + tx] = tile[lx][ly];
}
