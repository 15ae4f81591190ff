"""Loading the plugin: entry point, -p no:amdgpu, autoload disabled, --help, light import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ._helpers import text

DEVICE_TEST = """
    def test_device(amdgpu_device):
        assert amdgpu_device.name == "gfx942"
        assert amdgpu_device.gpu_id != 0
"""


def test_import_touches_no_device_and_nothing_heavy():
    code = ("import sys, pytest_amdgpu.plugin\n"
            "heavy = [m for m in sys.modules if m == 'numpy' or m.startswith(("
            "'pytest_amdgpu.runtime', 'pytest_amdgpu.sim', 'pytest_amdgpu.kfd', "
            "'pytest_amdgpu.backends'))]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_plain_run_uses_the_entry_point(pytester, run):
    pytester.makepyfile(DEVICE_TEST)
    result = run("--amdgpu-backend=sim")
    result.assert_outcomes(passed=1)
    out = text(result)
    assert "amdgpu: backend sim (requested by --amdgpu-backend)" in out
    assert "amdgpu: devices: gfx942 (device 0, gpu_id 0x" in out
    assert "amdgpu: targets: gfx942" in out
    assert any(line.startswith("amdgpu: KFD version 1.") and line.endswith("(simulated)")
               for line in out.splitlines())
    assert "test_device[gfx942]" in out or "1 passed" in out


def test_auto_backend_says_which_and_why(pytester, run):
    pytester.makepyfile(DEVICE_TEST)
    result = run("-v")
    out = text(result)
    header = [line for line in out.splitlines() if line.startswith("amdgpu: backend")]
    assert header, out
    if header[0].startswith("amdgpu: backend kfd"):
        pytest.skip("this machine has a usable GPU")
    assert "auto: no usable GPU" in header[0] and "using the simulator" in header[0]
    result.assert_outcomes(passed=1)


def test_disabled_with_p_no(pytester, run):
    pytester.makepyfile(DEVICE_TEST)
    result = run("-p", "no:amdgpu", amdgpu=False)
    result.assert_outcomes(errors=1)
    assert "fixture 'amdgpu_device' not found" in text(result)
    result = run("-p", "no:amdgpu", "--amdgpu-backend=sim", amdgpu=False)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unrecognized arguments: --amdgpu-backend=sim" in text(result)


def test_autoload_disabled_then_p_amdgpu(pytester, run, monkeypatch):
    pytester.makepyfile(DEVICE_TEST)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = run(amdgpu=False)
    assert "fixture 'amdgpu_device' not found" in text(result)
    result = run("-p", "amdgpu")
    result.assert_outcomes(passed=1)


def test_help_lists_the_option_group(pytester, run):
    result = run("--help", amdgpu=False)
    assert result.ret == 0
    out = text(result)
    assert "AMD GPU testing" in out
    for flag in ("--amdgpu-backend", "--amdgpu-require-hw", "--amdgpu-sim", "--amdgpu-devices",
                 "--amdgpu-timeout", "--amdgpu-artifacts", "--amdgpu-lock-dir",
                 "--amdgpu-report", "--amdgpu-known-failures"):
        assert flag in out, flag
    for ini in ("amdgpu_backend", "amdgpu_sim", "amdgpu_known_failures"):
        assert ini in out, ini


def test_markers_are_registered_for_strict_markers(pytester, run):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.amdgpu_area("memory")
        @pytest.mark.amdgpu_target("gfx9*")
        @pytest.mark.amdgpu_requires("wave64")
        @pytest.mark.amdgpu_min_devices(1)
        @pytest.mark.amdgpu_sim_only
        def test_marked(amdgpu_device):
            pass

        @pytest.mark.amdgpu_hw_only
        def test_hw():
            pass
    """)
    result = run("--strict-markers", "--amdgpu-backend=sim")
    result.assert_outcomes(passed=1, skipped=1)
    result = run("--markers", amdgpu=False)
    out = text(result)
    for name in ("amdgpu_target(*patterns)", "amdgpu_requires(*capabilities)",
                 "amdgpu_min_devices(n)", "amdgpu_hw_only", "amdgpu_sim_only",
                 "amdgpu_area(name)"):
        assert f"@pytest.mark.{name}" in out, name


def test_downstream_conftest_naming_the_plugin_by_entry_point_name(pytester, run):
    pytester.makeconftest('pytest_plugins = ["amdgpu"]\n')
    pytester.makepyfile(DEVICE_TEST)
    run().assert_outcomes(passed=1)


def test_configure_twice_in_one_process(pytester, monkeypatch):
    # pytester's in-process runs drop modules imported during the run; numpy cannot be loaded
    # twice in one process, so load what opening a device needs beforehand
    import pytest_amdgpu.runtime
    import pytest_amdgpu.sim.port  # noqa: F401

    for name in ("PYTEST_AMDGPU_SIM", "PYTEST_AMDGPU_BACKEND", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(DEVICE_TEST)
    for _ in range(2):
        result = pytester.inline_run("--amdgpu-backend=sim", "-p", "no:cacheprovider",
                                     f"--amdgpu-lock-dir={pytester.path / 'locks'}")
        result.assertoutcome(passed=1)
