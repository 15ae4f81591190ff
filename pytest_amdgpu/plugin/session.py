"""The plugin's per-run state: the backend, the device slots, and the devices of this process.

`AmdgpuRun` is made once per pytest process (controller, worker or plain run): it resolves the
backend (``auto``: the GPU when /dev/kfd is usable, else the simulator), lists the candidate
devices without opening any, and applies ``--amdgpu-devices`` and the
``pytest_amdgpu_select_devices`` hook. Under xdist a worker takes all of this, and its share of
the devices, from the controller.

`DeviceManager` opens this process's devices when a fixture first asks (taking each GPU's flock
first), keeps them for the whole session, tracks what each test creates on them, releases and
reports leaks, runs health checks after hangs and faults, and builds the failure diagnostics.
The runtime and the simulator are imported here only when a device is opened.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .locks import DeviceLock, DeviceLockTimeout
from .options import AmdgpuOptions, resolve_options
from .select import (
    DeviceSlot,
    KnownFailure,
    inventory,
    load_known_failures,
    select_slots,
)

RUN_KEY = pytest.StashKey["AmdgpuRun"]()

# Fixtures whose use makes a test an "amdgpu test" (tracked for leaks, given diagnostics).
FIXTURES = frozenset({
    "amdgpu_device", "amdgpu_devices", "amdgpu_queue", "amdgpu_pm4_queue", "amdgpu_aql_queue",
    "amdgpu_sdma_queue", "amdgpu_buffer", "amdgpu_signal", "amdgpu_event", "amdgpu_kernel",
    "amdgpu_process",
})

HEALTH_TIMEOUT_S = 5.0
TRACE_TAIL = 30


# --- the run plan -------------------------------------------------------------------------------

def _register_function(backend_or_name: Any, make_port: Any = None, available: Any = None,
                       description: str = "", simulated: bool = False,
                       make_peer_port: Any = None) -> None:
    """The ``register`` callable handed to ``pytest_amdgpu_register_backends``."""
    from ..backends import Backend, register_backend

    if isinstance(backend_or_name, Backend):
        backend = backend_or_name
    else:
        if make_port is None:
            raise TypeError("register(name, make_port, ...) needs make_port")
        backend = Backend(str(backend_or_name), make_port,
                          available or (lambda: (True, "registered by a plugin")),
                          description, simulated, make_peer_port)
    register_backend(backend, replace=True)


def register_backends(config: pytest.Config) -> None:
    """Ask plugins for backends, once per config (historic: late plugins are asked too)."""
    if config.stash.get(_REGISTERED_KEY, False):
        return
    config.stash[_REGISTERED_KEY] = True
    config.hook.pytest_amdgpu_register_backends.call_historic(
        kwargs={"register": _register_function})


_REGISTERED_KEY = pytest.StashKey[bool]()


@dataclass
class AmdgpuRun:
    """Everything the plugin decided for this pytest process."""

    options: AmdgpuOptions
    backend_name: str = ""
    backend_reason: str = ""
    simulated: bool = False
    candidates: list[DeviceSlot] = field(default_factory=list)
    slots: list[DeviceSlot] = field(default_factory=list)          # the run's selection
    local_keys: list[str] = field(default_factory=list)           # this process's share
    worker_id: str | None = None
    known_failures: list[KnownFailure] = field(default_factory=list)
    route_dir: str = ""
    kfd_version: str = ""                                           # hardware: read at start
    manager: DeviceManager | None = None

    @property
    def local_slots(self) -> list[DeviceSlot]:
        keys = set(self.local_keys)
        return [s for s in self.slots if s.key in keys]

    @property
    def usable_slots(self) -> list[DeviceSlot]:
        """The devices this process may open: its share of the GPUs on hardware; on the
        simulator every selected device (each process has a private simulated machine, so
        ``amdgpu_devices`` and multi-GPU tests see the whole simulated host under xdist too)."""
        return list(self.slots) if self.simulated else self.local_slots

    def get_manager(self, config: pytest.Config) -> DeviceManager:
        if self.manager is None:
            self.manager = DeviceManager(self, config)
        return self.manager

    def header(self) -> list[str]:
        lines = [f"amdgpu: backend {self.backend_name} ({self.backend_reason})"]
        kfd = self.kfd_version
        if kfd:
            lines.append(f"amdgpu: KFD version {kfd}" + (" (simulated)" if self.simulated else ""))
        if self.slots:
            shown = ", ".join(s.describe() for s in self.slots)
            lines.append(f"amdgpu: devices: {shown}")
            lines.append(f"amdgpu: targets: {', '.join(sorted({s.target for s in self.slots}))}")
        else:
            lines.append("amdgpu: devices: none selected")
        return lines


def plan_run(config: pytest.Config) -> AmdgpuRun:
    """The AmdgpuRun of this process (made and cached on first call); raises UsageError."""
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        return run
    options = resolve_options(config)
    run = AmdgpuRun(options=options)
    register_backends(config)
    winput = getattr(config, "workerinput", None)
    shared = winput.get("amdgpu") if isinstance(winput, dict) else None
    if shared:
        run.backend_name = shared["backend"]
        run.backend_reason = shared["reason"]
        run.simulated = shared["simulated"]
        run.slots = [DeviceSlot.from_json(d) for d in shared["slots"]]
        run.candidates = list(run.slots)
        run.local_keys = list(shared["share"])
        run.worker_id = winput.get("workerid")
        run.route_dir = shared.get("route_dir", "")
    else:
        _resolve(config, run)
        run.local_keys = [s.key for s in run.slots]
    known = options.known_failures or shipped_known_failures()
    if known:
        run.known_failures = load_known_failures(known)
    config.stash[RUN_KEY] = run
    return run


def shipped_known_failures() -> str:
    """The conformance suite's own known-failure list, used when no list is given (so it also
    applies under ``--pyargs pytest_amdgpu.conformance``, where no ini file is found)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("pytest_amdgpu.conformance")
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.submodule_search_locations:
        return ""
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "known_failures.toml")
        if os.path.isfile(path):
            return path
    return ""


