"""cffi API-mode build of the KFD ABI, compiled against the system's <linux/kfd_ioctl.h>.

This module holds layouts and constants only; the system calls themselves are in _syscall.c.

Every struct layout and request number comes from the C compiler's reading of the header, not
from numbers typed here. Ioctls newer than the header (RUNTIME_ENABLE, from the 1.13 debugger
API; the 1.17 CREATE_QUEUE with ``sdma_engine_id``) are declared in C below, guarded so that a
newer header's own definitions win; the runtime uses them only when the running KFD reports that
version.

The ALLOC_MEMORY_OF_GPU flags are read as the ``__u32`` the struct field holds: the header
writes WRITABLE as the C int ``(1 << 31)``, which would otherwise reach Python as -2**31.
"""

from __future__ import annotations

import os
import pathlib
import sys

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
HEADER = "linux/kfd_ioctl.h"
INSTALL_HINT = (
    "the KFD ABI is compiled against <linux/kfd_ioctl.h>, which was not found. Install the "
    "kernel UAPI headers: 'apt-get install linux-libc-dev' (Debian/Ubuntu), "
    "'dnf install kernel-headers' (Fedora/RHEL) or 'pacman -S linux-api-headers' (Arch)."
)

# Structs of the compute path, as in the 1.11 header (fields newer headers add are not listed,
# so the same cdef compiles against any header from 1.11 on). "...;" lets the compiler place them.
CDEF_STRUCTS = """
struct kfd_ioctl_get_version_args { uint32_t major_version; uint32_t minor_version; ...; };
struct kfd_ioctl_create_queue_args {
    uint64_t ring_base_address; uint64_t write_pointer_address; uint64_t read_pointer_address;
    uint64_t doorbell_offset; uint32_t ring_size; uint32_t gpu_id; uint32_t queue_type;
    uint32_t queue_percentage; uint32_t queue_priority; uint32_t queue_id;
    uint64_t eop_buffer_address; uint64_t eop_buffer_size; uint64_t ctx_save_restore_address;
    uint32_t ctx_save_restore_size; uint32_t ctl_stack_size; ...; };
struct amdgpu_kfd_create_queue_args_v17 {
    uint64_t ring_base_address; uint64_t write_pointer_address; uint64_t read_pointer_address;
    uint64_t doorbell_offset; uint32_t ring_size; uint32_t gpu_id; uint32_t queue_type;
    uint32_t queue_percentage; uint32_t queue_priority; uint32_t queue_id;
    uint64_t eop_buffer_address; uint64_t eop_buffer_size; uint64_t ctx_save_restore_address;
    uint32_t ctx_save_restore_size; uint32_t ctl_stack_size; uint32_t sdma_engine_id;
    uint32_t pad; ...; };
struct kfd_ioctl_destroy_queue_args { uint32_t queue_id; uint32_t pad; ...; };
struct kfd_ioctl_update_queue_args {
    uint64_t ring_base_address; uint32_t queue_id; uint32_t ring_size;
    uint32_t queue_percentage; uint32_t queue_priority; ...; };
struct kfd_ioctl_set_cu_mask_args {
    uint32_t queue_id; uint32_t num_cu_mask; uint64_t cu_mask_ptr; ...; };
struct kfd_ioctl_get_queue_wave_state_args {
    uint64_t ctl_stack_address; uint32_t ctl_stack_used_size; uint32_t save_area_used_size;
    uint32_t queue_id; uint32_t pad; ...; };
struct kfd_ioctl_get_available_memory_args { uint64_t available; uint32_t gpu_id; uint32_t pad; ...; };
struct kfd_ioctl_set_memory_policy_args {
    uint64_t alternate_aperture_base; uint64_t alternate_aperture_size; uint32_t gpu_id;
    uint32_t default_policy; uint32_t alternate_policy; uint32_t pad; ...; };
struct kfd_ioctl_get_clock_counters_args {
    uint64_t gpu_clock_counter; uint64_t cpu_clock_counter; uint64_t system_clock_counter;
    uint64_t system_clock_freq; uint32_t gpu_id; uint32_t pad; ...; };
struct kfd_process_device_apertures {
    uint64_t lds_base; uint64_t lds_limit; uint64_t scratch_base; uint64_t scratch_limit;
    uint64_t gpuvm_base; uint64_t gpuvm_limit; uint32_t gpu_id; uint32_t pad; ...; };
struct kfd_ioctl_get_process_apertures_args {
    struct kfd_process_device_apertures process_apertures[7]; uint32_t num_of_nodes;
    uint32_t pad; ...; };
struct kfd_ioctl_get_process_apertures_new_args {
    uint64_t kfd_process_device_apertures_ptr; uint32_t num_of_nodes; uint32_t pad; ...; };
struct kfd_ioctl_create_event_args {
    uint64_t event_page_offset; uint32_t event_trigger_data; uint32_t event_type;
    uint32_t auto_reset; uint32_t node_id; uint32_t event_id; uint32_t event_slot_index; ...; };
struct kfd_ioctl_destroy_event_args { uint32_t event_id; uint32_t pad; ...; };
struct kfd_ioctl_set_event_args { uint32_t event_id; uint32_t pad; ...; };
struct kfd_ioctl_reset_event_args { uint32_t event_id; uint32_t pad; ...; };
struct kfd_memory_exception_failure {
    uint32_t NotPresent; uint32_t ReadOnly; uint32_t NoExecute; uint32_t imprecise; ...; };
struct kfd_hsa_memory_exception_data {
    struct kfd_memory_exception_failure failure; uint64_t va; uint32_t gpu_id;
    uint32_t ErrorType; ...; };
struct kfd_hsa_hw_exception_data {
    uint32_t reset_type; uint32_t reset_cause; uint32_t memory_lost; uint32_t gpu_id; ...; };
struct kfd_event_data {
    union {
        struct kfd_hsa_memory_exception_data memory_exception_data;
        struct kfd_hsa_hw_exception_data hw_exception_data;
    };
    uint64_t kfd_event_data_ext; uint32_t event_id; uint32_t pad; ...; };
struct kfd_ioctl_wait_events_args {
    uint64_t events_ptr; uint32_t num_events; uint32_t wait_for_all; uint32_t timeout;
    uint32_t wait_result; ...; };
struct kfd_ioctl_set_scratch_backing_va_args { uint64_t va_addr; uint32_t gpu_id; uint32_t pad; ...; };
struct kfd_ioctl_get_tile_config_args {
    uint64_t tile_config_ptr; uint64_t macro_tile_config_ptr; uint32_t num_tile_configs;
    uint32_t num_macro_tile_configs; uint32_t gpu_id; uint32_t gb_addr_config;
    uint32_t num_banks; uint32_t num_ranks; ...; };
struct kfd_ioctl_set_trap_handler_args {
    uint64_t tba_addr; uint64_t tma_addr; uint32_t gpu_id; uint32_t pad; ...; };
struct kfd_ioctl_acquire_vm_args { uint32_t drm_fd; uint32_t gpu_id; ...; };
struct kfd_ioctl_alloc_memory_of_gpu_args {
    uint64_t va_addr; uint64_t size; uint64_t handle; uint64_t mmap_offset; uint32_t gpu_id;
    uint32_t flags; ...; };
struct kfd_ioctl_free_memory_of_gpu_args { uint64_t handle; ...; };
struct kfd_ioctl_map_memory_to_gpu_args {
    uint64_t handle; uint64_t device_ids_array_ptr; uint32_t n_devices; uint32_t n_success; ...; };
struct kfd_ioctl_unmap_memory_from_gpu_args {
    uint64_t handle; uint64_t device_ids_array_ptr; uint32_t n_devices; uint32_t n_success; ...; };
struct kfd_ioctl_alloc_queue_gws_args {
    uint32_t queue_id; uint32_t num_gws; uint32_t first_gws; uint32_t pad; ...; };
struct kfd_ioctl_smi_events_args { uint32_t gpuid; uint32_t anon_fd; ...; };
struct kfd_ioctl_svm_attribute { uint32_t type; uint32_t value; ...; };
struct kfd_ioctl_svm_args {
    uint64_t start_addr; uint64_t size; uint32_t op; uint32_t nattr; ...; };
struct kfd_ioctl_set_xnack_mode_args { int32_t xnack_enabled; ...; };
struct kfd_ioctl_runtime_enable_args {
    uint64_t r_debug; uint32_t mode_mask; uint32_t capabilities_mask; ...; };
"""

