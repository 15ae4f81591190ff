"""Execution of clang-19 -O2 OpenCL kernels on the shader core, compared with numpy references.

Each kernel in tests/shader/kernels/*.cl is compiled for gfx90a, gfx942 (wave64) and gfx1100
(wave32), loaded into a test VM and dispatched through DispatchRegs built from its kernel
descriptor; results are compared with numpy computing the same thing.
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import TARGETS, needs_llvm
from .harness import Device

pytestmark = needs_llvm

rng = np.random.default_rng(1234)


@pytest.fixture(params=TARGETS)
def target(request):
    return request.param


def dev(compiled, stem, target):
    return Device(target, compiled(stem, target))


# ------------------------------------------------------------------------------ element-wise
@pytest.mark.parametrize("n,block", [(1000, 256), (4096, 64), (77, 32)])
def test_saxpy(compiled, target, n, block):
    d = dev(compiled, "elementwise", target)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    xa, ya = d.buf(x), d.buf(y)
    d.launch("saxpy", (n,), (block,), ya, xa, 1.75, n)
    ref = (np.float64(np.float32(1.75)) * x.astype(np.float64) + y).astype(np.float32)   # v_fmac: fused
    np.testing.assert_array_equal(d.read(ya, np.float32, n), ref)


def test_float_math(compiled, target):
    n = 777
    d = dev(compiled, "elementwise", target)
    a = (rng.standard_normal(n) * 10).astype(np.float32)
    b = (rng.standard_normal(n) * 10).astype(np.float32)
    b[:5] = [0.0, -0.0, 1e-30, 3.0, -3.0]
    out = d.buf(nbytes=8 * 4 * n)
    d.launch("fmath", (n,), (128,), out, d.buf(a), d.buf(b), n)
    got = d.read(out, np.float32, 8 * n).reshape(n, 8)
    f32 = np.float32
    f64 = np.float64
    with np.errstate(all="ignore"):
        # OpenCL allows contraction and LLVM fuses a*b+c into one fma: the reference does too
        q = a / (b + f32(3))
        ref = np.stack([
            (a.astype(f64) * b - q).astype(f32),
            (a.astype(f64) * b + 0.25).astype(f32),
            (np.fmin(a, b).astype(f64) * np.fmax(a, b) + np.abs(a)).astype(f32),
            np.sqrt(np.abs(b)),
            np.floor(a) + np.ceil(b) * f32(2) + np.trunc(a * f32(3.5)),
            np.rint(b * f32(10)) - np.copysign(f32(1.5), a),
            np.where(a > b, a - b, b * f32(0.5)),
            (a * f32(100)).astype(np.int32).astype(f32) + (np.abs(b) * f32(1000)).astype(np.uint32).astype(f32),
        ], axis=1).astype(f32)
    np.testing.assert_array_equal(got, ref)


def test_int_math(compiled, target):
    n = 1000
    d = dev(compiled, "elementwise", target)
    a = rng.integers(-2**31, 2**31, n).astype(np.int32)
    b = rng.integers(-2**31, 2**31, n).astype(np.int32)
    b[:50] = rng.integers(-20, 20, 50)
    b[50] = 0
    a[51], b[51] = -2**31, -1
    out = d.buf(nbytes=12 * 4 * n)
    d.launch("imath", (n,), (256,), out, d.buf(a), d.buf(b), n)
    got = d.read(out, np.int32, 12 * n).reshape(n, 12)
    x, y = a.astype(np.int64), b.astype(np.int64)
    ux, uy = a.view(np.uint32).astype(np.int64), b.view(np.uint32).astype(np.int64)
    safe_y = np.where(y == 0, 1, y)
    safe_uy = np.where(uy == 0, 1, uy)
    q = np.where(y != 0, np.trunc(x / safe_y), -1)
    q = np.where((x == -2**31) & (y == -1), -2**31, q)
    r = np.where(y != 0, x - np.trunc(x / safe_y) * safe_y, -2)
    r = np.where((x == -2**31) & (y == -1), 0, r)
    exp = np.zeros((n, 12), dtype=np.int64)
    exp[:, 0] = x + y * 7 - (x >> 3)
    exp[:, 1] = x * y
    exp[:, 2] = q
    exp[:, 3] = r
    exp[:, 4] = np.where(uy != 0, ux // safe_uy, -3)
    exp[:, 5] = np.where(uy != 0, ux % safe_uy, -4)
    exp[:, 6] = (x & y) ^ (x | 0x5A5A) ^ ~y
    exp[:, 7] = (ux >> (uy & 31)) + (x << (y & 15))
    exp[:, 8] = np.minimum(x, y)
    popc = np.array([bin(v).count("1") for v in ux])
    clz = np.array([32 - int(v | 1).bit_length() for v in ux])
    ctz = np.array([((int(v) | 0x80000000) & -(int(v) | 0x80000000)).bit_length() - 1 for v in uy])
    exp[:, 9] = popc + clz * 100 + ctz * 10000
    exp[:, 10] = (x * y) >> 32
    rev = np.array([int(f"{int(v):032b}"[::-1], 2) for v in ux])
    exp[:, 11] = ((ux * uy) >> 32) ^ rev
    np.testing.assert_array_equal(got, exp.astype(np.int64).astype(np.uint64).astype(np.uint32).view(np.int32))


def test_int64_math(compiled, target):
    n = 300
    d = dev(compiled, "elementwise", target)
    a = rng.integers(-2**63, 2**63, n, dtype=np.int64)
    b = rng.integers(-2**63, 2**63, n, dtype=np.int64)
    b[:40] = rng.integers(-1000, 1000, 40)
    b[40] = 0
    out = d.buf(nbytes=6 * 8 * n)
    d.launch("i64math", (n,), (64,), out, d.buf(a), d.buf(b), n)
    got = d.read(out, np.int64, 6 * n).reshape(n, 6)
    exp = np.zeros((n, 6), dtype=np.int64)
    with np.errstate(over="ignore"):
        exp[:, 0] = a + b
        exp[:, 1] = a * b
    for i in range(n):
        x, y = int(a[i]), int(b[i])
        if y:
            qq = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
            exp[i, 2] = qq
            exp[i, 3] = x - qq * y
    exp[:, 4] = (a >> 5) ^ (b << 7) ^ (a.view(np.uint64) >> np.uint64(17)).view(np.int64)
    exp[:, 5] = np.minimum(a, b)
    np.testing.assert_array_equal(got, exp)


def test_double_math(compiled, target):
    n = 200
    d = dev(compiled, "elementwise", target)
    a = rng.standard_normal(n) * 100
    b = rng.standard_normal(n) * 100
    out = d.buf(nbytes=5 * 8 * n)
    d.launch("dmath", (n,), (64,), out, d.buf(a), d.buf(b), n)
    got = d.read(out, np.float64, 5 * n).reshape(n, 5)
    exp = np.stack([a * b + a, a / (np.abs(b) + 1), np.sqrt(np.abs(a)), a * b - 2.5 + np.floor(b),
                    np.trunc(a * 1000) + b.astype(np.float32).astype(np.float64)], axis=1)
    # IEEE results: the f64 division sequence (div_scale / rcp / fma / div_fmas / div_fixup) and
    # sqrt expansion give the correctly rounded value; fma contraction in column 3
    exp[:, 3] = np.array([np.float64(x) * y + (-2.5) for x, y in zip(a, b)]) + np.floor(b)
    np.testing.assert_array_equal(got[:, [1, 2, 4]], exp[:, [1, 2, 4]])
    np.testing.assert_allclose(got, exp, rtol=1e-15, atol=1e-12)


def test_conversions(compiled, target):
    n = 500
    d = dev(compiled, "elementwise", target)
    ins = rng.integers(-2**31, 2**31, n).astype(np.int32)
    fin = (rng.standard_normal(n) * 1e6).astype(np.float32)
    fin[:6] = [0.5, -0.5, 1.5, -2.5, 3e9, -3e9]
    fo, io = d.buf(nbytes=12 * n), d.buf(nbytes=12 * n)
    d.launch("convert", (n,), (64,), fo, io, d.buf(ins), d.buf(fin), n)
    f = d.read(fo, np.float32, 3 * n).reshape(n, 3)
    i = d.read(io, np.int32, 3 * n).reshape(n, 3)
    np.testing.assert_array_equal(f[:, 0], ins.astype(np.float32))
    np.testing.assert_array_equal(f[:, 1], ins.view(np.uint32).astype(np.float32))
    np.testing.assert_array_equal(f[:, 2], ins.astype(np.int64).astype(np.float32) * np.float32(0.5))
    ok = np.abs(fin) < 2**31
    np.testing.assert_array_equal(i[ok, 0], fin[ok].astype(np.int32))
    okl = np.abs(fin * 3) < 2**62
    np.testing.assert_array_equal(i[okl, 2], (fin[okl] * np.float32(3)).astype(np.int64).astype(np.int32))
    oku = np.abs(fin) < 2**32
    np.testing.assert_array_equal(i[oku, 1], np.abs(fin[oku]).astype(np.uint32).view(np.int32))


def test_addr64_and_stride(compiled, target):
    d = dev(compiled, "elementwise", target)
    n, stride = 100, 1000
    base = np.arange(n * stride, dtype=np.int32)
    ba = d.buf(base)
    d.launch("addr64", (n,), (64,), ba, stride, n)
    got = d.read(ba, np.int32, n * stride)
    exp = base.copy()
    exp[::stride] = base[::stride] * 2 + np.arange(n)
    np.testing.assert_array_equal(got, exp)


def test_subdword(compiled, target):
    n = 333
    d = dev(compiled, "elementwise", target)
    cb = rng.integers(-128, 128, n).astype(np.int8)
    us = rng.integers(0, 65536, n).astype(np.uint16)
    b = d.buf(np.full(n + 7, 0xEE, np.uint8))
    s = d.buf(np.full(n + 3, 0x5555, np.int16))
    d.launch("subdword", (n,), (64,), b, s, d.buf(cb), d.buf(us), n)
    gb = d.read(b, np.uint8, n + 7)
    gs = d.read(s, np.int16, n + 3)
    np.testing.assert_array_equal(gb[:n], (cb.astype(np.int32) * 3 + 1).astype(np.uint8))
    np.testing.assert_array_equal(gb[n:], 0xEE)          # neighbours untouched
    np.testing.assert_array_equal(gs[:n], ((us >> 1).astype(np.int16) - cb.astype(np.int16)).astype(np.int16))
    np.testing.assert_array_equal(gs[n:], 0x5555)


# ------------------------------------------------------------------------------ control flow
def test_divergent_branches(compiled, target):
    n = 1000
    d = dev(compiled, "control", target)
    v = rng.integers(-10000, 10000, n).astype(np.int32)
    out = d.buf(nbytes=4 * n)
    d.launch("divergent", (n,), (128,), out, d.buf(v), n)
    vv = v.astype(np.int64)
    exp = np.where(vv & 1, vv * 3 + 1, np.where(vv & 2, np.trunc(vv / 2), -vv))
    np.testing.assert_array_equal(d.read(out, np.int32, n), exp.astype(np.int32))


@pytest.mark.parametrize("mode", [0, 1, 5])
def test_uniform_branch(compiled, target, mode):
    n = 300
    d = dev(compiled, "control", target)
    v = rng.integers(-1000, 1000, n).astype(np.int32)
    out = d.buf(nbytes=4 * n)
    d.launch("uniform_branch", (n,), (64,), out, d.buf(v), mode, n)
    exp = v + 1 if mode == 0 else v * 2 if mode == 1 else v - mode
    np.testing.assert_array_equal(d.read(out, np.int32, n), exp)


def test_data_dependent_loop(compiled, target):
    n = 700
    d = dev(compiled, "control", target)
    cnt = rng.integers(0, 60, n).astype(np.int32)
    cnt[::97] = 200
    out = d.buf(nbytes=4 * n)
    d.launch("loop", (n,), (64,), out, d.buf(cnt), n)
    exp = [sum((k * k) ^ i for k in range(c)) for i, c in enumerate(cnt)]
    np.testing.assert_array_equal(d.read(out, np.int32, n), np.array(exp, dtype=np.int64).astype(np.int32))


def test_collatz(compiled, target):
    n = 256
    d = dev(compiled, "control", target)
    v = rng.integers(1, 100000, n).astype(np.uint32)
    out = d.buf(nbytes=4 * n)
    d.launch("collatz", (n,), (64,), out, d.buf(v), n)

    def steps(x):
        s = 0
        while x != 1 and s < 1000:
            x = 3 * x + 1 if x & 1 else x >> 1
            x &= 0xFFFFFFFF
            s += 1
        return s
    np.testing.assert_array_equal(d.read(out, np.int32, n), [steps(int(x)) for x in v])


@pytest.mark.parametrize("w,h,block", [(100, 37, (16, 8)), (64, 64, (8, 8)), (33, 5, (32, 4))])
def test_grid2d_partial(compiled, target, w, h, block):
    d = dev(compiled, "control", target)
    out = d.buf(np.full(w * h + 16, -1, np.int32))
    d.launch("grid2d", (w, h), block, out, w, h)
    got = d.read(out, np.int32, w * h + 16)
    yy, xx = np.mgrid[0:h, 0:w]
    np.testing.assert_array_equal(got[:w * h].reshape(h, w), xx * 1000 + yy)
    np.testing.assert_array_equal(got[w * h:], -1)


def test_grid3d_partial(compiled, target):
    w, h, dd = 20, 7, 5
    d = dev(compiled, "control", target)
    out = d.buf(np.full(w * h * dd, -1, np.int32))
    d.launch("grid3d", (w, h, dd), (8, 4, 2), out, w, h, dd)
    zz, yy, xx = np.mgrid[0:dd, 0:h, 0:w]
    np.testing.assert_array_equal(d.read(out, np.int32, w * h * dd).reshape(dd, h, w), xx + yy * 100 + zz * 10000)


@pytest.mark.parametrize("grid,block", [((20, 6, 3), (8, 4, 2)), ((130,), (64,)), ((9, 9), (4, 4))])
def test_workitem_and_group_ids(compiled, target, grid, block):
    """Packed work-item ids in v0, workgroup ids in SGPRs, group sizes from the hidden args.

    (clang-19 assumes uniform work-group sizes for OpenCL here, so
    __builtin_amdgcn_workgroup_size_x() compiles to the enqueued size, not the partial one.)
    """
    d = dev(compiled, "control", target)
    grid3 = tuple(grid) + (1,) * (3 - len(grid))
    block3 = tuple(block) + (1,) * (3 - len(block))
    total = int(np.prod(grid3))
    out = d.buf(np.zeros(4 * total, np.int32))
    ng = d.buf(np.array(grid3, np.uint32))
    d.launch("ids", grid, block, out, ng)
    got = d.read(out, np.int32, 4 * total).reshape(grid3[2], grid3[1], grid3[0], 4)
    z, y, x = np.mgrid[0:grid3[2], 0:grid3[1], 0:grid3[0]]
    lx, ly, lz = x % block3[0], y % block3[1], z % block3[2]
    gx, gy, gz = x // block3[0], y // block3[1], z // block3[2]
    sx, sy, sz = block3
    np.testing.assert_array_equal(got[..., 3], 1)
    np.testing.assert_array_equal(got[..., 0], lx | ly << 10 | lz << 20)
    np.testing.assert_array_equal(got[..., 1], gx | gy << 10 | gz << 20)
    np.testing.assert_array_equal(got[..., 2], sx | sy << 10 | sz << 20)


# ------------------------------------------------------------------------------ LDS and barriers
@pytest.mark.parametrize("w,h", [(64, 48), (37, 21)])
def test_lds_transpose(compiled, target, w, h):
    d = dev(compiled, "lds", target)
    a = rng.standard_normal((h, w)).astype(np.float32)
    out = d.buf(nbytes=4 * w * h)
    d.launch("transpose", (-(-w // 16) * 16, -(-h // 16) * 16), (16, 16), out, d.buf(a), w, h)
    np.testing.assert_array_equal(d.read(out, np.float32, w * h).reshape(w, h), a.T)


def test_lds_reduction(compiled, target):
    n = 256 * 13 + 100
    d = dev(compiled, "lds", target)
    a = rng.integers(-1000, 1000, n).astype(np.float32)
    groups = -(-n // 256)
    out = d.buf(nbytes=4 * groups)
    d.launch("reduce", (groups * 256,), (256,), out, d.buf(a), n)
    pad = np.zeros(groups * 256, np.float32)
    pad[:n] = a
    np.testing.assert_array_equal(d.read(out, np.float32, groups), pad.reshape(groups, 256).sum(axis=1))


@pytest.mark.parametrize("block", [64, 128, 512])
def test_lds_reduction_dynamic(compiled, target, block):
    n = block * 7 - 3
    d = dev(compiled, "lds", target)
    a = rng.integers(-1000, 1000, n).astype(np.int32)
    groups = -(-n // block)
    out = d.buf(nbytes=4 * groups)
    d.launch("reduce_dyn", (groups * block,), (block,), out, d.buf(a), 0, n, dynamic_lds=4 * block)
    pad = np.zeros(groups * block, np.int64)
    pad[:n] = a
    np.testing.assert_array_equal(d.read(out, np.int32, groups), pad.reshape(groups, block).sum(axis=1))


def test_lds_atomics_histogram(compiled, target):
    n = 128 * 9 + 50
    d = dev(compiled, "lds", target)
    a = rng.integers(0, 1 << 20, n).astype(np.uint32)
    out = d.buf(np.zeros(16, np.uint32))
    d.launch("local_hist", (-(-n // 128) * 128,), (128,), out, d.buf(a), n)
    np.testing.assert_array_equal(d.read(out, np.uint32, 16), np.bincount(a & 15, minlength=16))


# ------------------------------------------------------------------------------ global atomics
def test_atomic_counter(compiled, target):
    n = 1000
    d = dev(compiled, "atomics", target)
    ctr = d.buf(np.zeros(1, np.int32))
    slots = d.buf(np.full(n, -1, np.int32))
    d.launch("counter", (n,), (256,), ctr, slots, n)
    assert d.read(ctr, np.int32, 1)[0] == n
    np.testing.assert_array_equal(np.sort(d.read(slots, np.int32, n)), np.arange(n))


def test_atomic_counter_divergent(compiled, target):
    n = 500
    d = dev(compiled, "atomics", target)
    v = rng.integers(1, 100, n).astype(np.int32)
    ctr = d.buf(np.zeros(1, np.int32))
    slots = d.buf(np.full(n, -1, np.int32))
    d.launch("counter_divergent", (n,), (64,), ctr, slots, d.buf(v), n)
    even = (v & 1) == 0
    assert d.read(ctr, np.int32, 1)[0] == v[even].sum()
    olds = d.read(slots, np.int32, n)
    # every participating item saw a distinct prefix of the running total
    got = np.sort(olds[even])
    assert len(set(got.tolist())) == even.sum()
    assert (olds[~even] == -1).all()
    assert got[0] == 0


def test_atomic_minmax_logic(compiled, target):
    n = 900
    d = dev(compiled, "atomics", target)
    v = rng.integers(-2**31, 2**31, n).astype(np.int32)
    init = np.array([2**31 - 1, -2**31, 0, 0, -1] + [0] * 8, np.int32)
    res = d.buf(init)
    d.launch("minmax", (n,), (128,), res, d.buf(v), n)
    got = d.read(res, np.int32, 13)
    assert got[0] == v.min() and got[1] == v.max()
    assert got[2] == np.bitwise_or.reduce((np.uint32(1) << (v.view(np.uint32) & 31)).astype(np.uint32)).view(np.int32)
    assert got[3] == np.bitwise_xor.reduce(v)
    andv = 0xFFFFFFFF
    for i in range(n):
        andv &= ~(1 << (i & 31)) & 0xFFFFFFFF
    assert got[4] == np.uint32(andv).view(np.int32)
    sums = [v[(v & 7) == k].astype(np.int64).sum() for k in range(8)]
    np.testing.assert_array_equal(got[5:], np.array(sums, dtype=np.int64).astype(np.int32))


def test_atomic_returning(compiled, target):
    n = 512
    d = dev(compiled, "atomics", target)
    v = rng.integers(0, 1 << 30, n).astype(np.uint32)
    res = d.buf(np.zeros(8, np.uint32))
    out = d.buf(np.zeros(2 * n, np.uint32))
    d.launch("minmax_ret", (n,), (64,), res, out, d.buf(v), n)
    got = d.read(res, np.uint32, 8)
    o = d.read(out, np.uint32, 2 * n).reshape(n, 2)
    for k in range(4):
        sel = (np.arange(n) & 3) == k
        assert got[k] == v[sel].max()
        assert got[4 + k] == (v[sel] & 0xFF).sum()
        # returned adds are exactly the exclusive prefix sums in some order of the lanes:
        # every lane's old + increment is another lane's old or the final sum
        olds, inc = o[sel, 1].astype(np.int64), (v[sel] & 0xFF).astype(np.int64)
        np.testing.assert_array_equal(np.sort(np.append(olds + inc, 0)),
                                      np.sort(np.append(olds, int(got[4 + k]))))
        # returned maxima never exceed the final maximum and start from the initial 0
        assert o[sel, 0].max() <= got[k] and o[sel, 0].min() == 0


def test_atomic_cas_loop(compiled, target):
    n = 200
    d = dev(compiled, "atomics", target)
    v = rng.integers(0, 1000, n).astype(np.int32)
    vals = d.buf(np.zeros(4, np.int32))
    d.launch("cas_lock", (n,), (64,), vals, d.buf(v), n)
    got = d.read(vals, np.int32, 4)
    for k in range(4):
        x = 0
        for _ in range(int(((v & 3) == k).sum())):
            x = (x * 3 + 1) & 0xFFFFFFFF
        assert got[k] == np.uint32(x).view(np.int32)


def test_atomic_exchange(compiled, target):
    n = 256
    d = dev(compiled, "atomics", target)
    v = d.buf(np.full(4, -7, np.int32))
    out = d.buf(np.zeros(n, np.int32))
    d.launch("xchg", (n,), (64,), v, out, n)
    fin = d.read(v, np.int32, 4)
    olds = d.read(out, np.int32, n)
    for k in range(4):
        chain = sorted([*olds[k::4].tolist(), int(fin[k])])
        assert chain == sorted([-7, *range(k, n, 4)])


def test_atomic_64bit(compiled, target):
    n = 300
    d = dev(compiled, "atomics", target)
    v = rng.integers(-2**40, 2**40, n, dtype=np.int64)
    res = d.buf(np.array([0, -2**63, 2**63 - 1], np.int64))
    d.launch("atomic64", (n,), (64,), res, d.buf(v), n)
    np.testing.assert_array_equal(d.read(res, np.int64, 3), [v.sum(), v.max(), v.min()])


# ------------------------------------------------------------------------------ scratch
def test_private_array_in_scratch(compiled, target):
    n = 300
    d = dev(compiled, "private", target)
    idx = rng.integers(0, 1 << 16, max(n, 64)).astype(np.int32)
    out = d.buf(nbytes=4 * n)
    d.launch("priv", (n,), (64,), out, d.buf(idx), n)
    k = np.arange(64)
    exp = []
    for i in range(n):
        arr = (k * i + idx[:64]).astype(np.int64)
        exp.append(arr[idx[i] & 63] + arr[(idx[i] >> 8) & 63])
    np.testing.assert_array_equal(d.read(out, np.int32, n), np.array(exp).astype(np.int32))


def test_private_sort(compiled, target):
    n = 128
    d = dev(compiled, "private", target)
    a = rng.standard_normal(n).astype(np.float32)
    out = d.buf(nbytes=4 * 16 * n)
    d.launch("priv_sort", (n,), (64,), out, d.buf(a), n)
    exp = np.sort(a[(np.arange(n)[:, None] * 16 + np.arange(16)) % n], axis=1)
    np.testing.assert_array_equal(d.read(out, np.float32, 16 * n).reshape(n, 16), exp)


# ------------------------------------------------------------------------------ the driver's VM
@pytest.mark.parametrize("stem,kernel", [("elementwise", "saxpy"), ("lds", "reduce"), ("atomics", "counter"),
                                         ("private", "priv")])
def test_on_the_simulated_drivers_gpuvm(compiled, target, stem, kernel):
    """The same kernels through pytest_amdgpu.sim.memory.GPUVM (bounds, permissions, notify)."""
    from .realvm import RealVM
    vm = RealVM()
    try:
        d = Device(target, compiled(stem, target), vm=vm)
        n = 1000
        if kernel == "saxpy":
            x = rng.standard_normal(n).astype(np.float32)
            y = rng.standard_normal(n).astype(np.float32)
            xa, ya = d.buf(x), d.buf(y)
            d.launch("saxpy", (n,), (256,), ya, xa, 3.0, n)
            np.testing.assert_array_equal(d.read(ya, np.float32, n), (3.0 * x.astype(np.float64) + y).astype(np.float32))
        elif kernel == "reduce":
            a = rng.integers(-100, 100, 1024).astype(np.float32)
            out = d.buf(nbytes=16)
            d.launch("reduce", (1024,), (256,), out, d.buf(a), 1024)
            np.testing.assert_array_equal(d.read(out, np.float32, 4), a.reshape(4, 256).sum(axis=1))
        elif kernel == "counter":
            ctr = d.buf(np.zeros(1, np.int32))
            slots = d.buf(np.full(n, -1, np.int32))
            d.launch("counter", (n,), (128,), ctr, slots, n)
            assert d.read(ctr, np.int32, 1)[0] == n
            np.testing.assert_array_equal(np.sort(d.read(slots, np.int32, n)), np.arange(n))
        else:
            idx = rng.integers(0, 1 << 16, 256).astype(np.int32)
            out = d.buf(nbytes=4 * 256)
            d.launch("priv", (256,), (64,), out, d.buf(idx), 256)
            k = np.arange(64)
            exp = [((k * i + idx[:64])[idx[i] & 63] + (k * i + idx[:64])[(idx[i] >> 8) & 63]) for i in range(256)]
            np.testing.assert_array_equal(d.read(out, np.int32, 256), np.array(exp).astype(np.int32))
        assert vm.write_notifications > 0           # GPU writes told the machine
    finally:
        vm.close()


# ------------------------------------------------------------------------------ math builtins, 16-bit
def test_transcendental_builtins(compiled, target):
    n = 500
    d = dev(compiled, "mathops", target)
    a = (rng.standard_normal(n) * 8).astype(np.float32)
    out = d.buf(nbytes=8 * 4 * n)
    d.launch("transcendental", (n,), (64,), out, d.buf(a), n)
    got = d.read(out, np.float32, 8 * n).reshape(n, 8)
    x = a.astype(np.float64)
    m, e = np.frexp(a)
    exp = np.stack([np.exp(x), np.exp2(x), np.log(np.abs(x) + 0.5), np.log2(np.abs(x) + 0.5),
                    np.ldexp(a, np.arange(n) % 40 - 20), m.astype(np.float64) + e,
                    np.fmod(a, np.float32(1.75)), x / 3 + (x * x - 1)], axis=1)
    # LLVM's inline expansions are accurate to a few ulp (log near 1: in absolute terms)
    np.testing.assert_allclose(got, exp, rtol=4e-6, atol=2e-7)
    np.testing.assert_array_equal(got[:, 4], np.ldexp(a, np.arange(n) % 40 - 20))
    np.testing.assert_array_equal(got[:, 6], np.fmod(a, np.float32(1.75)))


def test_half_precision(compiled, target):
    n = 300
    d = dev(compiled, "mathops", target)
    a = (rng.standard_normal(n) * 4).astype(np.float16)
    b = (rng.standard_normal(n) * 4).astype(np.float16)
    out = d.buf(nbytes=2 * 4 * n)
    d.launch("halfmath", (n,), (64,), out, d.buf(a), d.buf(b), n)
    got = d.read(out, np.float16, 4 * n).reshape(n, 4)
    fma = (a.astype(np.float64) * b - 1.5).astype(np.float16)        # contracted into an fma
    nofma = (a * b - np.float16(1.5)).astype(np.float16)
    np.testing.assert_array_equal(got[:, 0], a + b)
    assert ((got[:, 1] == fma) | (got[:, 1] == nofma)).all()
    np.testing.assert_array_equal(got[:, 2], np.maximum(a, b))
    np.testing.assert_array_equal(got[:, 3], (a.astype(np.float32) * np.float32(0.25)).astype(np.float16))


def test_small_integer_types(compiled, target):
    n = 400
    d = dev(compiled, "mathops", target)
    a = rng.integers(0, 256, n).astype(np.uint8)
    b = rng.integers(-128, 128, n).astype(np.int8)
    c = rng.integers(-32768, 32768, n).astype(np.int16)
    w = rng.integers(0, 65536, n).astype(np.uint16)
    u8, s16 = d.buf(nbytes=4 * n), d.buf(nbytes=8 * n)
    d.launch("smallint", (n,), (64,), u8, s16, d.buf(a), d.buf(b), d.buf(c), d.buf(w), n)
    g8 = d.read(u8, np.uint8, 4 * n).reshape(n, 4)
    g16 = d.read(s16, np.int16, 4 * n).reshape(n, 4)
    A, B, C, Wd = (x.astype(np.int64) for x in (a, b, c, w))
    ub = B & 0xFF
    np.testing.assert_array_equal(g8[:, 0], (A + ub) & 0xFF)
    np.testing.assert_array_equal(g8[:, 1], np.maximum(A, ub))
    np.testing.assert_array_equal(g8[:, 2], ((A * 3) & 0xFF) ^ ((B >> 1) & 0xFF))
    np.testing.assert_array_equal(g8[:, 3], (A & 0xF0) | (ub & 0x0F))
    wrap = lambda v: ((v + 32768) % 65536 - 32768)  # noqa: E731
    np.testing.assert_array_equal(g16[:, 0], wrap(C + Wd))
    np.testing.assert_array_equal(g16[:, 1], wrap(C * B))
    np.testing.assert_array_equal(g16[:, 2], wrap(wrap(Wd >> (A & 7)) - (C >> 3)))
    np.testing.assert_array_equal(g16[:, 3], np.minimum(C, wrap(Wd)))


def test_vector_types(compiled, target):
    n = 256
    d = dev(compiled, "mathops", target)
    a = rng.integers(-2**31, 2**31, (n, 4)).astype(np.int32)
    f = (rng.standard_normal((n, 4)) * 100).astype(np.float32)
    out = d.buf(nbytes=16 * n)
    d.launch("vectors", (n,), (64,), out, d.buf(a), d.buf(f), n)
    got = d.read(out, np.int32, 4 * n).reshape(n, 4)
    x, y, z, w = (a[:, k].astype(np.int64) for k in range(4))
    ux, uy, uw = (a[:, k].view(np.uint32).astype(np.int64) for k in (0, 1, 3))
    r = np.zeros((n, 4), np.int64)
    r[:, 0] = x + y * z - w
    r[:, 1] = (f[:, 0] * f[:, 1]).astype(np.int32) + np.where(x < y, z, w)
    r[:, 2] = ((ux >> 3) | ((uy << 29) & 0xFFFFFFFF)) ^ (f[:, 2] + f[:, 3]).astype(np.int32)
    r[:, 3] = (z & 0xFF00FF) | ((uw >> 24) << 24)
    np.testing.assert_array_equal(got, r[:, ::-1].astype(np.uint64).astype(np.uint32).view(np.int32))


def test_bitfield_patterns(compiled, target):
    n = 512
    d = dev(compiled, "mathops", target)
    a = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    out = d.buf(nbytes=32 * n)
    d.launch("bitfield", (n,), (64,), out, d.buf(a), d.buf(b), n)
    got = d.read(out, np.uint32, 8 * n).reshape(n, 8)
    x, y = a.astype(np.int64), b.astype(np.int64)
    s = y & 31
    M = 0xFFFFFFFF
    exp = np.zeros((n, 8), np.int64)
    exp[:, 0] = ((x << s) | (x >> ((32 - s) & 31))) & M
    exp[:, 1] = (x >> 7) & 0x3FF
    exp[:, 2] = (((x << 5) & M).astype(np.uint32).view(np.int32).astype(np.int64) >> 20) & M
    exp[:, 3] = ((x & 0xFF) << 24) | ((x >> 8 & 0xFF) << 16) | ((x >> 16 & 0xFF) << 8) | (x >> 24)
    exp[:, 4] = np.array([bin(v).count("1") for v in (x ^ y)]) + np.array([32 - int(v | 1).bit_length() for v in y])
    exp[:, 5] = (((x * y) >> 32) + (x * y)) & M
    exp[:, 6] = ((x & 0xFFFFFF) * (y & 0xFFFFFF)) & M
    exp[:, 7] = np.abs(x - y)
    np.testing.assert_array_equal(got, exp.astype(np.uint32))


# ------------------------------------------------------------------------------ cross-lane operations
def _wave_size(target):
    return 32 if target == "gfx1100" else 64


def test_dpp_swizzle_permute_readlane(compiled, target):
    L = _wave_size(target)
    waves = 4
    n = L * waves
    d = dev(compiled, "lanes", target)
    v = rng.integers(-10**6, 10**6, n).astype(np.int32)
    out = d.buf(nbytes=8 * 4 * n)
    d.launch("dpp_ops", (n,), (L,), out, d.buf(v))
    got = d.read(out, np.int32, 8 * n).reshape(waves, L, 8)
    vv = v.reshape(waves, L)
    lane = np.arange(L)
    pos = lane % 16
    row = lane - pos
    exp = np.zeros((waves, L, 8), np.int64)
    exp[..., 0] = vv[:, (lane & ~3) | (3 - (lane & 3))]
    exp[..., 1] = np.where(pos >= 1, vv[:, np.maximum(lane - 1, 0)], -1)
    exp[..., 2] = np.where(pos <= 14, vv[:, np.minimum(lane + 1, L - 1)], 0)
    exp[..., 3] = vv[:, row + 15 - pos]
    exp[..., 4] = vv[:, (lane & ~31) | ((lane & 31) ^ 1)]
    exp[..., 5] = vv[:, (lane + 5) % 32]
    exp[..., 6] = (vv[:, 0] + vv[:, 3])[:, None]
    low = (1 << np.minimum(lane, 32)) - 1
    exp[..., 7] = np.array([bin(0xAAAAAAAA & int(m)).count("1") for m in low]) + np.minimum(lane, 32) + 100
    np.testing.assert_array_equal(got, exp.astype(np.int32))


def test_ballot(compiled, target):
    L = _wave_size(target)
    n = L * 3
    d = dev(compiled, "lanes", target)
    v = rng.integers(-5, 5, n).astype(np.int32)
    out = d.buf(nbytes=8 * n)
    d.launch("ballot_ops", (n,), (L,), out, d.buf(v))
    got = d.read(out, np.uint64, n).reshape(3, L)
    bits = (v.reshape(3, L) > 0).astype(np.uint64) << np.arange(L, dtype=np.uint64)
    np.testing.assert_array_equal(got, np.bitwise_or.reduce(bits, axis=1)[:, None] * np.ones((1, L), np.uint64))
    if L == 32:
        out32 = d.buf(nbytes=4 * n)
        d.launch("ballot32", (n,), (L,), out32, d.buf(v))
        g32 = d.read(out32, np.uint32, n).reshape(3, L)
        np.testing.assert_array_equal(g32[:, 0], np.bitwise_or.reduce(bits, axis=1).astype(np.uint32))


def test_cross_lane_ops_in_divergent_code(compiled, target):
    L = _wave_size(target)
    n = L * 2
    d = dev(compiled, "lanes", target)
    v = rng.integers(0, 1000, n).astype(np.int32)
    out = d.buf(nbytes=4 * n)
    d.launch("divergent_lanes", (n,), (L,), out, d.buf(v))
    got = d.read(out, np.int32, n).reshape(2, L)
    vv = v.reshape(2, L)
    odd = (vv & 1) == 1
    lane = np.arange(L)
    partner = lane ^ 1
    for w in range(2):
        first = vv[w, np.argmax(odd[w])]
        dpp = np.where(odd[w, partner], vv[w, partner], 0)
        np.testing.assert_array_equal(got[w], np.where(odd[w], first + dpp, 0))


# ------------------------------------------------------------------------------ register indexing, spills
@pytest.mark.parametrize("j", [0x123, 0xF0F, 0x000, 0x5A7])
def test_uniform_dynamic_register_index(compiled, target, j):
    n = 128
    d = dev(compiled, "indexing", target)
    a = rng.standard_normal(n + 16).astype(np.float32)
    out = d.buf(nbytes=4 * n)
    d.launch("uniform_index", (n,), (64,), out, j, d.buf(a))
    got = d.read(out, np.float32, n)
    exp = []
    for i in range(n):
        arr = a[i:i + 16].copy()
        arr[j & 15] += np.float32(1)
        exp.append(arr[(j >> 4) & 15] + arr[(j >> 8) & 15])
    np.testing.assert_array_equal(got, np.array(exp, np.float32))


def test_register_pressure_spills(compiled, target):
    n = 200
    d = dev(compiled, "indexing", target)
    a = rng.standard_normal(n).astype(np.float32)
    out = d.buf(nbytes=4 * n)
    d.launch("pressure", (n,), (64,), out, d.buf(a), n)
    got = d.read(out, np.float32, n)
    exp = np.zeros(n, np.float64)
    for i in range(n):
        v = a[(i + 7 * np.arange(40)) % n].astype(np.float32)
        acc = np.float32(0)
        for r in range(3):
            for k in range(40):
                acc = np.float32(np.float64(acc) * 0.5 + np.float64(v[k]) * v[(k + r + 1) % 40])
        exp[i] = acc
    np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ calls
def test_function_calls_and_recursion(compiled, target):
    n = 200
    d = dev(compiled, "calls", target)
    a = rng.integers(0, 1000, n).astype(np.int32)
    out = d.buf(nbytes=4 * n)
    d.launch("call_mix", (n,), (64,), out, d.buf(a), n)

    def fib(k):
        return k if k < 2 else fib(k - 1) + fib(k - 2)

    exp = []
    for i in range(n):
        x, y = int(a[i]), i
        t = [x, y, x ^ y, x + y]
        exp.append(t[(x + y) & 3] * 3 - t[x & 3] + fib(x & 7))
    np.testing.assert_array_equal(d.read(out, np.int32, n), np.array(exp, np.int64).astype(np.int32))


# ------------------------------------------------------------------------------ gfx1100 in wave64
@pytest.fixture(scope="session")
def compiled_w64(build_dir):
    from .harness import KERNELS, CodeObject, compile_cl
    out = build_dir / "w64"
    out.mkdir(exist_ok=True)
    cache = {}

    def get(stem):
        if stem not in cache:
            cache[stem] = CodeObject(compile_cl(KERNELS / f"{stem}.cl", "gfx1100", out, ("-mwavefrontsize64",)))
        return cache[stem]
    return get


def test_gfx1100_wave64_kernels(compiled_w64):
    """Code compiled with -mwavefrontsize64: 64-lane EXEC/VCC on GFX11 (KD wave32 bit clear)."""
    d = Device("gfx1100", compiled_w64("lds"))
    n = 256 * 5 + 17
    a = rng.integers(-1000, 1000, n).astype(np.float32)
    groups = -(-n // 256)
    out = d.buf(nbytes=4 * groups)
    d.launch("reduce", (groups * 256,), (256,), out, d.buf(a), n)
    pad = np.zeros(groups * 256, np.float32)
    pad[:n] = a
    np.testing.assert_array_equal(d.read(out, np.float32, groups), pad.reshape(groups, 256).sum(axis=1))
    d2 = Device("gfx1100", compiled_w64("control"))
    v = rng.integers(-10000, 10000, 1000).astype(np.int32)
    o2 = d2.buf(nbytes=4000)
    d2.launch("divergent", (1000,), (128,), o2, d2.buf(v), 1000)
    vv = v.astype(np.int64)
    np.testing.assert_array_equal(d2.read(o2, np.int32, 1000),
                                  np.where(vv & 1, vv * 3 + 1, np.where(vv & 2, np.trunc(vv / 2), -vv)).astype(np.int32))
    d3 = Device("gfx1100", compiled_w64("atomics"))
    ctr = d3.buf(np.zeros(1, np.int32))
    slots = d3.buf(np.full(700, -1, np.int32))
    d3.launch("counter", (700,), (64,), ctr, slots, 700)
    np.testing.assert_array_equal(np.sort(d3.read(slots, np.int32, 700)), np.arange(700))


# ------------------------------------------------------------------------------ generic pointers
def test_generic_pointers_through_apertures(compiled, target):
    """flat_* accesses whose addresses fall in the LDS and private apertures (src_shared_base /
    src_private_base) reach LDS and the wave's scratch."""
    d = dev(compiled, "generic", target)
    groups = 3
    n = 64 * groups
    g = rng.integers(-100, 100, n).astype(np.float32)
    out = d.buf(nbytes=12 * n)
    d.launch("generic_ptrs", (n,), (64,), out, d.buf(g))
    got = d.read(out, np.float32, 3 * n).reshape(groups, 64, 3)
    gg = g.reshape(groups, 64)
    lane = np.arange(64)
    lds = gg * 2 * 0.5
    for w in range(groups):
        priv = np.array([[k * i for k in range(8)] for i in lane], np.float32)
        priv[lane, lane & 7] *= 3
        base = lane & ~3
        np.testing.assert_array_equal(got[w, :, 0], gg[w, base] + gg[w, base + 1] + gg[w, base + 2] + gg[w, base + 3])
        np.testing.assert_array_equal(got[w, :, 1], lds[w, base] + lds[w, base + 1] + lds[w, base + 2] + lds[w, base + 3])
        st = lane & 1
        np.testing.assert_array_equal(got[w, :, 2], priv[lane, st] + priv[lane, st + 2] + priv[lane, st + 4] + priv[lane, st + 6])


