"""Typed wrappers of the KFD ioctls: one method per ioctl, keyword arguments, frozen results.

`KFD` talks only to a Port (real syscalls or the simulator). Argument structs are cffi structs
compiled from <linux/kfd_ioctl.h> (`abi`), so layouts and request numbers are the C compiler's.
Failures raise the typed errors of `kfd.errors`, naming the ioctl, the errno, the values the
caller passed and the likely wrong argument.

The running driver's version is read at open: major version 1 is required, and ioctls newer
than the driver (RUNTIME_ENABLE 1.13, AVAILABLE_MEMORY 1.9, SVM and SET_XNACK_MODE 1.5,
SMI_EVENTS 1.3) are refused with `KFDVersionError` before any syscall. CREATE_QUEUE sends the
96-byte 1.17 struct (with ``sdma_engine_id``) to a 1.17+ driver and the header's 88-byte struct
otherwise; the driver copies exactly the size encoded in the request (facts-kfd.md §2.0).

Hot paths use `KFD.prepared`: a reused struct and a C-level `functools.partial` of
``port.ioctl_checked``, so a successful call runs no Python code at all.
"""

from __future__ import annotations

import errno as _errno
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..errors import UsageError
from .abi import CREATE_QUEUE_V17, IOCTLS, IoctlSpec, ffi, lib, struct_to_dict
from .errors import KFDError, KFDVersionError, hint_for, kfd_error
from .port import KFD_PATH, Port

__all__ = [
    "KFD", "PreparedIoctl", "KFDVersion", "Apertures", "Allocation", "QueueInfo", "WaveState",
    "EventInfo", "EventData", "MemoryExceptionData", "HWExceptionData", "WaitResult",
    "ClockCounters", "SVMAttribute", "SUPPORTED_MAJOR",
]

SUPPORTED_MAJOR = 1
_KFD_1_0 = (SUPPORTED_MAJOR, 0)
WAIT_INFINITE = 0xFFFFFFFF  # KFD_EVENT_TIMEOUT_INFINITE (kfd_events.h)

# -- result types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KFDVersion:
    """GET_VERSION: the driver's ioctl interface version."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class Apertures:
    """One GPU's entry of GET_PROCESS_APERTURES_NEW (struct kfd_process_device_apertures)."""

    gpu_id: int
    lds_base: int
    lds_limit: int
    scratch_base: int
    scratch_limit: int
    gpuvm_base: int
    gpuvm_limit: int


@dataclass(frozen=True)
class Allocation:
    """ALLOC_MEMORY_OF_GPU: the handle and where to mmap the buffer object."""

    handle: int
    mmap_offset: int   # DRM mmap offset on the render node (on /dev/kfd for MMIO_REMAP)
    va_addr: int
    size: int
    flags: int
    gpu_id: int


@dataclass(frozen=True)
class QueueInfo:
    """CREATE_QUEUE: the queue id, its doorbell mmap offset and the ring size the driver kept
    (newer drivers raise a ring_size below 1024 to 1024)."""

    queue_id: int
    doorbell_offset: int
    ring_size: int


@dataclass(frozen=True)
class WaveState:
    """GET_QUEUE_WAVE_STATE: bytes used in the control stack and the save area."""

    ctl_stack_used_size: int
    save_area_used_size: int


@dataclass(frozen=True)
class EventInfo:
    """CREATE_EVENT outputs. For signal events ``slot_index == event_id`` and ``page_offset``
    is the mmap offset of the event page on /dev/kfd."""

    event_id: int
    trigger_data: int
    page_offset: int
    slot_index: int
    event_type: int
    auto_reset: bool


@dataclass(frozen=True)
class MemoryExceptionData:
    """struct kfd_hsa_memory_exception_data: a GPU VM fault (or an SRAM-ECC report).

    Fields map NotPresent, ReadOnly, NoExecute, imprecise and ErrorType of the header.
    """

    va: int
    gpu_id: int
    not_present: bool
    read_only: bool
    no_execute: bool
    imprecise: bool
    error_type: int   # 0 none, 1 SRAM ECC, 2 poison, 3 GPU hang (kfd_ioctl.h)

    @property
    def reason(self) -> str:
        """The fault kind in the words GPUFaultError uses."""
        if self.read_only:
            return "read_only"
        if self.no_execute:
            return "no_execute"
        if self.not_present:
            return "not_present"
        return "ecc" if self.error_type else "unknown"


@dataclass(frozen=True)
class HWExceptionData:
    """struct kfd_hsa_hw_exception_data: a GPU reset / hang report."""

    reset_type: int    # KFD_HW_EXCEPTION_WHOLE_GPU_RESET / PER_ENGINE_RESET
    reset_cause: int   # KFD_HW_EXCEPTION_GPU_HANG / ECC
    memory_lost: bool
    gpu_id: int


