"""SimPort: the Port whose system calls are answered by the simulated KFD driver.

One SimPort is one OS process (one KFD process). `open("/dev/kfd")` and
`open("/dev/dri/renderD<minor>")` give file descriptors (real descriptors of /dev/null, so their
numbers never collide with other files of this Python process); `ioctl` dispatches on the
request number exactly as amdkfd's `kfd_ioctl` does (kfd_chardev.c, facts-kfd.md §2.0): the
number selects the handler, the kernel's own direction bits and struct size apply, `usize`
bytes are copied in from the caller's address into a zero-filled kernel struct, and for _IOR
ioctls `usize` bytes are copied back even when the handler failed. `mmap` maps buffer objects,
doorbells, the event page and the MMIO page at real addresses of this process.

Nothing here raises out of `ioctl`: an internal error becomes EIO with a logged traceback, an
ioctl the simulator does not implement is ENOTTY with one log line. The one exception that does
come out is the caller's own: a Python signal handler that raised while WAIT_EVENTS slept (the
ioctl first ends as the kernel's does on a signal, then the handler's exception is raised).
"""

from __future__ import annotations

import errno as E
import logging
import os
import struct
import threading
import time

from ..kfd import _syscall
from ..kfd.abi import IOC_READ, IOC_WRITE, IOCTLS, ffi, ioc_dir, ioc_nr, ioc_size, lib
from ..kfd.port import KFD_PATH, Port
from .events import EVENT_DATA_SIZE
from .machine import SimMachine
from .memory import PAGE_SIZE, DriverError, access_ok, read_user, write_user
from .process import (
    KFD_CWSR_TBA_TMA_SIZE,
    KFD_MMAP_GPU_ID_SHIFT,
    KFD_MMAP_TYPE_DOORBELL,
    KFD_MMAP_TYPE_EVENTS,
    KFD_MMAP_TYPE_MMIO,
    KFD_MMAP_TYPE_RESERVED_MEM,
    Q_SDMA_BY_ENG_ID,
    QUEUE_KINDS,
    KFDProcess,
    QueueProps,
)

log = logging.getLogger("pytest_amdgpu.sim")

__all__ = ["SimPort", "RENDER_PREFIX"]

RENDER_PREFIX = "/dev/dri/renderD"
ENOTSUPP = 524
KMALLOC_MAX_SIZE = 4 << 20              # kmalloc_array beyond this fails with ENOMEM
# sizeof(struct kfd_event_waiter) on x86-64: wait_queue_entry_t (40) + event pointer (8) + two
# bools, padded to 8 (kfd_events.c; DERIVED from the layout).
EVENT_WAITER_SIZE = 56
_MAP_ANONYMOUS = int(lib.MAP_ANONYMOUS)
_MAP_FIXED = int(lib.MAP_FIXED)
_MAP_PRIVATE = int(lib.MAP_PRIVATE)
_MAP_NORESERVE = int(lib.MAP_NORESERVE)
_PROT_RW = int(lib.PROT_READ | lib.PROT_WRITE)
_PROT_NONE = int(lib.PROT_NONE)
_MAP_TYPE = 0x3                          # MAP_SHARED | MAP_PRIVATE bits (MAP_TYPE, mman.h)
_CLOCK_MONOTONIC_RAW = getattr(time, "CLOCK_MONOTONIC_RAW", time.CLOCK_MONOTONIC)
_CLOCK_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class _File:
    kind = "file"

    def __init__(self, path: str) -> None:
        self.path = path
        self.vm_owner = None


class _KFDFile(_File):
    kind = "kfd"

    def __init__(self, path: str, process: KFDProcess) -> None:
        super().__init__(path)
        self.process = process


class _RenderFile(_File):
    """An open amdgpu render node (struct drm_file)."""

    kind = "render"

    def __init__(self, path: str, device) -> None:
        super().__init__(path)
        self.device = device


class _ForeignFile(_File):
    """A descriptor of this process that is not a simulated device (fget succeeds)."""

    kind = "foreign"


class _PendingSignal(threading.local):
    """Per calling thread: the exception of a signal handler that interrupted its ioctl."""

    exc: BaseException | None = None


