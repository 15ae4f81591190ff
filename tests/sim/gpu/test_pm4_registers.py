"""PM4 register state and the ring loop: what SET_SH_REG / SET_UCONFIG_REG / WRITE_DATA /
COPY_DATA leave in the queue's registers is what DISPATCH_DIRECT, COPY_DATA and WAIT_REG_MEM
read; the per-turn budget, waits and read-pointer reports of a turn.

Expected register values come from the packets' semantics (facts-pm4.md §3-§4: SET_SH_REG
writes consecutive registers from REG_OFFSET; a register keeps its value until written again;
COMPUTE_PGM_LO/HI hold the code address >> 8; NUM_THREAD_FULL [15:0]), not from the engine.
The turn tests run the queue's processor directly (the engine's executors leave it alone
meanwhile) so that one turn with a chosen budget is observable.
"""

from __future__ import annotations

import contextlib
import struct

import pytest

from pytest_amdgpu.packets import aql as A
from pytest_amdgpu.packets import pm4 as P
from pytest_amdgpu.sim.gpu.common import Status
from pytest_amdgpu.sim.gpu.dispatch import apply_apertures, state_from_sh_regs, to_shader_regs
from pytest_amdgpu.sim.gpu.engine import GPUEngine

from .rig import EV_HW_EXCEPTION, poll
from .test_aql import Signals

SH_BASE = P.SH_REG_WINDOW[0]
UCONFIG_BASE = P.UCONFIG_REG_WINDOW[0]
REGISTER_INVALID = "EC_QUEUE_PACKET_DISPATCH_REGISTER_INVALID"


def raw(packet) -> list[int]:
    """The packet's dwords from its layout, without the builder's window check (so a packet
    the hardware would refuse can be written to the ring)."""
    return packet.layouts(None)[0].encode(packet)


def hw_exception(rig, q, ev) -> str:
    """The reason of the HW exception that stopped `q` (signalled on event `ev`)."""
    assert rig.wait_events([ev.event_id]).status == "complete"
    return rig.port.process.queues[q.queue_id].hw_exception


@pytest.fixture
def dispatches(monkeypatch):
    """The DispatchRegs of every dispatch the command processors start; the shader core does
    not run them (the register values are the subject)."""
    seen = []

    def run_shader(self, proc, regs, *, interrupt=None):
        seen.append(regs)

    monkeypatch.setattr(GPUEngine, "run_shader", run_shader)
    return seen


# -- SET_SH_REG / SET_UCONFIG_REG windows --------------------------------------------------------

@pytest.mark.parametrize("cls, name, off, n", [
    (P.SetShReg, "SH", 0x3FF, 2),           # straddles the end of the 0x400-register window
    (P.SetShReg, "SH", 0x400, 1),           # starts past it
    (P.SetUconfigReg, "UCONFIG", 0x3FE, 3),
])
def test_set_reg_leaving_the_window_is_a_register_exception(rig, cls, name, off, n):
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    ev = rig.event(EV_HW_EXCEPTION)
    first = P.WriteData(addr=buf.gpu, data=(1,)).encode(rig.target)
    q.submit(first, raw(cls(reg_offset=off, values=tuple(range(1, n + 1)))),
             P.WriteData(addr=buf.gpu + 4, data=(2,)))
    reason = hw_exception(rig, q, ev)
    assert reason.startswith(REGISTER_INVALID), reason
    assert f"PM4 packet at ring dword {len(first):#x}" in reason
    assert f"SET_{name}_REG offset {off:#x} + {n} registers leaves the {name} register window" \
        in reason
    assert buf.words(0, 2) == [1, 0]          # the packet before ran, the one after did not


def test_set_sh_reg_up_to_the_last_register_of_the_window(rig942):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    last = SH_BASE + 0x3FF
    q.submit(P.SetShReg(reg_offset=0x3FD, values=(7, 8, 9)),
             P.CopyData(src_sel=0, dst_sel=5, src_addr=last, dst_addr=buf.gpu),
             P.CopyData(src_sel=0, dst_sel=5, src_addr=last - 2, dst_addr=buf.gpu + 4),
             P.WriteData(addr=buf.gpu + 8, data=(1,)))
    assert poll(lambda: buf.u32(8) == 1)
    assert buf.words(0, 2) == [9, 7]


