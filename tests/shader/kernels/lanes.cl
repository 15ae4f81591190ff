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

// DPP16 controls with row / bank masks and bound_ctrl, in divergent code: each lane keeps
// `old` where its row or bank is masked off or (bound_ctrl clear) its source is invalid.
#define UPD(k, ctrl, rm, bm, bc) out[16 * i + k] = __builtin_amdgcn_update_dpp(old, v, ctrl, rm, bm, bc)
__kernel void dpp_masks(__global int *out, __global const int *a, __global const int *active) {
  int i = __builtin_amdgcn_workgroup_id_x() * 64 + __builtin_amdgcn_workitem_id_x();
  int v = a[i];
  int old = -7 - i;
  if (active[i]) {
    UPD(0, 0x111, 0xF, 0xF, false);   // row_shr:1
    UPD(1, 0x111, 0xF, 0xF, true);
    UPD(2, 0x101, 0xA, 0xF, false);   // row_shl:1, rows 1 and 3
    UPD(3, 0x121, 0xF, 0x5, true);    // row_ror:1, banks 0 and 2
    UPD(4, 0x1B, 0xF, 0xF, false);    // quad_perm:[3,2,1,0]
    UPD(5, 0x140, 0xF, 0xF, false);   // row_mirror
    UPD(6, 0x141, 0xF, 0xF, true);    // row_half_mirror
    UPD(7, 0x118, 0xF, 0xF, true);    // row_shr:8
    UPD(8, 0x10F, 0x3, 0xF, false);   // row_shl:15, rows 0 and 1
#if defined(__gfx90a__) || defined(__gfx942__)
    UPD(9, 0x130, 0xF, 0xF, false);   // wave_shl:1
    UPD(10, 0x142, 0xA, 0xF, false);  // row_bcast:15
    UPD(11, 0x143, 0xC, 0xF, true);   // row_bcast:31
#endif
  }
}
