// Global atomics: counters, min/max, exchange, compare-and-swap, 64-bit.
// No device library is linked: the OpenCL atomic_*() functions are written with clang builtins.
// Enqueued workgroup size from the hidden kernel arguments (code object v5 implicit args):
// __builtin_amdgcn_workgroup_size_x() is the size of *this* (possibly partial) group.
#define LSIZE(d) (((__constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + (d)])
#define GID (__builtin_amdgcn_workgroup_id_x() * LSIZE(0) + __builtin_amdgcn_workitem_id_x())
#define DEV(op, p, v) __opencl_atomic_fetch_##op((p), (v), memory_order_relaxed, memory_scope_device)

__kernel void counter(__global int *ctr, __global int *slots, int n) {
  int i = GID;
  if (i >= n) return;
  int old = __atomic_fetch_add(ctr, 1, __ATOMIC_RELAXED);
  slots[old] = i;
}

__kernel void counter_divergent(__global int *ctr, __global int *slots, __global const int *in, int n) {
  int i = GID;
  if (i >= n || (in[i] & 1)) return;
  int old = __atomic_fetch_add(ctr, in[i], __ATOMIC_RELAXED);
  slots[i] = old;
}

__kernel void minmax(__global atomic_int *res, __global const int *in, int n) {
  int i = GID;
  if (i >= n) return;
  DEV(min, &res[0], in[i]);
  DEV(max, &res[1], in[i]);
  DEV(or, &res[2], 1 << (in[i] & 31));
  DEV(xor, &res[3], in[i]);
  DEV(and, &res[4], ~(1 << (i & 31)));
  DEV(add, &res[5 + (in[i] & 7)], in[i]);
}

__kernel void minmax_ret(__global atomic_uint *res, __global uint *out, __global const uint *in, int n) {
  int i = GID;
  if (i >= n) return;
  // every work-item gets a distinct old value only for add; min/max return values are checked
  // for consistency by the caller
  out[2 * i] = DEV(max, &res[i & 3], in[i]);
  out[2 * i + 1] = DEV(add, &res[4 + (i & 3)], in[i] & 0xff);
}

__kernel void cas_lock(__global int *vals, __global const int *in, int n) {
  int i = GID;
  if (i >= n) return;
  __global int *p = &vals[in[i] & 3];
  int old = *p, assumed;
  do {
    assumed = old;
    old = assumed;
    __atomic_compare_exchange_n(p, &old, assumed * 3 + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  } while (old != assumed);
}

__kernel void xchg(__global int *v, __global int *out, int n) {
  int i = GID;
  if (i >= n) return;
  out[i] = __atomic_exchange_n(&v[i % 4], i, __ATOMIC_RELAXED);
}

__kernel void atomic64(__global atomic_long *v, __global const long *in, int n) {
  int i = GID;
  if (i >= n) return;
  DEV(add, &v[0], in[i]);
  DEV(max, &v[1], in[i]);
  DEV(min, &v[2], in[i]);
}