def _resolve(config: pytest.Config, run: AmdgpuRun) -> None:
    from ..backends import backend_names, resolve_backend
    from ..errors import BackendUnavailable

    opts = run.options
    try:
        backend, reason = resolve_backend(opts.backend, require_hw=opts.require_hw)
    except BackendUnavailable as exc:
        names = ", ".join(["auto", *backend_names()])
        if opts.backend != "auto" and opts.backend not in backend_names():
            raise pytest.UsageError(
                f"--amdgpu-backend={opts.backend}{opts.origin('backend')}: unknown backend; "
                f"accepted values: {names}") from None
        if opts.require_hw:
            flag = f"--amdgpu-require-hw{opts.origin('require_hw')}"
        else:
            flag = f"--amdgpu-backend={opts.backend}{opts.origin('backend')}"
        raise pytest.UsageError(f"{flag}: {exc}") from None
    run.backend_name = backend.name
    run.simulated = backend.simulated
    if opts.backend == "auto":
        run.backend_reason = reason
    else:
        run.backend_reason = f"requested by {opts.describe('backend')}"
    from ..errors import AmdgpuError

    # The GPUs come from the backend's KFD topology, read through one of its ports: sysfs for
    # the real driver, the simulated machine's tree for the simulator (built from --amdgpu-sim).
    port_options = {"sim": ",".join(opts.sim)} if backend.simulated else {}
    try:
        run.candidates, run.kfd_version = inventory(backend, port_options)
    except (AmdgpuError, OSError, ValueError) as exc:
        raise pytest.UsageError(f"--amdgpu-backend={backend.name}: cannot list the GPUs: "
                                f"{exc}") from None
    selected = select_slots(run.candidates, opts.devices,
                            f"--amdgpu-devices{opts.origin('devices')}")
    chosen = config.hook.pytest_amdgpu_select_devices(config=config, devices=list(selected))
    if chosen is not None:
        keys = {s.key for s in run.candidates}
        bad = [d for d in chosen if not isinstance(d, DeviceSlot) or d.key not in keys]
        if bad:
            raise pytest.UsageError(f"pytest_amdgpu_select_devices returned {bad!r}: return "
                                    "DeviceSlot objects from the 'devices' argument")
        selected = list(chosen)
    run.slots = selected


