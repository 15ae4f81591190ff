"""The per-dispatch caches of the AQL packet processor and the shader core are invalidated.

The processor keeps the checked kernel descriptor per kernel object and compares the 64 bytes
it reads again on every dispatch; the shader core keeps the decoded program, the launch's
initial waves. Rewriting a descriptor or the code
between two dispatches must give the new behaviour, seen through memory or the queue's error.
"""

from __future__ import annotations

import struct

import pytest

from pytest_amdgpu.packets import aql as A
from pytest_amdgpu.sim.gpu import aql
from pytest_amdgpu.sim.gpu.aql import AQLProcessor
from pytest_amdgpu.sim.gpu.dispatch import apply_apertures, shader_regs, to_shader_regs
from pytest_amdgpu.sim.gpu.fastdecode import read_kernel_dispatch

from .rig import EV_HW_EXCEPTION, poll
from .test_aql import Signals, kernel_descriptor
from .test_dispatch import LLVM_MC, RSRC2_USER2_TGIDX, STORE_ID, Kernel, assemble, rsrc

pytestmark = pytest.mark.skipif(LLVM_MC is None, reason="llvm-mc-19 is not installed")

# out[0] = 7 (s[0:1]: the kernarg block holding `out`)
STORE_7 = {
    "gfx9": """
        s_load_dwordx2 s[4:5], s[0:1], 0x0
        v_mov_b32 v1, 0
        v_mov_b32 v2, 7
        s_waitcnt lgkmcnt(0)
        global_store_dword v1, v2, s[4:5]
        s_endpgm
    """,
    "gfx11": """
        s_load_b64 s[4:5], s[0:1], 0x0
        v_mov_b32 v1, 0
        v_mov_b32 v2, 7
        s_waitcnt lgkmcnt(0)
        global_store_b32 v1, v2, s[4:5]
        s_endpgm
    """,
}
ENDPGM = {"gfx9": "s_nop 0\n s_endpgm\n", "gfx11": "s_nop 0\n s_endpgm\n"}


def _descriptor(target, entry: int, **over) -> bytes:
    rsrc1, rsrc3 = rsrc(target)
    props = 0x0008 | (1 << 10 if target.wave_size == 32 else 0)   # kernarg ptr (+ wave32)
    return kernel_descriptor(props=props, rsrc1=rsrc1, rsrc2=RSRC2_USER2_TGIDX, rsrc3=rsrc3,
                             entry=entry, **over)


def _run(rig, q, s, k, grid: int = 64) -> None:
    done = s.new(1)
    q.submit_aql(A.KernelDispatchPacket(kernel_object=k.bo.gpu, workgroup_size_x=64,
                                        grid_size_x=grid, kernarg_address=k.kernarg.gpu,
                                        completion_signal=done))
    assert poll(lambda: s.value(done) == 0, timeout=20)


def test_rewritten_descriptor_entry_runs_the_new_code(rig):
    """Same kernel object, new entry offset: the second dispatch runs the other kernel."""
    t = rig.target
    k = Kernel(rig, STORE_ID)                                  # entry at +256
    k.bo.write(1024, assemble(t, STORE_7[t.family]))
    k.bo.write(0, _descriptor(t, 256))
    q = rig.queue("aql")
    s = Signals(rig)
    _run(rig, q, s, k)
    assert k.ids(4) == [0, 1, 2, 3]
    k.out.write(0, bytes(16))
    k.bo.write(0, _descriptor(t, 1024))
    _run(rig, q, s, k)
    assert k.ids(4) == [7, 0, 0, 0]
    k.bo.write(0, _descriptor(t, 256))                          # and back
    _run(rig, q, s, k)
    assert k.ids(4) == [0, 1, 2, 3]


def test_descriptor_made_invalid_after_a_dispatch_is_refused(rig942):
    """A descriptor that was fine once and then gets a reserved byte set stops the queue."""
    rig = rig942
    t = rig.target
    k = Kernel(rig, STORE_ID)
    k.bo.write(0, _descriptor(t, 256))
    q = rig.queue("aql")
    s = Signals(rig)
    _run(rig, q, s, k)
    assert k.ids(2) == [0, 1]
    k.bo.write(0, _descriptor(t, 256, res3=1))
    ev = rig.event(EV_HW_EXCEPTION)
    q.submit_aql(A.KernelDispatchPacket(kernel_object=k.bo.gpu, workgroup_size_x=64,
                                        grid_size_x=64, kernarg_address=k.kernarg.gpu))
    assert rig.wait_events([ev.event_id]).status == "complete"
    reason = rig.port.process.queues[q.queue_id].hw_exception
    assert reason.startswith("EC_QUEUE_PACKET_DISPATCH_CODE_INVALID"), reason
    assert "reserved bytes" in reason


def test_empty_kernel_rewritten_to_store_runs_the_store(rig):
    """A kernel that only ends (its program and initial waves cached by repeated dispatches)
    is rewritten in place: the next dispatch runs the new instructions."""
    t = rig.target
    k = Kernel(rig, ENDPGM)
    k.bo.write(0, _descriptor(t, 256))
    q = rig.queue("aql")
    s = Signals(rig)
    for _ in range(3):                          # decoded, then repeated from the caches
        _run(rig, q, s, k, grid=128)
    assert k.ids(2) == [0, 0]
    k.bo.write(256, assemble(t, STORE_ID[t.family]))
    _run(rig, q, s, k, grid=128)
    assert k.ids(130) == [*range(128), 0, 0]


