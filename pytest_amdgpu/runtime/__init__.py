"""The runtime: devices, buffers, queues, signals, events and kernels over a KFD Port.

The same code runs on the real driver (LinuxPort) and on the simulator (SimPort): it talks only
to the typed KFD wrappers and the Port, and never imports the simulator (the backend registry
makes the port)::

    from pytest_amdgpu.runtime import open_device

    with open_device("sim", target="gfx942") as dev:
        buf = dev.alloc(4096, "gtt")
        q = dev.create_queue("pm4")
        sig = dev.create_signal(0)
        q.write_data(buf.gpu_address, [1, 2, 3])
        q.signal(sig, 1)
        sig.wait(1, timeout=5)
        assert list(buf.view("u4", 3)) == [1, 2, 3]

``Kernel`` (code-object loading and dispatch) lives in `pytest_amdgpu.runtime.kernel` and is
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._util import get_default_timeout, set_default_timeout
from .device import Device, LiveObject, open_device, open_devices
from .event import Event
from .memory import Buffer
from .process import EVENT_TYPES, GPUException, Process
from .queue import AQLQueue, Completion, PM4Queue, Queue, SDMAQueue
from .signal import Signal

__all__ = [
    "AQLQueue", "Buffer", "Completion", "Device", "EVENT_TYPES", "Event", "GPUException",
    "Kernel",
    "LiveObject", "PM4Queue", "Process", "Queue", "SDMAQueue", "Signal", "get_default_timeout",
    "open_device", "open_devices", "set_default_timeout",
]


def __getattr__(name: str) -> Any:
    if name == "Kernel":
        return importlib.import_module(".kernel", __name__).Kernel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
