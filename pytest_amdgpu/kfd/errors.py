"""errno → typed KFD errors that name the ioctl, the errno and the argument most likely wrong.

The hints follow the order in which the kernel driver checks its arguments (see
../shared/reference/facts-kfd.md §2 and amdkfd/kfd_chardev.c), so the first hint is the first
check that could have failed.
"""

from __future__ import annotations

import errno as _errno
import os

from ..errors import AmdgpuError

ENOTSUPP = 524  # kernel-internal errno returned by CREATE_QUEUE for an unknown queue_type


def errno_name(code: int) -> str:
    if code == ENOTSUPP:
        return "ENOTSUPP"
    return _errno.errorcode.get(code, f"errno {code}")


class KFDError(AmdgpuError, OSError):
    """A KFD ioctl (or mmap on /dev/kfd) failed. Carries ioctl, errno, errno_name, hint, args."""

    def __init__(self, ioctl: str, code: int, hint: str = "", args: dict | None = None) -> None:
        self.ioctl = ioctl
        self.errno_name = errno_name(code)
        self.hint = hint
        self.call_args = dict(args or {})
        text = f"{ioctl} failed with {self.errno_name} ({os.strerror(code) if code != ENOTSUPP else 'Operation not supported'})"
        if self.call_args:
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in self.call_args.items())
            text += f" [{shown}]"
        if hint:
            text += f": {hint}"
        OSError.__init__(self, code, text)

    def __str__(self) -> str:
        return self.args[1]

    def __reduce__(self):
        # the state carries attributes set after construction (n_success, wait_result)
        return (_rebuild, (type(self), self.ioctl, self.errno, self.hint, self.call_args),
                self.__dict__)


def _rebuild(cls, ioctl, code, hint, args):
    return cls(ioctl, code, hint, args)


def _fmt(v) -> str:
    if isinstance(v, int) and v > 0xFFFF:
        return hex(v)
    return repr(v) if not isinstance(v, int) else str(v)


class KFDInvalidArgument(KFDError):
    """EINVAL: an argument value the driver rejects."""


class KFDOutOfMemory(KFDError):
    """ENOMEM: capacity exhausted, or (MAP/UNMAP) an unknown memory handle."""


class KFDBusy(KFDError):
    """EBUSY: the object is in use (a mapped BO freed, a second DRM file, …)."""


class KFDNoDevice(KFDError):
    """ENODEV: the device VM has not been acquired, or no such device."""


class KFDNotSupported(KFDError):
    """ENOTTY / EOPNOTSUPP / ENOTSUPP: the request is unknown to this driver or unsupported."""


class KFDPermissionDenied(KFDError):
    """EPERM / EACCES: not allowed for this process or configuration."""


class KFDBadAddress(KFDError):
    """EFAULT: a user pointer is invalid, or (UPDATE_QUEUE/SET_CU_MASK) the queue is unknown."""


class KFDNoSpace(KFDError):
    """ENOSPC: a per-process or per-device limit (queues, signal events) is reached."""


class KFDNoProcess(KFDError):
    """ESRCH: the process is not bound to the device (CREATE_QUEUE before ACQUIRE_VM)."""


class KFDBadFile(KFDError):
    """EBADF: the file descriptor is not valid for this process."""


class KFDTimedOut(KFDError):
    """ETIME / ETIMEDOUT: the driver timed out talking to the hardware."""


class KFDIOError(KFDError):
    """EIO: the hardware did not respond (hung queue) or the wait was torn down."""


class KFDAddressInUse(KFDError):
    """EADDRINUSE: the range overlaps an SVM range."""


class KFDInterrupted(KFDError):
    """EINTR / ERESTARTSYS: a signal interrupted the call."""


class KFDVersionError(KFDError):
    """The running KFD's version is not one this layer supports, or lacks a needed feature."""


