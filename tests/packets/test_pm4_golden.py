"""PM4 golden packets: byte-exact dwords from published facts, not from our builder.

Every expected value below is copied from shared/reference/facts-pm4.md §6 (G1-G12 and the
"extra bodies"), which assembles them from the kernel's soc15d.h / nvd.h macros, kfdtest's PM4
structs and the kernel ring code (sources cited per packet). Where the kernel defines the
arithmetic as a macro (PACKET3, WAIT_REG_MEM_FUNCTION, …), the test also recomputes the value
with that macro arithmetic, written here from the header text, as a second, executable oracle.
"""

from __future__ import annotations

import pytest

from pytest_amdgpu.packets import pm4
from pytest_amdgpu.targets import get_target

GFX9 = ("gfx90a", "gfx942")
ALL = ("gfx90a", "gfx942", "gfx1100")


def words(text: str) -> list[int]:
    return [int(x, 16) for x in text.split()]


# soc15d.h / nvd.h: #define PACKET3(op, n) ((PACKET_TYPE3 << 30) | (((op) & 0xFF) << 8) |
# ((n) & 0x3FFF) << 16), PACKET_TYPE3 = 3.
def PACKET3(op: int, n: int) -> int:
    return (3 << 30) | ((op & 0xFF) << 8) | ((n & 0x3FFF) << 16)


# Opcodes as printed in soc15d.h (gfx9) and nvd.h (gfx10+); facts-pm4.md §2.
PACKET3_NOP = 0x10
PACKET3_DISPATCH_DIRECT = 0x15
PACKET3_ATOMIC_MEM = 0x1E
PACKET3_WRITE_DATA = 0x37
PACKET3_WAIT_REG_MEM = 0x3C
PACKET3_INDIRECT_BUFFER = 0x3F
PACKET3_COPY_DATA = 0x40
PACKET3_EVENT_WRITE = 0x46
PACKET3_RELEASE_MEM = 0x49
PACKET3_DMA_DATA = 0x50
PACKET3_ACQUIRE_MEM = 0x58
PACKET3_SET_SH_REG = 0x76


def test_macro_oracle_agrees_with_published_headers():
    # The macro arithmetic must reproduce the published header dwords before it is trusted.
    assert PACKET3(PACKET3_NOP, 0x3FFF) == 0xFFFF1000                  # G1, kernel ring .nop
    assert PACKET3(PACKET3_WAIT_REG_MEM, 5) == 0xC0053C00               # G4
    assert PACKET3(PACKET3_RELEASE_MEM, 6) == 0xC0064900                # G5/G6


@pytest.mark.parametrize("target", ALL)
def test_g1_one_dword_nop(target):
    assert pm4.Nop().encode(target) == [0xFFFF1000]
    p, n = pm4.decode([0xFFFF1000], 0, target)
    assert (p, n) == (pm4.Nop(), 1)


def test_g2_four_dword_nop():
    # G2: header PACKET3(NOP, 4 - 2); the kernel fills the body with 0xFFFF1000.
    expected = words("C0021000 FFFF1000 FFFF1000 FFFF1000")
    assert pm4.Nop.of_size(4, fill=0xFFFF1000).encode() == expected
    assert expected[0] == PACKET3(PACKET3_NOP, 2)
    p, n = pm4.decode(expected, 0, "gfx942")
    assert n == 4 and p.body == (0xFFFF1000,) * 3


def test_g3_write_data():
    expected = words("C0033700 00100500 00001000 00000001 0000CAFE")
    p = pm4.WriteData(addr=0x1_00001000, data=[0xCAFE], dst_sel=5, wr_confirm=1)
    assert p.encode() == expected
    # soc15d.h: WRITE_DATA_DST_SEL(x) ((x) << 8), WR_CONFIRM (1 << 20)
    assert expected[1] == (5 << 8) | (1 << 20)
    assert expected[0] == PACKET3(PACKET3_WRITE_DATA, 3)
    got, n = pm4.decode(expected, 0, "gfx90a")
    assert n == 5 and got == p