def share_spec(targets: list[str]) -> str:
    """``["gfx942", "gfx942", "gfx1100"]`` -> ``"gfx942x2,gfx1100"`` (order kept)."""
    groups: list[list] = []
    for t in targets:
        if groups and groups[-1][0] == t:
            groups[-1][1] += 1
        else:
            groups.append([t, 1])
    return ",".join(t if n == 1 else f"{t}x{n}" for t, n in groups)


def skip_test(reason: str) -> None:
    """Skip the running test, reported at the test's location (not the plugin's)."""
    try:
        exc = pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:  # a pytest without the keyword
        exc = pytest.skip.Exception(reason)
    raise exc


# --- runtime glue -------------------------------------------------------------------------------

def set_runtime_timeout(seconds: float) -> float:
    """Make ``seconds`` the default deadline of runtime waits (``--amdgpu-timeout``); returns
    the previous default."""
    from ..runtime import get_default_timeout, set_default_timeout

    previous = get_default_timeout()
    set_default_timeout(seconds)
    return previous


def release_object(obj: object) -> None:
    for name in ("destroy", "free", "close"):
        fn = getattr(obj, name, None)
        if callable(fn):
            fn()
            return


_RELEASE_ORDER = {"queue": 0, "pm4": 0, "aql": 0, "sdma": 0, "kernel": 1, "signal": 2,
                  "event": 3, "buffer": 4}


def is_queue(live: Any) -> bool:
    """Whether a LiveObject is a queue (its kind is the queue type: pm4, aql, sdma)."""
    return live.kind in ("queue", "pm4", "aql", "sdma") or hasattr(live.obj, "dump_ring")


