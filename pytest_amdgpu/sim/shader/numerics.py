"""Numeric helpers for the vector ALU: bit counting, exact fma, float classification.

Everything works on numpy arrays (any shape) and numpy scalars.  Semantics follow the AMD
"Vega"/"CDNA3"/"RDNA3" ISA reference guides' instruction descriptions.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

U8, U16, U32, U64 = np.uint8, np.uint16, np.uint32, np.uint64
I16, I32, I64 = np.int16, np.int32, np.int64
F16, F32, F64 = np.float16, np.float32, np.float64

_REV8 = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], dtype=U8)


def popcount(x):
    return np.bitwise_count(x).astype(U32)


def bitrev32(x):
    x = np.asarray(x, dtype=U32)
    b = x.view(U8).reshape(*x.shape, 4) if x.ndim else x.reshape(1).view(U8).reshape(1, 4)
    r = _REV8[b[..., ::-1]]
    out = np.ascontiguousarray(r).view(U32).reshape(x.shape)
    return out


def bitrev64(x):
    x = np.asarray(x, dtype=U64)
    lo = (x & U64(0xFFFFFFFF)).astype(U32)
    hi = (x >> U64(32)).astype(U32)
    return (bitrev32(lo).astype(U64) << U64(32)) | bitrev32(hi).astype(U64)


def _msb_index(x):
    """Index of the highest set bit of unsigned x (x > 0); arbitrary for 0."""
    xf = np.asarray(x).astype(F64)
    _, e = np.frexp(xf)
    return (e - 1).astype(I64)


def msb_index64(x):
    x = np.asarray(x, dtype=U64)
    hi = (x >> U64(32)).astype(U32)
    lo = (x & U64(0xFFFFFFFF)).astype(U32)
    return np.where(hi != 0, _msb_index(hi) + 32, _msb_index(lo))


def clz32(x):
    """Leading zeros; 0xFFFFFFFF when x == 0 (v_ffbh_u32 / v_clz_i32_u32 / s_flbit_i32_b32)."""
    x = np.asarray(x, dtype=U32)
    r = (31 - _msb_index(x)).astype(I64)
    return np.where(x == 0, 0xFFFFFFFF, r).astype(U32)


def ctz32(x):
    """Trailing zeros; 0xFFFFFFFF when x == 0 (v_ffbl_b32 / v_ctz_i32_b32 / s_ff1_i32_b32)."""
    x = np.asarray(x, dtype=U32)
    low = x & (~x + U32(1))
    r = _msb_index(low)
    return np.where(x == 0, 0xFFFFFFFF, r).astype(U32)


def clz64(x):
    x = np.asarray(x, dtype=U64)
    return np.where(x == 0, 0xFFFFFFFF, 63 - msb_index64(x)).astype(U32)


def ctz64(x):
    x = np.asarray(x, dtype=U64)
    low = x & (~x + U64(1))
    return np.where(x == 0, 0xFFFFFFFF, msb_index64(low)).astype(U32)


def cls32(x):
    """v_ffbh_i32 / v_cls_i32: first bit differing from the sign bit, counted from the MSB."""
    x = np.asarray(x, dtype=U32)
    y = np.where((x >> U32(31)) != 0, ~x, x).astype(U32)
    return np.where(y == 0, 0xFFFFFFFF, 31 - _msb_index(y)).astype(U32)


def cls64(x):
    x = np.asarray(x, dtype=U64)
    y = np.where((x >> U64(63)) != 0, ~x, x).astype(U64)
    return np.where(y == 0, 0xFFFFFFFF, 63 - msb_index64(y)).astype(U32)


# -- exact fused multiply-add ------------------------------------------------------------------
# The VALU's fma rounds once.  f32 and f16 products are exact in f64; the f64 sum is rounded
# to odd (truncate, then set the last bit if anything was lost) and the single rounding to the
# narrow format is then exact (round-to-odd with p + 2 bits, Boldo & Melquiond).  f64 uses
# error-free transformations and falls back to exact rational arithmetic for the few lanes
# where they cannot decide the rounding (ties, over/underflow, denormal results).

def _two_sum(a, b):
    """s = fl(a + b) and the exact error a + b - s (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _round_odd(s, err):
    """The f64 x = s + err (s = RN(x), err exact) rounded to odd; s itself where not finite."""
    bits = s.view(U64)
    sign = bits & U64(1 << 63)
    mag = bits & ~U64(1 << 63)
    inexact = (err != 0) & np.isfinite(s)
    # s was rounded away from zero when the error points back toward zero: truncate first
    away = inexact & (np.signbit(err) != np.signbit(s))
    mag = np.where(away, mag - U64(1), mag)
    mag = np.where(inexact, mag | U64(1), mag)
    return (mag | sign).view(F64)


def _lanes(x: np.ndarray, shape: tuple, pos: np.ndarray) -> np.ndarray:
    """Elements `pos` (flat indices into `shape`) of `x` broadcast to `shape`."""
    if x.shape == shape:
        return x.reshape(-1)[pos]
    return np.broadcast_to(x, shape).reshape(-1)[pos] if shape else np.broadcast_to(x, ())[()]


def _fma_narrow(a, b, c, dt, scale: int = 0):
    """fma for f32 / f16 operands: one rounding of a * b + c (times 2**scale) to `dt`."""
    a64, b64, c64 = (np.asarray(x, dtype=F64) for x in (a, b, c))
    with np.errstate(all="ignore"):
        if scale:
            s, err = _two_sum(a64 * b64, c64)
            return np.ldexp(_round_odd(s, err), scale).astype(dt)
        prod = a64 * b64                      # exact (24 x 24 bits)
        s = prod + c64
        out = s.astype(dt)
        if dt is F16:
            return out                       # f16 operands: the f64 sum is exact (<= 41 bits)
        # rounding the f64 sum s to f32 can differ from rounding the exact sum only where s sits
        # exactly halfway between two f32 values (low 29 mantissa bits: 1 then zeros) or the
        # result is an f32 denormal (fewer bits); those lanes, if s is inexact there, are redone
        # with the exact error, rounded to odd in f64 first
        flat = s.reshape(-1)
        out_flat = out.reshape(-1)
        suspect = (flat.view(U32)[::2] & U32(0x1FFFFFFF)) == U32(0x10000000)    # low dword of s
        suspect |= (out_flat.view(U32) & U32(0x7F800000)) == 0
        if not suspect.any():
            return out
        pos = np.flatnonzero(suspect)
        ss = flat[pos]
        ps = _lanes(prod, s.shape, pos)        # operands may be scalars broadcast over lanes
        cs = _lanes(c64, s.shape, pos)
        bb = ss - ps
        err = (ps - (ss - bb)) + (cs - bb)                # two-sum error of ps + cs
        inexact = err != 0
        if not inexact.any():
            return out
        out_flat[pos[inexact]] = _round_odd(ss[inexact], err[inexact]).astype(dt)
        return out_flat.reshape(np.shape(s))              # (numpy scalars reshape to a copy)


def fma32(a, b, c, scale: int = 0):
    """f32 fma (V_FMA_F32, V_FMAC_F32, …): a * b + c rounded once; times 2**scale if given."""
    return _fma_narrow(a, b, c, F32, scale)


def fma16(a, b, c, scale: int = 0):
    return _fma_narrow(a, b, c, F16, scale)


_SPLIT = F64(134217729.0)  # 2**27 + 1 (Dekker split)


def _two_prod(a, b):
    """p = fl(a * b) and the exact error (Dekker; needs |a|, |b| < 2**995 and no underflow)."""
    p = a * b
    ca = _SPLIT * a
    ah = ca - (ca - a)
    al = a - ah
    cb = _SPLIT * b
    bh = cb - (cb - b)
    bl = b - bh
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, err


def _fma64_exact(a: float, b: float, c: float, scale: int) -> float:
    """One lane of fma64 in exact rational arithmetic (IEEE special cases first)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.ldexp(a * b + c, scale)
    if not math.isfinite(c):
        return c
    x = Fraction(a) * Fraction(b) + Fraction(c)
    if x == 0:
        neg = (math.copysign(1.0, a) * math.copysign(1.0, b) < 0) and math.copysign(1.0, c) < 0
        return -0.0 if neg else 0.0
    x *= Fraction(2) ** scale
    try:
        return x.numerator / x.denominator           # int / int rounds correctly in CPython
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def fma64(a, b, c, scale: int = 0):
    """f64 fma (V_FMA_F64, V_FMAC_F64): a * b + c rounded once; times 2**scale if given."""
    a, b, c = np.broadcast_arrays(*(np.asarray(x, F64) for x in (a, b, c)))
    with np.errstate(all="ignore"):
        p, pe = _two_prod(a, b)
        s, t = _two_sum(p, c)
        u, v = _two_sum(t, pe)
        r0, w = _two_sum(s, u)                     # a * b + c == r0 + w + v exactly, r0 = RN(s + u)
        r = np.ldexp(r0, scale) if scale else r0
        ar = np.abs(r)
        big, tiny = F64(2.0 ** 995), F64(2.0 ** -960)
        hard = (~np.isfinite(r) | ~np.isfinite(pe) | ~np.isfinite(u)
                | (np.maximum(np.abs(a), np.abs(b)) >= big) | (np.abs(p) >= big) | (np.abs(c) >= big)
                | (ar >= big) | ((p != 0) & (np.abs(p) < tiny)) | ((r != 0) & (ar < tiny)))
        # RN(r0 + w + v) differs from r0 only near a rounding boundary: w within |v| of half an
        # ulp, or r0 a power of two (the ulp below it is half as wide)
        near_tie = np.abs(w) + np.abs(v) >= F64(0.4995) * np.spacing(np.abs(r0))
        pow2 = (r0.view(U64) & U64((1 << 52) - 1)) == 0
        hard |= (w != 0) & (near_tie | pow2)
    if not hard.any():
        return r
    out = r.copy()
    for i in zip(*np.nonzero(hard)):
        out[i] = _fma64_exact(float(a[i]), float(b[i]), float(c[i]), scale)
    return out


# -- classification ------------------------------------------------------------------------

def fclass(x, mask):
    """v_cmp_class: bit 0 sNaN, 1 qNaN, 2 -inf, 3 -normal, 4 -denormal, 5 -0, 6 +0, 7 +denormal,
    8 +normal, 9 +inf."""
    x = np.asarray(x)
    mask = np.asarray(mask).astype(np.int64)
    if x.dtype == F64:
        bits = x.view(U64)
        quiet = (bits >> U64(51)) & U64(1)
        tiny = np.finfo(F64).tiny
    elif x.dtype == F16:
        bits = x.view(U16)
        quiet = (bits >> U16(9)) & U16(1)
        tiny = np.finfo(F16).tiny
    else:
        bits = x.view(U32)
        quiet = (bits >> U32(22)) & U32(1)
        tiny = np.finfo(F32).tiny
    nan = np.isnan(x)
    neg = np.signbit(x)
    inf = np.isinf(x)
    zero = x == 0
    ax = np.abs(x)
    den = (ax < tiny) & ~zero & ~nan
    norm = ~nan & ~inf & ~zero & ~den
    cls = np.where(nan, np.where(quiet != 0, 1, 0),
          np.where(inf, np.where(neg, 2, 9),
          np.where(zero, np.where(neg, 5, 6),
          np.where(den, np.where(neg, 4, 7),
          np.where(norm & neg, 3, 8)))))
    return ((mask >> cls) & 1).astype(bool)


def f16_rtz(x):
    """f32 -> f16 rounding toward zero (v_cvt_pkrtz_f16_f32)."""
    x = np.asarray(x, F32)
    with np.errstate(all="ignore"):
        h = x.astype(F16)
        hb = h.view(U16).astype(np.int32)
        back = h.astype(F32)
        fin = np.isfinite(x)
        over = fin & (np.abs(back) > np.abs(x))
        hb = np.where(over, hb - 1, hb)
    return hb.astype(U16)


def _cvt_saturate(x, dt):
    """Float -> integer type `dt`: truncate, saturate to its range, NaN -> 0 (V_CVT_*_F*)."""
    info = np.iinfo(dt)
    with np.errstate(all="ignore"):
        xf = np.asarray(x).astype(F64)
        r = np.where(np.isnan(xf), 0, np.clip(np.trunc(xf), float(info.min), float(info.max)))
        return r.astype(I64).astype(dt)


def cvt_f_to_i32(x):
    return _cvt_saturate(x, I32)


def cvt_f_to_u32(x):
    return _cvt_saturate(x, U32)


def cvt_f_to_i16(x):
    return _cvt_saturate(x, I16)


def cvt_f_to_u16(x):
    return _cvt_saturate(x, U16)


def frexp_mant(x):
    x = np.asarray(x)
    with np.errstate(all="ignore"):
        m, _ = np.frexp(x)
        return np.where(np.isfinite(x), m, x).astype(x.dtype)


def frexp_exp(x):
    x = np.asarray(x)
    with np.errstate(all="ignore"):
        _, e = np.frexp(x)
        return np.where(np.isfinite(x), e, 0).astype(I32)


def ldexp(x, n):
    x = np.asarray(x)
    n = np.clip(np.asarray(n).astype(np.int64), -10000, 10000).astype(np.int32)
    with np.errstate(all="ignore"):
        return np.ldexp(x, n).astype(x.dtype)


def exponent32(x):
    return ((np.asarray(x, F32).view(U32) >> U32(23)) & U32(0xFF)).astype(np.int64)


def exponent64(x):
    return ((np.asarray(x, F64).view(U64) >> U64(52)) & U64(0x7FF)).astype(np.int64)


def div_scale(s0, s1, s2, fp64: bool):
    """V_DIV_SCALE_F32/F64: (scaled S0, VCC). S1 denominator, S2 numerator; the checks are
    made on values of the operation's own precision (RDNA3 / CDNA3 ISA pseudocode)."""
    ft = F64 if fp64 else F32
    s0, s1, s2 = np.broadcast_arrays(*(np.asarray(a, ft) for a in (s0, s1, s2)))
    if fp64:
        e1, e2 = exponent64(s1), exponent64(s2)
        scale, big, mant = 128, 768, 53
    else:
        e1, e2 = exponent32(s1), exponent32(s2)
        scale, big, mant = 64, 96, 23
    tiny = np.finfo(ft).tiny

    def denorm(x):
        return (np.abs(x) < tiny) & (x != 0)

    with np.errstate(all="ignore"):
        up = ldexp(s0, scale)
        q_den = denorm(s2 / s1)                              # S2 / S1 in S's precision
        r_den = denorm((F64(1.0) / s1.astype(F64)).astype(ft))
        d = s0.copy()
        vcc = np.zeros(s0.shape, dtype=bool)
        # the pseudocode's if / elif chain, applied from the last case to the first
        d = np.where(e2 <= mant, up, d)
        d = np.where(q_den, np.where(s0 == s2, up, s0), d)
        vcc = np.where(q_den, True, vcc)
        d = np.where(r_den, ldexp(s0, -scale), d)
        vcc = np.where(r_den, False, vcc)
        # 1 / S1 and S2 / S1 both denormal: the guides print ldexp(S0, +scale) for the
        # denominator here, which overflows it (|S1| > 2**126); scaling it down like the
        # "1 / S1 denormal" case and post-scaling the quotient is what makes the macro give
        # the correctly rounded quotient the hardware is specified to deliver
        c = r_den & q_den
        d = np.where(c, np.where(s0 == s1, ldexp(s0, -scale), s0), d)
        vcc = np.where(c, True, vcc)
        c = denorm(s1)
        d = np.where(c, up, d)
        vcc = np.where(c, False, vcc)
        c = (e2 - e1) >= big
        d = np.where(c, np.where(s0 == s1, up, s0), d)
        vcc = np.where(c, True, vcc)
        c = (s1 == 0) | (s2 == 0)
        d = np.where(c, ft(np.nan), d)
        vcc = np.where(c, False, vcc)
    return d.astype(ft), vcc


def div_fmas(s0, s1, s2, vcc, fp64: bool):
    """V_DIV_FMAS: fma, and where VCC is set the scaling V_DIV_SCALE applied is undone in the
    same single rounding (2**±64 for f32, 2**±128 for f64; up when the quotient S2 >= 2)."""
    fma, expo, bias, k = (fma64, exponent64, 1023, 128) if fp64 else (fma32, exponent32, 127, 64)
    plain = fma(s0, s1, s2)
    vcc = np.asarray(vcc, dtype=bool)
    if not vcc.any():
        return plain
    big = expo(s2) > bias
    return np.where(vcc, np.where(big, fma(s0, s1, s2, k), fma(s0, s1, s2, -k)), plain).astype(plain.dtype)


_QNAN_NEG = {F16: 0xFE00, F32: 0xFFC00000, F64: 0xFFF8000000000000}
_UINT = {F16: U16, F32: U32, F64: U64}


def div_fixup(s0, s1, s2, dt):
    """V_DIV_FIXUP: S0 quotient, S1 denominator, S2 numerator; the special cases of S2 / S1
    (ISA pseudocode): NaN inputs quieted, 0/0 and inf/inf the negative quiet NaN, x/0 and
    inf/y infinity, x/inf and 0/y zero, a quotient below half the smallest denormal zero, an
    overflowed quotient (S0 inf or NaN: the guides' "exponent == 255 -> OVERFLOW" case, which
    they print against S1 where it can never hold) infinity, else |S0| with the quotient's sign.
    The division macro LLVM emits relies on that last rule: its Newton steps turn an
    overflowing quotient into NaN."""
    s0, s1, s2 = np.broadcast_arrays(*(np.asarray(a, dt) for a in (s0, s1, s2)))
    ut = _UINT[dt]
    fi = np.finfo(dt)
    bits = fi.bits
    sign_bit = ut(1 << (bits - 1))
    quiet = ut(1 << (fi.nmant - 1))
    emask = ut((1 << (bits - 1 - fi.nmant)) - 1)
    sign_out = np.signbit(s1) ^ np.signbit(s2)
    inf = np.asarray(np.inf, dt).view(ut)
    with np.errstate(all="ignore"):
        out = np.where(sign_out, s0.view(ut) | sign_bit, s0.view(ut) & ~sign_bit)
        e1 = ((s1.view(ut) >> ut(fi.nmant)) & emask).astype(np.int64)
        e2 = ((s2.view(ut) >> ut(fi.nmant)) & emask).astype(np.int64)
        e0 = ((s0.view(ut) >> ut(fi.nmant)) & emask)
        signed_zero = np.where(sign_out, sign_bit, ut(0))
        signed_inf = np.where(sign_out, inf | sign_bit, inf)
        a1, a2 = np.abs(s1), np.abs(s2)
        out = np.where(e0 == emask, signed_inf, out)
        out = np.where(e2 - e1 < -(fi.nmant + 1 - fi.minexp), signed_zero, out)   # -150 / -1075
        out = np.where((a1 == np.inf) | (s2 == 0), signed_zero, out)
        out = np.where((s1 == 0) | (a2 == np.inf), signed_inf, out)
        invalid = ((s1 == 0) & (s2 == 0)) | ((a1 == np.inf) & (a2 == np.inf))
        out = np.where(invalid, ut(_QNAN_NEG[dt]), out)
        out = np.where(np.isnan(s1), s1.view(ut) | quiet, out)
        out = np.where(np.isnan(s2), s2.view(ut) | quiet, out)
    return out.astype(ut).view(dt)
