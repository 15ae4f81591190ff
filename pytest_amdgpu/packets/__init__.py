"""PM4, SDMA and AQL packets: one source of truth to build and to parse.

- :mod:`pytest_amdgpu.packets.pm4`: PM4 type-3 packets of the compute command processor.
- :mod:`pytest_amdgpu.packets.sdma`: SDMA 4.4 / 6.0 packets.
- :mod:`pytest_amdgpu.packets.aql`: AQL packets, ``amd_signal_t`` / ``amd_queue_t`` layouts.

Each packet kind is a frozen dataclass with ``encode(target)``; each module has
``decode(data, offset, target) -> (packet, length)`` raising :class:`PacketDecodeError`, and
``format_stream(...)`` rendering a ring window like a debugger's ring dump.
"""

from . import aql, pm4, sdma
from .common import PacketDecodeError, StructLayout

__all__ = ["PacketDecodeError", "StructLayout", "aql", "pm4", "sdma"]
