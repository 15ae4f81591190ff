"""`Device`: one GPU of a KFD process, and `open_device` / `open_devices`.

A Device is the user's handle on a GPU: its topology node and target, its apertures, and the
factory of buffers, queues, signals, events and kernels on it. It accounts for every object it
made and is still alive (with the ``owner`` tag given at creation), so `close` can release them
and report them as leaks. Closing is idempotent; devices are context managers.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import BackendUnavailable, LeakError, UsageError
from ..kfd.ioctl import Apertures, ClockCounters
from ..kfd.topology import Node
from ..targets import Target
from ._util import check_int
from .memory import Buffer, allocate
from .process import GPUContext, GPUException, Process, acquire_process

if TYPE_CHECKING:
    from ..kfd.port import Port
    from .event import Event
    from .queue import Queue
    from .signal import Signal

__all__ = ["Device", "LiveObject", "open_device", "open_devices"]

# release order at close: queues stop using memory first, buffers go last
_CLOSE_ORDER = {"queue": 0, "kernel": 1, "signal": 2, "event": 3, "buffer": 4}


@dataclass(frozen=True)
class LiveObject:
    """An object a Device made that is still alive: kind, description and owner tag."""

    kind: str
    description: str
    owner: object = None
    obj: object = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        owner = f" (owner {self.owner!r})" if self.owner is not None else ""
        return f"{self.kind}: {self.description}{owner}"


def _describe(obj: object) -> str:
    describe = getattr(obj, "describe", None)
    return describe() if callable(describe) else repr(obj)


def _kind(obj: object) -> str:
    """"buffer", "queue", "signal", "event", "kernel", …: the object's accounting kind."""
    return getattr(obj, "live_kind", None) or getattr(obj, "kind", type(obj).__name__.lower())


def _release(obj: object) -> None:
    for name in ("destroy", "free", "close"):
        fn = getattr(obj, name, None)
        if callable(fn):
            fn()
            return


