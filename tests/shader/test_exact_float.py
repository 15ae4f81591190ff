"""Floating-point results IEEE 754 defines exactly, on clang-19 -O2 code (kernels/exact.cl).

Correctly rounded f32 division and square root (LLVM's v_div_scale / v_rcp / fma / v_div_fmas /
v_div_fixup macro and its scaled v_sqrt with neighbour fix-up), f64 division and square root,
and fused multiply-add in f16, f32 and f64 must match the correctly rounded result bit for bit,
including denormal results, overflow, signed zeros and the IEEE special cases. References are
numpy's IEEE division / sqrt and exact rational arithmetic (fractions.Fraction) rounded to the
format by hand, never the simulator's numerics.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from .conftest import TARGETS, needs_llvm
from .harness import Device

pytestmark = needs_llvm

CR_DIV = ("-cl-fp32-correctly-rounded-divide-sqrt",)
rng = np.random.default_rng(20240519)


def random_floats(n: int, dt) -> np.ndarray:
    """Random bit patterns (every exponent, denormals, inf, NaN) with the special values first."""
    ut = {4: np.uint32, 8: np.uint64}[np.dtype(dt).itemsize]
    x = rng.integers(0, np.iinfo(ut).max, n, dtype=ut, endpoint=True).view(dt)
    fi = np.finfo(dt)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 3.0, fi.tiny, fi.tiny / 8,
                        fi.smallest_subnormal, fi.max, -fi.max, 2.0 ** (fi.maxexp - 1)], dtype=dt)
    x[:special.size] = special
    return x


def same_bits(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Equal bit patterns, or both NaN (the NaN payload is not checked)."""
    ut = {2: np.uint16, 4: np.uint32, 8: np.uint64}[got.dtype.itemsize]
    return (got.view(ut) == ref.view(ut)) | (np.isnan(got) & np.isnan(ref))


def describe(mask, *cols) -> str:
    rows = np.flatnonzero(~mask)[:8]
    return "\n".join(" ".join(f"{c[i]!r}" for c in cols) for i in rows)


@np.errstate(all="ignore")
def round_exact(f: Fraction, dt):
    """The exact value `f` rounded to nearest-even in format `dt` (overflow to infinity)."""
    fi = np.finfo(dt)
    top = Fraction(2) ** (fi.maxexp - fi.nmant - 2)          # half an ulp of the largest binade
    if abs(f) >= Fraction(float(fi.max)) + top:
        return dt(np.inf if f > 0 else -np.inf)
    g = dt(float(f))
    if not np.isfinite(g):
        g = dt(fi.max) if f > 0 else dt(-fi.max)
    best = None
    for c in (np.nextafter(g, dt(-np.inf)), g, np.nextafter(g, dt(np.inf))):
        if not np.isfinite(c):
            continue
        key = (abs(Fraction(float(c)) - f), int(np.asarray(c).view({2: np.uint16, 4: np.uint32, 8: np.uint64}[
            np.dtype(dt).itemsize])) & 1)
        if best is None or key < best[0]:
            best = (key, c)
    return best[1]