def test_saturating_integer_math(compiled, target):
    n = 300
    d = dev(compiled, "mathops", target)
    edge = np.array([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x7FFF, 0x8000, 0xFFFF], np.uint32)
    a = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    a[:64] = np.repeat(edge, 8)
    b[:64] = np.tile(edge, 8)
    va = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    vb = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    va[:64], vb[:64] = a[:64] * np.uint32(0x10001), b[:64] * np.uint32(0x10001)
    out = d.buf(nbytes=24 * n)
    vout = d.buf(nbytes=8 * n)
    d.launch("satmath", (n,), (64,), d.buf(a), d.buf(b), out, d.buf(va), d.buf(vb), vout, n)
    got = d.read(out, np.uint32, 6 * n).reshape(n, 6)
    A, B = a.astype(np.int64), b.astype(np.int64)
    sA, sB = a.view(np.int32).astype(np.int64), b.view(np.int32).astype(np.int64)
    hA, hB = A & 0xFFFF, B & 0xFFFF
    shA, shB = (a & 0xFFFF).astype(np.uint16).view(np.int16).astype(np.int64), \
        (b & 0xFFFF).astype(np.uint16).view(np.int16).astype(np.int64)
    ref = np.stack([
        np.minimum(A + B, 0xFFFFFFFF), np.maximum(A - B, 0),
        np.clip(sA + sB, -(1 << 31), (1 << 31) - 1) & 0xFFFFFFFF,
        np.clip(sA - sB, -(1 << 31), (1 << 31) - 1) & 0xFFFFFFFF,
        # clang 19 applies the integer promotions to scalar short arguments of the elementwise
        # builtins: these two are plain int operations (LLVM emits no clamp for them)
        hA + hB, (shA - shB) & 0xFFFF], 1)
    np.testing.assert_array_equal(got, ref.astype(np.uint32))
    vgot = d.read(vout, np.uint16, 4 * n).reshape(n, 4).astype(np.int64)
    VA, VB = va.view(np.uint16).reshape(n, 2).astype(np.int64), vb.view(np.uint16).reshape(n, 2).astype(np.int64)
    SA, SB = VA.astype(np.uint16).view(np.int16).astype(np.int64), VB.astype(np.uint16).view(np.int16).astype(np.int64)
    np.testing.assert_array_equal(vgot[:, :2], np.minimum(VA + VB, 0xFFFF))
    np.testing.assert_array_equal(vgot[:, 2:], np.clip(SA - SB, -(1 << 15), (1 << 15) - 1) & 0xFFFF)


