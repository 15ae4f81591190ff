"""Test results for the ``--amdgpu-report`` JSON file and the area x target matrices.

The controller (or the only process) gathers every test's phase reports; each report carries
``report.amdgpu`` (area, target, backend, device, gpu_id, KFD version, worker), set on the
worker and serialized by xdist with the report. The JSON schema (``pytest-amdgpu-report/1``)::

    {"schema": "pytest-amdgpu-report/1",
     "run": {"started", "finished", "duration", "host", "backend", "backend_reason",
             "kfd_version", "targets": [...], "devices": [{"key", "target", "gpu_id",
             "backend", "kfd_version", "worker"}], "workers", "argv", "exitstatus",
             "pytest_version", "pytest_amdgpu_version", "python", "partial"},
     "summary": {"passed": n, "failed": n, "error": n, "skipped": n, "xfailed": n,
                 "xpassed": n, "total": n},
     "matrix": {area: {target: {"passed": n, "failed": n, "skipped": n, "xfailed": n}}},
     "tests": [{"nodeid", "outcome", "duration", "area", "target", "backend", "device",
                "gpu_id", "kfd_version", "worker", "phase", "message", "known_failure"}]}

``outcome`` is one of passed, failed, error (setup or teardown failed), skipped, xfailed,
xpassed. ``target`` is null for a test that used no single device; the matrix shows it as "-".
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

SCHEMA = "pytest-amdgpu-report/1"
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
NO_TARGET = "-"


@dataclass
class TestResult:
    """One test's outcome, folded from its setup / call / teardown reports."""

    nodeid: str
    outcome: str = "passed"
    duration: float = 0.0
    phase: str = ""
    message: str = ""
    info: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        i = self.info
        return {"nodeid": self.nodeid, "outcome": self.outcome,
                "duration": round(self.duration, 6), "area": i.get("area"),
                "target": i.get("target"), "backend": i.get("backend"),
                "device": i.get("device"), "gpu_id": i.get("gpu_id"),
                "kfd_version": i.get("kfd_version"), "worker": i.get("worker"),
                "phase": self.phase, "message": self.message,
                "known_failure": i.get("known_failure")}


def _short_message(report) -> str:
    longrepr = getattr(report, "longrepr", None)
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:   # skip: (path, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message).splitlines()[0][:500] if crash.message else ""
    text = str(longrepr).strip().splitlines()
    return text[-1][:500] if text else ""


class ResultCollector:
    """Folds phase reports into TestResults, in the order tests started."""

    def __init__(self) -> None:
        self.results: dict[str, TestResult] = {}
        self.workers: dict[str, dict] = {}
        self.started = time.time()

    def add(self, report) -> None:
        when = getattr(report, "when", None)
        if when not in ("setup", "call", "teardown"):
            if when == "???" and report.failed:       # xdist: the worker crashed in the test
                res = self.results.setdefault(report.nodeid, TestResult(report.nodeid))
                res.outcome, res.phase = "failed", "crash"
                res.message = _short_message(report)
            return
        res = self.results.get(report.nodeid)
        if res is None:
            res = self.results[report.nodeid] = TestResult(report.nodeid)
        info = getattr(report, "amdgpu", None)
        if isinstance(info, dict):
            res.info.update({k: v for k, v in info.items() if v is not None})
        res.duration += float(getattr(report, "duration", 0.0) or 0.0)
        xfail = hasattr(report, "wasxfail")
        if report.passed:
            if when == "call":
                res.outcome = "xpassed" if xfail else "passed"
            return
        if report.skipped:
            if when in ("setup", "call"):
                res.outcome = "xfailed" if xfail else "skipped"
                res.phase = when
                res.message = (str(report.wasxfail) if xfail and report.wasxfail
                               else _short_message(report))
            return
        # failed
        if when == "call":
            res.outcome = "failed"
        elif res.outcome not in ("failed",):
            res.outcome = "error"
        if not res.phase or res.outcome == "failed" or when == "setup":
            res.phase = when
            res.message = _short_message(report)

    def add_worker(self, worker: str, data: dict) -> None:
        self.workers[worker] = data

    def tests(self) -> list[TestResult]:
        return list(self.results.values())

    def has_amdgpu_results(self) -> bool:
        return any(r.info.get("target") or r.info.get("area_marker") for r in self.results.values())

    def summary(self) -> dict:
        out = dict.fromkeys(OUTCOMES, 0)
        for r in self.results.values():
            out[r.outcome] = out.get(r.outcome, 0) + 1
        out["total"] = len(self.results)
        return out

    def to_json(self, run_meta: dict) -> dict:
        tests = [r.to_json() for r in self.results.values()]
        return {"schema": SCHEMA, "run": run_meta, "summary": self.summary(),
                "matrix": matrix_of(tests), "tests": tests}