def test_shader_regs_match_the_dispatch_state(rig, monkeypatch):
    """The AQL path's direct register build equals DispatchState -> apertures -> registers."""
    seen = []
    orig = AQLProcessor._kernel_dispatch

    def spy(self, addr, words, index):
        pkt = read_kernel_dispatch(words)
        values, extra = self._dispatch_values(addr, pkt, index)
        seen.append((shader_regs(values, extra, self.queue),
                     to_shader_regs(apply_apertures(self.dispatch_state(addr, pkt, index),
                                                    self.queue))))
        return orig(self, addr, words, index)

    monkeypatch.setattr(AQLProcessor, "_kernel_dispatch", spy)
    t = rig.target
    k = Kernel(rig, STORE_ID)
    k.bo.write(0, _descriptor(t, 256, group=128, private=16))
    q = rig.queue("aql")
    s = Signals(rig)
    done = s.new(1)
    q.submit_aql(A.KernelDispatchPacket(kernel_object=k.bo.gpu, workgroup_size_x=64,
                                        grid_size_x=200, kernarg_address=k.kernarg.gpu,
                                        group_segment_size=256, private_segment_size=8,
                                        completion_signal=done))
    assert poll(lambda: s.value(done) == 0, timeout=20)
    (fast, slow), = seen
    assert fast == slow
    assert fast.lds_bytes == 256 and fast.private_segment_size == 16
    assert fast.user_data[:2] == [k.kernarg.gpu & 0xFFFFFFFF, k.kernarg.gpu >> 32]


def test_queue_scratch_fields_are_read_on_every_dispatch(rig942, monkeypatch):
    """amd_queue_t's tmpring / scratch fields (read through a cached view of the pinned
    queue page) are taken fresh by each dispatch, as the runtime may rewrite them — also by
    a packet that repeats an earlier one (the processor's shortcut for those)."""
    seen = []

    def spy(values, extra, queue):
        regs = shader_regs(values, extra, queue)
        seen.append((regs.tmpring_size, regs.scratch_base, extra["scratch_wave64_lane_bytes"]))
        return regs

    monkeypatch.setattr(aql, "shader_regs", spy)
    rig = rig942
    t = rig.target
    k = Kernel(rig, STORE_ID)
    k.bo.write(0, _descriptor(t, 256))
    q = rig.queue("aql")
    s = Signals(rig)
    for tmpring, base, lane in ((0x1004, 0x7000_0000, 64), (0x2008, 0x7100_0000, 128),
                                (0x2008, 0x7100_0000, 256), (0x1004, 0x7000_0000, 64)):
        q.amd_queue.set_u32(A.AMD_QUEUE.compute_tmpring_size, tmpring)
        q.amd_queue.set_u64(A.AMD_QUEUE.scratch_backing_memory_location, base)
        q.amd_queue.set_u32(A.AMD_QUEUE.scratch_wave64_lane_byte_size, lane)
        _run(rig, q, s, k)
        _run(rig, q, s, k)                    # the same packet again
        assert seen[-2:] == [(tmpring, base, lane)] * 2


# out[0..3] = the dispatch pointer (s[0:1]) and the dispatch id (s[4:5]); kernarg in s[2:3]
STORE_PTRS = {
    "gfx9": """
        s_load_dwordx2 s[6:7], s[2:3], 0x0
        v_mov_b32 v1, 0
        v_mov_b32 v2, s0
        v_mov_b32 v3, s1
        v_mov_b32 v4, s4
        v_mov_b32 v5, s5
        s_waitcnt lgkmcnt(0)
        global_store_dwordx4 v1, v[2:5], s[6:7]
        s_endpgm
    """,
    "gfx11": """
        s_load_b64 s[6:7], s[2:3], 0x0
        v_mov_b32 v1, 0
        v_mov_b32 v2, s0
        v_mov_b32 v3, s1
        v_mov_b32 v4, s4
        v_mov_b32 v5, s5
        s_waitcnt lgkmcnt(0)
        global_store_b128 v1, v[2:5], s[6:7]
        s_endpgm
    """,
}


def test_repeated_packets_get_their_own_dispatch_pointer_id_and_kernarg(rig):
    """Packets equal but for kernarg and signal (the processor's repeat shortcut) still give
    each dispatch its own packet address, dispatch id and kernarg block."""
    t = rig.target
    k = Kernel(rig, STORE_PTRS)
    rsrc1, rsrc3 = rsrc(t)
    props = 0x2 | 0x8 | 0x10 | (1 << 10 if t.wave_size == 32 else 0)  # dispatch ptr, kernarg, id
    k.bo.write(0, kernel_descriptor(props=props, rsrc1=rsrc1, rsrc2=(6 << 1) | (1 << 7),
                                    rsrc3=rsrc3, entry=256))
    outs = [rig.alloc(64) for _ in range(3)]
    blocks = [rig.alloc(64) for _ in range(3)]
    for out, block in zip(outs, blocks, strict=True):
        block.set_u64(0, out.gpu)
    q = rig.queue("aql")
    s = Signals(rig)
    for round_ in range(2):
        for i, block in enumerate(blocks):
            done = s.new(1)
            index = q.wptr
            q.submit_aql(A.KernelDispatchPacket(kernel_object=k.bo.gpu, workgroup_size_x=64,
                                                grid_size_x=64, kernarg_address=block.gpu,
                                                completion_signal=done))
            assert poll(lambda done=done: s.value(done) == 0, timeout=20)
            slot = index % (q.ring_size // 64)
            got = struct.unpack("<QQ", outs[i].read(0, 16))
            assert got == (q.ring.gpu + 64 * slot, index), (round_, i)