# -- registers read by COPY_DATA / WAIT_REG_MEM --------------------------------------------------

def test_copy_data_from_registers(rig):
    """Unwritten registers read 0; a 64-bit COPY_DATA reads the register and the next one
    (high half); COPY_DATA and WRITE_DATA to a register land in the same state."""
    t = rig.target
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    buf.write(0, b"\xff" * 64)
    ud0 = SH_BASE + t.reg("COMPUTE_USER_DATA_0")
    q.submit(P.CopyData(src_sel=0, dst_sel=5, src_addr=ud0 + 9, dst_addr=buf.gpu),
             P.CopyData(src_sel=0, dst_sel=5, src_addr=UCONFIG_BASE + 0x3FF,
                        dst_addr=buf.gpu + 4),
             P.SetShReg.of(t, "COMPUTE_USER_DATA_0", 0x11111111, 0x22222222, 0x33333333),
             P.CopyData(src_sel=0, dst_sel=5, count_sel=1, src_addr=ud0 + 1,
                        dst_addr=buf.gpu + 8),
             P.CopyData(src_sel=5, dst_sel=0, src_addr=0xABCD, dst_addr=ud0 + 2),
             P.WriteData(dst_sel=0, addr=ud0, data=(0x44, 0x55)),
             P.CopyData(src_sel=0, dst_sel=0, src_addr=ud0 + 1, dst_addr=UCONFIG_BASE + 7),
             P.CopyData(src_sel=0, dst_sel=5, count_sel=1, src_addr=ud0,
                        dst_addr=buf.gpu + 16),
             P.CopyData(src_sel=0, dst_sel=5, count_sel=1, src_addr=ud0 + 2,
                        dst_addr=buf.gpu + 24),
             P.CopyData(src_sel=0, dst_sel=5, src_addr=UCONFIG_BASE + 7, dst_addr=buf.gpu + 32),
             P.WriteData(addr=buf.gpu + 40, data=(1,)))
    assert poll(lambda: buf.u32(40) == 1)
    assert buf.u32(0) == 0 and buf.u32(4) == 0
    assert buf.u64(8) == 0x33333333_22222222
    assert buf.u64(16) == 0x55_00000044
    assert buf.u64(24) == 0xABCD                 # USER_DATA_3 was never written: 0
    assert buf.u32(32) == 0x55


def test_copy_data_from_a_privileged_register_is_an_exception(rig942):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    ev = rig942.event(EV_HW_EXCEPTION)
    q.submit(P.CopyData(src_sel=0, dst_sel=5, src_addr=SH_BASE - 1, dst_addr=buf.gpu))
    assert "register 0x2bff is outside the SH and UCONFIG windows" in hw_exception(rig942, q, ev)


def test_wait_reg_mem_on_a_uconfig_register_set_before(rig942):
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    q.submit(P.SetUconfigReg(reg_offset=0x20, values=(5,)),
             P.WaitRegMem(addr=UCONFIG_BASE + 0x20, mem_space=0, reference=5, function=3),
             P.WriteData(addr=buf.gpu, data=(1,)),
             P.WaitRegMem(addr=UCONFIG_BASE + 0x21, mem_space=0, reference=0, function=4),
             P.WriteData(addr=buf.gpu + 4, data=(2,)))
    assert poll(lambda: buf.u32(0) == 1)
    assert not poll(lambda: buf.u32(4) == 2, timeout=0.05)   # 0x21 was never written: 0


def test_registers_of_an_aql_pm4_ib(rig, dispatches):
    """AQL's PM4-IB packets run on their own PM4 register state: an IB sets and reads
    registers and dispatches; the next IB starts from registers at 0."""
    t = rig.target
    q = rig.queue("aql")
    s = Signals(rig)
    buf = rig.alloc(4096)
    buf.write(0, b"\xff" * 16)
    ib = rig.alloc(4096)
    ud0 = SH_BASE + t.reg("COMPUTE_USER_DATA_0")
    first = [P.SetShReg.of(t, "COMPUTE_USER_DATA_0", 0x10, 0x20),
             P.SetShReg.of(t, "COMPUTE_NUM_THREAD_X", 64, 1, 1),
             P.CopyData(src_sel=0, dst_sel=5, count_sel=1, src_addr=ud0, dst_addr=buf.gpu),
             P.DispatchDirect(dim_x=2, dim_y=1, dim_z=1, initiator=1)]
    second = [P.CopyData(src_sel=0, dst_sel=5, src_addr=ud0 + 1, dst_addr=buf.gpu + 8)]
    for i, packets in enumerate((first, second)):
        words = [w for p in packets for w in p.encode(t)]
        ib.write(0x800 * i, struct.pack(f"<{len(words)}I", *words))
        done = s.new(1)
        q.submit_aql(A.Pm4IbPacket.for_ib(ib.gpu + 0x800 * i, len(words),
                                          completion_signal=done))
        assert poll(lambda done=done: s.value(done) == 0)
    assert buf.u64(0) == 0x20_00000010 and buf.u32(8) == 0
    (regs,) = dispatches
    assert regs.user_data[:3] == [0x10, 0x20, 0] and regs.grid == (128, 1, 1)