# (python name, C request macro). Order follows the ioctl numbers.
REQUESTS = [
    "GET_VERSION", "CREATE_QUEUE", "DESTROY_QUEUE", "SET_MEMORY_POLICY", "GET_CLOCK_COUNTERS",
    "GET_PROCESS_APERTURES", "UPDATE_QUEUE", "CREATE_EVENT", "DESTROY_EVENT", "SET_EVENT",
    "RESET_EVENT", "WAIT_EVENTS", "SET_SCRATCH_BACKING_VA", "GET_TILE_CONFIG",
    "SET_TRAP_HANDLER", "GET_PROCESS_APERTURES_NEW", "ACQUIRE_VM", "ALLOC_MEMORY_OF_GPU",
    "FREE_MEMORY_OF_GPU", "MAP_MEMORY_TO_GPU", "UNMAP_MEMORY_FROM_GPU", "SET_CU_MASK",
    "GET_QUEUE_WAVE_STATE", "ALLOC_QUEUE_GWS", "SMI_EVENTS", "SVM", "SET_XNACK_MODE",
    "AVAILABLE_MEMORY", "RUNTIME_ENABLE",
]

# Integer constants taken from the header (or from the guarded declarations below).
CONSTANTS = [
    "KFD_IOCTL_MAJOR_VERSION", "KFD_IOCTL_MINOR_VERSION",
    "KFD_IOC_QUEUE_TYPE_COMPUTE", "KFD_IOC_QUEUE_TYPE_SDMA", "KFD_IOC_QUEUE_TYPE_COMPUTE_AQL",
    "KFD_IOC_QUEUE_TYPE_SDMA_XGMI", "KFD_IOC_QUEUE_TYPE_SDMA_BY_ENG_ID",
    "KFD_MAX_QUEUE_PERCENTAGE", "KFD_MAX_QUEUE_PRIORITY", "KFD_MIN_QUEUE_RING_SIZE",
    "KFD_IOC_CACHE_POLICY_COHERENT", "KFD_IOC_CACHE_POLICY_NONCOHERENT",
    "KFD_IOC_EVENT_SIGNAL", "KFD_IOC_EVENT_NODECHANGE", "KFD_IOC_EVENT_DEVICESTATECHANGE",
    "KFD_IOC_EVENT_HW_EXCEPTION", "KFD_IOC_EVENT_SYSTEM_EVENT", "KFD_IOC_EVENT_DEBUG_EVENT",
    "KFD_IOC_EVENT_PROFILE_EVENT", "KFD_IOC_EVENT_QUEUE_EVENT", "KFD_IOC_EVENT_MEMORY",
    "KFD_IOC_WAIT_RESULT_COMPLETE", "KFD_IOC_WAIT_RESULT_TIMEOUT", "KFD_IOC_WAIT_RESULT_FAIL",
    "KFD_SIGNAL_EVENT_LIMIT", "KFD_HW_EXCEPTION_WHOLE_GPU_RESET",
    "KFD_HW_EXCEPTION_PER_ENGINE_RESET", "KFD_HW_EXCEPTION_GPU_HANG", "KFD_HW_EXCEPTION_ECC",
    "KFD_MEM_ERR_NO_RAS", "KFD_MEM_ERR_SRAM_ECC", "KFD_MEM_ERR_POISON_CONSUMED",
    "KFD_MEM_ERR_GPU_HANG",
    "KFD_IOC_ALLOC_MEM_FLAGS_VRAM", "KFD_IOC_ALLOC_MEM_FLAGS_GTT",
    "KFD_IOC_ALLOC_MEM_FLAGS_USERPTR", "KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL",
    "KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP", "KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE",
    "KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE", "KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC",
    "KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE", "KFD_IOC_ALLOC_MEM_FLAGS_AQL_QUEUE_MEM",
    "KFD_IOC_ALLOC_MEM_FLAGS_COHERENT", "KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED",
    "KFD_IOC_ALLOC_MEM_FLAGS_EXT_COHERENT", "KFD_IOC_ALLOC_MEM_FLAGS_CONTIGUOUS",
    "KFD_IOCTL_SVM_FLAG_HOST_ACCESS", "KFD_IOCTL_SVM_FLAG_COHERENT",
    "KFD_IOCTL_SVM_FLAG_HIVE_LOCAL", "KFD_IOCTL_SVM_FLAG_GPU_RO", "KFD_IOCTL_SVM_FLAG_GPU_EXEC",
    "KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY", "KFD_IOCTL_SVM_FLAG_GPU_ALWAYS_MAPPED",
    "KFD_IOCTL_SVM_OP_SET_ATTR", "KFD_IOCTL_SVM_OP_GET_ATTR",
    "KFD_IOCTL_SVM_LOCATION_SYSMEM", "KFD_IOCTL_SVM_LOCATION_UNDEFINED",
    "KFD_IOCTL_SVM_ATTR_PREFERRED_LOC", "KFD_IOCTL_SVM_ATTR_PREFETCH_LOC",
    "KFD_IOCTL_SVM_ATTR_ACCESS", "KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE",
    "KFD_IOCTL_SVM_ATTR_NO_ACCESS", "KFD_IOCTL_SVM_ATTR_SET_FLAGS",
    "KFD_IOCTL_SVM_ATTR_CLR_FLAGS", "KFD_IOCTL_SVM_ATTR_GRANULARITY",
    "KFD_SMI_EVENT_NONE", "KFD_SMI_EVENT_VMFAULT", "KFD_SMI_EVENT_THERMAL_THROTTLE",
    "KFD_SMI_EVENT_GPU_PRE_RESET", "KFD_SMI_EVENT_GPU_POST_RESET",
    "KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK", "KFD_RUNTIME_ENABLE_MODE_TTMP_SAVE_MASK",
    "AMDKFD_COMMAND_START", "AMDKFD_COMMAND_END",
]

