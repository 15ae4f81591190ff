// LDS: transpose through local memory, tree reduction with barriers, local atomics.
// No device library is linked: barrier() and atomic_*() are written with clang builtins.
#define BARRIER() do { __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup"); \
  __builtin_amdgcn_s_barrier(); __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup"); } while (0)
__kernel void transpose(__global float *out, __global const float *in, int w, int h) {
  __local float tile[16][17];
  int lx = __builtin_amdgcn_workitem_id_x(), ly = __builtin_amdgcn_workitem_id_y();
  int bx = __builtin_amdgcn_workgroup_id_x() * 16, by = __builtin_amdgcn_workgroup_id_y() * 16;
  int x = bx + lx, y = by + ly;
  if (x < w && y < h) tile[ly][lx] = in[y * w + x];
  BARRIER();
  int ox = by + lx, oy = bx + ly;
  if (ox < h && oy < w) out[oy * h + ox] = tile[lx][ly];
}

__kernel void reduce(__global float *out, __global const float *in, int n) {
  __local float s[256];
  int lid = __builtin_amdgcn_workitem_id_x();
  int gid = __builtin_amdgcn_workgroup_id_x() * 256 + lid;
  s[lid] = gid < n ? in[gid] : 0.0f;
  BARRIER();
  for (int st = 128; st > 0; st >>= 1) {
    if (lid < st) s[lid] += s[lid + st];
    BARRIER();
  }
  if (lid == 0) out[__builtin_amdgcn_workgroup_id_x()] = s[0];
}

__kernel void reduce_dyn(__global int *out, __global const int *in, __local int *s, int n) {
  int lid = __builtin_amdgcn_workitem_id_x();
  int sz = __builtin_amdgcn_workgroup_size_x();
  int gid = __builtin_amdgcn_workgroup_id_x() * sz + lid;
  s[lid] = gid < n ? in[gid] : 0;
  BARRIER();
  for (int st = sz / 2; st > 0; st >>= 1) {
    if (lid < st) s[lid] += s[lid + st];
    BARRIER();
  }
  if (lid == 0) out[__builtin_amdgcn_workgroup_id_x()] = s[0];
}

__kernel void local_hist(__global uint *out, __global const uint *in, int n) {
  __local uint h[16];
  int lid = __builtin_amdgcn_workitem_id_x();
  int gid = __builtin_amdgcn_workgroup_id_x() * 128 + lid;
  if (lid < 16) h[lid] = 0;
  BARRIER();
  if (gid < n) __atomic_fetch_add(&h[in[gid] & 15], 1u, __ATOMIC_RELAXED);
  BARRIER();
  if (lid < 16) __atomic_fetch_add(&out[lid], h[lid], __ATOMIC_RELAXED);
}
