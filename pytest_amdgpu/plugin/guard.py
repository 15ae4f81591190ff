"""Per-test bookkeeping of the plugin: which device a test uses, its report data, the leak check,
the health check after hangs and faults, and the failure diagnostics.

Every test that uses an ``amdgpu_*`` fixture is guarded by the autouse fixture
``_amdgpu_guard``. Being function-scoped and autouse it is set up after every session- and
module-scoped fixture (so objects those made are not the test's) and torn down after every other
function-scoped fixture (so what the factories release is not a leak). At teardown it releases
whatever the test left alive on the fixtures' devices; a test that passed then ERRORs with the
list. After a timeout, a GPU error or a GPU exception it runs a health check (a PM4 queue, a
RELEASE_MEM to a signal, a wait) on the test's devices; a device that fails is marked unhealthy
and its remaining tests skip with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from .report import ResultCollector
from .select import DeviceSlot
from .session import (
    FIXTURES,
    RUN_KEY,
    AmdgpuRun,
    DeviceManager,
    TestRecord,
    format_diagnostics,
    skip_test,
    write_artifacts,
)

SLOT_KEY = pytest.StashKey["DeviceSlot | None"]()
INFO_KEY = pytest.StashKey[dict]()
REC_KEY = pytest.StashKey[TestRecord]()
CALL_FAILED_KEY = pytest.StashKey[bool]()
GPU_ERROR_KEY = pytest.StashKey[str]()
TIMEOUT_KEY = pytest.StashKey[dict]()
PROBLEM_KEY = pytest.StashKey[str]()
DEFERRED_KEY = pytest.StashKey[list]()
COLLECTOR_KEY = pytest.StashKey[ResultCollector]()
THREAD_CAPTURE_S = 5.0


def run_of(config: pytest.Config) -> AmdgpuRun | None:
    return config.stash.get(RUN_KEY, None)


def collector_of(config: pytest.Config) -> ResultCollector:
    col = config.stash.get(COLLECTOR_KEY, None)
    if col is None:
        col = config.stash[COLLECTOR_KEY] = ResultCollector()
    return col


def is_amdgpu_item(item: pytest.Item) -> bool:
    return bool(FIXTURES.intersection(getattr(item, "fixturenames", ())))


def slot_of(item: pytest.Item) -> DeviceSlot | None:
    return item.stash.get(SLOT_KEY, None)


def devices_of(item: pytest.Item, manager: DeviceManager) -> list[Any]:
    """The opened devices a test works with: its device, or all for amdgpu_devices users."""
    slot = slot_of(item)
    names = getattr(item, "fixturenames", ())
    if slot is not None and "amdgpu_devices" not in names:
        dev = manager.devices.get(slot.key)
        return [dev] if dev is not None else []
    return list(manager.devices.values())


class Guard:
    """The per-test logic behind ``_amdgpu_guard`` and the timeout hooks."""

    def __init__(self, run: AmdgpuRun, config: pytest.Config) -> None:
        self.run = run
        self.config = config

    @property
    def manager(self) -> DeviceManager:
        return self.run.get_manager(self.config)

    # -- set-up ---------------------------------------------------------------------------
    def setup(self, item: pytest.Item) -> TestRecord:
        manager = self.manager
        slot = slot_of(item)
        deferred = item.stash.get(DEFERRED_KEY, [])
        if slot is not None and deferred and slot.key in manager.devices:
            from .select import CAPABILITIES

            props = manager.devices[slot.key].properties
            for cap in deferred:
                if not CAPABILITIES[cap].check(manager.devices[slot.key].target, props):
                    skip_test(f"device {slot.key} ({slot.target}) lacks capability {cap!r}: "
                                f"{CAPABILITIES[cap].description}")
        rec = manager.begin_test(item.nodeid)
        item.stash[REC_KEY] = rec
        info = item.stash.setdefault(INFO_KEY, {})
        devs = devices_of(item, manager)
        if devs:
            dev = devs[0]
            info["gpu_id"] = dev.gpu_id
            info["kfd_version"] = manager.kfd_version or None
            props = [("amdgpu_backend", self.run.backend_name),
                     ("amdgpu_target", ",".join(d.name for d in devs)),
                     ("amdgpu_gpu_id", ",".join(f"{d.gpu_id:#x}" for d in devs)),
                     ("amdgpu_kfd_version", manager.kfd_version or "?")]
            have = {k for k, _ in item.user_properties}
            item.user_properties.extend(p for p in props if p[0] not in have)
        return rec

    # -- teardown -------------------------------------------------------------------------
    def teardown(self, item: pytest.Item, rec: TestRecord) -> None:
        manager = self.manager
        manager.current = None
        try:
            leaks = manager.release_leaks(rec)
        finally:
            rec.baseline.clear()
        timed_out = item.stash.get(TIMEOUT_KEY, None)
        gpu_error = item.stash.get(GPU_ERROR_KEY, "")
        new_excs = manager.new_exceptions(rec)
        manager.mark_exceptions_seen()
        why = ""
        if timed_out:
            why = f"timed out after {timed_out['seconds']:g} s"
        elif new_excs:
            why = "saw a GPU exception"
        elif gpu_error:
            why = f"failed with {gpu_error}"
        if why:
            bad_gpus = {e.gpu_id for _, e in new_excs}
            for dev in devices_of(item, manager):
                if new_excs and bad_gpus and dev.gpu_id not in bad_gpus and not timed_out \
                        and not gpu_error:
                    continue
                reason = manager.health_check(dev)
                if reason is not None:
                    slot = manager.slot_for(dev)
                    key = slot.key if slot else dev.name
                    manager.mark_unhealthy(
                        dev, f"device {key} ({dev.describe()}) is unusable: its health check "
                             f"after {item.nodeid} {why} failed: {reason}")
        if leaks and not item.stash.get(CALL_FAILED_KEY, False) and not timed_out:
            lines = "\n".join(f"  {line}" for line in leaks)
            pytest.fail(f"amdgpu leak check: {item.nodeid} left {len(leaks)} object(s) alive "
                        f"on the fixtures' devices (released now):\n{lines}", pytrace=False)

    # -- failures -------------------------------------------------------------------------
    def failure_report(self, item: pytest.Item, when: str, exc: BaseException | None
                       ) -> tuple[str, dict[str, str]] | None:
        """The 'amdgpu' report section for a failed phase, and its parts for artifacts."""
        from ..errors import GPUError

        manager = self.run.manager
        if manager is None:
            return None
        if isinstance(exc, GPUError):
            item.stash[GPU_ERROR_KEY] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        timed = item.stash.get(TIMEOUT_KEY, None)
        devs = devices_of(item, manager)
        if not devs:
            return None
        parts = manager.diagnostics(item.stash.get(REC_KEY, None), devs)
        if timed is not None:
            note = (f"GPU state when pytest-timeout fired after {timed['seconds']:g} s "
                    f"({timed['method']} method); the test's queues are destroyed before its "
                    "teardown and a health check runs before the next test")
        else:
            note = f"GPU state after the {when} phase failed"
        return format_diagnostics(parts, note), parts

    def stop_queues(self, item: pytest.Item) -> list[str]:
        """Destroy the queues a failed (or timed-out) test made, before its fixtures free the
        memory those queues may still be reading: a hung WAIT_REG_MEM polling a buffer that is
        freed under it would fault the GPU on hardware as in the simulator."""
        manager = self.run.manager
        rec = item.stash.get(REC_KEY, None)
        if manager is None or rec is None:
            return []
        from .session import _Quiet, is_queue, release_object

        stopped = []
        for slot, obj in manager.new_objects(rec):
            if not is_queue(obj):
                continue
            try:
                with _Quiet(manager.devices[slot.key].port):
                    release_object(obj.obj)
                stopped.append(f"{slot.key}: destroyed {obj.description}")
            except Exception as exc:
                stopped.append(f"{slot.key}: destroying {obj.description} failed: "
                               f"{type(exc).__name__}: {exc}")
        return stopped

    def on_timeout(self, item: pytest.Item, seconds: float, method: str) -> str:
        """pytest-timeout fired (see timeout). With the signal method this runs in the
        SIGALRM handler, which may have interrupted the runtime or the simulator inside a
        lock: it only records the fact, and the GPU state is read when the call's report is
        made, before teardown. With the thread method the process ends next, so the state is
        read now, in a helper thread given a few seconds (a main thread stuck in a driver call
        must not keep the process from ending)."""
        info = {"seconds": float(seconds), "method": method, "parts": {}}
        item.stash[TIMEOUT_KEY] = info
        if method != "thread":
            return ""
        import threading

        manager = self.run.manager
        box: dict[str, str] = {}

        def capture() -> None:
            if manager is None or not manager.devices:
                box["text"] = "(no device was open)"
                return
            parts = manager.diagnostics(item.stash.get(REC_KEY, None),
                                        devices_of(item, manager))
            info["parts"] = parts
            text = format_diagnostics(parts, f"{item.nodeid}: pytest-timeout fired after "
                                             f"{seconds:g} s ({method} method)")
            box["text"] = text
            self._last_words(item, text, parts)

        helper = threading.Thread(target=capture, name="amdgpu timeout capture", daemon=True)
        helper.start()
        helper.join(THREAD_CAPTURE_S)
        return box.get("text", f"(reading the GPU state took longer than {THREAD_CAPTURE_S} s)")

    def _last_words(self, item: pytest.Item, text: str, parts: dict[str, str]) -> None:
        """Thread-method timeout: the process is about to end; save what we can."""
        if self.run.options.artifacts:
            try:
                write_artifacts(self.run.options.artifacts, item.nodeid,
                                {"amdgpu.txt": text, **{f"{k}.txt": v for k, v in parts.items()},
                                 "failure.txt": "pytest-timeout (thread method) ended the "
                                                "process; no teardown ran\n"})
            except OSError:
                pass
        from . import write_report

        try:
            write_report(self.config, exitstatus=None, partial=True,
                         extra_failure=(item, "timeout (thread method): the process ended"))
        except Exception:
            pass


def guard_of(item: pytest.Item) -> Guard | None:
    """The Guard for an amdgpu test (None for other tests or when the plugin is not set up)."""
    run = run_of(item.config)
    if run is None or not is_amdgpu_item(item):
        return None
    return Guard(run, item.config)