@dataclass(frozen=True)
class EventData:
    """One entry of WAIT_EVENTS after the wait (struct kfd_event_data).

    The union is decoded by the event's type when this KFD object created the event:
    MEMORY → ``memory``, HW_EXCEPTION → ``hw_exception``, SIGNAL on KFD ≥ 1.14 →
    ``last_event_age``. For an event of unknown type both exception views are given.
    """

    event_id: int
    event_type: int | None
    memory: MemoryExceptionData | None
    hw_exception: HWExceptionData | None
    last_event_age: int | None
    ext: int


@dataclass(frozen=True)
class WaitResult:
    """WAIT_EVENTS: "complete" or "timeout", and the per-event data (filled on complete)."""

    status: str
    data: tuple[EventData, ...]

    @property
    def complete(self) -> bool:
        return self.status == "complete"


@dataclass(frozen=True)
class ClockCounters:
    """GET_CLOCK_COUNTERS: GPU counter, CLOCK_MONOTONIC_RAW and CLOCK_BOOTTIME in ns."""

    gpu: int
    cpu: int
    system: int
    system_freq: int


@dataclass(frozen=True)
class SVMAttribute:
    """One (type, value) pair of the SVM ioctl (KFD_IOCTL_SVM_ATTR_*)."""

    type: int
    value: int


# -- cached ctypes and request numbers --------------------------------------------------------

_new = ffi.new
_cast = ffi.cast
_UINTPTR = ffi.typeof("uintptr_t")
_U64P = ffi.typeof("uint64_t *")

# request number -> pointer ctype of its argument struct (the 1.17 CREATE_QUEUE included)
_CTYPE = {spec.request: ffi.typeof(spec.struct + " *")
          for spec in (*IOCTLS.values(), CREATE_QUEUE_V17)}
_APERTURE_ARRAY = ffi.typeof("struct kfd_process_device_apertures[]")
_EVENT_DATA_ARRAY = ffi.typeof("struct kfd_event_data[]")
_U32_ARRAY = ffi.typeof("uint32_t[]")
_CHAR_ARRAY = ffi.typeof("char[]")
_SVM_ATTR_P = ffi.typeof("struct kfd_ioctl_svm_attribute *")
_SVM_ARGS_SIZE = ffi.sizeof("struct kfd_ioctl_svm_args")
_SVM_ATTR_SIZE = ffi.sizeof("struct kfd_ioctl_svm_attribute")
_IOC_SIZESHIFT = 16         # include/uapi/asm-generic/ioctl.h: size in bits [29:16]
_IOC_SIZE_MAX = (1 << 14) - 1

_QT_SDMA_BY_ENG_ID = int(lib.KFD_IOC_QUEUE_TYPE_SDMA_BY_ENG_ID)
_EV_SIGNAL = int(lib.KFD_IOC_EVENT_SIGNAL)
_EV_MEMORY = int(lib.KFD_IOC_EVENT_MEMORY)
_EV_HW_EXCEPTION = int(lib.KFD_IOC_EVENT_HW_EXCEPTION)
_WAIT_COMPLETE = int(lib.KFD_IOC_WAIT_RESULT_COMPLETE)
_WAIT_TIMEOUT = int(lib.KFD_IOC_WAIT_RESULT_TIMEOUT)
_PROT_RW = int(lib.PROT_READ | lib.PROT_WRITE)
_MAP_SHARED = int(lib.MAP_SHARED)


def _addr(cdata) -> int:
    return int(_cast(_UINTPTR, cdata))


class _Slot:
    """A reusable argument struct with its address; recycled through a per-type free list.

    ``ffi.new`` plus an address cast cost ~1 µs per call; popping a slot and zeroing it from a
    pre-made zero buffer costs a fifth of that. A slot belongs to one caller between `_take`
    and ``give()`` (list pop/append are atomic), so concurrent threads never share one.
    """

    __slots__ = ("addr", "clear", "give", "struct")

    def __init__(self, ctype) -> None:
        self.struct = _new(ctype)
        self.addr = _addr(self.struct)
        buf = ffi.buffer(self.struct)
        self.clear = functools.partial(buf.__setitem__, slice(None), bytes(len(buf)))
        self.give = functools.partial(_POOLS.setdefault(ctype, []).append, self)


_POOLS: dict = {}


def _take(ctype) -> _Slot:
    try:
        slot = _POOLS[ctype].pop()
    except (KeyError, IndexError):
        return _Slot(ctype)
    slot.clear()
    return slot


def _bad_field(ioctl: str, ctype, fields: dict, exc: Exception) -> UsageError:
    """Find which field value did not fit its C type and say so (slow path only)."""
    probe = _new(ctype)
    for name, value in fields.items():
        try:
            setattr(probe, name, value)
        except (OverflowError, TypeError) as err:
            ftype = dict(ctype.item.fields)[name].type.cname
            return UsageError(f"{ioctl}: {name}={value!r} does not fit the field's C type "
                              f"{ftype} ({err})")
    return UsageError(f"{ioctl}: bad argument: {exc}")