# -- DISPATCH_DIRECT reads what the packets wrote ------------------------------------------------

def _expected_user(values: dict[int, int]) -> list[int]:
    return [values.get(i, 0) for i in range(16)]


def test_dispatch_direct_reads_the_registers_the_packets_wrote(rig, dispatches):
    """Registers set by several packets (partly overwritten, some by WRITE_DATA / COPY_DATA to
    a register) and kept across dispatches are what each DISPATCH_DIRECT starts with."""
    t = rig.target
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    ud0 = SH_BASE + t.reg("COMPUTE_USER_DATA_0")
    code = 0x7F12_3456_7800
    init = 1 | (t.dispatch_initiator_wave32 or 0)          # COMPUTE_SHADER_EN (+ CS_W32_EN)
    tmpring = (3 << 12) | 40                                # WAVESIZE 3, WAVES 40
    lds_blocks = 4
    rsrc2 = (2 << 1) | (lds_blocks << 15)
    setup = [P.SetShReg.of(t, "COMPUTE_PGM_LO", code >> 8 & 0xFFFFFFFF, code >> 40),
             P.SetShReg.of(t, "COMPUTE_PGM_RSRC1", 0x1234, rsrc2),
             P.SetShReg.of(t, "COMPUTE_PGM_RSRC3", 0x56),
             P.SetShReg.of(t, "COMPUTE_TMPRING_SIZE", tmpring),
             P.SetShReg.of(t, "COMPUTE_DISPATCH_SCRATCH_BASE_LO", 0x12345, 0x1AB),
             P.SetShReg.of(t, "COMPUTE_DISPATCH_ID", 9),
             P.SetShReg.of(t, "COMPUTE_USER_DATA_0", 1, 2, 3, 4, 5, 6),
             P.SetShReg.of(t, "COMPUTE_USER_DATA_2", 0x33),
             P.SetShReg.of(t, "COMPUTE_START_X", 1, 2, 3, 32, 2, 1)]
    q.submit(*setup,
             P.DispatchDirect(dim_x=3, dim_y=2, dim_z=1, initiator=init),
             P.SetShReg.of(t, "COMPUTE_USER_DATA_5", 0x55),
             P.SetShReg.of(t, "COMPUTE_USER_DATA_15", 0xF),
             P.WriteData(dst_sel=0, addr=ud0, data=(0xAA,)),
             P.CopyData(src_sel=5, dst_sel=0, src_addr=0xBB, dst_addr=ud0 + 1),
             P.SetShReg.of(t, "COMPUTE_NUM_THREAD_Y", 1),
             P.DispatchDirect(dim_x=4, dim_y=1, dim_z=2, initiator=init | 4),   # start at 0
             P.WriteData(addr=buf.gpu, data=(1,)))
    assert poll(lambda: buf.u32(0) == 1)
    first, second = dispatches
    assert first.pgm_addr == code and second.pgm_addr == code
    assert (first.rsrc1, first.rsrc2, first.rsrc3) == (0x1234, rsrc2, 0x56)
    assert first.user_data == _expected_user({0: 1, 1: 2, 2: 0x33, 3: 4, 4: 5, 5: 6})
    assert second.user_data == _expected_user({0: 0xAA, 1: 0xBB, 2: 0x33, 3: 4, 4: 5, 5: 0x55,
                                               15: 0xF})
    assert (first.workgroup, first.grid, first.start) == ((32, 2, 1), (96, 4, 1), (1, 2, 3))
    assert (second.workgroup, second.grid, second.start) == ((32, 1, 1), (128, 1, 2), (0, 0, 0))
    assert first.tmpring_size == tmpring and first.scratch_waves == 40
    assert first.scratch_wave_bytes == 3 * t.tmpring_wavesize_unit
    assert first.scratch_base == (0xAB << 40) | (0x12345 << 8)
    assert first.lds_bytes == lds_blocks * t.lds_alloc_granule
    assert first.dispatch_id == 9 and first.initiator == init
    assert first.wave32 == bool(t.dispatch_initiator_wave32)
    assert first.kernarg_ptr == 0 and first.dispatch_ptr == 0 and first.queue_ptr == 0
    at = sum(len(p.encode(t)) for p in setup)       # the first DISPATCH_DIRECT's dword
    assert str(first.source) == f"DISPATCH_DIRECT (PM4 packet at ring dword {at:#x} (rptr {at:#x}))"


