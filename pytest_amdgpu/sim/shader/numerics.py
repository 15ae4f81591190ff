"""Numeric helpers for the vector ALU: bit counting, exact fma, float classification.

Everything works on numpy arrays (any shape) and numpy scalars.  Semantics follow the AMD
"Vega"/"CDNA3"/"RDNA3" ISA reference guides' instruction descriptions.
"""

from __future__ import annotations

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

def fma32(a, b, c):
    """f32 fma: the product of two floats is exact in f64; one rounding of the f64 sum."""
    return (np.asarray(a, F64) * np.asarray(b, F64) + np.asarray(c, F64)).astype(F32)


_SPLIT = F64(134217729.0)  # 2**27 + 1 (Dekker split)


def _two_prod(a, b):
    p = a * b
    ca = _SPLIT * a
    ah = ca - (ca - a)
    al = a - ah
    cb = _SPLIT * b
    bh = cb - (cb - b)
    bl = b - bh
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, err


def fma64(a, b, c):
    """f64 fma with error-free transformations (exact product and sum, one final rounding)."""
    a = np.asarray(a, F64)
    b = np.asarray(b, F64)
    c = np.asarray(c, F64)
    with np.errstate(all="ignore"):
        p, e = _two_prod(a, b)
        s = p + c
        bb = s - p
        t = (p - (s - bb)) + (c - bb)
        r = s + (t + e)
        naive = a * b + c
        bad = ~np.isfinite(r) | ~np.isfinite(p) | (np.abs(p) > 1e300) | (np.abs(a * b) < 1e-290)
        return np.where(bad, naive, r)


def fma16(a, b, c):
    return (np.asarray(a, F64) * np.asarray(b, F64) + np.asarray(c, F64)).astype(F16)


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


def cvt_f_to_i32(x):
    """Float -> int32 with saturation, NaN -> 0 (v_cvt_i32_f32 / _f64)."""
    with np.errstate(all="ignore"):
        xf = np.asarray(x).astype(F64)
        r = np.where(np.isnan(xf), 0, np.clip(np.trunc(xf), -2147483648.0, 2147483647.0))
        return r.astype(I64).astype(I32)


def cvt_f_to_u32(x):
    with np.errstate(all="ignore"):
        xf = np.asarray(x).astype(F64)
        r = np.where(np.isnan(xf), 0, np.clip(np.trunc(xf), 0.0, 4294967295.0))
        return r.astype(I64).astype(U32)


def cvt_f_to_i16(x):
    with np.errstate(all="ignore"):
        xf = np.asarray(x).astype(F64)
        r = np.where(np.isnan(xf), 0, np.clip(np.trunc(xf), -32768.0, 32767.0))
        return r.astype(I64).astype(I16)


def cvt_f_to_u16(x):
    with np.errstate(all="ignore"):
        xf = np.asarray(x).astype(F64)
        r = np.where(np.isnan(xf), 0, np.clip(np.trunc(xf), 0.0, 65535.0))
        return r.astype(I64).astype(U16)


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
    """V_DIV_SCALE_F32/F64 (ISA pseudocode): returns (scaled value, VCC flag)."""
    s0, s1, s2 = (np.asarray(a, F64 if fp64 else F32) for a in (s0, s1, s2))
    s0, s1, s2 = np.broadcast_arrays(s0, s1, s2)
    if fp64:
        e1, e2 = exponent64(s1), exponent64(s2)
        scale, big, mant = 128, 768, 53
        tiny = np.finfo(F64).tiny
        ft = F64
    else:
        e1, e2 = exponent32(s1), exponent32(s2)
        scale, big, mant = 64, 96, 23
        tiny = np.finfo(F32).tiny
        ft = F32
    with np.errstate(all="ignore"):
        up = ldexp(s0, scale)
        down = ldexp(s0, -scale)
        q = s2.astype(F64) / s1.astype(F64) if not fp64 else s2 / s1
        r = 1.0 / s1.astype(F64) if not fp64 else 1.0 / s1
        q_den = (np.abs(q) < tiny) & (q != 0)
        r_den = (np.abs(r) < tiny) & (r != 0)
        d = s0.copy()
        vcc = np.zeros(s0.shape, dtype=bool)
        # evaluate the pseudocode's if/else chain from the last case to the first
        d = np.where(e2 <= mant, up, d)
        c = q_den
        d = np.where(c, np.where(s0 == s2, up, s0), d)
        vcc = np.where(c, True, vcc)
        c = r_den
        d = np.where(c, down, d)
        vcc = np.where(c, False, vcc)
        c = r_den & q_den
        d = np.where(c, np.where(s0 == s1, up, s0), d)
        vcc = np.where(c, True, vcc)
        c = (np.abs(s1) < tiny) & (s1 != 0)
        d = np.where(c, up, d)
        vcc = np.where(c, False, vcc)
        c = (e2 - e1) >= big
        d = np.where(c, np.where(s0 == s1, up, s0), d)
        vcc = np.where(c, True, vcc)
        c = (s1 == 0) | (s2 == 0)
        d = np.where(c, ft(np.nan), d)
        vcc = np.where(c, False, vcc)
        c = np.isnan(s1) | np.isnan(s2)
        d = np.where(c, ft(np.nan), d)
        vcc = np.where(c, False, vcc)
    return d.astype(ft), vcc


def div_fmas(s0, s1, s2, vcc, fp64: bool):
    """V_DIV_FMAS: fma, then undo the scaling V_DIV_SCALE applied (VCC set)."""
    if fp64:
        r = fma64(s0, s1, s2)
        big = exponent64(s2) > 1023
        return np.where(vcc, ldexp(r, np.where(big, 128, -128)), r).astype(F64)
    r = fma32(s0, s1, s2)
    big = exponent32(s2) > 127
    return np.where(vcc, ldexp(r, np.where(big, 64, -64)), r).astype(F32)


def div_fixup(s0, s1, s2, dt):
    """V_DIV_FIXUP: s0 quotient, s1 denominator, s2 numerator; special cases from s2/s1."""
    s0, s1, s2 = (np.asarray(a, dt) for a in (s0, s1, s2))
    with np.errstate(all="ignore"):
        special = (~np.isfinite(s1)) | (~np.isfinite(s2)) | (s1 == 0) | (s2 == 0)
        direct = (s2 / s1).astype(dt)
        sign = np.signbit(s1) ^ np.signbit(s2)
        mag = np.abs(s0)
        mag = np.where(np.isnan(s0), dt(np.inf), mag)
        fixed = np.where(sign, -mag, mag).astype(dt)
        return np.where(special, direct, fixed).astype(dt)