def _fill(ioctl: str, ctype, fields: dict) -> _Slot:
    """A pooled, zeroed struct of `ctype` with `fields` set. A value that does not fit its C
    field is a UsageError naming the ioctl and the field; nothing is sent then."""
    slot = _take(ctype)
    try:
        slot.struct[0] = fields   # one C-level initialisation of the named fields
    except (OverflowError, TypeError) as exc:
        slot.give()
        raise _bad_field(ioctl, ctype, fields, exc) from None
    return slot


def _num_of_nodes(struct) -> int:
    return int(struct.num_of_nodes)


def _check_u32_list(ioctl: str, name: str, values: Sequence[int]) -> None:
    for v in values:
        if not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
            raise UsageError(f"{ioctl}: {name} must hold unsigned 32-bit integers, got {v!r}")


def _memory_data(m) -> MemoryExceptionData:
    f = m.failure
    return MemoryExceptionData(int(m.va), int(m.gpu_id), bool(f.NotPresent), bool(f.ReadOnly),
                               bool(f.NoExecute), bool(f.imprecise), int(m.ErrorType))


def _hw_data(h) -> HWExceptionData:
    return HWExceptionData(int(h.reset_type), int(h.reset_cause), bool(h.memory_lost),
                           int(h.gpu_id))


# -- results of prepared calls ---------------------------------------------------------------

_RESULTS: dict[str, Callable] = {
    "GET_VERSION": lambda s: KFDVersion(int(s.major_version), int(s.minor_version)),
    "GET_CLOCK_COUNTERS": lambda s: ClockCounters(
        int(s.gpu_clock_counter), int(s.cpu_clock_counter), int(s.system_clock_counter),
        int(s.system_clock_freq)),
    "AVAILABLE_MEMORY": lambda s: int(s.available),
    "CREATE_QUEUE": lambda s: QueueInfo(int(s.queue_id), int(s.doorbell_offset),
                                        int(s.ring_size)),
    "CREATE_EVENT": lambda s: EventInfo(int(s.event_id), int(s.event_trigger_data),
                                        int(s.event_page_offset), int(s.event_slot_index),
                                        int(s.event_type), bool(s.auto_reset)),
    "ALLOC_MEMORY_OF_GPU": lambda s: Allocation(int(s.handle), int(s.mmap_offset),
                                                int(s.va_addr), int(s.size), int(s.flags),
                                                int(s.gpu_id)),
    "MAP_MEMORY_TO_GPU": lambda s: int(s.n_success),
    "UNMAP_MEMORY_FROM_GPU": lambda s: int(s.n_success),
    "GET_QUEUE_WAVE_STATE": lambda s: WaveState(int(s.ctl_stack_used_size),
                                                int(s.save_area_used_size)),
    "ALLOC_QUEUE_GWS": lambda s: int(s.first_gws),
    "SMI_EVENTS": lambda s: int(s.anon_fd),
    "SET_XNACK_MODE": lambda s: bool(s.xnack_enabled > 0),
    "WAIT_EVENTS": lambda s: {_WAIT_COMPLETE: "complete", _WAIT_TIMEOUT: "timeout"}.get(
        int(s.wait_result), "fail"),
}


class PreparedIoctl(functools.partial):
    """A reusable ioctl: its argument struct is allocated once and its address bound.

    Calling it (or ``.call``) is ``port.ioctl_checked(fd, request, addr, on_error)`` through a
    C-level ``functools.partial``: on LinuxPort a successful call executes no Python code.
    Change inputs through ``.args`` (the cffi struct) between calls; ``.result()`` reads the
    typed result. On failure ``on_error(errno)`` runs; the default raises the typed KFDError
    with the struct's field values. The port's ``ioctl_checked`` is bound at creation: prepare
    again after ``port.start_recording()`` to record these calls.
    """

    def __new__(cls, port: Port, fd: int, spec: IoctlSpec, struct, ctype,
                on_error: Callable[[int], object] | None, keepalive: tuple = ()):
        addr = _addr(struct)
        handler = on_error if on_error is not None else _raiser(spec.name, ctype, struct)
        self = super().__new__(cls, port.ioctl_checked, fd, spec.request, addr, handler)
        self.name = spec.name
        self.spec = spec
        self.request = spec.request
        self.address = addr
        self.ctype = ctype
        self._struct = struct
        self._keepalive = keepalive
        self.call = functools.partial(port.ioctl_checked, fd, spec.request, addr, handler)
        return self

    def __init__(self, *args, **kwargs) -> None:
        pass

    @property
    def args(self):  # the struct, not partial's positional arguments
        return self._struct

    def fields(self) -> dict:
        """The struct's fields as Python values."""
        return struct_to_dict(self.ctype, self._struct)

    def result(self):
        """The typed result of the last call (the struct as a dict where no type exists)."""
        build = _RESULTS.get(self.name)
        if build is None:
            return self.fields()
        return build(self._struct)

    def __repr__(self) -> str:
        return (f"PreparedIoctl({self.name}, request={self.request:#x}, "
                f"fd={self.call.args[0]}, struct={self.spec.struct})")

    def __reduce__(self):
        raise TypeError("a PreparedIoctl holds a process-local struct address; it cannot be "
                        "pickled")


