"""Repeated dispatches of one launch: the core keeps a small launch's initial wave state and
reuses the batch of a dispatch that ended, so every later dispatch must still start from the
state the SPI would launch — its own user SGPRs, nothing an earlier wave wrote, zeroed LDS —
and must see code rewritten in between."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pytest_amdgpu.sim.shader import DispatchRegs

from .asmkern import asm_kernel, build
from .conftest import TARGETS, needs_llvm
from .harness import Device, build_dispatch
from .test_scheduler import check_rotate_rounds

pytestmark = needs_llvm


@pytest.fixture(params=TARGETS)
def target(request):
    return request.param


def lanes(target: str) -> int:
    return 32 if target == "gfx1100" else 64


def run(d: Device, regs: DispatchRegs) -> None:
    d.core.run(d.vm, regs, cancel=threading.Event(), clock=lambda: 0)


# out[lane] = the kernarg's second dword + lane; the kernarg pointer (user SGPRs s[0:1]) differs
# per dispatch
ARG = {
    "gfx9": """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  s_load_dword s6, s[0:1], 0x8
  v_lshlrev_b32 v1, 2, v0
  s_waitcnt lgkmcnt(0)
  v_add_u32 v2, s6, v0
  global_store_dword v1, v2, s[4:5]
  s_endpgm""",
    "gfx11": """
  s_load_b64 s[4:5], s[0:1], 0x0
  s_load_b32 s6, s[0:1], 0x8
  v_lshlrev_b32 v1, 2, v0
  s_waitcnt lgkmcnt(0)
  v_add_nc_u32 v2, s6, v0
  global_store_b32 v1, v2, s[4:5]
  s_endpgm""",
}


def test_each_dispatch_sees_its_own_user_sgprs(tmp_path, target):
    """The same launch dispatched with other kernarg pointers (user SGPRs) and back again."""
    co = build(asm_kernel("arg", ARG["gfx9"], ARG["gfx11"]), target, tmp_path, "arg")
    d = Device(target, co)
    L = lanes(target)
    outs = [d.buf(np.full(L, -1, np.int32)) for _ in range(3)]
    launches = [build_dispatch(d.vm, d.loaded, "arg", (L,), (L,), [outs[i], 1000 * (i + 1)], target)
                for i in range(3)]
    assert len({tuple(x.regs.user_data) for x in launches}) == 3
    for rnd in range(3):
        for i in (0, 1, 2, 1, 0, 0):
            d.vm.write(outs[i], np.full(L, -1, np.int32).tobytes())
            run(d, launches[i].regs)
            np.testing.assert_array_equal(d.read(outs[i], np.int32, L), 1000 * (i + 1) + np.arange(L),
                                          err_msg=f"round {rnd}, launch {i}")


def test_user_sgprs_of_a_multi_wave_launch(tmp_path, target):
    """Every wave of every workgroup of a repeated launch gets the dispatch's user SGPRs."""
    co = build(asm_kernel("arg", ARG["gfx9"].replace("v_lshlrev_b32 v1, 2, v0", "s_mul_i32 s7, s2, 4\n"
                                                     "  v_add_u32 v3, s7, v0\n  v_lshlrev_b32 v1, 2, v3")
                          .replace("v_add_u32 v2, s6, v0", "v_add_u32 v2, s6, v3"),
                          ARG["gfx11"].replace("v_lshlrev_b32 v1, 2, v0", "s_mul_i32 s7, s2, 4\n"
                                               "  v_add_nc_u32 v3, s7, v0\n  v_lshlrev_b32 v1, 2, v3")
                          .replace("v_add_nc_u32 v2, s6, v0", "v_add_nc_u32 v2, s6, v3")),
               target, tmp_path, "arg")
    d = Device(target, co)
    n = 16
    for value in (5, 70, 900, 5):
        out = d.buf(np.full(n, -1, np.int32))
        d.launch("arg", (n,), (4,), out, value)
        np.testing.assert_array_equal(d.read(out, np.int32, n), value + np.arange(n))


