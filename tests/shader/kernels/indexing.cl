// Dynamic indexing of private arrays held in registers (s_set_gpr_idx_on on GFX9, v_movrels on
// GFX11) and register pressure that makes LLVM spill (to AGPRs on gfx90a/gfx942, to scratch).
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())

__kernel void uniform_index(__global float *out, int j, __global const float *in) {
  int i = GID;
  float a[16];
  for (int k = 0; k < 16; k++) a[k] = in[k + i];
  a[j & 15] += 1.0f;
  out[i] = a[(j >> 4) & 15] + a[(j >> 8) & 15];
}

__kernel __attribute__((amdgpu_num_vgpr(24))) void pressure(__global float *out, __global const float *in, int n) {
  int i = GID;
  if (i >= n) return;
  float v[40];
  for (int k = 0; k < 40; k++) v[k] = in[(i + 7 * k) % n];
  float acc = 0.0f;
  for (int r = 0; r < 3; r++)
    for (int k = 0; k < 40; k++) acc = acc * 0.5f + v[k] * v[(k + r + 1) % 40];
  out[i] = acc;
}
