"""A dispatch's own completion signal: after `wait` it goes back to its queue and the next
dispatch uses it again, armed afresh — the next completion is not satisfied by the value the
last one left, and the old Completion no longer hands the signal out."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_amdgpu.errors import UsageError
from pytest_amdgpu.runtime import open_device

TIMEOUT = 60.0


@pytest.fixture(scope="module")
def device():
    with open_device("sim", target="gfx942") as dev:
        yield dev


@pytest.fixture(params=["aql", "pm4"])
def queue(request, device):
    q = device.create_queue(request.param)
    yield q
    q.destroy()


def test_reused_signal_waits_for_its_own_dispatch(queue):
    dev = queue.device
    kernel = dev.load_kernel("write_value")
    out = dev.alloc(4, "gtt")
    out.write(0, bytes(4))
    first = queue.dispatch(kernel, 64, 64, [out, 1]).wait(timeout=TIMEOUT)
    assert first._signal is None               # handed back to the queue
    with pytest.raises(UsageError, match="went back to its queue"):
        _ = first.signal
    assert first.done

    gate = dev.create_signal(1)
    try:
        queue.wait_for(gate, 0, cond="==")     # the next dispatch waits behind this
        second = queue.dispatch(kernel, 64, 64, [out, 2])
        reused = second.signal
        assert reused.value == 1               # armed again (AQL decrements it to 0, PM4 stores 0)
        assert not second.done                 # not satisfied by the 0 the last dispatch left
        assert out.view(np.uint32, 1)[0] == 1
        gate.set(0)
        second.wait(timeout=TIMEOUT)
        assert out.view(np.uint32, 1)[0] == 2
    finally:
        gate.free()
    third = queue.dispatch(kernel, 64, 64, [out, 3])
    assert third.signal is reused              # the same slot again
    third.wait(timeout=TIMEOUT)
    assert out.view(np.uint32, 1)[0] == 3
    kernel.free()
    out.free()


def test_unwaited_completion_frees_its_signal_when_released(queue):
    kernel = queue.device.load_kernel("write_value")
    out = queue.device.alloc(4, "gtt")
    c = queue.dispatch(kernel, 64, 64, [out, 5])
    sig = c.signal
    queue.wait_idle(timeout=TIMEOUT)
    c.release()                                # not waited: nothing tells it is complete
    assert sig.freed
    assert sig not in queue._spare_signals
    kernel.free()
    out.free()


def test_destroy_frees_the_spare_signals(device):
    q = device.create_queue("aql")
    kernel = device.load_kernel("write_value")
    out = device.alloc(4, "gtt")
    c = q.dispatch(kernel, 64, 64, [out, 1]).wait(timeout=TIMEOUT)
    assert c._signal is None
    spare = list(q._spare_signals)
    assert spare and not any(s.freed for s in spare)
    q.destroy()
    assert all(s.freed for s in spare)
    kernel.free()
    out.free()
