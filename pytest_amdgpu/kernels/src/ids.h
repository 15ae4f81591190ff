// Work-item geometry for OpenCL C kernels compiled with clang -nogpulib (no device libraries):
// the AMDGPU builtins for ids, and the code object v5 hidden arguments for sizes. Hidden
// argument offsets from the start of the implicit block: block_count_x/y/z 0/4/8 (u32),
// group_size_x/y/z 12/14/16 (u16), remainder_x/y/z 18/20/22 (u16), global_offset_x/y/z
// 40/48/56 (u64), grid_dims 64 (u16) (LLVM AMDGPUUsage, "Code Object V5 Metadata").
#ifndef PYTEST_AMDGPU_IDS_H
#define PYTEST_AMDGPU_IDS_H

#define HIDDEN_AT(type, off) \
  (*(__constant type *)((__constant char *)__builtin_amdgcn_implicitarg_ptr() + (off)))

static inline uint local_id(int d) {
  return d == 0 ? __builtin_amdgcn_workitem_id_x()
       : d == 1 ? __builtin_amdgcn_workitem_id_y() : __builtin_amdgcn_workitem_id_z();
}

static inline uint group_id(int d) {
  return d == 0 ? __builtin_amdgcn_workgroup_id_x()
       : d == 1 ? __builtin_amdgcn_workgroup_id_y() : __builtin_amdgcn_workgroup_id_z();
}

static inline uint block_count(int d) { return HIDDEN_AT(uint, 4 * d); }
static inline uint enqueued_group_size(int d) { return HIDDEN_AT(ushort, 12 + 2 * d); }
static inline uint group_remainder(int d) { return HIDDEN_AT(ushort, 18 + 2 * d); }
static inline ulong global_offset(int d) { return HIDDEN_AT(ulong, 40 + 8 * d); }
static inline uint work_dim(void) { return HIDDEN_AT(ushort, 64); }

// Size of this work-group along d: the last one may be partial.
static inline uint local_size(int d) {
  return group_id(d) < block_count(d) ? enqueued_group_size(d) : group_remainder(d);
}

static inline uint num_groups(int d) {
  return block_count(d) + (group_remainder(d) != 0);
}

static inline uint global_size(int d) {
  return block_count(d) * enqueued_group_size(d) + group_remainder(d);
}

// Global id without the global offset (what the kernels here index with).
static inline uint global_id(int d) {
  return group_id(d) * enqueued_group_size(d) + local_id(d);
}

// barrier(CLK_LOCAL_MEM_FENCE) without the OpenCL library: release LDS writes to the
// work-group, s_barrier, acquire.
static inline void workgroup_barrier(void) {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
  __builtin_amdgcn_s_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}

#endif
