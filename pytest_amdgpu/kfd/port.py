"""The Port: the only way the KFD layer and the topology reader reach the operating system.

A Port offers open, close, ioctl, mmap, munmap, sysfs read/list and one memory operation, the
doorbell store. `LinuxPort` makes real system calls; the simulator's `SimPort` answers the very
same calls. Every call can be recorded (name, arguments, result, errno, duration) so a failing
test can show the ioctl history.

Calling convention: ``port.ioctl(fd, request, arg_addr)`` takes the argument struct's address
as an int and returns 0 or the positive errno; it never raises for a failed request.
``port.ioctl_checked(fd, request, arg_addr, on_error)`` calls ``on_error(errno)`` instead of
returning it, which lets the hot path stay in C on LinuxPort.
"""

from __future__ import annotations

import collections
import errno as _errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import _syscall
from .abi import BY_NR, CREATE_QUEUE_V17, ffi, ioc_nr, ioc_size, ioc_type, struct_to_dict

KFD_PATH = "/dev/kfd"
TOPOLOGY_PATH = "/sys/devices/virtual/kfd/kfd/topology"
_KFD_IOC_TYPE = ord("K")


@dataclass
class PortCall:
    """One recorded port call."""

    op: str                       # "ioctl", "mmap", "open", …
    name: str                     # ioctl name, or the op again
    args: dict = field(default_factory=dict)
    result: object = None
    errno: int = 0
    duration_us: float = 0.0
    out: dict | None = None       # ioctl struct after the call

    def format(self) -> str:
        from .errors import errno_name

        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.args.items())
        status = "ok" if self.errno == 0 else errno_name(self.errno)
        text = f"{self.op:6s} {self.name}({shown}) -> {status} [{self.duration_us:.1f} us]"
        if self.out:
            changed = {k: v for k, v in self.out.items() if self.args.get(k) != v}
            if changed:
                text += " out: " + ", ".join(f"{k}={_short(v)}" for k, v in changed.items())
        return text


def _short(v) -> str:
    if isinstance(v, int):
        return hex(v) if v > 0xFFFF else str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_short(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_short(x) for x in v[:8]) + (", …]" if len(v) > 8 else "]")
    return repr(v)