class SimPort(Port):
    """The simulated driver behind the Port interface. See the module docstring."""

    name = "sim"

    def __init__(self, machine: SimMachine | None = None, *, sim: str = "gfx942",
                 record: bool = False, trace_len: int = 512, **machine_options) -> None:
        self._owns_machine = machine is None
        self.machine = SimMachine(sim, **machine_options) if machine is None else machine
        self._lock = threading.RLock()
        self._files: dict[int, _File] = {}
        self.process: KFDProcess | None = None
        self._maps: dict[int, int] = {}                    # mappings made here: addr -> len
        self._doorbells: dict[int, tuple[int, object]] = {}  # addr -> (length, pdd)
        self._last_doorbell: tuple[int, int, object] | None = None   # (addr, length, pdd)
        self._unimplemented_logged: set[int] = set()
        self._signal = _PendingSignal()
        self.closed = False
        super().__init__(record=record, trace_len=trace_len)

    # -- files -----------------------------------------------------------------------------------
    def _open(self, path: str, flags: int) -> int:
        with self._lock:
            self._check_open()
            if path == KFD_PATH:
                if self.process is None:                       # kfd_create_process
                    process = KFDProcess(self.machine, self)
                    try:
                        self.machine.register_process(process)
                    except DriverError as exc:
                        raise OSError(exc.errno, exc.why, path) from None
                    self.process = process
                f: _File = _KFDFile(path, self.process)
            elif path.startswith(RENDER_PREFIX) and path[len(RENDER_PREFIX):].isdigit():
                dev = self.machine.device_by_minor(int(path[len(RENDER_PREFIX):]))
                if dev is None:
                    raise FileNotFoundError(E.ENOENT, "No such file or directory", path)
                f = _RenderFile(path, dev)
            else:
                raise FileNotFoundError(E.ENOENT, "No such file or directory (simulated "
                                                  "machine has /dev/kfd and render nodes only)",
                                        path)
            fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            self._files[fd] = f
            return fd

    def _close(self, fd: int) -> None:
        with self._lock:
            f = self._files.pop(fd, None)
            if f is None:
                raise OSError(E.EBADF, "Bad file descriptor")
            os.close(fd)
        # kfd_release only drops a reference: the process and its objects live on (1.7).

    def _check_open(self) -> None:
        if self.closed:
            raise OSError(E.EBADF, "the simulated process has ended (SimPort.close_port)")

    # -- ioctl -----------------------------------------------------------------------------------
    def _ioctl(self, fd: int, request: int, arg: int) -> int:
        try:
            f = self._files.get(fd)
            if f is None:
                return E.EBADF
            if not isinstance(f, _KFDFile):
                self._log_unimplemented(request, f"ioctl {request:#x} on {f.path}")
                return E.ENOTTY
            err = self._kfd_ioctl(f.process, request, arg)
        except Exception:
            log.exception("simulated driver: internal error in ioctl %#x", request)
            return E.EIO
        pending = self._signal.exc
        if pending is not None:     # a signal handler ran during the call: its exception now
            self._signal.exc = None
            raise pending
        return err

    def raise_after_ioctl(self, exc: BaseException) -> None:
        """Raise `exc` (from a Python signal handler that interrupted a sleeping ioctl) once the
        ioctl has returned and its struct is copied out, as the handler runs after EINTR."""
        self._signal.exc = exc

    def _log_unimplemented(self, request: int, what: str) -> None:
        level = logging.DEBUG if request in self._unimplemented_logged else logging.WARNING
        self._unimplemented_logged.add(request)
        log.log(level, "simulated KFD: %s is not implemented; returning ENOTTY", what)

    def _kfd_ioctl(self, process: KFDProcess, request: int, arg: int) -> int:
        nr = ioc_nr(request)
        usize = ioc_size(request)
        if nr in _DEPRECATED:                   # DBG_*_DEPRECATED (IOW): copy-in, then EPERM
            return E.EFAULT if read_user(arg, usize) is None else E.EPERM
        entry = _TABLE.get(nr)
        if entry is not None and entry[0].min_version > self.machine.kfd_version:
            log.debug("simulated KFD %d.%d has no %s: ENOTTY", *self.machine.kfd_version,
                      entry[0].name)
            return E.ENOTTY
        if entry is None:
            if nr < 1 or nr >= _COMMAND_END:   # outside the table: ENOTTY (CHR kfd_ioctl)
                return E.ENOTTY
            self._log_unimplemented(request, f"KFD ioctl nr {nr:#x}")
            return E.ENOTTY
        spec, ctype, handler = entry
        if nr == _CREATE_QUEUE_NR and self.machine.kfd_version < (1, 17):
            ctype = "struct kfd_ioctl_create_queue_args"
        kdir = ioc_dir(spec.request)            # the kernel's own direction bits
        asize = max(usize, ffi.sizeof(ctype))
        kbuf = bytearray(asize)
        if kdir & IOC_WRITE:
            data = read_user(arg, usize)
            if data is None:
                return E.EFAULT
            kbuf[:usize] = data
        args = ffi.from_buffer(ctype + " *", kbuf)
        try:
            err = handler(self, process, args, kbuf, usize)
        except DriverError as exc:
            log.debug("simulated KFD %s: %s", spec.name, exc)
            err = exc.errno
        if kdir & IOC_READ and not write_user(arg, bytes(kbuf[:usize])):
            err = E.EFAULT
        return err

    # -- mmap ------------------------------------------------------------------------------------
    def _mmap(self, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
        if fd == -1 or flags & _MAP_ANONYMOUS:
            return self._track(_syscall.mmap(addr, length, prot, flags, fd, offset), length)
        with self._lock:
            f = self._files.get(fd)
        if f is None or isinstance(f, _ForeignFile):
            return _syscall.mmap(addr, length, prot, flags, fd, offset)
        if length == 0 or offset & (PAGE_SIZE - 1):
            raise OSError(E.EINVAL, "mmap: zero length or unaligned offset")
        try:
            if isinstance(f, _KFDFile):
                backing_fd, pdd = self._kfd_mmap(f.process, offset, length)
            else:
                backing_fd, pdd = self._drm_mmap(f, offset, length, prot, flags)
        except DriverError as exc:
            raise OSError(exc.errno, f"mmap offset {offset:#x}: {exc.why}") from None
        except Exception:
            log.exception("simulated driver: internal error in mmap of offset %#x", offset)
            raise OSError(E.EIO, f"mmap offset {offset:#x}: internal error of the simulated "
                                 "driver (traceback logged)") from None
        if backing_fd is None:                  # RESERVED_MEM: anonymous kernel pages
            anon = (flags & ~_MAP_TYPE) | _MAP_PRIVATE | _MAP_ANONYMOUS
            res = _syscall.mmap(addr, length, prot, anon, -1, 0)
        else:
            res = _syscall.mmap(addr, length, prot, flags, backing_fd, 0)
        self._track(res, length, pdd)
        return res

    def _track(self, addr: int, length: int, doorbell_pdd=None) -> int:
        with self._lock:
            self._forget(addr, length)
            self._maps[addr] = length
            if doorbell_pdd is not None:
                self._doorbells[addr] = (length, doorbell_pdd)
        return addr

    def _forget(self, addr: int, length: int) -> None:
        """Drop bookkeeping of mappings that [addr, addr+length) replaces or unmaps."""
        end = addr + length
        self._last_doorbell = None
        for table in (self._doorbells, self._maps):
            for a, v in list(table.items()):
                n = v[0] if isinstance(v, tuple) else v
                if a < end and addr < a + n:
                    del table[a]

    def _kfd_mmap(self, process: KFDProcess, offset: int, length: int):
        """kfd_mmap (facts §3 M1-M7)."""
        gpu_id = (offset >> KFD_MMAP_GPU_ID_SHIFT) & 0xFFFF
        dev = self.machine.device_by_gpu_id(gpu_id) if gpu_id else None
        kind = offset & (0x3 << 62)
        if kind == KFD_MMAP_TYPE_DOORBELL:                        # M3
            if dev is None:
                raise DriverError(E.ENODEV, f"no GPU {gpu_id:#x}")
            pdd = process.pdd_by_id(gpu_id)
            if pdd is None:
                raise DriverError(E.EINVAL, "no process device data")
            if length != dev.doorbell_slice_size:
                raise DriverError(E.EINVAL, f"doorbell mmap length {length:#x} != slice "
                                            f"{dev.doorbell_slice_size:#x}")
            return pdd.ensure_doorbells().fd, pdd
        if kind == KFD_MMAP_TYPE_EVENTS:                          # M6
            backing = process.events.mmap_page(length)
            if backing.fd is None:
                raise DriverError(E.EINVAL, "the event page cannot be mapped")
            return backing.fd, None
        if kind == KFD_MMAP_TYPE_RESERVED_MEM:                    # APU CWSR pages
            if dev is None:
                raise DriverError(E.ENODEV, f"no GPU {gpu_id:#x}")
            if length != KFD_CWSR_TBA_TMA_SIZE:
                raise DriverError(E.EINVAL, "reserved-memory mmap must be 2 pages")
            return None, None
        if dev is None:                                           # MMIO (M7)
            raise DriverError(E.ENODEV, f"no GPU {gpu_id:#x}")
        if length != PAGE_SIZE:
            raise DriverError(E.EINVAL, f"MMIO mmap length {length:#x} != PAGE_SIZE")
        return dev.mmio_backing.fd, None

    def _drm_mmap(self, f: _RenderFile, offset: int, length: int, prot: int, flags: int):
        """drm_gem_mmap + amdgpu_gem_object_mmap + ttm_bo_mmap_obj on the render node."""
        bo = f.device.drm_object(offset)
        if bo is None or length > max(bo.bo_size, PAGE_SIZE) or bo.freed:
            raise DriverError(E.EINVAL, "no buffer object at this offset of the render node")
        pdd = bo.process.pdd_by_id(bo.gpu_id)
        if pdd is None or pdd.drm_file is not f:                 # drm_vma_node_is_allowed
            raise DriverError(E.EACCES, "the buffer object is not visible through this file")
        if bo.kind == "userptr":                                 # ttm_tt_get_usermm -> EPERM
            raise DriverError(E.EPERM, "userptr buffer objects cannot be mmapped")
        # ttm_bo_mmap_obj refuses copy-on-write mappings; amdgpu lets a PROT_NONE MAP_PRIVATE
        # one through (the Thunk debugger workaround in amdgpu_gem_object_mmap).
        if flags & _MAP_TYPE == _MAP_PRIVATE and prot != _PROT_NONE:
            raise DriverError(E.EINVAL, "buffer objects must be mapped MAP_SHARED "
                                        "(a MAP_PRIVATE copy would not alias GPU memory)")
        return bo.backing.fd, (pdd if bo.kind == "doorbell" else None)

    def _munmap(self, addr: int, length: int) -> None:
        _syscall.munmap(addr, length)
        with self._lock:
            self._forget(addr, length)

    # -- sysfs -------------------------------------------------------------------------------------
    def _read_sysfs(self, path: str) -> str:
        return self.machine.read_sysfs(path)

    def _list_sysfs(self, path: str) -> list[str]:
        return self.machine.list_sysfs(path)

    # -- doorbell -----------------------------------------------------------------------------------
    def _doorbell(self, addr: int, value: int) -> None:
        """A 64-bit store to the mapped doorbell, then wake the engine of its queue.

        A store outside any doorbell mapping made through this port is a plain memory store
        (checked: an unmapped address raises OSError EFAULT instead of crashing)."""
        hit = self._last_doorbell
        if hit is None or not (hit[0] <= addr and addr + 8 <= hit[0] + hit[1]):
            hit = None
            with self._lock:
                for a, (n, pdd) in self._doorbells.items():
                    if a <= addr and addr + 8 <= a + n:
                        hit = (a, n, pdd)
                        break
            if hit is None:
                if not write_user(addr, (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little")):
                    raise OSError(E.EFAULT, f"doorbell store to unmapped address {addr:#x}")
                return
            self._last_doorbell = hit
        _syscall.store64(addr, value)
        a, _n, pdd = hit
        try:
            pdd.doorbell_written((addr - a) % pdd.device.doorbell_slice_size, 8, value)
        except Exception:
            log.exception("simulated GPU: internal error on the doorbell store at %#x", addr)
            raise OSError(E.EIO, f"doorbell at {addr:#x}: internal error of the simulated GPU "
                                 "(traceback logged)") from None

    # -- the simulated process ends -------------------------------------------------------------------
    def close_port(self) -> None:
        """End the simulated process: every queue, BO, event and VM is released; mappings made
        through this port are replaced by inaccessible-to-GPU anonymous memory; fds closed."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            files, self._files = self._files, {}
            maps, self._maps = self._maps, {}
            self._doorbells = {}
            self._last_doorbell = None
            process, self.process = self.process, None
        try:
            if process is not None:
                process.teardown()
                self.machine.unregister_process(process)
        finally:
            for fd in files:
                try:
                    os.close(fd)
                except OSError:
                    pass
            _release_sim_mappings(maps)
            if self._owns_machine:
                self.machine.close()

    def __enter__(self) -> SimPort:
        return self

    def __exit__(self, *exc) -> None:
        self.close_port()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._files)} open files"
        return f"<SimPort {self.machine.spec!r} {state}>"

    # helpers for handlers ----------------------------------------------------------------------------
    def file_for_fd(self, fd: int) -> _File | None:
        """fget(fd) in this process: our files, or any other open descriptor."""
        with self._lock:
            f = self._files.get(fd)
        if f is not None:
            return f
        try:
            os.fstat(fd)
        except (OSError, OverflowError):
            return None
        return _ForeignFile(f"fd {fd}")


def _release_sim_mappings(maps: dict[int, int]) -> None:
    """Replace what is still mapped from simulated buffers (memfd "sim-*" pages) inside the
    ranges this port mapped by anonymous memory: the pages are freed, a stray CPU pointer
    reads zeros instead of crashing. Ranges the caller already unmapped, or reused for
    something else, are left alone (checked in /proc/self/maps)."""
    if not maps:
        return
    spans = sorted((a, a + n) for a, n in maps.items())
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or not parts[5].startswith("/memfd:sim-"):
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        for a, b in spans:
            start, end = max(lo, a), min(hi, b)
            if start < end:
                try:
                    _syscall.mmap(start, end - start, _PROT_RW, _MAP_PRIVATE | _MAP_ANONYMOUS
                                  | _MAP_FIXED | _MAP_NORESERVE, -1, 0)
                except OSError:
                    pass


# =============================================================================================
# ioctl handlers: handler(port, process, args (kernel struct), kbuf, usize) -> errno
# =============================================================================================

def _get_version(port, p, a, kbuf, usize):
    a.major_version = 1
    a.minor_version = port.machine.kfd_version[1]
    return 0


def _create_queue(port, p, a, kbuf, usize):
    """kfd_ioctl_create_queue: set_queue_properties_from_user (§2.6 rows 1-8), then the
    process (rows 9-20)."""
    pct = int(a.queue_percentage)
    if pct & 0xFF > int(lib.KFD_MAX_QUEUE_PERCENTAGE):          # row 1
        return E.EINVAL
    if a.queue_priority > int(lib.KFD_MAX_QUEUE_PRIORITY):      # row 2
        return E.EINVAL
    if a.ring_base_address and not access_ok(a.ring_base_address, 8):   # row 3
        return E.EFAULT
    size = int(a.ring_size)
    if size and size & (size - 1):                              # row 4
        return E.EINVAL
    if size < int(lib.KFD_MIN_QUEUE_RING_SIZE):                 # row 5: clamp (VERSION 2025)
        a.ring_size = size = int(lib.KFD_MIN_QUEUE_RING_SIZE)
    if not access_ok(a.read_pointer_address, 4) or \
            not access_ok(a.write_pointer_address, 4):           # row 6
        return E.EFAULT
    if a.eop_buffer_address and not access_ok(a.eop_buffer_address, 4):         # row 7
        return E.EFAULT
    if a.ctx_save_restore_address and not access_ok(a.ctx_save_restore_address, 4):
        return E.EFAULT
    qtype = int(a.queue_type)
    if qtype not in QUEUE_KINDS or (qtype == Q_SDMA_BY_ENG_ID
                                    and port.machine.kfd_version < (1, 17)):   # row 8
        return ENOTSUPP
    engine_id = int(a.sdma_engine_id) if hasattr(a, "sdma_engine_id") else 0
    props = QueueProps(
        queue_type=qtype, gpu_id=int(a.gpu_id), ring_base=int(a.ring_base_address),
        ring_size=size, rptr=int(a.read_pointer_address), wptr=int(a.write_pointer_address),
        percentage=pct & 0xFF, pm4_target_xcc=(pct >> 8) & 0xFF,
        priority=int(a.queue_priority), eop_address=int(a.eop_buffer_address),
        eop_size=int(a.eop_buffer_size) & 0xFFFF_FFFF,
        ctx_save_address=int(a.ctx_save_restore_address),
        ctx_save_size=int(a.ctx_save_restore_size), ctl_stack_size=int(a.ctl_stack_size),
        sdma_engine_id=engine_id)
    q = p.create_queue(props)
    a.queue_id = q.queue_id
    a.doorbell_offset = q.doorbell_offset
    return 0


def _destroy_queue(port, p, a, kbuf, usize):
    return p.destroy_queue(int(a.queue_id))


def _set_memory_policy(port, p, a, kbuf, usize):
    """kfd_ioctl_set_memory_policy: policies 0/1 (EINVAL), gpu (EINVAL), bind (ESRCH)."""
    ok = (int(lib.KFD_IOC_CACHE_POLICY_COHERENT), int(lib.KFD_IOC_CACHE_POLICY_NONCOHERENT))
    if a.default_policy not in ok or a.alternate_policy not in ok:
        return E.EINVAL
    with p.lock:
        pdd = p.pdd_by_id(int(a.gpu_id))
        if pdd is None:
            return E.EINVAL
        p.bind(pdd, E.ESRCH)
        pdd.default_policy, pdd.alternate_policy = int(a.default_policy), int(a.alternate_policy)
    return 0


def _get_clock_counters(port, p, a, kbuf, usize):
    """Never fails; unknown gpu_id -> gpu_clock_counter 0 (CHR)."""
    pdd = p.pdd_by_id(int(a.gpu_id))
    a.gpu_clock_counter = pdd.device.gpu_clock() if pdd is not None else 0
    a.cpu_clock_counter = time.clock_gettime_ns(_CLOCK_MONOTONIC_RAW)
    a.system_clock_counter = time.clock_gettime_ns(_CLOCK_BOOTTIME)
    a.system_clock_freq = 1_000_000_000
    return 0


def _fill_aperture(dst, pdd) -> None:
    dst.gpu_id = pdd.gpu_id
    dst.lds_base, dst.lds_limit = pdd.lds_base, pdd.lds_limit
    dst.scratch_base, dst.scratch_limit = pdd.scratch_base, pdd.scratch_limit
    dst.gpuvm_base, dst.gpuvm_limit = pdd.gpuvm_base, pdd.gpuvm_limit


def _get_process_apertures(port, p, a, kbuf, usize):
    """Old form: at most NUM_OF_SUPPORTED_GPUS (7) entries inside the struct."""
    a.num_of_nodes = 0
    for pdd in p.pdds[:7]:
        _fill_aperture(a.process_apertures[a.num_of_nodes], pdd)
        a.num_of_nodes += 1
    return 0


def _get_process_apertures_new(port, p, a, kbuf, usize):
    """num_of_nodes 0 -> count only; else min(n_pdds, num) entries copied (CHR)."""
    if a.num_of_nodes == 0:
        a.num_of_nodes = len(p.pdds)
        return 0
    n = min(len(p.pdds), int(a.num_of_nodes))
    if n * ffi.sizeof("struct kfd_process_device_apertures") > KMALLOC_MAX_SIZE:
        return E.ENOMEM
    arr = ffi.new("struct kfd_process_device_apertures[]", max(n, 1))
    for i in range(n):
        _fill_aperture(arr[i], p.pdds[i])
    a.num_of_nodes = n
    data = bytes(ffi.buffer(arr, n * ffi.sizeof("struct kfd_process_device_apertures")))
    if not write_user(int(a.kfd_process_device_apertures_ptr), data):
        return E.EFAULT
    return 0


def _update_queue(port, p, a, kbuf, usize):
    """kfd_ioctl_update_queue (§2.7)."""
    pct = int(a.queue_percentage)
    if pct & 0xFF > int(lib.KFD_MAX_QUEUE_PERCENTAGE):
        return E.EINVAL
    if a.queue_priority > int(lib.KFD_MAX_QUEUE_PRIORITY):
        return E.EINVAL
    if a.ring_base_address and not access_ok(a.ring_base_address, 8):
        return E.EFAULT
    size = int(a.ring_size)
    if size and size & (size - 1):
        return E.EINVAL
    if size < int(lib.KFD_MIN_QUEUE_RING_SIZE):       # clamped (not copied back: IOW)
        size = int(lib.KFD_MIN_QUEUE_RING_SIZE)
    p.update_queue(int(a.queue_id), int(a.ring_base_address), size, pct & 0xFF,
                   (pct >> 8) & 0xFF, int(a.queue_priority))
    return 0


def _create_event(port, p, a, kbuf, usize):
    """kfd_ioctl_create_event: an event page handle first (E1), then kfd_event_create."""
    if a.event_page_offset:
        p.kmap_event_page(int(a.event_page_offset))
    a.event_page_offset = 0
    ev = p.events.create(int(a.event_type), a.auto_reset != 0)
    if ev.type in (0, 5):                               # SIGNAL, DEBUG (E3)
        a.event_page_offset = KFD_MMAP_TYPE_EVENTS
        a.event_slot_index = ev.event_id
    a.event_id = ev.event_id
    a.event_trigger_data = ev.event_id                  # E5
    return 0


def _destroy_event(port, p, a, kbuf, usize):
    p.events.destroy(int(a.event_id))
    return 0


def _set_event(port, p, a, kbuf, usize):
    p.events.set(int(a.event_id))
    return 0


def _reset_event(port, p, a, kbuf, usize):
    p.events.reset(int(a.event_id))
    return 0


def _wait_events(port, p, a, kbuf, usize):
    """kfd_wait_on_events: blocks in the caller's thread without holding the process lock."""
    base = int(a.events_ptr)
    n = int(a.num_events)
    if n * EVENT_WAITER_SIZE > KMALLOC_MAX_SIZE:        # kcalloc of the waiters fails
        a.wait_result = int(lib.KFD_IOC_WAIT_RESULT_FAIL)
        return E.ENOMEM

    def read_entry(i):
        return read_user(base + i * EVENT_DATA_SIZE, EVENT_DATA_SIZE)

    def write_data(i, off, data):
        return write_user(base + i * EVENT_DATA_SIZE + off, data)

    out = p.events.wait(read_entry, write_data, n, a.wait_for_all != 0, int(a.timeout))
    a.wait_result = out.result
    a.timeout = out.timeout_ms
    if out.signal is not None:
        port.raise_after_ioctl(out.signal)
    return out.errno


def _set_scratch_backing_va(port, p, a, kbuf, usize):
    with p.lock:
        pdd = p.pdd_by_id(int(a.gpu_id))
        if pdd is None:
            return E.EINVAL
        p.bind(pdd, E.ENODEV)                           # PTR_ERR of the bind
        pdd.scratch_backing_va = int(a.va_addr)
    return 0


def _get_tile_config(port, p, a, kbuf, usize):
    """amdgpu_amdkfd_get_tile_config: 32 tile modes, 16 macro modes, all 0 on GFX9+."""
    pdd = p.pdd_by_id(int(a.gpu_id))
    if pdd is None:
        return E.EINVAL
    a.gb_addr_config = 0       # NOT SOURCED: GB_ADDR_CONFIG value of the part
    a.num_banks = 0
    a.num_ranks = 0
    if a.num_tile_configs > 32:
        a.num_tile_configs = 32
    if not write_user(int(a.tile_config_ptr), bytes(4 * a.num_tile_configs)):
        a.num_tile_configs = 0
        return E.EFAULT
    if a.num_macro_tile_configs > 16:
        a.num_macro_tile_configs = 16
    if not write_user(int(a.macro_tile_config_ptr), bytes(4 * a.num_macro_tile_configs)):
        a.num_macro_tile_configs = 0
        return E.EFAULT
    return 0


def _set_trap_handler(port, p, a, kbuf, usize):
    with p.lock:
        pdd = p.pdd_by_id(int(a.gpu_id))
        if pdd is None:
            return E.EINVAL
        p.bind(pdd, E.ESRCH)
        pdd.tba_addr, pdd.tma_addr = int(a.tba_addr), int(a.tma_addr)
    return 0


def _acquire_vm(port, p, a, kbuf, usize):
    p.acquire_vm(port.file_for_fd(int(a.drm_fd)), int(a.gpu_id))
    return 0


def _alloc_memory(port, p, a, kbuf, usize):
    with p.lock:
        bo = p.memory.alloc(gpu_id=int(a.gpu_id), va=int(a.va_addr), size=int(a.size),
                            flags=int(a.flags), mmap_offset=int(a.mmap_offset))
    a.handle = bo.handle
    if bo.kind == "mmio":       # MMIO is mapped through /dev/kfd (CHR)
        a.mmap_offset = KFD_MMAP_TYPE_MMIO | (bo.gpu_id << KFD_MMAP_GPU_ID_SHIFT)
    else:
        a.mmap_offset = bo.drm_offset
    return 0


def _free_memory(port, p, a, kbuf, usize):
    with p.lock:
        p.memory.free(int(a.handle))
    return 0


def _device_ids(a) -> list[int] | int:
    """Rows 1-3 of MAP/UNMAP: n_devices, n_success, and the copy of the id array."""
    n = int(a.n_devices)
    if n == 0:
        return E.EINVAL
    if a.n_success > n:
        return E.EINVAL
    if n * 4 > KMALLOC_MAX_SIZE:
        return E.ENOMEM
    raw = read_user(int(a.device_ids_array_ptr), 4 * n)
    if raw is None:
        return E.EFAULT
    return list(struct.unpack(f"<{n}I", raw))


def _map_loop(a, per_device) -> int:
    """MAP/UNMAP: rows 1-3, then the per-device loop; n_success is written back even when the
    loop fails part-way (the struct is IOWR, 2.0)."""
    ids = _device_ids(a)
    if isinstance(ids, int):
        return ids
    state = {"n_success": int(a.n_success)}
    try:
        per_device(int(a.handle), ids, state)
    finally:
        a.n_success = state["n_success"]
    return 0


def _map_memory(port, p, a, kbuf, usize):
    with p.lock:
        return _map_loop(a, p.memory.map)


def _unmap_memory(port, p, a, kbuf, usize):
    with p.lock:
        return _map_loop(a, p.memory.unmap)


def _set_cu_mask(port, p, a, kbuf, usize):
    """kfd_ioctl_set_cu_mask: multiple of 32, non-zero, truncated at 1024 bits, EFAULT."""
    count = int(a.num_cu_mask)
    if count % 32:
        return E.EINVAL
    if count == 0:
        return E.EINVAL
    count = min(count, 1024)
    raw = read_user(int(a.cu_mask_ptr), count // 8)
    if raw is None:
        return E.EFAULT
    words = list(struct.unpack(f"<{count // 32}I", raw))
    p.set_cu_mask(int(a.queue_id), words, count)
    return 0


def _get_queue_wave_state(port, p, a, kbuf, usize):
    """The used sizes only: on GFX8-11 the MQD manager copies nothing to ctl_stack_address
    (the control stack is inside the context-save area, already visible to user mode)."""
    ctl_used, save_used = p.get_wave_state(int(a.queue_id))
    a.ctl_stack_used_size = ctl_used
    a.save_area_used_size = save_used
    return 0


def _alloc_queue_gws(port, p, a, kbuf, usize):
    p.alloc_queue_gws(int(a.queue_id), int(a.num_gws))
    a.first_gws = 0
    return 0


def _smi_events(port, p, a, kbuf, usize):
    """An SMI event fd: a real non-blocking eventfd on which no event ever arrives
    (the simulator generates no SMI events; reads give EAGAIN)."""
    if p.pdd_by_id(int(a.gpuid)) is None:
        return E.EINVAL
    a.anon_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    return 0


def _svm(port, p, a, kbuf, usize):
    """kfd_ioctl_svm: page-aligned non-zero start/size (EINVAL), then svm_ioctl."""
    start, size = int(a.start_addr), int(a.size)
    if start & (PAGE_SIZE - 1) or size & (PAGE_SIZE - 1):
        return E.EINVAL
    if not start or not size:
        return E.EINVAL
    n = int(a.nattr)
    hdr = ffi.sizeof("struct kfd_ioctl_svm_args")
    if hdr + 8 * n > usize:
        # The attributes follow the header; libhsakmt adds their size to the request. Fewer
        # bytes than nattr needs would make the kernel read past its copy (simulator: EINVAL).
        return E.EINVAL
    attrs = [struct.unpack_from("<II", kbuf, hdr + 8 * i) for i in range(n)]
    out = p.svm(int(a.op), start, size, attrs)
    for i, (t, v) in enumerate(out):
        struct.pack_into("<II", kbuf, hdr + 8 * i, t, v)
    return 0


def _set_xnack_mode(port, p, a, kbuf, usize):
    a.xnack_enabled = p.set_xnack(int(a.xnack_enabled))
    return 0


def _available_memory(port, p, a, kbuf, usize):
    pdd = p.pdd_by_id(int(a.gpu_id))
    if pdd is None:
        return E.EINVAL
    a.available = pdd.device.available_memory()
    return 0


def _runtime_enable(port, p, a, kbuf, usize):
    mode = int(a.mode_mask)
    p.runtime_enable(bool(mode & int(lib.KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK)), int(a.r_debug),
                     bool(mode & int(lib.KFD_RUNTIME_ENABLE_MODE_TTMP_SAVE_MASK)))
    return 0


_HANDLERS = {
    "GET_VERSION": _get_version,
    "CREATE_QUEUE": _create_queue,
    "DESTROY_QUEUE": _destroy_queue,
    "SET_MEMORY_POLICY": _set_memory_policy,
    "GET_CLOCK_COUNTERS": _get_clock_counters,
    "GET_PROCESS_APERTURES": _get_process_apertures,
    "UPDATE_QUEUE": _update_queue,
    "CREATE_EVENT": _create_event,
    "DESTROY_EVENT": _destroy_event,
    "SET_EVENT": _set_event,
    "RESET_EVENT": _reset_event,
    "WAIT_EVENTS": _wait_events,
    "SET_SCRATCH_BACKING_VA": _set_scratch_backing_va,
    "GET_TILE_CONFIG": _get_tile_config,
    "SET_TRAP_HANDLER": _set_trap_handler,
    "GET_PROCESS_APERTURES_NEW": _get_process_apertures_new,
    "ACQUIRE_VM": _acquire_vm,
    "ALLOC_MEMORY_OF_GPU": _alloc_memory,
    "FREE_MEMORY_OF_GPU": _free_memory,
    "MAP_MEMORY_TO_GPU": _map_memory,
    "UNMAP_MEMORY_FROM_GPU": _unmap_memory,
    "SET_CU_MASK": _set_cu_mask,
    "GET_QUEUE_WAVE_STATE": _get_queue_wave_state,
    "ALLOC_QUEUE_GWS": _alloc_queue_gws,
    "SMI_EVENTS": _smi_events,
    "SVM": _svm,
    "SET_XNACK_MODE": _set_xnack_mode,
    "AVAILABLE_MEMORY": _available_memory,
    "RUNTIME_ENABLE": _runtime_enable,
}

_CREATE_QUEUE_NR = IOCTLS["CREATE_QUEUE"].nr
# nr -> (spec, kernel struct type, handler). The kernel of KFD 1.17 knows CREATE_QUEUE with
# sdma_engine_id (96 bytes); every other struct is the header's.
_TABLE = {
    spec.nr: (spec, "struct amdgpu_kfd_create_queue_args_v17" if name == "CREATE_QUEUE"
              else spec.struct, _HANDLERS[name])
    for name, spec in IOCTLS.items()
}
_DEPRECATED = frozenset(range(0x0D, 0x11))   # DBG_REGISTER .. DBG_WAVE_CONTROL (CHR: EPERM)
_COMMAND_END = 0x27                          # AMDKFD_COMMAND_END of the 1.17 UAPI (DBG_TRAP 0x26)