@pytest.mark.parametrize("target", ALL)
def test_g4_wait_reg_mem_opcode_0x3c(target):
    expected = words("C0053C00 00000015 00002000 00000001 00000010 FFFFFFFF 00000004")
    p = pm4.WaitRegMem(addr=0x1_00002000, function=pm4.CompareFunction.GE, mem_space=1,
                       reference=0x10, mask=0xFFFFFFFF, poll_interval=4)
    assert p.encode(target) == expected
    # soc15d.h: WAIT_REG_MEM_FUNCTION(x) ((x) << 0), WAIT_REG_MEM_MEM_SPACE(x) ((x) << 4)
    assert expected[1] == 5 | (1 << 4)
    assert (expected[0] >> 8) & 0xFF == 0x3C
    got, n = pm4.decode(expected, 0, target)
    assert n == 7 and got == p
    assert got.function == 5 and got.addr == 0x1_00002000


@pytest.mark.parametrize("target", GFX9)
def test_g5_release_mem_gfx9(target):
    expected = words("C0064900 00238514 42000000 00003000 00000001 55667788 11223344 00000000")
    p = pm4.ReleaseMem(event_type=0x14, event_index=5, tc_wb_action_en=1, tcl1_action_en=1,
                       tc_action_en=1, tc_md_action_en=1, data_sel=2, int_sel=2,
                       addr=0x1_00003000, data=0x1122334455667788)
    assert p.encode(target) == expected
    # soc15d.h: EVENT_TYPE(x) (x), EVENT_INDEX(x) ((x) << 8), EOP_TC_WB_ACTION_EN (1 << 15),
    # EOP_TCL1_ACTION_EN (1 << 16), EOP_TC_ACTION_EN (1 << 17), EOP_TC_MD_ACTION_EN (1 << 21);
    # DATA_SEL(x) ((x) << 29), INT_SEL(x) ((x) << 24).
    assert expected[1] == 0x14 | (5 << 8) | (1 << 15) | (1 << 16) | (1 << 17) | (1 << 21)
    assert expected[2] == (2 << 29) | (2 << 24)
    got, n = pm4.decode(expected, 0, target)
    assert n == 8 and got == p


def test_g6_release_mem_gfx11_gcr():
    expected = words("C0064900 06603514 20000000 00004000 00000001 DEADBEEF 00000000 00000000")
    p = pm4.ReleaseMem(event_type=0x14, event_index=5, gcr_glm_wb=1, gcr_glm_inv=1,
                       gcr_gl2_wb=1, gcr_seq=1, cache_policy=3, data_sel=1,
                       addr=0x1_00004000, data=0xDEADBEEF)
    assert p.encode("gfx1100") == expected
    # nvd.h: PACKET3_RELEASE_MEM_GCR_GLM_WB (1 << 12), GCR_GLM_INV (1 << 13),
    # GCR_GL2_WB (1 << 21), GCR_SEQ (1 << 22), CACHE_POLICY(x) ((x) << 25)
    assert expected[1] == 0x14 | (5 << 8) | (1 << 12) | (1 << 13) | (1 << 21) | (1 << 22) | (3 << 25)
    got, _ = pm4.decode(expected, 0, "gfx1100")
    assert got == p


def test_release_mem_forms_differ_between_families():
    # The gfx9 bit 17 is TC_ACTION_EN; on gfx10+ it is GCR_GL2_RANGE (nvd.h).
    dw = words("C0064900 00020514 00000000 00000000 00000000 00000000 00000000 00000000")
    g9, _ = pm4.decode(dw, 0, "gfx942")
    g11, _ = pm4.decode(dw, 0, "gfx1100")
    assert g9.tc_action_en == 1 and g9.gcr_gl2_range == 0
    assert g11.gcr_gl2_range == 1 and g11.tc_action_en == 0


@pytest.mark.parametrize("target", ALL)
def test_g7_indirect_buffer(target):
    expected = words("C0023F00 00005000 00000001 00800040")
    p = pm4.IndirectBuffer(addr=0x1_00005000, ib_size=0x40, valid=1)
    assert p.encode(target) == expected
    assert expected[3] == 0x40 | (1 << 23)  # IB_SIZE | INDIRECT_BUFFER_VALID (1 << 23)
    got, _ = pm4.decode(expected, 0, target)
    assert got == p and got.chain == 0


