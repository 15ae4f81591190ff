"""`Process`: one KFD process — the /dev/kfd fd, the topology, the GPU VMs, the event page and
the exception monitor that every Device of the process shares.

The real driver keys its process by the OS process (facts-kfd.md §1.2): every open of /dev/kfd
in one OS process reaches the same KFD process, the render-node file given to ACQUIRE_VM stays
bound to it for the process's life (a second file is EBUSY, §1.A), and so does the event page
(it cannot be freed, §2.4, nor replaced, §2.8 E1). So for a hardware backend there is one
`Process` per OS process; it survives its last Device (dormant) and is reused by the next
`open_device`. A simulator port stands for an OS process of its own: `open_device(backend=
"sim")` makes a fresh port and its Process ends (the port is closed) with its last Device.

Set-up follows the thunk (libhsakmt): GET_PROCESS_APERTURES_NEW, open every GPU's render node
and ACQUIRE_VM it, RUNTIME_ENABLE where the driver has it (KFD ≥ 1.13, the debugger API),
query the process's XNACK mode (SET_XNACK_MODE, KFD ≥ 1.5), allocate the 32 KiB event page
(4096 slots of 8 bytes) in GTT, map it to every GPU and to the CPU, and hand it to the first
CREATE_EVENT, which creates the MEMORY exception event; a HW_EXCEPTION event follows. Waits on
the GPU include these two events, so a VM fault ends a wait with `GPUFaultError` instead of a
timeout.
"""

from __future__ import annotations

import errno as _errno
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import BackendUnavailable, GPUError, GPUFaultError, HWExceptionError, UsageError
from ..kfd.abi import IOCTLS, lib
from ..kfd.errors import KFDError, kfd_error
from ..kfd.ioctl import KFD, Apertures, HWExceptionData, MemoryExceptionData, WaitResult
from ..kfd.port import Port
from ..kfd.topology import HEAP_FB_PUBLIC, Node, Topology, read_topology
from ..targets import Target, get_target
from .memory import Buffer, allocate

if TYPE_CHECKING:
    from .device import Device, LiveObject

__all__ = [
    "EVENT_PAGE_SIZE", "EVENT_TYPES", "GPUContext", "GPUException", "Process", "acquire_process",
]

log = logging.getLogger("pytest_amdgpu.runtime")

EVENT_SLOTS = int(lib.KFD_SIGNAL_EVENT_LIMIT)          # 4096 (kfd_ioctl.h)
EVENT_PAGE_SIZE = EVENT_SLOTS * 8                      # 32 KiB, facts-kfd.md §2.8 E2
UNSIGNALED_SLOT = 0xFFFFFFFFFFFFFFFF                   # facts-kfd.md §4 I1
# node capability bit: SRAM ECC is on (kfd_sysfs.h HSA_CAP_SRAM_EDCSUPPORTED); ROCR runs a
# sramecc-capable ISA in "sramecc+" mode when it is set, "sramecc-" otherwise
HSA_CAP_SRAM_EDCSUPPORTED = 0x04000000
SIGNAL_SLOT_SIZE = 64                                  # amd_signal_t
SIGNAL_CHUNK_SIZE = 16384                              # signals are sub-allocated 256 per chunk
WAIT_SLICE = 0.25                                      # seconds per WAIT_EVENTS when polling too

EVENT_TYPES: dict[str, int] = {
    "signal": int(lib.KFD_IOC_EVENT_SIGNAL),
    "nodechange": int(lib.KFD_IOC_EVENT_NODECHANGE),
    "device_state_change": int(lib.KFD_IOC_EVENT_DEVICESTATECHANGE),
    "hw_exception": int(lib.KFD_IOC_EVENT_HW_EXCEPTION),
    "system": int(lib.KFD_IOC_EVENT_SYSTEM_EVENT),
    "debug": int(lib.KFD_IOC_EVENT_DEBUG_EVENT),
    "profile": int(lib.KFD_IOC_EVENT_PROFILE_EVENT),
    "queue": int(lib.KFD_IOC_EVENT_QUEUE_EVENT),
    "memory": int(lib.KFD_IOC_EVENT_MEMORY),
}

# extra text for an exception's message: the state of the queues a wait depended on
Context = str | Callable[[], str] | None

_PORT_ATTR = "_pytest_amdgpu_process"
_SHARED: dict[tuple[str, int], Process] = {}
_REGISTRY_LOCK = threading.Lock()