# Constants read as the u32 of the struct field they go into (kfd_ioctl_alloc_memory_of_gpu_args
# .flags is __u32), not as the C int the header's expression has.
U32_CONSTANTS = [name for name in CONSTANTS if name.startswith("KFD_IOC_ALLOC_MEM_FLAGS_")]

# Declarations the project supplies when the build header is older than the feature.
# Values are facts of the upstream UAPI header (include/uapi/linux/kfd_ioctl.h, up to 1.17).
C_COMPAT = r"""
#ifndef KFD_IOC_QUEUE_TYPE_SDMA_BY_ENG_ID
#define KFD_IOC_QUEUE_TYPE_SDMA_BY_ENG_ID 0x4
#endif
#ifndef KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP
#define KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP (1 << 4)
#endif
#ifndef KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED
#define KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED (1 << 25)
#endif
#ifndef KFD_IOC_ALLOC_MEM_FLAGS_EXT_COHERENT
#define KFD_IOC_ALLOC_MEM_FLAGS_EXT_COHERENT (1 << 24)
#endif
#ifndef KFD_IOC_ALLOC_MEM_FLAGS_CONTIGUOUS
#define KFD_IOC_ALLOC_MEM_FLAGS_CONTIGUOUS (1 << 23)
#endif
#ifndef AMDKFD_IOC_RUNTIME_ENABLE
struct kfd_ioctl_runtime_enable_args {
    __u64 r_debug;
    __u32 mode_mask;
    __u32 capabilities_mask;
};
#define KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK 1
#define KFD_RUNTIME_ENABLE_MODE_TTMP_SAVE_MASK 2
#define AMDKFD_IOC_RUNTIME_ENABLE AMDKFD_IOWR(0x25, struct kfd_ioctl_runtime_enable_args)
#endif
/* CREATE_QUEUE as of KFD 1.17: the 1.11 struct plus sdma_engine_id and pad (96 bytes). The
 * kernel copies only the size encoded in the request, so both forms are valid requests. */
struct amdgpu_kfd_create_queue_args_v17 {
    __u64 ring_base_address;
    __u64 write_pointer_address;
    __u64 read_pointer_address;
    __u64 doorbell_offset;
    __u32 ring_size;
    __u32 gpu_id;
    __u32 queue_type;
    __u32 queue_percentage;
    __u32 queue_priority;
    __u32 queue_id;
    __u64 eop_buffer_address;
    __u64 eop_buffer_size;
    __u64 ctx_save_restore_address;
    __u32 ctx_save_restore_size;
    __u32 ctl_stack_size;
    __u32 sdma_engine_id;
    __u32 pad;
};
#define AMDGPU_KFD_IOC_CREATE_QUEUE_V17 \
    AMDKFD_IOWR(0x02, struct amdgpu_kfd_create_queue_args_v17)
"""