class _Quiet:
    """Pause a port's call recording so the plugin's own calls stay out of the test's trace."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self.was = bool(getattr(port, "recording", False))

    def __enter__(self) -> None:
        if self.was:
            self.port.stop_recording()

    def __exit__(self, *exc: object) -> None:
        if self.was:
            self.port.start_recording()


@dataclass
class TestRecord:
    """What the manager knows about the running test."""

    nodeid: str
    # id(device) -> {id(obj): obj} alive when the test began (the objects are held so that an
    # id cannot be reused by a new object during the test)
    baseline: dict[int, dict[int, object]] = field(default_factory=dict)
    exceptions_seen: dict[int, int] = field(default_factory=dict)      # id(process) -> count


class DeviceManager:
    """Opens and keeps this process's devices; per-test accounting and health."""

    def __init__(self, run: AmdgpuRun, config: pytest.Config) -> None:
        self.run = run
        self.config = config
        self.devices: dict[str, Any] = {}           # slot key -> runtime Device
        self.slot_of: dict[int, DeviceSlot] = {}    # id(Device) -> slot
        self.errors: dict[str, str] = {}            # slot key -> why it cannot be opened
        self.unhealthy: dict[str, str] = {}         # slot key -> health-check failure
        self.locks: dict[str, DeviceLock] = {}
        self.exceptions_seen: dict[int, int] = {}   # id(process) -> exceptions already shown
        self.current: TestRecord | None = None
        self.kfd_version: str = ""
        self.opened: list[dict] = []                # metadata of opened devices, for reports
        self.ports: list[Any] = []                  # simulator ports this manager made
        self._previous_timeout: float | None = None

    # -- opening ------------------------------------------------------------------------------
    def device(self, slot: DeviceSlot) -> Any:
        """The runtime Device of a slot, opened on first use; skips or fails the test if it
        cannot be had."""
        dev = self.devices.get(slot.key)
        if dev is not None:
            return dev
        if slot.key in self.errors:
            skip_test(self.errors[slot.key])
        if slot.key in self.unhealthy:
            skip_test(self.unhealthy[slot.key])
        if not self.run.simulated and slot.key not in self.run.local_keys:
            skip_test(f"device {slot.key} belongs to another xdist worker and this worker "
                      f"({self.run.worker_id}) cannot share a GPU; use the default --dist "
                      "load, which routes each device's tests to its worker")
        self._prepare_runtime()
        if self.run.simulated:
            self._open_sim(slot)
        else:
            self._open_one(slot)
        if slot.key in self.errors:
            skip_test(self.errors[slot.key])
        return self.devices[slot.key]

    def all_devices(self) -> list[Any]:
        """Every device this process may use (see AmdgpuRun.usable_slots), opened."""
        return [self.device(slot) for slot in self.run.usable_slots]

    def _prepare_runtime(self) -> None:
        if self._previous_timeout is None:
            self._previous_timeout = set_runtime_timeout(self.run.options.timeout)

    def _open_sim(self, slot: DeviceSlot) -> None:
        """Open a simulated device. This process's simulated machine is the whole
        ``--amdgpu-sim`` host (so a device has the same gpu_id and PCI location with or without
        xdist), and all its devices open in one simulated KFD process."""
        from ..backends import get_backend
        from ..runtime import open_device

        if not self.ports:
            spec = share_spec(list(self.run.options.sim))
            self.ports.append(get_backend(self.run.backend_name).make_port(sim=spec,
                                                                           record=True))
        dev = open_device(port=self.ports[0], index=slot.index, record=True)
        if dev.name != slot.target:
            dev.close()
            raise RuntimeError(f"simulated device {slot.index} is a {dev.name}, expected "
                               f"{slot.target}")
        self._adopt(slot, dev)

    def _open_one(self, slot: DeviceSlot) -> None:
        from ..runtime import open_device

        if slot.lock_name:
            lock = DeviceLock(self.run.options.lock_dir, slot.lock_name)
            try:
                lock.acquire(self.run.options.lock_timeout,
                             on_wait=lambda holder: self._say(
                                 f"amdgpu: waiting up to {self.run.options.lock_timeout:g} s for "
                                 f"GPU {slot.describe()}: locked by {holder}"))
            except DeviceLockTimeout as exc:
                self.errors[slot.key] = f"GPU {slot.describe()} is busy: {exc}"
                return
            self.locks[slot.key] = lock
        try:
            dev = open_device(backend=self.run.backend_name, index=slot.index, record=True)
        except BaseException:
            self._unlock(slot.key)
            raise
        if slot.gpu_id is not None and dev.gpu_id != slot.gpu_id:
            dev.close()
            self._unlock(slot.key)
            raise RuntimeError(f"GPU {slot.index} has gpu_id {dev.gpu_id:#x}, the topology read "
                               f"at start said {slot.gpu_id:#x}: the topology changed during "
                               "the run")
        self._adopt(slot, dev)

    def _adopt(self, slot: DeviceSlot, dev: Any) -> None:
        self.devices[slot.key] = dev
        self.slot_of[id(dev)] = slot
        version = getattr(dev.kfd, "version", None)
        if version:
            self.kfd_version = f"{version[0]}.{version[1]}"
        self.opened.append({"key": slot.key, "target": dev.name, "gpu_id": dev.gpu_id,
                            "backend": self.run.backend_name, "kfd_version": self.kfd_version,
                            "worker": self.run.worker_id})
        if self.current is not None:
            self.current.baseline[id(dev)] = {id(o.obj): o.obj for o in dev.live_objects()}

    def _unlock(self, key: str) -> None:
        lock = self.locks.pop(key, None)
        if lock is not None:
            lock.release()

    def _say(self, text: str) -> None:
        """Tell the user now, past pytest's output capture (a wait can be long)."""
        import contextlib

        capman = self.config.pluginmanager.getplugin("capturemanager")
        ctx = capman.global_and_fixture_disabled() if capman is not None \
            else contextlib.nullcontext()
        try:
            with ctx:
                stream = sys.__stderr__ or sys.stderr
                stream.write(text + "\n")
                stream.flush()
        except Exception:
            pass

    def close(self) -> list[str]:
        """Close every device (end of session); returns descriptions of what was still alive."""
        leftovers = []
        for key, dev in list(self.devices.items()):
            try:
                leaks = dev.close()
                leftovers.extend(f"{key}: {leak}" for leak in leaks)
            except Exception as exc:
                leftovers.append(f"{key}: closing failed: {type(exc).__name__}: {exc}")
        self.devices.clear()
        for port in self.ports:
            try:
                port.close_port()
            except Exception as exc:
                leftovers.append(f"closing the simulated process failed: {exc}")
        self.ports.clear()
        for key in list(self.locks):
            self._unlock(key)
        if self._previous_timeout is not None:
            set_runtime_timeout(self._previous_timeout)
            self._previous_timeout = None
        return leftovers

    def slot_for(self, dev: Any) -> DeviceSlot | None:
        return self.slot_of.get(id(dev))

    # -- per-test accounting ------------------------------------------------------------------
    def begin_test(self, nodeid: str) -> TestRecord:
        rec = TestRecord(nodeid)
        for dev in self.devices.values():
            rec.baseline[id(dev)] = {id(o.obj): o.obj for o in dev.live_objects()}
        for proc in self._processes():
            rec.exceptions_seen[id(proc)] = self.exceptions_seen.get(id(proc), 0)
        self.current = rec
        return rec

    def _processes(self) -> list[Any]:
        seen: dict[int, Any] = {}
        for dev in self.devices.values():
            seen.setdefault(id(dev.process), dev.process)
        return list(seen.values())

    def new_objects(self, rec: TestRecord) -> list[tuple[DeviceSlot, Any]]:
        """(slot, LiveObject) made on the open devices since the test began."""
        out = []
        for dev in self.devices.values():
            if getattr(dev, "closed", False):
                continue
            base = rec.baseline.get(id(dev), {})
            slot = self.slot_of[id(dev)]
            out.extend((slot, o) for o in dev.live_objects() if id(o.obj) not in base)
        return out

    def release_leaks(self, rec: TestRecord) -> list[str]:
        """Release what the test left alive on the devices. Returns one line per leaked
        buffer, queue, event or signal; loaded kernels (code images the runtime shares and
        caches) are released without being reported."""
        lines = []
        leaked = self.new_objects(rec)
        for slot, obj in sorted(leaked, key=lambda p: _RELEASE_ORDER.get(p[1].kind, 1)):
            owner = obj.owner if obj.owner is not None else rec.nodeid
            line = f"{slot.key}: {obj.kind}: {obj.description} (owner {owner})"
            try:
                with _Quiet(self.devices[slot.key].port):
                    release_object(obj.obj)
            except Exception as exc:
                line += f" — releasing it failed: {type(exc).__name__}: {exc}"
            if obj.kind != "kernel":
                lines.append(line)
        return lines

    def new_exceptions(self, rec: TestRecord | None = None) -> list[tuple[Any, Any]]:
        """(process, GPUException) reported since the test began (polls the driver)."""
        out = []
        for proc in self._processes():
            try:
                with _Quiet(proc.port):
                    excs = proc.pending_exceptions()
            except Exception:
                continue
            start = (rec.exceptions_seen.get(id(proc), 0) if rec is not None
                     else self.exceptions_seen.get(id(proc), 0))
            out.extend((proc, e) for e in excs[start:])
        return out

    def mark_exceptions_seen(self) -> None:
        for proc in self._processes():
            try:
                with _Quiet(proc.port):
                    self.exceptions_seen[id(proc)] = len(proc.pending_exceptions())
            except Exception:
                pass

    # -- health ---------------------------------------------------------------------------------
    def health_check(self, dev: Any) -> str | None:
        """Run a PM4 queue round trip on ``dev``; None if healthy, else the reason."""
        with _Quiet(dev.port):
            return _health_check(dev, min(HEALTH_TIMEOUT_S, self.run.options.timeout))

    def mark_unhealthy(self, dev: Any, reason: str) -> None:
        slot = self.slot_of[id(dev)]
        self.unhealthy[slot.key] = reason
        self.config.hook.pytest_amdgpu_device_unhealthy(device=slot, reason=reason)

    # -- diagnostics ------------------------------------------------------------------------------
    def diagnostics(self, rec: TestRecord | None, devices: list[Any]) -> dict[str, str]:
        """The failure report: ``trace`` (ioctl trace tail per KFD process), ``queues`` (state
        and decoded ring around the read pointer of every live queue) and ``exceptions`` (GPU
        faults reported during the test)."""
        traces: list[str] = []
        queues: list[str] = []
        done_ports: set[int] = set()
        for dev in devices:
            slot = self.slot_of.get(id(dev))
            name = f"{slot.key}: " if slot else ""
            port = dev.port
            if id(port) not in done_ports:
                done_ports.add(id(port))
                try:
                    trace = port.format_trace(TRACE_TAIL)
                except Exception as exc:
                    trace = f"(trace unavailable: {exc})"
                traces.append(f"ioctl trace of the KFD process of {name}{dev.describe()} "
                              f"(backend {dev.backend}, KFD {self.kfd_version or '?'}; last "
                              f"{TRACE_TAIL} calls):\n{trace}")
            live = [o for o in _safe_live(dev) if is_queue(o)]
            for q in live:
                report = getattr(q.obj, "state_report", None) or q.obj.dump_ring
                try:
                    with _Quiet(port):
                        queues.append(f"{name}{report()}")
                except Exception as exc:
                    queues.append(f"{name}{q.description}: ring dump failed: "
                                  f"{type(exc).__name__}: {exc}")
            if not live:
                queues.append(f"{name}{dev.describe()}: no live queues")
        excs = self.new_exceptions(rec)
        if excs:
            exceptions = "\n".join(e.message() for _, e in excs)
        else:
            exceptions = "no GPU exceptions were reported to the process during the test"
        return {"trace": "\n\n".join(traces), "queues": "\n\n".join(queues),
                "exceptions": exceptions}


