"""Wave scheduling: batches that split on scalar branches, reconverge and meet at barriers."""

from __future__ import annotations

import numpy as np
import pytest

from .asmkern import asm_kernel, build
from .conftest import TARGETS, needs_llvm
from .harness import Device

pytestmark = needs_llvm
rng = np.random.default_rng(99)


@pytest.fixture(params=TARGETS)
def target(request):
    return request.param


def check_rotate_rounds(d: Device, groups: int, block: int, gen: np.random.Generator) -> None:
    """rotate_rounds (barriers.cl): each group rotates its block by a per-group trip count of
    barrier rounds; the result equals numpy's roll."""
    a = gen.integers(0, 1000, groups * block).astype(np.int32)
    rounds = gen.integers(0, 9, groups).astype(np.int32)
    out = d.buf(nbytes=4 * groups * block)
    d.launch("rotate_rounds", (groups * block,), (block,), out, d.buf(a), d.buf(rounds), dynamic_lds=0)
    got = d.read(out, np.int32, groups * block).reshape(groups, block)
    exp = np.stack([np.roll(a.reshape(groups, block)[g], -int(rounds[g])) for g in range(groups)])
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("block", [64, 256, 100])
def test_barrier_in_loop_with_per_group_trip_count(compiled, target, block):
    check_rotate_rounds(Device(target, compiled("barriers", target)), 7, block, rng)


@pytest.mark.parametrize("block", [256, 128])
def test_waves_take_different_paths_then_meet_at_barrier(compiled, target, block):
    groups = 5
    d = Device(target, compiled("barriers", target))
    a = rng.integers(0, 1000, groups * block).astype(np.int32)
    out = d.buf(nbytes=4 * groups * block)
    d.launch("wave_paths", (groups * block,), (block,), out, d.buf(a))
    got = d.read(out, np.int32, groups * block).reshape(groups, block)
    lane = np.arange(block)
    L = 32 if target == "gfx1100" else 64
    wave = (lane // L * L) // 32           # readfirstlane(lane) / 32: first lane of the hardware wave
    v = a.reshape(groups, block).astype(np.int64)
    res = np.where(wave & 1, 0, v ^ 0x5555)
    for w in np.unique(wave[wave & 1 == 1]):
        x = v[:, wave == w]
        for k in range(w + 3):
            x = (x * 3 + k) & 0xFFFFFFFF
        res[:, wave == w] = x
    res = res.astype(np.uint64).astype(np.uint32).view(np.int32)
    np.testing.assert_array_equal(got, res[:, ::-1])


EARLY_EXIT = {
    # waves 2 and 3 of each 4-wave group end at once; the others meet at a barrier and then read
    # what every surviving wave wrote to LDS (the barrier must not wait for the ended waves)
    "gfx9": """
  s_load_dwordx2 s[4:5], s[0:1], 0x0
  v_lshrrev_b32 v1, 6, v0              // wave index in the group (wave64)
  v_readfirstlane_b32 s6, v1
  s_cmp_ge_u32 s6, 2
  s_cbranch_scc1 .Lend
  v_lshlrev_b32 v2, 2, v1
  v_add_u32 v3, 100, v1
  ds_write_b32 v2, v3
  s_waitcnt lgkmcnt(0)
  s_barrier
  v_mov_b32 v4, 0
  ds_read2_b32 v[4:5], v4 offset1:1
  s_waitcnt lgkmcnt(0)
  v_add_u32 v5, v4, v5
  s_mul_i32 s7, s2, 256
  v_add_u32 v7, s7, v0
  v_lshlrev_b32 v7, 2, v7
  s_waitcnt lgkmcnt(0)
  global_store_dword v7, v5, s[4:5]
.Lend:
  s_endpgm""",
    "gfx11": """
  s_load_b64 s[4:5], s[0:1], 0x0
  v_lshrrev_b32 v1, 5, v0              // wave index in the group (wave32)
  v_readfirstlane_b32 s6, v1
  s_cmp_ge_u32 s6, 2
  s_cbranch_scc1 .Lend
  v_lshlrev_b32 v2, 2, v1
  v_add_nc_u32 v3, 100, v1
  ds_store_b32 v2, v3
  s_waitcnt lgkmcnt(0)
  s_barrier
  v_mov_b32 v4, 0
  ds_load_2addr_b32 v[5:6], v4 offset1:1
  s_waitcnt lgkmcnt(0)
  v_add_nc_u32 v5, v5, v6
  s_mul_i32 s7, s2, 128
  v_add_nc_u32 v7, s7, v0
  v_lshlrev_b32 v7, 2, v7
  s_waitcnt lgkmcnt(0)
  global_store_b32 v7, v5, s[4:5]
.Lend:
  s_endpgm""",
}


def test_barrier_ignores_waves_that_ended(tmp_path, target):
    """s_barrier waits for the group's waves that have not ended (hardware rule)."""
    text = asm_kernel("early", EARLY_EXIT["gfx9"], EARLY_EXIT["gfx11"], vgprs=8, sgprs=16, lds=64)
    co = build(text, target, tmp_path, "early")
    d = Device(target, co)
    L = 32 if target == "gfx1100" else 64
    groups = 3
    block = 4 * L
    out = d.buf(np.full(groups * block, -1, np.int32))
    d.launch("early", (groups * block,), (block,), out)
    got = d.read(out, np.int32, groups * block).reshape(groups, block)
    np.testing.assert_array_equal(got[:, :2 * L], 201)
    np.testing.assert_array_equal(got[:, 2 * L:], -1)


def test_barrier_waits_per_workgroup_when_waves_arrive_far_apart(compiled, target):
    """Waves loop for very different trip counts (thousands of iterations: several scheduler
    turns) before barriers: batches that mix waves of several workgroups arrive at different
    times, and each workgroup must pass each barrier only when all its waves arrived."""
    L = 32 if target == "gfx1100" else 64
    d = Device(target, compiled("barriers", target))
    groups, block = 4, 2 * L
    waves = groups * 2
    trips = np.array([1, 3000, 3000, 6000, 0, 2, 5000, 1, ], np.int32)[:waves]
    out = d.buf(nbytes=4 * groups * block)
    d.launch("staggered", (groups * block,), (block,), out, d.buf(trips), L)
    got = d.read(out, np.int32, groups * block).reshape(groups, block)
    lane = np.arange(block)
    acc = np.array([[sum(k ^ int(lv) for k in range(int(trips[(g * block + lv) // L]))) for lv in lane]
                    for g in range(groups)], dtype=np.int64)
    x = acc[:, ::-1] + lane
    np.testing.assert_array_equal(got, x[:, (lane + 1) % block].astype(np.int32))
