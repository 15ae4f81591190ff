"""Malformed packets: decoders raise PacketDecodeError naming the offset, the header and the
reason; encoders refuse values that do not fit; format_stream keeps going past garbage."""

from __future__ import annotations

import struct

import pytest

from pytest_amdgpu.errors import PacketError
from pytest_amdgpu.packets import aql, pm4, sdma
from pytest_amdgpu.packets.common import PacketDecodeError

WAIT = [0xC0053C00, 0x15, 0x2000, 0x1, 0x10, 0xFFFFFFFF, 4]     # facts-pm4.md G4


def _err(fn, *args) -> PacketDecodeError:
    with pytest.raises(PacketDecodeError) as info:
        fn(*args)
    return info.value


# --- PM4 ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "kind"), [(0x00001234, 0), (0x40000000, 1)])
def test_pm4_bad_packet_type(header, kind):
    e = _err(pm4.decode, [0xFFFF1000, header, 0], 1, "gfx942")
    assert e.offset == 1 and e.header == header
    assert f"bad packet type {kind}" in str(e)
    assert "dword offset 0x1" in str(e) and f"{header:#010x}" in str(e)


def test_pm4_unknown_opcode():
    e = _err(pm4.decode, [0xC000FF00, 0], 0, "gfx942")
    assert "unknown opcode 0xff" in e.reason


def test_pm4_known_but_unmodelled_opcode_is_named():
    e = _err(pm4.decode, [0xC0032200, 0, 0, 0, 0], 0, "gfx942")   # COND_EXEC 0x22
    assert "COND_EXEC" in e.reason


def test_pm4_count_inconsistent_with_body():
    bad = [0xC0043C00, *WAIT[1:6]]          # WAIT_REG_MEM with count 4 (needs 5)
    e = _err(pm4.decode, bad, 0, "gfx90a")
    assert "WAIT_REG_MEM" in e.reason and "count 4" in e.reason and "count 5" in e.reason


def test_pm4_acquire_mem_length_is_per_family():
    gfx11_form = [0xC0065800, 0, 0xFFFFFFFF, 0, 0, 0, 4, 0x4381]
    e = _err(pm4.decode, gfx11_form, 0, "gfx942")
    assert "ACQUIRE_MEM" in e.reason and "gfx9" in e.reason
    assert pm4.decode(gfx11_form, 0, "gfx1100")[1] == 8


def test_pm4_truncated():
    e = _err(pm4.decode, WAIT[:4], 0, "gfx942")
    assert "needs 7 dwords" in e.reason and "ends after 4" in e.reason
    e = _err(pm4.decode, WAIT, 7, "gfx942")
    assert e.header is None and "ends before" in e.reason


def test_pm4_reserved_values():
    e = _err(pm4.decode, [WAIT[0], 0x17, *WAIT[2:]], 0, "gfx942")   # FUNCTION 7
    assert "function = 7 is reserved" in e.reason
    e = _err(pm4.decode, [WAIT[0], 0x95, *WAIT[2:]], 0, "gfx942")   # OPERATION 2
    assert "operation" in e.reason
    e = _err(pm4.decode, [0xC0033700, 4 << 8, 0x1000, 0, 1], 0, "gfx942")   # DST_SEL 4
    assert "dst_sel" in e.reason
    rel = [0xC0064900, 0x514, 6 << 29, 0x1000, 0, 0, 0, 0]           # DATA_SEL 6
    assert "data_sel" in _err(pm4.decode, rel, 0, "gfx942").reason


def test_pm4_form_dependent_packet_needs_target():
    rel = [0xC0064900, 0x514, 0, 0, 0, 0, 0, 0]
    assert "needs a target" in _err(pm4.decode, rel, 0, None).reason
    with pytest.raises(PacketError, match="needs a target"):
        pm4.ReleaseMem().encode()


