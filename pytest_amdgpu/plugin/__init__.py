"""The ``amdgpu`` pytest plugin (entry point ``pytest11: amdgpu = "pytest_amdgpu.plugin"``).

``pytest -p amdgpu`` loads it (it is also auto-loaded when installed); ``-p no:amdgpu`` turns
it off. A downstream conftest that wants to name it writes ``pytest_plugins = ["amdgpu"]``
(never the module path, which would register it twice).

It provides the ``amdgpu`` option group (each option also an ini key and a PYTEST_AMDGPU_*
environment variable), the ``amdgpu_*`` fixtures, the ``amdgpu_*`` markers, device locking and
an xdist device pool, pytest-timeout integration, failure diagnostics, JUnit properties, the
``--amdgpu-report`` JSON file and an area x target matrix at the end of the run.

Importing this module touches no device and imports no runtime, simulator or numpy: those load
when a fixture first opens a device.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Generator
from typing import Any

import pytest

from . import hookspecs
from .fixtures import (  # noqa: F401 - fixtures are found in this module's namespace
    _amdgpu_guard,
    amdgpu_aql_queue,
    amdgpu_buffer,
    amdgpu_device,
    amdgpu_devices,
    amdgpu_event,
    amdgpu_kernel,
    amdgpu_pm4_queue,
    amdgpu_process,
    amdgpu_queue,
    amdgpu_sdma_queue,
    amdgpu_signal,
)
from .guard import (
    CALL_FAILED_KEY,
    DEFERRED_KEY,
    INFO_KEY,
    PROBLEM_KEY,
    SLOT_KEY,
    Guard,
    collector_of,
    is_amdgpu_item,
    run_of,
    slot_of,
)
from .options import add_options
from .report import run_metadata, text_matrix, write_json
from .select import (
    CAPABILITIES,
    MARKERS,
    DeviceSlot,
    area_of,
    capability_skip,
    min_devices,
    select_slots,
    target_skip,
    unknown_capabilities,
)
from .session import plan_run, skip_test, write_artifacts

_XDIST_PLUGIN = "amdgpu-xdist"
_TIMEOUT_PLUGIN = "amdgpu-timeout"


# --- registration -----------------------------------------------------------------------------

def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add the amdgpu hookspecs; register the xdist and pytest-timeout hooks when installed."""
    pluginmanager.add_hookspecs(hookspecs)
    if importlib.util.find_spec("xdist") is not None \
            and pluginmanager.get_plugin(_XDIST_PLUGIN) is None:
        from .xdist import XdistHooks

        pluginmanager.register(XdistHooks(), _XDIST_PLUGIN)
    if importlib.util.find_spec("pytest_timeout") is not None \
            and pluginmanager.get_plugin(_TIMEOUT_PLUGIN) is None:
        from .timeout import TimeoutHooks

        pluginmanager.register(TimeoutHooks(), _TIMEOUT_PLUGIN)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", text if text.startswith(name) else f"{name}: {text}")
    if config.getoption("help", False):
        return
    plan_run(config)
    collector_of(config)
    if not hasattr(config, "workerinput") and config.pluginmanager.get_plugin(_LISTENER) is None:
        config.pluginmanager.register(_ResultListener(config), _LISTENER)


def pytest_unconfigure(config: pytest.Config) -> None:
    listener = config.pluginmanager.get_plugin(_LISTENER)
    if listener is not None:
        config.pluginmanager.unregister(listener)
    run = run_of(config)
    if run is not None and run.manager is not None:
        run.manager.close()
    try:
        from .xdist import POOL_KEY
    except ImportError:
        return
    pool = config.stash.get(POOL_KEY, None)
    if pool is not None:
        pool.cleanup()


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = run_of(config)
    if run is None:
        return []
    return run.header()


# --- collection ------------------------------------------------------------------------------

