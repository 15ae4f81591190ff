"""Dispatch through AQL kernel-dispatch packets and PM4 DISPATCH_DIRECT: the empty kernel, write
and copy kernels, 1D/2D/3D grids with partial work-groups, the code object v5 hidden arguments
checked against the HSA rules, the dispatch packet the kernel sees, LDS with barriers, scratch,
GPU atomics while the CPU and the command processor touch the same memory, kernels released by a
CPU write, many queues at once, and every OpenCL corpus kernel against its numpy reference on
both paths (KFDQMTest.EmptyDispatch / SimpleWriteDispatch / MultipleCpQueuesStressDispatch,
KFDQMTest.Atomics, rocrtst dispatch tests)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pytest_amdgpu.kernels.corpus.cases import CASES, check, run_case
from pytest_amdgpu.kfd import _syscall
from pytest_amdgpu.packets import pm4

from ._helpers import (
    AQL_TYPE_KERNEL_DISPATCH,
    hsa_hidden_args,
    needs_cpu_visible_vram,
    stays,
    u32,
)

pytestmark = pytest.mark.amdgpu_area("dispatch")

TIMEOUT = 30.0


@pytest.fixture(params=["aql", "pm4"])
def queue(request):
    """The queue a test dispatches on: an AQL queue (kernel dispatch packets) or a PM4 queue
    (SET_SH_REG + DISPATCH_DIRECT)."""
    return request.getfixturevalue(f"amdgpu_{request.param}_queue")


def test_empty_dispatch(queue, amdgpu_kernel):
    """KFDQMTest.EmptyDispatch: a kernel that only ends (s_endpgm) completes; sixteen in a row on
    one queue all complete."""
    k = amdgpu_kernel("empty")
    queue.dispatch(k, 1, 1).wait(TIMEOUT)
    done = [queue.dispatch(k, 256, 64) for _ in range(16)]
    for c in done:
        c.wait(TIMEOUT)


def test_write_value(queue, amdgpu_kernel, amdgpu_buffer):
    """KFDQMTest.SimpleWriteDispatch: the kernel's store of a by-value argument through a pointer
    argument reaches memory; nothing else is written."""
    k = amdgpu_kernel("write_value")
    out = amdgpu_buffer(4096, "gtt")
    out.view(np.uint32)[:] = 0xEEEEEEEE
    queue.dispatch(k, 64, 64, [out.gpu_address + 8, 0x600D1234]).wait(TIMEOUT)
    words = out.view(np.uint32)
    assert words[2] == 0x600D1234
    assert (np.delete(words, 2) == 0xEEEEEEEE).all()


@pytest.mark.parametrize("location", ["gtt", "vram"])
def test_copy_kernel(amdgpu_device, queue, amdgpu_kernel, amdgpu_buffer, location):
    """KFDQMTest.SimpleCopyDispatch: a copy kernel over 1000 work-items in groups of 256 (the
    last group partial) copies exactly 1000 dwords between buffers."""
    if location == "vram":
        needs_cpu_visible_vram(amdgpu_device)
    k = amdgpu_kernel("copy")
    src = amdgpu_buffer(8192, location)
    dst = amdgpu_buffer(8192, location)
    data = (np.arange(2048, dtype=np.uint64) * 0x9E3779B1 % 2**32).astype(np.uint32)
    src.view(np.uint32)[:] = data
    dst.view(np.uint32)[:] = 0
    queue.dispatch(k, 1000, 256, [src, dst, 1000]).wait(TIMEOUT)
    out = dst.view(np.uint32)
    assert np.array_equal(out[:1000], data[:1000])
    assert not out[1000:].any()


GRIDS_1D = [(1, 1), (64, 64), (100, 64), (1000, 256), (1025, 1024)]


@pytest.mark.parametrize("grid,block", GRIDS_1D, ids=[f"{g}x{b}" for g, b in GRIDS_1D])
def test_fill_1d_grid(queue, amdgpu_kernel, amdgpu_buffer, grid, block):
    """KFDQMTest.SimpleWriteDispatch / rocrtst dispatch (1D grids): 1D grids with and without a
    partial last work-group (HSA grid = work-items): every work-item of the grid writes its
    global id, none beyond it (the kernel takes the work-group size from the hidden arguments)."""
    k = amdgpu_kernel("fill_id")
    out = amdgpu_buffer(8192, "gtt")
    out.view(np.uint32)[:] = 0xFFFFFFFF
    queue.dispatch(k, grid, block, [out, grid]).wait(TIMEOUT)
    words = out.view(np.uint32)
    assert np.array_equal(words[:grid], np.arange(grid, dtype=np.uint32))
    assert (words[grid:] == 0xFFFFFFFF).all()


def test_global_offset(queue, amdgpu_kernel, amdgpu_buffer):
    """rocrtst dispatch (hidden arguments): The hidden global offset reaches the kernel: fill_id
    writes id + global_offset_x."""
    k = amdgpu_kernel("fill_id")
    out = amdgpu_buffer(4096, "gtt")
    queue.dispatch(k, 100, 32, [out, 100], global_offset=(5, 0, 0)).wait(TIMEOUT)
    assert np.array_equal(out.view(np.uint32)[:100], np.arange(5, 105, dtype=np.uint32))


GEOMETRIES = [
    ((1,), (1,)),
    ((512,), (256,)),
    ((1000,), (256,)),
    ((50, 30), (16, 8)),
    ((10, 7, 5), (4, 4, 2)),
    ((8, 8, 8), (4, 4, 4)),
]


@pytest.mark.parametrize("grid,block", GEOMETRIES,
                         ids=["x".join(map(str, g)) + "_" + "x".join(map(str, b))
                              for g, b in GEOMETRIES])
def test_hidden_arguments(queue, amdgpu_kernel, amdgpu_buffer, grid, block):
    """rocrtst dispatch / KFDQMTest.SimpleWriteDispatch (kernarg passing incl. hidden arguments,
    conformance-map area 6): Code object v5 hidden arguments, as a kernel compiled by LLVM reads
    them: block counts are the full work-groups per dimension, group sizes the work-group size,
    remainders the size of the partial group, global offsets 0 and grid_dims the dimensions (HSA
    / AMDGPUUsage rules, facts-sdma-aql-codeobj.md §5.1; computed here from the geometry, not by
    the runtime)."""
    k = amdgpu_kernel("hidden_args")
    out = amdgpu_buffer(4096, "gtt")
    out.view(np.uint32)[:] = 0xDEADDEAD
    queue.dispatch(k, grid, block, [out]).wait(TIMEOUT)
    w = [int(x) for x in out.view(np.uint32)[:13]]
    want = hsa_hidden_args(grid, block)
    assert tuple(w[0:3]) == want["block_count"]
    assert tuple(w[3:6]) == want["group_size"]
    assert tuple(w[6:9]) == want["remainder"]
    assert tuple(w[9:12]) == want["global_offset"]
    assert (w[12],) == want["grid_dims"]


def test_kernel_sees_its_dispatch_packet(queue, amdgpu_kernel, amdgpu_buffer):
    """rocrtst dispatch (dispatch pointer): The dispatch pointer SGPR: the kernel copies the
    64-byte AQL packet it points at; the packet is a KERNEL_DISPATCH with this dispatch's
    dimensions, work- group and grid sizes and the kernel's descriptor as kernel_object (hsa.h
    layout, facts-sdma-aql- codeobj.md §2.2)."""
    k = amdgpu_kernel("dispatch_packet")
    out = amdgpu_buffer(4096, "gtt")
    queue.dispatch(k, (40, 3), (8, 3), [out]).wait(TIMEOUT)
    raw = out.read(0, 64)
    header, setup, wx, wy, wz = np.frombuffer(raw[:10], np.uint16)
    gx, gy, gz = np.frombuffer(raw[12:24], np.uint32)
    kobj = int(np.frombuffer(raw[32:40], np.uint64)[0])
    assert header & 0xFF == AQL_TYPE_KERNEL_DISPATCH
    assert setup & 3 == 2
    assert (wx, wy, wz) == (8, 3, 1)
    assert (gx, gy, gz) == (40, 3, 1)
    assert kobj == k.kd_address


@pytest.mark.parametrize("block", [64, 256, 1024])
def test_lds_and_barrier(queue, amdgpu_kernel, amdgpu_buffer, block):
    """KFDQMTest / rocrtst LDS tests: work-items store to LDS, meet at s_barrier, and read what
    another work-item of the group stored: the output is each group's ids reversed."""
    k = amdgpu_kernel("lds_barrier")
    grid = 2 * block
    out = amdgpu_buffer(4 * grid, "gtt")
    queue.dispatch(k, grid, block, [out]).wait(TIMEOUT)
    ids = np.arange(grid, dtype=np.uint32).reshape(2, block)
    assert np.array_equal(out.view(np.uint32)[:grid], ids[:, ::-1].reshape(-1))