def _check_atomic_order(old: np.ndarray, add: np.ndarray, final: float) -> None:
    """The values returned by same-address atomic adds are the partial sums of some order."""
    order = np.lexsort((add, old))
    o, a = old[order], add[order]
    np.testing.assert_array_equal(o[1:], o[:-1] + a[:-1])
    assert o[0] == 0 and o[-1] + a[-1] == final


@pytest.mark.parametrize("target", ["gfx90a", "gfx942"])
def test_packed_half_atomics(compiled, target):
    """global_atomic_pk_add_f16 / _bf16 and ds_pk_add_bf16: each 16-bit half of the dword is an
    independent float add (small integers keep every order of the adds exact)."""
    d = Device(target, compiled("packed_atomics", target))
    n, groups = 256, 2
    v = rng.integers(0, 3, (n * groups, 2)).astype(np.float16)
    bv = rng.integers(0, 3, (n * groups, 2)).astype(np.float32)
    bv_bits = (bv.view(np.uint32) >> 16).astype(np.uint16)          # exact in bf16
    acc = d.buf(np.zeros(8, np.float16))
    old = d.buf(nbytes=4 * n * groups)
    bacc = d.buf(np.zeros(2 * (4 + 4 * groups), np.uint16))
    bold = d.buf(nbytes=4 * n * groups)
    d.launch("pk_add", (n * groups,), (n,), acc, old, d.buf(v), bacc, bold, d.buf(bv_bits), n * groups)
    lane_addr = np.arange(n * groups) % 4
    want = np.array([v[lane_addr == k].astype(np.float64).sum(axis=0) for k in range(4)])
    np.testing.assert_array_equal(d.read(acc, np.float16, 8).reshape(4, 2), want)
    got_old = d.read(old, np.float16, 2 * n * groups).reshape(-1, 2).astype(np.float64)
    for k in range(4):
        for h in range(2):
            _check_atomic_order(got_old[lane_addr == k, h], v[lane_addr == k, h].astype(np.float64), want[k, h])
    if target != "gfx942":
        return
    bf = d.read(bacc, np.uint16, 2 * (4 + 4 * groups)).astype(np.uint32) << 16
    bf = bf.view(np.float32).reshape(-1, 4, 2)
    bwant = np.array([bv[lane_addr == k].sum(axis=0) for k in range(4)])
    np.testing.assert_array_equal(bf[0], bwant)
    for g in range(groups):                                         # ds_pk_add_bf16 per workgroup
        sl = slice(g * n, (g + 1) * n)
        np.testing.assert_array_equal(bf[1 + g], [bv[sl][lane_addr[sl] == k].sum(axis=0) for k in range(4)])
    got_bold = (d.read(bold, np.uint16, 2 * n * groups).astype(np.uint32) << 16).view(np.float32).reshape(-1, 2)
    for k in range(4):
        for h in range(2):
            _check_atomic_order(got_bold[lane_addr == k, h].astype(np.float64), bv[lane_addr == k, h].astype(np.float64),
                                bwant[k, h])