class Port:
    """Base of all ports; subclasses implement the underscored methods."""

    name = "port"

    def __init__(self, *, record: bool = False, trace_len: int = 512) -> None:
        self.trace: collections.deque[PortCall] = collections.deque(maxlen=trace_len)
        self.recording = False
        self.ioctl: Callable[[int, int, int], int] = self._ioctl
        self.ioctl_checked: Callable[[int, int, int, Callable[[int], object]], object] = (
            self._ioctl_checked
        )
        if record:
            self.start_recording()

    # -- to implement -----------------------------------------------------------------------
    def _ioctl(self, fd: int, request: int, arg: int) -> int:
        raise NotImplementedError

    def _ioctl_checked(self, fd: int, request: int, arg: int, on_error: Callable[[int], object]):
        err = self._ioctl(fd, request, arg)
        if err:
            return on_error(err)
        return None

    def _open(self, path: str, flags: int) -> int:
        raise NotImplementedError

    def _close(self, fd: int) -> None:
        raise NotImplementedError

    def _mmap(self, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
        raise NotImplementedError

    def _munmap(self, addr: int, length: int) -> None:
        raise NotImplementedError

    def _read_sysfs(self, path: str) -> str:
        raise NotImplementedError

    def _list_sysfs(self, path: str) -> list[str]:
        raise NotImplementedError

    def _doorbell(self, addr: int, value: int) -> None:
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------------
    def open(self, path: str, flags: int = os.O_RDWR | os.O_CLOEXEC) -> int:
        """Open a device file; raises OSError."""
        return self._traced("open", path, {"path": path, "flags": flags}, self._open, path, flags)

    def close(self, fd: int) -> None:
        self._traced("close", "close", {"fd": fd}, self._close, fd)

    def mmap(self, addr: int, length: int, prot: int, flags: int, fd: int = -1,
             offset: int = 0) -> int:
        """Map memory; returns the address, raises OSError."""
        return self._traced(
            "mmap", "mmap",
            {"addr": addr, "length": length, "prot": prot, "flags": flags, "fd": fd,
             "offset": offset},
            self._mmap, addr, length, prot, flags, fd, offset,
        )

    def munmap(self, addr: int, length: int) -> None:
        self._traced("munmap", "munmap", {"addr": addr, "length": length}, self._munmap, addr,
                     length)

    def read_sysfs(self, path: str) -> str:
        """Contents of a sysfs file; raises OSError (FileNotFoundError, PermissionError)."""
        return self._read_sysfs(path)

    def list_sysfs(self, path: str) -> list[str]:
        """Names in a sysfs directory; raises OSError."""
        return self._list_sysfs(path)

    def doorbell(self, addr: int, value: int) -> None:
        """Ring a doorbell: a 64-bit store of `value` to the mapped doorbell at `addr`."""
        if self.recording:
            self._traced("mmio", "doorbell", {"addr": addr, "value": value}, self._doorbell,
                         addr, value)
        else:
            self._doorbell(addr, value)

    # -- recording ---------------------------------------------------------------------------
    def start_recording(self) -> None:
        self.recording = True
        self.ioctl = self._recorded_ioctl
        self.ioctl_checked = self._recorded_ioctl_checked

    def stop_recording(self) -> None:
        self.recording = False
        self.ioctl = self._ioctl
        self.ioctl_checked = self._ioctl_checked

    def format_trace(self, last: int = 20) -> str:
        calls = list(self.trace)[-last:]
        return "\n".join(c.format() for c in calls) if calls else "(no port calls recorded)"

    def _recorded_ioctl(self, fd: int, request: int, arg: int) -> int:
        name, ctype = _describe(request)
        before = _snapshot(ctype, arg)
        t0 = time.perf_counter()
        err = self._ioctl(fd, request, arg)
        dt = (time.perf_counter() - t0) * 1e6
        self.trace.append(PortCall("ioctl", name, before, None, err, dt, _snapshot(ctype, arg)))
        return err

    def _recorded_ioctl_checked(self, fd: int, request: int, arg: int,
                                on_error: Callable[[int], object]):
        err = self._recorded_ioctl(fd, request, arg)
        if err:
            return on_error(err)
        return None

    def _traced(self, op: str, name: str, args: dict, fn, *a):
        if not self.recording:
            return fn(*a)
        t0 = time.perf_counter()
        try:
            result = fn(*a)
        except OSError as exc:
            dt = (time.perf_counter() - t0) * 1e6
            self.trace.append(PortCall(op, name, args, None, exc.errno or 0, dt))
            raise
        dt = (time.perf_counter() - t0) * 1e6
        self.trace.append(PortCall(op, name, args, result, 0, dt))
        return result

    def close_port(self) -> None:
        """Release everything the port holds (the simulated process ends here)."""


def _describe(request: int) -> tuple[str, str | None]:
    """The ioctl's name and the struct to snapshot for the trace (None: the address only)."""
    if ioc_type(request) == _KFD_IOC_TYPE:
        spec = BY_NR.get(ioc_nr(request))
        if spec is not None:
            size = ioc_size(request)
            if spec.nr == CREATE_QUEUE_V17.nr and size == CREATE_QUEUE_V17.size:
                return spec.name, CREATE_QUEUE_V17.struct
            if size >= ffi.sizeof(spec.struct):   # SVM: its attributes follow the struct
                return spec.name, spec.struct
            return spec.name, None
        return f"KFD_IOC_{ioc_nr(request):#04x}", None
    return f"ioctl {request:#x}", None


def _snapshot(ctype: str | None, arg: int) -> dict:
    if ctype is None or arg == 0:
        return {"arg": arg}
    try:
        return struct_to_dict(ctype, ffi.cast(ctype + " *", arg)[0])
    except Exception:  # an unreadable user pointer must not break the trace
        return {"arg": arg}


class LinuxPort(Port):
    """Real system calls on this machine."""

    name = "kfd"

    def __init__(self, *, root: str = "", record: bool = False, trace_len: int = 512) -> None:
        self.root = root  # prefix for sysfs paths, for tests that build a fake tree
        super().__init__(record=record, trace_len=trace_len)
        self._ioctl = _syscall.ioctl  # type: ignore[method-assign]
        self._ioctl_checked = _syscall.ioctl_checked  # type: ignore[method-assign]
        if not self.recording:
            self.ioctl = self._ioctl
            self.ioctl_checked = self._ioctl_checked

    def _open(self, path: str, flags: int) -> int:
        return os.open(path, flags)

    def _close(self, fd: int) -> None:
        os.close(fd)

    def _mmap(self, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
        return _syscall.mmap(addr, length, prot, flags, fd, offset)

    def _munmap(self, addr: int, length: int) -> None:
        _syscall.munmap(addr, length)

    def _read_sysfs(self, path: str) -> str:
        with open(self.root + path, encoding="ascii", errors="replace") as f:
            return f.read()

    def _list_sysfs(self, path: str) -> list[str]:
        return sorted(os.listdir(self.root + path))

    def _doorbell(self, addr: int, value: int) -> None:
        _syscall.store64(addr, value)

    def kfd_usable(self) -> tuple[bool, str]:
        """Whether /dev/kfd can be opened here, and if not, why."""
        try:
            fd = os.open(KFD_PATH, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False, f"{KFD_PATH} does not exist (no amdgpu driver with KFD loaded)"
        except PermissionError:
            return False, (f"{KFD_PATH} is not accessible: add the user to the 'render' and "
                           "'video' groups")
        except OSError as exc:
            return False, f"{KFD_PATH} cannot be opened: {_errno.errorcode.get(exc.errno, exc)}"
        os.close(fd)
        return True, f"{KFD_PATH} is usable"