def test_scratch(queue, amdgpu_kernel, amdgpu_buffer):
    """KFDQMTest / KFDCWSRTest scratch dispatch (conformance-map area 6, scratch): Private
    segment (scratch): each work-item fills a 64-entry private array and reads back one element;
    out[i] = i * ((idx[i] & 63) + 1) (gfx90a buffer-resource scratch, gfx942 / gfx1100
    architected flat scratch)."""
    k = amdgpu_kernel("scratch")
    n = 300
    idx = amdgpu_buffer(4 * n, "gtt")
    out = amdgpu_buffer(4 * n, "gtt")
    sel = (np.arange(n, dtype=np.uint32) * 37) % 97
    idx.view(np.uint32)[:] = sel
    queue.dispatch(k, n, 64, [idx, out, n]).wait(TIMEOUT)
    want = (np.arange(n, dtype=np.uint64) * ((sel & 63) + 1)).astype(np.uint32)
    assert np.array_equal(out.view(np.uint32), want)


def test_atomics_race_cp_and_cpu(amdgpu_device, queue, amdgpu_kernel, amdgpu_buffer,
                                 amdgpu_signal):
    """KFDQMTest.Atomics: 2000 work-items atomically increment a counter in coherent system
    memory (returning atomics) while another queue's command processor adds to it with ATOMIC_MEM
    and a CPU thread keeps incrementing it with CPU atomics (lock xadd); no increment of any of
    the three agents is lost, and every old value the GPU's and the CPU's atomics returned is
    distinct."""
    k = amdgpu_kernel("atomic_counter")
    counter = amdgpu_buffer(4096, "gtt", coherent=True, uncached=True)
    old = amdgpu_buffer(8 * 4096, "gtt")
    counter.view(np.uint32)[0] = 1000
    other = amdgpu_device.create_queue("pm4", owner="atomic racer")
    stop = threading.Event()
    cpu_old: list[int] = []

    def cpu() -> None:
        addr = counter.cpu_address
        while not stop.is_set() or len(cpu_old) < 200:
            cpu_old.append(_syscall.fetch_add32(addr, 1))
            if len(cpu_old) % 64 == 0:
                time.sleep(0)          # let the GPU (a thread, on the simulator) run too

    t = threading.Thread(target=cpu)
    t.start()
    try:
        for _ in range(100):
            other.submit(pm4.AtomicMem(addr=counter.gpu_address, atomic=0x4F, src_data=1))
        queue.dispatch(k, 2000, 256, [counter, old, 2000]).wait(TIMEOUT)
        sig = amdgpu_signal(0)
        other.signal(sig, 1)
        sig.wait(1, timeout=TIMEOUT)
    finally:
        stop.set()
        t.join(30)
        other.destroy()
    assert u32(counter) == 1000 + 2000 + 100 + len(cpu_old)
    gpu_old = old.view(np.uint32)[:2000].astype(np.int64)
    seen = np.concatenate([gpu_old, np.array(cpu_old, np.int64)])
    assert len(np.unique(seen)) == len(seen)
    assert seen.min() >= 1000 and seen.max() < u32(counter)


