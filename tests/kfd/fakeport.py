"""A scripted Port for the KFD wrapper tests: answers GET_VERSION with a chosen version and
lets a test script other requests by their request number, reading and writing the argument
struct as raw bytes (offsets from the UAPI header, not from our cffi module)."""

from __future__ import annotations

import struct
from collections.abc import Callable

from pytest_amdgpu.kfd.abi import ffi
from pytest_amdgpu.kfd.port import Port

# _IOR('K', 0x01, struct kfd_ioctl_get_version_args /* 8 bytes */): dir 2<<30 | size<<16 |
# 'K'<<8 | nr  (include/uapi/asm-generic/ioctl.h); value also in toolchain.md.
GET_VERSION = 0x80084B01


def raw(addr: int, size: int) -> memoryview:
    """Writable bytes of user memory at `addr` (what copy_from_user / copy_to_user touch)."""
    return memoryview(ffi.buffer(ffi.cast("char *", addr), size))


class FakeKFDPort(Port):
    name = "fake"

    def __init__(self, version: tuple[int, int] = (1, 17)) -> None:
        super().__init__()
        self.version = version
        self.requests: list[int] = []
        self.handlers: dict[int, Callable[[int], int]] = {}
        self.closed: list[int] = []

    def _open(self, path: str, flags: int) -> int:
        return 1000

    def _close(self, fd: int) -> None:
        self.closed.append(fd)

    def _ioctl(self, fd: int, request: int, arg: int) -> int:
        self.requests.append(request)
        if request == GET_VERSION:
            struct.pack_into("<II", raw(arg, 8), 0, *self.version)
            return 0
        handler = self.handlers.get(request)
        return handler(arg) if handler else 0
