"""The exception hierarchy of pytest_amdgpu.

Every error names what failed (ioctl, packet, argument, instruction) and, where we can tell,
the likely fix. Layers raise the most specific class; tests catch the base they care about.
"""

from __future__ import annotations


class AmdgpuError(Exception):
    """Base of every error raised by pytest_amdgpu."""


class BackendUnavailable(AmdgpuError):
    """The requested backend cannot be used here (no /dev/kfd, unknown name, …)."""


class UsageError(AmdgpuError, ValueError):
    """A caller passed an argument the API does not accept; the message names it."""


class TopologyError(AmdgpuError):
    """The KFD topology in sysfs is missing or malformed; the message names the file."""


class CodeObjectError(AmdgpuError):
    """A code object cannot be loaded (wrong target, malformed ELF or metadata, …)."""


class PacketError(AmdgpuError, ValueError):
    """A packet cannot be built or decoded; the message names the packet and field."""


class GPUError(AmdgpuError):
    """Something the GPU reported: a fault, an exception, a hang."""


class GPUTimeoutError(GPUError, TimeoutError):
    """A wait on the GPU passed its deadline. Carries the queue state and its decoded ring."""

    def __init__(self, message: str, *, queue=None, details: str = "") -> None:
        super().__init__(message + (("\n" + details) if details else ""))
        self.queue = queue
        self.details = details


class GPUFaultError(GPUError):
    """A memory exception (VM fault) hit the process: address, reason, GPU."""

    def __init__(self, message: str, *, address: int | None = None, gpu_id: int | None = None,
                 reason: str = "") -> None:
        super().__init__(message)
        self.address = address
        self.gpu_id = gpu_id
        self.reason = reason


class HWExceptionError(GPUError):
    """A hardware exception: bad packet, illegal instruction, trap, queue reset."""


class LeakError(AmdgpuError):
    """Objects were still alive when their owner closed; the message lists them."""