def test_kernel_waits_for_cpu_write(queue, amdgpu_kernel, amdgpu_buffer):
    """KFDQMTest.QueueLatency / KFDMemoryTest.PtraceAccessInvisibleVram-style CPU-GPU visibility:
    The GPU runs asynchronously and sees CPU writes while a kernel runs: a kernel polling a flag
    does not complete until the CPU writes it, then stores the flag's value."""
    k = amdgpu_kernel("wait_flag")
    flag = amdgpu_buffer(4096, "gtt")
    out = amdgpu_buffer(4096, "gtt")
    done = queue.dispatch(k, 64, 64, [flag, out])
    stays(lambda: done.done, False, seconds=0.2, what="a kernel waiting for its flag")
    assert u32(out) == 0
    flag.view(np.uint32)[0] = 42
    done.wait(TIMEOUT)
    assert u32(out) == 42


def test_dependent_dispatches_in_order(queue, amdgpu_kernel, amdgpu_buffer):
    """KFDQMTest.MultipleCpQueuesStressDispatch (single-queue ordering) / rocrtst
    aql_barrier_bit: Dispatches on one queue complete in order with the barrier bit: copy A->B
    then B->C leaves C equal to A."""
    k = amdgpu_kernel("copy")
    a, b, c = (amdgpu_buffer(4096, "gtt") for _ in range(3))
    data = np.arange(1024, dtype=np.uint32) ^ 0x5555
    a.view(np.uint32)[:] = data
    queue.dispatch(k, 1024, 128, [a, b, 1024])
    queue.dispatch(k, 1024, 128, [b, c, 1024]).wait(TIMEOUT)
    assert np.array_equal(c.view(np.uint32), data)


