"""How one turn of the PM4 processor runs the batch it fetched from the ring.

The processor decodes and runs the packets of a batch in one pass; what must not change is
what a batch is: the packets fetched at once (at most the turn's budget, up to a malformed
packet that follows good ones), the read pointer reported past all of them, and the packets
after one that waits, raises or calls an IB staying fetched (the one that waited or raised
first: it runs again). Consecutive SET_SH_REG packets are written by one compiled loop
(fastdecode.compile_register_run) that must stop exactly where reading them one by one would.

The turn tests run the queue's processor directly (the engine's executors leave it alone
meanwhile), as in test_pm4_registers.
"""

from __future__ import annotations

import dataclasses

import pytest

from pytest_amdgpu.packets import pm4 as P
from pytest_amdgpu.packets.common import PacketDecodeError, bits
from pytest_amdgpu.packets.pm4 import _pm4
from pytest_amdgpu.sim.gpu.common import QueueError, Status
from pytest_amdgpu.sim.gpu.engine import GPUEngine
from pytest_amdgpu.sim.gpu.fastdecode import (
    PM4Reader,
    compile_reader,
    compile_register_run,
    reader_for,
    strict_fields,
)
from pytest_amdgpu.sim.gpu.pm4 import SH_REGS, PM4Executor

from .rig import EV_HW_EXCEPTION, poll
from .test_pm4_registers import held, hw_exception, raw

REGISTER_INVALID = "EC_QUEUE_PACKET_DISPATCH_REGISTER_INVALID"


def sh(proc, name: str) -> int:
    """The value of SH register `name` in the processor's register file."""
    return proc.ex.sh[proc.target.reg(name)]


def lengths(t, *packets) -> list[int]:
    """The ring dword where each packet ends, for packets submitted from offset 0."""
    ends, at = [], 0
    for p in packets:
        at += len(p if isinstance(p, list) else p.encode(t))
        ends.append(at)
    return ends


def test_set_sh_reg_run_ends_at_the_packet_leaving_the_window(rig):
    """The packets of a SET_SH_REG run before the one that leaves the SH window are written;
    that one is the register exception, at its own ring dword; the read pointer is reported
    past the whole batch, as when the batch was fetched before its first packet ran."""
    t = rig.target
    q = rig.queue("pm4")
    stream = [P.SetShReg.of(t, "COMPUTE_USER_DATA_0", 11),
              P.SetShReg.of(t, "COMPUTE_USER_DATA_1", 22, 23),
              raw(P.SetShReg(reg_offset=SH_REGS - 1, values=(1, 2))),
              P.SetShReg.of(t, "COMPUTE_USER_DATA_4", 44)]
    ends = lengths(t, *stream)
    with held(rig, q) as proc:
        q.submit(*stream)
        with pytest.raises(QueueError) as e:
            proc.run(64)
        assert e.value.reason.startswith(REGISTER_INVALID)
        assert f"PM4 packet at ring dword {ends[1]:#x}" in e.value.reason
        assert [sh(proc, f"COMPUTE_USER_DATA_{i}") for i in range(5)] == [11, 22, 23, 0, 0]
        assert q.rptr() == ends[-1]


def test_set_sh_reg_run_counts_against_the_budget(rig942):
    """A run of SET_SH_REG packets stops at the turn's budget; the next turn goes on with the
    packet after the last one written."""
    t = rig942.target
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    stream = [P.SetShReg.of(t, f"COMPUTE_USER_DATA_{i}", i + 1) for i in range(5)]
    stream.append(P.WriteData(addr=buf.gpu, data=(1,)))
    ends = lengths(t, *stream)
    with held(rig942, q) as proc:
        q.submit(*stream)
        before = proc.completed
        assert proc.run(3) is Status.PROGRESS
        assert [sh(proc, f"COMPUTE_USER_DATA_{i}") for i in range(5)] == [1, 2, 3, 0, 0]
        assert q.rptr() == ends[2] and proc.completed - before == 3
        assert proc.run(64) is Status.IDLE
        assert [sh(proc, f"COMPUTE_USER_DATA_{i}") for i in range(5)] == [1, 2, 3, 4, 5]
        assert buf.u32(0) == 1 and proc.completed - before == 6
        assert q.rptr() == ends[-1]


