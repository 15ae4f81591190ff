"""Dispatches through the command processors onto the shader core (part F).

Kernels are assembled at test time by llvm-mc-19 (the independent oracle for encodings); the
CP programs them from PM4 SET_SH_REG + DISPATCH_DIRECT or from an AQL dispatch packet and a
64-byte kernel descriptor. Each lane stores its global id, so the output shows exactly which
work-items ran.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import warnings

import pytest

from pytest_amdgpu.packets import aql as A
from pytest_amdgpu.packets import pm4 as P

from .rig import EV_HW_EXCEPTION, EV_MEMORY, poll
from .test_aql import Signals, kernel_descriptor

LLVM_MC = shutil.which("llvm-mc-19")
pytestmark = pytest.mark.skipif(LLVM_MC is None, reason="llvm-mc-19 is not installed")

# out[global_id] = global_id. s[0:1]: pointer to the kernarg block holding `out` (user SGPRs),
# s2: workgroup id X (TGID_X_EN, the first SGPR after the two user SGPRs), v0: work-item id X.
STORE_ID = {
    "gfx9": """
        s_load_dwordx2 s[4:5], s[0:1], 0x0
        s_lshl_b32 s3, s2, 6
        v_add_u32 v4, s3, v0
        v_lshlrev_b32 v1, 2, v4
        s_waitcnt lgkmcnt(0)
        global_store_dword v1, v4, s[4:5]
        s_endpgm
    """,
    "gfx11": """
        s_load_b64 s[4:5], s[0:1], 0x0
        s_lshl_b32 s3, s2, 6
        v_add_nc_u32 v4, s3, v0
        v_lshlrev_b32 v1, 2, v4
        s_waitcnt lgkmcnt(0)
        global_store_b32 v1, v4, s[4:5]
        s_endpgm
    """,
}
# s_branch -1: the target is the branch itself (SOPP simm16 counts dwords from PC + 4)
SPIN_FOREVER = {"gfx9": "s_branch -1\n", "gfx11": "s_branch -1\n"}
# kernarg + 8 = 1 (s[0:1]: the kernarg block), then loop forever: the host sees it running
MARK_THEN_SPIN = {
    "gfx9": "v_mov_b32 v1, 0\n v_mov_b32 v2, 1\n global_store_dword v1, v2, s[0:1] offset:8\n"
            " s_waitcnt vmcnt(0)\n s_branch -1\n",
    "gfx11": "v_mov_b32 v1, 0\n v_mov_b32 v2, 1\n global_store_b32 v1, v2, s[0:1] offset:8\n"
             " s_waitcnt vmcnt(0)\n s_branch -1\n",
}
# s_sendmsg MSG_INTERRUPT carries M0[23:0] as the SQ interrupt's context (facts-kfd §4 I3)
SEND_INTERRUPT = {
    "gfx9": "s_mov_b32 m0, s0\n s_sendmsg sendmsg(MSG_INTERRUPT)\n s_endpgm\n",
    "gfx11": "s_mov_b32 m0, s0\n s_sendmsg sendmsg(MSG_INTERRUPT)\n s_endpgm\n",
}
STORE_TO_S01 = {
    "gfx9": "v_mov_b32 v1, 0\n global_store_dword v1, v1, s[0:1]\n s_endpgm\n",
    "gfx11": "v_mov_b32 v1, 0\n global_store_b32 v1, v1, s[0:1]\n s_endpgm\n",
}

# kernarg + 8 = FLT_MAX * FLT_MAX (+inf: an overflow the hardware rounds and never traps on)
OVERFLOW_TO_INF = {
    "gfx9": "v_mov_b32 v1, 0x7f7fffff\n v_mul_f32 v2, v1, v1\n v_mov_b32 v3, 0\n"
            " global_store_dword v3, v2, s[0:1] offset:8\n s_endpgm\n",
    "gfx11": "v_mov_b32 v1, 0x7f7fffff\n v_mul_f32 v2, v1, v1\n v_mov_b32 v3, 0\n"
             " global_store_b32 v3, v2, s[0:1] offset:8\n s_endpgm\n",
}

RSRC2_USER2_TGIDX = (2 << 1) | (1 << 7)     # USER_SGPR = 2, TGID_X_EN


def assemble(target, source: str) -> bytes:
    """Machine code for `source`, from llvm-mc-19's encodings."""
    out = subprocess.run([LLVM_MC, "-triple=amdgcn-amd-amdhsa", f"-mcpu={target.name}",
                          "-show-encoding"], input=source, capture_output=True, text=True,
                         check=True).stdout
    code = bytearray()
    for enc in re.findall(r"encoding: \[([^\]]*)\]", out):
        if "A" in enc.replace("0x", ""):
            raise ValueError(f"unresolved fixup in {enc!r}: use immediate branch offsets")
        code += bytes(int(x, 16) for x in enc.split(","))
    return bytes(code)