def test_many_queues_dispatch_at_once(amdgpu_device, amdgpu_kernel, amdgpu_buffer):
    """KFDQMTest.MultipleCpQueuesStressDispatch: four AQL and four PM4 queues each launch a
    dispatch before any is waited for; all eight produce their results."""
    k = amdgpu_kernel("fill_id")
    queues = [amdgpu_device.create_queue(kind, owner="stress")
              for kind in ("aql", "pm4") * 4]
    try:
        outs = [amdgpu_buffer(4096, "gtt") for _ in queues]
        done = [q.dispatch(k, 500 + 10 * i, 64, [o, 500 + 10 * i], global_offset=(i, 0, 0))
                for i, (q, o) in enumerate(zip(queues, outs))]
        for c in done:
            c.wait(TIMEOUT)
        for i, o in enumerate(outs):
            n = 500 + 10 * i
            assert np.array_equal(o.view(np.uint32)[:n], np.arange(i, n + i, dtype=np.uint32))
    finally:
        for q in queues:
            q.destroy()


def test_clock_readings(amdgpu_aql_queue, amdgpu_kernel, amdgpu_buffer):
    """KFDPerfCountersTest / KFDQMTest timestamp tests: The shader's clocks: s_memtime /
    SHADER_CYCLES and the constant-rate real-time counter read twice in order (out[1] <= out[2],
    non-zero)."""
    k = amdgpu_kernel("memtime")
    out = amdgpu_buffer(4096, "gtt")
    amdgpu_aql_queue.dispatch(k, 1, 1, [out]).wait(TIMEOUT)
    t = out.view(np.uint64)
    assert 0 < int(t[1]) <= int(t[2])


def test_relocated_kernel(queue, amdgpu_kernel, amdgpu_buffer):
    """rocrtst code object loading (relocations): A code object with R_AMDGPU_RELATIVE64
    relocations (pointers in global data) is loaded and relocated for its address: out[i] =
    table[i & 7] + 14 * 1000 + (i & 3) * 100000."""
    k = amdgpu_kernel("relocated")
    n = 64
    out = amdgpu_buffer(4 * n, "gtt")
    queue.dispatch(k, n, 32, [out, n]).wait(TIMEOUT)
    i = np.arange(n)
    want = (11 + (i & 7)) + 14 * 1000 + (i & 3) * 100000
    assert np.array_equal(out.view(np.uint32), want.astype(np.uint32))


@pytest.mark.amdgpu_requires("wave32_default")
def test_wave32_partial_waves(amdgpu_aql_queue, amdgpu_kernel, amdgpu_buffer):
    """KFDQMTest.SimpleWriteDispatch on wave32 targets: Wave32 (gfx10+): the kernel descriptor
    selects 32-wide waves (ENABLE_WAVEFRONT_SIZE32, kernel_code_properties bit 10) and a 48-item
    work-group — one full and one half wave — covers every work-item (AMDGPUUsage kernel
    descriptor)."""
    k = amdgpu_kernel("fill_id")
    assert k.descriptor.kernel_code_properties & (1 << 10)
    out = amdgpu_buffer(4096, "gtt")
    out.view(np.uint32)[:] = 0xFFFFFFFF
    amdgpu_aql_queue.dispatch(k, 150, 48, [out, 150]).wait(TIMEOUT)
    assert np.array_equal(out.view(np.uint32)[:150], np.arange(150, dtype=np.uint32))
    assert (out.view(np.uint32)[150:] == 0xFFFFFFFF).all()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_corpus_kernel(amdgpu_device, queue, case):
    """rocrtst dispatch / KFDQMTest.SimpleWriteDispatch with compiler-generated kernels: Every
    OpenCL C kernel of the corpus (compiled by LLVM 19 for the target) on this path, checked
    against its numpy reference: floats, doubles, integer division, bit operations, conversions,
    sub-dword access, divergent control flow, LDS reductions and transposes with barriers,
    dynamic LDS, global atomics, 2D/3D grids with partial groups, every by-value argument type."""
    results, expected = run_case(case, amdgpu_device, queue, timeout=TIMEOUT)
    check(case, results, expected)