def test_dispatch_registers_equal_the_dispatch_state_path(rig, dispatches):
    """The registers DISPATCH_DIRECT builds equal DispatchState -> apertures -> registers for
    the same register values (the general path), partial workgroups included."""
    t = rig.target
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    regs = {t.reg("COMPUTE_PGM_LO"): 0x1000, t.reg("COMPUTE_PGM_RSRC2"): (5 << 15) | 4,
            t.reg("COMPUTE_USER_DATA_7"): 0x77, t.reg("COMPUTE_NUM_THREAD_X"): 64 | (16 << 16),
            t.reg("COMPUTE_NUM_THREAD_Y"): 1, t.reg("COMPUTE_NUM_THREAD_Z"): 1,
            t.reg("COMPUTE_TMPRING_SIZE"): (1 << 12) | 8}
    init = 1 | 2 | 4                       # COMPUTE_SHADER_EN, PARTIAL_TG_EN, FORCE_START_AT_000
    q.submit(*(P.SetShReg(reg_offset=off, values=(v,)) for off, v in regs.items()),
             P.DispatchDirect(dim_x=3, dim_y=1, dim_z=1, initiator=init),
             P.WriteData(addr=buf.gpu, data=(1,)))
    assert poll(lambda: buf.u32(0) == 1)
    (got,) = dispatches
    sq = rig.port.process.queues[q.queue_id]
    state = state_from_sh_regs(t, regs, (3, 1, 1), init, source=str(got.source))
    assert got == to_shader_regs(apply_apertures(state, sq))
    assert got.grid == (2 * 64 + 16, 1, 1)


@pytest.mark.parametrize("value, message", [
    (0, "COMPUTE_NUM_THREAD_Y NUM_THREAD_FULL is 0"),
    (64, "workgroup 64x64x1 = 4096 work-items exceeds 1024"),
])
def test_bad_thread_counts_name_the_dispatch(rig942, value, message, dispatches):
    t = rig942.target
    q = rig942.queue("pm4")
    ev = rig942.event(EV_HW_EXCEPTION)
    q.submit(P.SetShReg.of(t, "COMPUTE_NUM_THREAD_X", 64, value, 1),
             P.DispatchDirect(dim_x=1, dim_y=1, dim_z=1, initiator=1))
    reason = hw_exception(rig942, q, ev)
    assert reason.startswith("EC_QUEUE_PACKET_DISPATCH_WORK_GROUP_SIZE_INVALID"), reason
    assert message in reason and "DISPATCH_DIRECT (PM4 packet at ring dword 0x5" in reason
    assert dispatches == []


# -- decoding ------------------------------------------------------------------------------------

def test_reserved_value_in_a_header_seen_before_is_malformed(rig942):
    """A WAIT_REG_MEM header that already ran, now with the reserved FUNCTION 7: the packets
    before it in the batch run, then the queue stops naming that packet."""
    t = rig942.target
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    buf.set_u32(64, 1)
    wait = P.WaitRegMem(addr=buf.gpu + 64, reference=1, function=3).encode(t)
    write = P.WriteData(addr=buf.gpu, data=(1,)).encode(t)
    q.submit(wait, write)
    assert poll(lambda: buf.u32(0) == 1)
    bad = list(wait)
    bad[1] |= 7
    ev = rig942.event(EV_HW_EXCEPTION)
    q.submit(P.WriteData(addr=buf.gpu + 4, data=(2,)), bad,
             P.WriteData(addr=buf.gpu + 8, data=(3,)))
    reason = hw_exception(rig942, q, ev)
    at = len(wait) + len(write) + len(write)
    assert f"PM4 packet at ring dword {at:#x}" in reason and "malformed packet" in reason
    assert buf.words(4, 2) == [2, 0]