@dataclass
class GPUContext:
    """Per-GPU state of the process: topology node, target, apertures, render fd, doorbells."""

    node: Node
    gpu_id: int
    target: Target | None
    target_error: str
    apertures: Apertures | None
    render_fd: int = -1
    doorbell_base: int = 0
    doorbell_size: int = 0

    @property
    def large_bar(self) -> bool:
        """Whether all of the GPU's VRAM is CPU-visible: the driver lists the frame buffer as
        a FB_PUBLIC heap exactly when no VRAM is private to the GPU (kfd_crat.c), and only
        then accepts VRAM allocations with the PUBLIC flag (kfd_dev_is_large_bar,
        facts-kfd.md §2.3 row 5)."""
        return any(b.get("heap_type") == HEAP_FB_PUBLIC for b in self.node.mem_banks)

    @property
    def sramecc(self) -> str | None:
        """The SRAM ECC mode the GPU runs ("on"/"off"), None for a target without one."""
        if self.target is None or not self.target.sramecc_supported:
            return None
        return "on" if self.node.capability & HSA_CAP_SRAM_EDCSUPPORTED else "off"


@dataclass(frozen=True)
class GPUException:
    """A memory or hardware exception the driver reported to this process."""

    kind: str                                  # "memory" or "hw"
    gpu_id: int
    address: int | None
    reason: str                                # NotPresent / ReadOnly / NoExecute / … / GPU hang
    data: MemoryExceptionData | HWExceptionData = field(repr=False)

    def message(self) -> str:
        if self.kind == "memory":
            d = self.data
            flags = ", ".join(n for n, v in (("NotPresent", d.not_present),
                                             ("ReadOnly", d.read_only),
                                             ("NoExecute", d.no_execute),
                                             ("imprecise", d.imprecise)) if v) or "none"
            text = (f"GPU memory fault on GPU {self.gpu_id:#x} at address {self.address:#x}: "
                    f"{_REASON_TEXT.get(self.reason, self.reason)} (flags: {flags}")
            if d.error_type:
                text += f", ErrorType {d.error_type}"
            return text + "). The driver evicted the process's queues on that GPU; they do " \
                          "not run again in this process."
        d = self.data
        cause = {0: "GPU hang", 1: "SRAM ECC"}.get(d.reset_cause, f"cause {d.reset_cause}")
        kind = {0: "whole-GPU reset", 1: "per-engine reset"}.get(d.reset_type,
                                                                 f"reset type {d.reset_type}")
        lost = ", memory lost" if d.memory_lost else ""
        return f"GPU hardware exception on GPU {self.gpu_id:#x}: {kind} after {cause}{lost}"

    def error(self, *, earlier: bool = False, context: Context = None) -> GPUError:
        """The typed error; `context` (text, or a callable giving it) is appended — the
        state of the queues the failed wait depended on."""
        text = self.message()
        if earlier:
            text = "an earlier " + text
        extra = _context_text(context)
        if extra:
            text += "\n" + extra
        if self.kind == "memory":
            err: GPUError = GPUFaultError(text, address=self.address, gpu_id=self.gpu_id,
                                          reason=self.reason)
        else:
            err = HWExceptionError(text)
            err.gpu_id = self.gpu_id  # type: ignore[attr-defined]
            err.reason = self.reason  # type: ignore[attr-defined]
        err.data = self.data  # type: ignore[attr-defined]
        return err


def _context_text(context) -> str:
    if context is None:
        return ""
    if callable(context):
        try:
            return context()
        except Exception as exc:  # a report must not hide the fault itself
            return f"(queue state unavailable: {exc})"
    return str(context)


_REASON_TEXT = {
    "NotPresent": "the page is not mapped for this GPU (not present)",
    "ReadOnly": "write to a read-only page",
    "NoExecute": "instruction fetch from a non-executable page",
}


def _memory_exception(data: MemoryExceptionData) -> GPUException:
    if data.read_only:
        reason = "ReadOnly"
    elif data.no_execute:
        reason = "NoExecute"
    elif data.not_present:
        reason = "NotPresent"
    else:
        reason = {1: "SRAM_ECC", 2: "PoisonConsumed", 3: "GPUHang"}.get(data.error_type,
                                                                        "Unknown")
    return GPUException("memory", data.gpu_id, data.va, reason, data)


def _hw_exception(data: HWExceptionData) -> GPUException:
    reason = {0: "GPUHang", 1: "ECC"}.get(data.reset_cause, f"cause{data.reset_cause}")
    return GPUException("hw", data.gpu_id, None, reason, data)


