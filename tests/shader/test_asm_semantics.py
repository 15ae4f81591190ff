"""Instructions hand-written code reaches but clang-19 -O2 OpenCL rarely emits: AGPR moves and
AGPR memory operands, v_swap, v_permlane16, clocks, s_sendmsg interrupts, s_getreg."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pytest_amdgpu.targets.table import get_target

from .asmkern import asm_kernel, build
from .conftest import needs_llvm
from .harness import Device, build_dispatch

pytestmark = needs_llvm


@pytest.mark.parametrize("target", ["gfx90a", "gfx942"])
def test_agpr_moves_and_memory(tmp_path, target):
    body = """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  v_add_u32 v2, 1000, v0
  v_accvgpr_write_b32 a3, v2
  v_accvgpr_read_b32 v4, a3
  v_add_u32 v4, 1, v4
  v_accvgpr_write_b32 a4, v4
  s_waitcnt lgkmcnt(0)
  global_store_dword v1, a4, s[4:5]
  global_load_dword a5, v1, s[4:5]
  s_waitcnt vmcnt(0)
  v_accvgpr_mov_b32 a6, a5
  v_accvgpr_read_b32 v6, a6
  v_add_u32 v6, v6, v6
  global_store_dword v1, v6, s[4:5] offset:256
  s_endpgm"""
    co = build(asm_kernel("agpr", body, "  s_endpgm", vgprs=8, agprs=8), target, tmp_path, "agpr")
    d = Device(target, co)
    out = d.buf(np.zeros(128, np.int32))
    d.launch("agpr", (64,), (64,), out)
    got = d.read(out, np.int32, 128)
    np.testing.assert_array_equal(got[:64], 1001 + np.arange(64))
    np.testing.assert_array_equal(got[64:], 2 * (1001 + np.arange(64)))


@pytest.mark.parametrize("target", ["gfx90a", "gfx942"])
def test_agprs_above_the_smallest_accum_offset(tmp_path, target):
    """.amdhsa_accum_offset 4 encodes RSRC3.ACCUM_OFFSET = 0: v0-v3 architected, a0-a3 the
    AGPRs of an 8-register unified allocation (AMDGPUUsage compute_pgm_rsrc3 gfx90a)."""
    body = """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  v_add_u32 v2, 500, v0
  v_accvgpr_write_b32 a3, v2
  v_accvgpr_read_b32 v3, a3
  s_waitcnt lgkmcnt(0)
  global_store_dword v1, v3, s[4:5]
  s_endpgm"""
    co = build(asm_kernel("agpr4", body, "  s_endpgm", vgprs=4, agprs=4), target, tmp_path, "agpr4")
    kd = co.image[co.kernels["agpr4"].kd_offset:][:64]
    assert int.from_bytes(kd[44:48], "little") & 0x3F == 0         # ACCUM_OFFSET field 0 (offset 4)
    d = Device(target, co)
    out = d.buf(np.zeros(64, np.int32))
    d.launch("agpr4", (64,), (64,), out)
    np.testing.assert_array_equal(d.read(out, np.int32, 64), 500 + np.arange(64))


SWAP_PERM = {
    "gfx9": """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 3, v0
  v_add_u32 v2, 10, v0
  v_mov_b32 v3, 77
  v_swap_b32 v2, v3
  s_waitcnt lgkmcnt(0)
  global_store_dwordx2 v1, v[2:3], s[4:5]
  s_endpgm""",
    "gfx11": """
  s_load_b64 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 3, v0
  v_add_nc_u32 v2, 10, v0
  v_mov_b32 v3, 77
  v_swap_b32 v2, v3
  s_mov_b32 s6, 0x01234567
  s_mov_b32 s7, 0x89abcdef
  v_permlane16_b32 v4, v0, s6, s7
  v_permlanex16_b32 v5, v0, s6, s7
  s_waitcnt lgkmcnt(0)
  global_store_b64 v1, v[2:3], s[4:5]
  v_lshlrev_b32 v6, 3, v0
  global_store_b64 v6, v[4:5], s[4:5] offset:512
  s_endpgm""",
}


@pytest.mark.parametrize("target", ["gfx90a", "gfx942", "gfx1100"])
def test_swap_and_permlane(tmp_path, target):
    co = build(asm_kernel("sp", SWAP_PERM["gfx9"], SWAP_PERM["gfx11"], vgprs=8), target, tmp_path, "sp")
    d = Device(target, co)
    L = 32 if target == "gfx1100" else 64
    out = d.buf(np.zeros(256, np.int32))
    d.launch("sp", (L,), (L,), out)
    got = d.read(out, np.int32, 256)
    lane = np.arange(L)
    np.testing.assert_array_equal(got[0:2 * L:2], 77)
    np.testing.assert_array_equal(got[1:2 * L:2], 10 + lane)
    if target == "gfx1100":
        sel = np.array([(0x89ABCDEF01234567 >> (4 * k)) & 15 for k in range(16)])
        perm = (lane // 16) * 16 + sel[lane % 16]
        permx = ((lane // 16) ^ 1) * 16 + sel[lane % 16]
        np.testing.assert_array_equal(got[128:128 + 2 * L:2], perm)
        np.testing.assert_array_equal(got[129:128 + 2 * L:2], permx)


CLOCKS = {
    "gfx9": """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  s_memtime s[6:7]
  s_memrealtime s[8:9]
  s_getreg_b32 s10, hwreg(HW_REG_MODE)
  s_mov_b32 m0, 0x123
  s_sendmsg sendmsg(MSG_INTERRUPT)
  s_waitcnt lgkmcnt(0)
  v_mov_b32 v2, s6
  v_mov_b32 v3, s7
  v_mov_b32 v4, s8
  v_mov_b32 v5, s10
  v_mov_b32 v1, 0
  global_store_dwordx4 v1, v[2:5], s[4:5]
  s_endpgm""",
    "gfx11": """
  s_load_b64 s[4:5], s[0:1], 0x0
  s_sendmsg_rtn_b64 s[6:7], sendmsg(MSG_RTN_GET_REALTIME)
  s_sendmsg_rtn_b64 s[8:9], sendmsg(MSG_RTN_GET_REALTIME)
  s_getreg_b32 s10, hwreg(HW_REG_MODE)
  s_mov_b32 m0, 0x123
  s_sendmsg sendmsg(MSG_INTERRUPT)
  s_waitcnt lgkmcnt(0)
  v_mov_b32 v1, s6
  v_mov_b32 v2, s7
  v_mov_b32 v3, s8
  v_mov_b32 v4, s10
  v_mov_b32 v5, 0
  global_store_b128 v5, v[1:4], s[4:5]
  s_endpgm""",
}


@pytest.mark.parametrize("target", ["gfx90a", "gfx942", "gfx1100"])
def test_clock_mode_and_interrupt(tmp_path, target):
    co = build(asm_kernel("clk", CLOCKS["gfx9"], CLOCKS["gfx11"], vgprs=8), target, tmp_path, "clk")
    d = Device(target, co)
    out = d.buf(np.zeros(4, np.uint32))
    launch = build_dispatch(d.vm, d.loaded, "clk", (64,), (64,), [out], target)
    got_irq = []
    ticks = iter(range(1_000_000_000_000, 1_000_000_001_000))
    d.core.run(d.vm, launch.regs, cancel=threading.Event(), clock=lambda: next(ticks), interrupt=got_irq.append)
    r = d.read(out, np.uint32, 4)
    t = int(r[0]) | int(r[1]) << 32
    assert 1_000_000_000_000 <= t < 1_000_000_001_000
    assert int(r[2]) >= int(r[0]) & 0xFFFFFFFF
    # MODE comes from COMPUTE_PGM_RSRC1: FLOAT_MODE [19:12] -> MODE[7:0], IEEE 23 -> MODE[9]
    rsrc1 = launch.regs.rsrc1
    assert r[3] & 0xFF == (rsrc1 >> 12) & 0xFF
    assert (r[3] >> 9) & 1 == (rsrc1 >> 23) & 1
    waves = 2 if target == "gfx1100" else 1       # 64 work-items: one wave64 or two wave32
    assert got_irq == [0x123] * waves             # one interrupt per wave, context id M0[23:0]


D16 = {
    "gfx9": """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  v_mov_b32 v2, 0x11112222
  v_mov_b32 v3, 0x33334444
  s_waitcnt lgkmcnt(0)
  global_load_short_d16_hi v2, v1, s[4:5]
  global_load_ubyte_d16 v3, v1, s[4:5]
  s_waitcnt vmcnt(0)
  global_store_dword v1, v2, s[4:5] offset:256
  global_store_dword v1, v3, s[4:5] offset:512
  global_store_short_d16_hi v1, v2, s[4:5] offset:768
  s_endpgm""",
    "gfx11": """
  s_load_b64 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  v_mov_b32 v2, 0x11112222
  v_mov_b32 v3, 0x33334444
  s_waitcnt lgkmcnt(0)
  global_load_d16_hi_b16 v2, v1, s[4:5]
  global_load_d16_u8 v3, v1, s[4:5]
  s_waitcnt vmcnt(0)
  global_store_b32 v1, v2, s[4:5] offset:256
  global_store_b32 v1, v3, s[4:5] offset:512
  global_store_d16_hi_b16 v1, v2, s[4:5] offset:768
  s_endpgm""",
}


@pytest.mark.parametrize("target", ["gfx90a", "gfx942", "gfx1100"])
def test_d16_hi_loads_and_stores(tmp_path, target):
    co = build(asm_kernel("d16", D16["gfx9"], D16["gfx11"], vgprs=8), target, tmp_path, "d16")
    d = Device(target, co)
    L = 32 if target == "gfx1100" else 64
    src = (0xA000 + np.arange(256, dtype=np.uint32) * 0x10003) & 0xFFFFFFFF
    out = d.buf(src.astype(np.uint32))
    d.launch("d16", (L,), (L,), out)
    got = d.read(out, np.uint32, 256)
    lo16 = src[:L] & 0xFFFF
    np.testing.assert_array_equal(got[64:64 + L], (lo16 << 16) | 0x2222)
    np.testing.assert_array_equal(got[128:128 + L], 0x33330000 | (src[:L] & 0xFF))
    # store_short_d16_hi writes the high half of v2 (= the loaded low half) to the low 2 bytes
    np.testing.assert_array_equal(got[192:192 + L] & 0xFFFF, lo16)
    np.testing.assert_array_equal(got[192:192 + L] >> 16, src[192:192 + L] >> 16)


DOTS = {
    "gfx9": """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  s_waitcnt lgkmcnt(0)
  global_load_dword v2, v1, s[4:5]
  global_load_dword v3, v1, s[4:5] offset:256
  global_load_dword v4, v1, s[4:5] offset:512
  s_waitcnt vmcnt(0)
  v_cvt_f32_i32 v10, v4
  v_dot2c_f32_f16 v10, v2, v3
  v_mov_b32 v11, v4
  v_dot2c_i32_i16 v11, v2, v3
  v_mov_b32 v12, v4
  v_dot4c_i32_i8 v12, v2, v3
  v_mov_b32 v13, v4
  v_dot8c_i32_i4 v13, v2, v3
  v_mov_b32 v14, v4
  v_pk_fmac_f16 v14, v2, v3
  v_dot4_u32_u8 v15, v2, v3, v4 clamp
  v_dot8_u32_u4 v16, v2, v3, v4
  v_dot4_i32_i8 v17, v2, v3, v4
  global_store_dword v1, v10, s[4:5] offset:768
  global_store_dword v1, v11, s[4:5] offset:1024
  global_store_dword v1, v12, s[4:5] offset:1280
  global_store_dword v1, v13, s[4:5] offset:1536
  global_store_dword v1, v14, s[4:5] offset:1792
  global_store_dword v1, v15, s[4:5] offset:2048
  global_store_dword v1, v16, s[4:5] offset:2304
  global_store_dword v1, v17, s[4:5] offset:2560
  s_endpgm""",
    "gfx11": """
  s_load_b64 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  s_waitcnt lgkmcnt(0)
  global_load_b32 v2, v1, s[4:5]
  global_load_b32 v3, v1, s[4:5] offset:256
  global_load_b32 v4, v1, s[4:5] offset:512
  s_waitcnt vmcnt(0)
  v_cvt_f32_i32 v10, v4
  v_dot2acc_f32_f16 v10, v2, v3
  v_cvt_f32_i32 v11, v4
  v_dual_dot2acc_f32_f16 v11, v2, v3 :: v_dual_mov_b32 v18, v4
  v_dot4_i32_iu8 v12, v2, v3, v4 neg_lo:[1,0,0]
  v_dot8_i32_iu4 v13, v2, v3, v4 neg_lo:[0,1,0]
  v_mov_b32 v14, v4
  v_pk_fmac_f16 v14, v2, v3
  v_dot4_u32_u8 v15, v2, v3, v4 clamp
  v_dot8_u32_u4 v16, v2, v3, v4
  v_dot4_i32_iu8 v17, v2, v3, v4 neg_lo:[1,1,0]
  global_store_b32 v1, v10, s[4:5] offset:768
  global_store_b32 v1, v11, s[4:5] offset:1024
  global_store_b32 v1, v12, s[4:5] offset:1280
  global_store_b32 v1, v13, s[4:5] offset:1536
  global_store_b32 v1, v14, s[4:5] offset:1792
  global_store_b32 v1, v15, s[4:5] offset:2048
  global_store_b32 v1, v16, s[4:5] offset:2304
  global_store_b32 v1, v17, s[4:5] offset:2560
  global_store_b32 v1, v18, s[4:5] offset:2816
  s_endpgm""",
}


def _elems(x, bits, signed):
    x = x.astype(np.int64)
    out = [(x >> (k * bits)) & ((1 << bits) - 1) for k in range(32 // bits)]
    if signed:
        out = [(e ^ (1 << (bits - 1))) - (1 << (bits - 1)) for e in out]
    return out


def _dot(a, b, bits, sa, sb):
    return sum(x * y for x, y in zip(_elems(a, bits, sa), _elems(b, bits, sb)))


@pytest.mark.parametrize("target", ["gfx90a", "gfx942", "gfx1100"])
def test_dot_products(tmp_path, target):
    co = build(asm_kernel("dots", DOTS["gfx9"], DOTS["gfx11"], vgprs=24), target, tmp_path, "dots")
    d = Device(target, co)
    L = 32 if target == "gfx1100" else 64
    g = np.random.default_rng(7)
    h = g.uniform(-4, 4, (2, 64, 2)).astype(np.float16)
    a, b = h[0].view(np.uint32)[:, 0], h[1].view(np.uint32)[:, 0]
    a[:16] = g.integers(0, 1 << 32, 16, dtype=np.uint64).astype(np.uint32)   # integer-ish patterns
    b[:16] = g.integers(0, 1 << 32, 16, dtype=np.uint64).astype(np.uint32)
    a[:16] &= 0x7BFF7BFF
    b[:16] &= 0x7BFF7BFF                                                       # finite halves
    c = g.integers(-1000, 1000, 64).astype(np.int32)
    c[0] = 0x7FFFFFF0
    mem = np.zeros(768, np.uint32)
    mem[:64], mem[64:128], mem[128:192] = a, b, c.view(np.uint32)
    buf = d.buf(mem)
    d.launch("dots", (L,), (L,), buf)
    got = d.read(buf, np.uint32, 768)
    s = slice(0, L)
    a, b, c = a[s], b[s], c[s].astype(np.int64)
    ah, bh = a.view(np.float16).reshape(-1, 2).astype(np.float64), b.view(np.float16).reshape(-1, 2).astype(np.float64)
    f2 = (ah[:, 0] * bh[:, 0] + ah[:, 1] * bh[:, 1] + c.astype(np.float32).astype(np.float64)).astype(np.float32)
    out = {k: got[192 + 64 * k:192 + 64 * k + L] for k in range(10)}
    np.testing.assert_array_equal(out[0].view(np.float32), f2)
    w = lambda x: (x & 0xFFFFFFFF).astype(np.uint32)   # noqa: E731
    if target == "gfx1100":
        np.testing.assert_array_equal(out[1].view(np.float32), f2)
        np.testing.assert_array_equal(out[2], w(_dot(a, b, 8, True, False) + c))
        np.testing.assert_array_equal(out[3], w(_dot(a, b, 4, False, True) + c))
        np.testing.assert_array_equal(out[7], w(_dot(a, b, 8, True, True) + c))
        np.testing.assert_array_equal(out[8], w(c))
    else:
        np.testing.assert_array_equal(out[1], w(_dot(a, b, 16, True, True) + c))
        np.testing.assert_array_equal(out[2], w(_dot(a, b, 8, True, True) + c))
        np.testing.assert_array_equal(out[3], w(_dot(a, b, 4, True, True) + c))
        np.testing.assert_array_equal(out[7], w(_dot(a, b, 8, True, True) + c))
    cu = c & 0xFFFFFFFF
    np.testing.assert_array_equal(out[5], np.minimum(_dot(a, b, 8, False, False) + cu, 0xFFFFFFFF).astype(np.uint32))
    np.testing.assert_array_equal(out[6], w(_dot(a, b, 4, False, False) + cu))
    ch = c.astype(np.uint32).view(np.float16).reshape(-1, 2).astype(np.float64)
    with np.errstate(invalid="ignore"):
        fm = (ah * bh + ch).astype(np.float16)
    ok = ~np.isnan(ch).any(axis=1)            # negative accumulators are NaN halves: skip those
    np.testing.assert_array_equal(out[4][ok], fm.reshape(-1).view(np.uint32)[ok])


SYSTEM_SGPRS = {
    # s[0:1] kernarg pointer (the only user SGPRs), then the system SGPRs in AMDGPUUsage order:
    # workgroup id X, Y, Z, workgroup info, and (absolute flat scratch only) the private segment
    # wavefront offset; v0 the packed work-item ids
    "gfx9": """
  s_load_dwordx2 s[10:11], s[0:1], 0x0
  s_mul_i32 s12, s4, 2
  s_add_u32 s12, s12, s3
  s_mul_i32 s12, s12, 3
  s_add_u32 s12, s12, s2
  s_lshl_b32 s12, s12, 7
  v_and_b32 v1, 0x3ff, v0
  v_bfe_u32 v2, v0, 10, 10
  v_bfe_u32 v3, v0, 20, 10
  v_lshl_add_u32 v4, v2, 4, v1
  v_lshl_add_u32 v4, v3, 6, v4
  v_add_u32 v4, s12, v4
  v_lshlrev_b32 v4, 5, v4
  v_mov_b32 v6, s2
  v_mov_b32 v7, s3
  v_mov_b32 v8, s4
  v_mov_b32 v9, s5
  v_mov_b32 v10, s6
  v_mov_b32 v11, v0
  s_waitcnt lgkmcnt(0)
  global_store_dwordx4 v4, v[6:9], s[10:11]
  global_store_dwordx2 v4, v[10:11], s[10:11] offset:16
  s_endpgm""",
    "gfx11": """
  s_load_b64 s[10:11], s[0:1], 0x0
  s_mul_i32 s12, s4, 2
  s_add_u32 s12, s12, s3
  s_mul_i32 s12, s12, 3
  s_add_u32 s12, s12, s2
  s_lshl_b32 s12, s12, 7
  v_and_b32 v1, 0x3ff, v0
  v_bfe_u32 v2, v0, 10, 10
  v_bfe_u32 v3, v0, 20, 10
  v_lshl_add_u32 v4, v2, 4, v1
  v_lshl_add_u32 v4, v3, 6, v4
  v_add_nc_u32 v4, s12, v4
  v_lshlrev_b32 v4, 5, v4
  v_mov_b32 v6, s2
  v_mov_b32 v7, s3
  v_mov_b32 v8, s4
  v_mov_b32 v9, s5
  v_mov_b32 v10, s6
  v_mov_b32 v11, v0
  s_waitcnt lgkmcnt(0)
  global_store_b128 v4, v[6:9], s[10:11]
  global_store_b64 v4, v[10:11], s[10:11] offset:16
  s_endpgm""",
}


@pytest.mark.parametrize("target", ["gfx90a", "gfx942", "gfx1100"])
def test_initial_system_sgprs_and_workitem_ids(tmp_path, target):
    """Workgroup ids X/Y/Z, the workgroup-info SGPR {first_wave[31], size in waves[5:0]}, the
    private segment wavefront offset (gfx90a; architected flat scratch targets get none) right
    after USER_SGPR_COUNT user SGPRs, and packed work-item ids X[9:0] Y[19:10] Z[29:20] in v0
    (AMDGPUUsage "Initial Kernel Execution State"; facts-sdma-aql-codeobj.md §4.4, §4.5)."""
    t = get_target(target)
    offset_sgpr = not t.architected_flat_scratch
    extra = ("\n  .amdhsa_system_sgpr_workgroup_info 1"
             + ("\n  .amdhsa_system_sgpr_private_segment_wavefront_offset 1" if offset_sgpr
                else "\n  .amdhsa_enable_private_segment 1"))
    text = asm_kernel("sysregs", SYSTEM_SGPRS["gfx9"], SYSTEM_SGPRS["gfx11"], vgprs=12, sgprs=16, wgid=(1, 1, 1),
                      tid=2, private=16, extra=extra)
    co = build(text, target, tmp_path, "sysregs")
    d = Device(target, co)
    L = 32 if target == "gfx1100" else 64
    block, groups = (16, 4, 2), (3, 2, 2)
    n = 128 * 12
    out = d.buf(np.zeros(8 * n, np.uint32))
    launch = build_dispatch(d.vm, d.loaded, "sysregs", tuple(b * g for b, g in zip(block, groups)), block, [out],
                            target)
    assert launch.regs.user_sgpr_count == 2 and launch.regs.scratch_en
    d.core.run(d.vm, launch.regs, cancel=threading.Event(), clock=lambda: 0)
    got = d.read(out, np.uint32, 8 * n).reshape(12, 128, 8)
    waves = 128 // L
    for gz in range(2):
        for gy in range(2):
            for gx in range(3):
                g = got[(gz * 2 + gy) * 3 + gx]
                np.testing.assert_array_equal(g[:, 0:3], np.tile([gx, gy, gz], (128, 1)))
                lin = np.arange(128)
                np.testing.assert_array_equal(g[:, 5], (lin % 16) | (lin // 16 % 4) << 10 | (lin // 64) << 20)
                info = g[:, 3].reshape(waves, L)
                assert (info == info[:, :1]).all()
                np.testing.assert_array_equal(info[:, 0] & 0x3F, waves)
                np.testing.assert_array_equal(info[:, 0] >> 31, [1] + [0] * (waves - 1))
                assert not (info[:, 0] & 0x7FFFFFC0).any()
    if offset_sgpr:
        wave_bytes = launch.regs.scratch_wave_bytes
        offs = got[:, :, 4].reshape(-1, L)
        assert (offs == offs[:, :1]).all()
        offs = offs[:, 0].astype(np.int64)
        assert wave_bytes > 0 and not (offs % wave_bytes).any()
        assert len(set(offs.tolist())) == offs.size        # one scratch slot per resident wave
        assert offs.max() + wave_bytes <= wave_bytes * launch.regs.scratch_waves


FP_MODE = {
    "gfx9": """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  s_setreg_imm32_b32 hwreg(HW_REG_MODE, 0, 8), 0x52
  s_getreg_b32 s10, hwreg(HW_REG_MODE, 0, 8)
  s_setreg_imm32_b32 hwreg(HW_REG_MODE, 4, 2), 3
  s_getreg_b32 s11, hwreg(HW_REG_MODE)
  s_waitcnt lgkmcnt(0)
  v_mov_b32 v2, s10
  v_mov_b32 v3, s11
  v_mov_b32 v1, 0
  global_store_dwordx2 v1, v[2:3], s[4:5]
  s_endpgm""",
    "gfx11": """
  s_load_b64 s[4:5], s[0:1], 0x0
  s_denorm_mode 0x5
  s_round_mode 0x2
  s_getreg_b32 s10, hwreg(HW_REG_MODE, 0, 8)
  s_denorm_mode 0xf
  s_getreg_b32 s11, hwreg(HW_REG_MODE)
  s_waitcnt lgkmcnt(0)
  v_mov_b32 v2, s10
  v_mov_b32 v3, s11
  v_mov_b32 v1, 0
  global_store_b64 v1, v[2:3], s[4:5]
  s_endpgm""",
}


@pytest.mark.parametrize("target", ["gfx90a", "gfx942", "gfx1100"])
def test_float_mode_writes_reach_the_mode_register(tmp_path, target):
    """s_setreg of MODE fields (GFX9) and s_denorm_mode / s_round_mode (GFX11, MODE[7:4] and
    MODE[3:0]) are what s_getreg of MODE then reads."""
    co = build(asm_kernel("fpmode", FP_MODE["gfx9"], FP_MODE["gfx11"], vgprs=4), target, tmp_path, "fpmode")
    d = Device(target, co)
    out = d.buf(np.zeros(2, np.uint32))
    d.launch("fpmode", (32,), (32,), out)
    lo, full = d.read(out, np.uint32, 2)
    assert lo == 0x52
    assert full & 0xFF == (0x72 if target != "gfx1100" else 0xF2)


DPP8 = """
  s_load_b64 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  v_add_nc_u32 v2, 100, v0
  v_mov_b32 v3, -1
  v_mov_b32 v4, -1
  v_mov_b32 v5, -1
  v_mov_b32 v6, 0x3e8
  s_mov_b32 exec_lo, 0x55555555
  v_mov_b32_dpp v3, v2 dpp8:[1,0,3,2,5,4,7,6]
  v_mov_b32_dpp v4, v2 dpp8:[1,0,3,2,5,4,7,6] fi:1
  v_add_nc_u32_e64_dpp v5, v2, v6 dpp8:[1,0,3,2,5,4,7,6] fi:1
  s_mov_b32 exec_lo, -1
  s_waitcnt lgkmcnt(0)
  global_store_b32 v1, v3, s[4:5]
  global_store_b32 v1, v4, s[4:5] offset:128
  global_store_b32 v1, v5, s[4:5] offset:256
  s_endpgm"""


def test_dpp8_fetch_inactive(tmp_path):
    """GFX11 DPP8 (no bound_ctrl): with EXEC = even lanes, each lane reading its odd neighbour
    gets 0 when FI is clear and the neighbour's value with fi:1 (VOP1 and VOP3 encodings);
    inactive lanes are not written."""
    co = build(asm_kernel("dpp8", "  s_endpgm", DPP8, vgprs=8), "gfx1100", tmp_path, "dpp8")
    d = Device("gfx1100", co)
    out = d.buf(np.zeros(96, np.int32))
    d.launch("dpp8", (32,), (32,), out)
    got = d.read(out, np.int32, 96).reshape(3, 32)
    lane = np.arange(32)
    even = lane % 2 == 0
    np.testing.assert_array_equal(got[0], np.where(even, 0, -1))
    np.testing.assert_array_equal(got[1], np.where(even, 100 + (lane ^ 1), -1))
    np.testing.assert_array_equal(got[2], np.where(even, 1100 + (lane ^ 1), -1))
