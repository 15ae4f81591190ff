// Barriers in awkward places: inside loops with per-group trip counts, after divergent
// scalar branches, in workgroups with partial waves.
#define BARRIER() do { __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup"); \
  __builtin_amdgcn_s_barrier(); __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup"); } while (0)

// Each group rotates its LDS row `rounds[group]` times by one position.
__kernel void rotate_rounds(__global int *out, __global const int *in, __global const int *rounds) {
  __local int s[256];
  int l = __builtin_amdgcn_workitem_id_x();
  int g = __builtin_amdgcn_workgroup_id_x();
  int n = __builtin_amdgcn_workgroup_size_x();
  s[l] = in[g * n + l];
  BARRIER();
  int r = rounds[g];
  for (int k = 0; k < r; k++) {
    int v = s[(l + 1) % n];
    BARRIER();
    s[l] = v;
    BARRIER();
  }
  out[g * n + l] = s[l];
}

// Waves of a group take different scalar paths (the condition is uniform per wave), then meet.
__kernel void wave_paths(__global int *out, __global const int *in) {
  __local int s[256];
  int l = __builtin_amdgcn_workitem_id_x();
  int g = __builtin_amdgcn_workgroup_id_x();
  int n = __builtin_amdgcn_workgroup_size_x();
  int wave = __builtin_amdgcn_readfirstlane(l) / 32;
  int v = in[g * n + l];
  if (wave & 1) {
    for (int k = 0; k < wave + 3; k++) v = v * 3 + k;
  } else {
    v = v ^ 0x5555;
  }
  s[l] = v;
  BARRIER();
  out[g * n + l] = s[n - 1 - l];
}

// Every wave loops `trips[wave]` times before two barrier-separated LDS exchanges: waves of
// one group arrive at the first barrier far apart (long loops run in several scheduler turns),
// and a group's late wave must still see what its early waves wrote, and vice versa.
__kernel void staggered(__global int *out, __global const int *trips, int wave_size) {
  __local int s[256];
  int l = __builtin_amdgcn_workitem_id_x();
  int g = __builtin_amdgcn_workgroup_id_x();
  int n = __builtin_amdgcn_workgroup_size_x();
  int t = trips[(g * n + l) / wave_size];
  int acc = 0;
  for (int k = 0; k < t; k++) acc += k ^ l;
  s[l] = acc;
  BARRIER();
  int x = s[n - 1 - l];
  BARRIER();
  s[l] = x + l;
  BARRIER();
  out[g * n + l] = s[(l + 1) % n];
}