def test_indirect_buffer_chain_bit_20():
    # soc15d.h: PACKET3_INDIRECT_BUFFER__CHAIN(x) (((x) & 0x1) << 20)
    got, _ = pm4.decode([PACKET3(PACKET3_INDIRECT_BUFFER, 2), 0x1000, 0, (1 << 23) | (1 << 20) | 8],
                        0, "gfx942")
    assert got.chain == 1 and got.valid == 1 and got.ib_size == 8 and got.addr == 0x1000


@pytest.mark.parametrize("target", ALL)
def test_g8_set_sh_reg_pgm_lo_hi(target):
    expected = words("C0027600 0000020C 12345678 0000007F")
    t = get_target(target)
    p = pm4.SetShReg.of(t, "COMPUTE_PGM_LO", 0x12345678, 0x7F)
    assert p.encode(t) == expected
    # REG_OFFSET = 0x2E0C - PACKET3_SET_SH_REG_START (0x2C00)
    assert expected[1] == 0x2E0C - 0x2C00
    got, _ = pm4.decode(expected, 0, t)
    assert got == p
    assert "COMPUTE_PGM_LO=0x12345678" in got.render(t)
    assert "COMPUTE_PGM_HI=0x7f" in got.render(t)


@pytest.mark.parametrize(("target", "expected"), [
    ("gfx90a", "C0017600 0000022D 00000000"),
    ("gfx942", "C0017600 0000022D 00000000"),
    ("gfx1100", "C0017600 00000228 00000000"),
])
def test_g9_rsrc3_offset_per_family(target, expected):
    # G9: COMPUTE_PGM_RSRC3 is 0x2E2D on gfx9 and 0x2E28 on gfx11 (gc_*_offset.h, kfdtest,
    # Mesa radv); REG_OFFSET = absolute - 0x2C00.
    t = get_target(target)
    p = pm4.SetShReg.of(t, "COMPUTE_PGM_RSRC3", 0)
    assert p.encode(t) == words(expected)
    got, _ = pm4.decode(words(expected), 0, t)
    assert got.render(t).endswith("COMPUTE_PGM_RSRC3=0x0")


def test_g10_dispatch_direct():
    assert pm4.DispatchDirect(dim_x=4, dim_y=2, dim_z=1, initiator=5).encode() == \
        words("C0031500 00000004 00000002 00000001 00000005")
    t = get_target("gfx1100")
    initiator = 1 | (1 << 2) | t.dispatch_initiator_wave32
    assert pm4.DispatchDirect(dim_x=4, dim_y=2, dim_z=1, initiator=initiator).encode(t) == \
        words("C0031500 00000004 00000002 00000001 00008005")
    got, _ = pm4.decode(words("C0031500 00000004 00000002 00000001 00008005"), 0, t)
    assert "CS_W32_EN" in got.render(t)


@pytest.mark.parametrize("target", ALL)
def test_g11_event_write_cs_partial_flush(target):
    expected = words("C0004600 00000407")
    p = pm4.EventWrite(event_type=pm4.EventType.CS_PARTIAL_FLUSH, event_index=4)
    assert p.encode(target) == expected
    got, n = pm4.decode(expected, 0, target)
    assert n == 2 and got == p and got.addr is None


def test_event_write_with_address():
    # EVENT_WRITE with ADDRESS_LO [31:3] / ADDRESS_HI: body 3 dwords (soc15d.h)
    dw = [PACKET3(PACKET3_EVENT_WRITE, 2), 0x2F | (6 << 8), 0x9000, 0x1]
    got, n = pm4.decode(dw, 0, "gfx942")
    assert n == 4 and got.addr == 0x1_00009000 and got.event_type == 0x2F
    assert got.encode("gfx942") == dw


