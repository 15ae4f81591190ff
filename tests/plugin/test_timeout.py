"""pytest-timeout integration: a hung queue under the signal and the thread method."""

from __future__ import annotations

import json

from ._helpers import text

HANG = """
    def test_hang(amdgpu_queue, amdgpu_buffer, amdgpu_signal):
        flag = amdgpu_buffer(4096, "gtt")          # stays 0: the wait below never ends
        done = amdgpu_signal(0)
        amdgpu_queue.wait_reg_mem(flag.gpu_address, 1, function="==")
        amdgpu_queue.signal(done, 1)
        done.wait(1, timeout=120)

    def test_next(amdgpu_queue, amdgpu_signal):
        done = amdgpu_signal(0)
        amdgpu_queue.signal(done, 1)
        assert done.wait(1, timeout=10) == 1
"""


def test_signal_method_destroys_the_hung_queue_and_the_run_goes_on(pytester, run):
    pytester.makepyfile(HANG)
    result = run("--amdgpu-backend=sim", "--timeout=3", "--timeout-method=signal",
                 "--amdgpu-report=report.json")
    result.assert_outcomes(failed=1, passed=1)
    out = text(result)
    assert "Timeout (>3.0s) from pytest-timeout" in out
    assert "GPU state when pytest-timeout fired after 3 s (signal method)" in out
    assert "WAIT_REG_MEM" in out and "func=\"==\"" in out
    assert "--- the test's queues, destroyed before its teardown ---" in out
    assert "destroyed PM4 queue" in out
    tests = {t["nodeid"].split("::")[1]: t for t in
             json.loads((pytester.path / "report.json").read_text())["tests"]}
    assert tests["test_hang[gfx942]"]["outcome"] == "failed"
    assert tests["test_next[gfx942]"]["outcome"] == "passed"


def test_thread_method_ends_the_run_after_printing_the_gpu_state(pytester, run):
    pytester.makepyfile(HANG)
    result = run("--amdgpu-backend=sim", "--timeout=3", "--timeout-method=thread",
                 "--amdgpu-report=report.json", "--amdgpu-artifacts=art")
    assert result.ret == 1
    out = text(result)
    assert "amdgpu: GPU state at the timeout" in out
    assert "pytest-timeout fired after 3 s (thread method)" in out
    assert "WAIT_REG_MEM" in out
    assert "test_next" not in out            # os._exit: the run ended at the hang
    data = json.loads((pytester.path / "report.json").read_text())
    assert data["run"]["partial"] is True
    [row] = [t for t in data["tests"] if "test_hang" in t["nodeid"]]
    assert row["outcome"] == "failed" and "thread method" in row["message"]
    art = pytester.path / "art"
    [test_dir] = list(art.iterdir())
    assert "WAIT_REG_MEM" in (test_dir / "queues.txt").read_text()


def test_runtime_waits_default_to_amdgpu_timeout(pytester, run):
    pytester.makepyfile("""
        import pytest
        from pytest_amdgpu.errors import GPUTimeoutError

        def test_default_deadline(amdgpu_queue, amdgpu_buffer, amdgpu_signal):
            flag = amdgpu_buffer(4096, "gtt")
            done = amdgpu_signal(0)
            amdgpu_queue.wait_reg_mem(flag.gpu_address, 1, function="==")
            amdgpu_queue.signal(done, 1)
            with pytest.raises(GPUTimeoutError) as info:
                done.wait(1)                      # no timeout given: --amdgpu-timeout
            assert "1.5" in str(info.value) or "1.50" in str(info.value)
            flag.view()[0] = 1                    # let the queue finish before teardown
            done.wait(1, timeout=10)
    """)
    result = run("--amdgpu-backend=sim", "--amdgpu-timeout=1.5")
    result.assert_outcomes(passed=1)