def rsrc(target) -> tuple[int, int]:
    """(RSRC1, RSRC3): 8 VGPRs (granule field 0), 16 SGPRs; gfx90a/gfx942 ACCUM_OFFSET = 8."""
    return 0, (1 if target.has_agprs else 0)


class Kernel:
    """Code at a 256-byte aligned address of an executable BO, a kernarg block, an output."""

    def __init__(self, rig, source: dict[str, str], *, out_words: int = 512) -> None:
        t = rig.target
        self.code = assemble(t, source[t.family])
        self.bo = rig.alloc(4096, executable=True)
        self.bo.write(256, self.code)                 # KD at 0, entry at +256
        self.out = rig.alloc(4 * out_words)
        self.kernarg = rig.alloc(4096)
        self.kernarg.set_u64(0, self.out.gpu)
        self.entry = self.bo.gpu + 256

    def pm4(self, rig, dims, *, wg=64, partial=0, initiator_extra=0, user=None):
        t = rig.target
        rsrc1, rsrc3 = rsrc(t)
        user = user if user is not None else (self.kernarg.gpu & 0xFFFFFFFF,
                                              self.kernarg.gpu >> 32)
        init = 1 | 4 | initiator_extra                # COMPUTE_SHADER_EN | FORCE_START_AT_000
        if t.dispatch_initiator_wave32:
            init |= t.dispatch_initiator_wave32
        return [
            P.SetShReg.of(t, "COMPUTE_PGM_LO", (self.entry >> 8) & 0xFFFFFFFF, self.entry >> 40),
            P.SetShReg.of(t, "COMPUTE_PGM_RSRC1", rsrc1, RSRC2_USER2_TGIDX),
            P.SetShReg.of(t, "COMPUTE_PGM_RSRC3", rsrc3),
            P.SetShReg.of(t, "COMPUTE_USER_DATA_0", *user),
            P.SetShReg.of(t, "COMPUTE_START_X", 0, 0, 0, wg | (partial << 16), 1, 1),
            P.DispatchDirect(dim_x=dims, dim_y=1, dim_z=1, initiator=init),
        ]

    def ids(self, n: int) -> list[int]:
        return list(struct.unpack(f"<{n}I", self.out.read(0, 4 * n)))


def fence(q, rig, buf, value=1):
    q.submit(P.ReleaseMem(addr=buf.gpu, data=value, data_sel=1))
    assert poll(lambda: buf.u32(0) == value, timeout=20), "dispatch did not complete"


def test_pm4_dispatch_direct(rig):
    k = Kernel(rig, STORE_ID)
    q = rig.queue("pm4")
    done = rig.alloc(4096)
    q.submit(*k.pm4(rig, 4))
    fence(q, rig, done)
    assert k.ids(260) == list(range(256)) + [0] * 4


def test_pm4_partial_workgroup(rig942):
    rig = rig942
    k = Kernel(rig, STORE_ID)
    q = rig.queue("pm4")
    done = rig.alloc(4096)
    # PARTIAL_TG_EN: the last of the 3 groups has NUM_THREAD_PARTIAL = 16 work-items
    q.submit(*k.pm4(rig, 3, partial=16, initiator_extra=1 << 1))
    fence(q, rig, done)
    assert k.ids(150) == list(range(144)) + [0] * 6


def test_pm4_thread_dimensions(rig942):
    rig = rig942
    k = Kernel(rig, STORE_ID)
    q = rig.queue("pm4")
    done = rig.alloc(4096)
    # USE_THREAD_DIMENSIONS: DIM_X counts work-items (PAL dimInThreads)
    q.submit(*k.pm4(rig, 100, initiator_extra=1 << 5))
    fence(q, rig, done)
    assert k.ids(130) == list(range(100)) + [0] * 30


