// Non-inlined functions: s_getpc/s_swappc/s_setpc and a call stack in scratch. (No recursion:
// LLVM sizes the private segment without it, as the hardware ABI expects.)
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())

__attribute__((noinline)) int mix(int a, int b) {
  int t[4] = {a, b, a ^ b, a + b};
  return t[(a + b) & 3] * 3 - t[a & 3];
}

__attribute__((noinline)) int fib(int n) {
  int a = 0, b = 1;
  for (int k = 0; k < n; k++) { int t = a + b; a = b; b = t; }
  return mix(a, 1) - mix(a, 1) + a;
}

__kernel void call_mix(__global int *out, __global const int *in, int n) {
  int i = GID;
  if (i >= n) return;
  out[i] = mix(in[i], i) + fib(in[i] & 7);
}
