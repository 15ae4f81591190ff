// OpenCL 2.0 generic pointers: one non-inlined function reads through flat addresses that point
// into global, local (LDS aperture) and private (scratch aperture) memory.
#define BARRIER() do { __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup"); \
  __builtin_amdgcn_s_barrier(); __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup"); } while (0)

__attribute__((noinline)) float sum4(const float *p, int stride) {
  return p[0] + p[stride] + p[2 * stride] + p[3 * stride];
}

__attribute__((noinline)) void scale(float *p, float f) {
  p[0] *= f;
}

__kernel void generic_ptrs(__global float *out, __global float *g) {
  __local float l[256];
  float priv[8];
  int i = __builtin_amdgcn_workitem_id_x();
  int gid = __builtin_amdgcn_workgroup_id_x() * 64 + i;
  l[i] = g[gid] * 2.0f;
  for (int k = 0; k < 8; k++) priv[k] = (float)(k * i);
  BARRIER();
  scale(&priv[i & 7], 3.0f);
  scale(&l[i], 0.5f);
  BARRIER();
  out[3 * gid + 0] = sum4(&g[gid & ~3], 1);
  out[3 * gid + 1] = sum4(&l[i & ~3], 1);
  out[3 * gid + 2] = sum4(&priv[i & 1], 2);
}