@np.errstate(all="ignore")
def fma_reference(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    dt = a.dtype.type
    out = np.empty_like(a)
    for i, (x, y, z) in enumerate(zip(a.tolist(), b.tolist(), c.tolist())):
        if not (np.isfinite(x) and np.isfinite(y)):
            out[i] = dt(np.float64(x) * y + z)             # inf * y (+ z), NaN: IEEE as is
        elif not np.isfinite(z):
            out[i] = dt(z)
        else:
            f = Fraction(x) * Fraction(y) + Fraction(z)
            if f == 0:                                      # exact zero: -0 only for (-0) + (-0)
                neg = np.signbit(dt(x)) != np.signbit(dt(y)) and np.signbit(dt(z))
                out[i] = dt(-0.0) if neg else dt(0.0)
            else:
                out[i] = round_exact(f, dt)
    return out


# quotients that underflow to denormals or to zero and that overflow: the macro's scaling cases
_EDGE_QUOTIENTS = {
    np.float32: ([-0.014779782, 6.338936e-23, 1e-40, 3.0e37, 7.4e34, 0.31930083],
                 [2.616867e+38, -9.639602e+15, 1.8622959e-06, 1.0e-3, -1.365108e-31, 3.4e38]),
    np.float64: ([2.1405311442064895e-306, 3.256883461529896e-28, 0.31930083351744065, 1.7976931348623157e308],
                 [-1.3083020359767607e+289, 2.4161169445771054e+280, 8.007791353520046e+307, 1e-300]),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_division_and_sqrt_are_correctly_rounded(compiled, target, dt):
    """f32 with -cl-fp32-correctly-rounded-divide-sqrt, f64 always: a / b and sqrt(a) bit for bit."""
    f32 = dt is np.float32
    d = Device(target, compiled("exact", target, CR_DIV if f32 else ()))
    n = 4096
    a = random_floats(n, dt)
    b = random_floats(n, dt)
    rng.shuffle(b)
    ea, eb = _EDGE_QUOTIENTS[dt]
    a[20:20 + len(ea)] = ea
    b[20:20 + len(eb)] = eb
    out = d.buf(nbytes=2 * n * a.itemsize)
    d.launch("div_sqrt_f32" if f32 else "div_sqrt_f64", (n,), (256,), out, d.buf(a), d.buf(b), n)
    got = d.read(out, dt, 2 * n).reshape(n, 2)
    with np.errstate(all="ignore"):
        q, r = a / b, np.sqrt(a)
    ok = same_bits(got[:, 0], q)
    assert ok.all(), "a / b differs from IEEE:\n" + describe(ok, a, b, got[:, 0], q)
    ok = same_bits(got[:, 1], r)
    assert ok.all(), "sqrt(a) differs from IEEE:\n" + describe(ok, a, got[:, 1], r)


@pytest.mark.parametrize("target", TARGETS)
def test_fused_multiply_add_rounds_once(compiled, target):
    d = Device(target, compiled("exact", target))
    n = 1500
    fa = random_floats(3 * n, np.float32).reshape(n, 3)
    da = random_floats(3 * n, np.float64).reshape(n, 3)
    ha = (rng.standard_normal(3 * n) * 40).astype(np.float16).reshape(n, 3)
    # products exactly halfway between two representable values, tipped by a tiny addend that
    # a double rounding (through f64, or of the product first) loses
    t32 = float(1 + 2.0 ** -12)
    fa[:2] = [[t32, t32, 2.0 ** -80], [t32, t32, -(2.0 ** -80)]]
    t64a, t64b = 1 + 2.0 ** -26, 1 + 2.0 ** -27
    da[:2] = [[t64a, t64b, 2.0 ** -200], [t64a, t64b, -(2.0 ** -200)]]
    # an exact product beyond the f64 range brought back into it by the addend (sqrt(max)**2 - max)
    g = np.sqrt(np.finfo(np.float64).max)
    da[2] = [g, -g, np.finfo(np.float64).max]
    da[3] = [1e200, 1e200, -np.inf]
    f, dd, h = d.buf(nbytes=4 * n), d.buf(nbytes=8 * n), d.buf(nbytes=2 * n)
    d.launch("fma_all", (n,), (64,), f, dd, h, d.buf(fa), d.buf(da), d.buf(ha), n)
    for name, buf, src, dt in (("f32", f, fa, np.float32), ("f64", dd, da, np.float64), ("f16", h, ha, np.float16)):
        got = d.read(buf, dt, n)
        ref = fma_reference(src[:, 0], src[:, 1], src[:, 2])
        ok = same_bits(got, ref)
        assert ok.all(), f"fma {name} differs from the exact result:\n" + describe(
            ok, src[:, 0], src[:, 1], src[:, 2], got, ref)


@pytest.mark.parametrize("dt,span", [(np.float32, 150), (np.float32, 30), (np.float64, 1100), (np.float64, 60)])
def test_fma_numerics_against_exact_rounding(dt, span):
    """The VALU's fma helpers (also used by v_div_fmas with its 2**±64 / 2**±128 post-scale) on
    random operands over the whole exponent range, a quarter of them cancelling a*b almost
    exactly (where double rounding and lost low bits show)."""
    from pytest_amdgpu.sim.shader import numerics as nm
    fma = nm.fma32 if dt is np.float32 else nm.fma64
    n = 3000
    with np.errstate(all="ignore"):
        a, b, c = (np.ldexp(rng.standard_normal(n), rng.integers(-s, s, n)).astype(dt) for s in (span // 2, span // 2, span))
        c[:n // 4] = (-(a[:n // 4].astype(np.float64) * b[:n // 4])).astype(dt)
    ok = same_bits(fma(a, b, c), fma_reference(a, b, c))
    assert ok.all(), describe(ok, a, b, c)
    scale = 64 if dt is np.float32 else 128
    fin = np.flatnonzero(np.isfinite(a) & np.isfinite(b) & np.isfinite(c))[:500]
    a, b, c = a[fin], b[fin], c[fin]
    for k in (scale, -scale):
        ref = np.array([round_exact((Fraction(x) * Fraction(y) + Fraction(z)) * Fraction(2) ** k, dt)
                        for x, y, z in zip(a.tolist(), b.tolist(), c.tolist())], dt)
        ok = same_bits(fma(a, b, c, k), ref)
        assert ok.all(), f"scale 2**{k}:\n" + describe(ok, a, b, c)
