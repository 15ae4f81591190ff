"""GPU memory: `Buffer` and the allocation path behind `Device.alloc`.

Every buffer lives at one address that is both its CPU and its GPU virtual address, as ROCm's
thunk arranges it: reserve a CPU range (anonymous PROT_NONE mapping), ALLOC_MEMORY_OF_GPU with
``va_addr`` = that range, mmap the buffer object over the reservation with MAP_FIXED through
the render node the VM was acquired with (at the ``mmap_offset`` the driver returned), then
MAP_MEMORY_TO_GPU. USERPTR buffers are anonymous host memory registered at its own address.
Each step is undone in reverse order if a later one fails, so a failed alloc leaks nothing.
"""

from __future__ import annotations

import errno as _errno
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import DTypeLike

from ..errors import UsageError
from ..kfd.abi import lib
from ..kfd.errors import KFDError, kfd_error
from ._util import (
    PAGE_SIZE,
    align_up,
    check_int,
    memory_array,
    raw_view,
    read_bytes,
    write_bytes,
)

if TYPE_CHECKING:
    from .device import Device
    from .process import Process

__all__ = ["Buffer", "LOCATIONS", "allocate", "alloc_flags"]

LOCATIONS = ("vram", "gtt", "userptr")
LARGE_ALIGNMENT = 2 << 20       # 2 MiB: big buffers get huge-page friendly VAs

_F = lib
_FLAG_WRITABLE = int(_F.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE) & 0xFFFFFFFF
_FLAG_NAMES = {
    int(_F.KFD_IOC_ALLOC_MEM_FLAGS_VRAM): "VRAM",
    int(_F.KFD_IOC_ALLOC_MEM_FLAGS_GTT): "GTT",
    int(_F.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR): "USERPTR",
    int(_F.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC): "PUBLIC",
    int(_F.KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE): "EXECUTABLE",
    _FLAG_WRITABLE: "WRITABLE",
    int(_F.KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED): "UNCACHED",
    int(_F.KFD_IOC_ALLOC_MEM_FLAGS_COHERENT): "COHERENT",
}


def alloc_flags(location: str, *, uncached: bool = False, coherent: bool = False,
                executable: bool = False, read_only: bool = False,
                cpu_access: bool = True) -> int:
    """ALLOC_MEMORY_OF_GPU flags for a buffer of `location` (KFD_IOC_ALLOC_MEM_FLAGS_*)."""
    if location == "vram":
        flags = int(_F.KFD_IOC_ALLOC_MEM_FLAGS_VRAM)
        if cpu_access:
            flags |= int(_F.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC)
    elif location == "gtt":
        flags = int(_F.KFD_IOC_ALLOC_MEM_FLAGS_GTT)
    elif location == "userptr":
        flags = int(_F.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR)
    else:
        raise UsageError(f"location must be one of {', '.join(map(repr, LOCATIONS))}, got "
                         f"{location!r}")
    if not read_only:
        flags |= _FLAG_WRITABLE
    if executable:
        flags |= int(_F.KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE)
    if uncached:
        flags |= int(_F.KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED)
    if coherent:
        flags |= int(_F.KFD_IOC_ALLOC_MEM_FLAGS_COHERENT)
    return flags


def format_flags(flags: int) -> str:
    names = [name for bit, name in _FLAG_NAMES.items() if flags & bit]
    return "|".join(names) or "0"