# stores the registers the ABI leaves zero (v1, v2, s10, SCC, an AGPR on gfx9) and MODE /
# TRAPSTS as the wave starts, then dirties all of them and EXEC: a later dispatch of the same
# launch must store the same initial values again, from every lane
DIRTY9 = """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  s_getreg_b32 s6, hwreg(HW_REG_MODE)
  s_getreg_b32 s8, hwreg(HW_REG_TRAPSTS)
  s_cselect_b32 s7, 1, 0
  v_lshlrev_b32 v5, 2, v0
  v_accvgpr_read_b32 v4, a1
  s_waitcnt lgkmcnt(0)
  global_store_dword v5, v1, s[4:5]
  global_store_dword v5, v2, s[4:5] offset:256
  v_mov_b32 v3, s10
  global_store_dword v5, v3, s[4:5] offset:512
  v_mov_b32 v3, s6
  global_store_dword v5, v3, s[4:5] offset:768
  v_mov_b32 v3, s7
  global_store_dword v5, v3, s[4:5] offset:1024
  v_mov_b32 v3, s8
  global_store_dword v5, v3, s[4:5] offset:1280
  global_store_dword v5, v4, s[4:5] offset:1536
  v_mov_b32 v1, 0x11111111
  v_mov_b32 v2, 0x22222222
  v_accvgpr_write_b32 a1, v2
  s_mov_b32 s10, 0x33333333
  s_setreg_imm32_b32 hwreg(HW_REG_MODE, 0, 4), 0xf
  s_setreg_imm32_b32 hwreg(HW_REG_TRAPSTS, 0, 4), 0x5
  s_cmp_eq_u32 s10, s10
  s_mov_b64 exec, 1
  s_endpgm"""

DIRTY11 = """
  s_load_b64 s[4:5], s[0:1], 0x0
  s_getreg_b32 s6, hwreg(HW_REG_MODE)
  s_getreg_b32 s8, hwreg(HW_REG_TRAPSTS)
  s_cselect_b32 s7, 1, 0
  v_lshlrev_b32 v5, 2, v0
  v_mov_b32 v4, 0
  s_waitcnt lgkmcnt(0)
  global_store_b32 v5, v1, s[4:5]
  global_store_b32 v5, v2, s[4:5] offset:256
  v_mov_b32 v3, s10
  global_store_b32 v5, v3, s[4:5] offset:512
  v_mov_b32 v3, s6
  global_store_b32 v5, v3, s[4:5] offset:768
  v_mov_b32 v3, s7
  global_store_b32 v5, v3, s[4:5] offset:1024
  v_mov_b32 v3, s8
  global_store_b32 v5, v3, s[4:5] offset:1280
  global_store_b32 v5, v4, s[4:5] offset:1536
  v_mov_b32 v1, 0x11111111
  v_mov_b32 v2, 0x22222222
  s_mov_b32 s10, 0x33333333
  s_setreg_imm32_b32 hwreg(HW_REG_MODE, 0, 4), 0xf
  s_setreg_imm32_b32 hwreg(HW_REG_TRAPSTS, 0, 4), 0x5
  s_round_mode 0x3
  s_denorm_mode 0x0
  s_cmp_eq_u32 s10, s10
  s_mov_b32 exec_lo, 1
  s_endpgm"""


@pytest.mark.parametrize("same_regs", [False, True])
def test_registers_a_wave_wrote_do_not_reach_the_next_dispatch(tmp_path, target, same_regs):
    co = build(asm_kernel("dirty", DIRTY9, DIRTY11, vgprs=8, sgprs=16, agprs=4), target, tmp_path, "dirty")
    d = Device(target, co)
    L = lanes(target)
    out = d.buf(nbytes=7 * 256)
    launch = build_dispatch(d.vm, d.loaded, "dirty", (L,), (L,), [out], target)
    got = []
    for _ in range(4):
        d.vm.write(out, np.full(7 * 64, -1, np.int32).tobytes())
        if same_regs:
            run(d, launch.regs)
        else:
            run(d, build_dispatch(d.vm, d.loaded, "dirty", (L,), (L,), [out], target).regs)
        got.append(d.read(out, np.int32, 7 * 64).reshape(7, 64)[:, :L])
    first = got[0]
    for row in (0, 1, 2, 4, 5, 6):          # v1, v2, s10, SCC, TRAPSTS, AGPR a1 (gfx9)
        np.testing.assert_array_equal(first[row], 0, err_msg=f"row {row}")
    assert (first[3] == first[3][0]).all() and (first[3][0] & 0xF) != 0xF     # MODE as RSRC1 set it
    for i, g in enumerate(got[1:], 1):
        np.testing.assert_array_equal(g, first, err_msg=f"dispatch {i}")


LDS9 = """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  ds_read_b32 v2, v1
  s_waitcnt lgkmcnt(0)
  global_store_dword v1, v2, s[4:5]
  v_add_u32 v3, 77, v0
  ds_write_b32 v1, v3
  s_waitcnt lgkmcnt(0)
  s_endpgm"""

LDS11 = """
  s_load_b64 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  ds_load_b32 v2, v1
  s_waitcnt lgkmcnt(0)
  global_store_b32 v1, v2, s[4:5]
  v_add_nc_u32 v3, 77, v0
  ds_store_b32 v1, v3
  s_waitcnt lgkmcnt(0)
  s_endpgm"""