def test_pm4_encode_rejects_out_of_range_and_misaligned():
    with pytest.raises(PacketError, match="function"):
        pm4.WaitRegMem(addr=0x1000, reference=0, function=9).encode()
    with pytest.raises(PacketError, match="aligned"):
        pm4.WaitRegMem(addr=0x1002, reference=0).encode()
    with pytest.raises(PacketError, match="aligned"):
        pm4.IndirectBuffer(addr=0x1002, ib_size=4).encode()
    with pytest.raises(PacketError, match="ib_size"):
        pm4.IndirectBuffer(addr=0x1000, ib_size=1 << 20).encode()
    with pytest.raises(PacketError, match="data"):
        pm4.WriteData(addr=0x1000, data=[]).encode()
    with pytest.raises(PacketError, match="SH window"):
        pm4.SetShReg(reg_offset=0x3FF, values=(1, 2)).encode()
    with pytest.raises(PacketError, match="reserved"):
        pm4.WaitRegMem(addr=0x1000, reference=0, operation=2).encode()
    with pytest.raises(PacketError, match="not a known name"):
        pm4.WaitRegMem(addr=0x1000, reference=0, function="=~")


def test_pm4_copy_data_memory_alignment_follows_count_sel():
    # soc15d.h: SRC/DST_32B_ADDR_LO is [31:2], _64B_ADDR_LO [31:3]; registers and immediates
    # (SRC_SEL 0 / 5) carry no address alignment.
    with pytest.raises(PacketError, match="src_addr=0x1004 must be 8-byte aligned"):
        pm4.CopyData(src_sel=2, dst_sel=5, count_sel=1, src_addr=0x1004, dst_addr=0x2000).encode()
    with pytest.raises(PacketError, match="dst_addr=0x2002 must be 4-byte aligned"):
        pm4.CopyData(src_sel=5, dst_sel=2, src_addr=0x3, dst_addr=0x2002).encode()
    assert pm4.CopyData(src_sel=5, dst_sel=5, src_addr=0xCAFEF00D, dst_addr=0x1004).encode()[2] \
        == 0xCAFEF00D
    assert pm4.CopyData(src_sel=0, dst_sel=5, src_addr=0x2E41, dst_addr=0x1004).encode()[2] \
        == 0x2E41


def test_pm4_gcr_field_on_gfx9_target_is_refused():
    with pytest.raises(PacketError, match="gcr_gl2_wb"):
        pm4.ReleaseMem(gcr_gl2_wb=1).encode("gfx942")
    with pytest.raises(PacketError, match="tc_wb_action_en"):
        pm4.ReleaseMem(tc_wb_action_en=1).encode("gfx1100")
    with pytest.raises(PacketError, match="gcr_cntl"):
        pm4.AcquireMem(gcr_cntl=1).encode("gfx90a")


def test_pm4_format_stream_continues_past_garbage():
    stream = [*WAIT, 0x12345678, 0xDEADBEEF, 0xFFFF1000, 0xC0004600, 0x407]
    text = pm4.format_stream(stream, "gfx942", start_offset=0x40, mark=0x47)
    lines = text.splitlines()
    assert len(lines) == 5
    assert "WAIT_REG_MEM" in lines[0]
    assert lines[1].startswith("=>") and "??? 0x12345678" in lines[1]
    assert "bad packet type 0" in lines[1]
    assert "??? 0xdeadbeef" in lines[2]
    assert lines[3].rstrip().endswith("NOP")
    assert "EVENT_WRITE event=CS_PARTIAL_FLUSH" in lines[4]
    assert lines[0].lstrip().startswith("0x000040")


def test_pm4_format_stream_skips_unknown_packets_by_count():
    stream = [0xC0032200, 1, 2, 3, 4, 0xFFFF1000]       # COND_EXEC (not modelled), NOP
    lines = pm4.format_stream(stream, "gfx942").splitlines()
    assert len(lines) == 2 and "COND_EXEC" in lines[0] and "5 dwords skipped" in lines[0]


def test_pm4_format_stream_mark_inside_packet_and_outside_window():
    text = pm4.format_stream(WAIT, "gfx942", start_offset=0, mark=3)
    assert text.startswith("=>") and "mark at +3" in text
    assert "after this window" in pm4.format_stream(WAIT, "gfx942", mark=100)


# --- SDMA ---------------------------------------------------------------------------------

