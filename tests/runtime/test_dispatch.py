"""Queue.dispatch through the runtime: kernels shipped with the package (built by LLVM 19),
AQL and PM4 queues, partial work-groups (grid in work-items, the HSA convention), completion
signals, and the accounting of loaded kernels. Expected contents come from numpy."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_amdgpu.errors import UsageError
from pytest_amdgpu.runtime import open_device

from .conftest import SIM_TARGETS, kfd_unusable, needs_cpu_visible_vram


def _shader_core_missing() -> str | None:
    try:
        from pytest_amdgpu.sim.shader import DispatchRegs, ShaderCore  # noqa: F401
    except ImportError as exc:
        return f"the simulated shader core is not available ({exc})"
    return None


@pytest.fixture(params=[*(f"sim-{t}" for t in SIM_TARGETS), "kfd"])
def kdevice(request):
    if request.param == "kfd":
        why = kfd_unusable()
        if why:
            pytest.skip(f"LinuxPort needs a usable /dev/kfd: {why}")
        dev = open_device("kfd")
    else:
        why = _shader_core_missing()
        if why:
            pytest.skip(why)
        dev = open_device("sim", target=request.param.split("-", 1)[1])
    yield dev
    dev.close()


@pytest.mark.parametrize("kind", ["aql", "pm4"])
def test_dispatch_partial_workgroups(kdevice, kind):
    needs_cpu_visible_vram(kdevice)
    kernel = kdevice.load_kernel("fill_id")
    out = kdevice.alloc(8192, "vram")
    out.fill(0xFF)
    q = kdevice.create_queue(kind)
    done = q.dispatch(kernel, 1000, 64, [out, 1000])        # 16 groups, the last one partial
    done.wait(timeout=60)
    words = out.view(np.uint32)
    assert np.array_equal(words[:1000], np.arange(1000, dtype=np.uint32))
    assert (words[1000:] == 0xFFFFFFFF).all()


def test_dispatch_with_own_signal(kdevice):
    kernel = kdevice.load_kernel("write_value")
    out = kdevice.alloc(4096, "gtt")
    out.fill(0)
    q = kdevice.create_queue("aql")
    sig = kdevice.create_signal(2)
    q.dispatch(kernel, 64, 64, [out, 0x1234], signal=sig).wait(timeout=60)
    assert sig.value == 1                                  # AQL completion decrements once
    assert out.view(np.uint32)[0] == 0x1234


def test_dispatch_accounting_and_errors():
    with open_device("sim") as dev:
        kernel = dev.load_kernel("write_value")
        assert [o.kind for o in dev.live_objects()] == ["kernel"]
        sdma = dev.create_queue("sdma")
        with pytest.raises(UsageError, match="'aql' or 'pm4'"):
            sdma.dispatch(kernel, 1, 1, [0, 0])
        leaks = dev.close()
        assert {o.kind for o in leaks} == {"kernel", "queue"}
        assert kernel.freed