_DPP_CASES = [(0x111, 0xF, 0xF, 0), (0x111, 0xF, 0xF, 1), (0x101, 0xA, 0xF, 0), (0x121, 0xF, 0x5, 1),
              (0x1B, 0xF, 0xF, 0), (0x140, 0xF, 0xF, 0), (0x141, 0xF, 0xF, 1), (0x118, 0xF, 0xF, 1),
              (0x10F, 0x3, 0xF, 0), (0x130, 0xF, 0xF, 0), (0x142, 0xA, 0xF, 0), (0x143, 0xC, 0xF, 1)]


def _dpp_reference(v, old, active, ctrl, row_mask, bank_mask, bound_ctrl):
    """DPP16 per the ISA guides: a lane whose row or bank is masked off keeps `old`; a lane whose
    source lane is out of range or inactive gets 0 with bound_ctrl, else keeps `old`."""
    L = v.size
    out = old.copy()
    for i in np.flatnonzero(active):
        row, pos = divmod(int(i), 16)
        if not (row_mask >> row) & 1 or not (bank_mask >> (pos // 4)) & 1:
            continue
        if ctrl <= 0xFF:
            s = (i & ~3) | ((ctrl >> (2 * (i & 3))) & 3)
        elif 0x101 <= ctrl <= 0x10F:
            s = i + (ctrl & 15) if pos + (ctrl & 15) < 16 else None
        elif 0x111 <= ctrl <= 0x11F:
            s = i - (ctrl & 15) if pos >= (ctrl & 15) else None
        elif 0x121 <= ctrl <= 0x12F:
            s = row * 16 + (pos - (ctrl & 15)) % 16
        elif ctrl == 0x130:
            s = i + 1 if i + 1 < L else None
        elif ctrl == 0x140:
            s = row * 16 + 15 - pos
        elif ctrl == 0x141:
            s = (i & ~7) + 7 - (i & 7)
        elif ctrl == 0x142:
            s = row * 16 - 1 if row else None
        else:                                   # 0x143 row_bcast:31
            s = 31 if i >= 32 else None
        if s is not None and active[s]:
            out[i] = v[s]
        elif bound_ctrl:
            out[i] = 0
    return out


def test_dpp_row_bank_masks_and_bound_ctrl(compiled, target):
    d = dev(compiled, "lanes", target)
    L = 32 if target == "gfx1100" else 64
    n = 256
    a = rng.integers(-1000, 1000, n).astype(np.int32)
    act = (rng.random(n) < 0.7).astype(np.int32)
    act[:L] = 1                                 # one wave fully active
    out = d.buf(np.full(16 * n, 12345, np.int32))
    d.launch("dpp_masks", (n,), (64,), out, d.buf(a), d.buf(act))
    got = d.read(out, np.int32, 16 * n).reshape(n, 16)
    cases = _DPP_CASES if target != "gfx1100" else _DPP_CASES[:9]     # no wave shifts / broadcasts on GFX11
    for w in range(n // L):
        sl = slice(w * L, (w + 1) * L)
        on = act[sl].astype(bool)
        old = -7 - np.arange(w * L, (w + 1) * L)
        for k, case in enumerate(cases):
            ref = _dpp_reference(a[sl].astype(np.int64), old, on, *case)
            np.testing.assert_array_equal(got[sl, k][on], ref[on], err_msg=f"wave {w} dpp_ctrl 0x{case[0]:x} {case[1:]}")
