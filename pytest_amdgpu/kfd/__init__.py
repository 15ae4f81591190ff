"""Typed, direct-ioctl access to the KFD driver (/dev/kfd) through a Port.

`KFD` wraps the compute-path ioctls (struct layouts compiled from <linux/kfd_ioctl.h>),
`read_topology` parses the sysfs topology, `LinuxPort` makes the real system calls. Nothing
here imports the simulator.
"""

from .errors import (
    KFDAddressInUse,
    KFDBadAddress,
    KFDBadFile,
    KFDBusy,
    KFDError,
    KFDInterrupted,
    KFDInvalidArgument,
    KFDIOError,
    KFDNoDevice,
    KFDNoProcess,
    KFDNoSpace,
    KFDNotSupported,
    KFDOutOfMemory,
    KFDPermissionDenied,
    KFDTimedOut,
    KFDVersionError,
    kfd_error,
)
from .ioctl import (
    KFD,
    Allocation,
    Apertures,
    ClockCounters,
    EventData,
    EventInfo,
    HWExceptionData,
    KFDVersion,
    MemoryExceptionData,
    PreparedIoctl,
    QueueInfo,
    SVMAttribute,
    WaitResult,
    WaveState,
)
from .port import KFD_PATH, TOPOLOGY_PATH, LinuxPort, Port, PortCall
from .topology import Node, Topology, read_topology

__all__ = [
    "KFD", "KFD_PATH", "TOPOLOGY_PATH", "Allocation", "Apertures", "ClockCounters", "EventData",
    "EventInfo", "HWExceptionData", "KFDAddressInUse", "KFDBadAddress", "KFDBadFile", "KFDBusy",
    "KFDError", "KFDIOError", "KFDInterrupted", "KFDInvalidArgument", "KFDNoDevice",
    "KFDNoProcess", "KFDNoSpace", "KFDNotSupported", "KFDOutOfMemory", "KFDPermissionDenied",
    "KFDTimedOut", "KFDVersion", "KFDVersionError", "LinuxPort", "MemoryExceptionData", "Node",
    "Port", "PortCall", "PreparedIoctl", "QueueInfo", "SVMAttribute", "Topology", "WaitResult",
    "WaveState", "kfd_error", "read_topology",
]
