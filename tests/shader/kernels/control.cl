// Control flow: uniform and divergent branches, data-dependent loops, 2D/3D grids.
// Enqueued workgroup size from the hidden kernel arguments (code object v5 implicit args):
// __builtin_amdgcn_workgroup_size_x() is the size of *this* (possibly partial) group.
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())

__kernel void divergent(__global int *out, __global const int *in, int n) {
  int i = GID;
  if (i >= n) return;
  int v = in[i];
  int r;
  if (v & 1) {
    r = v * 3 + 1;
  } else if (v & 2) {
    r = v / 2;
  } else {
    r = -v;
  }
  out[i] = r;
}

__kernel void uniform_branch(__global int *out, __global const int *in, int mode, int n) {
  int i = GID;
  if (i >= n) return;
  if (mode == 0) out[i] = in[i] + 1;
  else if (mode == 1) out[i] = in[i] * 2;
  else out[i] = in[i] - mode;
}

__kernel void loop(__global int *out, __global const int *cnt, int n) {
  int i = GID;
  if (i >= n) return;
  int s = 0;
  for (int k = 0; k < cnt[i]; k++) s += (k * k) ^ i;
  out[i] = s;
}

__kernel void collatz(__global int *out, __global const uint *in, int n) {
  int i = GID;
  if (i >= n) return;
  uint v = in[i];
  int steps = 0;
  while (v != 1 && steps < 1000) {
    v = (v & 1) ? 3 * v + 1 : v >> 1;
    steps++;
  }
  out[i] = steps;
}

__kernel void grid2d(__global int *out, int w, int h) {
  int x = __builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x();
  int y = __builtin_amdgcn_workgroup_id_y() * LSIZE(1) + __builtin_amdgcn_workitem_id_y();
  if (x < w && y < h) out[y * w + x] = x * 1000 + y;
}

__kernel void grid3d(__global int *out, int w, int h, int d) {
  int x = __builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x();
  int y = __builtin_amdgcn_workgroup_id_y() * LSIZE(1) + __builtin_amdgcn_workitem_id_y();
  int z = __builtin_amdgcn_workgroup_id_z() * LSIZE(2) + __builtin_amdgcn_workitem_id_z();
  if (x < w && y < h && z < d) out[(z * h + y) * w + x] = x + y * 100 + z * 10000;
}

__kernel void ids(__global int *out, __constant uint *ngrid) {
  // raw ids: workitem x,y,z and workgroup x,y,z per work item (flattened by the caller)
  uint lx = __builtin_amdgcn_workitem_id_x(), ly = __builtin_amdgcn_workitem_id_y(), lz = __builtin_amdgcn_workitem_id_z();
  uint gx = __builtin_amdgcn_workgroup_id_x(), gy = __builtin_amdgcn_workgroup_id_y(), gz = __builtin_amdgcn_workgroup_id_z();
  // actual (partial-aware) sizes of this group, and the enqueued sizes for indexing
  uint sx = __builtin_amdgcn_workgroup_size_x(), sy = __builtin_amdgcn_workgroup_size_y(), sz = __builtin_amdgcn_workgroup_size_z();
  uint ngx = ngrid[0], ngy = ngrid[1];
  uint x = gx * LSIZE(0) + lx, y = gy * LSIZE(1) + ly, z = gz * LSIZE(2) + lz;
  uint idx = (z * ngy + y) * ngx + x;
  out[4 * idx + 0] = lx | (ly << 10) | (lz << 20);
  out[4 * idx + 1] = gx | (gy << 10) | (gz << 20);
  out[4 * idx + 2] = sx | (sy << 10) | (sz << 20);
  out[4 * idx + 3] = 1;
}
