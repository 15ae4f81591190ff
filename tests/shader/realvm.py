"""The simulated driver's real GPUVM (pytest_amdgpu.sim.memory), with the test double's helpers.

Buffer objects are created directly (no ioctls): a memfd backing, a BufferObject, a Mapping
inserted into a GPUVM. Used to run the shader-core tests against the VM the engines use.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from pytest_amdgpu.sim import memory as M


class RealVM(M.GPUVM):
    def __init__(self) -> None:
        self.write_notifications = 0
        dev = SimpleNamespace(gpu_id=0x1234)

        def on_write() -> None:
            self.write_notifications += 1
        super().__init__(None, dev, on_write)
        self._dev = dev
        self._next = 0x7F00_0000_0000
        self._idr = 0
        self._bos: list = []

    def map(self, size: int, *, base: int | None = None, writable: bool = True, executable: bool = False,
            align: int = 0x10000):
        size = M.page_align(max(size, 4))
        if base is None:
            base = (self._next + align - 1) & ~(align - 1)
            self._next = base + size + 0x10000          # an unmapped gap after every buffer object
        flags = (M.F_WRITABLE if writable else 0) | (M.F_EXECUTABLE if executable else 0) | M.F_VRAM
        self._idr += 1
        bo = M.BufferObject(process=None, device=self._dev, idr=self._idr, size=size, bo_size=size, va=base,
                            flags=flags, kind="vram", backing=M.Backing(size, name="test"))
        m = M.Mapping(bo)
        self.insert(m)
        self._bos.append(bo)
        return m

    def alloc(self, data, *, writable: bool = True, executable: bool = False) -> int:
        raw = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else \
            np.ascontiguousarray(data).view(np.uint8).reshape(-1)
        m = self.map(max(raw.size, 4), writable=writable, executable=executable)
        m.array[:raw.size] = raw
        return m.start

    def close(self) -> None:
        for bo in self._bos:
            bo.backing.close()
