// Kernels that fault on purpose: stores and loads past the end of a buffer.
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())

__kernel void store_all(__global int *out) {
  int i = GID;
  out[i] = i;
}

__kernel void load_all(__global int *out, __global const int *in) {
  int i = GID;
  out[i] = in[i] + 1;
}

__kernel void spin(__global volatile int *flag) {
  while (flag[0] == 0) { }
}