def test_lds_starts_zeroed_in_every_dispatch(tmp_path, target):
    co = build(asm_kernel("lds", LDS9, LDS11, lds=256), target, tmp_path, "lds")
    d = Device(target, co)
    L = lanes(target)
    out = d.buf(nbytes=4 * L)
    launch = build_dispatch(d.vm, d.loaded, "lds", (L,), (L,), [out], target)
    for i in range(4):
        d.vm.write(out, np.full(L, -1, np.int32).tobytes())
        run(d, launch.regs)
        np.testing.assert_array_equal(d.read(out, np.int32, L), 0, err_msg=f"dispatch {i}")


STORE = {
    "gfx9": """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  v_mov_b32 v2, {value:#x}
  s_waitcnt lgkmcnt(0)
  global_store_dword v1, v2, s[4:5]
  s_endpgm""",
    "gfx11": """
  s_load_b64 s[4:5], s[0:1], 0x0
  v_lshlrev_b32 v1, 2, v0
  v_mov_b32 v2, {value:#x}
  s_waitcnt lgkmcnt(0)
  global_store_b32 v1, v2, s[4:5]
  s_endpgm""",
}


def test_code_rewritten_between_dispatches_runs(tmp_path, target):
    """A launch whose code bytes changed since its last dispatch runs the new code."""
    cos = [build(asm_kernel("k", STORE["gfx9"].format(value=v), STORE["gfx11"].format(value=v)), target,
                 tmp_path, f"k{v:x}") for v in (0x12345, 0x54321)]
    assert len(cos[0].image) == len(cos[1].image) and cos[0].image != cos[1].image
    d = Device(target, cos[0])
    L = lanes(target)
    out = d.buf(nbytes=4 * L)
    launch = build_dispatch(d.vm, d.loaded, "k", (L,), (L,), [out], target)
    for co, value in ((cos[0], 0x12345), (cos[0], 0x12345), (cos[1], 0x54321), (cos[1], 0x54321),
                      (cos[0], 0x12345)):
        d.vm.write(d.loaded.base, bytes(co.image))
        run(d, launch.regs)
        np.testing.assert_array_equal(d.read(out, np.int32, L), value)


def test_repeated_launch_with_barriers_and_divergence(compiled, target):
    """A cached launch whose waves split, merge and meet at barriers, dispatched again with
    other data."""
    d = Device(target, compiled("barriers", target))
    rng = np.random.default_rng(7)
    for _ in range(3):
        check_rotate_rounds(d, 3, 128, rng)


def test_sizes_given_as_lists_share_the_launch(tmp_path, target):
    """DispatchRegs with list-valued sizes (not hashable) run like the tuple form."""
    co = build(asm_kernel("arg", ARG["gfx9"], ARG["gfx11"]), target, tmp_path, "arg")
    d = Device(target, co)
    L = lanes(target)
    for value in (3, 4):
        out = d.buf(np.full(L, -1, np.int32))
        regs = build_dispatch(d.vm, d.loaded, "arg", (L,), (L,), [out, value], target).regs
        regs.grid, regs.workgroup, regs.start = list(regs.grid), list(regs.workgroup), [0, 0, 0]
        run(d, regs)
        np.testing.assert_array_equal(d.read(out, np.int32, L), value + np.arange(L))


def test_last_stats_count_the_last_dispatch(tmp_path, target):
    co = build(asm_kernel("arg", ARG["gfx9"], ARG["gfx11"]), target, tmp_path, "arg")
    d = Device(target, co)
    assert d.core.last_stats == {}
    L = lanes(target)
    for _ in range(2):
        d.launch("arg", (L,), (L,), d.buf(nbytes=4 * L), 1)
        assert d.core.last_stats == {"instructions": 7, "lane_instructions": 7 * L}


def test_user_data_wider_than_32_bits_is_truncated_on_a_repeated_launch(tmp_path, target):
    """COMPUTE_USER_DATA registers are 32 bits: extra high bits (or a negative value with the
    same low 32 bits) give the same user SGPRs, first dispatch or repeated."""
    co = build(asm_kernel("arg", ARG["gfx9"], ARG["gfx11"]), target, tmp_path, "arg")
    d = Device(target, co)
    L = lanes(target)
    for i, how in enumerate(("plain", "high bits", "negative", "plain", "high bits")):
        out = d.buf(np.full(L, -1, np.int32))
        regs = build_dispatch(d.vm, d.loaded, "arg", (L,), (L,), [out, 10 * i], target).regs
        lo, hi = regs.user_data[:2]
        if how == "high bits":
            regs.user_data = [lo | (5 << 32), hi | (1 << 40), *regs.user_data[2:]]
        elif how == "negative":
            regs.user_data = [lo - (1 << 32), hi - (1 << 32), *regs.user_data[2:]]
        run(d, regs)
        np.testing.assert_array_equal(d.read(out, np.int32, L), 10 * i + np.arange(L), err_msg=how)