class _SignalPool:
    """amd_signal_t slots (64 B) sub-allocated from GTT chunks mapped to every GPU."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.chunks: list[Buffer] = []
        self.free: list[int] = []
        self.lock = threading.Lock()

    def take(self) -> int:
        try:
            return self.free.pop()        # atomic under the GIL: no lock for the usual case
        except IndexError:
            pass
        with self.lock:
            if not self.free:
                p = self.process
                chunk = allocate(p, p.home_gpu, SIGNAL_CHUNK_SIZE, "gtt", uncached=True,
                                 coherent=True, internal=True, description="signal pool",
                                 map_gpus=p.gpu_ids)
                self.chunks.append(chunk)
                base = chunk.gpu_address
                self.free.extend(reversed(range(base, base + SIGNAL_CHUNK_SIZE,
                                                SIGNAL_SLOT_SIZE)))
            return self.free.pop()

    def give(self, address: int) -> None:
        self.free.append(address)         # atomic under the GIL

    def release(self) -> None:
        for chunk in self.chunks:
            try:
                chunk.free()
            except Exception as exc:  # teardown continues
                log.warning("freeing a signal pool chunk failed: %s", exc)
        self.chunks.clear()
        self.free.clear()


class Process:
    """One KFD process (see the module docstring). Normally made by `open_device`."""

    def __init__(self, port: Port, *, owns_port: bool, backend: str = "",
                 why: str = "") -> None:
        self.port = port
        self.owns_port = owns_port
        self.backend = backend or getattr(port, "name", "port")
        self.why = why
        self.lock = threading.RLock()
        self.closed = False
        self.devices: list[Device] = []
        self._exceptions: list[GPUException] = []
        self._reported = 0
        self._faulted: dict[int, GPUException] = {}
        self._gpus: dict[int, GPUContext] = {}
        self._event_page: Buffer | None = None
        self._monitor: list[int] = []
        self._monitor_types: dict[int, str] = {}
        self._signals = _SignalPool(self)
        self.xnack_enabled: bool | None = None     # the process's XNACK mode, when known
        self.kfd = KFD(port)
        try:
            self.topology: Topology = read_topology(port)
            self.gpus: list[Node] = list(self.topology.gpus)
            if not self.gpus:
                raise BackendUnavailable(
                    f"the KFD topology of backend {self.backend!r} lists no GPU node")
            apertures = {a.gpu_id: a for a in self.kfd.get_process_apertures()}
            for node in self.gpus:
                self._gpus[node.gpu_id] = self._gpu_context(node, apertures.get(node.gpu_id))
            for ctx in self._gpus.values():
                self._acquire_vm(ctx)
            if self._driver_has("RUNTIME_ENABLE"):
                try:
                    self.kfd.runtime_enable()
                except KFDError as exc:  # a debugger hand-shake only; queues work without it
                    log.info("RUNTIME_ENABLE failed (continuing): %s", exc)
            self.xnack_enabled = self._query_xnack()
            self._start_monitor()
        except BaseException:
            self._teardown(release_files=True, close_port=False)   # the opener closes it
            raise

    # -- set-up ---------------------------------------------------------------------------
    def _driver_has(self, ioctl: str) -> bool:
        """Whether the running KFD's ioctl version has `ioctl` (kfd.abi.IOCTLS min_version)."""
        return self.kfd.version >= IOCTLS[ioctl].min_version

    def _query_xnack(self) -> bool | None:
        """The process's XNACK mode (SET_XNACK_MODE query); None when the driver cannot say
        (KFD < 1.5, or built without SVM: EPERM)."""
        if not self._driver_has("SET_XNACK_MODE"):
            return None
        try:
            return self.kfd.set_xnack_mode(enabled=None)
        except KFDError as exc:
            log.info("SET_XNACK_MODE query failed (XNACK mode unknown): %s", exc)
            return None

    @staticmethod
    def _gpu_context(node: Node, apertures: Apertures | None) -> GPUContext:
        target: Target | None = None
        error = ""
        try:
            name = node.target_name
            target = get_target(name) if name else None
            if target is None:
                error = f"node {node.index} reports no gfx_target_version"
        except (KeyError, ValueError) as exc:
            error = str(exc).strip("'\"")
        return GPUContext(node=node, gpu_id=node.gpu_id, target=target, target_error=error,
                          apertures=apertures)

    def _acquire_vm(self, ctx: GPUContext) -> None:
        path = ctx.node.render_node
        if path is None:
            raise BackendUnavailable(f"GPU node {ctx.node.index} (gpu_id {ctx.gpu_id:#x}) has "
                                     "no drm_render_minor in its topology properties")
        try:
            ctx.render_fd = self.port.open(path)
        except OSError as exc:
            code = exc.errno or _errno.ENODEV
            hint = (f"cannot open {path}: add the user to the 'render' and 'video' groups"
                    if code in (_errno.EACCES, _errno.EPERM) else f"cannot open {path}")
            raise kfd_error("open", code, {"path": path}, hint=hint) from exc
        self.kfd.acquire_vm(drm_fd=ctx.render_fd, gpu_id=ctx.gpu_id)

    def _start_monitor(self) -> None:
        page = allocate(self, self.home_gpu, EVENT_PAGE_SIZE, "gtt", uncached=True,
                        coherent=True, internal=True, description="event page",
                        map_gpus=self.gpu_ids)
        self._event_page = page
        info = self.kfd.create_event(event_type=EVENT_TYPES["memory"], auto_reset=True,
                                     event_page_handle=page.handle)
        self._monitor.append(info.event_id)
        self._monitor_types[info.event_id] = "memory"
        info = self.kfd.create_event(event_type=EVENT_TYPES["hw_exception"], auto_reset=True)
        self._monitor.append(info.event_id)
        self._monitor_types[info.event_id] = "hw"

    # -- GPUs -----------------------------------------------------------------------------
    @property
    def gpu_ids(self) -> list[int]:
        return list(self._gpus)

    @property
    def home_gpu(self) -> int:
        """The GPU that process-wide buffers (event page, signals) are allocated on."""
        return self.gpus[0].gpu_id

    def gpu(self, gpu_id: int) -> GPUContext:
        try:
            return self._gpus[gpu_id]
        except KeyError:
            raise UsageError(f"gpu_id {gpu_id:#x} is not a GPU of this process; GPUs: "
                             f"{', '.join(hex(g) for g in self._gpus)}") from None

    def render_fd(self, gpu_id: int) -> int:
        return self.gpu(gpu_id).render_fd

    def check_va(self, gpu_id: int, address: int, size: int) -> None:
        """Refuse a CPU address the GPU VM cannot map (outside the GPUVM aperture)."""
        ap = self.gpu(gpu_id).apertures
        if ap is None or ap.gpuvm_limit == 0:
            return
        if address < ap.gpuvm_base or address + size - 1 > ap.gpuvm_limit:
            raise UsageError(
                f"CPU address range [{address:#x}, {address + size:#x}) is outside GPU "
                f"{gpu_id:#x}'s GPUVM aperture [{ap.gpuvm_base:#x}, {ap.gpuvm_limit:#x}], so "
                "the buffer cannot have the same CPU and GPU address")

    def doorbell_address(self, gpu_id: int, doorbell_offset: int) -> int:
        """CPU address of a queue's doorbell: the process's doorbell slice of that GPU is
        mmapped once on /dev/kfd (facts-kfd.md §3 M3-M5)."""
        ctx = self.gpu(gpu_id)
        slice_size = ctx.target.doorbell_slice_size if ctx.target else 8192
        with self.lock:
            if not ctx.doorbell_base:
                ctx.doorbell_base = self.kfd.mmap(offset=doorbell_offset & ~(slice_size - 1),
                                                  length=slice_size)
                ctx.doorbell_size = slice_size
        return ctx.doorbell_base + (doorbell_offset & (slice_size - 1))

    # -- events and signals -----------------------------------------------------------------
    @property
    def event_page(self) -> Buffer:
        if self._event_page is None:
            raise UsageError("this process has no event page (it is closed)")
        return self._event_page

    def mailbox_address(self, slot_index: int) -> int:
        """GPU/CPU address of signal event slot `slot_index` in the event page."""
        if not 0 <= slot_index < EVENT_SLOTS:
            raise UsageError(f"event slot {slot_index} is outside the event page's "
                             f"{EVENT_SLOTS} slots")
        return self.event_page.gpu_address + 8 * slot_index

    def alloc_signal_slot(self) -> int:
        return self._signals.take()

    def free_signal_slot(self, address: int) -> None:
        self._signals.give(address)

    # -- exceptions -------------------------------------------------------------------------
    def wait_events(self, event_ids: Sequence[int], timeout: float, *, wait_all: bool = False,
                    watch: bool = True, gpu_ids: Iterable[int] = (),
                    context: Context = None) -> WaitResult:
        """WAIT_EVENTS on `event_ids` for up to `timeout` seconds.

        With `watch`, the process's MEMORY and HW_EXCEPTION events join an any-wait, so a GPU
        fault ends it; a fault raises GPUFaultError / HWExceptionError (after recording it).
        `gpu_ids` are the GPUs the caller depends on: an earlier fault there raises at once.
        `context` is appended to a raised error's message.
        """
        gpu_ids = list(gpu_ids)
        if watch:
            self.raise_if_faulted(gpu_ids, context)
        ids = list(event_ids)
        timeout_ms = max(0, min(int(timeout * 1000 + 0.999), 0x7FFFFFFF))
        if watch and not wait_all:
            ids += [e for e in self._monitor if e not in ids]
        result = self.kfd.wait_events(event_ids=ids, timeout_ms=timeout_ms,
                                      wait_for_all=wait_all)
        if result.complete:
            self._record(result)
        if watch:
            self._raise_new(context)
            self.raise_if_faulted(gpu_ids, context)
        return result

    def _record(self, result: WaitResult) -> None:
        for entry in result.data:
            kind = self._monitor_types.get(entry.event_id)
            if kind == "memory" and entry.memory is not None and entry.memory.gpu_id:
                self._add_exception(_memory_exception(entry.memory))
            elif kind == "hw" and entry.hw_exception is not None and entry.hw_exception.gpu_id:
                self._add_exception(_hw_exception(entry.hw_exception))

    def _add_exception(self, exc: GPUException) -> None:
        with self.lock:
            self._exceptions.append(exc)
            if exc.kind == "memory" or exc.data.memory_lost:
                self._faulted.setdefault(exc.gpu_id, exc)
            log.info("%s", exc.message())

    def _raise_new(self, context: Context = None) -> None:
        with self.lock:
            new = self._exceptions[self._reported:]
            self._reported = len(self._exceptions)
        if new:
            raise new[0].error(context=context)

    def raise_if_faulted(self, gpu_ids: Iterable[int], context: Context = None) -> None:
        for gpu_id in gpu_ids:
            exc = self._faulted.get(gpu_id)
            if exc is not None:
                raise exc.error(earlier=True, context=context)

    def poll_exceptions(self) -> list[GPUException]:
        """Collect exceptions the driver has reported since the last poll (no raise)."""
        if self.closed or not self._monitor:
            return []
        before = len(self._exceptions)
        result = self.kfd.wait_events(event_ids=self._monitor, timeout_ms=0)
        if result.complete:
            self._record(result)
        return self._exceptions[before:]

    def check_exceptions(self, gpu_ids: Iterable[int] = (), context: Context = None) -> None:
        """Raise GPUFaultError / HWExceptionError for an exception not raised before, or for
        an earlier one on one of `gpu_ids` (with `context` appended to the message)."""
        gpu_ids = list(gpu_ids)
        self.poll_exceptions()
        self._raise_new(context)
        self.raise_if_faulted(gpu_ids, context)

    def pending_exceptions(self) -> list[GPUException]:
        """Every exception this process has seen (polls the driver first)."""
        self.poll_exceptions()
        return list(self._exceptions)

    def faulted(self, gpu_id: int) -> GPUException | None:
        return self._faulted.get(gpu_id)

    # -- devices ----------------------------------------------------------------------------
    def open_device(self, node: Node) -> Device:
        from .device import Device

        if self.closed:
            raise UsageError("this KFD process is closed")
        ctx = self.gpu(node.gpu_id)
        if ctx.target is None:
            raise BackendUnavailable(
                f"GPU node {node.index} (gpu_id {node.gpu_id:#x}, "
                f"gfx_target_version {node.gfx_target_version}) is not a supported target: "
                f"{ctx.target_error}")
        device = Device(self, ctx)
        with self.lock:
            self.devices.append(device)
        return device

    def _device_closed(self, device: Device) -> None:
        with self.lock:
            if device in self.devices:
                self.devices.remove(device)
            last = not self.devices
        if last and self.owns_port:
            self.close()

    def live_objects(self) -> list[LiveObject]:
        out: list[LiveObject] = []
        for device in list(self.devices):
            out.extend(device.live_objects())
        return out

    # -- teardown ---------------------------------------------------------------------------
    def close(self, *, check_leaks: bool = False) -> list[LiveObject]:
        """Close every Device; end the process if this runtime made its port.

        A process on a shared port (hardware, or a port the caller passed in) stays usable
        for the next open_device (see the module docstring). Returns the leaked objects.
        """
        leaks: list[LiveObject] = []
        for device in list(self.devices):
            leaks.extend(device.close())
        if self.owns_port and not self.closed:
            self._teardown(release_files=True)
        if check_leaks and leaks:
            from ..errors import LeakError

            raise LeakError("objects still alive when the process closed:\n" +
                            "\n".join(f"  {obj}" for obj in leaks))
        return leaks

    def terminate(self) -> list[LiveObject]:
        """Close every Device and release everything, the port included, even on a shared
        port. On real hardware the GPU VMs stay bound to the closed render-node files for the
        rest of the OS process, so no later open_device can work in it (ACQUIRE_VM is EBUSY,
        facts-kfd.md §1.A): meant for the end of a simulated run or of the program."""
        leaks: list[LiveObject] = []
        for device in list(self.devices):
            leaks.extend(device.close())
        if not self.closed:
            self._teardown(release_files=True, close_port=True)
        return leaks

    def _teardown(self, *, release_files: bool, close_port: bool | None = None) -> None:
        """Release the process-wide objects; with `release_files` also the render-node and
        /dev/kfd fds; end the port's process if this runtime made the port."""
        self.closed = True
        port = self.port
        kfd = self.kfd
        for event_id in self._monitor:
            try:
                if not kfd.closed:
                    kfd.destroy_event(event_id=event_id)
            except Exception as exc:
                log.debug("destroying exception event %d: %s", event_id, exc)
        self._monitor.clear()
        self._signals.release()
        if self._event_page is not None:
            # the event page cannot be freed while the KFD process lives (EPERM, §2.4); drop
            # only its CPU mapping, the driver releases it with the process
            try:
                port.munmap(self._event_page.gpu_address, self._event_page.alloc_size)
            except OSError:
                pass
            self._event_page = None
        for ctx in self._gpus.values():
            if ctx.doorbell_base:
                try:
                    port.munmap(ctx.doorbell_base, ctx.doorbell_size)
                except OSError:
                    pass
                ctx.doorbell_base = 0
        if release_files:
            for ctx in self._gpus.values():
                if ctx.render_fd >= 0:
                    try:
                        port.close(ctx.render_fd)
                    except OSError:
                        pass
                    ctx.render_fd = -1
            kfd.close()
        if self.owns_port if close_port is None else close_port:
            port.close_port()
        _unregister(self)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.devices)} open devices"
        return (f"<Process backend={self.backend} kfd={self.kfd.version[0]}."
                f"{self.kfd.version[1]} gpus={[hex(g) for g in self._gpus]} {state}>")

    def format_trace(self, last: int = 20) -> str:
        """The last port calls (ioctls, mmaps, doorbells) when recording is on."""
        return self.port.format_trace(last)