class Device:
    """One GPU opened in a KFD process (made by `open_device` / `open_devices`)."""

    def __init__(self, process: Process, ctx: GPUContext) -> None:
        self.process = process
        self._ctx = ctx
        self.node: Node = ctx.node
        self.gpu_id: int = ctx.gpu_id
        assert ctx.target is not None
        self.target: Target = ctx.target
        self.apertures: Apertures | None = ctx.apertures
        self._live: dict[int, Any] = {}
        self._lock = threading.RLock()
        self.closed = False

    # -- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The LLVM target name, e.g. "gfx942"."""
        return self.target.name

    @property
    def index(self) -> int:
        """Position of this GPU among the process's GPU nodes."""
        return [n.gpu_id for n in self.process.gpus].index(self.gpu_id)

    @property
    def properties(self) -> dict:
        return self.node.properties

    @property
    def kfd(self):
        return self.process.kfd

    @property
    def port(self) -> Port:
        return self.process.port

    @property
    def backend(self) -> str:
        return self.process.backend

    @property
    def wave_size(self) -> int:
        return self.node.wave_front_size or self.target.wave_size

    @property
    def cu_count(self) -> int:
        return self.node.cu_count

    @property
    def vram_size(self) -> int:
        return self.node.local_mem_size

    @property
    def large_bar(self) -> bool:
        """Whether the CPU can map all of this GPU's VRAM (then ``alloc(..., "vram")`` gets a
        CPU mapping; on a small-BAR board only ``cpu_access=False`` VRAM can be allocated)."""
        return self._ctx.large_bar

    @property
    def xnack(self) -> str | None:
        """The XNACK mode the process runs on this GPU ("on"/"off"; None when the target has
        none or the driver cannot tell): what a code object's ``xnack`` setting must match."""
        if not self.target.xnack_supported or self.process.xnack_enabled is None:
            return None
        return "on" if self.process.xnack_enabled else "off"

    @property
    def sramecc(self) -> str | None:
        """The SRAM ECC mode of this GPU ("on"/"off" from the node's capability bits; None for
        a target without one): what a code object's ``sramecc`` setting must match."""
        return self._ctx.sramecc

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return (f"<Device {self.target.name} gpu_id={self.gpu_id:#x} node={self.node.index} "
                f"backend={self.process.backend}{state}>")

    def describe(self) -> str:
        return f"{self.target.name} GPU {self.gpu_id:#x} (node {self.node.index})"

    # -- factories --------------------------------------------------------------------------
    def _check_open(self, what: str) -> None:
        if self.closed:
            raise UsageError(f"Device.{what}: {self.describe()} is closed")

    def alloc(self, size: int, location: str = "vram", *, uncached: bool = False,
              coherent: bool = False, executable: bool = False, read_only: bool = False,
              cpu_access: bool = True, owner: object = None) -> Buffer:
        """Allocate `size` bytes in "vram", "gtt" (system memory) or "userptr" (host memory
        registered with the GPU), mapped on this GPU and (unless ``cpu_access=False``) at the
        same address for the CPU. ``read_only`` makes the GPU mapping read-only."""
        self._check_open("alloc")
        buf = allocate(self.process, self.gpu_id, size, location, uncached=uncached,
                       coherent=coherent, executable=executable, read_only=read_only,
                       cpu_access=cpu_access, owner=owner, device=self)
        self._track(buf)
        return buf

    def _alloc_internal(self, size: int, location: str, description: str, **kw: Any) -> Buffer:
        """A buffer owned by another runtime object (a queue's ring, …): not listed itself."""
        self._check_open("alloc")
        return allocate(self.process, self.gpu_id, size, location, internal=True,
                        description=description, **kw)

    def create_queue(self, kind: str = "pm4", *, ring_size: int | None = None,
                     priority: int = 7, percentage: int = 100, sdma_engine: int | None = None,
                     owner: object = None) -> Queue:
        """Create a user-mode queue: "pm4" (compute, PM4 packets), "aql" (compute, AQL
        packets) or "sdma" (DMA engine); see `pytest_amdgpu.runtime.queue`."""
        from .queue import create_queue

        self._check_open("create_queue")
        queue = create_queue(self, kind, ring_size=ring_size, priority=priority,
                             percentage=percentage, sdma_engine=sdma_engine, owner=owner)
        self._track(queue)
        return queue

    def create_signal(self, initial: int = 0, *, interrupt: bool = False,
                      owner: object = None) -> Signal:
        """An amd_signal_t with a 64-bit value in GPU-visible memory; `interrupt` adds an
        event so CPU waits sleep until the GPU's interrupt instead of polling."""
        from .signal import Signal

        self._check_open("create_signal")
        signal = Signal(self, initial, interrupt=interrupt, owner=owner)
        self._track(signal)
        return signal

    def create_event(self, kind: str = "signal", auto_reset: bool = True, *,
                     owner: object = None) -> Event:
        """A KFD event (CREATE_EVENT) of `kind` ("signal", "memory", "hw_exception", …)."""
        from .event import Event

        self._check_open("create_event")
        event = Event(self, kind, auto_reset=auto_reset, owner=owner)
        self._track(event)
        return event

    def load_kernel(self, code_object: Any, name: str | None = None, **options: Any) -> Any:
        """Load kernel `name` from a code object (bytes, path or parsed object); see
        `pytest_amdgpu.runtime.kernel`."""
        from . import kernel as _kernel

        self._check_open("load_kernel")
        loader = getattr(_kernel, "load_kernel", None)
        if loader is not None:
            kern = loader(self, code_object, name, **options)
        else:
            kern = _kernel.Kernel.load(self, code_object, name, **options)
        if id(kern) not in self._live:
            self._track(kern)
        return kern

    # -- queries ----------------------------------------------------------------------------
    def available_memory(self) -> int:
        """VRAM bytes this process can still allocate on the GPU (AVAILABLE_MEMORY)."""
        return self.process.kfd.available_memory(gpu_id=self.gpu_id)

    def clock_counters(self) -> ClockCounters:
        return self.process.kfd.get_clock_counters(gpu_id=self.gpu_id)

    def check_exceptions(self) -> None:
        """Raise GPUFaultError / HWExceptionError if the driver reported one for the process
        (or earlier for this GPU)."""
        self.process.check_exceptions([self.gpu_id])

    def pending_exceptions(self) -> list[GPUException]:
        return [e for e in self.process.pending_exceptions() if e.gpu_id == self.gpu_id]

    # -- accounting -------------------------------------------------------------------------
    def _track(self, obj: object) -> None:
        with self._lock:
            self._live[id(obj)] = obj

    def _forget(self, obj: object) -> None:
        with self._lock:
            self._live.pop(id(obj), None)

    def live_objects(self) -> list[LiveObject]:
        """Every object made on this device and not yet released, oldest first."""
        with self._lock:
            objs = list(self._live.values())
        return [LiveObject(_kind(o), _describe(o), getattr(o, "owner", None), o) for o in objs]

    def close(self, *, check_leaks: bool = False) -> list[LiveObject]:
        """Release everything still alive on this device and return it as leaks.

        With ``check_leaks=True`` raise LeakError if there were any. Idempotent.
        """
        with self._lock:
            if self.closed:
                return []
            leaks = self.live_objects()
            self.closed = True
        failures: list[str] = []
        for leak in sorted(leaks, key=lambda o: _CLOSE_ORDER.get(o.kind, 1)):
            try:
                _release(leak.obj)
            except Exception as exc:
                failures.append(f"releasing {leak}: {type(exc).__name__}: {exc}")
            self._forget(leak.obj)
        self.process._device_closed(self)
        if failures:
            text = "; ".join(failures)
            if check_leaks:
                raise LeakError(_leak_text(self, leaks) + "\nand releasing failed: " + text)
            warnings.warn(f"closing {self.describe()}: {text}", RuntimeWarning, stacklevel=2)
        if check_leaks and leaks:
            raise LeakError(_leak_text(self, leaks))
        return leaks

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _leak_text(device: Device, leaks: list[LiveObject]) -> str:
    lines = [f"{len(leaks)} object(s) still alive when {device.describe()} closed:"]
    lines += [f"  {leak}" for leak in leaks]
    return "\n".join(lines)


