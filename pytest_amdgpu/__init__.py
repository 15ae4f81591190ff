"""pytest_amdgpu: hardware-in-the-loop testing of AMD GPUs through /dev/kfd.

Importing this package touches no device. The public API is loaded lazily:
`open_device`, `open_devices`, `Device`, `Buffer`, `Queue`, `Signal`, `Event`, `Kernel`, and the
errors in `pytest_amdgpu.errors`.
"""

from __future__ import annotations

import importlib

from .errors import (
    AmdgpuError,
    BackendUnavailable,
    CodeObjectError,
    GPUError,
    GPUFaultError,
    GPUTimeoutError,
    HWExceptionError,
    LeakError,
    PacketError,
    TopologyError,
    UsageError,
)

__version__ = "0.1.0"

_LAZY = {
    "open_device": "pytest_amdgpu.runtime",
    "open_devices": "pytest_amdgpu.runtime",
    "Device": "pytest_amdgpu.runtime",
    "Buffer": "pytest_amdgpu.runtime",
    "Queue": "pytest_amdgpu.runtime",
    "Signal": "pytest_amdgpu.runtime",
    "Event": "pytest_amdgpu.runtime",
    "Kernel": "pytest_amdgpu.runtime",
    "KFDError": "pytest_amdgpu.kfd.errors",
}

__all__ = [
    "AmdgpuError", "BackendUnavailable", "Buffer", "CodeObjectError", "Device", "Event",
    "GPUError", "GPUFaultError", "GPUTimeoutError", "HWExceptionError", "KFDError", "Kernel",
    "LeakError", "PacketError", "Queue", "Signal", "TopologyError", "UsageError", "open_device",
    "open_devices",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_amdgpu' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
