"""Hooks (backends, device selection) and the per-GPU flock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from pytest_amdgpu.plugin.locks import DeviceLock, DeviceLockTimeout

from ._helpers import FAKE_GPU_CONFTEST, text

DEVICE_TEST = """
    def test_device(amdgpu_device):
        assert amdgpu_device.name == "gfx942"
"""


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    a = DeviceLock(str(tmp_path / "locks"), "gpu-1")
    b = DeviceLock(str(tmp_path / "locks"), "gpu-1")
    assert a.try_acquire()
    assert not b.try_acquire()
    waited = []
    with pytest.raises(DeviceLockTimeout, match=rf"held by another run \(pid {os.getpid()} "):
        b.acquire(0.3, on_wait=waited.append)
    assert waited and f"pid {os.getpid()}" in waited[0]
    a.release()
    assert b.try_acquire()
    b.release()
    assert oct(os.stat(tmp_path / "locks").st_mode & 0o7777) == oct(0o1777)


def test_the_kernel_drops_the_lock_of_a_killed_holder(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from pytest_amdgpu.plugin.locks import DeviceLock
        lock = DeviceLock({str(tmp_path)!r}, "gpu-7")
        assert lock.try_acquire()
        print("held", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        mine = DeviceLock(str(tmp_path), "gpu-7")
        assert not mine.try_acquire()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        mine.acquire(10)
        mine.release()
    finally:
        child.kill()
        child.wait()


def test_registered_backend_and_device_lock(pytester, run, tmp_path):
    pytester.makeconftest(FAKE_GPU_CONFTEST)
    pytester.makepyfile(DEVICE_TEST)
    locks = tmp_path / "locks"
    result = run("--amdgpu-backend=fakegpu", f"--amdgpu-lock-dir={locks}", "-v")
    result.assert_outcomes(passed=1)
    out = text(result)
    assert "amdgpu: backend fakegpu (requested by --amdgpu-backend)" in out
    assert "gpu_id 0x" in out                      # hardware-style slots know their gpu_id
    [lock_file] = list(locks.iterdir())
    assert lock_file.name.startswith("pci-")
    # another run holds the GPU: this run waits, then skips its tests with the reason
    held = DeviceLock(str(locks), lock_file.name[:-len(".lock")])
    assert held.try_acquire()
    try:
        result = run("--amdgpu-backend=fakegpu", f"--amdgpu-lock-dir={locks}",
                     "--amdgpu-lock-timeout=0.5", "-rs")
    finally:
        held.release()
    result.assert_outcomes(skipped=1)
    out = text(result)
    assert "is busy" in out and f"held by another run (pid {os.getpid()}" in out
    assert "amdgpu: waiting up to 0.5 s for GPU gfx942" in out


def test_select_devices_hook(pytester, run):
    pytester.makeconftest("""
        def pytest_amdgpu_select_devices(config, devices):
            return [d for d in devices if d.target != "gfx90a"]
    """)
    pytester.makepyfile(DEVICE_TEST.replace('== "gfx942"', 'in ("gfx942", "gfx1100")'))
    result = run("--amdgpu-backend=sim", "--amdgpu-sim=gfx90a,gfx942,gfx1100", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_device?gfx942? PASSED*", "*test_device?gfx1100? PASSED*"])