# -- opening --------------------------------------------------------------------------------

def _target_name(target: object) -> str | None:
    if target is None:
        return None
    if isinstance(target, Target):
        return target.name
    if isinstance(target, str):
        return target
    raise UsageError(f"target must be a target name like 'gfx942' or a Target, got {target!r}")


def _candidates(process: Process, target: str | None) -> list[Node]:
    nodes = process.gpus
    if target is None:
        return nodes
    chosen = [n for n in nodes if n.target_name == target]
    if not chosen:
        have = ", ".join(f"{n.target_name} (gpu_id {n.gpu_id:#x})" for n in nodes) or "none"
        raise BackendUnavailable(f"no {target} GPU in backend {process.backend!r}; GPUs: {have}")
    return chosen


def open_device(backend: str = "auto", *, index: int = 0, target: str | Target | None = None,
                sim: object = None, port: Port | None = None, record: bool = True) -> Device:
    """Open one GPU.

    backend: "auto" (the real GPU if /dev/kfd is usable, else the simulator), "kfd", "sim" or
    a registered backend name. index: which GPU (among those of `target` if given). target:
    pick the first (index-th) GPU of that LLVM target; on the simulator without a `sim` spec
    it also defines the simulated machine (default "gfx942"). sim: a simulator machine spec
    such as "gfx942x2,gfx1100" (implies the sim backend with "auto"). port: open in the KFD
    process of an existing Port instead. record: record port calls for failure reports.
    """
    name = _target_name(target)
    index = check_int("index", index, minimum=0)
    process = acquire_process(backend, target=name, sim=sim, port=port, record=record)
    try:
        nodes = _candidates(process, name)
        if index >= len(nodes):
            what = f"{name} GPUs" if name else "GPUs"
            raise BackendUnavailable(f"index={index} but backend {process.backend!r} has "
                                     f"{len(nodes)} {what}")
        return process.open_device(nodes[index])
    except BaseException:
        if process.owns_port and not process.devices:
            process.close()
        raise


def open_devices(backend: str = "auto", *, target: str | Target | None = None,
                 sim: object = None, port: Port | None = None, record: bool = True
                 ) -> list[Device]:
    """Open every GPU (of `target`, if given) of one KFD process, so buffers can be mapped
    between them. Arguments as for `open_device`."""
    name = _target_name(target)
    process = acquire_process(backend, target=name, sim=sim, port=port, record=record)
    devices: list[Device] = []
    try:
        for node in _candidates(process, name):
            devices.append(process.open_device(node))
    except BaseException:
        for device in devices:
            device.close()
        if process.owns_port and not process.devices:
            process.close()
        raise
    return devices