def test_aql_dispatch(rig):
    t = rig.target
    k = Kernel(rig, STORE_ID)
    rsrc1, rsrc3 = rsrc(t)
    props = 0x0008 | (1 << 10 if t.wave_size == 32 else 0)   # kernarg ptr (+ wave32 on gfx11)
    k.bo.write(0, kernel_descriptor(props=props, rsrc1=rsrc1, rsrc2=RSRC2_USER2_TGIDX,
                                    rsrc3=rsrc3))
    q = rig.queue("aql")
    s = Signals(rig)
    done = s.new(1)
    q.submit_aql(A.KernelDispatchPacket(kernel_object=k.bo.gpu, workgroup_size_x=64,
                                        grid_size_x=200, kernarg_address=k.kernarg.gpu,
                                        completion_signal=done))
    assert poll(lambda: s.value(done) == 0, timeout=20)
    assert k.ids(210) == list(range(200)) + [0] * 10
    assert q.rptr() == 1


def test_destroy_queue_running_an_endless_kernel(rig942):
    rig = rig942
    k = Kernel(rig, SPIN_FOREVER)
    q = rig.queue("pm4")
    done = rig.alloc(4096)
    q.submit(*k.pm4(rig, 1), P.ReleaseMem(addr=done.gpu, data=1, data_sel=1))
    assert not poll(lambda: done.u32(0) == 1, timeout=0.2)
    q.destroy()                                   # returns: the dispatch is cancelled
    other = rig.queue("pm4")                      # the device keeps working
    other.submit(P.WriteData(addr=done.gpu + 8, data=(5,)))
    assert poll(lambda: done.u32(8) == 5)
    assert done.u32(0) == 0


def test_other_queues_run_while_a_kernel_loops_forever(rig942):
    rig = rig942
    k = Kernel(rig, MARK_THEN_SPIN)
    looping = rig.queue("pm4")
    buf = rig.alloc(4096)
    looping.submit(*k.pm4(rig, 1))
    assert poll(lambda: k.kernarg.u32(8) == 1)    # the kernel is running now
    pm4 = rig.queue("pm4")
    sdma = rig.queue("sdma")
    for i in range(1, 20):
        pm4.submit(P.WriteData(addr=buf.gpu, data=(i,)))
        assert poll(lambda i=i: buf.u32(0) == i)
    from pytest_amdgpu.packets import sdma as S
    sdma.submit(S.SdmaFence(addr=buf.gpu + 8, data=3))
    assert poll(lambda: buf.u32(8) == 3)
    looping.destroy()


def test_shader_interrupt_reaches_wait_events(rig942):
    rig = rig942
    k = Kernel(rig, SEND_INTERRUPT)
    ev = rig.event()
    other = rig.event()
    rig.event_page.set_u64(8 * ev.event_id, 1)          # the slot the runtime would set
    q = rig.queue("pm4")
    done = rig.alloc(4096)
    q.submit(*k.pm4(rig, 1, user=(ev.event_id, 0)))    # s0 = the event id, copied to m0
    fence(q, rig, done)
    assert rig.wait_events([ev.event_id]).status == "complete"
    assert rig.wait_events([other.event_id], timeout_ms=50).status == "timeout"


def test_shader_vm_fault(rig942):
    rig = rig942
    k = Kernel(rig, STORE_TO_S01)
    ev = rig.event(EV_MEMORY)
    q = rig.queue("pm4")
    bad = rig._next_va + 0x7000
    q.submit(*k.pm4(rig, 1, user=(bad & 0xFFFFFFFF, bad >> 32)))
    res = rig.wait_events([ev.event_id])
    assert res.status == "complete"
    assert res.data[0].memory.va == bad & ~0xFFF


def test_illegal_instruction_is_a_hw_exception(rig942):
    rig = rig942
    k = Kernel(rig, STORE_ID)
    k.bo.write(256, b"\xff\xff\xff\xff" * 4)               # not an instruction
    ev = rig.event(EV_HW_EXCEPTION)
    q = rig.queue("pm4")
    q.submit(*k.pm4(rig, 1))
    assert rig.wait_events([ev.event_id]).status == "complete"
    reason = rig.port.process.queues[q.queue_id].hw_exception
    assert reason.startswith("EC_QUEUE_WAVE_"), reason


def test_float_overflow_in_a_kernel_is_silent(rig942):
    """GPU arithmetic never traps: FLT_MAX * FLT_MAX stores +inf and the simulated GPU thread
    raises no floating-point warning or error (its threads ignore numpy's FP errors)."""
    rig = rig942
    k = Kernel(rig, OVERFLOW_TO_INF)
    q = rig.queue("pm4")
    done = rig.alloc(4096)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q.submit(*k.pm4(rig, 1))
        fence(q, rig, done)
    assert k.kernarg.u32(8) == 0x7F800000
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