# -- one turn of the processor -------------------------------------------------------------------

@contextlib.contextmanager
def held(rig, q):
    """The processor of queue `q`, kept from the engine's executors while the test runs its
    turns (`proc.run(budget)`) itself."""
    sq = rig.port.process.queues[q.queue_id]
    engine = sq.device.engine
    with engine._cv:
        entry = engine._entries[id(sq)]
        assert engine._cv.wait_for(lambda: entry.owner is None, timeout=5)
        entry.owner = -1
    try:
        yield entry.proc
    finally:
        with engine._cv:
            entry.owner = None
            entry.ready = True
            engine._cv.notify_all()


def test_turn_budget_wait_and_read_pointer(rig942):
    """A turn runs at most `budget` packets and reports the read pointer past the packets it
    fetched; a waiting packet stays the next one; an IB's packets count against the budget."""
    t = rig942.target
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    ib = rig942.alloc(4096)
    ib_words = (P.WriteData(addr=buf.gpu + 40, data=(40,)).encode(t)
                + P.WriteData(addr=buf.gpu + 44, data=(44,)).encode(t))
    ib.write(0, struct.pack(f"<{len(ib_words)}I", *ib_words))
    writes = [P.WriteData(addr=buf.gpu + 4 * i, data=(i + 1,)).encode(t) for i in range(4)]
    wait = P.WaitRegMem(addr=buf.gpu + 64, reference=1, function=3).encode(t)
    call = P.IndirectBuffer(addr=ib.gpu, ib_size=len(ib_words)).encode(t)
    stream = [*writes[:3], wait, writes[3], call, P.WriteData(addr=buf.gpu + 48,
                                                                 data=(48,)).encode(t)]
    ends = [sum(len(w) for w in stream[:i + 1]) for i in range(len(stream))]
    with held(rig942, q) as proc:
        q.submit(*stream)
        before = proc.completed
        assert proc.run(2) is Status.PROGRESS
        assert buf.words(0, 3) == [1, 2, 0] and q.rptr() == ends[1]
        assert proc.run(64) is Status.WAIT              # third write, then the wait
        assert buf.words(0, 4) == [1, 2, 3, 0] and q.rptr() == ends[-1]
        assert "WAIT_REG_MEM memory" in proc.wait_reason
        assert proc.run(64) is Status.WAIT              # still waiting: nothing ran
        assert proc.completed - before == 3
        buf.set_u32(64, 1)
        assert proc.run(3) is Status.PROGRESS           # wait, write 4, the IB packet
        assert buf.u32(12) == 4 and buf.u32(40) == 0
        assert proc.run(1) is Status.PROGRESS           # the IB's first packet
        assert (buf.u32(40), buf.u32(44)) == (40, 0)
        assert proc.run(64) is Status.IDLE
        assert (buf.u32(44), buf.u32(48)) == (44, 48)
        assert proc.completed - before == len(stream) + 2
        assert q.rptr() == ends[-1]


def test_turn_ends_after_pred_exec_and_skips_at_the_next(rig942):
    """A PRED_EXEC that fills the turn's batch: its governed dwords (not for this XCC) are
    skipped by the next turn, and the read pointer of the first turn stops after it."""
    t = rig942.target
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    skipped = P.WriteData(addr=buf.gpu, data=(1,)).encode(t)
    pred = P.PredExec(exec_count=len(skipped), virtual_xcc_id_select=0b10).encode(t)
    after = P.WriteData(addr=buf.gpu + 4, data=(2,)).encode(t)
    with held(rig942, q) as proc:
        q.submit(pred, skipped, after)
        assert proc.run(1) is Status.PROGRESS
        assert q.rptr() == len(pred) and buf.words(0, 2) == [0, 0]
        assert proc.run(64) is Status.IDLE
        assert q.rptr() == len(pred) + len(skipped) + len(after)
        assert buf.words(0, 2) == [0, 2]