def test_malformed_packet_after_a_set_sh_reg_run(rig942):
    """Good packets before a malformed one run; the malformed one is then the queue error,
    and the read pointer stops before it (the batch ended there)."""
    t = rig942.target
    q = rig942.queue("pm4")
    stream = [P.SetShReg.of(t, "COMPUTE_USER_DATA_0", 5),
              P.SetShReg.of(t, "COMPUTE_USER_DATA_1", 6),
              [0xC000_0000 | (0xEE << 8), 0]]            # type 3, no such opcode
    ends = lengths(t, *stream)
    with held(rig942, q) as proc:
        q.submit(*stream)
        with pytest.raises(QueueError) as e:
            proc.run(64)
        assert f"PM4 packet at ring dword {ends[1]:#x}" in e.value.reason
        assert "malformed packet" in e.value.reason
        assert (sh(proc, "COMPUTE_USER_DATA_0"), sh(proc, "COMPUTE_USER_DATA_1")) == (5, 6)
        assert q.rptr() == ends[1]


def test_packets_that_do_nothing_count_against_the_budget(rig):
    """ACQUIRE_MEM and EVENT_WRITE change nothing in the simulator but are packets of the
    turn: they use its budget, count as completed, and the read pointer moves past them."""
    t = rig.target
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    stream = [P.AcquireMem(coher_size=0xFFFFFFFF),
              P.EventWrite(event_type=P.EventType.CS_PARTIAL_FLUSH, event_index=4),
              P.WriteData(addr=buf.gpu, data=(1,))]
    ends = lengths(t, *stream)
    with held(rig, q) as proc:
        for _ in range(2):             # the second time, every header has been met before
            q.submit(*stream)
            start = q.wptr - ends[-1]
            before = proc.completed
            assert proc.run(2) is Status.PROGRESS
            assert buf.u32(0) == 0 and proc.completed - before == 2
            assert q.rptr() == start + ends[1]
            assert proc.run(64) is Status.IDLE
            assert buf.u32(0) == 1 and proc.completed - before == 3
            buf.set_u32(0, 0)


def test_a_packet_that_raises_stays_first_and_the_batch_stays_fetched(rig942, monkeypatch):
    """A DISPATCH_DIRECT whose dispatch raises (as a cancelled dispatch does) is run again by
    the next turn, then the packets after it; the read pointer of the failed turn is past the
    whole batch and the packets before it count as completed."""
    calls = []

    def run_shader(self, proc, regs, *, interrupt=None):
        calls.append(regs.grid)
        if len(calls) == 1:
            raise RuntimeError("cancelled")

    monkeypatch.setattr(GPUEngine, "run_shader", run_shader)
    t = rig942.target
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    stream = [P.WriteData(addr=buf.gpu, data=(1,)),
              P.SetShReg.of(t, "COMPUTE_NUM_THREAD_X", 64, 1, 1),
              P.DispatchDirect(dim_x=2, dim_y=1, dim_z=1, initiator=1),
              P.WriteData(addr=buf.gpu + 4, data=(2,))]
    ends = lengths(t, *stream)
    with held(rig942, q) as proc:
        q.submit(*stream)
        before = proc.completed
        with pytest.raises(RuntimeError):
            proc.run(64)
        assert buf.words(0, 2) == [1, 0] and proc.completed - before == 2
        assert q.rptr() == ends[-1]
        assert proc.run(64) is Status.IDLE
        assert calls == [(128, 1, 1), (128, 1, 1)]
        assert buf.words(0, 2) == [1, 2] and proc.completed - before == 4