class Buffer:
    """A GPU buffer object mapped at one address for the CPU and its GPUs.

    ``gpu_address`` is the GPU virtual address; ``cpu_address`` is the same number when the
    buffer is CPU-mapped and None otherwise (VRAM allocated with ``cpu_access=False``).
    `view`, `read`, `write` and `fill` go through the CPU mapping. `free` unmaps the buffer
    from every GPU, frees it and releases the address range; views must not be used after it.
    """

    kind = "buffer"

    def __init__(self, *, process: Process, gpu_id: int, device: Device | None, size: int,
                 alloc_size: int, location: str, flags: int, handle: int, address: int,
                 cpu_mapped: bool, owner: object, internal: bool, description: str = "") -> None:
        self._process = process
        self.gpu_id = gpu_id
        self.device = device
        self.size = size
        self.alloc_size = alloc_size
        self.location = location
        self.flags = flags
        self.handle = handle
        self.gpu_address = address
        self.cpu_address: int | None = address if cpu_mapped else None
        self.owner = owner
        self.internal = internal
        self.description = description
        self.mapped_gpus: list[int] = []
        self._lock = threading.Lock()
        self._freed = False
        self._view: memoryview | None = None

    # -- properties -------------------------------------------------------------------------
    @property
    def freed(self) -> bool:
        return self._freed

    closed = freed

    @property
    def read_only(self) -> bool:
        return not self.flags & _FLAG_WRITABLE

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        state = "freed" if self._freed else f"mapped on {[hex(g) for g in self.mapped_gpus]}"
        what = f" {self.description}" if self.description else ""
        return (f"<Buffer{what} {self.location} {self.size:#x} bytes at {self.gpu_address:#x} "
                f"handle={self.handle:#x} flags={format_flags(self.flags)} {state}>")

    def describe(self) -> str:
        what = f"{self.description}: " if self.description else ""
        return (f"{what}{self.location} buffer of {self.size} bytes at {self.gpu_address:#x} "
                f"(handle {self.handle:#x})")

    # -- CPU access -------------------------------------------------------------------------
    def _check_cpu(self, what: str) -> int:
        if self._freed:
            raise UsageError(f"Buffer.{what}: {self.describe()} was freed")
        if self.cpu_address is None:
            raise UsageError(f"Buffer.{what}: {self.describe()} has no CPU mapping (it was "
                             "allocated with cpu_access=False)")
        return self.cpu_address

    def _range(self, what: str, offset: int, nbytes: int) -> None:
        if offset < 0 or nbytes < 0 or offset + nbytes > self.size:
            raise UsageError(f"Buffer.{what}: bytes [{offset:#x}, {offset + nbytes:#x}) are "
                             f"outside the buffer's {self.size:#x} bytes")

    def view(self, dtype: DTypeLike = np.uint8, count: int = -1, offset: int = 0
             ) -> np.ndarray:
        """A numpy array of `count` items of `dtype` (all that fit when -1) from byte `offset`,
        over the CPU mapping (no copy: writes reach the GPU memory)."""
        base = self._check_cpu("view")
        dt = np.dtype(dtype)
        offset = check_int("offset", offset, minimum=0)
        count = check_int("count", count, minimum=-1)
        if offset > self.size:
            raise UsageError(f"Buffer.view: offset {offset:#x} is past the buffer's "
                             f"{self.size:#x} bytes")
        if count == -1:
            count = (self.size - offset) // dt.itemsize
        self._range("view", offset, count * dt.itemsize)
        raw = memory_array(base + offset, count * dt.itemsize, owner=self)
        return raw.view(dt)

    def read(self, offset: int = 0, n: int | None = None) -> bytes:
        """Copy `n` bytes (to the end when None) starting at `offset`."""
        base = self._check_cpu("read")
        offset = check_int("offset", offset, minimum=0)
        n = self.size - offset if n is None else check_int("n", n, minimum=0)
        self._range("read", offset, n)
        return read_bytes(base + offset, n)

    def _bytes(self) -> memoryview:
        """The CPU mapping as a byte memoryview (made once; checked by the callers)."""
        view = self._view
        if view is None:
            view = self._view = raw_view(self._check_cpu("write"), self.size)
        return view

    def write(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Copy `data` into the buffer at byte `offset`."""
        if (type(data) is bytes or type(data) is bytearray) and type(offset) is int \
                and not self._freed and self.cpu_address is not None:
            end = offset + len(data)
            if offset >= 0 and end <= self.size:
                self._bytes()[offset:end] = data
                return
        base = self._check_cpu("write")
        offset = check_int("offset", offset, minimum=0)
        nbytes = data.nbytes if isinstance(data, np.ndarray) else memoryview(data).nbytes
        self._range("write", offset, nbytes)
        write_bytes(base + offset, data)

    def fill(self, value: int, dtype: DTypeLike = np.uint8) -> None:
        """Set every `dtype` element of the buffer to `value` (bytes by default)."""
        dt = np.dtype(dtype)
        if self.size % dt.itemsize:
            raise UsageError(f"Buffer.fill: size {self.size} is not a multiple of "
                             f"{dt.name}'s {dt.itemsize} bytes")
        self.view(dt)[...] = value

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = self.view(np.uint8)
        return arr if dtype is None else arr.astype(dtype)

    # -- GPU mappings -----------------------------------------------------------------------
    def map_to(self, device: Device) -> Buffer:
        """Map the buffer into `device`'s VM as well (a peer GPU of the same process)."""
        gpu_id = self._peer_gpu(device, "map_to")
        with self._lock:
            if gpu_id in self.mapped_gpus:
                return self
            self._process.kfd.map_memory(handle=self.handle, gpu_ids=[gpu_id])
            self.mapped_gpus.append(gpu_id)
        return self

    def unmap_from(self, device: Device) -> None:
        """Remove the buffer from `device`'s VM (GPU accesses there fault afterwards)."""
        gpu_id = self._peer_gpu(device, "unmap_from")
        with self._lock:
            if gpu_id not in self.mapped_gpus:
                raise UsageError(f"Buffer.unmap_from: {self.describe()} is not mapped on GPU "
                                 f"{gpu_id:#x}")
            self._process.kfd.unmap_memory(handle=self.handle, gpu_ids=[gpu_id])
            self.mapped_gpus.remove(gpu_id)

    def _peer_gpu(self, device: Device, what: str) -> int:
        if self._freed:
            raise UsageError(f"Buffer.{what}: {self.describe()} was freed")
        if getattr(device, "process", None) is not self._process:
            raise UsageError(f"Buffer.{what}: device {device!r} belongs to another KFD process; "
                             "buffers can only be mapped to GPUs opened by the same process "
                             "(use open_devices() to open them together)")
        if device.closed:
            raise UsageError(f"Buffer.{what}: device {device!r} is closed")
        return device.gpu_id

    # -- lifetime ---------------------------------------------------------------------------
    def free(self) -> None:
        """Unmap from every GPU, free the buffer object and release the address range.

        Idempotent. If the driver refuses (say, a queue still uses the buffer), the buffer
        stays valid and the error is raised.
        """
        with self._lock:
            if self._freed:
                return
            kfd = self._process.kfd
            if self.mapped_gpus and not kfd.closed:
                kfd.unmap_memory(handle=self.handle, gpu_ids=list(self.mapped_gpus))
                self.mapped_gpus.clear()
            if not kfd.closed:
                kfd.free_memory(handle=self.handle)
            self._freed = True
            self._view = None
            self._process.port.munmap(self.gpu_address, self.alloc_size)
        if self.device is not None:
            self.device._forget(self)

    close = free

    def __enter__(self) -> Buffer:
        return self

    def __exit__(self, *exc) -> None:
        self.free()


class _Rollback:
    """Undo steps run in reverse order when an allocation fails part-way."""

    def __init__(self) -> None:
        self.steps: list = []

    def push(self, fn, *args) -> None:
        self.steps.append((fn, args))

    def run(self) -> None:
        for fn, args in reversed(self.steps):
            try:
                fn(*args)
            except Exception:  # best effort: the original error is raised
                pass
        self.steps.clear()


def reserve_va(process: Process, size: int, alignment: int) -> int:
    """Reserve `size` bytes of CPU address space aligned to `alignment` (PROT_NONE)."""
    port = process.port
    flags = int(_F.MAP_PRIVATE | _F.MAP_ANONYMOUS | _F.MAP_NORESERVE)
    span = size + (alignment - PAGE_SIZE if alignment > PAGE_SIZE else 0)
    try:
        base = port.mmap(0, span, int(_F.PROT_NONE), flags, -1, 0)
    except OSError as exc:
        raise kfd_error("mmap", exc.errno or _errno.ENOMEM, {"length": span},
                        hint="could not reserve CPU address space for the buffer") from exc
    start = align_up(base, alignment)
    if start > base:
        port.munmap(base, start - base)
    end = base + span
    if end > start + size:
        port.munmap(start + size, end - (start + size))
    return start


def allocate(process: Process, gpu_id: int, size: int, location: str = "vram", *,
             uncached: bool = False, coherent: bool = False, executable: bool = False,
             read_only: bool = False, cpu_access: bool = True, owner: object = None,
             device: Device | None = None, internal: bool = False, description: str = "",
             map_gpus: Sequence[int] | None = None) -> Buffer:
    """Allocate, CPU-map and GPU-map one buffer (see the module docstring for the steps).

    `map_gpus` are the GPUs to map it to (default: `gpu_id` only).
    """
    size = check_int("size", size, minimum=1)
    if location not in LOCATIONS:
        raise UsageError(f"location must be one of {', '.join(map(repr, LOCATIONS))}, got "
                         f"{location!r}")
    if location == "userptr" and not cpu_access:
        raise UsageError("cpu_access=False is meaningless for location='userptr' (the memory is "
                         "host memory)")
    flags = alloc_flags(location, uncached=uncached, coherent=coherent, executable=executable,
                        read_only=read_only, cpu_access=cpu_access)
    alloc_size = align_up(size, PAGE_SIZE)
    alignment = LARGE_ALIGNMENT if alloc_size >= LARGE_ALIGNMENT else PAGE_SIZE
    gpus = list(map_gpus) if map_gpus is not None else [gpu_id]
    port = process.port
    kfd = process.kfd
    undo = _Rollback()
    try:
        address = reserve_va(process, alloc_size, alignment)
        undo.push(port.munmap, address, alloc_size)
        process.check_va(gpu_id, address, alloc_size)
        host = 0
        rw = int(_F.PROT_READ | _F.PROT_WRITE)
        if location == "userptr":
            try:
                host = port.mmap(address, alloc_size, rw,
                                 int(_F.MAP_PRIVATE | _F.MAP_ANONYMOUS | _F.MAP_FIXED), -1, 0)
            except OSError as exc:
                raise kfd_error("mmap", exc.errno or _errno.ENOMEM,
                                {"addr": address, "length": alloc_size},
                                hint="could not map host memory for the userptr buffer") from exc
        allocation = _alloc(process, gpu_id, alloc_size, flags, address, host)
        undo.push(_free_handle, kfd, allocation.handle)
        cpu_mapped = location == "userptr"
        if location != "userptr" and cpu_access:
            _cpu_map(process, gpu_id, address, alloc_size, allocation.mmap_offset)
            cpu_mapped = True
        buf = Buffer(process=process, gpu_id=gpu_id, device=device, size=size,
                     alloc_size=alloc_size, location=location, flags=flags,
                     handle=allocation.handle, address=address, cpu_mapped=cpu_mapped,
                     owner=owner, internal=internal, description=description)
        if gpus:
            _map_all(kfd, allocation.handle, gpus, undo)
            buf.mapped_gpus.extend(gpus)
    except BaseException:
        undo.run()
        raise
    return buf


def _alloc(process: Process, gpu_id: int, size: int, flags: int, address: int, host: int):
    """ALLOC_MEMORY_OF_GPU; an EINVAL for CPU-visible VRAM says why on a small-BAR GPU."""
    try:
        return process.kfd.alloc_memory(gpu_id=gpu_id, size=size, flags=flags,
                                        va_addr=address, mmap_offset=host)
    except KFDError as exc:
        public_vram = int(_F.KFD_IOC_ALLOC_MEM_FLAGS_VRAM | _F.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC)
        if exc.errno != _errno.EINVAL or flags & public_vram != public_vram:
            raise
        small = "" if process.gpu(gpu_id).large_bar else (
            f"GPU {gpu_id:#x} is a small-BAR board (its topology lists no FB_PUBLIC heap), ")
        raise kfd_error(
            "ALLOC_MEMORY_OF_GPU", exc.errno, exc.call_args,
            hint=f"{small}the driver refuses CPU-visible VRAM (the PUBLIC flag) unless the "
                 "whole frame buffer is CPU-visible (large BAR / resizable BAR, "
                 "kfd_dev_is_large_bar): allocate with cpu_access=False, use 'gtt', or enable "
                 "resizable BAR in the firmware") from exc


def _free_handle(kfd, handle: int) -> None:
    kfd.free_memory(handle=handle)


def _cpu_map(process: Process, gpu_id: int, address: int, length: int, mmap_offset: int) -> None:
    fd = process.render_fd(gpu_id)
    prot = int(_F.PROT_READ | _F.PROT_WRITE)
    try:
        got = process.port.mmap(address, length, prot, int(_F.MAP_SHARED | _F.MAP_FIXED), fd,
                                mmap_offset)
    except KFDError:
        raise
    except OSError as exc:
        raise kfd_error(
            "mmap", exc.errno or _errno.EINVAL,
            {"addr": address, "length": length, "fd": fd, "offset": mmap_offset},
            hint=(f"could not CPU-map the buffer through the render node of GPU {gpu_id:#x} "
                  "at the mmap_offset ALLOC_MEMORY_OF_GPU returned (VRAM without a large BAR "
                  "cannot be CPU-mapped: allocate with cpu_access=False or use 'gtt')"),
        ) from exc
    if got != address:
        process.port.munmap(got, length)
        raise kfd_error("mmap", _errno.EINVAL, {"addr": address, "length": length},
                        hint=f"MAP_FIXED mapping landed at {got:#x} instead of {address:#x}")


def _map_all(kfd, handle: int, gpus: Iterable[int], undo: _Rollback) -> None:
    ids = list(gpus)
    try:
        kfd.map_memory(handle=handle, gpu_ids=ids)
    except KFDError as exc:
        done = getattr(exc, "n_success", 0)
        if done:
            undo.push(_unmap, kfd, handle, ids[:done])
        raise
    undo.push(_unmap, kfd, handle, ids)


def _unmap(kfd, handle: int, gpu_ids: list[int]) -> None:
    kfd.unmap_memory(handle=handle, gpu_ids=gpu_ids)
