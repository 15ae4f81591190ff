"""Helpers of the simulated-driver tests: drive a SimPort only through the Port interface.

`Env` is one simulated OS process used the way the real layer uses the kernel: the typed KFD
wrappers (kfd/ioctl.py) or raw `port.ioctl` with cffi structs, mmap through the port, sysfs
through the port. The only back door is `env.process` (read-only introspection of the driver's
tables) for leak and invariant checks. `StubEngine` replaces the GPU engine where a test wants
to see what the driver asked of the hardware without executing anything.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from pytest_amdgpu.kfd import KFD
from pytest_amdgpu.kfd.abi import address_of, ffi, lib
from pytest_amdgpu.kfd.port import TOPOLOGY_PATH
from pytest_amdgpu.sim.port import SimPort
from pytest_amdgpu.targets import target_name_from_version

VRAM = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_VRAM) & 0xFFFF_FFFF)
GTT = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_GTT) & 0xFFFF_FFFF)
USERPTR = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_USERPTR) & 0xFFFF_FFFF)
DOORBELL = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL) & 0xFFFF_FFFF)
MMIO = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP) & 0xFFFF_FFFF)
WRITABLE = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE) & 0xFFFF_FFFF)
EXECUTABLE = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE) & 0xFFFF_FFFF)
PUBLIC = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC) & 0xFFFF_FFFF)
AQL_MEM = (int(lib.KFD_IOC_ALLOC_MEM_FLAGS_AQL_QUEUE_MEM) & 0xFFFF_FFFF)
Q_PM4 = int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE)
Q_SDMA = int(lib.KFD_IOC_QUEUE_TYPE_SDMA)
Q_AQL = int(lib.KFD_IOC_QUEUE_TYPE_COMPUTE_AQL)
Q_XGMI = int(lib.KFD_IOC_QUEUE_TYPE_SDMA_XGMI)
Q_ENG = int(lib.KFD_IOC_QUEUE_TYPE_SDMA_BY_ENG_ID)
PROT_RW = int(lib.PROT_READ | lib.PROT_WRITE)
PAGE = 4096

# Context-save / control-stack / EOP sizes per target: facts-kfd.md §5 "Worked values"
# (DERIVED there from kfd_queue.c and the §6 properties), typed here independently of
# targets.queue_sizes so the simulator is checked against the sheet, not against itself.
SHEET_SIZES = {
    "gfx90a": dict(ctl_stack=0x9000, cwsr=0x400F000, ctx_bo=0x402F000, eop=4096),
    "gfx942": dict(ctl_stack=0x3000, cwsr=0x1621000, ctx_bo=0xB167000, eop=4096),
    "gfx1100": dict(ctl_stack=0xA000, cwsr=0x2BEA000, ctx_bo=0x2C02000, eop=4096),
}


class StubEngine:
    """Stands in for sim.gpu.GPUEngine: records the driver's calls, runs nothing."""

    _ticks = itertools.count(1000)

    def __init__(self, device) -> None:
        self.device = device
        self.calls: list[tuple[str, object]] = []
        self.queues: list = []
        self.hung: set[int] = set()        # queue ids whose remove_queue reports busy

    def add_queue(self, q) -> None:
        self.calls.append(("add", q))
        self.queues.append(q)

    def remove_queue(self, q) -> bool:
        self.calls.append(("remove", q))
        if q in self.queues:
            self.queues.remove(q)
        return q.queue_id not in self.hung

    def queue_changed(self, q) -> None:
        self.calls.append(("changed", q))

    def notify(self, q) -> None:
        self.calls.append(("notify", q))

    def evict(self, process) -> None:
        self.calls.append(("evict", process))

    def clock(self) -> int:
        return next(self._ticks)

    def memory_written(self) -> None:
        pass

    def shutdown(self) -> None:
        self.calls.append(("shutdown", None))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


@dataclass
class GPUNode:
    index: int
    gpu_id: int
    drm_render_minor: int
    target_name: str
    properties: dict


def read_gpus(port) -> list[GPUNode]:
    """The GPU nodes of the sysfs topology, read through the port (node properties and
    gpu_id only: the full reader, kfd.read_topology, also parses every cache file)."""
    out = []
    for name in sorted(port.list_sysfs(f"{TOPOLOGY_PATH}/nodes"), key=int):
        base = f"{TOPOLOGY_PATH}/nodes/{name}"
        gpu_id = int(port.read_sysfs(f"{base}/gpu_id"))
        if not gpu_id:
            continue
        props = {}
        for line in port.read_sysfs(f"{base}/properties").splitlines():
            k, v = line.split()
            props[k] = int(v)
        out.append(GPUNode(int(name), gpu_id, props["drm_render_minor"],
                           target_name_from_version(props["gfx_target_version"]), props))
    return out


@dataclass
class Buf:
    handle: int
    va: int
    size: int
    gpu_id: int
    cpu: int = 0
    mmap_offset: int = 0