def test_wait_in_the_middle_of_a_set_sh_reg_stream(rig942):
    """A WAIT_REG_MEM between register writes: the writes before it are done, the ones after
    it wait with it (fetched, the read pointer past them) and run once it is satisfied."""
    t = rig942.target
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    stream = [P.SetShReg.of(t, "COMPUTE_USER_DATA_0", 1),
              P.WaitRegMem(addr=buf.gpu, reference=1, function=3),
              P.SetShReg.of(t, "COMPUTE_USER_DATA_1", 2),
              P.SetShReg.of(t, "COMPUTE_USER_DATA_2", 3)]
    ends = lengths(t, *stream)
    with held(rig942, q) as proc:
        q.submit(*stream)
        assert proc.run(64) is Status.WAIT
        assert [sh(proc, f"COMPUTE_USER_DATA_{i}") for i in range(3)] == [1, 0, 0]
        assert q.rptr() == ends[-1]
        q.ring.write(4 * ends[1] + 8, b"\xff\xff\xff\xff")   # the fetched copy is what runs
        buf.set_u32(0, 1)
        assert proc.run(64) is Status.IDLE
        assert [sh(proc, f"COMPUTE_USER_DATA_{i}") for i in range(3)] == [1, 2, 3]


@pytest.fixture
def dispatches(monkeypatch):
    """The DispatchRegs of every dispatch the command processors start (not run)."""
    seen = []

    def run_shader(self, proc, regs, *, interrupt=None):
        seen.append(regs)

    monkeypatch.setattr(GPUEngine, "run_shader", run_shader)
    return seen


def test_dispatch_again_takes_what_changed(rig, dispatches):
    """DISPATCH_DIRECT with the registers, dimensions and initiator of the dispatch before
    takes its new user data and source; a changed register, dimension or initiator is
    worked out (and checked) again, an empty grid launches nothing each time."""
    t = rig.target
    q = rig.queue("pm4")
    buf = rig.alloc(4096)
    ev = rig.event(EV_HW_EXCEPTION)
    gran = t.lds_alloc_granule
    d = P.DispatchDirect(dim_x=2, dim_y=1, dim_z=1, initiator=1)
    stream = [P.SetShReg.of(t, "COMPUTE_NUM_THREAD_X", 64, 1, 1),
              P.SetShReg.of(t, "COMPUTE_USER_DATA_0", 1), d,
              P.SetShReg.of(t, "COMPUTE_USER_DATA_0", 2), d,
              P.SetShReg.of(t, "COMPUTE_PGM_RSRC2", 3 << 15), d,
              P.DispatchDirect(dim_x=3, dim_y=1, dim_z=1, initiator=1),
              P.DispatchDirect(dim_x=0, dim_y=1, dim_z=1, initiator=1),
              P.DispatchDirect(dim_x=0, dim_y=1, dim_z=1, initiator=1),
              P.WriteData(addr=buf.gpu, data=(1,))]
    ends = lengths(t, *stream)
    q.submit(*stream)
    assert poll(lambda: buf.u32(0) == 1)
    assert [r.user_data[0] for r in dispatches] == [1, 2, 2, 2]
    assert [r.lds_bytes for r in dispatches] == [0, 0, 3 * gran, 3 * gran]
    assert [r.grid for r in dispatches] == [(128, 1, 1)] * 3 + [(192, 1, 1)]
    at = [ends[i - 1] for i in (2, 4, 6, 7)]
    assert [str(r.source) for r in dispatches] == [
        f"DISPATCH_DIRECT (PM4 packet at ring dword {a:#x} (rptr {a:#x}))" for a in at]
    assert dispatches[0].user_data is not dispatches[1].user_data
    first, again = dispatches[:2]
    assert again == dataclasses.replace(first, user_data=again.user_data, source=again.source)
    q.submit(P.SetShReg.of(t, "COMPUTE_NUM_THREAD_Y", 0), d)
    reason = hw_exception(rig, q, ev)
    assert "COMPUTE_NUM_THREAD_Y NUM_THREAD_FULL is 0" in reason and len(dispatches) == 4


# -- the compiled register run --------------------------------------------------------------------

