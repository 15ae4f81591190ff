"""Dispatch plans: what a queue reuses between dispatches of one kernel (geometry, kernarg
image with the hidden arguments, the encoded AQL packet, the PM4 dword sequence) is keyed by
kernel, grid, block, global offset and barrier, and everything else — arguments, LDS, scratch,
addresses, the completion signal — is redone per dispatch: the kernels see new arguments and
geometries, and every check still fires after a plan was cached."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.codeobj import LocalMemory, build_kernargs
from pytest_amdgpu.codeobj.descriptor import _PROP, KERNARG_PRELOAD_FIELDS
from pytest_amdgpu.errors import UsageError
from pytest_amdgpu.runtime import open_device
from pytest_amdgpu.runtime.kernel import Kernel, _Pm4Template, scratch_config
from pytest_amdgpu.targets import get_target

TIMEOUT = 60.0


@pytest.fixture(scope="module", params=kernels.TARGETS)
def device(request):
    with open_device("sim", target=request.param) as dev:
        yield dev


@pytest.fixture(params=["aql", "pm4"])
def queue(request, device):
    q = device.create_queue(request.param)
    yield q
    q.destroy()


def _zeros(device, n: int, dtype=np.uint32):
    buf = device.alloc(max(n * np.dtype(dtype).itemsize, 4), "gtt")
    buf.write(0, np.zeros(n, dtype).tobytes())
    return buf


def test_new_argument_values_are_seen(queue):
    kernel = queue.device.load_kernel("write_value")
    a, b = _zeros(queue.device, 4), _zeros(queue.device, 4)
    for out, value in [(a, 0xC0FFEE), (a, 0xBEEF), (b, 7), (a, 0x1234)]:
        queue.dispatch(kernel, 128, 64, [out, value]).wait(timeout=TIMEOUT)
        assert out.view(np.uint32, 1)[0] == value
    assert b.view(np.uint32, 1)[0] == 7
    assert len(queue._dispatch_state.plans) == 1          # one kernel, one geometry
    kernel.free()


def test_grids_and_offsets_each_get_their_own_hidden_arguments(queue):
    kernel = queue.device.load_kernel("fill_id")
    for n, block, offset in [(700, 128, (1000,)), (300, 64, (5,)), (700, 128, (1000,)),
                             (256, 256, (0, 0, 0)), (700, 128, (3,))]:
        out = _zeros(queue.device, n + 64)
        queue.dispatch(kernel, n, block, [out, n], global_offset=offset).wait(timeout=TIMEOUT)
        got = out.view(np.uint32, n + 64)
        assert (got[:n] == np.arange(n) + offset[0]).all() and (got[n:] == 0).all()
        out.free()
    kernel.free()


def test_hidden_arguments_follow_the_geometry(queue):
    kernel = queue.device.load_kernel("hidden_args")
    cases = [((100, 9, 4), (32, 4, 2), (3, 2, 1), [3, 2, 2, 32, 4, 2, 4, 1, 0, 3, 2, 1, 3]),
             ((64, 8, 2), (32, 4, 2), (0, 0, 0), [2, 2, 1, 32, 4, 2, 0, 0, 0, 0, 0, 0, 3]),
             ((100, 9, 4), (32, 4, 2), (3, 2, 1), [3, 2, 2, 32, 4, 2, 4, 1, 0, 3, 2, 1, 3])]
    for grid, block, offset, want in cases:
        out = _zeros(queue.device, 13)
        queue.dispatch(kernel, grid, block, [out], global_offset=offset).wait(timeout=TIMEOUT)
        assert out.view(np.uint32, 13).tolist() == want
        out.free()
    kernel.free()


def test_dynamic_lds_changes_per_dispatch(queue):
    """Same plan, different LocalMemory sizes: the packet's group segment size follows
    (read back from the AQL slots of a disabled queue); too much LDS is refused."""
    kernel = queue.device.load_kernel("local_arg_reduce")
    static = kernel.group_segment_size
    queue.disable()
    for i, n in enumerate((512, 64, 512)):
        queue.dispatch(kernel, 128, 128, [0, 0, LocalMemory(n), 1])
        if queue.kind == "aql":
            assert int.from_bytes(queue.ring.read(i * 64 + 28, 4), "little") == static + n
    with pytest.raises(UsageError, match="LDS"):
        queue.dispatch(kernel, 128, 128, [0, 0, LocalMemory(70000), 1])
    kernel.free()


def test_checks_still_fire_once_a_plan_is_cached(queue):
    kernel = queue.device.load_kernel("empty")
    queue.dispatch(kernel, 64, 64, []).wait(timeout=TIMEOUT)
    with pytest.raises(UsageError, match="takes 0 argument"):
        queue.dispatch(kernel, 64, 64, [1])
    with pytest.raises(UsageError, match="grid must be an int or a tuple"):
        queue.dispatch(kernel, 64.0, 64, [])                 # == 64, but not an int
    with pytest.raises(UsageError, match="block x = 0"):
        queue.dispatch(kernel, 64, 0, [])
    fill = queue.device.load_kernel("fill_id")
    out = _zeros(queue.device, 64)
    queue.dispatch(fill, 64, 64, [out, 64]).wait(timeout=TIMEOUT)
    with pytest.raises(UsageError, match="hidden="):
        queue.dispatch(fill, 64, 64, [out, 64], hidden={"no_such_kind": 1})
    with pytest.raises(UsageError, match="takes 2 argument"):      # arguments checked first
        queue.dispatch(fill, 64, 64, [out], hidden={"no_such_kind": 1})
    queue.dispatch(fill, 64, 64, [out, 64], hidden={"global_offset_x": 9}).wait(
        timeout=TIMEOUT)
    assert (out.view(np.uint32, 64) == np.arange(64) + 9).all()
    fill.free()
    out.free()
    queue.dispatch(kernel, np.int64(64), (64,), [], barrier=1).wait(timeout=TIMEOUT)
    assert queue._completions == set()
    kernel.free()
    with pytest.raises(UsageError, match="was freed"):
        queue.dispatch(kernel, 64, 64, [])


def test_scratch_growth_rebuilds_the_packets(queue):
    kernel = queue.device.load_kernel("scratch")
    rng = np.random.default_rng(3)
    for n in (64, 5000, 64):
        idx = rng.integers(0, 1 << 16, n).astype(np.uint32)
        a, out = queue.device.alloc(4 * n, "gtt"), _zeros(queue.device, n)
        a.write(0, idx.tobytes())
        queue.dispatch(kernel, n, 128, [a, out, n]).wait(timeout=TIMEOUT)
        expect = (np.arange(n, dtype=np.uint64) * ((idx & 63) + 1)).astype(np.uint32)
        assert (out.view(np.uint32, n) == expect).all()
        a.free()
        out.free()
    if queue.kind == "pm4":   # the first plan's packets were rebuilt for the grown scratch
        plan = next(p for key, p in queue._dispatch_state.plans.items() if key[1] == 64)
        assert len(plan.pm4) == 2
    kernel.free()


def test_raw_kernarg_bytes_and_user_signal(queue):
    kernel = queue.device.load_kernel("write_value")
    out = _zeros(queue.device, 4)
    data = build_kernargs(kernel.info, [out, 0xAB], grid=64, block=64).data
    queue.dispatch(kernel, 64, 64, data).wait(timeout=TIMEOUT)
    assert out.view(np.uint32, 1)[0] == 0xAB
    sig = queue.device.create_signal(1)
    kw = {"signal_value": 5} if queue.kind == "pm4" else {}
    done = queue.dispatch(kernel, 64, 64, [out, 0xCD], signal=sig, **kw)
    done.wait(timeout=TIMEOUT)
    assert sig.value == (5 if queue.kind == "pm4" else 0)
    assert out.view(np.uint32, 1)[0] == 0xCD
    sig.free()
    out.free()
    kernel.free()


def _all_user_sgprs(info, preload: tuple[int, int]):
    """`info` with every user SGPR enabled and `preload` = (dwords, dword offset) preloaded."""
    kd = info.descriptor
    props = kd.kernel_code_properties
    for name in ("ENABLE_SGPR_PRIVATE_SEGMENT_BUFFER", "ENABLE_SGPR_DISPATCH_PTR",
                 "ENABLE_SGPR_QUEUE_PTR", "ENABLE_SGPR_KERNARG_SEGMENT_PTR",
                 "ENABLE_SGPR_DISPATCH_ID", "ENABLE_SGPR_FLAT_SCRATCH_INIT",
                 "ENABLE_SGPR_PRIVATE_SEGMENT_SIZE"):
        f = _PROP[name]
        props |= 1 << f.lo
    length, offset = KERNARG_PRELOAD_FIELDS
    spec = (preload[0] << length.lo) | (preload[1] << offset.lo)
    return dataclasses.replace(info, descriptor=dataclasses.replace(
        kd, kernel_code_properties=props, kernarg_preload=spec))


@pytest.mark.parametrize("target", kernels.TARGETS)
@pytest.mark.parametrize("name", ["copy", "hidden_args", "scratch", "empty", "all_sgprs"])
def test_pm4_template_renders_what_pm4_dispatch_builds(target, name):
    t = get_target(target)
    info = kernels.load("copy" if name == "all_sgprs" else name, target).kernels[
        "copy" if name == "all_sgprs" else name]
    if name == "all_sgprs":
        info = _all_user_sgprs(info, (3, 1))
    kernel = Kernel.unbound(info, t, (0x7F00_0000_0000 + 0x10000) - info.entry_offset)
    geom = kernel.geometry((1000, 3), (64, 2))
    rng = random.Random(f"{target}{name}")
    for scratch in (None, scratch_config(t, lane_bytes=48, wave_lanes=64, waves=100,
                                         base=0x7F10_0000_0000)):
        for lds, private in ((kernel.group_segment_size, 0), (4096, 96)):
            tpl = _Pm4Template(kernel, geom, queue_ptr=0x7F20_0000_0100, scratch=scratch,
                               lds=lds, private=private, barrier=True)
            for _ in range(3):
                dp, ka = rng.getrandbits(47) & ~63, rng.getrandbits(47) & ~63
                did = rng.getrandbits(64)
                data = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 8, 64])))
                want = kernel.pm4_dwords(
                    geom.grid, geom.block, ka, dispatch_ptr=dp, queue_ptr=0x7F20_0000_0100,
                    dispatch_id=did, scratch=scratch, group_segment_size=lds,
                    private_segment_size=private, kernarg_data=data, geometry=geom)
                assert tpl.render(dp, ka, did, data).tolist() == want
