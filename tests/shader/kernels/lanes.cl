// Cross-lane builtins: DPP moves, ds_swizzle, ds_bpermute, readlane/readfirstlane, ballot,
// mbcnt. One wave per workgroup; the test computes the expected lane permutations in numpy.
#define LID __builtin_amdgcn_workitem_id_x()
#define OFF (__builtin_amdgcn_workgroup_id_x() * __builtin_amdgcn_workgroup_size_x())

__kernel void dpp_ops(__global int *out, __global const int *in) {
  int l = LID;
  int base = OFF;
  int v = in[base + l];
  int k = 8 * (base + l);
  out[k + 0] = __builtin_amdgcn_mov_dpp(v, 0x1B, 0xF, 0xF, 0);         // quad_perm [3,2,1,0]
  out[k + 1] = __builtin_amdgcn_update_dpp(-1, v, 0x111, 0xF, 0xF, 0);  // row_shr:1, bound_ctrl off
  out[k + 2] = __builtin_amdgcn_update_dpp(-1, v, 0x101, 0xF, 0xF, 1);  // row_shl:1, bound_ctrl on
  out[k + 3] = __builtin_amdgcn_update_dpp(7, v, 0x140, 0xF, 0xF, 0);   // row_mirror
  out[k + 4] = __builtin_amdgcn_ds_swizzle(v, 0x041F);                  // swap 1 (xor_mask 1)
  out[k + 5] = __builtin_amdgcn_ds_bpermute(((l + 5) % 32) * 4, v);
  out[k + 6] = __builtin_amdgcn_readfirstlane(v) + __builtin_amdgcn_readlane(v, 3);
  out[k + 7] = __builtin_amdgcn_mbcnt_lo(0xAAAAAAAAu, 0) + __builtin_amdgcn_mbcnt_lo(~0u, 100);
}

__kernel void ballot_ops(__global uint *out, __global const int *in) {
  int l = LID;
  int base = OFF;
  int v = in[base + l];
  ulong b = __builtin_amdgcn_ballot_w64(v > 0);
  out[2 * (base + l)] = (uint)b;
  out[2 * (base + l) + 1] = (uint)(b >> 32);
}

#if __AMDGCN_WAVEFRONT_SIZE == 32
__kernel void ballot32(__global uint *out, __global const int *in) {
  int l = LID;
  int base = OFF;
  out[base + l] = __builtin_amdgcn_ballot_w32(in[base + l] > 0);
}
#endif

__kernel void divergent_lanes(__global int *out, __global const int *in) {
  int l = LID;
  int base = OFF;
  int v = in[base + l];
  int r = 0;
  if (v & 1)
    r = __builtin_amdgcn_readfirstlane(v) + __builtin_amdgcn_mov_dpp(v, 0xB1, 0xF, 0xF, 1);
  out[base + l] = r;
}