def test_sdma_unknown_op():
    e = _err(sdma.decode, [0x00000003, 0], 0, "gfx942")
    assert e.engine == "SDMA" and "unknown SDMA op 3" in e.reason
    # GCR_REQ (op 17) exists only on SDMA 6.0
    assert "unknown SDMA op 17" in _err(sdma.decode, [17, 0, 0, 0, 0], 0, "gfx942").reason
    assert "GCR_REQ" in _err(sdma.decode, [17, 0, 0, 0, 0], 0, "gfx1100").reason


def test_sdma_unknown_sub_op():
    e = _err(sdma.decode, [0x00000101] + [0] * 12, 0, "gfx1100")
    assert "COPY sub-op 1 (TILED)" in e.reason
    e = _err(sdma.decode, [0x00006301] + [0] * 12, 0, "gfx1100")
    assert "unknown sub-op 99" in e.reason


def test_sdma_truncated_and_reserved():
    e = _err(sdma.decode, [0x00000001, 0xFFF, 0], 0, "gfx942")
    assert "needs 7 dwords" in e.reason
    e = _err(sdma.decode, [0x00000002, 0x1000, 0], 0, "gfx942")
    assert "ends inside" in e.reason
    poll = [0xF0000008, 0x4000, 0, 1, 0xFFFFFFFF, 0x0FFF0004]         # func 7
    assert "function = 7 is reserved" in _err(sdma.decode, poll, 0, "gfx90a").reason


def test_sdma_needs_target():
    with pytest.raises(PacketError, match="needs a target"):
        sdma.decode([0], 0, None)


def test_sdma_format_stream_byte_offsets_and_garbage():
    words = [0x00000005, 0x3000, 0, 1, 0x000000FF, 0x00000006, 7]
    lines = sdma.format_stream(words, "gfx942", start_offset=0x100, mark=0x110).splitlines()
    assert len(lines) == 3
    assert "FENCE addr=0x3000 data=0x1" in lines[0] and "0x000100" in lines[0]
    assert lines[1].startswith("=>") and "0x000110" in lines[1] and "???" in lines[1]
    assert "TRAP ctx=0x7" in lines[2] and "0x000114" in lines[2]


# --- AQL ----------------------------------------------------------------------------------

def _slot(header: int, *rest: int) -> bytes:
    return struct.pack("<I", header) + bytes(60) if not rest else struct.pack(
        "<16I", header, *rest, *(0,) * (15 - len(rest)))


def test_aql_reserved_type():
    e = _err(aql.decode, bytes(64) + _slot(0x0007), 64)
    assert e.offset == 64 and e.unit == "byte" and "reserved packet type 7" in e.reason


def test_aql_unknown_vendor_format():
    e = _err(aql.decode, _slot(0x00091400))
    assert "unknown AMD format 9" in e.reason


def test_aql_reserved_fence_scope_and_dims():
    assert "acquire_fence_scope" in _err(aql.decode, _slot(0x00010602)).reason   # scope 3
    assert "dimensions" in _err(aql.decode, _slot(0x00001402, 0x10040)).reason   # dims 0


def test_aql_truncated_buffer():
    e = _err(aql.decode, _slot(0x00011502)[:40])
    assert "ends 40 bytes into" in e.reason


def test_aql_encode_rejects():
    with pytest.raises(PacketError, match="dimensions"):
        aql.KernelDispatchPacket(kernel_object=0, workgroup_size_x=1, grid_size_x=1,
                                 dimensions=4).encode()
    with pytest.raises(PacketError, match="dep_signal"):
        aql.BarrierAndPacket(dep_signal=(1, 2, 3, 4, 5, 6)).encode()
    with pytest.raises(PacketError, match="workgroup"):
        aql.KernelDispatchPacket(kernel_object=0, workgroup_size_x=0, grid_size_x=1).encode()


def test_aql_format_stream_marks_read_index_and_continues():
    ring = (aql.BarrierAndPacket().encode() + _slot(0x00FF)
            + aql.InvalidPacket().encode())
    lines = aql.format_stream(ring, start_slot=7, mark=8, ring_slots=2).splitlines()
    assert len(lines) == 3
    assert "BARRIER_AND" in lines[0] and "[7 @1]" in lines[0]
    assert lines[1].startswith("=>") and "???" in lines[1] and "reserved packet type 255" in lines[1]
    assert "INVALID" in lines[2]