def format_diagnostics(parts: dict[str, str], note: str = "") -> str:
    text = []
    if note:
        text.append(note)
    text.append("--- GPU exceptions ---\n" + parts.get("exceptions", ""))
    text.append("--- queues (decoded ring around the read pointer, => marks it) ---\n"
                + parts.get("queues", ""))
    text.append("--- " + parts.get("trace", ""))
    return "\n".join(text)


def _safe_live(dev: Any) -> list[Any]:
    try:
        return list(dev.live_objects())
    except Exception:
        return []


def _health_check(dev: Any, timeout: float) -> str | None:
    """Create a PM4 queue, RELEASE_MEM a value to a signal, wait for it. None if it worked."""
    from ..errors import AmdgpuError

    queue = signal = None
    try:
        dev.check_exceptions()
        queue = dev.create_queue("pm4", owner="amdgpu health check")
        signal = dev.create_signal(0, owner="amdgpu health check")
        queue.signal(signal, 1)
        signal.wait(1, timeout=timeout)
        return None
    except (AmdgpuError, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        for obj in (queue, signal):
            if obj is not None:
                try:
                    release_object(obj)
                except Exception:
                    pass


# --- artifacts ----------------------------------------------------------------------------------

def safe_test_dir(nodeid: str) -> str:
    """A file-system-safe directory name for a test id."""
    text = nodeid.replace("::", "__").replace("/", "_").replace(os.sep, "_")
    text = re.sub(r"[^A-Za-z0-9_.\-\[\]=,+]", "_", text)
    return text[:200] or "test"


def write_artifacts(base: str, nodeid: str, files: dict[str, str]) -> Path:
    directory = Path(base) / safe_test_dir(nodeid)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


__all__ = [
    "FIXTURES", "RUN_KEY", "AmdgpuRun", "DeviceManager", "TestRecord", "format_diagnostics",
    "plan_run",
    "register_backends", "release_object", "safe_test_dir", "set_runtime_timeout", "share_spec",
    "write_artifacts",
]