CDEF_FUNCS = """
#define PROT_NONE ...
#define PROT_READ ...
#define PROT_WRITE ...
#define PROT_EXEC ...
#define MAP_SHARED ...
#define MAP_PRIVATE ...
#define MAP_FIXED ...
#define MAP_ANONYMOUS ...
#define MAP_NORESERVE ...
#define MAP_FIXED_NOREPLACE ...
"""


def _find_header() -> pathlib.Path | None:
    extra = os.environ.get("AMDGPU_KFD_INCLUDE")
    candidates = [pathlib.Path(extra)] if extra else []
    candidates.append(pathlib.Path("/usr/include"))
    for inc in candidates:
        if (inc / HEADER).is_file():
            return inc
    return None


def _cdef_text() -> str:
    lines = [CDEF_STRUCTS, CDEF_FUNCS]
    for name in REQUESTS:
        lines.append(f"static const unsigned long AMDKFD_IOC_{name};")
    lines.append("static const unsigned long AMDGPU_KFD_IOC_CREATE_QUEUE_V17;")
    for name in CONSTANTS:
        lines.append(f"#define {name} ...")
    return "\n".join(lines)


def _u32_redefinitions() -> str:
    """C that makes each of `U32_CONSTANTS` a uint32_t (so cffi reads it as unsigned)."""
    out = []
    for name in U32_CONSTANTS:
        out.append(f"static const uint32_t pytest_amdgpu_u32_{name} = (uint32_t)({name});")
        out.append(f"#undef {name}")
        out.append(f"#define {name} pytest_amdgpu_u32_{name}")
    return "\n".join(out)


def _source_text() -> str:
    return "\n".join([
        "#include <errno.h>",
        "#include <stdint.h>",
        "#include <sys/ioctl.h>",
        "#include <sys/mman.h>",
        "#include <sys/types.h>",
        f"#include <{HEADER}>",
        C_COMPAT,
        _u32_redefinitions(),
    ])


def make_ffibuilder() -> FFI:
    include_dir = _find_header()
    if include_dir is None:
        sys.stderr.write(f"pytest-amdgpu: {INSTALL_HINT}\n")
        raise SystemExit(f"pytest-amdgpu build error: {INSTALL_HINT}")
    builder = FFI()
    builder.cdef(_cdef_text())
    builder.set_source(
        "pytest_amdgpu.kfd._abi",
        _source_text(),
        include_dirs=[str(HERE / "include"), str(include_dir)],
        extra_compile_args=["-O2"],
    )
    return builder


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent.parent), verbose=True)