class Env:
    """One simulated process: port, KFD wrapper, topology, render fds."""

    def __init__(self, port: SimPort) -> None:
        self.port = port
        self.kfd = KFD(port)
        self.gpus = read_gpus(port)
        self.render: dict[int, int] = {}

    @property
    def process(self):
        return self.port.process

    def gpu_id(self, i: int = 0) -> int:
        return self.gpus[i].gpu_id

    def node(self, i: int = 0):
        return self.gpus[i]

    def open_render(self, i: int = 0) -> int:
        return self.port.open(f"/dev/dri/renderD{self.gpus[i].drm_render_minor}")

    def acquire(self, i: int = 0) -> int:
        gid = self.gpu_id(i)
        if gid not in self.render:
            fd = self.open_render(i)
            self.kfd.acquire_vm(drm_fd=fd, gpu_id=gid)
            self.render[gid] = fd
        return gid

    def reserve_va(self, size: int) -> int:
        """A free CPU address range (PROT_NONE), as the runtime reserves one for CPU==GPU VA."""
        return self.port.mmap(0, size, int(lib.PROT_NONE),
                              int(lib.MAP_PRIVATE | lib.MAP_ANONYMOUS | lib.MAP_NORESERVE), -1, 0)

    def alloc(self, size: int, flags: int = VRAM | WRITABLE, *, gpu: int = 0,
              va: int | None = None, map: bool = True, cpu: bool = False,
              mmap_offset: int = 0) -> Buf:
        gid = self.acquire(gpu)
        span = (size + PAGE - 1) // PAGE * PAGE
        if va is None:
            va = self.reserve_va(span)
        a = self.kfd.alloc_memory(gpu_id=gid, size=size, flags=flags, va_addr=va,
                                  mmap_offset=mmap_offset)
        b = Buf(a.handle, va, size, gid, mmap_offset=a.mmap_offset)
        if map:
            self.kfd.map_memory(handle=a.handle, gpu_ids=[gid])
        if cpu:
            b.cpu = self.port.mmap(va, span, PROT_RW, int(lib.MAP_SHARED | lib.MAP_FIXED),
                                   self.render[gid], a.mmap_offset)
        return b

    def queue_buffers(self, kind: int, *, gpu: int = 0, ring_size: int = 4096) -> dict:
        """Ring, pointer page, EOP and context-save BOs as CREATE_QUEUE wants them mapped."""
        target = self.gpus[gpu].target_name
        ring = self.alloc(max(ring_size, PAGE), gpu=gpu)
        ptrs = self.alloc(PAGE, GTT | WRITABLE, gpu=gpu, cpu=True)
        kw = dict(gpu_id=ring.gpu_id, queue_type=kind, ring_base=ring.va, ring_size=ring_size,
                  write_pointer=ptrs.va, read_pointer=ptrs.va + 8)
        bufs = {"ring": ring, "ptrs": ptrs}
        if kind in (Q_PM4, Q_AQL):
            s = SHEET_SIZES[target]
            eop = self.alloc(s["eop"], gpu=gpu)
            ctx = self.alloc(s["ctx_bo"], GTT | WRITABLE, gpu=gpu)
            kw.update(eop_buffer_address=eop.va, eop_buffer_size=s["eop"],
                      ctx_save_restore_address=ctx.va, ctx_save_restore_size=s["cwsr"],
                      ctl_stack_size=s["ctl_stack"])
            bufs.update(eop=eop, ctx=ctx)
        bufs["kwargs"] = kw
        return bufs

    def create_queue(self, kind: int, *, gpu: int = 0, ring_size: int = 4096, **extra):
        bufs = self.queue_buffers(kind, gpu=gpu, ring_size=ring_size)
        kw = dict(bufs["kwargs"])
        kw.update(extra)
        info = self.kfd.create_queue(**kw)
        return info, bufs

    def free(self, b: Buf) -> None:
        self.kfd.unmap_memory(handle=b.handle, gpu_ids=[b.gpu_id])
        self.kfd.free_memory(handle=b.handle)

    def raw(self, name: str, struct_name: str | None = None, **fields):
        """A raw ioctl with a cffi struct: returns (errno, struct)."""
        from pytest_amdgpu.kfd.abi import IOCTLS

        spec = IOCTLS[name]
        s = ffi.new((struct_name or spec.struct) + " *")
        for k, v in fields.items():
            setattr(s, k, v)
        err = self.port.ioctl(self.kfd.fd, spec.request, address_of(s))
        return err, s

    def snapshot(self) -> dict:
        """What a leak check compares: free VRAM per GPU and the driver's tables."""
        p = self.process
        return {
            "available": {g.gpu_id: self.kfd.available_memory(gpu_id=g.gpu_id)
                          for g in self.gpus},
            "bos": sorted(bo.handle for bo in p.live_bos(include_kernel=True)),
            "queues": sorted(q.queue_id for q in p.live_queues()),
            "events": sorted(e.event_id for e in p.live_events()),
            "mappings": {pdd.gpu_id: len(pdd.vm.mappings()) for pdd in p.pdds},
        }


def make_env(spec: str = "gfx942", **kw) -> Env:
    """An Env on its own machine (closed with the port: env.port.close_port())."""
    kw.setdefault("engine_factory", StubEngine)
    return Env(SimPort(sim=spec, **kw))
