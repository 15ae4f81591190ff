"""pytest-xdist: a device pool on the controller, device-aware scheduling, -n auto."""

from __future__ import annotations

import json

import pytest

from pytest_amdgpu.plugin.select import name_slots
from pytest_amdgpu.plugin.session import AmdgpuRun, share_spec
from pytest_amdgpu.plugin.xdist import DevicePool

from ._helpers import FAKE_GPU_CONFTEST, text

pytest.importorskip("xdist")

RECORDER = """
    import json, os, pathlib
    import pytest

    def record(name, device):
        out = pathlib.Path(os.environ["RECORD_DIR"])
        row = {"test": name, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
               "pid": os.getpid(), "gpu_id": device.gpu_id}
        (out / f"{name}-{os.getpid()}.json").write_text(json.dumps(row))

    @pytest.mark.parametrize("n", range(3))
    def test_one(amdgpu_device, request, n):
        record(request.node.name, amdgpu_device)

    def test_all(amdgpu_devices, request):
        # the simulator: every worker has a private machine with every selected device
        assert len(amdgpu_devices) == 2
"""


def _rows(directory) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(directory.iterdir())]


def _by_gpu(rows: list[dict]) -> dict[int, set]:
    out: dict[int, set] = {}
    for row in rows:
        out.setdefault(row["gpu_id"], set()).add((row["worker"], row["pid"]))
    return out


def test_two_workers_each_get_their_own_device(pytester, run, monkeypatch, tmp_path):
    pytester.makepyfile(RECORDER)
    monkeypatch.setenv("RECORD_DIR", str(tmp_path))
    result = run("--amdgpu-backend=sim", "--amdgpu-sim=gfx942x2", "-n", "2",
                 "--amdgpu-report=report.json")
    result.assert_outcomes(passed=7)
    by_gpu = _by_gpu(_rows(tmp_path))
    # two devices; each device's tests all ran in one worker process; different workers
    assert len(by_gpu) == 2
    assert all(len(v) == 1 for v in by_gpu.values()), by_gpu
    (w0,), (w1,) = by_gpu.values()
    assert w0[0] != w1[0] and w0[1] != w1[1]
    data = json.loads((pytester.path / "report.json").read_text())
    assert data["run"]["workers"] == 2
    assert {d["key"] for d in data["run"]["devices"]} == {"gfx942", "gfx942-1"}
    assert {t["worker"] for t in data["tests"]} == {"gw0", "gw1"}


def test_auto_workers_equal_the_device_count(pytester, run):
    pytester.makepyfile("""
        def test_x(amdgpu_device):
            pass
    """)
    result = run("--amdgpu-backend=sim", "--amdgpu-sim=gfx90a,gfx942,gfx1100", "-n", "auto")
    result.assert_outcomes(passed=3)
    assert "created: 3/3 workers" in text(result)


CRASH_FIRST = """
    import json, os, pathlib
    import pytest

    def record(name, device):
        out = pathlib.Path(os.environ["RECORD_DIR"])
        row = {"test": name, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
               "pid": os.getpid(), "gpu_id": device.gpu_id}
        (out / f"{name}-{os.getpid()}.json").write_text(json.dumps(row))

    def test_crash(amdgpu_device, request):
        flag = pathlib.Path(os.environ["RECORD_DIR"]) / "crashed"
        if request.node.name == "test_crash[gfx942-1]":
            flag.write_text(os.environ["PYTEST_XDIST_WORKER"])
            os._exit(3)
        record(request.node.name, amdgpu_device)

    @pytest.mark.parametrize("n", range(3))
    def test_one(amdgpu_device, request, n):
        record(request.node.name, amdgpu_device)
"""


def test_a_restarted_worker_gets_the_free_device(pytester, run, monkeypatch, tmp_path):
    pytester.makepyfile(CRASH_FIRST)
    monkeypatch.setenv("RECORD_DIR", str(tmp_path))
    result = run("--amdgpu-backend=sim", "--amdgpu-sim=gfx942x2", "-n", "2",
                 "--max-worker-restart=1")
    result.assert_outcomes(passed=7, failed=1)
    assert "replacing crashed worker" in text(result)
    crashed = (tmp_path / "crashed").read_text()
    (tmp_path / "crashed").unlink()
    by_gpu = _by_gpu(_rows(tmp_path))
    assert len(by_gpu) == 2 and all(len(v) == 1 for v in by_gpu.values()), by_gpu
    workers = {next(iter(v))[0] for v in by_gpu.values()}
    # gfx942-1's remaining tests ran on the replacement worker, which is neither the crashed
    # one nor the worker holding gfx942
    assert crashed not in workers and len(workers) == 2


def test_pool_shares_and_returns(tmp_path):
    run = AmdgpuRun(options=None)  # type: ignore[arg-type]
    run.slots = name_slots([{"target": t, "backend": "sim", "simulated": True}
                            for t in ["gfx90a", "gfx942", "gfx942", "gfx1100"]])
    pool = DevicePool(run, 2)
    try:
        assert pool.take("gw0") == ["gfx90a", "gfx942-1"]
        assert pool.take("gw1") == ["gfx942", "gfx1100"]
        assert pool.take("gw2") == []                  # more workers than shares
        pool.give_back("gw1", crashed=False)           # finished normally
        pool.give_back("gw0", crashed=True)            # crashed: its share goes first
        assert pool.take("gw3") == ["gfx90a", "gfx942-1"]
        assert pool.take("gw4") == ["gfx942", "gfx1100"]
    finally:
        pool.cleanup()
    assert share_spec(["gfx942", "gfx942", "gfx1100", "gfx942"]) == "gfx942x2,gfx1100,gfx942"


def test_hardware_style_shares_and_locks(pytester, run, monkeypatch, tmp_path):
    """A non-simulated backend (the simulator posing as two GPUs): each worker locks and opens
    only its share, so a two-GPU test skips under -n 2 with the reason."""
    pytester.makeconftest(FAKE_GPU_CONFTEST)
    pytester.makepyfile(RECORDER.replace("assert len(amdgpu_devices) == 2",
                                         "assert len(amdgpu_devices) == 1") + """
    @pytest.mark.amdgpu_min_devices(2)
    def test_pair(amdgpu_devices):
        pass
    """)
    monkeypatch.setenv("RECORD_DIR", str(tmp_path / "rec"))
    monkeypatch.setenv("FAKE_GPUS", "gfx942x2")
    (tmp_path / "rec").mkdir()
    locks = tmp_path / "locks"
    result = run("--amdgpu-backend=fakegpu", f"--amdgpu-lock-dir={locks}", "-n", "2", "-rs")
    result.assert_outcomes(passed=7, skipped=1)
    assert "run multi-GPU tests without -n" in text(result)
    by_gpu = _by_gpu(_rows(tmp_path / "rec"))
    assert len(by_gpu) == 2 and all(len(v) == 1 for v in by_gpu.values()), by_gpu
    assert len({next(iter(v))[0] for v in by_gpu.values()}) == 2
    assert len(list(locks.iterdir())) == 2        # one flock file per GPU
