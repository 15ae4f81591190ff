// Private arrays indexed dynamically: they live in scratch memory.
// Enqueued workgroup size from the hidden kernel arguments (code object v5 implicit args):
// __builtin_amdgcn_workgroup_size_x() is the size of *this* (possibly partial) group.
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())

__kernel void priv(__global int *out, __global const int *idx, int n) {
  int i = GID;
  if (i >= n) return;
  int a[64];
  for (int k = 0; k < 64; k++) a[k] = k * i + idx[k];
  out[i] = a[idx[i] & 63] + a[(idx[i] >> 8) & 63];
}

__kernel void priv_sort(__global float *out, __global const float *in, int n) {
  int i = GID;
  if (i >= n) return;
  float v[16];
  for (int k = 0; k < 16; k++) v[k] = in[(i * 16 + k) % n];
  for (int a = 1; a < 16; a++) {
    float key = v[a];
    int b = a - 1;
    while (b >= 0 && v[b] > key) { v[b + 1] = v[b]; b--; }
    v[b + 1] = key;
  }
  for (int k = 0; k < 16; k++) out[i * 16 + k] = v[k];
}