@pytest.mark.parametrize("target", ["gfx90a", "gfx942", "gfx1100"])
def test_register_run_stops_where_reading_packet_by_packet_would(target):
    """compile_register_run writes exactly the SET_SH_REG packets PM4Reader reads as
    SET_SH_REG, and stops before the first other one (another opcode, a length no layout
    has, a packet cut off, registers past the file)."""
    from pytest_amdgpu.targets import get_target

    t = get_target(target)
    reader = reader_for(PM4Reader, t)
    run = reader.register_runs[P.SetShReg]
    good = [raw(P.SetShReg(reg_offset=0x10 + 4 * i, values=tuple(range(1, i + 2))))
            for i in range(3)]
    header = good[0][0]
    stoppers = {
        "other opcode": P.SetUconfigReg(reg_offset=0, values=(1,)).encode(t),
        "no values": [header & ~(0x3FFF << 16), 0x20],
        "type 2": [0x8000_0000],
        "past the file": raw(P.SetShReg(reg_offset=SH_REGS - 1, values=(7, 8))),
    }
    for name, stop in stoppers.items():
        words = [w for p in good for w in p] + list(stop)
        regs = [0] * SH_REGS
        k, off = run(words, 0, len(words), 64, regs, SH_REGS)
        assert (k, off) == (3, sum(map(len, good))), name
        assert regs[0x10:0x1C] == [1, 0, 0, 0, 1, 2, 0, 0, 1, 2, 3, 0], name
        assert regs[-1] == 0 and sum(regs) == 10, name
        try:
            cls = reader.read(words, off)[0]
        except PacketDecodeError:
            cls = None
        assert cls is not P.SetShReg or name == "past the file", name
    words = [w for p in good for w in p]
    ends = lengths(t, *good)
    assert run(words, 0, len(words) - 1, 64, [0] * SH_REGS, SH_REGS) == (2, ends[1])  # cut off
    assert run(words, 0, len(words), 2, [0] * SH_REGS, SH_REGS) == (2, ends[1])      # limit


def test_register_run_stops_at_a_reserved_value():
    """A strict field of the layout is checked like the reader checks it: the run stops
    before the packet with a reserved value (its reader then reports it)."""
    strict = _pm4(P.SetShReg, (bits("reg_offset", 1, 15, 0),
                               bits("index", 1, 31, 28, names={0: "DEFAULT"}, strict=True)),
                  1, tail="values", tail_min=1)
    run = compile_register_run(P.SetShReg, strict, ())
    reader = compile_reader(strict, ("reg_offset",))
    header = 0xC000_0000 | (P.SetShReg.OPCODE << 8) | (1 << 16)
    words = [header, 0x10, 5, header, 0x11 | (1 << 28), 6, header, 0x12, 7]
    regs = [0] * 32
    assert run(words, 0, len(words), 64, regs, 32) == (1, 3)
    assert regs[0x10:0x13] == [5, 0, 0]
    with pytest.raises(LookupError):
        reader(words, 3, 3)


def test_no_op_packets_are_only_counted_when_nothing_is_checked():
    """Packets that do nothing skip their reader only when it checks no field: a reader with
    strict fields (a reserved value makes the packet malformed) keeps being run."""
    wait = P.WaitRegMem.layouts(None)[0]
    assert set(strict_fields(compile_reader(wait, ("function",)))) >= {"function"}
    event = P.EventWrite.layouts(None)[0]
    assert strict_fields(compile_reader(event, ("event_type",))) == ()
    assert strict_fields(lambda d, o, n: ()) == ("?",)       # unknown: assume it checks


def test_known_headers_of_no_op_packets(rig942):
    """The executor's header cache marks EVENT_WRITE / ACQUIRE_MEM as nothing to run, and a
    packet read through parse (IBs) still gets a handler to call."""
    t = rig942.target
    q = rig942.queue("pm4")
    buf = rig942.alloc(4096)
    q.submit(P.EventWrite(event_type=P.EventType.CS_PARTIAL_FLUSH, event_index=4),
             P.WriteData(addr=buf.gpu, data=(1,)))
    with held(rig942, q) as proc:
        ex: PM4Executor = proc.ex
        proc.run(64)
        event = P.EventWrite(event_type=P.EventType.CS_PARTIAL_FLUSH, event_index=4).encode(t)
        assert ex.known[event[0]][0] is None
        pkts, used, _ = ex.parse(event, 8, proc.where_ring, 0)
        assert used == len(event) and pkts[0][0](ex, pkts[0][1], 0) is True
