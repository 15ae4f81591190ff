"""The KFD ABI as compiled from <linux/kfd_ioctl.h>: structs, constants and the ioctl table.

`ffi` and `lib` come from the cffi API-mode module built at install time, so every size, offset
and request number here is the C compiler's. The table below adds what Python needs on top:
which struct each request carries, which way it is copied, and from which KFD minor version it
exists.
"""

from __future__ import annotations

from dataclasses import dataclass

try:
    from ._abi import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "pytest_amdgpu.kfd._abi is not built. It is compiled against <linux/kfd_ioctl.h> when "
        "the package is installed: run 'pip install -e .' in the checkout (with a C compiler and "
        "the kernel headers, e.g. 'apt-get install gcc linux-libc-dev')."
    ) from exc

__all__ = [
    "ffi", "lib", "IoctlSpec", "IOCTLS", "BY_NR", "ioc_dir", "ioc_size", "ioc_nr", "ioc_type",
    "IOC_WRITE", "IOC_READ", "struct_to_dict", "address_of", "HEADER_MINOR",
]

# Linux generic _IOC layout (include/uapi/asm-generic/ioctl.h): nr [7:0], type [15:8],
# size [29:16], dir [31:30]; dir bit 0 = _IOC_WRITE (user → kernel), bit 1 = _IOC_READ.
IOC_WRITE = 1
IOC_READ = 2


def ioc_nr(request: int) -> int:
    return request & 0xFF


def ioc_type(request: int) -> int:
    return (request >> 8) & 0xFF


def ioc_size(request: int) -> int:
    return (request >> 16) & 0x3FFF


def ioc_dir(request: int) -> int:
    return (request >> 30) & 0x3


@dataclass(frozen=True)
class IoctlSpec:
    """One KFD ioctl: its name, request number, argument struct and first KFD version."""

    name: str
    request: int
    struct: str
    min_version: tuple[int, int] = (1, 0)

    @property
    def nr(self) -> int:
        return ioc_nr(self.request)

    @property
    def size(self) -> int:
        return ioc_size(self.request)

    @property
    def copies_in(self) -> bool:
        return bool(ioc_dir(self.request) & IOC_WRITE)

    @property
    def copies_out(self) -> bool:
        return bool(ioc_dir(self.request) & IOC_READ)


HEADER_MINOR: int = lib.KFD_IOCTL_MINOR_VERSION


def _spec(name: str, struct: str, min_version: tuple[int, int] = (1, 0)) -> IoctlSpec:
    return IoctlSpec(name, int(getattr(lib, f"AMDKFD_IOC_{name}")), struct, min_version)


# First KFD version of each ioctl: the UAPI header's version history (kfd_ioctl.h comments).
_SPECS = [
    _spec("GET_VERSION", "struct kfd_ioctl_get_version_args"),
    _spec("CREATE_QUEUE", "struct kfd_ioctl_create_queue_args"),
    _spec("DESTROY_QUEUE", "struct kfd_ioctl_destroy_queue_args"),
    _spec("SET_MEMORY_POLICY", "struct kfd_ioctl_set_memory_policy_args"),
    _spec("GET_CLOCK_COUNTERS", "struct kfd_ioctl_get_clock_counters_args"),
    _spec("GET_PROCESS_APERTURES", "struct kfd_ioctl_get_process_apertures_args"),
    _spec("UPDATE_QUEUE", "struct kfd_ioctl_update_queue_args"),
    _spec("CREATE_EVENT", "struct kfd_ioctl_create_event_args"),
    _spec("DESTROY_EVENT", "struct kfd_ioctl_destroy_event_args"),
    _spec("SET_EVENT", "struct kfd_ioctl_set_event_args"),
    _spec("RESET_EVENT", "struct kfd_ioctl_reset_event_args"),
    _spec("WAIT_EVENTS", "struct kfd_ioctl_wait_events_args"),
    _spec("SET_SCRATCH_BACKING_VA", "struct kfd_ioctl_set_scratch_backing_va_args"),
    _spec("GET_TILE_CONFIG", "struct kfd_ioctl_get_tile_config_args"),
    _spec("SET_TRAP_HANDLER", "struct kfd_ioctl_set_trap_handler_args"),
    _spec("GET_PROCESS_APERTURES_NEW", "struct kfd_ioctl_get_process_apertures_new_args"),
    _spec("ACQUIRE_VM", "struct kfd_ioctl_acquire_vm_args"),
    _spec("ALLOC_MEMORY_OF_GPU", "struct kfd_ioctl_alloc_memory_of_gpu_args"),
    _spec("FREE_MEMORY_OF_GPU", "struct kfd_ioctl_free_memory_of_gpu_args"),
    _spec("MAP_MEMORY_TO_GPU", "struct kfd_ioctl_map_memory_to_gpu_args"),
    _spec("UNMAP_MEMORY_FROM_GPU", "struct kfd_ioctl_unmap_memory_from_gpu_args"),
    _spec("SET_CU_MASK", "struct kfd_ioctl_set_cu_mask_args"),
    _spec("GET_QUEUE_WAVE_STATE", "struct kfd_ioctl_get_queue_wave_state_args"),
    _spec("ALLOC_QUEUE_GWS", "struct kfd_ioctl_alloc_queue_gws_args"),
    _spec("SMI_EVENTS", "struct kfd_ioctl_smi_events_args", (1, 3)),
    _spec("SVM", "struct kfd_ioctl_svm_args", (1, 5)),
    _spec("SET_XNACK_MODE", "struct kfd_ioctl_set_xnack_mode_args", (1, 5)),
    _spec("AVAILABLE_MEMORY", "struct kfd_ioctl_get_available_memory_args", (1, 9)),
    # RUNTIME_ENABLE came with the debugger API, 1.13 (Jonathan Kim's series, patch 20/33 adds
    # the ioctl, 33/33 "bump kfd ioctl minor version for debug api availability" → 13).
    _spec("RUNTIME_ENABLE", "struct kfd_ioctl_runtime_enable_args", (1, 13)),
]

# CREATE_QUEUE as of 1.17 (with sdma_engine_id); same nr, larger size.
CREATE_QUEUE_V17 = IoctlSpec(
    "CREATE_QUEUE", int(lib.AMDGPU_KFD_IOC_CREATE_QUEUE_V17),
    "struct amdgpu_kfd_create_queue_args_v17", (1, 17),
)

IOCTLS: dict[str, IoctlSpec] = {s.name: s for s in _SPECS}
BY_NR: dict[int, IoctlSpec] = {s.nr: s for s in _SPECS}


def address_of(cdata) -> int:
    """Integer address of a cffi pointer or array, for the syscall layer."""
    return int(ffi.cast("uintptr_t", cdata))


def struct_to_dict(ctype: str, cdata) -> dict:
    """Fields of a struct (nested structs and unions flattened one level) as Python values."""
    out: dict = {}
    t = ffi.typeof(ctype) if isinstance(ctype, str) else ctype
    if t.kind == "pointer":
        t = t.item
    for fname, field in t.fields:
        value = getattr(cdata, fname) if fname else cdata
        ft = field.type
        if ft.kind == "struct" or ft.kind == "union":
            out[fname or "_"] = struct_to_dict(ft, value)
        elif ft.kind == "array":
            out[fname] = [
                struct_to_dict(ft.item, v) if ft.item.kind in ("struct", "union") else v
                for v in value
            ]
        else:
            out[fname] = int(value)
    return out
