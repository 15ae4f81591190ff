"""What Queue.dispatch writes, read back from memory on a simulated device whose queue is
disabled (so nothing executes): the PM4 ring stream and the AQL ring slot, the kernarg segment
they point at, the AQL-format packet image behind the PM4 dispatch pointer, the completion
signal, and the scratch fields of the amd_queue_t (facts-sdma-aql-codeobj.md §2.2, §3.2)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pytest_amdgpu import kernels
from pytest_amdgpu.codeobj import build_kernargs
from pytest_amdgpu.runtime import open_device
from pytest_amdgpu.runtime._util import read_bytes

from .test_pm4_dispatch import DISPATCH_DIRECT, SET_SH_REG, USER_DATA_0, parse

RELEASE_MEM = 0x49


@pytest.fixture(params=kernels.TARGETS)
def device(request):
    with open_device("sim", target=request.param) as dev:
        yield dev


def _u64(addr: int) -> int:
    return int.from_bytes(read_bytes(addr, 8), "little")


def test_pm4_stream(device):
    q = device.create_queue("pm4")
    q.disable()
    kernel = device.load_kernel("copy")
    src, dst = device.alloc(4096, "gtt"), device.alloc(4096, "gtt")
    completion = q.dispatch(kernel, 1000, 256, [src, dst, 1000])
    words = q.ring.view(np.uint32)[:q.write_pointer].tolist()
    packets, regs = parse(words)
    assert [op for op, _ in packets].count(DISPATCH_DIRECT) == 1
    # user data: dispatch ptr, kernarg ptr (copy enables exactly these)
    dispatch_ptr = regs[USER_DATA_0] | regs[USER_DATA_0 + 1] << 32
    kernarg = regs[USER_DATA_0 + 2] | regs[USER_DATA_0 + 3] << 32
    assert USER_DATA_0 + 4 not in regs
    want = build_kernargs(kernel.info, [src, dst, 1000], grid=1000, block=256).data
    assert read_bytes(kernarg, len(want)) == want
    assert kernarg % 16 == 0 and dispatch_ptr % 64 == 0
    image = read_bytes(dispatch_ptr, 64)
    header, setup, wx, wy, wz = struct.unpack_from("<HHHHH", image, 0)
    assert (header & 0xFF, setup, wx, wy, wz) == (2, 1, 256, 1, 1)
    assert struct.unpack_from("<III", image, 12) == (1000, 1, 1)
    assert struct.unpack_from("<QQ", image, 32) == (kernel.kd_address, kernarg)
    # the completion: RELEASE_MEM of 0 (64-bit) to the signal's value after the dispatch
    ops = [op for op, _ in packets]
    rel = packets[ops.index(RELEASE_MEM, ops.index(DISPATCH_DIRECT))][1]
    assert rel[2] | rel[3] << 32 == completion.signal.value_address
    assert (rel[1] >> 29, rel[4], rel[5]) == (2, 0, 0)        # DATA_SEL 64-bit, value 0
    assert completion.signal.value == 1 and not completion.done
    assert SET_SH_REG in ops
    q.destroy()


def test_aql_slot_and_scratch_fields(device):
    q = device.create_queue("aql")
    q.disable()
    kernel = device.load_kernel("scratch")
    a, b = device.alloc(4096, "gtt"), device.alloc(4096, "gtt")
    completion = q.dispatch(kernel, 500, 128, [a, b, 500])
    slot = q.ring.read(0, 64)
    header, setup = struct.unpack_from("<HH", slot, 0)
    assert (header, setup) == (0x1502, 1)       # dispatch, barrier, system acquire/release
    assert struct.unpack_from("<HHH", slot, 4) == (128, 1, 1)
    assert struct.unpack_from("<III", slot, 12) == (500, 1, 1)
    private, group = struct.unpack_from("<II", slot, 24)
    assert private >= kernel.private_segment_size and private % 16 == 0
    assert group == kernel.group_segment_size
    kobj, kernarg, _, signal = struct.unpack_from("<QQQQ", slot, 32)
    assert (kobj, signal) == (kernel.kd_address, completion.signal.handle)
    want = build_kernargs(kernel.info, [a, b, 500], grid=500, block=128,
                          hidden={"queue_ptr": q.amd_queue.gpu_address}).data
    assert read_bytes(kernarg, len(want)) == want
    aq = q.amd_queue.gpu_address
    tmpring = int.from_bytes(read_bytes(aq + 140, 4), "little")
    rsrc = struct.unpack("<4I", read_bytes(aq + 144, 16))
    location, size = _u64(aq + 160), _u64(aq + 168)
    lane64 = int.from_bytes(read_bytes(aq + 176, 4), "little")
    t = device.target
    waves = tmpring & 0xFFF
    wave_bytes = ((tmpring >> 12) & ((1 << t.tmpring_wavesize_bits) - 1)) * \
        t.tmpring_wavesize_unit
    lanes = kernel.descriptor.wavefront_size
    assert wave_bytes >= private * lanes and waves >= 1
    assert size >= waves * wave_bytes and location != 0
    assert rsrc[0] | (rsrc[1] & 0xFFFF) << 32 == location and rsrc[2] == size
    assert rsrc[3] == t.scratch_rsrc_word3
    assert lane64 == private * lanes // 64
    q.destroy()


def test_lds_and_errors(device):
    from pytest_amdgpu.errors import UsageError

    q = device.create_queue("aql")
    q.disable()
    kernel = device.load_kernel("local_arg_reduce")
    with pytest.raises(UsageError, match="LDS"):
        q.dispatch(kernel, 128, 128, [0, 0, _local(70000), 1])
    q.dispatch(kernel, 128, 128, [0, 0, _local(512), 1])
    assert struct.unpack_from("<I", q.ring.read(0, 64), 28)[0] == \
        kernel.group_segment_size + 512
    other = open_device("sim", target=device.target.name)
    try:
        foreign = other.load_kernel("empty")
        with pytest.raises(UsageError, match="load it on the queue's device"):
            q.dispatch(foreign, 64, 64, [])
    finally:
        other.close()
    q.destroy()


def _local(n: int):
    from pytest_amdgpu.codeobj import LocalMemory

    return LocalMemory(n)