def test_g12_acquire_mem_gfx9():
    expected = words("C0055800 28C00000 FFFFFFFF 00000000 00000000 00000000 00000004")
    p = pm4.AcquireMem(coher_cntl=0x28C00000, coher_size=0xFFFFFFFF, poll_interval=4)
    for target in GFX9:
        assert p.encode(target) == expected
        assert pm4.decode(expected, 0, target)[0] == p
    # soc15d.h CP_COHER_CNTL: SH_ICACHE 29, SH_KCACHE 27, TC 23, TCL1 22
    assert expected[1] == (1 << 29) | (1 << 27) | (1 << 23) | (1 << 22)
    assert expected[0] == PACKET3(PACKET3_ACQUIRE_MEM, 5)


def test_g12_acquire_mem_gfx11():
    expected = words("C0065800 00000000 FFFFFFFF 00000000 00000000 00000000 00000004 00004381")
    p = pm4.AcquireMem(gcr_cntl=0x4381, coher_size=0xFFFFFFFF, poll_interval=4)
    assert p.encode("gfx1100") == expected
    # nvd.h GCR_CNTL: GL2_INV 14, GL1_INV 9, GLV_INV 8, GLK_INV 7, GLI_INV(1) 0
    assert expected[7] == (1 << 14) | (1 << 9) | (1 << 8) | (1 << 7) | 1
    assert expected[0] == PACKET3(PACKET3_ACQUIRE_MEM, 6)
    assert pm4.decode(expected, 0, "gfx1100")[0] == p


def test_extra_copy_data_gpu_clock():
    expected = words("C0044000 00110509 00000000 00000000 00006000 00000001")
    p = pm4.CopyData(src_sel=9, dst_sel=5, count_sel=1, wr_confirm=1, dst_addr=0x1_00006000)
    assert p.encode() == expected
    assert pm4.decode(expected, 0, "gfx90a")[0] == p


def test_extra_atomic_mem_add_rtn_64():
    expected = words("C0071E00 0000002F 00007000 00000001 00000001 00000000 00000000 00000000 "
                     "00000000")
    p = pm4.AtomicMem(atomic=0x2F, addr=0x1_00007000, src_data=1)
    assert p.encode() == expected
    got = pm4.decode(expected, 0, "gfx942")[0]
    assert got == p and "op=ADD_RTN_64" in got.render()


def test_atomic_mem_non_returning_op_needs_7_bits():
    # ATOMIC_MEM ATOMIC is 7 bits (nvd.h mask 0x7F): ADD_64 = 0x6F must survive.
    p = pm4.AtomicMem(atomic=0x6F, addr=0x1000, src_data=2)
    assert p.encode()[1] & 0x7F == 0x6F
    assert pm4.decode(p.encode(), 0, "gfx942")[0].atomic == 0x6F


def test_extra_dma_data_fill():
    expected = words("C0055000 C0000000 A5A5A5A5 00000000 00008000 00000001 00000100")
    p = pm4.DmaData(src_sel=2, cp_sync=1, src_addr=0xA5A5A5A5, dst_addr=0x1_00008000,
                    byte_count=0x100)
    assert p.encode() == expected
    # soc15d.h: PACKET3_DMA_DATA_SRC_SEL(x) ((x) << 29), PACKET3_DMA_DATA_CP_SYNC (1 << 31)
    assert expected[1] == (2 << 29) | (1 << 31)
    assert pm4.decode(expected, 0, "gfx1100")[0] == p


def test_pred_exec():
    # soc15d.h: PRED_EXEC__EXEC_COUNT [13:0], VIRTUAL_XCC_ID_SELECT [31:24]
    dw = [PACKET3(0x23, 0), (0x3 << 24) | 12]
    got, n = pm4.decode(dw, 0, "gfx942")
    assert n == 2 and got.exec_count == 12 and got.virtual_xcc_id_select == 3
    assert got.encode() == dw


def test_type2_filler_and_shader_type_predicate_bits():
    got, n = pm4.decode([0x80000000], 0, "gfx942")
    assert n == 1 and isinstance(got, pm4.Type2) and got.encode() == [0x80000000]
    # PACKET3_COMPUTE adds 1 << 1; the predicate is bit 0 (facts-pm4.md §1.1)
    dw = [PACKET3(PACKET3_WAIT_REG_MEM, 5) | 2 | 1, 0x13, 0x1000, 0, 1, 0xFFFFFFFF, 4]
    got, _ = pm4.decode(dw, 0, "gfx942")
    assert got.shader_type == 1 and got.predicate == 1
    assert got.encode() == dw