def _raiser(name: str, ctype, struct) -> Callable[[int], None]:
    def on_error(code: int) -> None:
        raise kfd_error(name, code, struct_to_dict(ctype, struct))

    return on_error


# -- the KFD ----------------------------------------------------------------------------------

class KFD:
    """An open /dev/kfd (through a Port) with one typed method per compute-path ioctl."""

    port: Port
    fd: int
    version: tuple[int, int]

    def __init__(self, port: Port, path: str = KFD_PATH) -> None:
        self.port = port
        self.path = path
        self._owns_fd = True
        self._event_types: dict[int, int] = {}
        self.fd = -1
        try:
            self.fd = port.open(path)
        except OSError as exc:
            code = exc.errno or _errno.EIO
            raise kfd_error("open", code, {"path": path}, hint=_open_hint(path, code)) from exc
        try:
            self.version = (0, 0)
            v = self.get_version()
            if v.major != SUPPORTED_MAJOR:
                raise KFDVersionError(
                    "GET_VERSION", _errno.EPROTONOSUPPORT,
                    f"{path} reports KFD ioctl version {v}; this layer speaks major version "
                    f"{SUPPORTED_MAJOR} only (the ABI of a different major version is not "
                    "compatible)",
                    {"major_version": v.major, "minor_version": v.minor})
            self.version = (v.major, v.minor)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_fd(cls, port: Port, fd: int, version: tuple[int, int] = (1, 17), *,
                owns_fd: bool = False, path: str = KFD_PATH) -> KFD:
        """Wrap an already open fd without GET_VERSION, assuming `version`.

        ``close()`` closes the fd only if `owns_fd`.
        """
        self = cls.__new__(cls)
        self.port = port
        self.path = path
        self.fd = fd
        self.version = (int(version[0]), int(version[1]))
        self._owns_fd = owns_fd
        self._event_types = {}
        return self

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the fd (idempotent). KFD keeps the process's objects until it exits (§1.7)."""
        fd, self.fd = self.fd, -1
        if fd >= 0 and self._owns_fd:
            self.port.close(fd)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def __enter__(self) -> KFD:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"KFD(fd={self.fd}, version={self.version[0]}.{self.version[1]}, "
                f"port={type(self.port).__name__})")

    # -- version gating ---------------------------------------------------------------------
    def has(self, minor: int) -> bool:
        """Whether the running KFD is 1.`minor` or newer."""
        return self.version[0] == SUPPORTED_MAJOR and self.version[1] >= minor

    def _version_error(self, ioctl: str, needed: tuple[int, int], what: str = "") -> KFDError:
        have = f"{self.version[0]}.{self.version[1]}"
        need = f"{needed[0]}.{needed[1]}"
        subject = what or ioctl
        return KFDVersionError(
            ioctl, _errno.ENOTTY,
            f"not sent: the running KFD reports ioctl version {have} and {subject} exists from "
            f"KFD {need} on; use a newer kernel (or amdgpu-dkms), or check kfd.has({needed[1]}) "
            "first",
            {"kfd_version": have, "needs": need})

    def _require(self, spec: IoctlSpec) -> None:
        # ioctls of KFD 1.0 (GET_VERSION among them) are sent before the version is known
        if spec.min_version > _KFD_1_0 and self.version < spec.min_version:
            raise self._version_error(spec.name, spec.min_version)

    # -- the one call path of the wrappers --------------------------------------------------
    def _send(self, name: str, fields: dict, *, spec: IoctlSpec | None = None,
              passed: dict | None = None, result: Callable | None = None):
        """Send ioctl `name` with `fields` (struct field names) set in a zeroed struct.

        Returns ``result(struct)`` (default: the ioctl's typed result, or None). A driver too
        old for the request is refused before the syscall; a failure raises the typed KFDError
        naming `passed` (default `fields`). `spec` selects another struct form of the request.
        """
        spec = spec or IOCTLS[name]
        self._require(spec)
        slot = _fill(name, _CTYPE[spec.request], fields)
        try:
            err = self.port.ioctl(self.fd, spec.request, slot.addr)
            if err:
                raise kfd_error(name, err, fields if passed is None else passed)
            build = result or _RESULTS.get(name)
            return None if build is None else build(slot.struct)
        finally:
            slot.give()

    def get_version(self) -> KFDVersion:
        return self._send("GET_VERSION", {})

    def acquire_vm(self, *, drm_fd: int, gpu_id: int) -> None:
        """Bind the GPU VM of the render node `drm_fd` to this process for `gpu_id`."""
        self._send("ACQUIRE_VM", {"drm_fd": drm_fd, "gpu_id": gpu_id})

    def get_process_apertures(self) -> list[Apertures]:
        """GET_PROCESS_APERTURES_NEW: ask for the count (num_of_nodes = 0), then the entries.

        The driver fills at most the count asked for (a GPU that appeared in between is left
        out), so the entries read are the ones it reports filled.
        """
        count = self._send("GET_PROCESS_APERTURES_NEW", {"num_of_nodes": 0},
                           result=_num_of_nodes)
        if count == 0:
            return []
        entries = _new(_APERTURE_ARRAY, count)
        filled = self._send("GET_PROCESS_APERTURES_NEW",
                            {"kfd_process_device_apertures_ptr": _addr(entries),
                             "num_of_nodes": count},
                            passed={"num_of_nodes": count}, result=_num_of_nodes)
        return [Apertures(int(e.gpu_id), int(e.lds_base), int(e.lds_limit),
                          int(e.scratch_base), int(e.scratch_limit), int(e.gpuvm_base),
                          int(e.gpuvm_limit))
                for e in (entries[i] for i in range(min(filled, count)))]

    # -- memory -----------------------------------------------------------------------------
    def alloc_memory(self, *, gpu_id: int, size: int, flags: int, va_addr: int = 0,
                     mmap_offset: int = 0) -> Allocation:
        """ALLOC_MEMORY_OF_GPU. For USERPTR, `mmap_offset` is the host address.

        `flags` is the __u32 of KFD_IOC_ALLOC_MEM_FLAGS_* bits (``abi.lib`` has them unsigned).
        A negative value, the C int reading of WRITABLE ``(1 << 31)``, is taken as its u32 bits.
        """
        if -(1 << 31) <= flags < 0:
            flags &= 0xFFFFFFFF
        return self._send("ALLOC_MEMORY_OF_GPU", {
            "gpu_id": gpu_id, "size": size, "flags": flags, "va_addr": va_addr,
            "mmap_offset": mmap_offset})

    def free_memory(self, *, handle: int) -> None:
        self._send("FREE_MEMORY_OF_GPU", {"handle": handle})

    def _map_unmap(self, name: str, handle: int, gpu_ids: Sequence[int], n_success: int) -> int:
        ids = list(gpu_ids)
        _check_u32_list(name, "gpu_ids", ids)
        array = _new(_U32_ARRAY, ids) if ids else ffi.NULL
        slot = _fill(name, _CTYPE[IOCTLS[name].request], {
            "handle": handle, "device_ids_array_ptr": _addr(array), "n_devices": len(ids),
            "n_success": n_success})
        try:
            err = self.port.ioctl(self.fd, IOCTLS[name].request, slot.addr)
            # the driver copies n_success back on failure too (facts-kfd.md §2.0)
            done = int(slot.struct.n_success)
        finally:
            slot.give()
        if not err:
            return done
        hint = hint_for(name, err)
        if len(ids) > 1 or done:
            hint = (hint + "; " if hint else "") + (
                f"{done} of {len(ids)} devices succeeded before the failure (the driver "
                f"reports n_success={done}; pass n_success={done} to resume)")
        passed = {"handle": handle, "gpu_ids": ids}
        if n_success:
            passed["n_success"] = n_success
        exc = kfd_error(name, err, passed, hint=hint)
        exc.n_success = done
        raise exc

    def map_memory(self, *, handle: int, gpu_ids: Sequence[int], n_success: int = 0) -> int:
        """MAP_MEMORY_TO_GPU on every gpu_id; returns n_success (== len(gpu_ids)).

        On failure the raised error has ``.n_success``: how many devices from the start of
        `gpu_ids` were mapped (the driver copies it back even on failure).
        """
        return self._map_unmap("MAP_MEMORY_TO_GPU", handle, gpu_ids, n_success)

    def unmap_memory(self, *, handle: int, gpu_ids: Sequence[int], n_success: int = 0) -> int:
        """UNMAP_MEMORY_FROM_GPU; same n_success convention as `map_memory`."""
        return self._map_unmap("UNMAP_MEMORY_FROM_GPU", handle, gpu_ids, n_success)

    def available_memory(self, *, gpu_id: int) -> int:
        """AVAILABLE_MEMORY (KFD ≥ 1.9): VRAM bytes still allocatable on `gpu_id`."""
        return self._send("AVAILABLE_MEMORY", {"gpu_id": gpu_id})

    # -- queues -----------------------------------------------------------------------------
    def create_queue(self, *, gpu_id: int, queue_type: int, ring_base: int, ring_size: int,
                     write_pointer: int, read_pointer: int, percentage: int = 100,
                     priority: int = 7, eop_buffer_address: int = 0, eop_buffer_size: int = 0,
                     ctx_save_restore_address: int = 0, ctx_save_restore_size: int = 0,
                     ctl_stack_size: int = 0, sdma_engine_id: int | None = None) -> QueueInfo:
        """CREATE_QUEUE. `queue_type` is KFD_IOC_QUEUE_TYPE_*; `ring_size` in bytes.

        `sdma_engine_id` (and queue type SDMA_BY_ENG_ID) need KFD ≥ 1.17.
        """
        v17 = self.has(17)
        if not v17 and (sdma_engine_id is not None or queue_type == _QT_SDMA_BY_ENG_ID):
            what = ("queue type SDMA_BY_ENG_ID" if queue_type == _QT_SDMA_BY_ENG_ID
                    else "CREATE_QUEUE's sdma_engine_id")
            raise self._version_error("CREATE_QUEUE", (1, 17), what)
        if queue_type == _QT_SDMA_BY_ENG_ID and sdma_engine_id is None:
            raise UsageError("CREATE_QUEUE: queue type SDMA_BY_ENG_ID needs sdma_engine_id (the "
                             "SDMA engine to put the queue on)")
        fields = {
            "gpu_id": gpu_id, "queue_type": queue_type, "ring_base_address": ring_base,
            "ring_size": ring_size, "write_pointer_address": write_pointer,
            "read_pointer_address": read_pointer, "queue_percentage": percentage,
            "queue_priority": priority, "eop_buffer_address": eop_buffer_address,
            "eop_buffer_size": eop_buffer_size,
            "ctx_save_restore_address": ctx_save_restore_address,
            "ctx_save_restore_size": ctx_save_restore_size, "ctl_stack_size": ctl_stack_size,
        }
        if sdma_engine_id is not None:
            fields["sdma_engine_id"] = sdma_engine_id
        # a 1.17+ driver gets the 96-byte struct (sdma_engine_id 0 unless given), older ones
        # the header's 88-byte one: the driver copies the size the request encodes (§2.0)
        return self._send("CREATE_QUEUE", fields,
                          spec=CREATE_QUEUE_V17 if v17 else IOCTLS["CREATE_QUEUE"])

    def destroy_queue(self, *, queue_id: int) -> None:
        self._send("DESTROY_QUEUE", {"queue_id": queue_id})

    def update_queue(self, *, queue_id: int, ring_base: int, ring_size: int,
                     percentage: int = 100, priority: int = 7) -> None:
        """UPDATE_QUEUE. A ring address or size of 0, or percentage 0, deactivates the queue."""
        self._send("UPDATE_QUEUE", {
            "queue_id": queue_id, "ring_base_address": ring_base, "ring_size": ring_size,
            "queue_percentage": percentage, "queue_priority": priority})

    def set_cu_mask(self, *, queue_id: int, mask: Sequence[int]) -> None:
        """SET_CU_MASK: `mask` is a list of u32 words, bit i of word w = CU 32·w + i."""
        words = list(mask)
        _check_u32_list("SET_CU_MASK", "mask", words)
        array = _new(_U32_ARRAY, words) if words else ffi.NULL
        self._send("SET_CU_MASK", {"queue_id": queue_id, "num_cu_mask": 32 * len(words),
                                   "cu_mask_ptr": _addr(array)},
                   passed={"queue_id": queue_id, "mask": [hex(w) for w in words],
                           "num_cu_mask": 32 * len(words)})

    def get_queue_wave_state(self, *, queue_id: int, ctl_stack_address: int) -> WaveState:
        """GET_QUEUE_WAVE_STATE: copy the queue's control stack to `ctl_stack_address`."""
        return self._send("GET_QUEUE_WAVE_STATE", {"queue_id": queue_id,
                                                   "ctl_stack_address": ctl_stack_address})

    def alloc_queue_gws(self, *, queue_id: int, num_gws: int) -> int:
        """ALLOC_QUEUE_GWS: give the queue `num_gws` global wave sync entries; returns the
        first one."""
        return self._send("ALLOC_QUEUE_GWS", {"queue_id": queue_id, "num_gws": num_gws})

    # -- events -----------------------------------------------------------------------------
    def create_event(self, *, event_type: int, auto_reset: bool = True, node_id: int = 0,
                     event_page_handle: int = 0) -> EventInfo:
        """CREATE_EVENT. `event_page_handle` (a GTT memory handle) makes that BO the
        process's signal event page; it can be given once per process."""
        info = self._send("CREATE_EVENT", {
            "event_type": event_type, "auto_reset": int(auto_reset), "node_id": node_id,
            "event_page_offset": event_page_handle})
        self._event_types[info.event_id] = event_type
        return info

    def destroy_event(self, *, event_id: int) -> None:
        self._send("DESTROY_EVENT", {"event_id": event_id})
        self._event_types.pop(event_id, None)

    def set_event(self, *, event_id: int) -> None:
        self._send("SET_EVENT", {"event_id": event_id})

    def reset_event(self, *, event_id: int) -> None:
        self._send("RESET_EVENT", {"event_id": event_id})

    def wait_events(self, *, event_ids: Sequence[int], timeout_ms: int | None,
                    wait_for_all: bool = False,
                    last_event_ages: Sequence[int] | None = None) -> WaitResult:
        """WAIT_EVENTS on `event_ids`. `timeout_ms`: 0 polls, None waits forever.

        `last_event_ages` (KFD ≥ 1.14, signal events): per event, the age seen last; the
        wait completes at once if the event's age differs (0 = do not track).
        Returns status "complete" or "timeout"; a failed wait raises (``.wait_result`` = 2).
        """
        ids = list(event_ids)
        _check_u32_list("WAIT_EVENTS", "event_ids", ids)
        timeout = WAIT_INFINITE if timeout_ms is None else timeout_ms
        if not isinstance(timeout, int) or not 0 <= timeout <= WAIT_INFINITE:
            raise UsageError(f"WAIT_EVENTS: timeout_ms={timeout_ms!r} must be an int in "
                             f"[0, {WAIT_INFINITE:#x}] ms, or None to wait forever")
        if last_event_ages is not None:
            if not self.has(14):
                raise self._version_error("WAIT_EVENTS", (1, 14), "event age tracking")
            ages = list(last_event_ages)
            if len(ages) != len(ids):
                raise UsageError(f"WAIT_EVENTS: {len(ages)} last_event_ages for {len(ids)} "
                                 "event_ids")
        entries = _new(_EVENT_DATA_ARRAY, max(len(ids), 1))
        for i, event_id in enumerate(ids):
            entries[i].event_id = event_id
        if last_event_ages is not None:
            for i, age in enumerate(ages):
                # the 1.14 union member signal_event_data.last_event_age is the first u64
                _cast(_U64P, entries + i)[0] = age
        spec = IOCTLS["WAIT_EVENTS"]
        slot = _fill("WAIT_EVENTS", _CTYPE[spec.request], {
            "events_ptr": _addr(entries), "num_events": len(ids),
            "wait_for_all": 1 if wait_for_all else 0, "timeout": timeout})
        try:
            err = self.port.ioctl(self.fd, spec.request, slot.addr)
            result = int(slot.struct.wait_result)   # copied back on failure too (§2.0)
        finally:
            slot.give()
        if err or result not in (_WAIT_COMPLETE, _WAIT_TIMEOUT):
            exc = kfd_error("WAIT_EVENTS", err or _errno.EIO, {
                "event_ids": ids, "wait_for_all": bool(wait_for_all), "timeout_ms": timeout_ms})
            exc.wait_result = result
            raise exc
        if result == _WAIT_TIMEOUT:
            return WaitResult("timeout", ())
        tracked = last_event_ages is not None or self.has(14)
        data = []
        for i, event_id in enumerate(ids):
            e = entries[i]
            etype = self._event_types.get(event_id)
            memory = _memory_data(e.memory_exception_data) \
                if etype in (_EV_MEMORY, None) else None
            hw = _hw_data(e.hw_exception_data) if etype in (_EV_HW_EXCEPTION, None) else None
            age = int(_cast(_U64P, entries + i)[0]) \
                if tracked and etype == _EV_SIGNAL else None
            data.append(EventData(event_id, etype, memory, hw, age, int(e.kfd_event_data_ext)))
        return WaitResult("complete", tuple(data))

    # -- misc -------------------------------------------------------------------------------
    def get_clock_counters(self, *, gpu_id: int) -> ClockCounters:
        return self._send("GET_CLOCK_COUNTERS", {"gpu_id": gpu_id})

    def set_memory_policy(self, *, gpu_id: int, default_policy: int, alternate_policy: int,
                          alternate_aperture_base: int = 0,
                          alternate_aperture_size: int = 0) -> None:
        """SET_MEMORY_POLICY: KFD_IOC_CACHE_POLICY_COHERENT (0) or NONCOHERENT (1)."""
        self._send("SET_MEMORY_POLICY", {
            "gpu_id": gpu_id, "default_policy": default_policy,
            "alternate_policy": alternate_policy,
            "alternate_aperture_base": alternate_aperture_base,
            "alternate_aperture_size": alternate_aperture_size})

    def set_scratch_backing_va(self, *, gpu_id: int, va_addr: int) -> None:
        self._send("SET_SCRATCH_BACKING_VA", {"gpu_id": gpu_id, "va_addr": va_addr})

    def set_trap_handler(self, *, gpu_id: int, tba_addr: int, tma_addr: int) -> None:
        """SET_TRAP_HANDLER: second-level trap handler base (TBA) and memory (TMA)."""
        self._send("SET_TRAP_HANDLER", {"gpu_id": gpu_id, "tba_addr": tba_addr,
                                        "tma_addr": tma_addr})

    def set_xnack_mode(self, *, enabled: bool | None) -> bool:
        """SET_XNACK_MODE (KFD ≥ 1.5): None queries; returns the mode now in force."""
        return self._send("SET_XNACK_MODE",
                          {"xnack_enabled": -1 if enabled is None else int(bool(enabled))},
                          passed={"enabled": enabled})

    def svm(self, *, op: int, start_addr: int, size: int,
            attrs: Iterable[tuple[int, int] | SVMAttribute] = ()) -> list[SVMAttribute]:
        """SVM (KFD ≥ 1.5): KFD_IOCTL_SVM_OP_SET_ATTR / GET_ATTR on [start_addr, +size).

        Returns the attributes as the driver left them (GET_ATTR fills in the values).
        """
        spec = IOCTLS["SVM"]
        self._require(spec)
        pairs = [(a.type, a.value) if isinstance(a, SVMAttribute) else tuple(a) for a in attrs]
        for t, v in pairs:
            _check_u32_list("SVM", "attrs", [t, v])
        fields = {"op": op, "start_addr": start_addr, "size": size}
        # The attributes follow the fixed struct (a flexible array member) and the request
        # encodes the size of both: the driver copies in and out exactly that many bytes
        # (libhsakmt sends AMDKFD_IOC_SVM + (attributes size << _IOC_SIZESHIFT)).
        total = _SVM_ARGS_SIZE + _SVM_ATTR_SIZE * len(pairs)
        if total > _IOC_SIZE_MAX:
            raise UsageError(f"SVM: {len(pairs)} attributes do not fit one request (the ioctl "
                             f"size field holds at most {_IOC_SIZE_MAX} bytes, "
                             f"{(_IOC_SIZE_MAX - _SVM_ARGS_SIZE) // _SVM_ATTR_SIZE} attributes)")
        request = spec.request + ((total - _SVM_ARGS_SIZE) << _IOC_SIZESHIFT)
        buf = _new(_CHAR_ARRAY, max(total, _SVM_ARGS_SIZE + _SVM_ATTR_SIZE))
        a = _cast(_CTYPE[spec.request], buf)
        items = _cast(_SVM_ATTR_P, buf + _SVM_ARGS_SIZE)
        try:
            a[0] = {**fields, "nattr": len(pairs)}
        except (OverflowError, TypeError) as exc:
            raise _bad_field("SVM", _CTYPE[spec.request], fields, exc) from None
        for i, (t, v) in enumerate(pairs):
            items[i].type = t
            items[i].value = v
        err = self.port.ioctl(self.fd, request, _addr(a))
        if err:
            raise kfd_error("SVM", err, {**fields, "attrs": [SVMAttribute(t, v)
                                                             for t, v in pairs]})
        return [SVMAttribute(int(items[i].type), int(items[i].value)) for i in range(len(pairs))]

    def smi_events(self, *, gpu_id: int) -> int:
        """SMI_EVENTS (KFD ≥ 1.3): returns an fd that reports system-management events."""
        return self._send("SMI_EVENTS", {"gpuid": gpu_id})

    def runtime_enable(self, *, r_debug: int = 0,
                       mode_mask: int = int(lib.KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK),
                       capabilities_mask: int = 0) -> None:
        """RUNTIME_ENABLE (KFD ≥ 1.13, the debugger API): tell a debugger the runtime is up
        (mode_mask ENABLE), or down (mode_mask 0).

        Once per KFD process and before its first queue (EBUSY, EEXIST otherwise). Under a
        debugger the driver waits for it to acknowledge; the wait can be interrupted.
        """
        self._send("RUNTIME_ENABLE", {"r_debug": r_debug, "mode_mask": mode_mask,
                                      "capabilities_mask": capabilities_mask})

    # -- mmap on the KFD fd -----------------------------------------------------------------
    def mmap(self, *, offset: int, length: int, addr: int = 0, prot: int = _PROT_RW,
             flags: int = _MAP_SHARED) -> int:
        """mmap on /dev/kfd (doorbells, event page, MMIO remap page); returns the address."""
        try:
            return self.port.mmap(addr, length, prot, flags, self.fd, offset)
        except KFDError:
            raise
        except OSError as exc:
            raise kfd_error("mmap", exc.errno or _errno.EINVAL, {
                "offset": offset, "length": length, "addr": addr, "prot": prot,
                "flags": flags}) from exc

    def munmap(self, addr: int, length: int) -> None:
        self.port.munmap(addr, length)

    # -- the hot path -----------------------------------------------------------------------
    def prepared(self, name: str, /, *, on_error: Callable[[int], object] | None = None,
                 **fields) -> PreparedIoctl:
        """A reusable call of ioctl `name` with its struct pre-filled from `fields`.

        cffi objects given as field values (arrays a pointer field refers to) are kept alive
        with the call. Version gating as for the wrapper methods.
        """
        if name not in IOCTLS:
            raise UsageError(f"unknown ioctl {name!r}; known: {', '.join(IOCTLS)}")
        spec = CREATE_QUEUE_V17 if name == "CREATE_QUEUE" and self.has(17) else IOCTLS[name]
        self._require(spec)
        ctype = _CTYPE[spec.request]
        struct = _new(ctype)
        keep = []
        known = {f for f, _ in ctype.item.fields}
        for fname, value in fields.items():
            if fname not in known:
                raise UsageError(f"{name}: {spec.struct} has no field {fname!r}; fields: "
                                 f"{', '.join(sorted(known))}")
            if isinstance(value, ffi.CData):
                keep.append(value)
                value = _addr(value)
            try:
                setattr(struct, fname, value)
            except (OverflowError, TypeError) as exc:
                raise _bad_field(name, ctype, {fname: value}, exc) from None
        return PreparedIoctl(self.port, self.fd, spec, struct, ctype, on_error, tuple(keep))


def _open_hint(path: str, code: int) -> str:
    if code == _errno.ENOENT:
        return f"{path} does not exist: no amdgpu driver with KFD is loaded on this machine"
    if code in (_errno.EACCES, _errno.EPERM):
        return (f"no permission to open {path}: add the user to the 'render' and 'video' "
                "groups")
    return f"{path} could not be opened"