def _user_parametrizes_device(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if "amdgpu_device" in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "amdgpu_device" not in metafunc.fixturenames or _user_parametrizes_device(metafunc):
        return
    run = run_of(metafunc.config)
    if run is None:
        return
    if not run.slots:
        reason = "no amdgpu device is selected (--amdgpu-devices, pytest_amdgpu_select_devices)"
        metafunc.parametrize("amdgpu_device",
                             [pytest.param(None, id="no-device",
                                           marks=pytest.mark.skip(reason=reason))],
                             indirect=True, scope="session")
        return
    metafunc.parametrize("amdgpu_device", run.slots, ids=[s.key for s in run.slots],
                         indirect=True, scope="session")


def _item_slot(run: Any, item: pytest.Item) -> tuple[DeviceSlot | None, str]:
    callspec = getattr(item, "callspec", None)
    if callspec is None or "amdgpu_device" not in callspec.params:
        return None, ""
    param = callspec.params["amdgpu_device"]
    if isinstance(param, DeviceSlot) or param is None:
        return param, ""
    try:
        return select_slots(run.slots, [str(param)], "amdgpu_device parameter")[0], ""
    except pytest.UsageError as exc:
        return None, str(exc)


def _route(item: pytest.Item) -> tuple[str | None, int]:
    """(device key, devices needed) for the xdist scheduler. On the simulator every worker can
    open every device, so a device count never restricts where a test runs."""
    slot = slot_of(item)
    run = run_of(item.config)
    need = 0 if run is not None and run.simulated else min_devices(item)
    return (slot.key if slot else None, need)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    run = run_of(config)
    if run is None:
        return
    for item in items:
        slot, problem = _item_slot(run, item)
        item.stash[SLOT_KEY] = slot
        area_marker = item.get_closest_marker("amdgpu_area") is not None
        item.stash[INFO_KEY] = {"area": area_of(item), "area_marker": area_marker or None,
                                "target": slot.target if slot else None,
                                "device": slot.key if slot else None,
                                "backend": run.backend_name if (slot or is_amdgpu_item(item))
                                else None}
        if problem:
            item.add_marker(pytest.mark.skip(reason=problem))
            continue
        reason = _collection_skip(run, item, slot)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
            continue
        for entry in run.known_failures:
            if entry.matches(item.nodeid, slot.target if slot else None, run.backend_name):
                where = f" on {slot.target}" if slot else ""
                item.add_marker(pytest.mark.xfail(
                    reason=f"known failure{where}: {entry.reason} ({entry.where})",
                    strict=False))
                item.stash[INFO_KEY]["known_failure"] = entry.reason
                break
    if run.worker_id:
        from .xdist import write_routes

        write_routes(run, items, _route)


def _collection_skip(run: Any, item: pytest.Item, slot: DeviceSlot | None) -> str | None:
    if item.get_closest_marker("amdgpu_hw_only") is not None and run.simulated:
        return (f"hardware-only test (amdgpu_hw_only); the backend is {run.backend_name}: "
                f"{run.backend_reason}")
    if item.get_closest_marker("amdgpu_sim_only") is not None and not run.simulated:
        return f"simulator-only test (amdgpu_sim_only); the backend is {run.backend_name}"
    bad = unknown_capabilities(item)
    if bad:
        item.stash[PROBLEM_KEY] = (
            f"amdgpu_requires: unknown capabilities {bad}; accepted values: "
            + ", ".join(CAPABILITIES))
        return None
    need = min_devices(item)
    if need > len(run.slots):
        return (f"needs {need} devices (amdgpu_min_devices), the run has {len(run.slots)}"
                f" ({', '.join(s.key for s in run.slots) or 'none'})")
    if slot is None:
        return None
    reason = target_skip(item, slot)
    if reason:
        return reason
    reason, deferred = capability_skip(item, slot.target, slot.properties or None, slot.key)
    if deferred:
        item.stash[DEFERRED_KEY] = deferred
    return reason


# --- running ---------------------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    problem = item.stash.get(PROBLEM_KEY, "")
    if problem:
        pytest.fail(problem, pytrace=False)
    run = run_of(item.config)
    if run is None or not is_amdgpu_item(item) or item.get_closest_marker("skip") is not None:
        return
    manager = run.manager
    slot = slot_of(item)
    if manager is not None and slot is not None:
        for table in (manager.unhealthy, manager.errors):
            if slot.key in table:
                skip_test(table[slot.key])
    need = min_devices(item)
    usable = run.usable_slots
    if need and len(usable) < need:
        where = f"worker {run.worker_id} holds" if run.worker_id else "this process has"
        skip_test(f"needs {need} devices (amdgpu_min_devices); {where} {len(usable)} of the "
                  f"run's {len(run.slots)}"
                  + (" (under xdist each worker gets a share of the GPUs; run multi-GPU tests "
                     "without -n)" if run.worker_id else ""))
    if manager is not None and "amdgpu_devices" in getattr(item, "fixturenames", ()):
        bad = [manager.unhealthy.get(s.key) or manager.errors.get(s.key)
               for s in usable if s.key in manager.unhealthy or s.key in manager.errors]
        if bad:
            skip_test(bad[0])


def _is_skip(excinfo: Any) -> bool:
    return excinfo.errisinstance((pytest.skip.Exception, pytest.xfail.Exception))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    run = run_of(item.config)
    failure = None
    if call.when == "call":
        item.stash[CALL_FAILED_KEY] = call.excinfo is not None and not _is_skip(call.excinfo)
    if (run is not None and call.excinfo is not None and not _is_skip(call.excinfo)
            and call.when in ("setup", "call") and is_amdgpu_item(item)):
        try:
            failure = Guard(run, item.config).failure_report(item, call.when,
                                                             call.excinfo.value)
        except Exception as exc:  # a report must never hide the test's own failure
            failure = (f"(collecting the GPU state failed: {type(exc).__name__}: {exc})", {})
        if call.when == "call":
            try:
                stopped = Guard(run, item.config).stop_queues(item)
            except Exception as exc:
                stopped = [f"destroying the test's queues failed: {type(exc).__name__}: {exc}"]
            if stopped and failure is not None:
                failure = (failure[0] + "\n--- the test's queues, destroyed before its teardown "
                           "---\n" + "\n".join(stopped), failure[1])
        if failure is not None:
            item.add_report_section(call.when, "amdgpu", failure[0])
    report = yield
    info = dict(item.stash.get(INFO_KEY, {}))
    if run is not None and run.worker_id:
        info["worker"] = run.worker_id
    report.amdgpu = info  # type: ignore[attr-defined]
    if failure is not None and run is not None and run.options.artifacts:
        _save_artifacts(item, run, failure, report)
    return report


def _save_artifacts(item: pytest.Item, run: Any, failure: tuple[str, dict], report: Any
                    ) -> None:
    text, parts = failure
    files = {"amdgpu.txt": text, **{f"{k}.txt": v for k, v in parts.items()},
             "failure.txt": str(report.longrepr)}
    try:
        directory = write_artifacts(run.options.artifacts, item.nodeid, files)
    except OSError as exc:
        item.add_report_section(report.when, "amdgpu artifacts", f"not written: {exc}")
        return
    report.sections.append((f"amdgpu artifacts {report.when}", str(directory)))
    manager = run.manager
    if manager is None:
        return
    from .guard import devices_of

    for dev in devices_of(item, manager):
        item.config.hook.pytest_amdgpu_collect_artifacts(item=item, device=dev,
                                                        directory=directory)


class _ResultListener:
    """Feeds every test report to the run's ResultCollector (controller or only process)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        collector_of(self.config).add(report)


_LISTENER = "amdgpu-results"


# --- the end of the run ------------------------------------------------------------------------

def write_report(config: pytest.Config, *, exitstatus: int | None, partial: bool = False,
                 extra_failure: tuple[pytest.Item, str] | None = None) -> str | None:
    """Write ``--amdgpu-report`` (on the controller or the only process); returns its path."""
    run = run_of(config)
    if run is None or not run.options.report or hasattr(config, "workerinput"):
        return None
    collector = collector_of(config)
    local = run.manager.opened if run.manager is not None else []
    data = collector.to_json(run_metadata(run, collector, exitstatus=exitstatus,
                                          partial=partial, local_devices=local))
    if extra_failure is not None:
        item, message = extra_failure
        info = dict(item.stash.get(INFO_KEY, {}))
        row = {"nodeid": item.nodeid, "outcome": "failed", "duration": None,
               "area": info.get("area"), "target": info.get("target"),
               "backend": info.get("backend"), "device": info.get("device"),
               "gpu_id": info.get("gpu_id"), "kfd_version": info.get("kfd_version"),
               "worker": None, "phase": "call", "message": message, "known_failure": None}
        data["tests"] = [t for t in data["tests"] if t["nodeid"] != item.nodeid] + [row]
        data["summary"] = {**data["summary"], "failed": data["summary"]["failed"] + 1}
    write_json(run.options.report, data)
    return run.options.report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    run = run_of(config)
    if run is None:
        return
    leftovers = run.manager.close() if run.manager is not None else []
    if hasattr(config, "workeroutput"):
        config.workeroutput["amdgpu"] = {
            "devices": run.manager.opened if run.manager is not None else [],
            "share": run.local_keys, "leftovers": leftovers}
        return
    path = write_report(config, exitstatus=int(exitstatus))
    if path:
        config.stash[_REPORT_PATH] = path


_REPORT_PATH = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    run = run_of(config)
    if run is None or hasattr(config, "workerinput"):
        return
    collector = collector_of(config)
    if collector.has_amdgpu_results():
        tests = [r.to_json() for r in collector.tests()
                 if r.info.get("target") or r.info.get("area_marker")]
        from .report import matrix_of

        order = list(dict.fromkeys(s.target for s in run.slots))
        lines = text_matrix(matrix_of(tests), order)
        if lines:
            terminalreporter.write_sep(
                "=", f"amdgpu results: area x target (passed/failed/skipped; backend "
                     f"{run.backend_name})")
            for line in lines:
                terminalreporter.write_line(line)
    devices = list(run.manager.opened) if run.manager is not None else []
    for data in collector.workers.values():
        devices.extend(data.get("devices", []))
    if devices:
        seen: dict[tuple, list[str]] = {}
        for d in devices:
            seen.setdefault((d["key"], d["gpu_id"]), []).append(d.get("worker") or "")
        shown = ", ".join(f"{key} gpu_id {gpu:#x}"
                          + (f" ({', '.join(sorted(w for w in workers if w))})"
                             if any(workers) else "")
                          for (key, gpu), workers in seen.items())
        kfd = next((d["kfd_version"] for d in devices if d.get("kfd_version")), "?")
        terminalreporter.write_line(f"amdgpu: KFD {kfd}; devices used: {shown}")
    path = config.stash.get(_REPORT_PATH, None)
    if path:
        terminalreporter.write_line(f"amdgpu: JSON report written to {os.path.abspath(path)}")