_BY_ERRNO: dict[int, type[KFDError]] = {
    _errno.EINVAL: KFDInvalidArgument,
    _errno.ENOMEM: KFDOutOfMemory,
    _errno.EBUSY: KFDBusy,
    _errno.ENODEV: KFDNoDevice,
    _errno.ENOTTY: KFDNotSupported,
    _errno.EOPNOTSUPP: KFDNotSupported,
    ENOTSUPP: KFDNotSupported,
    _errno.EPERM: KFDPermissionDenied,
    _errno.EACCES: KFDPermissionDenied,
    _errno.EFAULT: KFDBadAddress,
    _errno.ENOSPC: KFDNoSpace,
    _errno.ESRCH: KFDNoProcess,
    _errno.EBADF: KFDBadFile,
    _errno.ETIME: KFDTimedOut,
    _errno.ETIMEDOUT: KFDTimedOut,
    _errno.EIO: KFDIOError,
    _errno.EADDRINUSE: KFDAddressInUse,
    _errno.EINTR: KFDInterrupted,
}

E = _errno
# (ioctl, errno) → what most likely caused it. Ordered as the driver checks (facts-kfd.md §2).
HINTS: dict[tuple[str, int], str] = {
    ("*", E.ENOTTY): "the driver does not know this request (not a KFD file descriptor, or an "
                     "ioctl newer than the running KFD)",
    ("*", E.EBADF): "the /dev/kfd fd belongs to another process (a forked child must open "
                    "/dev/kfd itself)",
    ("ACQUIRE_VM", E.EINVAL): "drm_fd is not an open render node, or gpu_id is not a GPU of "
                              "this process",
    ("ACQUIRE_VM", E.EBUSY): "the device VM was already acquired through a different DRM file",
    ("ALLOC_MEMORY_OF_GPU", E.EINVAL): "size is 0, gpu_id is unknown, no domain flag (VRAM/GTT/"
                                       "USERPTR/DOORBELL/MMIO_REMAP) is set, USERPTR has no host "
                                       "address in mmap_offset, or DOORBELL/MMIO_REMAP size is "
                                       "not the doorbell slice / one page",
    ("ALLOC_MEMORY_OF_GPU", E.ENODEV): "call ACQUIRE_VM for this gpu_id first",
    ("ALLOC_MEMORY_OF_GPU", E.ENOMEM): "not enough VRAM/system memory left for this size (see "
                                       "AVAILABLE_MEMORY)",
    ("ALLOC_MEMORY_OF_GPU", E.EADDRINUSE): "the range overlaps a registered SVM range",
    ("FREE_MEMORY_OF_GPU", E.EINVAL): "handle is unknown (already freed?)",
    ("FREE_MEMORY_OF_GPU", E.EBUSY): "the buffer is still mapped to a GPU: UNMAP it first",
    ("FREE_MEMORY_OF_GPU", E.EPERM): "the handle is the event page, which lives as long as the "
                                     "process",
    ("MAP_MEMORY_TO_GPU", E.EINVAL): "n_devices is 0, n_success > n_devices, a gpu_id in "
                                     "device_ids is unknown, or the VA range is unaligned or "
                                     "overlaps another mapping",
    ("MAP_MEMORY_TO_GPU", E.ENOMEM): "handle is unknown (freed?)",
    ("MAP_MEMORY_TO_GPU", E.ENODEV): "call ACQUIRE_VM for every device in device_ids first",
    ("UNMAP_MEMORY_FROM_GPU", E.EINVAL): "n_devices is 0, a gpu_id is unknown, or the buffer is "
                                         "not mapped on that GPU",
    ("UNMAP_MEMORY_FROM_GPU", E.ENOMEM): "handle is unknown (freed?)",
    ("CREATE_QUEUE", E.EINVAL): "queue_percentage > 100, queue_priority > 15, ring_size not a "
                                "power of two, gpu_id unknown, or a ring/rptr/wptr/EOP/ctx-save "
                                "buffer that is not a GPU-mapped BO of the exact size the target "
                                "needs (ctl_stack_size, ctx_save_restore_size, eop_buffer_size)",
    ("CREATE_QUEUE", E.EFAULT): "ring_base_address, read/write pointer, EOP or ctx-save address "
                                "is not a user address",
    ("CREATE_QUEUE", ENOTSUPP): "queue_type is not COMPUTE, SDMA, COMPUTE_AQL, SDMA_XGMI or "
                                "SDMA_BY_ENG_ID",
    ("CREATE_QUEUE", E.ESRCH): "call ACQUIRE_VM for this gpu_id first",
    ("CREATE_QUEUE", E.ENOSPC): "the device's queue limit for this process is reached",
    ("CREATE_QUEUE", E.ENOMEM): "no free queue id or SDMA engine slot",
    ("DESTROY_QUEUE", E.EINVAL): "queue_id is unknown (already destroyed?)",
    ("DESTROY_QUEUE", E.ETIME): "the hardware did not unmap the hung queue in time; it was "
                                "torn down anyway",
    ("UPDATE_QUEUE", E.EINVAL): "queue_percentage > 100, queue_priority > 15 or ring_size not "
                                "a power of two",
    ("UPDATE_QUEUE", E.EFAULT): "queue_id is unknown, or the new ring is not a GPU-mapped BO "
                                "of ring_size bytes",
    ("SET_CU_MASK", E.EINVAL): "num_cu_mask must be a non-zero multiple of 32 (and on GFX10-11 "
                               "CUs are enabled in pairs)",
    ("SET_CU_MASK", E.EFAULT): "queue_id is unknown or cu_mask_ptr is not readable",
    ("CREATE_EVENT", E.EINVAL): "event_page_offset is not a GTT memory handle of this process, "
                                "or an event page is already set",
    ("CREATE_EVENT", E.ENOSPC): "all signal event slots are in use",
    ("DESTROY_EVENT", E.EINVAL): "event_id is unknown",
    ("SET_EVENT", E.EINVAL): "event_id is unknown or not a signal event",
    ("RESET_EVENT", E.EINVAL): "event_id is unknown or not a signal event",
    ("WAIT_EVENTS", E.EINVAL): "an event_id in events_ptr is unknown",
    ("WAIT_EVENTS", E.EIO): "an event was destroyed while this wait was pending",
    ("WAIT_EVENTS", E.EFAULT): "events_ptr is not a readable array of num_events entries",
    ("AVAILABLE_MEMORY", E.EINVAL): "gpu_id is unknown",
    ("SET_MEMORY_POLICY", E.EINVAL): "a policy is not COHERENT (0) or NONCOHERENT (1), or "
                                     "gpu_id is unknown",
    ("SET_TRAP_HANDLER", E.EINVAL): "gpu_id is unknown",
    ("SET_SCRATCH_BACKING_VA", E.EINVAL): "gpu_id is unknown",
    ("ALLOC_QUEUE_GWS", E.EINVAL): "queue_id is unknown",
    ("ALLOC_QUEUE_GWS", E.ENODEV): "the device has no GWS or runs without HWS",
    ("SET_XNACK_MODE", E.EBUSY): "XNACK mode cannot change while the process has queues",
    ("SET_XNACK_MODE", E.EPERM): "the device does not support changing XNACK mode",
    ("SVM", E.EINVAL): "start_addr and size must be non-zero and page aligned",
    ("SMI_EVENTS", E.EINVAL): "gpuid is unknown",
    ("RUNTIME_ENABLE", E.EBUSY): "the runtime is already enabled for this KFD process (every "
                                 "/dev/kfd fd of an OS process shares one KFD process); disable "
                                 "it first (mode_mask 0)",
    ("RUNTIME_ENABLE", E.EEXIST): "the process already has queues: enable the runtime before "
                                  "creating the first one",
    ("mmap", E.EINVAL): "the length does not match the object (doorbell slice, event page, one "
                        "MMIO page) or the offset is not one KFD handed out",
    ("mmap", E.ENODEV): "the gpu_id encoded in the offset is unknown",
}


def hint_for(ioctl: str, code: int) -> str:
    return HINTS.get((ioctl, code)) or HINTS.get(("*", code), "")


def kfd_error(ioctl: str, code: int, args: dict | None = None, hint: str | None = None) -> KFDError:
    """Build the typed error for `code` returned by `ioctl`."""
    cls = _BY_ERRNO.get(code, KFDError)
    return cls(ioctl, code, hint_for(ioctl, code) if hint is None else hint, args)
