"""Ordering across queues and engines: one engine's writes release another engine's waits."""

from __future__ import annotations

from pytest_amdgpu.packets import aql as A
from pytest_amdgpu.packets import pm4 as P
from pytest_amdgpu.packets import sdma as S

from .rig import poll
from .test_aql import Signals


def test_pm4_waits_on_sdma_and_sdma_waits_on_pm4(rig):
    """SDMA polls a flag the PM4 queue writes after it saw the SDMA fence: a ping-pong that
    only completes if each engine's write wakes the other's wait."""
    pm4 = rig.queue("pm4")
    sdma = rig.queue("sdma")
    buf = rig.alloc(4096)
    ping, pong, out = buf.gpu, buf.gpu + 8, buf.gpu + 16
    sdma.submit(S.SdmaFence(addr=ping, data=1),
                S.SdmaPollRegmem(addr=pong, reference=2, function=3),
                S.SdmaFence(addr=ping, data=3))
    pm4.submit(P.WaitRegMem(addr=ping, reference=1, function=3),
               P.WriteData(addr=pong, data=(2,)),
               P.WaitRegMem(addr=ping, reference=3, function=3),
               P.WriteData(addr=out, data=(4,)))
    assert poll(lambda: buf.u32(16) == 4)
    assert buf.u32(0) == 3 and buf.u32(8) == 2


def test_aql_barrier_and_on_a_pm4_signal(rig):
    """The PM4 queue decrements an HSA signal (ATOMIC_MEM ADD_RTN_64 of -1); the AQL queue's
    barrier-AND on that signal completes and signals its own completion signal."""
    aql = rig.queue("aql")
    pm4 = rig.queue("pm4")
    s = Signals(rig)
    gate = rig.alloc(4096)
    dep, done = s.new(1), s.new(1)
    aql.submit_aql(A.BarrierAndPacket(dep_signal=(dep,), completion_signal=done))
    pm4.submit(P.WaitRegMem(addr=gate.gpu, reference=1, function=3),
               P.AtomicMem(addr=dep + A.AMD_SIGNAL.value, atomic=0x2F, src_data=2**64 - 1))
    assert not poll(lambda: s.value(done) == 0, timeout=0.05)
    gate.set_u32(0, 1)
    assert poll(lambda: s.value(done) == 0)
    assert s.value(dep) == 0


def test_sdma_copy_then_pm4_consumes(rig942):
    sdma = rig942.queue("sdma")
    pm4 = rig942.queue("pm4")
    buf = rig942.alloc(3 * 4096)
    buf.set_u32(0, 0x5555)
    pm4.submit(P.WaitRegMem(addr=buf.gpu + 4096, reference=0x5555, function=3),
               P.CopyData(src_sel=2, dst_sel=5, src_addr=buf.gpu + 4096, dst_addr=buf.gpu + 8192))
    sdma.submit(S.SdmaCopyLinear(src_addr=buf.gpu, dst_addr=buf.gpu + 4096, size=4))
    assert poll(lambda: buf.u32(8192) == 0x5555)


def test_two_devices_wait_on_each_other():
    """A machine with two GPUs: a queue on GPU 1 waits for memory GPU 0 writes."""
    from .rig import Rig

    r0 = Rig("gfx942x2")
    try:
        assert len(r0.topology.gpus) == 2
        r1 = r0.on_gpu(1)
        shared = r0.alloc(4096, peers=[r1.gpu_id])
        q1 = r1.queue("pm4")
        q0 = r0.queue("pm4")
        q1.submit(P.WaitRegMem(addr=shared.gpu, reference=7, function=3),
                  P.WriteData(addr=shared.gpu + 8, data=(8,)))
        q0.submit(P.WriteData(addr=shared.gpu, data=(7,)))
        assert poll(lambda: shared.u32(8) == 8)
    finally:
        r0.close()