def run_metadata(run, collector: ResultCollector, *, exitstatus: int | None,
                 partial: bool = False, local_devices: Iterable[dict] = ()) -> dict:
    """The "run" object of the JSON report."""
    import pytest

    devices: list[dict] = list(local_devices)
    kfd = ""
    for data in collector.workers.values():
        devices.extend(data.get("devices", []))
    for d in devices:
        kfd = kfd or d.get("kfd_version") or ""
    finished = time.time()
    return {
        "started": _iso(collector.started), "finished": _iso(finished),
        "duration": round(finished - collector.started, 3), "host": socket.gethostname(),
        "backend": run.backend_name, "backend_reason": run.backend_reason,
        "simulated": run.simulated, "kfd_version": kfd or None,
        "targets": sorted({s.target for s in run.slots}),
        "selected": [s.describe() for s in run.slots], "devices": devices,
        "workers": len(collector.workers) or None, "argv": sys.argv[1:],
        "exitstatus": exitstatus, "pytest_version": pytest.__version__,
        "pytest_amdgpu_version": package_version(),
        "python": platform.python_version(), "partial": partial,
    }


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("pytest-amdgpu")
    except Exception:
        import pytest_amdgpu

        return str(getattr(pytest_amdgpu, "__version__", "unknown"))


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def write_json(path: str, data: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


# --- matrices ------------------------------------------------------------------------------------

def cell_bucket(outcome: str) -> str:
    """Which matrix count an outcome adds to."""
    return {"passed": "passed", "xpassed": "passed", "failed": "failed", "error": "failed",
            "skipped": "skipped", "xfailed": "xfailed"}.get(outcome, "skipped")


def matrix_of(tests: Iterable[dict], column=lambda t: t.get("target") or NO_TARGET) -> dict:
    """``{area: {column: {"passed", "failed", "skipped", "xfailed"}}}`` from JSON test rows."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for t in tests:
        area = t.get("area") or "-"
        col = column(t)
        cell = out.setdefault(area, {}).setdefault(
            col, {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0})
        cell[cell_bucket(t.get("outcome", "skipped"))] += 1
    return out


def target_sort_key(name: str) -> tuple:
    return (name == NO_TARGET, name)


def format_cell(cell: dict | None) -> str:
    if not cell:
        return "·"
    text = f"{cell['passed']}/{cell['failed']}/{cell['skipped']}"
    if cell.get("xfailed"):
        text += f" x{cell['xfailed']}"
    return text


def text_matrix(matrix: dict, order: list[str] | None = None) -> list[str]:
    """Terminal lines of an area x column matrix (cells passed/failed/skipped, xN known fails);
    columns in ``order`` first, then the others sorted."""
    present = {c for row in matrix.values() for c in row}
    first = [c for c in (order or []) if c in present]
    columns = first + sorted(present - set(first), key=target_sort_key)
    if not columns:
        return []
    areas = sorted(matrix)
    totals: dict[str, dict[str, int]] = {}
    for row in matrix.values():
        for col, cell in row.items():
            t = totals.setdefault(col, {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0})
            for k in t:
                t[k] += cell.get(k, 0)
    rows = [[a] + [format_cell(matrix[a].get(c)) for c in columns] for a in areas]
    rows.append(["total"] + [format_cell(totals.get(c)) for c in columns])
    head = ["area", *columns]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head)]
    lines += [fmt.format(*r) for r in rows[:-1]]
    lines.append("-" * len(lines[0]))
    lines.append(fmt.format(*rows[-1]))
    return lines
