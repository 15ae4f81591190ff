"""A downstream project: a test file and nothing else (no conftest, no ini), using the fixtures
from the installed package, loading a shipped kernel and checking what it computed."""

from __future__ import annotations

DOWNSTREAM = """
    import numpy as np
    import pytest

    def test_write_value_pm4(amdgpu_device, amdgpu_queue, amdgpu_kernel, amdgpu_buffer):
        kernel = amdgpu_kernel("write_value")
        out = amdgpu_buffer(4096, "gtt")
        out.view(np.uint32)[:] = 0
        amdgpu_queue.dispatch(kernel, grid=64, block=64,
                              args=[out.gpu_address, 0xC0FFEE]).wait(timeout=60)
        assert out.view(np.uint32)[0] == 0xC0FFEE
        assert not out.view(np.uint32)[1:].any()

    @pytest.mark.parametrize("count", [1, 100, 257])
    def test_copy_aql(amdgpu_device, amdgpu_aql_queue, amdgpu_kernel, amdgpu_buffer, count):
        kernel = amdgpu_kernel("copy")
        src = amdgpu_buffer(4096, "gtt")
        dst = amdgpu_buffer(4096, "vram")
        expected = (np.arange(1024, dtype=np.uint32) * 2654435761) & 0xFFFFFFFF
        src.view(np.uint32)[:] = expected
        dst.view(np.uint32)[:] = 0xFFFFFFFF
        amdgpu_aql_queue.dispatch(kernel, grid=count, block=64,
                                  args=[src.gpu_address, dst.gpu_address, count]
                                  ).wait(timeout=60)
        got = dst.view(np.uint32)
        assert (got[:count] == expected[:count]).all()
        assert (got[count:] == 0xFFFFFFFF).all()

    def test_code_object_path(amdgpu_device, amdgpu_queue, amdgpu_kernel, amdgpu_buffer):
        from pytest_amdgpu import kernels
        kernel = amdgpu_kernel(str(kernels.path("write_value", amdgpu_device.name)),
                               "write_value")
        out = amdgpu_buffer(4096, "gtt")
        amdgpu_queue.dispatch(kernel, grid=1, block=1, args=[out.gpu_address, 7]).wait(
            timeout=60)
        assert out.view(np.uint32)[0] == 7

    def test_device_api_directly(amdgpu_device, amdgpu_buffer):
        # kernels loaded straight from the device and left loaded are not leaks
        from pytest_amdgpu import kernels
        kernel = amdgpu_device.load_kernel(kernels.path("write_value", amdgpu_device.name),
                                           "write_value")
        queue = amdgpu_device.create_queue("aql")
        out = amdgpu_buffer(4096, "gtt")
        queue.dispatch(kernel, grid=1, block=1, args=[out.gpu_address, 9]).wait(timeout=60)
        queue.destroy()
        assert out.view(np.uint32)[0] == 9
"""


def test_downstream_project_without_conftest(pytester, run):
    pytester.makepyfile(test_downstream=DOWNSTREAM)
    assert not (pytester.path / "conftest.py").exists()
    result = run("--amdgpu-sim=gfx90a,gfx942,gfx1100", "-v")
    result.assert_outcomes(passed=6 * 3)
    result.stdout.fnmatch_lines(["*test_copy_aql?gfx1100-257? PASSED*"])