@pytest.mark.parametrize(("func", "name"), list(enumerate(["always", "<", "<=", "==", "!=",
                                                           ">=", ">"])))
def test_wait_reg_mem_every_compare_function(func, name):
    # soc15d.h WAIT_REG_MEM_FUNCTION: 0 always, 1 <, 2 <=, 3 ==, 4 !=, 5 >=, 6 >
    dw = [PACKET3(PACKET3_WAIT_REG_MEM, 5), func | (1 << 4), 0x2000, 0, 7, 0xFF, 10]
    got, _ = pm4.decode(dw, 0, "gfx90a")
    assert got.function == func
    assert f'func="{name}"' in got.render() or f"func={name}" in got.render()
    assert pm4.WaitRegMem(addr=0x2000, reference=7, mask=0xFF, poll_interval=10,
                          function=name).encode() == dw


def test_wait_reg_mem_register_space_and_operation():
    # register space: REG_POLL_ADDR [17:0] in body dword 2; wr_wait_wr_reg writes REG_WRITE_ADDR2
    dw = [PACKET3(PACKET3_WAIT_REG_MEM, 5), 3 | (0 << 4) | (1 << 6), 0x1234, 0x5678, 1, 1, 4]
    got, _ = pm4.decode(dw, 0, "gfx942")
    assert got.mem_space == 0 and got.operation == 1
    assert got.addr == 0x5678_00001234
    text = got.render()
    assert "reg=0x1234" in text and "reg2=0x5678" in text and "op=wr_wait_wr_reg" in text


def test_render_example_like_a_ring_dump():
    p = pm4.WaitRegMem(addr=0x7F0000002000, function=">=", reference=0x10, mask=0xFFFFFFFF,
                       poll_interval=4)
    assert p.render("gfx942") == \
        'WAIT_REG_MEM mem addr=0x7f0000002000 func=">=" ref=0x10 mask=0xffffffff poll=4'


@pytest.mark.parametrize(("target", "dw1"), [
    # G5: the kernel's gfx9 fence flush (TCL1 | TC | TC_WB | TC_MD) = 0x00238514;
    # G6: the kernel's gfx11 fence (GLM_WB | GLM_INV | GL2_WB | SEQ, CACHE_POLICY 3) = 0x06603514.
    ("gfx90a", 0x00238514), ("gfx942", 0x00238514), ("gfx1100", 0x06603514),
])
def test_release_mem_fence_helper_uses_the_kernel_flush(target, dw1):
    w = pm4.ReleaseMem.fence(target, 0x1_00003000, 0x1122334455667788, interrupt=True
                             ).encode(target)
    assert w[1] == dw1
    assert w[2] == 0x42000000           # DATA_SEL 2 | INT_SEL 2 (G5 DW2)
    w32 = pm4.ReleaseMem.fence(target, 0x1_00004000, 0xDEADBEEF, bits=32).encode(target)
    assert w32[2] == 0x20000000 and w32[5] == 0xDEADBEEF   # G6 DW2, DATA_LO


@pytest.mark.parametrize(("target", "expected"), [
    ("gfx942", "C0055800 28C00000 FFFFFFFF 00000000 00000000 00000000 00000004"),
    ("gfx1100", "C0065800 00000000 FFFFFFFF 00000000 00000000 00000000 00000004 00004381"),
])
def test_acquire_mem_invalidate_all_is_g12(target, expected):
    assert pm4.AcquireMem.invalidate_all(target).encode(target) == words(expected)


def test_dispatch_direct_for_target_is_g10():
    assert pm4.DispatchDirect.for_target("gfx942", 4, 2, 1).encode() == \
        words("C0031500 00000004 00000002 00000001 00000005")
    assert pm4.DispatchDirect.for_target("gfx1100", 4, 2, 1).encode() == \
        words("C0031500 00000004 00000002 00000001 00008005")
    assert pm4.DispatchDirect.for_target("gfx1100", 4, wave32=False).initiator == 5