# -- the registry ---------------------------------------------------------------------------

def acquire_process(backend: str = "auto", *, target: str | None = None,
                    sim: object = None, port: Port | None = None,
                    record: bool = True) -> Process:
    """The Process to open devices in (see the module docstring for which one)."""
    from ..backends import resolve_backend

    if port is not None:
        if record and not port.recording:
            port.start_recording()
        with _REGISTRY_LOCK:
            proc = port.__dict__.get(_PORT_ATTR)
            if proc is None or proc.closed:
                proc = Process(port, owns_port=False, why="port given by the caller")
                port.__dict__[_PORT_ATTR] = proc
            return proc
    if backend == "auto" and sim is not None:
        backend = "sim"
    be, why = resolve_backend(backend)
    if be.simulated:
        spec = sim if sim is not None else (target or "gfx942")
        options: dict = {"record": record}
        if isinstance(spec, str):
            options["sim"] = spec
        else:
            options["machine"] = spec
        new_port = be.make_port(**options)
        try:
            return Process(new_port, owns_port=True, backend=be.name, why=why)
        except BaseException:
            new_port.close_port()
            raise
    key = (be.name, os.getpid())
    with _REGISTRY_LOCK:
        proc = _SHARED.get(key)
        if proc is None or proc.closed:
            proc = Process(be.make_port(record=record), owns_port=False, backend=be.name,
                           why=why)
            _SHARED[key] = proc
        elif record and not proc.port.recording:
            proc.port.start_recording()
        return proc


def _unregister(proc: Process) -> None:
    with _REGISTRY_LOCK:
        for key, value in list(_SHARED.items()):
            if value is proc:
                del _SHARED[key]
        if proc.port.__dict__.get(_PORT_ATTR) is proc:
            del proc.port.__dict__[_PORT_ATTR]

